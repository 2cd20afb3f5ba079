#!/usr/bin/env bash
# Baseline DeepLabV3+ (no IN layers, no whitening loss).
# ResNet-50 OS16 trained on Cityscapes (train split) with RobustNet's flag set; NGPU processes (default
# 2, as RobustNet). The recipe is configs/baseline_r50os16_cityscapes.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29411 train.py --config "$CONFIGS/baseline_r50os16_cityscapes.toml" "$@"
