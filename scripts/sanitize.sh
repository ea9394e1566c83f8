#!/usr/bin/env bash
# The CPU path under AddressSanitizer + UndefinedBehaviorSanitizer, then (with clang-14) the
# libFuzzer target of the config parser and --set for a bounded time. .ci/run calls it after
# README's test command. Own build folders: build-asan (g++), build-fuzz (clang). The CUDA
# code is still compiled (nvcc, not instrumented) but no test here uses a GPU.
#   UNDERSPEC_FUZZ_SECONDS  fuzzing time (default 60; 0 skips the fuzzer)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DUNDERSPEC_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build build-asan --target underspec underspec_tests
# The whole C++ suite except the GPU tests (a separate binary); CLI tests run the
# instrumented underspec too. Any report fails the run.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build-asan/tests/underspec_tests --gtest_brief=1
echo "sanitize: ASan+UBSan suite clean in $(($(date +%s) - start)) s" >&2

seconds=${UNDERSPEC_FUZZ_SECONDS:-60}
if ((seconds > 0)); then
  if ! command -v clang++-14 >/dev/null; then
    echo "sanitize: clang++-14 not found; fuzzer skipped" >&2
    exit 0
  fi
  fuzz_start=$(date +%s)
  cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE= >/dev/null
  cmake --build build-fuzz
  mkdir -p build-fuzz/corpus
  build-fuzz/fuzz_config -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=build-fuzz/ \
    -print_final_stats=1 build-fuzz/corpus tests/fuzz/corpus 2>&1 | tail -25
  echo "sanitize: fuzzer ran ${seconds} s without a crash ($(($(date +%s) - fuzz_start)) s with its build)" >&2
fi
echo "sanitize: done in $(($(date +%s) - start)) s" >&2
