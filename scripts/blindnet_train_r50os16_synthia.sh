#!/usr/bin/env bash
# BlindNet, ResNet-50 OS16, trained on SYNTHIA-RAND-CITYSCAPES (broken in the official code,
# DATASETS.md §2.3; works here). Same recipe as the GTAV script.
# NGPU processes (default 2). The recipe is configs/blindnet_r50os16_synthia.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 2 29402 train.py --config "$CONFIGS/blindnet_r50os16_synthia.toml" "$@"
