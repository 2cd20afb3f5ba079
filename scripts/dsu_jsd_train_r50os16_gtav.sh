#!/usr/bin/env bash
# DSU + JSD (docs/COMPARISON_METHODS.md), ResNet-50 OS16 trained on GTAV, validated on
# Cityscapes, BDD-100K, Mapillary; NGPU processes (default 2, as BlindNet). The recipe is
# configs/dsu_jsd_r50os16_gtav.toml; extra arguments override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29450 train.py --config "$CONFIGS/dsu_jsd_r50os16_gtav.toml" "$@"
