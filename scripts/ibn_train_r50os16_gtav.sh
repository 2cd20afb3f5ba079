#!/usr/bin/env bash
# IBN-Net: affine IN in the stem (ImageNet BN gamma/beta loaded) and after the residual add of the last block of layer1, layer2.
# ResNet-50 OS16 trained on GTAV: RobustNet's flag set (ROBUSTNET_METHODS.md §2.4, §2.6; the shared part is in _robustnet_r50.sh),
# NGPU processes (default 4, as RobustNet) x --bs_mult 4 images. Extra arguments are
# appended and override the flags below, e.g. --max_iter 100.
source "$(dirname "$0")/_robustnet_r50.sh"
launch 4 29412 train.py \
    --dataset gtav \
    --covstat_val_dataset gtav \
    --val_dataset bdd100k cityscapes synthia mapillary \
    "${ROBUSTNET_R50_FLAGS[@]}" \
    --wt_reg_weight 0.0 \
    --relax_denom 0.0 \
    --cov_stat_epoch 0 \
    --wt_layer 0 0 4 4 4 0 0 \
    --exp r50os16_gtav_ibn \
    "$@"
