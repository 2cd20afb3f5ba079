#!/usr/bin/env bash
# IW: instance whitening loss on every off-diagonal covariance entry, from iteration 0.
# ResNet-50 OS16 trained on GTAV: RobustNet's flag set (ROBUSTNET_METHODS.md §2.4, §2.6),
# NGPU processes (default 4, as RobustNet) x --bs_mult 4 images. Extra arguments are
# appended and override the flags below, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 4 29414 train.py \
    --dataset gtav \
    --covstat_val_dataset gtav \
    --val_dataset bdd100k cityscapes synthia mapillary \
    --arch network.deepv3.DeepR50V3PlusD \
    --city_mode 'train' \
    --lr_schedule poly \
    --lr 0.01 \
    --poly_exp 0.9 \
    --max_cu_epoch 10000 \
    --class_uniform_pct 0.5 \
    --class_uniform_tile 1024 \
    --crop_size 768 \
    --scale_min 0.5 \
    --scale_max 2.0 \
    --rrotate 0 \
    --max_iter 40000 \
    --bs_mult 4 \
    --gblur \
    --color_aug 0.5 \
    --wt_reg_weight 0.8 \
    --relax_denom 0.0 \
    --clusters 0 \
    --cov_stat_epoch 0 \
    --trials 0 \
    --wt_layer 0 0 1 1 1 0 0 \
    --date 0101 \
    --exp r50os16_gtav_iw \
    --ckpt ./logs/ \
    --tb_path ./logs/ \
    "$@"
