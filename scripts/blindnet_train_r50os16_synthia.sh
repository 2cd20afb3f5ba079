#!/usr/bin/env bash
# BlindNet, ResNet-50 OS16, trained on SYNTHIA-RAND-CITYSCAPES (broken in the official code,
# DATASETS.md §2.3; works here). Same recipe as the GTAV script.
# Note (DECISIONS.md D6): SYNTHIA images (1280x760) have no whole 1024 tile, so with
# --class_uniform_tile 1024 an epoch holds only random samples; pass a smaller tile to change that.
source "$(dirname "$0")/_launch.sh"
launch 2 29402 train.py \
    --dataset synthia_jitter \
    --val_dataset cityscapes bdd100k mapillary \
    --arch network.deepv3.DeepR50V3PlusD \
    --lr 0.01 --poly_exp 0.9 --max_cu_epoch 10000 \
    --class_uniform_pct 0.5 --class_uniform_tile 1024 \
    --crop_size 768 --scale_min 0.5 --scale_max 2.0 --rrotate 0 \
    --max_iter 40000 --bs_mult 4 --gblur --color_aug 0.5 \
    --wt_layer 0 0 1 1 1 0 0 \
    --use_ca --use_cwcl --use_sdcl --nce_T 0.07 \
    --contrast_max_classes 15 --contrast_max_views 50 --num_patch 20 \
    --w1 0.2 --w2 0.2 --w3 0.3 --w4 0.3 \
    --date 0326 --exp BlindNet_r50os16_synthia --ckpt ./logs/ --tb_path ./logs/ \
    "$@"
