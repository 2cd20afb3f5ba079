#!/usr/bin/env bash
# ISW (RobustNet): whitening loss on the style-sensitive covariance entries, mask from
# --trials statistics passes at the end of epoch --cov_stat_epoch, loss on from the next epoch.
# ResNet-50 OS16 trained on GTAV: RobustNet's flag set (ROBUSTNET_METHODS.md §2.4, §2.6; the shared part is in _robustnet_r50.sh),
# NGPU processes (default 4, as RobustNet) x --bs_mult 4 images. Extra arguments are
# appended and override the flags below, e.g. --max_iter 100.
source "$(dirname "$0")/_robustnet_r50.sh"
launch 4 29418 train.py \
    --dataset gtav \
    --covstat_val_dataset gtav \
    --val_dataset bdd100k cityscapes synthia mapillary \
    "${ROBUSTNET_R50_FLAGS[@]}" \
    --wt_reg_weight 0.6 \
    --relax_denom 0.0 \
    --clusters 3 \
    --cov_stat_epoch 5 \
    --trials 10 \
    --wt_layer 0 0 2 2 2 0 0 \
    --exp r50os16_gtav_isw \
    "$@"
