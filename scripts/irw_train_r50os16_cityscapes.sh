#!/usr/bin/env bash
# IRW: instance relaxed whitening (IW with the margin floor(N / relax_denom)).
# ResNet-50 OS16 trained on Cityscapes (train split) with RobustNet's flag set; NGPU processes (default
# 2, as RobustNet). The recipe is configs/irw_r50os16_cityscapes.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29417 train.py --config "$CONFIGS/irw_r50os16_cityscapes.toml" "$@"
