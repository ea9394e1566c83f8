#!/usr/bin/env bash
# Compiles every CUDA kernel for one architecture with ptxas' resource report and checks each
# kernel's registers, stack frame and spills against kernels/resource_budget.txt, so that the
# per-kernel figures in BENCHMARKS.md cannot regress unnoticed. Needs nvcc, not a GPU.
#   scripts/kernel-resources.sh [NVCC] [ARCH]     (defaults: nvcc on PATH or /usr/local/cuda, 90)
# Prints one row per kernel: registers, stack bytes, spill bytes (stores + loads), barriers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nvcc="${1:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
arch="${2:-90}"
budget="${UNDERSPEC_KERNEL_BUDGET:-$root/kernels/resource_budget.txt}"
report="$(mktemp)"
trap 'rm -f "$report" "$report.cubin"' EXIT

for source in "$root"/kernels/*.cu; do
  # The flags that matter to code generation are the build's (kernels/CMakeLists.txt, CMakeLists.txt).
  "$nvcc" -I "$root/kernels" -I "$root/include" -O3 -DNDEBUG -arch="sm_$arch" --fmad=false \
    --expt-relaxed-constexpr -std=c++20 -cubin --resource-usage -o "$report.cubin" "$source" 2>&1 |
    awk -v file="$(basename "$source")" '
      /Compiling entry function/ { match($0, /\x27[^\x27]+\x27/); name = substr($0, RSTART + 1, RLENGTH - 2) }
      /bytes stack frame/ && name != "" { stack = $1; spills = $5 + $9 }
      /Used [0-9]+ registers/ && name != "" {
        for (i = 1; i <= NF; ++i) { if ($(i + 1) == "registers,") regs = $i; if ($(i + 1) ~ /^barriers/) bars = $i }
        print name, regs, stack, spills, (bars == "" ? 0 : bars), file; name = ""; bars = "" }' >> "$report"
done

status=0
printf '%-48s %5s %6s %7s %4s  %s\n' kernel regs stack spills bars file
while read -r mangled regs stack spills bars file; do
  name="$(echo "$mangled" | c++filt | sed -E 's/^void //; s/underspec::cuda::(\(anonymous namespace\)::)?//; s/\(.*\)$//')"
  printf '%-48s %5s %6s %7s %4s  %s\n' "$name" "$regs" "$stack" "$spills" "$bars" "$file"
  limit="$(awk -v n="$name" '!/^#/ && NF == 4 && index(n, $1) == 1 { print $2, $3, $4; exit }' "$budget")"
  if [[ -z "$limit" ]]; then
    echo "  no budget for $name in kernels/resource_budget.txt" >&2
    status=1
    continue
  fi
  read -r max_regs max_stack max_spills <<< "$limit"
  if (( regs > max_regs || stack > max_stack || spills > max_spills )); then
    echo "  OVER BUDGET: $name uses $regs registers, $stack B stack, $spills B spills (budget $max_regs, $max_stack, $max_spills)" >&2
    status=1
  fi
done < "$report"
[[ -s "$report" ]] || { echo "no kernels found: did nvcc fail?" >&2; exit 1; }
exit $status
