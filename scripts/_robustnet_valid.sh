# Sourced by the RobustNet method valid scripts (<method>_valid_r50os16.sh): evaluates a
# checkpoint of scripts/<method>_train_r50os16_*.sh with configs/<method>_valid_r50os16.toml
# (Cityscapes, BDD-100K, Mapillary, SYNTHIA and GTAV; override with --val_dataset ...).
#   robustnet_valid METHOD <weights.pth> [extra valid.py flags]
robustnet_valid() {
    local method="$1"
    shift
    if [ $# -lt 1 ]; then echo "usage: $0 <weights.pth> [extra valid.py flags]" >&2; exit 2; fi
    local weights
    weights="$(realpath "$1")"; shift  # before _launch.sh moves to the repository root
    source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
    launch 1 29430 valid.py --config "$CONFIGS/${method}_valid_r50os16.toml" \
        --snapshot "$weights" "$@"
}
