#!/usr/bin/env bash
# Seed experiment (`underspec run --device cpu --no-report --threads 2`) wall time for several
# binaries or CPU kernel levels, run in alternation (round-robin) so that a noisy machine slows
# all of them alike; also checks that every variant writes the same replicas.csv (BENCHMARKS.md).
#
#   bench/cpu_levels.sh [--rounds N] [--set KEY=VALUE]... 'LABEL=BINARY [VAR=VALUE...]'...
#
# e.g. bench/cpu_levels.sh --rounds 5 native=old/underspec auto=build/underspec \
#        'avx2=build/underspec UNDERSPEC_CPU_KERNELS=avx2'
# (the environment assignments of a variant are separated by spaces).
set -euo pipefail
rounds=5
sets=()
# Bad arguments are usage errors (exit 2) before anything runs.
usage_error() { echo "cpu_levels.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --rounds | --set) [ $# -ge 2 ] || usage_error "$1 needs a value" ;;&
    --rounds) rounds=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ ]] && ((10#$rounds >= 1)) || usage_error "--rounds must be a whole number >= 1, got '$rounds'"
seen=" "
for spec in "$@"; do
  label=${spec%%=*} rest=${spec#*=}
  [[ $spec == *=* && $label =~ ^[A-Za-z0-9_.+-]+$ ]] || usage_error "'$spec' is not LABEL=BINARY (a label of letters, digits and ._+-)"
  [[ $seen != *" $label "* ]] || usage_error "label '$label' is given twice"
  seen+="$label "
  read -r -a parts <<<"$rest"
  [ ${#parts[@]} -gt 0 ] && [ ! -d "${parts[0]}" ] && command -v "${parts[0]}" >/dev/null ||
    usage_error "$label: no executable at '${parts[0]:-}'"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
labels=()
for spec in "$@"; do
  label=${spec%%=*}
  labels+=("$label")
  : >"$work/$label.times"
done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; ++r)); do
  for spec in "$@"; do
    label=${spec%%=*} rest=${spec#*=}
    read -r -a parts <<<"$rest"
    binary=${parts[0]}
    start=$(date +%s.%N)
    env "${parts[@]:1}" "$binary" run --device cpu --no-report --threads 2 "${sets[@]}" --out "$work/$label-$r" \
      >/dev/null 2>"$work/$label.err" || { cat "$work/$label.err" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l >>"$work/$label.times"
    md5sum <"$work/$label-$r/replicas.csv" | cut -d' ' -f1 >>"$work/$label.md5"
    rm -rf "$work/$label-$r"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %9s %9s %9s  %s\n' variant "median s" "min s" "max s" "all (s)"
for label in "${labels[@]}"; do
  sort -n "$work/$label.times" | awk -v l="$label" '{ t[NR] = $1 } END {
    m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2; all = "";
    for (i = 1; i <= NR; ++i) all = all sprintf(" %.2f", t[i]);
    printf "%-16s %9.3f %9.3f %9.3f %s\n", l, m, t[1], t[NR], all }'
done
if [ "$(cat "$work"/*.md5 | sort -u | wc -l)" -eq 1 ]; then
  echo "replicas.csv: identical for every variant and run ($(head -1 "$work/${labels[0]}.md5"))"
else
  echo "replicas.csv DIFFERS:"; for label in "${labels[@]}"; do echo "  $label: $(sort -u "$work/$label.md5" | tr '\n' ' ')"; done
  exit 1
fi
