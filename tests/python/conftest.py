"""Shared fixtures of the Python tests: a small real run made with the built `underspec`.

ctest sets UNDERSPEC_BINARY (the built binary) and PYTHONPATH (the repository's python/).
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("UNDERSPEC_BINARY") or str(REPO / "build" / "underspec")

# 2 grid cells x 2 models x 3 regimes x 4 seeds = 48 replicas, with stress factors: every figure.
SMALL_RUN = [
    "--set", "data.n_train=300", "--set", "data.n_test=300", "--set", "train.epochs=2",
    "--set", "sweep.seeds=4", "--set", "data.stress_factors=[0.2, 0.05, 0.02]",
    "--set", 'sweep.grid."train.lr"=[1e-3, 3e-3]', "--device", "cpu", "--threads", "2", "--progress", "none",
]


def underspec(*args, env=None, cwd=None, check=True):
    """Runs the binary; returns the CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env.pop("UNDERSPEC_NO_REPORT", None)
    full_env.update(env or {})
    proc = subprocess.run([BINARY, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"underspec {' '.join(args)}: status {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def binary():
    if not Path(BINARY).is_file():
        pytest.fail(f"{BINARY}: not built (cmake --build build --target underspec)")
    return BINARY


@pytest.fixture(scope="session")
def small_run(binary, tmp_path_factory):
    """A finished grid run with stress factors, without a report (the tests make it)."""
    out = tmp_path_factory.mktemp("small") / "run"
    underspec("run", *SMALL_RUN, "--no-report", "--out", str(out))
    return out


@pytest.fixture
def run_copy(small_run, tmp_path):
    """A private copy of small_run, to write a report into."""
    dst = tmp_path / "run"
    shutil.copytree(small_run, dst)
    return dst


# Every replica diverges (exit 1, outputs written): perceptrons and MLPs, a grid and stress
# factors, so that every figure builder meets groups with nothing to draw.
DIVERGED_RUN = [
    "--set", "data.n_train=500", "--set", "train.epochs=2", "--set", "sweep.seeds=3",
    "--set", 'sweep.grid."train.lr"=[1e38, 3e38]', "--set", "data.stress_factors=[0.2, 0.05]",
    "--device", "cpu", "--threads", "2", "--progress", "none",
]


@pytest.fixture(scope="session")
def diverged_run(binary, tmp_path_factory):
    """A finished run in which every replica diverged, without a report."""
    out = tmp_path_factory.mktemp("diverged") / "run"
    proc = underspec("run", *DIVERGED_RUN, "--no-report", "--out", str(out), check=False)
    assert proc.returncode == 1 and "every replica diverged" in proc.stderr, proc.stderr
    return out


@pytest.fixture
def diverged_copy(diverged_run, tmp_path):
    dst = tmp_path / "diverged"
    shutil.copytree(diverged_run, dst)
    return dst
