#!/usr/bin/env bash
# Evaluate a baseline R50-OS16 checkpoint (scripts/baseline_train_r50os16_*.sh) on Cityscapes,
# BDD-100K, Mapillary, SYNTHIA and GTAV (override with --val_dataset ...).
# Usage: scripts/baseline_valid_r50os16.sh <weights.pth> [extra valid.py flags]
if [ $# -lt 1 ]; then echo "usage: $0 <weights.pth> [extra valid.py flags]" >&2; exit 2; fi
weights="$(realpath "$1")"; shift
source "$(dirname "$0")/_launch.sh"
launch 1 29430 valid.py \
    --val_dataset cityscapes bdd100k mapillary synthia gtav \
    --arch network.deepv3.DeepR50V3PlusD \
    --wt_layer 0 0 0 0 0 0 0 \
    --date 0101 \
    --exp r50os16_baseline_valid \
    --snapshot "$weights" \
    "$@"
