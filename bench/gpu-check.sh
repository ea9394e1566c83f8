#!/usr/bin/env bash
# The first run on a GPU machine, staged so that every minute is informative: each step runs
# under its own `timeout` and appends one line to $OUT/summary.txt as it ends, and the logs
# are re-packed into $OUT/logs.tar.gz after every step, so a killed run still reports what
# it reached. Four files come back: summary.txt, logs.tar.gz, underspec_bench.json, gpu_bench.json.
#
#   bench/gpu-check.sh --prebuild   # here (no GPU): build sm_90 binaries into .gpu-prebuilt/
#   bench/gpu-check.sh --dry-run    # here: every step runs or skips cleanly (no GPU)
#   bench/gpu-check.sh              # on the GPU machine (carry .gpu-prebuilt and .deps)
#
# Steps: environment -> binaries (the carried prebuilt ones if they start there, else a
# build of the GPU targets against .deps/) -> kernel tests and backend tests with
# CUDA_LAUNCH_BLOCKING=1, the cuBLAS graph tests without it -> the seed experiment through the CLI on both backends, compared
# (and on the GPU with its launch groups concurrent and one at a time: the same bytes)
# -> compute-sanitizer memcheck/racecheck/synccheck on tiny runs (one with width 128, one of
# perceptron lanes) ->
# sweeps of 3000 MLPs (one and two CTAs per SM; generic kernels: the same bytes) and 10^5
# perceptrons (a lane and a warp each: the same bytes) -> the
# GPU benchmark (`underspec bench`, then the developer harness) -> Nsight Compute on the fused
# MLP and lane perceptron kernels. UNDERSPEC_GPU_CHECK_STEPS="env binaries tests" runs a subset;
# UNDERSPEC_GPU_CHECK_BIN=DIR uses the binaries in DIR (ctest GpuCheckDryRun does, with --dry-run).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:-run}"
# Anything but the three modes is a usage error: a typo must not start a full run.
case "$mode $#" in
  "run 0" | "--prebuild 1" | "--dry-run 1") ;;
  *) echo "gpu-check.sh: unknown arguments: $*" >&2; sed -n '7,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
arch="${UNDERSPEC_CUDA_ARCH:-90}"
prebuilt="$root/.gpu-prebuilt"
gpu_targets=(underspec underspec_gpu_tests underspec_gpu_bench)

if [[ "$mode" == "--prebuild" ]]; then
  # Portable host code (no -march=native: the GPU machine's CPU differs), line info for
  # compute-sanitizer's reports. cudart is static and cuBLAS is opened at run time.
  build="$root/build-gpu-prebuilt"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DUNDERSPEC_NATIVE=OFF -DCMAKE_CUDA_FLAGS=-lineinfo > /dev/null || exit 1
  cmake --build "$build" --target "${gpu_targets[@]}" || exit 1
  rm -rf "$prebuilt" && mkdir -p "$prebuilt"
  cp "$build/underspec" "$build/tests/gpu/underspec_gpu_tests" "$build/bench/gpu/underspec_gpu_bench" "$prebuilt/"
  strip --strip-debug "$prebuilt"/* 2> /dev/null || true
  { git rev-parse HEAD; git status --porcelain --untracked-files=no; } > "$prebuilt/REVISION"
  du -sh "$prebuilt"
  exit 0
fi

out="${OUT:-$root/gpu-check-out}"
work="${UNDERSPEC_GPU_CHECK_WORK:-/tmp/underspec-gpu-check}"
rm -rf "$work" && mkdir -p "$out" "$work/logs"
summary="$out/summary.txt"
: > "$summary"
steps="${UNDERSPEC_GPU_CHECK_STEPS:-env binaries tests seed sanitizer scale bench ncu}"
failures=0
t_start=$(date +%s)

log() { echo "[gpu-check +$(( $(date +%s) - t_start ))s] $*" | tee -a "$summary"; }
pack() { tar -C "$work" -czf "$out/logs.tar.gz.tmp" logs 2> /dev/null && mv "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"; }
wanted() { [[ " $steps " == *" $1 "* ]]; }
# step NAME SECONDS CMD...: run CMD under timeout, log to logs/NAME.log, one summary line.
step() {
  local name="$1" limit="$2"
  shift 2
  local t0=$(date +%s) rc=0
  timeout --kill-after=5 "$limit" "$@" > "$work/logs/$name.log" 2>&1 || rc=$?
  local took=$(( $(date +%s) - t0 ))
  if (( rc == 0 )); then
    log "$name: ok (${took}s)"
  elif (( rc == 124 || rc == 137 )); then
    log "$name: TIMED OUT after ${limit}s"
    failures=$((failures + 1))
  else
    log "$name: FAILED rc=$rc (${took}s); last lines:"
    tail -n 8 "$work/logs/$name.log" | sed 's/^/    /' | tee -a "$summary"
    failures=$((failures + 1))
  fi
  pack
  return $rc
}

command -v nvcc > /dev/null || export PATH="/usr/local/cuda/bin:$PATH"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
have_gpu=0
nvidia-smi -L > /dev/null 2>&1 && have_gpu=1

if wanted env; then
  {
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1
    nvcc --version 2>&1 | tail -n 1
    cmake --version 2>&1 | head -n 1
    g++ --version 2>&1 | head -n 1
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo) x $(nproc)"
    for tool in compute-sanitizer ncu cuobjdump ninja python3; do echo "$tool: $(command -v $tool || echo missing)"; done
  } > "$work/logs/env.log" 2>&1
  sed 's/^/    /' "$work/logs/env.log" | tee -a "$summary" > /dev/null
  log "env: gpu present=$have_gpu"
  pack
fi

bin=""
if [[ -n "${UNDERSPEC_GPU_CHECK_BIN:-}" ]]; then
  # Binaries given (underspec, underspec_gpu_tests, underspec_gpu_bench in one folder): the
  # ctest GpuCheckDryRun rehearses the script with the build's own.
  bin="$UNDERSPEC_GPU_CHECK_BIN"
  log "binaries: given ($bin)"
elif wanted binaries; then
  if [[ -x "$prebuilt/underspec" ]] && step prebuilt-starts 30 "$prebuilt/underspec_gpu_tests" --gtest_list_tests &&
    step prebuilt-cli 30 "$prebuilt/underspec" --version; then
    bin="$prebuilt"
    log "binaries: carried prebuilt ($(head -n 1 "$prebuilt/REVISION" 2> /dev/null))"
    # Binaries older than the checkout would spend the GPU's minutes on old code: where git
    # can tell (here, in the dry run), REVISION must match HEAD and its tracked changes.
    if checkout=$({ git rev-parse HEAD && git status --porcelain --untracked-files=no; } 2> /dev/null) &&
      [[ "$checkout" != "$(cat "$prebuilt/REVISION" 2> /dev/null)" ]]; then
      log "prebuilt-current: FAILED: .gpu-prebuilt is not this checkout's build (HEAD $(git rev-parse --short HEAD)); run bench/gpu-check.sh --prebuild"
      failures=$((failures + 1))
    fi
  else
    [[ -d "$root/.deps/usr/include" ]] || log "no .deps/: the build relies on the machine's own packages"
    build="${UNDERSPEC_GPU_BUILD:-$root/build-gpu-check}"
    deps=()
    [[ -d "$root/.deps/usr/include" ]] &&
      deps=(-DUNDERSPEC_DEPS_ROOT="$root/.deps" -DCMAKE_IGNORE_PREFIX_PATH=/usr)
    step configure 120 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_CUDA_FLAGS=-lineinfo "${deps[@]}" &&
      step build 420 cmake --build "$build" -j "$(nproc)" --target "${gpu_targets[@]}" &&
      mkdir -p "$work/bin" &&
      cp "$build/underspec" "$build/tests/gpu/underspec_gpu_tests" "$build/bench/gpu/underspec_gpu_bench" "$work/bin/" &&
      bin="$work/bin"
  fi
fi
if [[ -z "$bin" ]]; then
  log "no binaries: stopping"
  exit 1
fi

if wanted tests; then
  # Kernels first (the smallest units), then the backend; each blocking so a fault names
  # the launch that caused it.
  CUDA_LAUNCH_BLOCKING=1 step gpu-kernel-tests 120 "$bin/underspec_gpu_tests" --gtest_filter='GpuKernels.*'
  CUDA_LAUNCH_BLOCKING=1 step gpu-backend-tests 240 "$bin/underspec_gpu_tests" --gtest_filter='GpuBackend.*'
  # The cuBLAS variant's CUDA graphs against its one-by-one launches, and no allocation while
  # training; not blocking, so that a capture problem under CUDA_LAUNCH_BLOCKING (the step
  # above) is told apart from one of the graphs themselves.
  step gpu-cublas-graph-tests 180 "$bin/underspec_gpu_tests" --gtest_filter='GpuCublasGraph.*'
  # The bootstrap's resamples on the GPU (Thrust) against the CPU's, bit for bit.
  UNDERSPEC_TEST_BINARY="$bin/underspec" CUDA_LAUNCH_BLOCKING=1 step gpu-bootstrap-tests 180 \
    "$bin/underspec_gpu_tests" --gtest_filter='GpuBootstrap.*:Cli.GpuBootstrap*'
  # `underspec bench --device cuda --quick` through the library and the binary (not blocking: timed).
  UNDERSPEC_TEST_BINARY="$bin/underspec" step gpu-bench-tests 120 "$bin/underspec_gpu_tests" \
    --gtest_filter='GpuBench.*:Cli.GpuBench*'
  grep -hE '^\[ +(PASSED|FAILED|SKIPPED) +\] [0-9]+ test|^\[ +FAILED +\] Gpu.*\(' "$work/logs"/gpu-*-tests.log | sed 's/^/    /' | tee -a "$summary"
fi

tiny=(--no-report --progress none --set sweep.seeds=2 --set data.n_train=200 --set data.n_test=100
  --set train.epochs=2 --set train.batch_size=48)
if wanted seed; then
  if (( have_gpu )); then
    UNDERSPEC_CUDA_PROFILE=1 step seed-cuda 120 "$bin/underspec" run --device cuda --no-report --out "$work/seed-cuda"
    # The same with its two launch groups (perceptrons, MLPs) one after another: same bytes.
    UNDERSPEC_CUDA_PROFILE=1 UNDERSPEC_CUDA_CONCURRENT_GROUPS=1 step seed-cuda-serial 120 "$bin/underspec" run \
      --device cuda --no-report --out "$work/seed-cuda-serial"
    step seed-concurrent-same-bytes 10 cmp "$work/seed-cuda/replicas.csv" "$work/seed-cuda-serial/replicas.csv"
    grep -h 'launch groups' "$work"/logs/seed-cuda.log "$work"/logs/seed-cuda-serial.log 2> /dev/null |
      sed 's/^/    /' | tee -a "$summary" > /dev/null
    # The device-memory plan of a large sweep on this GPU (its free memory, its chunks).
    step plan-cuda 30 "$bin/underspec" plan --device cuda --set sweep.seeds=100000 --set 'sweep.models=["mlp"]'
    grep -A2 'GPU memory' "$work/logs/plan-cuda.log" 2> /dev/null | sed 's/^/    /' | tee -a "$summary" > /dev/null
  else
    log "seed-cuda: skipped (no GPU)"
  fi
  step seed-cpu 120 "$bin/underspec" run --device cpu --no-report --out "$work/seed-cpu"
  if [[ -f "$work/seed-cuda/replicas.csv" && -f "$work/seed-cpu/replicas.csv" ]]; then
    step seed-compare 30 python3 "$root/bench/compare_replicas.py" "$work/seed-cuda/replicas.csv" "$work/seed-cpu/replicas.csv"
    sed 's/^/    /' "$work/logs/seed-compare.log" | tee -a "$summary" > /dev/null
  fi
  grep -h 'wall\|seconds' "$work"/seed-*/summary.json 2> /dev/null | sed 's/^/    /' | tee -a "$summary" > /dev/null
fi

if wanted sanitizer; then
  if (( have_gpu )) && command -v compute-sanitizer > /dev/null; then
    for variant in fused cublas; do
      UNDERSPEC_CUDA_VARIANT=$variant step "memcheck-$variant" 90 compute-sanitizer --tool memcheck \
        --error-exitcode 9 "$bin/underspec" run --device cuda "${tiny[@]}" --out "$work/memcheck-$variant"
    done
    UNDERSPEC_CUDA_VARIANT=fused step memcheck-width128 90 compute-sanitizer --tool memcheck --error-exitcode 9 \
      "$bin/underspec" run --device cuda "${tiny[@]}" --set 'model.mlp.hidden=[128,128]' --out "$work/memcheck-128"
    # Perceptrons a lane each (4098 >= cuda_plan::kPerceptronLaneMinReplicas in one launch).
    step memcheck-lanes 90 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin/underspec" run --device cuda \
      "${tiny[@]}" --set 'sweep.models=["perceptron"]' --set sweep.seeds=1366 --out "$work/memcheck-lanes"
    for tool in racecheck synccheck; do
      UNDERSPEC_CUDA_VARIANT=fused step "$tool" 90 compute-sanitizer --tool "$tool" --error-exitcode 9 \
        "$bin/underspec" run --device cuda "${tiny[@]}" --set sweep.seeds=1 --out "$work/$tool"
    done
  else
    log "sanitizer: skipped (no GPU or no compute-sanitizer)"
  fi
fi

if wanted scale; then
  # Sweeps of the sizes the issue targets, through the CLI: training seconds as printed.
  if (( have_gpu )); then
    for ctas in 2 1; do
      UNDERSPEC_CUDA_PROFILE=1 UNDERSPEC_CUDA_CTAS_PER_SM=$ctas step "mlp3000-ctas$ctas" 180 "$bin/underspec" run --device cuda --no-report \
        --progress none --set 'sweep.models=["mlp"]' --set sweep.seeds=1000 --out "$work/mlp3000-$ctas"
    done
    # The same 3000 MLPs with the generic kernels (no ld.shared): same bytes, and the time the
    # shared-memory addressing saves, side by side.
    UNDERSPEC_CUDA_PROFILE=1 UNDERSPEC_CUDA_SHARED_OPERANDS=0 step mlp3000-generic 180 "$bin/underspec" run \
      --device cuda --no-report --progress none --set 'sweep.models=["mlp"]' --set sweep.seeds=1000 \
      --out "$work/mlp3000-generic"
    step mlp3000-generic-same-bytes 10 cmp "$work/mlp3000-2/replicas.csv" "$work/mlp3000-generic/replicas.csv"
    # One CTA per SM moves the Adam moments into shared memory: another layout, the same bytes.
    step mlp3000-ctas-same-bytes 10 cmp "$work/mlp3000-2/replicas.csv" "$work/mlp3000-1/replicas.csv"
    UNDERSPEC_CUDA_PROFILE=1 step perceptron-1e5 180 "$bin/underspec" run --device cuda --no-report --progress none \
      --set 'sweep.models=["perceptron"]' --set sweep.seeds=33334 --out "$work/perceptron-1e5"
    # The same perceptrons a warp each (chunks below cuda_plan::kPerceptronLaneMinReplicas)
    # against a lane each (the run above): the same bytes.
    UNDERSPEC_CUDA_PROFILE=1 UNDERSPEC_CUDA_CHUNK=4000 step perceptron-1e5-warps 180 "$bin/underspec" run --device cuda \
      --no-report --progress none --set 'sweep.models=["perceptron"]' --set sweep.seeds=33334 \
      --out "$work/perceptron-1e5-warps"
    step perceptron-lanes-warps-same-bytes 10 cmp "$work/perceptron-1e5/replicas.csv" \
      "$work/perceptron-1e5-warps/replicas.csv"
    # The statistics of three groups of 33334 (one epoch of training) with the bootstrap on the
    # GPU (Thrust) and on the CPU's lanes: the same bytes, and the step times say which is
    # faster (UNDERSPEC_CUDA_BOOTSTRAP stays 0 by default until this is read).
    for boot in 0 1; do
      UNDERSPEC_CUDA_BOOTSTRAP=$boot step "stats-1e5-gpu-bootstrap$boot" 180 "$bin/underspec" run --device cuda \
        --no-report --progress none --set 'sweep.models=["perceptron"]' --set sweep.seeds=33334 \
        --set train.epochs=1 --out "$work/stats-1e5-$boot"
    done
    step stats-gpu-bootstrap-same-bytes 10 cmp "$work/stats-1e5-0/summary.csv" "$work/stats-1e5-1/summary.csv"
    # Hidden width 128 (activations leave shared memory): fused against cuBLAS, 3000 replicas.
    for variant in fused cublas; do
      UNDERSPEC_CUDA_PROFILE=1 UNDERSPEC_CUDA_VARIANT=$variant step "mlp128-$variant" 180 "$bin/underspec" run \
        --device cuda --no-report --progress none --set 'sweep.models=["mlp"]' --set sweep.seeds=1000 \
        --set 'model.mlp.hidden=[128,128]' --set train.epochs=3 --out "$work/mlp128-$variant"
    done
    grep -H 's training\|^cuda device' "$work"/logs/{seed-cuda,seed-cuda-serial,mlp3000-ctas2,mlp3000-ctas1,mlp3000-generic,perceptron-1e5,perceptron-1e5-warps,mlp128-fused,mlp128-cublas}.log 2> /dev/null |
      sed "s|$work/logs/||; s/^/    /" | tee -a "$summary"
  else
    log "scale: skipped (no GPU)"
  fi
fi

if wanted bench; then
  if (( have_gpu )); then
    step underspec-bench 240 "$bin/underspec" bench --device cuda --json "$out/underspec_bench.json"
    sed 's/^/    /' "$work/logs/underspec-bench.log" | tee -a "$summary" > /dev/null
    step bench 180 "$bin/underspec_gpu_bench" --epochs 5 --json "$out/gpu_bench.json"
    sed 's/^/    /' "$work/logs/bench.log" | tee -a "$summary" > /dev/null
  else
    log "bench: skipped (no GPU)"
  fi
fi

if wanted ncu; then
  # Where the fused MLP and lane perceptron kernels stall: Nsight Compute on one epoch of
  # two CTAs per SM worth of MLPs and 10^4 perceptrons (clocks left alone, METHOD.md).
  if (( have_gpu )) && command -v ncu > /dev/null; then
    # InstructionStats and SourceCounters: the issued mix and the SASS lines that stall most,
    # to check bench/sass_loops.py's counts and the cycle model's "today-sass" against.
    step ncu-mlp 150 ncu --clock-control none --kernel-name regex:fused_mlp_kernel --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
      --section MemoryWorkloadAnalysis --section InstructionStats --section SourceCounters "$bin/underspec" run --device cuda --no-report --progress none \
      --set 'sweep.models=["mlp"]' --set 'sweep.regimes=["baseline"]' --set sweep.seeds=264 \
      --set train.epochs=1 --out "$work/ncu-mlp"
    step ncu-perceptron 150 ncu --clock-control none --kernel-name regex:lane_perceptron_kernel --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
      "$bin/underspec" run --device cuda --no-report --progress none --set 'sweep.models=["perceptron"]' \
      --set 'sweep.regimes=["augmentation"]' --set sweep.seeds=10000 --set train.epochs=1 --out "$work/ncu-perceptron"
    # 10^5 lanes (one wave of 6 CTAs per SM): bound by latency, as the cycle model has it, or
    # by the L1's gathers of the four data arrays, or by L2 once eight CTAs' shared memory has
    # left the training set no room in L1 (BENCHMARKS.md, "Another reading of the lane
    # measurements"): SpeedOfLight's L1/TEX and L2 throughput and the L1 hit rate decide.
    step ncu-perceptron-1e5 150 ncu --clock-control none --kernel-name regex:lane_perceptron_kernel --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section SchedulerStats \
      "$bin/underspec" run --device cuda --no-report --progress none --set 'sweep.models=["perceptron"]' \
      --set 'sweep.regimes=["augmentation"]' --set sweep.seeds=100000 --set train.epochs=1 --out "$work/ncu-perceptron-1e5"
  else
    log "ncu: skipped (no GPU or no ncu)"
  fi
fi

log "done: $failures step(s) failed"
pack
exit $(( failures != 0 ))
