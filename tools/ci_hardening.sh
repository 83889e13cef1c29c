#!/usr/bin/env bash
# tools/ci_hardening.sh: the sanitizer and fuzzing step of CI (.ci/run runs it after tools/test.sh).
#
# One extra CPU build, build-asan, with clang: every library under AddressSanitizer and UBSan, plus
# the libFuzzer targets of tests/fuzz. It runs the CPU unit tests and the gradient checks under the
# sanitizers, then each fuzz target on its seed corpus. Any sanitizer report, uncaught exception or
# crash fails CI; a fuzzer's crashing input is kept in build-asan/fuzz-artifacts/ for the log.
# Sized for about 12 minutes on 2 cores (the whole of .ci/run took 16-19 minutes here).
#
# CI's fuzzing is a fixed sequence, so its verdict depends on the code and not on the draw: each
# target replays the mutations of seed CAF_FUZZ_SEED (default 1) for a fixed number of inputs
# (CAF_FUZZ_RUNS, default per target below: about 30 s each on a 2-core machine), stopping
# earlier after CAF_FUZZ_SECONDS (default 30) on a slow machine, which then runs a prefix of the
# same sequence. Running this script here therefore runs CI's sequence (up to the order of seed
# files of equal size, which libFuzzer takes from the directory listing).
# New inputs come from longer campaigns with fresh draws (CAF_FUZZ_SEED=0: libFuzzer picks one and
# prints it; CAF_FUZZ_RUNS=-1: no limit), e.g.
#   CAF_FUZZ_SEED=0 CAF_FUZZ_RUNS=-1 CAF_FUZZ_SECONDS=600 bash tools/ci_hardening.sh
# and what they find goes into tests/fuzz/corpus/<target>/regress_* with a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v clang++ >/dev/null 2>&1; then
  echo "ci_hardening: installing clang"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang >/dev/null
fi
BUILD=${BUILD_ASAN:-build-asan}
SECONDS_EACH=${CAF_FUZZ_SECONDS:-30}
SEED=${CAF_FUZZ_SEED:-1}
default_runs() {  # inputs per target: about 30 s each here, half of what seed 1 ran clean in 60 s
  case $1 in     # (2-core EPYC: image 45,355, safetensors 1,007,188, config 327,513, dataset 34,124)
    fuzz_image) echo 22000 ;;
    fuzz_safetensors) echo 500000 ;;
    fuzz_config) echo 160000 ;;
    fuzz_dataset) echo 17000 ;;
  esac
}
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja \
  -DCAF_CUDA=OFF -DCAF_FUZZ=ON -DCAF_SANITIZE=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target caf_tests caf_ops \
  fuzz_image fuzz_safetensors fuzz_config fuzz_dataset

# allocator_may_return_null: the out-of-memory tests ask for 2^62 bytes on purpose and expect caf::OutOfMemory.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export CAF_DEVICE=cpu
echo "ci_hardening: unit tests under ASan + UBSan"
"$BUILD/tests/caf_tests" --test-suite-exclude=gpu,slow
echo "ci_hardening: gradient checks under ASan + UBSan"
"$BUILD/tests/caf_ops" grad

# One thread per fuzzer: the dataset loader's OpenMP loop would otherwise oversubscribe the cores.
export OMP_NUM_THREADS=1
mkdir -p "$BUILD/fuzz-artifacts"
for target in fuzz_image fuzz_safetensors fuzz_config fuzz_dataset; do
  runs=${CAF_FUZZ_RUNS:-$(default_runs $target)}
  echo "ci_hardening: $target, seed $SEED, $runs inputs or ${SECONDS_EACH}s"
  # The corpus is copied so that what the fuzzer adds stays out of the source tree, into a fresh
  # folder each time, as on CI's clean clone (the sequence depends on the starting corpus).
  work="$BUILD/fuzz-corpus/$target"
  rm -rf "$work"
  mkdir -p "$work"
  cp tests/fuzz/corpus/$target/* "$work/"
  "$BUILD/tests/fuzz/$target" -seed="$SEED" -runs="$runs" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$target-" "$work"
done
echo "ci_hardening: clean"
