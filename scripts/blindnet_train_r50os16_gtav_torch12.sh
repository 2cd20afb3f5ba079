#!/usr/bin/env bash
# BlindNet, ResNet-50 OS16, GTAV -> Cityscapes/BDD/Mapillary: the official recipe of
# blindnet_train_r50os16_gtav.sh as PyTorch 1.2.0 executed it (--norm_semantics torch1.2:
# the three IN layers batch-normalise over the global per-view batch in training and every
# BatchNorm weight/bias stays frozen; DECISIONS.md D28). Its own --exp, so both runs coexist.
# Extra arguments are appended and override the flags, e.g. --max_iter 100.
exec bash "$(dirname "$0")/blindnet_train_r50os16_gtav.sh" \
    --norm_semantics torch1.2 \
    --exp BlindNet_r50os16_gtav_torch12 \
    "$@"
