#!/usr/bin/env bash
# tools/run.sh: the README's main command, the quickstart. On a fresh machine: set up, build, write
# the built-in toy class (caf make-toy), train the tiny preset on it (the GPU when there is one,
# else the CPU), evaluate, and print the metrics table and where the pictures are.
# Arguments, if any, are passed to `caf` instead (e.g. tools/run.sh info).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh >/dev/null
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
echo "== building (first time: a few minutes)"
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
if [ $# -gt 0 ]; then exec ./build/caf "$@"; fi

OUT=${CAF_QUICKSTART:-runs/quickstart}
KIND=${CAF_TOY_KIND:-object}
echo "== the toy class ($KIND) -> $OUT/data"
./build/caf make-toy --out "$OUT/data" --kind "$KIND" --seed 0 --size 64 --name toy
echo "== training the tiny preset -> $OUT/model"
./build/caf train --data "$OUT/data" --class toy --preset tiny --epochs "${CAF_EPOCHS:-150}" \
  --out "$OUT/model" ${CAF_TRAIN_ARGS:-}
echo "== preview of the simulated anomalies -> $OUT/preview.png"
./build/caf preview --data "$OUT/data" --class toy --cell 64 --out "$OUT/preview.png" >/dev/null
echo "== evaluating -> $OUT/model/eval"
./build/caf eval --model "$OUT/model" --data "$OUT/data" --class toy
