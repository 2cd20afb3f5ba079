#!/usr/bin/env bash
# BlindNet, ResNet-50 OS16, trained on GTAV, validated on Cityscapes, BDD-100K, Mapillary:
# the official flag set (METHOD.md §7.1).
# NGPU processes (default 2). The recipe is configs/blindnet_r50os16_gtav.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29400 train.py --config "$CONFIGS/blindnet_r50os16_gtav.toml" "$@"
