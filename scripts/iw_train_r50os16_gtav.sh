#!/usr/bin/env bash
# IW: instance whitening loss on every off-diagonal covariance entry, from iteration 0.
# ResNet-50 OS16 trained on GTAV with RobustNet's flag set; NGPU processes (default
# 4, as RobustNet). The recipe is configs/iw_r50os16_gtav.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 4 29414 train.py --config "$CONFIGS/iw_r50os16_gtav.toml" "$@"
