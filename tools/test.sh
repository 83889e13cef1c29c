#!/usr/bin/env bash
# tools/test.sh: set up, build and run every test. This is the README's test command and what
# CI runs. CUDA code is compiled when nvcc and cuDNN exist (CAF_CUDA=AUTO); GPU tests skip
# themselves with a message where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD=${BUILD:-build}
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
cmake -S . -B "$BUILD" -G Ninja -DCAF_CUDA="${CAF_CUDA:-AUTO}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure
