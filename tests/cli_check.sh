#!/bin/sh
# tests/cli_check.sh CAF WORKDIR: the caf command line end to end on a tiny toy class, in seconds:
# make-toy -> train (2 epochs, micro widths) -> eval -> infer -> simulate (twice: byte-identical)
# -> report; then the errors a user meets first. Run by ctest (cli_end_to_end).
set -eu
CAF=$1
D=$2
rm -rf "$D"
mkdir -p "$D"
export CAF_DEVICE=cpu
"$CAF" make-toy --out "$D/data" --kind texture --size 64 --train 6 --test-good 3 --test-per-defect 1 --name toy >/dev/null
echo '{"size": 32, "recon_width": 4, "discr_width": 2, "batch": 2, "epochs": 2, "procedural_textures": 4}' >"$D/micro.json"
"$CAF" train --data "$D/data" --class toy --config "$D/micro.json" --out "$D/model" >"$D/train.log"
grep -q 'trained 6 steps' "$D/train.log"
test -f "$D/model/model.safetensors" && test -f "$D/model/config.json" && test -f "$D/model/train_log.jsonl"
"$CAF" eval --model "$D/model" --data "$D/data" --class toy --save-maps >"$D/eval.log"
grep -q 'image AUROC' "$D/eval.log"
for f in metrics.json roc.png pr.png maps.npy scores.npy; do test -f "$D/model/eval/$f"; done
test "$(ls "$D/model/eval/heatmaps" | wc -l)" -eq 7
"$CAF" infer --model "$D/model" --out "$D/infer" "$D/data/toy/test/hole/000.png" >"$D/infer.log"
test -f "$D/infer/000_heatmap.png"
for run in a b; do
  "$CAF" simulate --data "$D/data" --class toy --out "$D/sim_$run" --size 64 >/dev/null
done
diff -r "$D/sim_a" "$D/sim_b"  # deterministic from the seed
for g in cutpaste nsa ndaa opaque transparent; do
  test "$(ls "$D/sim_a/$g/toy/test/$g" | wc -l)" -eq 3
  test "$(ls "$D/sim_a/$g/toy/ground_truth/$g" | wc -l)" -eq 3
done
"$CAF" report --model "$D/model" --bench "$D/sim_a" --class toy >"$D/report.log"
grep -q '| transparent \* |' "$D/report.log"
"$CAF" eval --model "$D/model" --data "$D/sim_a/nsa" --class toy --out "$D/eval_nsa" >/dev/null  # unchanged eval
test -f "$D/eval_nsa/metrics.json"
test -f "$D/model/report/report.json"
# The step benchmark's whole surface at micro size: graph replay, bf16, per-op times, trace, JSON,
# the loss tracking the correctness gate reads, and train's graph mode.
"$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 --steps 2 --warmup 1 --augment --ops \
  --precision bf16 --trace "$D/trace.json" --json "$D/bench.json" >"$D/bench.log"
grep -q 'host round trips per step: 0.00 copies, 0.00 synchronisations' "$D/bench.log"
grep -q 'fwd conv2d' "$D/bench.log"
grep -q '"ph": "X"' "$D/trace.json" && grep -q '"phases_ms"' "$D/bench.json"
# The phase table in the order the split step runs: R's backward before S's forward.
sed -nE 's/^ +(backward \(R\)|R forward \(Y|S forward|backward \(S\)|optimizer)[ ,].*/\1/p' "$D/bench.log" \
  | tr '\n' '|' | grep -qx 'backward (R)|R forward (Y|S forward|backward (S)|optimizer|'
"$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 --steps 2 --warmup 1 --augment --graph --ops >"$D/graph.log"
grep -q 'CUDA graph: one step captured' "$D/graph.log"
grep -q 'profiled eager steps' "$D/graph.log" && grep -q 'bwd conv2d' "$D/graph.log"  # --ops after the replays
"$CAF" checkpoint-new --widths 4,2 --out "$D/init.safetensors" >/dev/null
"$CAF" bench step --device cpu --size 32 --batch 2 --track 2 --init "$D/init.safetensors" --json "$D/track.json" >/dev/null
grep -q '"track"' "$D/track.json"
"$CAF" train --data "$D/data" --class toy --config "$D/micro.json" --out "$D/model_graph" --graph >"$D/train_graph.log"
grep -q 'CUDA graph: the step is captured' "$D/train_graph.log"
cmp "$D/model/model.safetensors" "$D/model_graph/model.safetensors"  # graph mode trains the same
"$CAF" train --data "$D/data" --class toy --config "$D/micro.json" --out "$D/model_bf16act" --precision bf16 \
  --activations bf16 >/dev/null
grep -q '"activations": "bf16"' "$D/model_bf16act/config.json"
"$CAF" eval --model "$D/model_bf16act" --data "$D/data" --class toy >"$D/eval_bf16act.log"
grep -q 'image AUROC' "$D/eval_bf16act.log"
if "$CAF" bench step --device cpu --precision fp16 2>"$D/err.log"; then exit 1; fi
grep -q "unknown precision 'fp16'" "$D/err.log"
# The A/B switches: run 8's configuration (unfused, nothing recomputed) and channels-last bf16.
"$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 --steps 1 --warmup 0 --fuse off --recompute off \
  --write-first off --json "$D/unfused.json" >/dev/null
grep -q '"fused_bn_relu": false' "$D/unfused.json" && grep -q '"recompute_activations": false' "$D/unfused.json"
grep -q '"write_first_gradients": false' "$D/unfused.json"
CAF_FUSE=0 CAF_RECOMPUTE=0 CAF_WRITE_FIRST=0 "$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 \
  --steps 1 --warmup 0 >"$D/env_off.log"
grep -q 'fused batch norm + ReLU: off, recompute: off, write-first: off' "$D/env_off.log"
"$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 --steps 1 --warmup 0 --precision bf16 --layout nhwc \
  >"$D/nhwc.log"
grep -q 'layout: nhwc' "$D/nhwc.log"
if "$CAF" bench step --device cpu --layout nhwc 2>"$D/err.log"; then exit 1; fi
grep -q 'bf16 mixed precision only' "$D/err.log"
# bf16 activations (with channels-last convolutions too), and the switch's preconditions.
"$CAF" bench step --device cpu --size 32 --widths 8,8 --batch 2 --steps 1 --warmup 0 --precision bf16 \
  --activations bf16 --layout nhwc --json "$D/bf16act.json" >"$D/bf16act.log"
grep -q 'activations: bf16' "$D/bf16act.log" && grep -q '"activations": "bf16"' "$D/bf16act.json"
# bf16 gradients (the default with bf16 activations) against fp32 gradient buffers: the same
# second-step losses (the first update is the same, bit for bit); CAF_BF16_GRADS=0 turns them off.
grep -q '"bf16_gradients": true' "$D/bf16act.json"
for g in on off; do
  "$CAF" bench step --device cpu --size 32 --widths 8,8 --batch 2 --steps 2 --warmup 0 --precision bf16 \
    --activations bf16 --layout nhwc --bf16-grads $g --json "$D/grads_$g.json" >"$D/grads_$g.log"
done
grep -q 'bf16 gradients: off' "$D/grads_off.log"
# The losses block of the JSON, at full precision (nlohmann prints the shortest exact digits).
losses() { sed -n '/"losses"/,/}/p' "$1"; }
[ -n "$(losses "$D/grads_on.json")" ] && [ "$(losses "$D/grads_on.json")" = "$(losses "$D/grads_off.json")" ]
CAF_BF16_GRADS=0 "$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 --steps 1 --warmup 0 \
  --json "$D/env_grads.json" >/dev/null
grep -q '"bf16_gradients": false' "$D/env_grads.json"
if "$CAF" bench step --device cpu --bf16-grads maybe 2>"$D/err.log"; then exit 1; fi
grep -q -- '--bf16-grads is on' "$D/err.log"
if "$CAF" bench step --device cpu --activations bf16 2>"$D/err.log"; then exit 1; fi
grep -q 'needs --precision bf16' "$D/err.log"
# The memory census: the model's bytes under "parameters", R's convolutions' outputs, a peak that is the
# step's peak (the two "peak_mib" values of the JSON print alike); not with --graph.
"$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 --steps 1 --warmup 1 --memory \
  --json "$D/memory.json" >"$D/memory.log"
grep -q 'memory at the peak' "$D/memory.log" && grep -q '^    parameters  ' "$D/memory.log"
grep -q 'R forward · fwd conv2d  ' "$D/memory.log"
[ "$(grep -o '"peak_mib": [0-9.e+-]*' "$D/memory.json" | sort -u | wc -l)" = 1 ]
[ "$(grep -c '"peak_mib"' "$D/memory.json")" = 2 ]
# per phase, in the step's order; the step's peak is one phase's
grep -q '"phases"' "$D/memory.json" && [ "$(grep -c '<- the peak$' "$D/memory.log")" = 1 ]
sed -n '/peak in use by phase/,/phases (median/p' "$D/memory.log" | grep -q '^    backward (R)  '
if "$CAF" bench step --device cpu --memory --graph 2>"$D/err.log"; then exit 1; fi
grep -q 'drop --graph' "$D/err.log"
# Every convolution alone: one row per distinct layer; the per-step FLOPs are bench step's (two
# counts made separately: the layer list with its per-step multiplicities, the networks' analytic
# count), and the layers' counts add up to both networks' convolutions (R 23 + S 28).
"$CAF" bench convs --device cpu --size 32 --widths 4,2 --batch 2 --trials 1 --calls 1 --json "$D/convs.json" \
  >"$D/convs.log"
"$CAF" bench step --device cpu --size 32 --widths 4,2 --batch 2 --steps 1 --warmup 0 --json "$D/step.json" >/dev/null
grep -q 'distinct layers of 51 convolutions' "$D/convs.log" && grep -q '^  R   3->4 @32x32 (first) ' "$D/convs.log"
[ "$(grep -o '"flops_per_step": [0-9.e+-]*' "$D/convs.json" | sed 's/.*: //')" = \
  "$(grep -o '"conv_flops_per_step": [0-9.e+-]*' "$D/step.json" | sed 's/.*: //')" ]
[ "$(grep -o '"count": [0-9]*' "$D/convs.json" | awk '{n += $2} END {print n}')" = 51 ]
[ "$(grep -c '"first": true' "$D/convs.json")" = 2 ]
"$CAF" bench convs --device cpu --size 32 --widths 4,2 --batch 2 --trials 1 --calls 1 --precision bf16 --layout nhwc \
  | grep -q 'precision bf16, layout nhwc'
if "$CAF" bench convs --device cpu --layout nhwc 2>"$D/err.log"; then exit 1; fi
grep -q 'add --precision bf16' "$D/err.log"
# Errors name the problem and exit non-zero.
if "$CAF" train --data "$D/nowhere" --class toy --out "$D/x" >/dev/null 2>"$D/err.log"; then exit 1; fi
grep -q 'nowhere' "$D/err.log"
if "$CAF" simulate --data "$D/data" --class toy --out "$D/x" --generators cutpaste,scratch 2>"$D/err.log"; then exit 1; fi
grep -q "unknown generator 'scratch'" "$D/err.log"
if "$CAF" eval --model "$D/data" --data "$D/data" --class toy 2>"$D/err.log"; then exit 1; fi
grep -q 'config.json: missing' "$D/err.log"
echo '{"epochs": 3,' >"$D/bad.json"
if "$CAF" train --data "$D/data" --class toy --config "$D/bad.json" --out "$D/x" >/dev/null 2>"$D/err.log"; then exit 1; fi
grep -q 'bad.json: not valid JSON' "$D/err.log"
echo "cli end to end: ok"
rm -rf "$D"
