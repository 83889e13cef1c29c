#!/bin/sh
# tests/kill_resume.sh CAF WORKDIR: a training run killed with SIGKILL (no handler runs, no
# checkpoint is saved on the way out) resumes from its last periodic checkpoint, and one stopped
# with SIGINT from the checkpoint its handler saves; both end exactly where an uninterrupted run
# ends: the same losses at every step, bit for bit, and a byte-identical
# model.safetensors (its metadata holds only the format, step counts and config, nothing
# run-specific). CPU training is bit-deterministic, which is what makes "exactly" testable; on a
# GPU it holds with the default algorithms ("reproducible": cuDNN's heuristics, the same choice in
# every process; run 9 on an H200) and not with "deterministic" (each process times cuDNN's
# algorithms afresh: run 9's runs differed from the second logged step).
# Run by ctest (kill_resume); sh, grep, sed, awk and cmp only.
set -eu
CAF=$1
D=$2
rm -rf "$D"
mkdir -p "$D"
# CAF_KILL_RESUME_DEVICE=cuda runs it on the GPU (tools/gpu_check.sh's kill-resume-gpu steps; the
# runs must say so), CAF_KILL_RESUME_ALGORITHMS sets the config's "algorithms" (default: the
# trainer's), CAF_KILL_RESUME_EPOCHS the length (default 12 epochs of 3 steps; a GPU runs them
# so fast that the signals need a longer run); ctest runs it on the CPU.
DEVICE=${CAF_KILL_RESUME_DEVICE:-cpu}
if [ "$DEVICE" = cpu ]; then export CAF_DEVICE=cpu; else unset CAF_DEVICE; fi
EPOCHS=${CAF_KILL_RESUME_EPOCHS:-12}
STEPS=$((3 * EPOCHS))
fail() {
  echo "kill_resume: $*" >&2
  exit 1
}

"$CAF" make-toy --out "$D/data" --kind texture --size 64 --train 6 --test-good 2 --test-per-defect 1 --name toy >/dev/null
# 6 images, batch 2: 3 steps per epoch, 36 steps (by default); a checkpoint every 4 steps.
echo '{"size": 32, "recon_width": 4, "discr_width": 2, "batch": 2, "epochs": '"$EPOCHS"', "log_every": 1,
 "checkpoint_every": 4, "procedural_textures": 4'"${CAF_KILL_RESUME_ALGORITHMS:+, \"algorithms\": \"$CAF_KILL_RESUME_ALGORITHMS\"}"'}' >"$D/micro.json"
train() {
  "$CAF" train --data "$D/data" --class toy --config "$D/micro.json" --out "$1"
}

train "$D/a" >"$D/a.out"
test "$(wc -l <"$D/a/train_log.jsonl")" -eq "$STEPS" || fail "run A logged $(wc -l <"$D/a/train_log.jsonl") steps, not $STEPS"
if [ "$DEVICE" != cpu ]; then grep -q ", on $DEVICE" "$D/a.out" || fail "run A did not train on $DEVICE: $(cat "$D/a.out")"; fi

# start_and_stop RUN SIGNAL: train RUN in the background and send SIGNAL once it has logged 10
# steps (so at least two checkpoints were written); fails if the run ended before that.
start_and_stop() {
  # Not through train(): a backgrounded function is a subshell, and the signal must reach caf.
  "$CAF" train --data "$D/data" --class toy --config "$D/micro.json" --out "$D/$1" >"$D/$1.out" 2>&1 &
  pid=$!
  polls=0
  while :; do
    lines=$(cat "$D/$1/train_log.jsonl" 2>/dev/null | wc -l)
    test "$lines" -ge 10 && break
    kill -0 "$pid" 2>/dev/null || fail "run $1 ended before logging 10 steps: $(cat "$D/$1.out")"
    polls=$((polls + 1))
    test "$polls" -lt 6000 || fail "run $1 logged only $lines steps in 10 minutes"
    sleep 0.1
  done
  kill -s "$2" "$pid"
  status=0
  { wait "$pid" || status=$?; } 2>/dev/null  # no "Killed" from the shell
  test "$status" -ne 0 || fail "run $1 ended normally despite SIG$2"
  test ! -f "$D/$1/model.safetensors" || fail "run $1 finished before SIG$2; the test proved nothing"
  test "$(wc -l <"$D/$1/train_log.jsonl")" -lt "$STEPS" || fail "run $1 logged every step before SIG$2"
  test -f "$D/$1/checkpoint.safetensors" || fail "no checkpoint after SIG$2"
}
resume() {
  "$CAF" train --data "$D/data" --class toy --out "$D/$1" --resume >"$D/$1_resume.out" ||
    fail "the resume of $1 failed: $(cat "$D/$1_resume.out")"
  grep -q 'resumed from .*checkpoint.safetensors at step' "$D/$1_resume.out" || fail "$1 did not load its checkpoint"
}

# B: SIGKILL, no handler runs. A leftover checkpoint.safetensors.tmp (a write the kill cut short)
# is harmless; the checkpoint itself must be whole, which the resume proves by loading it.
start_and_stop b KILL
killed_at=$(wc -l <"$D/b/train_log.jsonl")
resume b
# C: SIGINT (Ctrl-C): caf saves a checkpoint at the current step and exits with 130.
start_and_stop c INT
grep -q 'interrupted at step .*continue with --resume' "$D/c.out" || fail "SIGINT did not save a checkpoint: $(cat "$D/c.out")"
resume c

# Losses per step: "step l2 ssim focal", the LAST line of each step (steps between the last
# checkpoint and the kill were logged twice; the second time is the run that counts).
losses() {
  sed -e 's/.*"focal":\([^,}]*\).*"l2":\([^,}]*\).*"ssim":\([^,}]*\).*"step":\([^,}]*\).*/\4 \2 \3 \1/' "$1" |
    awk '{ last[$1] = $0 } END { for (s in last) print last[s] }' | sort -n
}
losses "$D/a/train_log.jsonl" >"$D/a.losses"
test "$(wc -l <"$D/a.losses")" -eq "$STEPS" || fail "could not read the losses of run A (is the log format changed?)"
grep -q "^$STEPS [0-9]" "$D/a.losses" || fail "run A's log has no step $STEPS with losses"
for run in b c; do
  losses "$D/$run/train_log.jsonl" >"$D/$run.losses"
  cmp "$D/a.losses" "$D/$run.losses" || fail "run $run's losses after the resume differ from run A's"
  cmp "$D/a/model.safetensors" "$D/$run/model.safetensors" || fail "run $run's model differs from run A's"
done
echo "kill_resume ($DEVICE, $STEPS steps): SIGKILL after $killed_at logged steps and SIGINT, resumed: every loss and the model identical"
rm -rf "$D"
