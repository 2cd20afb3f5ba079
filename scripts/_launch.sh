# Sourced by the scripts in this folder: runs train.py / valid.py / infer.py.
#   NGPU         processes per node (default given by the calling script)
#   NNODES       number of nodes (default 1)
#   NODE_RANK    rank of this node (default 0)
#   MASTER_ADDR  address of node 0 (default 127.0.0.1)
#   MASTER_PORT  rendezvous port (default given by the calling script)
#   PYTHON       the Python to run (default: python on PATH, else python3)
# Nothing changes directory: relative paths (the recipes' --ckpt ./logs/ too) mean what they
# mean where the script was called from; the Python files are run by their full path, the
# recipes passed with --config are $CONFIGS/<recipe>.toml (docs/CONFIGS.md).
# The processes run under python -m torch.distributed.run (no `torchrun` executable needed)
# through scripts/_launch.py, which ends a failed run with the failing script's one-line
# error instead of torchrun's traceback.
BLINDNET_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || exit 1
CONFIGS="$BLINDNET_REPO/configs"
# When sourced, "$@" is the calling script's remaining arguments: the user's extra flags.
_blindnet_user_argc=$#
launch() {
    local nproc="${NGPU:-$1}" port="${MASTER_PORT:-$2}" entry="$BLINDNET_REPO/$3"
    shift 3
    local python="${PYTHON:-$(command -v python || command -v python3)}"
    if [ -z "$python" ]; then echo "$0: error: no python on PATH (set PYTHON)" >&2; exit 127; fi
    # The leading arguments that are the script's own flags: they never warn "no effect".
    export BLINDNET_SCRIPT_ARGC=$(( $# - _blindnet_user_argc ))
    exec "$python" "$BLINDNET_REPO/scripts/_launch.py" "$0" --nproc_per_node="$nproc" \
        --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$port" "$entry" "$@"
}
