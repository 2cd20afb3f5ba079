#!/usr/bin/env bash
# Evaluate a Rein DINOv2-L + Mask2Former checkpoint on Cityscapes, BDD-100K and Mapillary
# under Rein's protocol (configs/rein_valid_dinov2_l.toml). Our checkpoints name their DINOv2
# file; Rein's released file needs it: --pretrained dinov2_vitl14_pretrain.pth.
# Usage: scripts/rein_valid_dinov2_l.sh <weights.pth> [extra valid.py flags]
if [ $# -lt 1 ]; then echo "usage: $0 <weights.pth> [extra valid.py flags]" >&2; exit 2; fi
weights="$(realpath "$1")"; shift
source "$(dirname "$0")/_launch.sh"
launch 1 29441 valid.py --config "$CONFIGS/rein_valid_dinov2_l.toml" --snapshot "$weights" "$@"
