#!/usr/bin/env bash
# tools/emu_check.sh: the CUDA paths of caf run on a machine without a GPU, through the CPU
# emulator (tests/emu; CMake -DCAF_EMU=ON), with a summary at the end.
#   build (CAF_EMU=ON, build-emu/) -> kernel tests (caf_emu_tests) -> caf_ops parity (every op,
#   "cuda" against the CPU) -> the gpu test suite -> the README's main job with --device cuda
#   (short) -> a killed and resumed run on "cuda" -> caf bench step at a small shape in each
#   configuration gpu_check.sh times (eager, graph, bf16, channels-last, bf16 activations,
#   reproducible algorithms; with the host round-trip and allocation counters) -> caf bench convs
#   (bf16 channels-last, TF32); the kernel harness
#   bench/kernels (kdev_batchnorm_relu --quick: its checks against the CPU, in CI too).
# What a pass means: caf's own CUDA code (kernels, launch configurations, the cuDNN/cuBLAS call
# sequences, graph capture, the trainer's device paths) computes what the CPU computes. What it
# does not mean: that it runs on a GPU. Races, speed, memory limits and cuDNN's own behaviour
# (refused algorithms, workspaces, numerics) need tools/gpu_check.sh on real hardware. Times
# printed here are the emulator's (about 100x slower than the CPU path), not a GPU's.
# Knobs: BUILD (build-emu), CAF_EMU_SKIP_SUITE=1 skips the gpu suite (about 3 minutes on 2 cores),
# CAF_EMU_EPOCHS (2) the main job's epochs, CAF_EMU_QUICK=1 (CI: .ci/run) only the kernel tests,
# parity and the gpu suite without its one slow case already checked bit for bit on an H200
# (CutPaste, NSA and the Poisson solver), and builds only the test programs. CAF_EMU_ASAN=1: the
# same with AddressSanitizer and UBSan (CAF_SANITIZE, build-emu-asan/): device memory is host
# memory, so a kernel reading or writing past its tensor (or a freed one) is reported, as
# compute-sanitizer's memcheck would on a GPU (the allocator poisons the slack of every block).
set -uo pipefail
cd "$(dirname "$0")/.."
SAN=()
if [ -n "${CAF_EMU_ASAN:-}" ]; then
  SAN=(-DCAF_SANITIZE=ON)
  BUILD=${BUILD:-build-emu-asan}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:allocator_may_return_null=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
BUILD=${BUILD:-build-emu}
OUT=${OUT:-/tmp/caf_emu_check}
mkdir -p "$OUT"
export OMP_WAIT_POLICY=passive  # the emulator runs kernels on one thread; idle OpenMP threads must not spin
declare -a SUMMARY
step() {  # step NAME CMD... : run, record pass/fail and seconds
  local name=$1; shift
  echo; echo "=== $name: $*"
  local t0=$SECONDS
  "$@"
  local rc=$?
  SUMMARY+=("$(printf '%-28s %-5s %4ds' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAIL:$rc)" $((SECONDS - t0)))")
  return 0
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
bash tools/setup.sh >/dev/null
step configure cmake -S . -B "$BUILD" -G Ninja -DCAF_EMU=ON -DCMAKE_BUILD_TYPE=Release "${SAN[@]}"
B=$BUILD
if [ -n "${CAF_EMU_QUICK:-}" ]; then
  step build cmake --build "$BUILD" -j "$(nproc)" --target caf_emu_tests caf_ops caf_tests kdev_batchnorm_relu
  step emu-kernels "$B/tests/caf_emu_tests"
  step kdev-bn-relu "$B/bench/kdev_batchnorm_relu" --quick
  step parity "$B/tests/caf_ops" parity
  step gpu-suite "$B/tests/caf_tests" --test-suite=gpu --test-case-exclude='*Poisson*'
  echo; echo "=== summary (emulated: caf's CUDA code on the CPU, not a GPU)"
  printf '%s\n' "${SUMMARY[@]}"
  ! printf '%s\n' "${SUMMARY[@]}" | grep -q FAIL
  exit
fi
step build cmake --build "$BUILD" -j "$(nproc)"
step info "$B/caf" info
step emu-kernels "$B/tests/caf_emu_tests"
step kdev-bn-relu "$B/bench/kdev_batchnorm_relu" --quick
step parity "$B/tests/caf_ops" parity
[ -z "${CAF_EMU_SKIP_SUITE:-}" ] && step gpu-suite "$B/tests/caf_tests" --test-suite=gpu
# The README's main job on "cuda": the toy class, the tiny preset (a few epochs: the emulator is
# slow), evaluation; the metrics are not judged (too few epochs), only that every stage runs.
step quickstart-cuda bash -c "set -e; Q=$OUT/quickstart; rm -rf \$Q
  '$B/caf' make-toy --out \$Q/data --kind object --seed 0 --size 64 --name toy >/dev/null
  '$B/caf' train --data \$Q/data --class toy --preset tiny --epochs ${CAF_EMU_EPOCHS:-2} --out \$Q/model --device cuda
  '$B/caf' eval --model \$Q/model --data \$Q/data --class toy --device cuda
  test -s \$Q/model/eval/metrics.json"
step quickstart-cuda-graph bash -c "set -e; Q=$OUT/quickstart; rm -rf \$Q/graph
  '$B/caf' train --data \$Q/data --class toy --preset tiny --epochs 1 --out \$Q/graph --device cuda --graph"
# Channels-last bf16 activations through the trainer (a graph) and evaluation.
step quickstart-cuda-last bash -c "set -e; Q=$OUT/quickstart; rm -rf \$Q/last
  '$B/caf' train --data \$Q/data --class toy --preset tiny --epochs 1 --out \$Q/last --device cuda --graph \
    --precision bf16 --activations bf16 --layout nhwc
  '$B/caf' eval --model \$Q/last --data \$Q/data --class toy --device cuda
  test -s \$Q/last/eval/metrics.json"
# A run killed (SIGKILL, SIGINT) and resumed ends bit for bit where an uninterrupted one ends, on
# "cuda" (the emulated cuDNN picks the same arithmetic in every process, so this checks caf's
# checkpointing of device state, not cuDNN's choices: gpu_check.sh's kill-resume-gpu does that).
step kill-resume-cuda env CAF_KILL_RESUME_DEVICE=cuda CAF_KILL_RESUME_EPOCHS=6 sh tests/kill_resume.sh "$B/caf" "$OUT/kill_resume"
SMALL="--device cuda --size 32 --batch 2 --widths 8,4 --steps 2 --warmup 1"
step bench-tf32 "$B/caf" bench step $SMALL --precision tf32 --ops --json "$OUT/tf32.json"
step bench-unfused "$B/caf" bench step $SMALL --precision tf32 --fuse off --recompute off --write-first off
step bench-graph "$B/caf" bench step $SMALL --precision tf32 --augment --graph --json "$OUT/graph.json"
step bench-bf16-graph "$B/caf" bench step $SMALL --precision bf16 --augment --graph
step bench-bf16-nhwc-graph "$B/caf" bench step $SMALL --precision bf16 --layout nhwc --augment --graph
step bench-reproducible "$B/caf" bench step $SMALL --precision tf32 --augment --graph --algos reproducible
step bench-bf16act-nhwc-graph "$B/caf" bench step $SMALL --precision bf16 --activations bf16 --layout nhwc \
  --augment --graph --json "$OUT/bf16act_nhwc_graph.json"
step bench-bf16act-nhwc-f32grads "$B/caf" bench step $SMALL --precision bf16 --activations bf16 --layout nhwc \
  --bf16-grads off --augment --graph
# Every convolution alone (caf bench convs), bf16 channels-last and TF32: the kernels/conv2d.h
# calls gpu_check.sh's bench-convs steps make.
CONVS="--device cuda --size 32 --batch 2 --widths 8,4 --trials 1 --calls 1"
step bench-convs-bf16-nhwc "$B/caf" bench convs $CONVS --precision bf16 --layout nhwc
step bench-convs-tf32 "$B/caf" bench convs $CONVS --precision tf32
step bench-augment "$B/caf" bench augment --device cuda --batch 8 --steps 2

echo; echo "=== summary (emulated: caf's CUDA code on the CPU, not a GPU)"
printf '%s\n' "${SUMMARY[@]}"
! printf '%s\n' "${SUMMARY[@]}" | grep -q FAIL
