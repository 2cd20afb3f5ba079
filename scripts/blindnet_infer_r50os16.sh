#!/usr/bin/env bash
# Colourized predictions of a BlindNet R50-OS16 checkpoint on Cityscapes, Mapillary, BDD-100K.
# Usage: scripts/blindnet_infer_r50os16.sh <weights.pth> <output folder> [extra flags]
# Writes <output>/blindnet/<dataset>/<stem>_color.png and <stem>_trainid.png.
if [ $# -lt 2 ]; then echo "usage: $0 <weights.pth> <output folder> [extra infer.py flags]" >&2; exit 2; fi
weights="$(realpath "$1")"; out="$(realpath -m "$2")"; shift 2
source "$(dirname "$0")/_launch.sh"
launch 1 29401 infer.py \
    --val_dataset cityscapes mapillary bdd-100k \
    --arch network.deepv3.DeepR50V3PlusD \
    --wt_layer 0 0 1 1 1 0 0 \
    --mod blindnet \
    --results "$out" \
    --date 0101 \
    --exp blindnet_r50os16_gtav \
    --snapshot "$weights" \
    "$@"
