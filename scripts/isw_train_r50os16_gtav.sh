#!/usr/bin/env bash
# ISW (RobustNet): whitening loss on the style-sensitive covariance entries, mask from
# --trials statistics passes at the end of epoch --cov_stat_epoch, loss on from the next epoch.
# ResNet-50 OS16 trained on GTAV with RobustNet's flag set; NGPU processes (default
# 4, as RobustNet). The recipe is configs/isw_r50os16_gtav.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 4 29418 train.py --config "$CONFIGS/isw_r50os16_gtav.toml" "$@"
