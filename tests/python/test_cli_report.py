"""The C++ side: `underspec report`, and the report at the end of run / merge (not shards)."""

import os
from pathlib import Path

import shutil
import subprocess
import tempfile

import pytest

from conftest import BINARY, SMALL_RUN, underspec

TINY = ["--set", "data.n_train=200", "--set", "data.n_test=200", "--set", "train.epochs=1", "--set", "sweep.seeds=2",
        "--device", "cpu", "--threads", "2", "--progress", "none"]


def fake_matplotlib(tmp_path):
    """A PYTHONPATH under which `import matplotlib` fails, for every interpreter."""
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    return str(fake)


def test_report_command(run_copy):
    proc = underspec("report", str(run_copy))
    assert proc.stdout.strip() == str(run_copy / "report.html")
    assert (run_copy / "report.html").is_file() and (run_copy / "plots" / "seeds.svg").is_file()


def test_report_command_outside_the_repository(run_copy, tmp_path):
    # The package is found from the binary's build, whatever the working directory.
    env = {"PYTHONPATH": ""}
    proc = underspec("report", str(run_copy), cwd=tmp_path, env=env)
    assert (run_copy / "report.html").is_file(), proc.stderr


def test_report_command_errors(tmp_path, run_copy):
    # A directory that is no finished run is bad input, as for merge and score: exit 2,
    # nothing written into it.
    not_a_run = tmp_path / "not_a_run"
    (not_a_run / "checkpoint").mkdir(parents=True)
    proc = underspec("report", str(not_a_run), check=False)
    assert proc.returncode == 2 and "not a finished run directory" in proc.stderr, proc.stderr
    assert str(not_a_run) in proc.stderr and proc.stderr.count("\n") == 1
    assert sorted(p.name for p in not_a_run.iterdir()) == ["checkpoint"]
    proc = underspec("report", str(run_copy), env={"PYTHONPATH": fake_matplotlib(tmp_path)}, check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "apt-get install python3-matplotlib python3-pandas" in proc.stderr
    assert f"underspec report {run_copy}" in proc.stderr


def test_a_run_directory_named_like_an_option_gets_its_report(tmp_path):
    # `--out=-h` once printed the generator's help and claimed a report that was not there.
    for name in ("-h", "-dash"):
        proc = underspec("run", *TINY, f"--out={name}", cwd=tmp_path)
        assert (tmp_path / name / "report.html").is_file(), proc.stderr
        assert "usage:" not in proc.stdout + proc.stderr
    (tmp_path / "-h" / "report.html").unlink()
    underspec("report", "--", "-h", cwd=tmp_path)
    assert (tmp_path / "-h" / "report.html").is_file()


def test_run_writes_the_report(tmp_path):
    out = tmp_path / "r"
    proc = underspec("run", *TINY, "--out", str(out))
    assert (out / "report.html").is_file() and (out / "plots" / "iid_vs_ood.svg").is_file()
    assert f"underspec: report {out / 'report.html'}" in proc.stderr
    assert "report.html" not in proc.stdout  # stdout stays the summary table


def test_no_report_flag_and_environment(tmp_path):
    underspec("run", *TINY, "--no-report", "--out", str(tmp_path / "a"))
    assert not (tmp_path / "a" / "report.html").exists()
    underspec("run", *TINY, "--out", str(tmp_path / "b"), env={"UNDERSPEC_NO_REPORT": "1"})
    assert sorted(p.name for p in (tmp_path / "b").iterdir() if p.name.startswith(("report", "plots"))) == []


def test_run_without_matplotlib_succeeds_with_one_line(tmp_path):
    out = tmp_path / "r"
    proc = underspec("run", *TINY, "--out", str(out), env={"PYTHONPATH": fake_matplotlib(tmp_path)})
    assert proc.returncode == 0 and (out / "summary.json").is_file() and not (out / "report.html").exists()
    lines = [l for l in proc.stderr.splitlines() if "report" in l]
    assert len(lines) == 1, proc.stderr
    assert "apt-get install python3-matplotlib python3-pandas" in lines[0] and f"underspec report {out}" in lines[0]
    # No python3 at all: the same line.
    proc = underspec("run", *TINY, "--out", str(tmp_path / "r2"), env={"UNDERSPEC_PYTHON": "/nonexistent/python3"})
    assert proc.returncode == 0 and "apt-get install python3-matplotlib" in proc.stderr


def test_shards_do_not_report_and_merge_does(tmp_path):
    for i in range(2):
        underspec("run", *TINY, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}"))
        assert not (tmp_path / f"s{i}" / "report.html").exists()
    proc = underspec("merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m"))
    assert (tmp_path / "m" / "report.html").is_file(), proc.stderr


def test_all_diverged_run_leaks_no_library_warning(tmp_path):
    # The QA repro: exit 1 with the outputs and the report written; stderr holds only
    # underspec's own lines (no matplotlib "No artists with labels found to put in legend").
    out = tmp_path / "div"
    proc = underspec("run", "--set", "sweep.seeds=3", "--set", "train.epochs=2", "--set", "data.n_train=500",
                     "--set", "train.lr=1e30", "--set", 'sweep.models=["mlp"]', "--device", "cpu",
                     "--progress", "none", "--out", str(out), check=False)
    assert proc.returncode == 1, proc.stderr
    assert (out / "report.html").is_file()
    assert [line for line in proc.stderr.splitlines() if not line.startswith("underspec: ")] == [], proc.stderr


def test_report_of_an_unwritable_run_is_a_usage_error(run_copy):
    # The QA repro: `underspec report` of a run the user may read but not write ran the
    # generator, which failed on plots/ with a Python errno line and exit 1 (plus, for a user
    # without a writable HOME, matplotlib's warning about its config directory).
    as_other = []
    if os.geteuid() == 0:  # root writes anywhere: run as nobody
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        as_other = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    top = Path(tempfile.mkdtemp(prefix="underspec-ro-"))
    try:
        run = top / "run"
        shutil.copytree(run_copy, run)
        for p in [top, *run.rglob("*"), run]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        proc = subprocess.run([*as_other, BINARY, "report", str(run)], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HOME": "/nonexistent"})
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and str(run) in proc.stderr and "cannot" in proc.stderr, proc.stderr
        assert not (run / "report.html").exists() and not (run / "plots").exists()
    finally:
        for p in [top, *top.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(top)


def test_printed_report_commands_quote_the_path(tmp_path):
    # The line that says how to get the report is a command to paste: a path with a space
    # (or starting with '-') is quoted as in the resume hints.
    out = tmp_path / "my run"
    env = {"PYTHONPATH": fake_matplotlib(tmp_path)}
    proc = underspec("run", *TINY, "--out", str(out), env=env)
    assert f"underspec report '{out}'" in proc.stderr, proc.stderr
    proc = underspec("report", str(out), env=env, check=False)
    assert proc.returncode == 1 and f"underspec report '{out}'" in proc.stderr, proc.stderr


def test_matplotlib_config_warning_does_not_reach_the_terminal(run_copy):
    # Without a writable config directory (a batch user's HOME) matplotlib warns at import,
    # before the generator silences library warnings: README promises none reach the terminal.
    proc = underspec("report", str(run_copy), env={"MPLCONFIGDIR": "/proc/underspec-no-config"})
    assert proc.stderr == "", proc.stderr
