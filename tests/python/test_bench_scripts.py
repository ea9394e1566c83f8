"""The bench/ harness scripts refuse bad arguments (exit 2, naming the problem, before
anything runs or is created), gpu-check.sh flags carried binaries older than the
checkout, compare_replicas.py and compare_stats.py fail what they cannot vouch for, and the
peers refuse workloads that train nothing. None needs a build (the peers' test needs torch)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(*args, env=None, cwd=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["--seeds"], "--seeds needs a value"),
    (["--seeds", "abc"], "--seeds must be a whole number >= 1, got 'abc'"),
    (["--epochs", "0"], "--epochs must be a whole number >= 1"),
    (["--underspec-runs", "0"], "--underspec-runs must be a whole number >= 1"),
    (["--threads", "0"], "--threads must be a whole number >= 1"),
    (["--z", "-1"], "--z must be a positive number"),
    (["--batched-runs", "0", "--no-eager"], "no peer runs"),
    (["--seeds", "1", "--threads", "2"], "--peer-procs (default: --threads) is 2, more than --seeds 1"),
])
def test_compare_refuses_bad_options(tmp_path, args, message):
    out = tmp_path / "out"
    proc = run(BENCH / "compare.sh", "--underspec", "/bin/true", "--out", out, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not out.exists()


def test_compare_never_overwrites_an_earlier_comparison(tmp_path):
    earlier = tmp_path / "compare-earlier"
    earlier.mkdir()
    (earlier / "times.tsv").write_text("underspec\t1\t3.2\n")
    proc = run(BENCH / "compare.sh", "--underspec", "/bin/true", "--out", earlier)
    assert proc.returncode == 2, proc.stderr
    assert f"--out {earlier} exists and is not an empty directory" in proc.stderr
    assert (earlier / "times.tsv").read_text() == "underspec\t1\t3.2\n"
    assert sorted(p.name for p in earlier.iterdir()) == ["times.tsv"]


@pytest.mark.parametrize("args, message", [
    (["--rounds"], "--rounds needs a value"),
    (["--rounds", "0", "a=/bin/true"], "--rounds must be a whole number >= 1, got '0'"),
    (["/bin/true"], "'/bin/true' is not LABEL=BINARY"),
    (["a=/bin/true", "a=/bin/true"], "label 'a' is given twice"),
    (["a=/nonexistent/underspec"], "a: no executable at '/nonexistent/underspec'"),
    (["--bogus", "a=/bin/true"], "unknown option --bogus"),
])
def test_cpu_levels_refuses_bad_arguments(args, message):
    proc = run(BENCH / "cpu_levels.sh", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "load average" not in proc.stdout  # nothing ran


@pytest.mark.parametrize("args, message", [
    (["--max-mlps"], "--max-mlps needs a value"),
    (["--max-perceptrons", "abc"], "--max-perceptrons must be a whole number, got 'abc'"),
    (["--max-mlps", "-1"], "--max-mlps must be a whole number, got '-1'"),
])
def test_sweep_scaling_refuses_bad_arguments(args, message):
    proc = run(BENCH / "sweep_scaling.sh", "--underspec", "/bin/true", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "replicas" not in proc.stdout


@pytest.mark.parametrize("args", [["--help"], ["--dryrun"], ["--dry-run", "extra"]])
def test_gpu_check_refuses_unknown_arguments_instead_of_running(tmp_path, args):
    env = {"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out"), "UNDERSPEC_GPU_CHECK_WORK": str(tmp_path / "work")}
    proc = run(BENCH / "gpu-check.sh", *args, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "unknown arguments" in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout_with_prebuilt(tmp_path):
    """A git checkout holding gpu-check.sh and a .gpu-prebuilt of stand-in binaries that start."""
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    (repo / "bench" / "gpu-check.sh").write_text((BENCH / "gpu-check.sh").read_text())
    (repo / ".gitignore").write_text(".gpu-prebuilt/\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    prebuilt = repo / ".gpu-prebuilt"
    prebuilt.mkdir()
    for name in ("underspec", "underspec_gpu_tests", "underspec_gpu_bench"):
        (prebuilt / name).write_text("#!/bin/sh\nexit 0\n")
        (prebuilt / name).chmod(0o755)
    (prebuilt / "REVISION").write_text(git(repo, "rev-parse", "HEAD"))  # as --prebuild writes it: HEAD, no changes
    return repo


def gpu_check_binaries(repo, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out"), "UNDERSPEC_GPU_CHECK_WORK": str(tmp_path / "work"),
           "UNDERSPEC_GPU_CHECK_STEPS": "binaries"}
    proc = run("bash", repo / "bench" / "gpu-check.sh", "--dry-run", env=env, cwd=repo)
    return proc, (tmp_path / "out" / "summary.txt").read_text()


def test_gpu_check_accepts_prebuilt_binaries_of_this_checkout(checkout_with_prebuilt, tmp_path):
    proc, summary = gpu_check_binaries(checkout_with_prebuilt, tmp_path)
    assert proc.returncode == 0, summary
    assert "binaries: carried prebuilt" in summary and "prebuilt-current" not in summary


def test_gpu_check_flags_prebuilt_binaries_older_than_the_checkout(checkout_with_prebuilt, tmp_path):
    repo = checkout_with_prebuilt
    (repo / "bench" / "new.txt").write_text("a later change\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "second")
    proc, summary = gpu_check_binaries(repo, tmp_path)
    assert proc.returncode == 1, summary
    assert "prebuilt-current: FAILED" in summary and "--prebuild" in summary
    assert "done: 1 step(s) failed" in summary


HEADER = "replica,model,iid_rmse,ood_rmse\n"


def compare_replicas(tmp_path, a, b):
    pa, pb = tmp_path / "a.csv", tmp_path / "b.csv"
    pa.write_text(a)
    pb.write_text(b)
    return run(sys.executable, BENCH / "compare_replicas.py", pa, pb)


def test_compare_replicas_passes_identical_files(tmp_path):
    rows = HEADER + "0,mlp,1.5,2.5\n1,mlp,1.25,2.25\n"
    proc = compare_replicas(tmp_path, rows, rows)
    assert proc.returncode == 0, proc.stdout
    assert "bit-identical: yes" in proc.stdout


@pytest.mark.parametrize("a, b, message", [
    (HEADER + "0,mlp,1.5,2.5\n", "replica,model\n0,mlp\n", "different columns"),
    ("replica,model\n0,mlp\n", HEADER + "0,mlp,1.5,2.5\n", "different columns"),
    (HEADER, HEADER, "no replicas"),
    ("", "", "no 'replica' column"),
    (HEADER + "0,mlp,1.5,2.5\n0,mlp,1.5,2.5\n", HEADER + "0,mlp,1.5,2.5\n", "repeated"),
    (HEADER + "0,mlp,1.5,2.5\n", HEADER + "0,mlp,1.5,2.6\n", "max rel diff"),
])
def test_compare_replicas_fails_what_it_cannot_vouch_for(tmp_path, a, b, message):
    proc = compare_replicas(tmp_path, a, b)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "argument --seeds: must be >= 1, got 0"),
    (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["--threads", "0"], "argument --threads: must be >= 1, got 0"),
    (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["--models", ","], "--models and --regimes each need at least one name"),
])
def test_peers_refuse_workloads_that_train_nothing(tmp_path, args, message):
    pytest.importorskip("torch")
    out = tmp_path / "peer.json"
    proc = run(sys.executable, BENCH / "peers" / "batched.py", "--quiet", "--out", out, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert not out.exists()


def test_compare_stats_does_not_pass_what_it_did_not_compare(tmp_path):
    """A folder without an underspec run, or without any peer run, is exit 2, not a PASS."""
    proc = run(sys.executable, BENCH / "compare_stats.py", tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no underspec run" in proc.stderr
    underspec_run = tmp_path / "underspec-1"
    underspec_run.mkdir()
    (underspec_run / "replicas.csv").write_text(
        "replica,model,regime,seed,iid_rmse,ood_rmse,w_x3\n0,perceptron,baseline,0,1.9,2.7,0.23\n")
    (underspec_run / "summary.json").write_text('{"wall_seconds": 1.0}\n')
    proc = run(sys.executable, BENCH / "compare_stats.py", tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no peer (batched, eager or jax) run" in proc.stderr
    assert not (tmp_path / "compare.json").exists()
