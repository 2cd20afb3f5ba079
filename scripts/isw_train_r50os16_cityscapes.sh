#!/usr/bin/env bash
# ISW (RobustNet): whitening loss on the style-sensitive covariance entries, mask from
# --trials statistics passes at the end of epoch --cov_stat_epoch, loss on from the next epoch.
# ResNet-50 OS16 trained on Cityscapes (train split): RobustNet's flag set (ROBUSTNET_METHODS.md §2.4, §2.6; the shared part is in _robustnet_r50.sh),
# NGPU processes (default 2, as RobustNet) x --bs_mult 4 images. Extra arguments are
# appended and override the flags below, e.g. --max_iter 100. The doc lists only what the
# Cityscapes scripts change (GPUs, datasets, the method constants); the rest is the GTAV set.
source "$(dirname "$0")/_robustnet_r50.sh"
launch 2 29419 train.py \
    --dataset cityscapes \
    --covstat_val_dataset cityscapes \
    --val_dataset bdd100k gtav synthia mapillary \
    "${ROBUSTNET_R50_FLAGS[@]}" \
    --wt_reg_weight 0.6 \
    --relax_denom 0.0 \
    --clusters 2 \
    --cov_stat_epoch 5 \
    --trials 10 \
    --wt_layer 0 0 2 2 2 0 0 \
    --exp r50os16_cty_isw \
    "$@"
