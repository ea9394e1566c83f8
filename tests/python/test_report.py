"""python3 -m underspec.report on a real run: files, figures, self-containment, optional fields."""

import html
import json
import logging
import re
import subprocess
import sys
import warnings

import pandas as pd
import pytest

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
    # No URL at all but the SVG/XLink namespace names (matplotlib's RDF metadata had four).
    urls = set(re.findall(r'https?://[^\s"\'<>]+', text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
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
    path.write_text(json.dumps(doc))
    text = report.write_report(run_copy).read_text()
    assert "mean [0.1235, 9.877]" in text  # 4 significant digits, saying what it is the interval of
    assert "population optimum" in (run_copy / "plots" / "weights.svg").read_text()
    assert 'class="comparisons"' in text


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


# ---------------------------------------------------------------- QA fixes: figures per cell and regime


def _svg_ids(svg: str) -> set:
    return set(re.findall(r'\bid="([^"]+)"', svg))


def test_weights_draw_each_groups_own_optimum_and_truth(run_copy):
    # QA: the first group's optimum (baseline, cell 0) was drawn for every regime and cell.
    # Give every (cell, regime) its own optimum and truth, and look for each in the figure.
    path = run_copy / "summary.json"
    doc = json.loads(path.read_text())
    expected = {}
    for g in doc["groups"]:
        if "weights" not in g:
            continue
        base = 10 * g["cell"] + {"baseline": 1, "domain_randomization": 2, "augmentation": 3}[g["regime"]]
        g["weights"]["optimum"] = [base + 0.1 * k for k in range(4)]
        g["weights"]["true"] = [100 * (g["cell"] + 1) + k for k in range(4)]
        for k, col in enumerate(["w_x1", "w_x2", "w_x3", "bias"]):
            expected[("optimum", g["cell"], g["regime"], col)] = base + 0.1 * k
            expected[("truth", g["cell"], None, col)] = 100 * (g["cell"] + 1) + k
    path.write_text(json.dumps(doc))
    run = underspec.load_run(run_copy)
    fig = report.fig_weights(run)
    drawn = {}
    for ax in fig.axes:
        for line in ax.lines:
            gid = line.get_gid() or ""
            if gid.startswith(("optimum-", "truth-")):
                y = line.get_ydata()
                assert y[0] == y[1]
                drawn[gid] = y[0]
    for (kind, cell, regime, col), v in expected.items():
        gid = f"optimum-c{cell}-{regime}-{col}" if kind == "optimum" else f"truth-c{cell}-{col}"
        assert drawn.pop(gid) == pytest.approx(v), gid
    assert not drawn
    report.write_report(run_copy)
    ids = _svg_ids((run_copy / "plots" / "weights.svg").read_text())
    for regime in ("baseline", "domain_randomization", "augmentation"):
        for cell in (0, 1):
            assert f"optimum-c{cell}-{regime}-w_x3" in ids


def test_weights_optima_of_a_real_run_differ_by_regime(small_run):
    run = underspec.load_run(small_run)
    t = report._weight_table(run)
    x3 = t[(t.cell == 0) & (t.name == "w_x3")].set_index("regime")["optimum"]
    assert x3.nunique() == 3  # the regimes' x3 noise differs, so do their optima
    w = run.weights[(run.weights.cell == 0) & (run.weights.column == "w_x3")].set_index("regime")["optimum"]
    pd.testing.assert_series_equal(x3.sort_index(), w.sort_index(), check_names=False)


def test_grid_figures_are_split_by_cell(run_copy):
    # QA: weights, stress and IID-vs-OOD pooled the cells of a grid (mean over cells, cell 0's truth).
    run = underspec.load_run(run_copy)
    report.write_report(run_copy)
    text = (run_copy / "report.html").read_text()
    labels = [run.cell_label(c) for c in (0, 1)]
    for name, models in (("seeds", 2), ("iid_vs_ood", 2), ("stress", 2), ("weights", 1)):
        fig = report.BUILDERS[name](run)
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert len(titles) == 2 * models, name
        for label in labels:  # each cell on a line of its own under the model's name
            assert sum(t.split("\n", 1)[1] == label for t in titles) == models, (name, titles)
        svg = (run_copy / "plots" / f"{name}.svg").read_text()
        assert all(label in svg for label in labels), name
        fig_html = text[text.index(f'id="fig-{name}"'):]
        assert "One row of panels per grid cell (all 2)" in fig_html[:fig_html.index("<svg")]
    # The stress medians are those of each cell alone.
    fig = report.fig_stress(run)
    s = run.stress
    for ax, (cell, model) in zip(fig.axes, [(c, m) for c in (0, 1) for m in ("perceptron", "mlp")]):
        line = next(ln for ln in ax.lines if ln.get_label().startswith("baseline"))
        sub = s[(s.cell == cell) & (s.model == model) & (s.regime == "baseline")]
        assert list(line.get_ydata()) == pytest.approx(list(sub.groupby("factor").rmse.median().sort_index()))


def test_stress_bands_are_hatched_and_outlined(small_run):
    fig = report.fig_stress(underspec.load_run(small_run))
    bands = [c for c in fig.axes[0].collections]
    assert len(bands) == 3
    assert len({b.get_hatch() for b in bands}) == 3 and all(b.get_hatch() for b in bands)
    for b in bands:
        assert b.get_facecolor()[0][3] < 0.15 and b.get_edgecolor()[0][3] > 0.4  # light fill, visible outline


def test_panel_titles_wrap_long_cell_labels(small_run):
    run = underspec.load_run(small_run)
    run.replicas["train.lr"] = "0.001 and a very long grid value [16, 16, 16, 16] " * 2
    title = report._panel_title(run, "mlp", 0)
    model, *lines = title.split("\n")
    assert model == "mlp" and len(lines) >= 2
    assert all(len(line) <= report.CELL_TITLE_WIDTH for line in lines)


@pytest.fixture(scope="module")
def seed_grid(binary, tmp_path_factory):
    """A grid over data.seed, an integer axis, with 3 seeds per group."""
    out = tmp_path_factory.mktemp("seedgrid") / "run"
    run_binary("run", "--set", "data.n_train=300", "--set", "data.n_test=300", "--set", "train.epochs=2",
               "--set", "sweep.seeds=3", "--set", 'sweep.models=["perceptron"]',
               "--set", 'sweep.grid."data.seed"=[0, 1, 2]', "--device", "cpu", "--threads", "2",
               "--progress", "none", "--no-report", "--out", str(out))
    return out


def test_grid_spread_has_error_bars_and_categorical_integer_axes(seed_grid):
    run = underspec.load_run(seed_grid)
    fig = report.fig_grid_spread(run)
    ax = fig.axes[0]
    # data.seed: one category per value, no fractional ticks.
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert list(ax.get_xticks()) == [0, 1, 2]
    # Every group's std with its bootstrap interval, from summary.json.
    s = run.summary
    for regime in ("baseline", "domain_randomization", "augmentation"):
        bars = next(c for c in ax.collections if c.get_gid() == f"spread-ci-perceptron-{regime}-data.seed")
        got = sorted((round(seg[0][1], 12), round(seg[1][1], 12)) for seg in bars.get_segments())
        g = s[s.regime == regime]
        want = sorted((round(lo, 12), round(hi, 12)) for lo, hi in zip(g.ood_rmse_std_ci_lo, g.ood_rmse_std_ci_hi))
        assert got == want
    report.write_report(seed_grid)
    svg = (seed_grid / "plots" / "grid_spread.svg").read_text()
    assert 'id="spread-ci-perceptron-baseline-data.seed"' in svg


# ---------------------------------------------------------------- QA fixes: tables


def test_comparisons_table_has_the_stdout_columns(run_copy):
    run = underspec.load_run(run_copy)
    text = report.write_report(run_copy).read_text()
    table = text[text.index('<table class="comparisons">'):]
    table = table[:table.index("</table>")]
    heads = re.findall(r"<th>([^<]*)</th>", table)
    assert heads == ["cell"] + [html.escape(h) for h in report.COMPARISON_HEADERS]
    assert "ood_mean_diff" not in table and ".ci" not in table  # no raw JSON keys
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    assert len(rows) == len(run.comparisons)
    first = run.comparisons.iloc[0]
    cells = rows[0].split("</td><td>")
    # value, then its interval
    fmt = report._fmt
    assert cells[4] == (f'{fmt(first.ood_mean_diff)} <span class="ci">[{fmt(first.ood_mean_diff_ci_low)}, '
                        f'{fmt(first.ood_mean_diff_ci_high)}]</span>')
    assert cells[6].startswith(report._fmt(first.ood_std_ratio))
    assert cells[7] == f"{first.brown_forsythe_p:.3g}"


def test_tables_scroll_inside_the_page(run_copy):
    text = report.write_report(run_copy).read_text()
    for css in ("summary", "comparisons"):
        assert f'<div class="scroll"><table class="{css}">' in text, css
    assert ".scroll { overflow-x: auto" in text


def test_interval_note_only_when_an_interval_is_defined(one_seed_run, run_copy):
    assert "95% confidence intervals" in report.write_report(run_copy).read_text()
    text = report.write_report(one_seed_run).read_text()
    assert "95% confidence intervals" not in text and 'class="ci"' not in text


@pytest.fixture
def one_seed_run(binary, tmp_path):
    out = tmp_path / "one"
    run_binary("run", "--set", "data.n_train=300", "--set", "data.n_test=300", "--set", "train.epochs=2",
               "--set", "sweep.seeds=1", "--device", "cpu", "--threads", "2", "--progress", "none", "--no-report",
               "--out", str(out))
    return out


# ---------------------------------------------------------------- many grid cells


@pytest.fixture(scope="module")
def wide_grid(binary, tmp_path_factory):
    """8 x 9 = 72 cells (over MAX_SPREAD_CELLS), 2 seeds, tiny data: a large grid in a second."""
    out = tmp_path_factory.mktemp("widegrid") / "run"
    lrs = ", ".join(f"{1e-3 * (1 + i / 10):g}" for i in range(8))
    factors = ", ".join(f"{0.1 + i / 100:g}" for i in range(9))
    run_binary("run", "--set", "data.n_train=64", "--set", "data.n_test=64", "--set", "train.epochs=1",
               "--set", "sweep.seeds=2", "--set", 'sweep.models=["perceptron"]',
               "--set", f'sweep.grid={{"train.lr"=[{lrs}], "data.train_factor"=[{factors}]}}',
               "--device", "cpu", "--threads", "2", "--progress", "none", "--no-report", "--out", str(out))
    return out


def test_grid_spread_of_many_cells_draws_quartiles_per_grid_value(wide_grid):
    run = underspec.load_run(wide_grid)
    assert run.summary.cell.nunique() > report.MAX_SPREAD_CELLS
    fig = report.fig_grid_spread(run)
    for ax, axis in zip(fig.axes, run.axes):
        values = run.summary[axis].unique()
        for regime in ("baseline", "augmentation"):
            points = next(l for l in ax.lines if l.get_gid() == f"spread-perceptron-{regime}-{axis}")
            assert len(points.get_ydata()) == len(values)  # one point per grid value, not per cell
            g = run.summary[run.summary.regime == regime].groupby(axis)["ood_rmse_std"]
            assert sorted(points.get_ydata()) == pytest.approx(sorted(g.median()))
            bars = next(c for c in ax.collections if c.get_gid() == f"spread-ci-perceptron-{regime}-{axis}")
            got = sorted((seg[0][1], seg[1][1]) for seg in bars.get_segments())
            want = sorted(zip(g.quantile(0.25), g.quantile(0.75)))
            assert got == pytest.approx(want)
    text = report.write_report(wide_grid).read_text()
    assert "one point per grid value, the median over the cells" in text  # the caption says so
    # 72 cells x 3 regimes x 2 axes drawn one by one made ~270 KB; per value ~50 KB.
    assert (wide_grid / "plots" / "grid_spread.svg").stat().st_size < 100_000


def test_grid_spread_of_few_cells_draws_every_cell(seed_grid):
    run = underspec.load_run(seed_grid)
    ax = report.fig_grid_spread(run).axes[0]
    points = next(l for l in ax.lines if l.get_gid() == "spread-perceptron-baseline-data.seed")
    assert len(points.get_ydata()) == 3  # as before: a point per cell


def test_tables_of_many_groups_show_the_first_and_say_how_many_more(run_copy, monkeypatch):
    monkeypatch.setattr(report, "MAX_TABLE_ROWS", 5)
    run = underspec.load_run(run_copy)
    text = report.write_report(run_copy).read_text()
    summary = text[text.index('<table class="summary">'):]
    assert summary[:summary.index("</table>")].count("<tr><td>") == 5
    n = len(run.summary)
    assert f"The first 5 of {n} groups; {n - 5} more in <code>summary.csv</code>" in text
    comparisons = text[text.index('<table class="comparisons">'):]
    assert comparisons[:comparisons.index("</table>")].count("<tr><td>") == 5
    assert f"The first 5 of {len(run.comparisons)} comparisons" in text


def test_cell_labels_follow_the_replicas(run_copy):
    run = underspec.load_run(run_copy)
    assert run.cell_label(1) == "train.lr=0.003"
    run.replicas = run.replicas.assign(**{"train.lr": "3e-3"})  # a new table: labels made again
    assert run.cell_label(1) == "train.lr=3e-3" and run.cell_label(99) == "cell 99"


def test_stress_table_has_each_factor_with_its_intervals(run_copy, one_seed_run):
    run = underspec.load_run(run_copy)
    text = report.write_report(run_copy).read_text()
    table = text[text.index('<table class="stress">'):]
    table = table[:table.index("</table>")]
    heads = re.findall(r"<th>([^<]*)</th>", table)
    assert heads == ["cell", "model", "regime", "factor 0.2", "factor 0.05", "factor 0.02"]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    assert len(rows) == len(run.summary)
    first = run.stress_summary.iloc[0]  # the first group's first factor
    fmt = report._fmt
    assert rows[0].split("</td><td>")[3] == (
        f'{fmt(first.rmse_mean)} ± {fmt(first.rmse_std)}'
        f'<span class="ci">mean [{fmt(first.rmse_mean_ci_lo)}, {fmt(first.rmse_mean_ci_hi)}]</span>'
        f'<span class="ci">std [{fmt(first.rmse_std_ci_lo)}, {fmt(first.rmse_std_ci_hi)}]</span>')
    # No stress factors, no table.
    assert '<table class="stress">' not in report.write_report(one_seed_run).read_text()
