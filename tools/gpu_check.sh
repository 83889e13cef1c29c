#!/usr/bin/env bash
# tools/gpu_check.sh: everything that needs a GPU, in one go, with a summary at the end.
#   build (CUDA on, sm_90) -> parity suite -> gpu test suite -> the README's main job on the GPU
#   (toy class, tiny preset, evaluation, thresholds) -> (full set: full ctest, sync-debug, the gpu
#   suite's memcheck, op timings) -> the whole training step at the paper's shapes (caf in each
#   configuration, PyTorch) -> augmentation throughput -> the loss-tracking gates (50 steps, caf
#   against PyTorch) -> every convolution alone (caf, PyTorch) -> killed-and-resumed runs ->
#   compute-sanitizer on training steps and the fused batch norm -> a short paper-preset training
#   run on MVTec bottle and its evaluation (when the data is carried) -> the summary and issue 7's
#   table (bench/summary.py).
# Without a GPU, tools/emu_check.sh runs the same CUDA paths on the CPU emulator first (free).
# Knobs: CAF_FULL=1 runs everything (without it the quick set runs: no full ctest, sync-debug,
# gpu-suite memcheck, op timings or exact-fp32 step); CAF_SKIP_OPS_PERF=1 skips the op timings
# alone; CAF_QUICK_EPOCHS (50) the README job's epochs; CAF_BOTTLE_EPOCHS=0 skips the bottle run
# when data is carried; CAF_TORCH_MODES (comma list, default tf32,tf32-rfirst,bf16-cl; torch.compile runs in
# the background from the start, timed at the first checkpoint after it is compiled, within
# CAF_COMPILE_TIMEOUT, unless CAF_SKIP_COMPILE=1); CAF_TRACK_MODES (default "tf32 bf16");
# CAF_TRACK_STEPS (50); CAF_ENVELOPE_RUNS (2); CAF_STEP_TIMEOUT (300 s a step); CAF_RESUME=1 (a
# second call continues the first: see RES below). CAF_DRY=1: a dry run of this script's flow at toy
# shapes and lengths (32 px, batch 2, widths 8/4, 2 steps per benchmark, 1 epoch, 3 tracked steps,
# no torch.compile), e.g. on the CPU emulator without a GPU: BUILD=build-emu CAF_DRY=1 bash
# tools/gpu_check.sh (build-emu configured with -DCAF_EMU=ON by tools/emu_check.sh; PyTorch's and
# compute-sanitizer's steps then fail or are skipped, the rest runs, and bench/summary.py reads
# real results). Its numbers mean nothing.
# Works on a machine with no internet: cuDNN is found through CUDNN_ROOT or PyTorch's wheel
# (site-packages/nvidia/cudnn); header-only deps through CAF_DEPS_ROOT (default .carry/deps if
# present). Output: the log on stdout and in ${OUT:-/tmp}/gpu_check.log.
set -uo pipefail
cd "$(dirname "$0")/.."
# The default is the run that fits a lent machine's 10-minute call (about 9 minutes on an H200,
# torch.compile's limit included); CAF_FULL=1 adds the full ctest, sync-debug, the gpu-suite
# memcheck, the per-op timings and caf's exact-fp32 step.
if [ -z "${CAF_FULL:-}" ]; then CAF_QUICK=${CAF_QUICK:-1}; else CAF_QUICK=; fi
OUTDIR=${OUT:-/tmp}
LOG=$OUTDIR/gpu_check.log
# JSON results, the trace, the gate inputs (archived into $OUTDIR). In an ignored folder of the
# checkout, which a lent machine keeps between calls while it is warm: CAF_RESUME=1 (the same call
# again, at once) skips every step that already ran there (passed or failed; a step cut off by the
# time limit runs again) and keeps its results, so one check can span two calls when a single
# 10-minute call cannot hold it all. Without CAF_RESUME the folder starts empty.
RES=${CAF_RESULTS:-$PWD/.gpu_results}
[ -z "${CAF_RESUME:-}" ] && rm -rf "$RES"
mkdir -p "$RES" "$OUTDIR"
touch "$RES/done.txt"
: >"$LOG"
exec 3>&1  # the caller's stdout, for the signal handler (the tee below may be gone by then)
exec > >(tee -a "$LOG") 2>&1
BUILD=${BUILD:-build-gpu}
COMPILE_PID=""
STEP_PID=""
# On a time limit (timeout sends TERM): stop the background compile, print what finished and keep
# every result written so far.
on_term() {
  trap '' PIPE
  exec > >(tee -a "$LOG" >&3) 2>&1
  echo; echo "=== stopped by a signal (time limit?): results so far"
  [ -n "$COMPILE_PID" ] && kill "$COMPILE_PID" 2>/dev/null
  [ -n "$STEP_PID" ] && kill "$STEP_PID" 2>/dev/null
  cat "$RES/summary.txt"
  [ -n "${PY:-}" ] && $PY bench/summary.py "$RES"
  tar czf "$OUTDIR/results.tgz" -C "$RES" . && echo "results: $OUTDIR/results.tgz"
  exit 124
}
trap on_term TERM INT
ran() { grep -qx "$1" "$RES/done.txt"; }  # ran NAME: the step ran in an earlier call (CAF_RESUME)
step() {  # step NAME CMD... : run, record pass/fail and seconds
  local name=$1; shift
  # (configure and build always run: a no-op when nothing changed, a rebuild after a fix)
  if [ "$name" != configure ] && [ "$name" != build ] && ran "$name"; then
    echo; echo "=== $name: ran in the earlier call, skipped"; return 0
  fi
  echo; echo "=== $name: $*"
  local t0=$SECONDS
  # In the background and waited for, so that a TERM is handled at once (bash runs traps only
  # between foreground commands).
  # A step that hangs (a kernel that never returns) is stopped after CAF_STEP_TIMEOUT seconds
  # (default 300) instead of eating the call.
  timeout -k 5 "${CAF_STEP_TIMEOUT:-300}" "$@" &
  STEP_PID=$!
  wait "$STEP_PID"
  local rc=$?
  STEP_PID=""
  printf '%-28s %-5s %4ds\n' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAIL:$rc)" $((SECONDS - t0)) \
    >>"$RES/summary.txt"
  echo "$name" >>"$RES/done.txt"
  return 0
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: ${CAF_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
nvcc --version | tail -1
PY=$(command -v python3 || true)
if [ -z "${CUDNN_ROOT:-}" ] && [ -n "$PY" ]; then
  CUDNN_ROOT=$($PY -c 'import nvidia.cudnn as m; print(m.__path__[0])' 2>/dev/null || true)
fi
echo "CUDNN_ROOT=${CUDNN_ROOT:-<system>}"
DEPS=${CAF_DEPS_ROOT:-}
[ -z "$DEPS" ] && [ -d .carry/deps ] && DEPS=$PWD/.carry/deps
LIBS=""
[ -n "${CUDNN_ROOT:-}" ] && LIBS="$CUDNN_ROOT/lib"
if [ -n "$PY" ]; then
  CUBLAS_LIB=$($PY -c 'import nvidia.cublas as m; print(m.__path__[0] + "/lib")' 2>/dev/null || true)
  [ -n "$CUBLAS_LIB" ] && LIBS="$LIBS:$CUBLAS_LIB"
fi
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUDA_HOME_GUESS=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
CUBLAS_ARG=""
if ! find "$CUDA_HOME_GUESS" -maxdepth 4 -name 'libcublas.so*' 2>/dev/null | grep -q . && [ -n "${CUBLAS_LIB:-}" ]; then
  CUBLAS_ARG="-DCUBLAS_ROOT=$(dirname "$CUBLAS_LIB")"
fi
echo "nvcc=$NVCC toolkit=$CUDA_HOME_GUESS ${CUBLAS_ARG}"
export LD_LIBRARY_PATH="$LIBS:${LD_LIBRARY_PATH:-}"

step configure cmake -S . -B "$BUILD" -G Ninja -DCAF_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_CUDA_COMPILER="$NVCC" $CUBLAS_ARG \
  ${CUDNN_ROOT:+-DCUDNN_ROOT=$CUDNN_ROOT} ${DEPS:+-DCAF_DEPS_ROOT=$DEPS}
step build cmake --build "$BUILD" -j "$(nproc)"
B=$BUILD
WIDTHS=128,64
PAPER="--device cuda --size 256 --batch 8 --widths $WIDTHS"
CAFB=$PAPER  # caf bench step's shape arguments
AUG8=200; AUG256=20; KR_EPOCHS=200; CONVS_ARGS=""
if [ -n "${CAF_DRY:-}" ]; then
  WIDTHS=8,4
  PAPER="--device cuda --size 32 --batch 2 --widths $WIDTHS"
  CAFB="$PAPER --steps 2 --warmup 1"
  AUG8=2; AUG256=1; KR_EPOCHS=6; CONVS_ARGS="--trials 1 --calls 1"
  CAF_QUICK_EPOCHS=${CAF_QUICK_EPOCHS:-1}; CAF_TRACK_STEPS=${CAF_TRACK_STEPS:-3}; CAF_SKIP_COMPILE=1
  echo "CAF_DRY: toy shapes and lengths; the numbers below mean nothing"
fi
# torch.compile takes minutes to compile the step (run 8: not done in 140 s), so it compiles in the
# background on the upper half of the cores while the rest runs, and is timed at the first
# checkpoint after it is done (compile_timing below), alone on the GPU
# (bench/torch_reference.py --start-after). Its 5 warm-up steps may overlap a caf run.
if [ -n "$PY" ] && [ -z "${CAF_SKIP_COMPILE:-}" ] && ! ran torch-compile; then
  rm -f "$RES/compile_go"
  NP=$(nproc); HALF=$((NP / 2)); PIN=""
  if command -v taskset >/dev/null && [ "$NP" -ge 4 ]; then PIN="taskset -c $HALF-$((NP - 1))"; fi
  TORCHINDUCTOR_COMPILE_THREADS=$((NP - HALF)) $PIN $PY bench/torch_reference.py $PAPER --steps 50 --warmup 5 \
    --mode compile-bf16-cl --start-after "$RES/compile_go" --json "$RES/torch_compile.json" \
    >"$RES/torch_compile.log" 2>&1 &
  COMPILE_PID=$!
  echo "torch.compile: compiling in the background (pid $COMPILE_PID${PIN:+, $PIN})"
fi
# The torch.compile timing: as soon as the compilation is done (its log says it is waiting), at
# the checkpoints below, so that a time limit later in the run cannot cut off the one row run 8
# missed; "wait" (the last call) starts it anyway and waits CAF_COMPILE_TIMEOUT seconds at most,
# compilation included if it is still compiling.
compile_timing() {
  [ -n "$COMPILE_PID" ] || return 0
  if [ "${1:-}" != wait ] && ! grep -q "waiting for" "$RES/torch_compile.log" 2>/dev/null &&
     kill -0 "$COMPILE_PID" 2>/dev/null; then
    echo "torch.compile: still compiling, timed later"
    return 0
  fi
  step torch-compile bash -c "touch '$RES/compile_go'
    for i in \$(seq ${CAF_COMPILE_TIMEOUT:-150}); do kill -0 $COMPILE_PID 2>/dev/null || break; sleep 1; done
    if kill -0 $COMPILE_PID 2>/dev/null; then kill $COMPILE_PID; cat '$RES/torch_compile.log'; exit 124; fi
    cat '$RES/torch_compile.log'; test -s '$RES/torch_compile.json'"
  COMPILE_PID=""
}
step info "$B/caf" info
step parity "$B/tests/caf_ops" parity
step gpu-suite "$B/tests/caf_tests" --test-suite=gpu
# The README's main job on the GPU: the toy class, the tiny preset (CAF_QUICK_EPOCHS, default 50,
# as ctest quickstart_short; the README trains 150), evaluation, and quickstart_short's thresholds
# (image AUROC > 0.80, pixel AUROC > 0.95). ctest's quickstart_short and cli_end_to_end pin
# CAF_DEVICE=cpu (CI's machines have no GPU), so they never ran the trainer on the GPU (runs 7-8
# ran them here all the same: on the CPU).
step quickstart-gpu bash -c "set -e; Q=/tmp/caf_quickstart; rm -rf \$Q
  '$B/caf' make-toy --out \$Q/data --kind object --seed 0 --size 64 --name toy >/dev/null
  '$B/caf' train --data \$Q/data --class toy --preset tiny --epochs ${CAF_QUICK_EPOCHS:-50} --out \$Q/model --device cuda
  '$B/caf' eval --model \$Q/model --data \$Q/data --class toy --device cuda
  ${PY:-python3} -c 'import json, sys
m = json.load(open(sys.argv[1]))
s = {k: v for k, v in m.items() if not isinstance(v, (list, dict))}
json.dump(s, open(sys.argv[2], \"w\"), indent=1)
print(\"quickstart on the GPU:\", s)
sys.exit(0 if m[\"image_auroc\"] > 0.80 and m[\"pixel_auroc\"] > 0.95 else 1)' \$Q/model/eval/metrics.json '$RES/quickstart_gpu.json'"
if [ -z "${CAF_QUICK:-}" ]; then
  step ctest-all ctest --test-dir "$B" --output-on-failure -j 4
  step sync-debug env CAF_SYNC_DEBUG=1 "$B/tests/caf_tests" --test-suite=gpu
  if command -v compute-sanitizer >/dev/null; then
    step memcheck compute-sanitizer --tool memcheck --error-exitcode 9 "$B/tests/caf_tests" --test-suite=gpu \
      --test-case-exclude='*out of memory*,*failing CUDA call*,*torch match*'
    step racecheck compute-sanitizer --tool racecheck --error-exitcode 9 "$B/tests/caf_ops" parity sum
  fi
fi
# Batch norm alone (cuDNN), ReLU alone, and the fused op, at 8x64x256x256 (a few seconds).
step perf-bn-relu bash -c "'$B/tests/caf_ops' perf batchnorm && '$B/tests/caf_ops' perf relu/perf"
if [ -z "${CAF_SKIP_OPS_PERF:-}${CAF_QUICK:-}" ]; then
  step perf "$B/tests/caf_ops" perf perf
  if [ -n "$PY" ] && [ -f bench/conv_torch.py ]; then
    step torch-conv $PY bench/conv_torch.py --device cuda
  fi
fi

# Issue 7: the whole training step at the paper's shapes, caf (several ways) then PyTorch, every
# result as JSON in $RES for bench/summary.py; most important first, so a time limit cuts the rest.
step bench-step-tf32 "$B/caf" bench step $CAFB --precision tf32 --ops --json "$RES/caf_tf32.json"
# The same networks-only step as run 8 made it: batch norm and ReLU as two ops (cuDNN's, caf's),
# every convolution input kept, gradients zero-filled then added: the gain in time and memory of the
# fused op, the recompute and write-first gradients.
step bench-step-unfused "$B/caf" bench step $CAFB --precision tf32 --fuse off --recompute off --write-first off --ops \
  --json "$RES/caf_tf32_unfused.json"
# (TF32 eager with augmentation and a Chrome trace: run 8 recorded one; the full set only, for time.)
[ -z "${CAF_QUICK:-}" ] && step bench-step-augment "$B/caf" bench step $CAFB --precision tf32 --augment \
  --json "$RES/caf_augment.json" --trace "$RES/trace_step.json"
step bench-step-graph "$B/caf" bench step $CAFB --precision tf32 --augment --graph --json "$RES/caf_graph.json"
step bench-step-bf16 "$B/caf" bench step $CAFB --precision bf16 --augment --ops --json "$RES/caf_bf16.json"
step bench-step-bf16-graph "$B/caf" bench step $CAFB --precision bf16 --augment --graph \
  --json "$RES/caf_bf16_graph.json"
# bf16 with channels-last convolutions (cuDNN's NHWC kernels; off by default until timed here).
step bench-step-bf16-nhwc-graph "$B/caf" bench step $CAFB --precision bf16 --layout nhwc --augment --graph \
  --json "$RES/caf_bf16_nhwc_graph.json"
# cuDNN's heuristics instead of Find's timings (--algos reproducible: runs that repeat across
# processes): what the choice costs, against bench-step-graph.
step bench-step-reproducible "$B/caf" bench step $CAFB --precision tf32 --augment --graph --algos reproducible \
  --json "$RES/caf_reproducible.json"
# bf16 activations between the convolutions (opt-in until timed here): eager with the op breakdown
# and the peak memory, then graphs with planar and with channels-last convolutions; the
# channels-last one also profiles eager steps after its replays (--ops: phases and ops, ~3 s).
step bench-step-bf16act "$B/caf" bench step $CAFB --precision bf16 --activations bf16 --augment --ops \
  --json "$RES/caf_bf16act.json"
step bench-step-bf16act-graph "$B/caf" bench step $CAFB --precision bf16 --activations bf16 --augment --graph \
  --json "$RES/caf_bf16act_graph.json"
step bench-step-bf16act-nhwc-graph "$B/caf" bench step $CAFB --precision bf16 --activations bf16 --layout nhwc \
  --augment --graph --ops --json "$RES/caf_bf16act_nhwc_graph.json"
[ -z "${CAF_QUICK:-}" ] && step bench-step-fastest "$B/caf" bench step $CAFB --precision tf32 --augment --graph \
  --algos fastest --json "$RES/caf_fastest.json"
[ -z "${CAF_QUICK:-}" ] && step bench-step-fp32 "$B/caf" bench step $CAFB --precision fp32 --steps 10 --warmup 3 \
  --json "$RES/caf_fp32.json"
if [ -n "$PY" ]; then
  # PyTorch: TF32 eager (DRAEM-style code), the same with R's backward first (caf's order: what
  # the reordering alone gives PyTorch's memory), bf16 channels_last; torch.compile last.
  step torch-reference $PY bench/torch_reference.py $PAPER --steps 50 --warmup 5 \
    --mode "${CAF_TORCH_MODES:-tf32,tf32-rfirst,bf16-cl}" --json "$RES/torch.json"
fi
# Anomaly-simulation throughput (issue goal on an H200: >= 20,000 images/s at batch 8).
step bench-augment-8 bash -c "set -o pipefail; '$B/caf' bench augment --device cuda --batch 8 --steps $AUG8 | tee '$RES/augment_8.txt'"
step bench-augment-256 "$B/caf" bench augment --device cuda --batch 256 --steps $AUG256
compile_timing
if [ -n "$PY" ]; then
  # The correctness gate: 50 steps from the same weights on the same data, caf against PyTorch.
  step checkpoint-init "$B/caf" checkpoint-new --widths $WIDTHS --out "$B/caf_init.safetensors"
  for mode in ${CAF_TRACK_MODES:-tf32 bf16}; do
    step "track-caf-$mode" "$B/caf" bench step $CAFB --precision $mode --track "${CAF_TRACK_STEPS:-50}" \
      --init "$B/caf_init.safetensors" --json "$RES/track_caf_$mode.json"
    step "track-torch-$mode" $PY bench/torch_reference.py $PAPER --mode $mode --track "${CAF_TRACK_STEPS:-50}" \
      --envelope-runs "${CAF_ENVELOPE_RUNS:-2}" --init "$B/caf_init.safetensors" --json "$RES/track_torch_$mode.json"
    step "gate-$mode" $PY bench/compare_losses.py "$RES/track_caf_$mode.json" "$RES/track_torch_$mode.json"
  done
  if [ -f "$RES/track_torch_bf16.json" ]; then  # the channels-last convolutions against the same PyTorch run
    step track-caf-bf16-nhwc "$B/caf" bench step $CAFB --precision bf16 --layout nhwc --track "${CAF_TRACK_STEPS:-50}" \
      --init "$B/caf_init.safetensors" --json "$RES/track_caf_bf16_nhwc.json"
    step gate-bf16-nhwc $PY bench/compare_losses.py "$RES/track_caf_bf16_nhwc.json" "$RES/track_torch_bf16.json"
    step track-caf-bf16act "$B/caf" bench step $CAFB --precision bf16 --activations bf16 \
      --track "${CAF_TRACK_STEPS:-50}" --init "$B/caf_init.safetensors" --json "$RES/track_caf_bf16act.json"
    step gate-bf16act $PY bench/compare_losses.py "$RES/track_caf_bf16act.json" "$RES/track_torch_bf16.json"
    step track-caf-bf16act-nhwc "$B/caf" bench step $CAFB --precision bf16 --activations bf16 --layout nhwc \
      --track "${CAF_TRACK_STEPS:-50}" --init "$B/caf_init.safetensors" --json "$RES/track_caf_bf16act_nhwc.json"
    step gate-bf16act-nhwc $PY bench/compare_losses.py "$RES/track_caf_bf16act_nhwc.json" "$RES/track_torch_bf16.json"
  fi
fi
compile_timing
# The fused batch norm + ReLU's passes alone, planar and channels-last, at the networks' shapes:
# checked against the CPU reference, then ms, GB/s and the share of the memory bandwidth, with the
# candidate channels-last statistics kernel beside the product's (bench/kernels; about 20 s).
step kdev-bn-relu "$B/bench/kdev_batchnorm_relu" ${CAF_DRY:+--quick} --json "$RES/kdev_batchnorm_relu.json"
# bench-step-bf16act-nhwc-graph again with fp32 activation gradients (bf16 gradients off; the
# tenth session made them the default): what the bf16 gradient buffers save. After PyTorch's
# reference and the loss gates, which the table needs first (about 15 s).
step bench-step-bf16act-nhwc-graph-f32grads "$B/caf" bench step $CAFB --precision bf16 --activations bf16 \
  --layout nhwc --bf16-grads off --augment --graph --json "$RES/caf_bf16act_nhwc_graph_f32grads.json"
# The memory census of channels-last bf16 activations (eager: the peak in use, by the phase and op
# that allocated it; --memory costs a label per allocation, so it is not a timed row; about 20 s).
step bench-memory-bf16act-nhwc "$B/caf" bench step $CAFB --precision bf16 --activations bf16 --layout nhwc \
  --augment --memory --steps 3 --warmup 1 --json "$RES/caf_memory_bf16act_nhwc.json"
# Every convolution of both networks alone (caf bench convs: forward, input and weight gradients
# per distinct layer, the costliest first), then PyTorch's time for the same list
# (bench/torch_convs.py): which layers fall short of the rest, and whether PyTorch's cuDNN calls
# do better on any. bf16 as the fastest step runs them (planar), then TF32 (about 30 s each).
for prec in bf16 tf32; do
  step "bench-convs-$prec" "$B/caf" bench convs $PAPER $CONVS_ARGS --precision $prec --json "$RES/convs_$prec.json"
  [ -n "$PY" ] && step "torch-convs-$prec" $PY bench/torch_convs.py "$RES/convs_$prec.json" \
    --json "$RES/torch_convs_$prec.json"
done
# A run killed (SIGKILL, SIGINT) and resumed, against an uninterrupted one, on the GPU (after the
# table and the loss gates, which issue 7 needs first; tools/emu_check.sh checks caf's side of it
# without a GPU): with the trainer's default algorithms ("reproducible": cuDNN's heuristics, the
# same choice in every process) it must end bit for bit where the uninterrupted run ends (run 9:
# it did); with "deterministic" each process times cuDNN's algorithms afresh, so that step
# measures whether "exactly" happens to hold there (run 9: it did not).
step kill-resume-gpu env CAF_KILL_RESUME_DEVICE=cuda CAF_KILL_RESUME_EPOCHS=$KR_EPOCHS sh tests/kill_resume.sh "$B/caf" /tmp/caf_kill_resume_gpu
step kill-resume-gpu-timed env CAF_KILL_RESUME_DEVICE=cuda CAF_KILL_RESUME_EPOCHS=$KR_EPOCHS CAF_KILL_RESUME_ALGORITHMS=deterministic \
  sh tests/kill_resume.sh "$B/caf" /tmp/caf_kill_resume_gpu_timed
# compute-sanitizer over a few whole training steps (sampling, simulation, networks, Adam), eager
# and replayed from a CUDA graph, and racecheck on the simulation's shared-memory histogram kernel.
if command -v compute-sanitizer >/dev/null; then
  step memcheck-steps compute-sanitizer --tool memcheck --error-exitcode 9 "$B/caf" bench step --device cuda \
    --size 64 --batch 2 --widths 16,8 --steps 2 --warmup 1 --augment
  step memcheck-graph-bf16 compute-sanitizer --tool memcheck --error-exitcode 9 "$B/caf" bench step --device cuda \
    --size 64 --batch 2 --widths 16,8 --steps 2 --warmup 1 --augment --graph --precision bf16
  # Channels-last activations (bf16 activations with channels-last convolutions: the channels-last
  # batch norm kernels, the transposes), from a graph.
  step memcheck-bf16act compute-sanitizer --tool memcheck --error-exitcode 9 "$B/caf" bench step --device cuda \
    --size 64 --batch 2 --widths 16,8 --steps 2 --warmup 1 --augment --graph --precision bf16 --activations bf16 \
    --layout nhwc
  # The fused batch norm + ReLU kernels (shared-memory reductions): races and bounds on their cases.
  step racecheck-bn-relu compute-sanitizer --tool racecheck --error-exitcode 9 "$B/tests/caf_ops" parity batchnorm_relu
  step memcheck-bn-relu compute-sanitizer --tool memcheck --error-exitcode 9 "$B/tests/caf_ops" parity batchnorm_relu
  step racecheck-bn-relu-last compute-sanitizer --tool racecheck --error-exitcode 9 "$B/tests/caf_tests" \
    --test-suite=gpu --test-case="*bf16 activations' ops*"
  step racecheck-kdev-bn-relu compute-sanitizer --tool racecheck --error-exitcode 9 "$B/bench/kdev_batchnorm_relu" --quick
  step racecheck-augment compute-sanitizer --tool racecheck --error-exitcode 9 "$B/tests/caf_tests" \
    --test-suite=gpu --test-case='*simulation*'
fi
compile_timing wait

# A real training run on MVTec bottle at the paper's shapes, as many epochs as fit (data carried
# in .carry/data: mvtec_bottle_256 and dtd_thumbs), then its evaluation (docs/results.md).
DATA=${CAF_DATA:-.carry/data}
if [ -d "$DATA/mvtec_bottle_256/bottle" ] && [ "${CAF_BOTTLE_EPOCHS:-30}" != 0 ]; then
  TEX=""
  [ -d "$DATA/dtd_thumbs" ] && TEX="--textures $DATA/dtd_thumbs"
  step train-bottle "$B/caf" train --data "$DATA/mvtec_bottle_256" --class bottle --preset paper \
    --epochs "${CAF_BOTTLE_EPOCHS:-30}" $TEX --out /tmp/bottle_paper --device cuda
  step eval-bottle "$B/caf" eval --model /tmp/bottle_paper --data "$DATA/mvtec_bottle_256" \
    --class bottle --max-images 8 --device cuda
fi

echo; echo "=== summary${CAF_RESUME:+ (both calls)}"
cat "$RES/summary.txt"
if [ -n "$PY" ]; then
  echo; echo "=== issue 7 table (bench/summary.py $RES)"
  $PY bench/summary.py "$RES"
fi
# The device tool returns at most 8 files: every result travels in one archive.
tar czf "$OUTDIR/results.tgz" -C "$RES" . && echo "results: $OUTDIR/results.tgz"
