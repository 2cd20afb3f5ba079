# Sourced by the RobustNet method valid scripts (<method>_valid_r50os16.sh): evaluates a
# checkpoint of scripts/<method>_train_r50os16_*.sh on Cityscapes, BDD-100K, Mapillary,
# SYNTHIA and GTAV (override with --val_dataset ...).
#   robustnet_valid METHOD "WT_LAYER CODES" <weights.pth> [extra valid.py flags]
robustnet_valid() {
    local method="$1" wt_layer="$2"
    shift 2
    if [ $# -lt 1 ]; then echo "usage: $0 <weights.pth> [extra valid.py flags]" >&2; exit 2; fi
    local weights
    weights="$(realpath "$1")"; shift  # before _launch.sh moves to the repository root
    source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
    # shellcheck disable=SC2086  # the seven --wt_layer codes are separate words
    launch 1 29430 valid.py \
        --val_dataset cityscapes bdd100k mapillary synthia gtav \
        --arch network.deepv3.DeepR50V3PlusD \
        --wt_layer $wt_layer \
        --date 0101 \
        --exp "r50os16_${method}_valid" \
        --snapshot "$weights" \
        "$@"
}
