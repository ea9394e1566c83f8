#!/usr/bin/env bash
# The CPU kernels' levels stay apart (include/underspec/backends/cpu_kernels.hpp):
#   1. every symbol an object file of level L (src/backends/cpu/isa/, compiled with L's -m flags)
#      exports names L's namespace cpu_isa_L, so the linker cannot merge an inline function
#      compiled for AVX-512 into the copy another level (or the rest of the program) calls;
#   2. in a portable build (UNDERSPEC_NATIVE=OFF), no function of underspec's own outside the
#      avx2 / avx512 levels holds an AVX instruction, so the binary runs on any x86-64.
# Usage: check_cpu_kernel_symbols.sh BINARY NATIVE(ON|OFF) LEVEL_OBJECT...
set -euo pipefail
binary=$1 native=$2
shift 2
status=0
objects=()
for arg in "$@"; do IFS=';' read -r -a parts <<<"$arg"; objects+=("${parts[@]}"); done
[ "${#objects[@]}" -gt 0 ] || { echo "no level objects given" >&2; exit 1; }

for object in "${objects[@]}"; do
  level=$(sed -n 's|.*underspec_cpu_\([a-z0-9]*\)\.dir/.*|\1|p' <<<"$object")
  [ -n "$level" ] || { echo "cannot tell the level of $object" >&2; exit 1; }
  # Defined, non-local symbols (upper-case types, u, v, w); DW.ref.__gxx_personality_v0 (a
  # pointer to the C++ exception personality routine, unoptimised builds) holds no code.
  strays=$(nm --defined-only "$object" | awk '$2 ~ /^[A-Zuvw]$/ {print $3}' |
    grep -v -e "cpu_isa_${level}" -e '^DW\.ref\.__gxx_personality_v0$' || true)
  if [ -n "$strays" ]; then
    echo "level $level ($object) exports symbols outside cpu_isa_${level}:" >&2
    c++filt <<<"$strays" | sed 's/^/  /' >&2
    status=1
  else
    echo "level $level: $(nm --defined-only "$object" | awk '$2 ~ /^[A-Zuvw]$/' | wc -l) exported symbols, all in cpu_isa_${level}"
  fi
done

case $(uname -m) in x86_64 | amd64) ;; *) echo "not x86-64: no instruction check"; exit $status ;; esac
if [ "$native" = ON ] || [ "$native" = 1 ] || [ "$native" = TRUE ]; then
  echo "UNDERSPEC_NATIVE=ON: the binary is for this CPU only; no instruction check"
  exit $status
fi
# Functions of underspec's own (their mangled names mention it, or main) outside the two SIMD
# levels that use a VEX/EVEX-encoded instruction (mnemonics v*).
offenders=$(objdump -d --no-show-raw-insn "$binary" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = substr($2, 2, length($2) - 3); next }
  fn != "" && $0 ~ /^ +[0-9a-f]+:\t/ {
    split($0, f, "\t"); split(f[2], w, " ");
    if (w[1] ~ /^v/ && fn !~ /cpu_isa_avx(2|512)/ && (fn ~ /underspec/ || fn == "main")) bad[fn] = 1
  }
  END { for (k in bad) print k }')
if [ -n "$offenders" ]; then
  echo "functions outside the avx2/avx512 levels use AVX instructions:" >&2
  c++filt <<<"$offenders" | sed 's/^/  /' >&2
  status=1
else
  echo "binary: no AVX instruction in underspec's code outside the avx2/avx512 levels"
fi
exit $status
