"""underspec_bench_cpu and underspec_bench_stats, the developer harnesses of BENCHMARKS.md:
bad arguments are exit 2 before any timing, and underspec_bench_cpu's peak, like `underspec
bench`'s, counts no thread beyond the hardware."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BINARY

HARNESS = Path(BINARY).parent / "underspec_bench_cpu"


def harness(*args):
    if not HARNESS.is_file():
        pytest.fail(f"{HARNESS}: not built (cmake --build build --target underspec_bench_cpu)")
    return subprocess.run([str(HARNESS), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--threads", "-5"], "--threads"),
    (["--threads", str(4 * os.cpu_count() + 1)], "--threads"),
    (["--peak-seconds", "0"], "--peak-seconds"),
    (["--peak-seconds", "-1"], "--peak-seconds"),
    (["--repeat", "0"], "--repeat"),
    (["--json", "/nonexistent/b.json"], "--json /nonexistent/b.json"),
])
def test_bad_arguments_exit_2_before_any_work(args, message):
    proc = harness(*args, "--quick")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "FMA probe" not in proc.stderr


def test_peak_counts_no_thread_beyond_the_hardware(tmp_path):
    hardware = os.cpu_count()
    out = tmp_path / "b.json"
    proc = harness("--quick", "--threads", 4 * hardware, "--peak-seconds", "0.05", "--json", out)
    assert proc.returncode == 0, proc.stderr
    peak = json.loads(out.read_text())["fma_peak"]
    bound = max(peak["gflops_all_threads"], hardware * peak["gflops_1_thread"])
    assert peak["gflops_used"] <= bound * (1 + 1e-12), peak


STATS = Path(BINARY).parent / "underspec_bench_stats"


@pytest.mark.parametrize("size", ["abc", "0", "1", "-5", "1e3"])
def test_stats_bench_refuses_a_group_size_that_is_not_a_whole_number_of_at_least_two(size):
    if not STATS.is_file():
        pytest.fail(f"{STATS}: not built (cmake --build build --target underspec_bench_stats)")
    proc = subprocess.run([str(STATS), "50", size], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"group size '{size}' is not a whole number" in proc.stderr
    assert proc.stdout == ""  # refused before any timing
