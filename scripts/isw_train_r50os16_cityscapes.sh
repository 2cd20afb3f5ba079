#!/usr/bin/env bash
# ISW (RobustNet): whitening loss on the style-sensitive covariance entries, mask from
# --trials statistics passes at the end of epoch --cov_stat_epoch, loss on from the next epoch.
# ResNet-50 OS16 trained on Cityscapes (train split) with RobustNet's flag set; NGPU processes (default
# 2, as RobustNet). The recipe is configs/isw_r50os16_cityscapes.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29419 train.py --config "$CONFIGS/isw_r50os16_cityscapes.toml" "$@"
