#!/usr/bin/env bash
# BlindNet, ResNet-50 OS16, trained on Cityscapes (train split), validated on BDD-100K,
# Mapillary and GTAV. Same recipe as the GTAV script.
# NGPU processes (default 2). The recipe is configs/blindnet_r50os16_cityscapes.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29403 train.py --config "$CONFIGS/blindnet_r50os16_cityscapes.toml" "$@"
