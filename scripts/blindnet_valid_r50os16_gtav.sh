#!/usr/bin/env bash
# Evaluate a BlindNet R50-OS16 checkpoint on Cityscapes, BDD-100K, Mapillary and GTAV (the
# official flag set, configs/blindnet_valid_r50os16_gtav.toml).
# Usage: scripts/blindnet_valid_r50os16_gtav.sh <weights.pth> [extra flags]
if [ $# -lt 1 ]; then echo "usage: $0 <weights.pth> [extra valid.py flags]" >&2; exit 2; fi
weights="$(realpath "$1")"; shift
source "$(dirname "$0")/_launch.sh"
launch 1 29400 valid.py --config "$CONFIGS/blindnet_valid_r50os16_gtav.toml" \
    --snapshot "$weights" "$@"
