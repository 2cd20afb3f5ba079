#!/usr/bin/env bash
# Baseline for comparison: DeepLabV3+ ResNet-50 OS16 on GTAV, one view, no IN layers and no
# BlindNet losses; the usual DGSS baseline augmentation (--color_aug 0.5 --gblur).
source "$(dirname "$0")/_launch.sh"
launch 2 29404 train.py \
    --dataset gtav \
    --val_dataset cityscapes bdd100k mapillary \
    --arch network.deepv3.DeepR50V3PlusD \
    --lr 0.01 --poly_exp 0.9 --max_cu_epoch 10000 \
    --class_uniform_pct 0.5 --class_uniform_tile 1024 \
    --crop_size 768 --scale_min 0.5 --scale_max 2.0 --rrotate 0 \
    --max_iter 40000 --bs_mult 4 --gblur --color_aug 0.5 \
    --wt_layer 0 0 0 0 0 0 0 \
    --date 0326 --exp baseline_r50os16_gtav --ckpt ./logs/ --tb_path ./logs/ \
    "$@"
