#!/usr/bin/env bash
# Sweep scaling on the CPU backend, in one run: time per replica and peak host memory
# (ru_maxrss, GNU time) for perceptron sweeps of 10^2 .. 10^5 replicas and MLP sweeps of
# 10^2 .. 10^3, next to the host memory `underspec plan` predicted for the same config.
# Time per replica should stay flat (no cliff when the results stop fitting in caches) and
# the measured memory should stay under the plan.
#
#   bench/sweep_scaling.sh [--max-perceptrons 100000] [--max-mlps 1000] [--underspec PATH]
#
# The perceptron sweeps use n_train = 1000 and 10 epochs so that 10^5 replicas take about a
# minute on 2 cores; the MLP sweeps use the seed experiment's data with 10 epochs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
underspec="${UNDERSPEC:-$root/build/underspec}"
max_perceptrons=100000
max_mlps=1000
# Bad arguments are usage errors (exit 2) before anything runs.
usage_error() { echo "sweep_scaling.sh: $*" >&2; exit 2; }
while (($#)); do
  case "$1" in
    --max-perceptrons | --max-mlps | --underspec) (($# >= 2)) || usage_error "$1 needs a value" ;;&
    --max-perceptrons) max_perceptrons=$2; shift 2 ;;
    --max-mlps) max_mlps=$2; shift 2 ;;
    --underspec) underspec=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) usage_error "unknown option $1" ;;
  esac
done
for option in max-perceptrons max-mlps; do
  value=${option//-/_} value=${!value}
  [[ $value =~ ^[0-9]+$ ]] || usage_error "--$option must be a whole number, got '$value'"
done
[[ -x $underspec ]] || { echo "sweep_scaling.sh: no underspec binary at $underspec (build first)" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "sweep_scaling.sh: needs GNU time (/usr/bin/time)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One sweep: $1 label, $2 replicas, the rest --set arguments.
measure() {
  local label=$1 replicas=$2
  shift 2
  local sets=("$@")
  local planned
  planned=$("$underspec" plan "${sets[@]}" | sed -n 's/^  host memory  about //p')
  /usr/bin/time -f "%e %M" -o "$work/time" "$underspec" run "${sets[@]}" --device cpu --progress none --no-report \
    --out "$work/run-$label-$replicas" >/dev/null
  read -r seconds max_kb <"$work/time"
  local train
  train=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['wall_seconds'])" \
    "$work/run-$label-$replicas/summary.json")
  awk -v l="$label" -v n="$replicas" -v s="$seconds" -v t="$train" -v kb="$max_kb" -v p="$planned" \
    'BEGIN { printf "%-10s %8d %9.2f %9.2f %12.3f %10.1f MiB  %s\n", l, n, s, t, 1000 * t / n, kb / 1024, p }'
  rm -rf "$work/run-$label-$replicas"
}

printf "%-10s %8s %9s %9s %12s %14s  %s\n" model replicas "wall s" "train s" "ms/replica" "peak RSS" "planned"
small=(--set data.n_train=1000 --set train.epochs=10 --set 'sweep.models=["perceptron"]')
for n in 100 1000 10000 100000; do
  ((n <= max_perceptrons)) || break
  measure perceptron "$n" "${small[@]}" --set 'sweep.regimes=["baseline"]' --set "sweep.seeds=$n"
done
mlp=(--set train.epochs=10 --set 'sweep.models=["mlp"]' --set 'sweep.regimes=["baseline"]')
for n in 100 1000; do
  ((n <= max_mlps)) || break
  measure mlp "$n" "${mlp[@]}" --set "sweep.seeds=$n"
done
