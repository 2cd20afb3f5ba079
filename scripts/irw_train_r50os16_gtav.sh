#!/usr/bin/env bash
# IRW: instance relaxed whitening (IW with the margin floor(N / relax_denom)).
# ResNet-50 OS16 trained on GTAV with RobustNet's flag set; NGPU processes (default
# 4, as RobustNet). The recipe is configs/irw_r50os16_gtav.toml; extra arguments
# override it, e.g. --max_iter 100.
source "$(dirname "$0")/_launch.sh"
launch 4 29416 train.py --config "$CONFIGS/irw_r50os16_gtav.toml" "$@"
