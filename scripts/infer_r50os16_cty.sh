#!/usr/bin/env bash
# The script name used by the official README; same as blindnet_infer_r50os16.sh.
exec "$(dirname "$0")/blindnet_infer_r50os16.sh" "$@"
