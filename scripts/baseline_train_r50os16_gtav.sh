#!/usr/bin/env bash
# Baseline for comparison: DeepLabV3+ ResNet-50 OS16 on GTAV, one view, no IN layers and no
# BlindNet losses; the usual DGSS baseline augmentation (--color_aug 0.5 --gblur).
# NGPU processes (default 2). The recipe is configs/baseline_r50os16_gtav.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29404 train.py --config "$CONFIGS/baseline_r50os16_gtav.toml" "$@"
