#!/usr/bin/env bash
# Switchable Whitening in the stem and at the end of layer1, layer2 (no loss).
# ResNet-50 OS16 trained on GTAV with RobustNet's flag set; NGPU processes (default
# 4, as RobustNet). The recipe is configs/sw_r50os16_gtav.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 4 29420 train.py --config "$CONFIGS/sw_r50os16_gtav.toml" "$@"
