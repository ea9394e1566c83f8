"""python3 -m underspec.report on a real run: files, figures, self-containment, optional fields."""

import json
import logging
import re
import subprocess
import sys
import warnings

import pandas as pd

import underspec
from conftest import underspec as run_binary
from underspec import report

ALL_FIGURES = ["seeds", "iid_vs_ood", "weights", "stress", "grid_spread"]


def external_refs(text):
    """src=/href= values that are not in-page anchors or data: URIs."""
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)["\']', text)
    return [r for r in refs if not r.startswith("#") and not r.startswith("data:")]


def test_report_files_and_figures(run_copy):
    proc = subprocess.run([sys.executable, "-m", "underspec.report", str(run_copy)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run_copy / "report.html")
    text = (run_copy / "report.html").read_text()
    for name in ALL_FIGURES:
        assert f'id="fig-{name}"' in text, name
        svg = (run_copy / "plots" / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert text.count("<svg") == len(ALL_FIGURES)
    assert external_refs(text) == []
    assert "<script" not in text and "<link" not in text and "@import" not in text
    # Ids are unique across the inlined figures.
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))
    # Metadata, summary table, config.
    assert "command_line" in text and 'class="summary"' in text and "[sweep]" in text
    assert text.count("<tr>") >= 12


def test_report_without_stress_grid_or_perceptrons(run_copy):
    run = underspec.load_run(run_copy)
    assert report.expected_figures(run) == ALL_FIGURES
    (run_copy / "stress.csv").write_text("replica,factor,rmse\n")
    run = underspec.load_run(run_copy)
    assert "stress" not in report.expected_figures(run)
    r = run.replicas
    r[r.model == "mlp"].to_csv(run_copy / "replicas.csv", index=False)
    (run_copy / "summary.json").unlink()
    run = underspec.load_run(run_copy)
    assert report.expected_figures(run) == ["seeds", "iid_vs_ood", "grid_spread"]
    out = report.write_report(run_copy)
    text = out.read_text()
    assert 'id="fig-weights"' not in text and 'id="fig-seeds"' in text


def test_report_uses_intervals_optimum_and_comparisons(run_copy):
    path = run_copy / "summary.json"
    doc = json.loads(path.read_text())
    for g in doc["groups"]:
        g["ood_rmse"]["mean_ci"] = [0.123456, 9.87654]
        if "weights" in g:
            g["weights"]["optimum"] = [1.0, 2.0, 0.0, 3.0]
    doc["comparisons"] = [{"metric": "ood_rmse_std", "a": "baseline", "b": "augmentation", "ratio_ci": [1.5, 3.0]}]
    path.write_text(json.dumps(doc))
    text = report.write_report(run_copy).read_text()
    assert "[0.1235, 9.877]" in text  # 4 significant digits
    assert "population optimum" in (run_copy / "plots" / "weights.svg").read_text()
    assert 'class="comparisons"' in text and "ratio_ci" in text


def test_missing_package_exit_status(run_copy, tmp_path):
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = {"PYTHONPATH": f"{fake}:{underspec.__path__[0]}/.."}
    proc = subprocess.run([sys.executable, "-m", "underspec.report", str(run_copy)], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 3
    assert "missing Python package(s): matplotlib" in proc.stderr
    assert not (run_copy / "report.html").exists()


def test_all_diverged_report_emits_no_warning(diverged_copy, caplog):
    # matplotlib logs (not warns) "No artists with labels found to put in legend": check both.
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error")
        out = report.write_report(diverged_copy)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    text = out.read_text()
    assert 'id="fig-seeds"' in text and 'id="fig-iid_vs_ood"' in text
    proc = subprocess.run([sys.executable, "-m", "underspec.report", str(diverged_copy), "--quiet"],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


NOISY_MAIN = """
import logging, sys, warnings
from underspec import report
draw = report.BUILDERS["seeds"]
def noisy(run):
    warnings.warn("a library warning")
    logging.getLogger("matplotlib.fake").warning("a library log line")
    return draw(run)
report.BUILDERS["seeds"] = noisy
sys.exit(report.main([sys.argv[1], "--quiet"]))
"""


def test_library_warnings_do_not_reach_the_terminal(run_copy):
    proc = subprocess.run([sys.executable, "-c", NOISY_MAIN, str(run_copy)], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (run_copy / "report.html").is_file()
    # Asked for with Python's own -W (or PYTHONWARNINGS), they are shown.
    proc = subprocess.run([sys.executable, "-W", "default", "-c", NOISY_MAIN, str(run_copy)], capture_output=True,
                          text=True)
    assert proc.returncode == 0
    assert "a library warning" in proc.stderr and "a library log line" in proc.stderr


def test_report_counts_and_formats_diverged_groups(binary, tmp_path):
    # lr = 2e6: some MLP replicas diverge (QA: 8/8 domain_randomization, 1/8 augmentation), with RMSEs ~1e22.
    out = tmp_path / "pd"
    proc = run_binary("run", "--set", "sweep.seeds=8", "--set", "train.epochs=2", "--set", "data.n_train=500",
                      "--set", 'sweep.models=["mlp"]', "--set", "train.lr=2e6", "--device", "cpu", "--threads", "2",
                      "--progress", "none", "--no-report", "--out", str(out), check=False)
    assert proc.returncode in (0, 1), proc.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert summary.diverged.sum() > 0
    text = report.write_report(out).read_text()
    section = text[text.index('<section id="summary">'):]
    section = section[:section.index("</section>")]
    rows = re.findall(r"<tr><td>mlp</td><td>([a-z_]+)</td><td>([^<]*)</td><td>([^<]*)</td>", section)
    assert len(rows) == len(summary)
    for (regime, n, diverged), (_, g) in zip(rows, summary.iterrows()):
        assert regime == g.regime
        assert n == str(g.replicas - g.diverged)  # the statistics' n, not every replica
        assert diverged == (f"{g.diverged}/{g.replicas} diverged" if g.diverged else "0")
    assert "None" not in section and "nan" not in section
    assert not re.search(r"\d{8,}", section), "numbers are printed with a few significant digits"
    if (summary.diverged == summary.replicas).any():  # a comparison without data shows dashes
        assert "—" in section.split('class="comparisons"')[1]
