# Sourced by the scripts in this folder: builds the torchrun command line.
#   NGPU         processes per node (default given by the calling script)
#   NNODES       number of nodes (default 1)
#   NODE_RANK    rank of this node (default 0)
#   MASTER_ADDR  address of node 0 (default 127.0.0.1)
#   MASTER_PORT  rendezvous port (default given by the calling script)
# Every script runs from the repository root, wherever it is called from; the recipes it
# passes with --config are $CONFIGS/<recipe>.toml (docs/CONFIGS.md).
CONFIGS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../configs" && pwd)"
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
launch() {
    local nproc="${NGPU:-$1}" port="${MASTER_PORT:-$2}"
    shift 2
    exec torchrun --nproc_per_node="$nproc" --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="$port" "$@"
}
