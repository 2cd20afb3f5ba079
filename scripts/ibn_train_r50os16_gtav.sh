#!/usr/bin/env bash
# IBN-Net: affine IN in the stem and after the last block of layer1, layer2.
# ResNet-50 OS16 trained on GTAV with RobustNet's flag set; NGPU processes (default
# 4, as RobustNet). The recipe is configs/ibn_r50os16_gtav.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 4 29412 train.py --config "$CONFIGS/ibn_r50os16_gtav.toml" "$@"
