#!/usr/bin/env bash
# BlindNet, ResNet-50 OS16, GTAV -> Cityscapes/BDD/Mapillary: the official recipe as PyTorch
# 1.2.0 executed it (--norm_semantics torch1.2, DECISIONS.md D28), its own --exp.
# NGPU processes (default 2). The recipe is configs/blindnet_r50os16_gtav_torch12.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29400 train.py --config "$CONFIGS/blindnet_r50os16_gtav_torch12.toml" "$@"
