#!/usr/bin/env bash
# Switchable Whitening in the stem and at the end of layer1, layer2 (no loss).
# ResNet-50 OS16 trained on Cityscapes (train split) with RobustNet's flag set; NGPU processes (default
# 2, as RobustNet). The recipe is configs/sw_r50os16_cityscapes.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29421 train.py --config "$CONFIGS/sw_r50os16_cityscapes.toml" "$@"
