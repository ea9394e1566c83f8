#!/usr/bin/env bash
# Side by side: underspec (CPU backend), the PyTorch peers and, with --jax, the JAX peer
# (bench/peers) on the same workload, in one run. Prints wall-time ratios (medians of
# several runs) and checks that the statistics agree and the seed experiment's findings
# hold in every implementation (bench/compare_stats.py). Exit status: 0 agreement,
# 1 disagreement, 2 usage or run error.
#
#   bench/compare.sh [--seeds 30] [--underspec-runs 3] [--batched-runs 2] [--eager-runs 1]
#                    [--threads N] [--peer-procs P] [--peer-threads T] [--underspec PATH]
#                    [--python PATH] [--out DIR] [--no-eager] [--z 3.5] [--epochs 30]
#                    [--jax] [--jax-runs 2] [--jax-venv DIR]
#
# Defaults: the seed experiment with 30 seeds per (model, regime) = 180 trainings. Every
# tool gets all N cores: underspec --threads N; each peer runs as P = N processes of
# T = 1 torch thread, each on a contiguous range of seeds (PyTorch's intra-op threads do not
# pay off on these tiny products and, on a busy machine, OpenMP barriers make them much
# slower). A peer's time is that of its slowest process. The peers need PyTorch: Debian's
# python3-torch (/usr/bin/python3) is the default interpreter.
# --jax adds the JAX peer (same P x T split, XLA limited to T threads), run from a venv
# (default build/jax-venv) that sees the interpreter's packages (torch, for the shared data)
# and holds jax[cpu] (JAX_VERSION below) from PyPI: made on first use of --jax, never otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seeds=30
epochs=30
underspec_runs=3
batched_runs=2
eager_runs=1
threads=$(nproc)
underspec="${UNDERSPEC:-$root/build/underspec}"
python=/usr/bin/python3
peer_procs=""
peer_threads=1
out=""
z=3.5
jax_runs=0
jax_venv="$root/build/jax-venv"
JAX_VERSION=0.4.38  # the newest on Debian 12's numpy 1.24, which its torch is built against (0.5 pulls numpy 1.26)

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
# Bad options are usage errors (exit 2) before anything runs or is created.
usage_error() { echo "compare.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-eager | --jax | -h | --help) ;;
    --*) [[ $# -ge 2 ]] || usage_error "$1 needs a value" ;;
  esac
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --underspec-runs) underspec_runs=$2; shift 2 ;;
    --batched-runs) batched_runs=$2; shift 2 ;;
    --eager-runs) eager_runs=$2; shift 2 ;;
    --no-eager) eager_runs=0; shift ;;
    --threads) threads=$2; shift 2 ;;
    --peer-procs) peer_procs=$2; shift 2 ;;
    --peer-threads) peer_threads=$2; shift 2 ;;
    --underspec) underspec=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --z) z=$2; shift 2 ;;
    --jax) (( jax_runs > 0 )) || jax_runs=2; shift ;;
    --jax-runs) jax_runs=$2; shift 2 ;;
    --jax-venv) jax_venv=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage 2 >&2 ;;
  esac
done

# integer OPTION VALUE MIN: VALUE is a whole number >= MIN.
integer() { [[ $2 =~ ^[0-9]+$ ]] && (( 10#$2 >= $3 )) || usage_error "$1 must be a whole number >= $3, got '$2'"; }
integer --seeds "$seeds" 1
integer --epochs "$epochs" 1
integer --underspec-runs "$underspec_runs" 1
integer --batched-runs "$batched_runs" 0
integer --eager-runs "$eager_runs" 0
integer --jax-runs "$jax_runs" 0
integer --threads "$threads" 1
integer --peer-threads "$peer_threads" 1
[[ -z "$peer_procs" ]] || integer --peer-procs "$peer_procs" 1
[[ $z =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] && awk "BEGIN{exit !($z > 0)}" || usage_error "--z must be a positive number, got '$z'"
(( batched_runs + eager_runs + jax_runs > 0 )) || usage_error "no peer runs (--batched-runs, --eager-runs and --jax-runs are all 0): nothing to compare with"

# Every argument is checked before the machine is (binary, torch, the JAX venv): a wrong
# option says so whatever is installed.
[[ -n "$peer_procs" ]] || peer_procs=$threads
(( peer_procs <= seeds )) || usage_error "--peer-procs (default: --threads) is $peer_procs, more than --seeds $seeds"
[[ -n "$out" ]] || out="$root/runs/compare-$(date +%Y%m%d-%H%M%S)"
# As underspec run's --out: an earlier comparison is never overwritten (its times.tsv was).
[[ ! -e "$out" || -d "$out" && -z "$(ls -A "$out")" ]] || usage_error "--out $out exists and is not an empty directory"
[[ -x "$underspec" ]] || { echo "compare.sh: no underspec binary at $underspec (build it, or --underspec PATH)" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null || { echo "compare.sh: $python cannot import torch (apt-get install python3-torch)" >&2; exit 2; }
# jax_ready: the venv imports jax and torch, or is made so (pip, from PyPI); numpy<2 keeps
# the interpreter's numpy, which Debian's torch is built against.
jax_ready() {
  local py="$jax_venv/bin/python"
  "$py" -c 'import jax, torch' 2>/dev/null && return 0
  echo "compare.sh: creating $jax_venv with jax[cpu]==$JAX_VERSION (pip)" >&2
  "$python" -m venv --system-site-packages "$jax_venv" &&
    "$py" -m pip install -q "jax[cpu]==$JAX_VERSION" "numpy<2" >&2 &&
    "$py" -c 'import jax, torch'
}
if (( jax_runs > 0 )); then
  jax_ready || { echo "compare.sh: no usable JAX venv at $jax_venv (python3-venv and pip needed)" >&2; exit 2; }
fi
mkdir -p "$out"
: > "$out/times.tsv"
mkdir -p "$out/logs"

now() { date +%s.%N; }
# timed NAME REPETITION COMMAND...: runs the command, appends its wall seconds to times.tsv.
timed() {
  local name=$1 rep=$2; shift 2
  local start end
  start=$(now)
  if ! "$@" > "$out/logs/$name-$rep.log" 2>&1; then
    echo "compare.sh: $name run $rep failed; see $out/logs/$name-$rep.log" >&2
    tail -5 "$out/logs/$name-$rep.log" >&2
    exit 2
  fi
  end=$(now)
  printf '%s\t%s\t%s\n' "$name" "$rep" "$(awk "BEGIN{print $end - $start}")" >> "$out/times.tsv"
  printf '  %-9s run %s: %6.2f s\n' "$name" "$rep" "$(awk "BEGIN{print $end - $start}")" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "compare.sh: $seeds seeds x 2 models x 3 regimes = $((seeds * 6)) trainings per run, $threads threads; runs in $out" >&2
for ((k = 1; k <= underspec_runs; ++k)); do
  timed underspec "$k" "$underspec" run --out "$out/underspec-$k" --set "sweep.seeds=$seeds" \
    --set "train.epochs=$epochs" \
    --threads "$threads" --device cpu
done
# peer_run PEER REPETITION: the peer's P processes over contiguous seed ranges, in parallel.
peer_run() {
  local peer=$1 rep=$2 j first count pids=() py=$python script="$root/bench/peers/$1.py"
  # jax_peer.py, not jax.py: a script named jax.py would shadow the package.
  [[ $peer != jax ]] || { py="$jax_venv/bin/python"; script="$root/bench/peers/jax_peer.py"; }
  for ((j = 0; j < peer_procs; ++j)); do
    first=$((seeds * j / peer_procs))
    count=$((seeds * (j + 1) / peer_procs - first))
    JAX_PLATFORMS=cpu "$py" "$script" --seed "$first" --seeds "$count" --epochs "$epochs" --threads "$peer_threads" --quiet \
      --out "$out/$peer-$rep-p$j.json" &
    pids+=($!)
  done
  local status=0
  for j in "${pids[@]}"; do wait "$j" || status=1; done
  return $status
}
for ((k = 1; k <= batched_runs; ++k)); do timed batched "$k" peer_run batched "$k"; done
for ((k = 1; k <= jax_runs; ++k)); do timed jax "$k" peer_run jax "$k"; done
for ((k = 1; k <= eager_runs; ++k)); do timed eager "$k" peer_run eager "$k"; done

echo
{
  echo "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $("$underspec" --version 2>/dev/null | paste -sd ';' - || echo 'underspec ?'); torch $("$python" -c 'import torch; print(torch.__version__)')$( ((jax_runs == 0)) || echo "; jax $("$jax_venv/bin/python" -c 'import jax; print(jax.__version__)')")"
  "$python" "$root/bench/compare_stats.py" "$out" --z "$z"
} | tee "$out/compare.txt"
exit "${PIPESTATUS[0]}"
