#!/usr/bin/env bash
# Colourized predictions of a BlindNet R50-OS16 checkpoint on Cityscapes, Mapillary, BDD-100K
# (the official flag set, configs/blindnet_infer_r50os16.toml).
# Usage: scripts/blindnet_infer_r50os16.sh <weights.pth> <output folder> [extra flags]
# Writes <output>/blindnet/<dataset>/<stem>_color.png and <stem>_trainid.png.
if [ $# -lt 2 ]; then echo "usage: $0 <weights.pth> <output folder> [extra infer.py flags]" >&2; exit 2; fi
weights="$(realpath "$1")"; out="$(realpath -m "$2")"; shift 2
source "$(dirname "$0")/_launch.sh"
launch 1 29401 infer.py --config "$CONFIGS/blindnet_infer_r50os16.toml" \
    --results "$out" --snapshot "$weights" "$@"
