#!/usr/bin/env bash
# Rein, DINOv2-L + Mask2Former, trained on GTAV at 512x512 and validated on Cityscapes,
# BDD-100K and Mapillary under Rein's protocol (docs/VFM.md). One process, batch 4 (Rein's
# "bs1x4"; NGPU overrides). The recipe is configs/rein_dinov2_l_mask2former_gtav.toml; pass
# the DINOv2 file, e.g.
#   scripts/rein_train_dinov2_l_gtav.sh --pretrained dinov2_vitl14_pretrain.pth
# and extra arguments override the recipe, e.g. --amp bf16.
source "$(dirname "$0")/_launch.sh"
launch 1 29440 train.py --config "$CONFIGS/rein_dinov2_l_mask2former_gtav.toml" "$@"
