#!/usr/bin/env bash
# One-shot check on a bare GPU machine (CUDA toolkit, cmake, ninja; no Debian dev
# packages, no network): configure against the carried .deps/ (scripts/carry-deps.sh),
# build for sm_90, run the `gpu` tests, the GPU benchmark (which also compares the seed
# experiment on CPU and GPU), and print a short table last. Results go to $OUT (or
# ./gpu-check-out).
#   bench/gpu-check.sh             # on the GPU machine
#   bench/gpu-check.sh --dry-run   # elsewhere: configure with /usr ignored, build, run
#                                  # the gpu tests (they skip); no benchmark
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu-check-out}"
mkdir -p "$out"
build="${UNDERSPEC_GPU_BUILD:-$root/build-gpu-check}"
arch="${UNDERSPEC_CUDA_ARCH:-90}"
dry=0
[[ "${1:-}" == "--dry-run" ]] && dry=1
log() { echo "[gpu-check] $*" | tee -a "$out/summary.txt"; }
: > "$out/summary.txt"

if [[ ! -d "$root/.deps/usr/include" ]]; then
  log "missing .deps/: run scripts/carry-deps.sh on a Debian 12 machine and carry .deps along"
  exit 1
fi
command -v nvcc > /dev/null || export PATH="/usr/local/cuda/bin:$PATH"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/device.txt" 2>&1 || true

# Ignoring /usr proves the dependencies resolve from .deps alone (as on a bare machine).
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DUNDERSPEC_DEPS_ROOT="$root/.deps" -DCMAKE_IGNORE_PREFIX_PATH=/usr > "$out/configure.log" 2>&1; then
  tail -n 30 "$out/configure.log"
  log "configure FAILED (see $out/configure.log)"
  exit 1
fi
grep -E '^(GTest_DIR|nlohmann_json_DIR|TOMLPP_INCLUDE_DIR|CLI11_INCLUDE_DIR)[:=]' "$build/CMakeCache.txt" \
  | tee "$out/deps.txt"
if grep -E '^(GTest_DIR|nlohmann_json_DIR|TOMLPP_INCLUDE_DIR|CLI11_INCLUDE_DIR)[:=]' "$build/CMakeCache.txt" \
    | grep -v "$root/.deps" > /dev/null; then
  log "WARNING: some dependencies did not resolve from .deps (see $out/deps.txt)"
fi

start=$(date +%s)
if ! cmake --build "$build" -j "$(nproc)" > "$out/build.log" 2>&1; then
  grep -E 'error|FAILED' "$out/build.log" | head -n 30
  log "build FAILED (see $out/build.log)"
  exit 1
fi
log "build OK in $(( $(date +%s) - start )) s (sm_$arch)"

ctest_status=0
ctest --test-dir "$build" -L gpu --output-on-failure --timeout 900 > "$out/ctest-gpu.log" 2>&1 || ctest_status=$?
gpu_summary="$(grep -E 'tests passed|No tests were found' "$out/ctest-gpu.log" | tail -n 1)"
log "gpu tests: ${gpu_summary:-see ctest-gpu.log} (exit $ctest_status)"

if (( dry )); then
  log "dry run: no benchmark"
  exit $ctest_status
fi

bench_status=0
"$build/bench/gpu/underspec_gpu_bench" --json "$out/gpu_bench.json" > "$out/bench.txt" 2> "$out/bench.err" || bench_status=$?
# The seed experiment through the CLI on both backends (wall time, replicas.csv).
for device in cuda cpu; do
  /usr/bin/time -f "%e s" -o "$out/seed-$device.time" "$build/underspec" run --device "$device" \
    --out "$out/seed-$device" > "$out/seed-$device.txt" 2>&1 || log "underspec run --device $device failed"
done

echo
echo "==== gpu-check summary ($(cat "$out/device.txt" 2>/dev/null | head -n 1)) ===="
cat "$out/summary.txt"
echo "seed experiment wall: cuda $(cat "$out/seed-cuda.time" 2>/dev/null), cpu $(cat "$out/seed-cpu.time" 2>/dev/null)"
cat "$out/bench.txt"
[[ $bench_status -ne 0 ]] && { echo "benchmark FAILED:"; tail -n 5 "$out/bench.err"; }
exit $(( ctest_status != 0 || bench_status != 0 ))
