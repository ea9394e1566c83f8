#!/usr/bin/env bash
# ctest GpuCheckDryRun: bench/gpu-check.sh --dry-run with this build's binaries, so that the
# script a GPU session depends on keeps running cleanly without a GPU (every step runs or
# skips; none fails). Everything goes to a temporary folder, removed afterwards.
#   tests/gpu_check_dry_run.sh UNDERSPEC UNDERSPEC_GPU_TESTS UNDERSPEC_GPU_BENCH
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin"
for binary in "$@"; do ln -s "$(realpath "$binary")" "$dir/bin/"; done
rc=0
OUT="$dir/out" UNDERSPEC_GPU_CHECK_WORK="$dir/work" UNDERSPEC_GPU_CHECK_BIN="$dir/bin" \
  "$root/bench/gpu-check.sh" --dry-run || rc=$?
cat "$dir/out/summary.txt"
grep -q "done: 0 step(s) failed" "$dir/out/summary.txt" || { echo "gpu-check --dry-run reported failures" >&2; exit 1; }
exit "$rc"
