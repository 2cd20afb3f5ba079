#!/usr/bin/env bash
# Evaluate an sw R50-OS16 checkpoint (scripts/sw_train_r50os16_*.sh) on Cityscapes,
# BDD-100K, Mapillary, SYNTHIA and GTAV (override with --val_dataset ...).
# Usage: scripts/sw_valid_r50os16.sh <weights.pth> [extra valid.py flags]
source "$(dirname "$0")/_robustnet_valid.sh"
robustnet_valid sw "$@"
