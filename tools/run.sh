#!/usr/bin/env bash
# tools/run.sh: the README's main command. Builds caf (quietly) and runs it on the GPU when there
# is one. Until the trainer lands (issue 5) the main job is `caf info`: the build, the device and a
# forward+backward smoke test on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh >/dev/null
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
./build/caf "${@:-info}"
