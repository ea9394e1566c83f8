"""The bench/ harness scripts refuse bad arguments (exit 2, naming the problem, before
anything runs or is created). None needs a build."""

import subprocess
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
