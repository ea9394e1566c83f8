#!/usr/bin/env bash
# The `slurm` tests: `underspec slurm --submit` on a real one-node Slurm cluster
# (tests/slurm/slurm_cluster.sh). ctest runs `setup` once (FIXTURES_SETUP), the cases, then
# `cleanup`. Usage: slurm_tests.sh setup|cleanup|sweep|requeue|preempt|failure|fixture UNDERSPEC_BINARY WORKDIR
# UNDERSPEC_SKIP_SLURM_TESTS=1 skips every case (exit 77) on machines that cannot run daemons.
set -euo pipefail

case_name=$1
bin=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
state=$work/cluster
export SLURM_CONF=$state/slurm.conf

if [[ ${UNDERSPEC_SKIP_SLURM_TESTS:-0} == 1 ]]; then
  echo "skipped: UNDERSPEC_SKIP_SLURM_TESTS=1"
  exit 77
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
t0=$(date +%s.%N)
elapsed() { printf '%.1f s' "$(echo "$(date +%s.%N) - $t0" | bc)"; }

# Small sweeps. kTiny: 2 models x 3 regimes x 3 seeds = 18 replicas, a fraction of a second.
tiny=(--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=3
      --set 'data.stress_factors=[0.05, 0.5]')
# 3 regimes x 400 MLP seeds = 1200 replicas, 2-4 s per shard of 600 on one CPU.
medium=(--set data.n_train=1000 --set data.n_test=500 --set train.epochs=6 --set 'sweep.models=["mlp"]'
        --set sweep.seeds=400 --set 'data.stress_factors=[0.05, 0.5]')

# Waits until none of the jobs is pending or running (at most $2 s).
wait_jobs() {
  local jobs=$1 limit=${2:-120}
  local end=$((SECONDS + limit))
  local queued
  # An squeue that fails (a busy slurmctld) says nothing about the jobs: ask again.
  until queued=$(squeue -h -j "$jobs" -o %i 2>&1) && [[ -z $queued ]]; do
    ((SECONDS < end)) || { squeue -j "$jobs" >&2; fail "jobs $jobs still queued after $limit s"; }
    sleep 0.1
  done
}
job_state() { scontrol -o show job "$1" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }

# The outputs of sweep dir $1/merged equal those of the single run $2.
same_outputs() {
  local f
  for f in replicas.csv stress.csv summary.csv config.toml; do
    cmp "$1/merged/$f" "$2/$f" || fail "$f of the merged Slurm sweep differs from the single run"
  done
}

# The job ids from `underspec slurm --submit`'s output.
submitted_ids() { sed -n 's/^submitted array job \([0-9]*\) .* merge job \([0-9]*\) .*/\1 \2/p' "$1"; }

case $case_name in
  setup)
    # First stop what an interrupted earlier run left: the PIDs it started are in $state.
    "$here/slurm_cluster.sh" stop "$state"
    rm -rf "$work" && mkdir -p "$work"
    "$here/slurm_cluster.sh" start "$state" ||
      fail "could not start a Slurm test cluster (see above); set UNDERSPEC_SKIP_SLURM_TESTS=1 to skip the slurm tests"
    echo "cluster up in $(elapsed)"
    ;;
  cleanup)
    "$here/slurm_cluster.sh" stop "$state"
    rm -rf "$work"
    echo "cluster down in $(elapsed)"
    ;;
  sweep)
    # 1. a 4-shard sweep merges to the bytes of a single run.
    d=$work/sweep && rm -rf "$d" && mkdir -p "$d"
    "$bin" slurm "${tiny[@]}" --shards 4 --cpus-per-task 1 --out "$d/s" --submit >"$d/submit.out"
    cat "$d/submit.out"
    read -r array merge < <(submitted_ids "$d/submit.out")
    [[ -n $array && -n $merge ]] || fail "no job ids in the output of underspec slurm --submit"
    wait_jobs "$array,$merge" 120
    [[ -f $d/s/merged/summary.json ]] || { cat "$d"/s/logs/* >&2; fail "the merge job wrote no outputs"; }
    "$bin" status "$d/s" | tee "$d/status.out"
    grep -q "total: 4 done; 18 of 18 replicas done" "$d/status.out" || fail "status does not say 4 done"
    grep -q "^merged: yes" "$d/status.out" || fail "status does not say merged"
    "$bin" run "${tiny[@]}" --device cpu --threads 2 --progress none --out "$d/single" >/dev/null
    same_outputs "$d/s" "$d/single"
    rm -rf "$d"
    echo "ok in $(elapsed)"
    ;;
  requeue)
    # 2. a shard cancelled mid-run and resubmitted resumes from its checkpoint; the merge matches.
    d=$work/requeue && rm -rf "$d" && mkdir -p "$d"
    UNDERSPEC_CHECKPOINT_SECONDS=0 "$bin" slurm "${medium[@]}" --shards 2 --cpus-per-task 1 --out "$d/s" --submit \
      >"$d/submit.out"
    read -r array merge < <(submitted_ids "$d/submit.out")
    ck=$d/s/shards/1/checkpoint
    end=$((SECONDS + 60))
    until compgen -G "$ck/part-*.bin" >/dev/null; do
      ((SECONDS < end)) || fail "shard 1 wrote no checkpoint segment in 60 s"
      sleep 0.02
    done
    scancel "${array}_1"
    wait_jobs "${array}_1" 60
    [[ ! -f $d/s/shards/1/summary.json ]] || fail "shard 1 finished before it could be cancelled"
    grep -q "stopped by signal 15" "$d/s/logs/shard-1.err" ||
      { cat "$d/s/logs/shard-1.err" >&2; fail "shard 1 did not stop on SIGTERM"; }
    grep -q "underspec submit $d/s)" "$d/s/logs/shard-1.err" || fail "the stopped task's log does not say how to go on"
    saved=$(ls "$ck"/part-*.bin | wc -l)
    wait_jobs "$array,$merge" 120
    [[ $(job_state "$merge") == CANCELLED ]] || fail "merge job $merge: $(job_state "$merge"), expected CANCELLED"
    "$bin" status "$d/s" | tee "$d/status.out"
    grep -q "^1      cancelled" "$d/status.out" || fail "status does not report shard 1 cancelled"
    # Submit what is unfinished, as status says: shard 1 alone, and a merge after it.
    grep -q "underspec submit $d/s" "$d/status.out" || fail "status does not say how to submit shard 1 again"
    "$bin" submit "$d/s" | tee "$d/resubmit.out"
    read -r again merge2 < <(submitted_ids "$d/resubmit.out")
    grep -q "(1 shard: 1)" "$d/resubmit.out" || fail "submit did not submit shard 1 alone"
    wait_jobs "$again,$merge2" 120
    grep -E "resuming $d/s/shards/1: [1-9][0-9]* of 600 replicas already done" "$d/s/logs/shard-1.err" ||
      { cat "$d/s/logs/shard-1.err" >&2; fail "shard 1 did not resume from its checkpoint"; }
    [[ -f $d/s/merged/summary.json ]] || { cat "$d"/s/logs/merge.* >&2; fail "the second merge wrote no outputs"; }
    echo "shard 1: $saved segments before the cancel"
    "$bin" run "${medium[@]}" --device cpu --threads 2 --progress none --out "$d/single" >/dev/null
    same_outputs "$d/s" "$d/single"
    rm -rf "$d"
    echo "ok in $(elapsed)"
    ;;
  preempt)
    # 2b. `scontrol requeue` of a running task (what preemption with --requeue does): SIGTERM, the
    # task goes back to pending, the merge job keeps waiting, and the rerun resumes its checkpoint.
    d=$work/preempt && rm -rf "$d" && mkdir -p "$d"
    UNDERSPEC_CHECKPOINT_SECONDS=0 "$bin" slurm "${medium[@]}" --shards 2 --cpus-per-task 1 --out "$d/s" --submit \
      >"$d/submit.out"
    read -r array merge < <(submitted_ids "$d/submit.out")
    ck=$d/s/shards/1/checkpoint
    end=$((SECONDS + 60))
    until compgen -G "$ck/part-*.bin" >/dev/null; do
      ((SECONDS < end)) || fail "shard 1 wrote no checkpoint segment in 60 s"
      sleep 0.02
    done
    scontrol requeue "${array}_1"
    end=$((SECONDS + 60))
    until grep -q "stopped by signal 15" "$d/s/logs/shard-1.err"; do
      ((SECONDS < end)) || { cat "$d/s/logs/shard-1.err" >&2; fail "shard 1 did not stop on SIGTERM"; }
      sleep 0.05
    done
    [[ $(job_state "$merge") == PENDING ]] || fail "merge job $merge: $(job_state "$merge"), expected PENDING"
    # Slurm holds a requeued task for cred_expire + 1 s (the cluster sets 5 s; 120 s by default).
    squeue -j "$array,$merge" -o "%i %T %r"
    wait_jobs "$array,$merge" 120
    grep -q "restart 1" "$d/s/logs/shard-1.err" || fail "shard 1 did not restart"
    grep -E "resuming $d/s/shards/1: [1-9][0-9]* of 600 replicas already done" "$d/s/logs/shard-1.err" ||
      { cat "$d/s/logs/shard-1.err" >&2; fail "shard 1 did not resume from its checkpoint"; }
    [[ -f $d/s/merged/summary.json ]] || { cat "$d"/s/logs/merge.* >&2; fail "the merge wrote no outputs"; }
    "$bin" run "${medium[@]}" --device cpu --threads 2 --progress none --out "$d/single" >/dev/null
    same_outputs "$d/s" "$d/single"
    rm -rf "$d"
    echo "ok in $(elapsed)"
    ;;
  failure)
    # 3. a failing shard: the merge job never runs (kill_invalid_depend), status shows the failure;
    # once mended, `underspec submit` sends that shard alone and a merge, which completes.
    d=$work/failure && rm -rf "$d" && mkdir -p "$d"
    "$bin" slurm "${tiny[@]}" --shards 2 --cpus-per-task 1 --out "$d/s" >"$d/prepare.out"
    grep -q "underspec submit $d/s" "$d/prepare.out" || fail "slurm does not print the submit command"
    : >"$d/s/shards/1"  # a file where shard 1's directory goes: its run fails (we are root: no chmod)
    "$bin" submit "$d/s" | tee "$d/submit.out"
    read -r array merge < <(submitted_ids "$d/submit.out")
    [[ -n $array && -n $merge ]] || fail "no job ids in the output of underspec submit"
    wait_jobs "$array,$merge" 120
    [[ $(job_state "${array}_1") == FAILED ]] || fail "shard 1: $(job_state "${array}_1"), expected FAILED"
    [[ $(job_state "$merge") == CANCELLED ]] || fail "merge job $merge: $(job_state "$merge"), expected CANCELLED"
    [[ ! -e $d/s/merged ]] || fail "the merge ran"
    "$bin" status "$d/s" | tee "$d/status.out"
    grep -q "^0      done         9/9" "$d/status.out" || fail "status: shard 0 not done"
    grep -q "^1      failed       0/9" "$d/status.out" || fail "status: shard 1 not failed"
    grep -q "exists and is .*not a directory" "$d/status.out" || fail "status shows no log tail"
    grep -q "underspec submit $d/s" "$d/status.out" || fail "status shows no submit command"
    rm "$d/s/shards/1"
    "$bin" submit "$d/s" | tee "$d/resubmit.out"
    read -r array2 merge2 < <(submitted_ids "$d/resubmit.out")
    grep -q "(1 shard: 1)" "$d/resubmit.out" || fail "submit did not submit shard 1 alone"
    wait_jobs "$array2,$merge2" 120
    [[ -f $d/s/merged/summary.json ]] || { cat "$d"/s/logs/merge.* >&2; fail "the merge after the resubmission wrote no outputs"; }
    "$bin" status "$d/s" | tee "$d/status2.out"
    grep -q "^merged: yes" "$d/status2.out" || fail "status does not say merged"
    grep -q "(2 submissions)" "$d/status2.out" || fail "status does not count the submissions"
    rm -rf "$d"
    echo "ok in $(elapsed)"
    ;;
  fixture)
    # 4. The fixture starts nothing on a port another controller answers on (here the running
    # test cluster's), and a setup after an interrupted run stops the daemons that run started
    # (stand-in: a process named slurmd) before it removes their PID files.
    d=$work/fixture && rm -rf "$d" && mkdir -p "$d"
    if "$here/slurm_cluster.sh" start "$d/taken" 2>"$d/taken.err"; then
      fail "the fixture started a cluster on a port another slurmctld answers on"
    fi
    grep -q "did not start answers on port" "$d/taken.err" || { cat "$d/taken.err" >&2; fail "no reason given"; }
    [[ ! -e $d/taken ]] || fail "$d/taken was left behind"
    cp "$(command -v sleep)" "$d/slurmd"
    mkdir -p "$d/rerun/cluster"
    ("$d/slurmd" 60 >/dev/null 2>&1 & echo $! >"$d/rerun/cluster/slurmd.started-pid")  # not our child
    dummy=$(cat "$d/rerun/cluster/slurmd.started-pid")
    "$0" setup "$bin" "$d/rerun" 2>/dev/null && fail "setup started a cluster on a port another slurmctld answers on"
    if [[ -r /proc/$dummy/stat && $(cut -d' ' -f3 "/proc/$dummy/stat") != Z ]]; then
      kill "$dummy"
      fail "setup did not stop the slurmd an interrupted run left"
    fi
    rm -rf "$d"
    echo "ok in $(elapsed)"
    ;;
  *) fail "unknown case $case_name" ;;
esac
