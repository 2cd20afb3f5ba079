#!/usr/bin/env bash
# Switchable Whitening in the stem and at the end of layer1, layer2 (no loss).
# ResNet-50 OS16 trained on GTAV: RobustNet's flag set (ROBUSTNET_METHODS.md §2.4, §2.6; the shared part is in _robustnet_r50.sh),
# NGPU processes (default 4, as RobustNet) x --bs_mult 4 images. Extra arguments are
# appended and override the flags below, e.g. --max_iter 100.
source "$(dirname "$0")/_robustnet_r50.sh"
launch 4 29420 train.py \
    --dataset gtav \
    --covstat_val_dataset gtav \
    --val_dataset bdd100k cityscapes synthia mapillary \
    "${ROBUSTNET_R50_FLAGS[@]}" \
    --wt_layer 0 0 5 5 5 0 0 \
    --exp r50os16_gtav_switchable \
    "$@"
