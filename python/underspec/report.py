"""The HTML report of a run: ``python3 -m underspec.report DIR [--quiet]``.

Writes DIR/report.html (self-contained: every figure is an inline SVG, no scripts, styles or
fonts from elsewhere) and DIR/plots/<name>.svg. Exit status: 0 written, 1 failure (e.g. not a
run directory), 3 a required Python package (pandas, matplotlib, numpy) is missing.
"""

from __future__ import annotations

import os
import sys

EXIT_MISSING_PACKAGE = 3


def _require_packages() -> None:
    missing = []
    for name in ("numpy", "pandas", "matplotlib"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        if not os.environ.get("UNDERSPEC_REPORT_QUIET_MISSING"):  # `underspec` prints its own line
            print("underspec.report: missing Python package(s): " + ", ".join(missing), file=sys.stderr)
        sys.exit(EXIT_MISSING_PACKAGE)


if __name__ == "__main__":
    # Ctrl-C ends the generator quietly (no traceback from whatever import it interrupts):
    # `underspec`, which gets the same signal, says what happened.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if not sys.warnoptions:
        # matplotlib warns at import when its config directory cannot be written (a batch
        # user's HOME): a library warning like those _library_warnings_silenced hides later.
        import logging

        logging.getLogger("matplotlib").setLevel(logging.ERROR)
    _require_packages()

import contextlib  # noqa: E402
import html  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import textwrap  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .load import WEIGHT_COLUMNS, Run, RunDataWarning, finite, load_run  # noqa: E402

plt.rcParams.update({
    "svg.fonttype": "none",  # text stays text: small files, the browser's sans-serif
    "svg.hashsalt": "underspec",  # deterministic ids
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
})

REGIME_COLORS = {"baseline": "#d62728", "domain_randomization": "#1f77b4", "augmentation": "#2ca02c"}
MODEL_MARKERS = {"perceptron": "o", "mlp": "s"}
MAX_STRIP_POINTS = 400  # per box
MAX_SCATTER_POINTS = 4000  # per panel
MAX_CELL_PANELS = 6  # grid cells drawn in a per-cell figure (one row of panels each)
CELL_TITLE_WIDTH = 46  # characters per line of a panel's grid-cell title
MAX_SPREAD_CELLS = 60  # grid_spread draws every cell up to this many, else quartiles per grid value
MAX_TABLE_ROWS = 100  # rows of the summary and comparisons tables; the CSVs have every one
MAX_AXIS_LABELS = 10  # tick labels per grid axis; beyond, every k-th value is labelled

# id, title, caption of every figure the report may hold (in order).
FIGURES = {
    "seeds": "IID and OOD RMSE across seeds",
    "iid_vs_ood": "IID vs OOD RMSE per replica",
    "weights": "Learned perceptron weights vs the truth",
    "stress": "OOD RMSE vs stress factor",
    "grid_spread": "OOD spread across seeds vs grid axes",
}


def regime_color(regime: str, order: list) -> str:
    if regime in REGIME_COLORS:
        return REGIME_COLORS[regime]
    return plt.get_cmap("tab10")(order.index(regime) % 10 if regime in order else 0)


def _ordered(values) -> list:
    """Unique values in first-seen order (the run's order of models and regimes)."""
    return list(dict.fromkeys(values))


def _sample(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df if len(df) <= n else df.sample(n, random_state=0)


def _as_number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- figures


def _legend(ax, **kwargs) -> None:
    """A legend only when something is labelled: a panel with nothing drawn (every replica
    diverged) would make matplotlib warn "No artists with labels found"."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _cell_parts(run: Run, cell) -> list:
    """`axis=value` of each grid axis of `cell` (from the replicas, as Run.cell_label)."""
    label = run.cell_label(cell)
    if not label:
        return []
    at = np.flatnonzero(run.replicas.cell.to_numpy() == cell)[:1]  # its first row, not a copy of them all
    return [f"{a}={run.replicas[a].iloc[at[0]]}" for a in run.axes] if len(at) else [label]


def _panel_title(run: Run, model: str, cell) -> str:
    """The model, then the cell's axes wrapped on lines of their own: long grid-cell labels of
    neighbouring panels overlapped on one line. A non-breaking space inside `axis=value` keeps
    a value such as `[16, 16]` whole."""
    parts = _cell_parts(run, cell)
    if not parts:
        return model
    return model + "\n" + textwrap.fill(" ".join(p.replace(" ", "\u00a0") for p in parts), width=CELL_TITLE_WIDTH)


def _shown_cells(cells) -> list:
    """The grid cells a per-cell figure draws: the first MAX_CELL_PANELS, in the run's order."""
    return _ordered(cells)[:MAX_CELL_PANELS]


def _cell_rows(run: Run, cells: list, models: list, width: float, height: float):
    """A figure with one row of panels per grid cell (one row without a grid) and one column
    per model: a grid's cells are never pooled into one panel."""
    title_lines = max((_panel_title(run, m, c).count("\n") for c in cells for m in models), default=0)
    fig, axes = plt.subplots(len(cells), len(models), squeeze=False,
                             figsize=(width * len(models) + 0.8, (height + 0.15 * title_lines) * len(cells)))
    return fig, axes


def _cells_note(fig, shown: int, total: int) -> None:
    if total > shown:
        fig.suptitle(f"first {shown} of {total} cells", fontsize=8)


def fig_seeds(run: Run):
    r = run.replicas
    models, regimes = _ordered(r.model), _ordered(r.regime)
    cells = _shown_cells(r.cell)
    fig, axes = _cell_rows(run, cells, models, 4.2, 3.2)
    rng = np.random.default_rng(0)
    for i, cell in enumerate(cells):
        for j, model in enumerate(models):
            ax = axes[i][j]
            ticks, labels = [], []
            for k, regime in enumerate(regimes):
                sub = r.loc[(r.cell == cell) & (r.model == model) & (r.regime == regime), ["iid_rmse", "ood_rmse"]]
                if sub.empty:
                    continue
                color = regime_color(regime, regimes)
                for m, (metric, name) in enumerate((("iid_rmse", "IID"), ("ood_rmse", "OOD"))):
                    x = 3 * k + m  # IID (light) and OOD (dark) side by side
                    vals = sub[metric].dropna().to_numpy()
                    if len(vals) == 0:
                        continue
                    bp = ax.boxplot(vals, positions=[x], widths=0.7, patch_artist=True, showfliers=False,
                                    medianprops={"color": "black"})
                    for patch in bp["boxes"]:
                        patch.set_facecolor(color)
                        patch.set_alpha(0.25 if name == "IID" else 0.55)
                    pts = vals if len(vals) <= MAX_STRIP_POINTS else rng.choice(vals, MAX_STRIP_POINTS, replace=False)
                    ax.scatter(x + rng.uniform(-0.22, 0.22, len(pts)), pts, s=9, color=color,
                               edgecolors="black", linewidths=0.3, zorder=3)
                ticks.append(3 * k + 0.5)
                labels.append("IID   OOD\n" + regime.replace("_", "\n"))
            ax.set_xticks(ticks)
            ax.set_xticklabels(labels, fontsize=7)
            ax.set_title(_panel_title(run, model, cell), fontsize=8)
            if j == 0:
                ax.set_ylabel("RMSE")
    _cells_note(fig, len(cells), r.cell.nunique())
    fig.tight_layout()
    return fig


def fig_iid_vs_ood(run: Run):
    r = run.replicas
    models, regimes = _ordered(r.model), _ordered(r.regime)
    cells = _shown_cells(r.cell)
    fig, axes = _cell_rows(run, cells, models, 4.4, 3.6)
    for i, cell in enumerate(cells):
        for j, model in enumerate(models):
            ax = axes[i][j]
            sub = r.loc[(r.cell == cell) & (r.model == model), ["regime", "iid_rmse", "ood_rmse"]]
            sub = sub.dropna(subset=["iid_rmse", "ood_rmse"])
            sub = _sample(sub, MAX_SCATTER_POINTS)
            for regime in regimes:
                s = sub[sub.regime == regime]
                if s.empty:
                    continue
                ax.scatter(s.iid_rmse, s.ood_rmse, s=12, alpha=0.75, color=regime_color(regime, regimes),
                           marker=MODEL_MARKERS.get(model, "o"), edgecolors="black", linewidths=0.3, label=regime)
            if not sub.empty:
                lo = min(sub.iid_rmse.min(), sub.ood_rmse.min())
                hi = max(sub.iid_rmse.max(), sub.ood_rmse.max())
                pad = 0.05 * (hi - lo if hi > lo else 1.0)
                ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", lw=0.8, ls="--", label="OOD = IID")
            ax.set_xlabel("IID RMSE")
            ax.set_ylabel("OOD RMSE")
            ax.set_title(_panel_title(run, model, cell), fontsize=8)
            _legend(ax, fontsize=7)
    _cells_note(fig, len(cells), r.cell.nunique())
    fig.tight_layout()
    return fig


WEIGHT_TABLE_COLUMNS = ["cell", "regime", "name", "mean", "std", "true", "optimum"]


def _has_weight_summary(run: Run) -> bool:
    """Whether summary.json has the weights' statistics (else they come from replicas.csv)."""
    return not run.weights.empty and {"column", "mean"} <= set(run.weights.columns)


def _weight_table(run: Run) -> pd.DataFrame:
    """Per (cell, regime, weight): mean, std, true, optimum of the perceptrons' weights; `name`
    is the weight's replicas.csv column (w_x1, ..., bias). From summary.json (run.weights),
    which has every group's own truth and population optimum: the optimum depends on the
    regime (its x3 noise) and both on the cell (its data axes)."""
    w = run.weights
    if _has_weight_summary(run):
        t = w[w.model == "perceptron"] if "model" in w else w
        t = t.drop(columns="name").rename(columns={"column": "name"})  # x1 -> w_x1, as replicas.csv
        t = t.reindex(columns=WEIGHT_TABLE_COLUMNS)
        return t.dropna(subset=["mean"]).reset_index(drop=True)  # every replica diverged: nothing to draw
    return _weight_table_from_replicas(run)


def _weight_table_from_replicas(run: Run) -> pd.DataFrame:
    """Without summary.json: mean and std from replicas.csv, the truth from config.toml (unless
    the grid varies it), no optimum."""
    per = run.replicas[run.replicas.model == "perceptron"]
    cols = [c for c in WEIGHT_COLUMNS if c in per]
    per = per.dropna(subset=cols)
    if per.empty or not cols:
        return pd.DataFrame(columns=WEIGHT_TABLE_COLUMNS)
    long = per.melt(id_vars=["cell", "regime"], value_vars=cols, var_name="name", value_name="value")
    t = long.groupby(["cell", "regime", "name"], sort=False)["value"].agg(["mean", "std"]).reset_index()
    data = run.config.get("data", {}) if isinstance(run.config, dict) else {}
    if not any(a.startswith(("data.coefficients", "data.intercept")) for a in run.axes):
        coef = data.get("coefficients", [1.0, 2.0])
        truth = {"w_x1": coef[0], "w_x2": coef[1], "w_x3": 0.0, "bias": data.get("intercept", 3.0)}
        t["true"] = t["name"].map(truth)
    return t.reindex(columns=WEIGHT_TABLE_COLUMNS)


def fig_weights(run: Run):
    t = _weight_table(run)
    if t.empty:
        return None
    names, regimes = _ordered(t["name"]), _ordered(t.regime)
    cells = _shown_cells(t.cell)
    fig, axes = _cell_rows(run, cells, ["perceptron"], 8.7, 3.4)
    width = 0.8 / max(1, len(regimes))
    for i, cell in enumerate(cells):
        ax = axes[i][0]
        tc = t[t.cell == cell]
        for k, regime in enumerate(regimes):
            s = tc[tc.regime == regime].set_index("name").reindex(names)
            if s["mean"].isna().all():
                continue
            color = regime_color(regime, regimes)
            x = np.arange(len(names)) - 0.4 + width * (k + 0.5)
            ax.errorbar(x, s["mean"], yerr=s["std"].fillna(0), fmt="o", capsize=3, ms=5, color=color,
                        label=f"{regime} (mean ± std over seeds)")
            # The regime's own optimum, as a dashed tick in its colour over its slot.
            for xi, name, v in zip(x, names, s["optimum"]):
                if finite(v):
                    ax.plot([xi - 0.45 * width, xi + 0.45 * width], [v, v], color=color, lw=1.6, ls=(0, (2, 1)),
                            gid=f"optimum-c{cell}-{regime}-{name}")
        truth = tc.groupby("name", sort=False)["true"].first().reindex(names)
        for n, (name, v) in enumerate(truth.items()):
            if finite(v):
                ax.plot([n - 0.45, n + 0.45], [v, v], color="black", lw=1.2, zorder=1, gid=f"truth-c{cell}-{name}",
                        label="truth" if n == 0 else None)
        if tc["optimum"].notna().any():  # a legend entry for the ticks, drawn in each regime's colour
            ax.plot([], [], color="grey", lw=1.6, ls=(0, (2, 1)), label="population optimum of the regime")
        ax.set_xticks(np.arange(len(names)))
        ax.set_xticklabels(names)
        ax.set_ylabel("weight")
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(_panel_title(run, "perceptron", cell), fontsize=8)
        _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    _cells_note(fig, len(cells), t.cell.nunique())
    fig.tight_layout()
    return fig


REGIME_HATCHES = {"baseline": "////", "domain_randomization": "\\\\\\\\", "augmentation": "...."}


def _iqr_band(ax, q: pd.DataFrame, regime: str, regimes: list) -> None:
    """The interquartile band of one regime: a light fill with a hatch and an outline in its
    colour, so that overlapping bands of two regimes stay distinguishable (one alpha fill each
    blended into a single grey-green area)."""
    color = regime_color(regime, regimes)
    hatch = REGIME_HATCHES.get(regime, ["xx", "++", "oo"][regimes.index(regime) % 3])
    ax.fill_between(q.index, q[0.25], q[0.75], facecolor=mcolors.to_rgba(color, 0.08),
                    edgecolor=mcolors.to_rgba(color, 0.6), hatch=hatch, lw=0.8)


def fig_stress(run: Run):
    s = run.stress
    if s is None or s.empty or "rmse" not in s:
        return None
    keep = s["rmse"].notna() & s["factor"].notna()
    if not keep.any():
        return None
    if not keep.all():  # else no copy: 10^6 replicas with 5 factors are 5x10^6 rows
        s = s[keep]
    models, regimes = _ordered(s.model), _ordered(s.regime)
    cells = _shown_cells(s.cell)
    fig, axes = _cell_rows(run, cells, models, 4.4, 3.6)
    factors = sorted(s.factor.unique())
    for i, cell in enumerate(cells):
        for j, model in enumerate(models):
            ax = axes[i][j]
            for regime in regimes:
                at = ((s.cell == cell) & (s.model == model) & (s.regime == regime)).to_numpy()
                if not at.any():
                    continue
                sub = pd.DataFrame({"factor": s["factor"].to_numpy()[at], "rmse": s["rmse"].to_numpy()[at]})
                q = sub.groupby("factor")["rmse"].quantile([0.25, 0.5, 0.75]).unstack().sort_index()
                _iqr_band(ax, q, regime, regimes)
                ax.plot(q.index, q[0.5], marker="o", ms=3.5, color=regime_color(regime, regimes),
                        label=f"{regime} (median, IQR)")
            ax.set_xscale("log")
            if len(factors) <= 12:
                ax.set_xticks(factors)
                ax.set_xticklabels([f"{f:g}" for f in factors])
                ax.minorticks_off()
            ax.set_xlabel("stress factor (x3 = y + N(0,1)/factor)")
            ax.set_ylabel("RMSE")
            ax.set_title(_panel_title(run, model, cell), fontsize=8)
            _legend(ax, fontsize=7)
    _cells_note(fig, len(cells), s.cell.nunique())
    fig.tight_layout()
    return fig


def _axis_positions(values) -> dict:
    """Grid values as categories: positions 0, 1, ... in numeric order where every value is a
    number (else in the run's order). A grid holds a few chosen values (an integer axis such as
    data.seed drawn as continuous got ticks at 0.2, 0.4, ...), and categories leave room to
    set the series side by side with their error bars."""
    values = _ordered(values)
    if all(_as_number(v) is not None for v in values):
        values = sorted(values, key=_as_number)
    return {v: i for i, v in enumerate(values)}


def _spread_table(run: Run) -> pd.DataFrame:
    """Per group: cell, axes, model, regime, std (of the OOD RMSE) and its interval lo / hi
    (NaN where undefined, or without summary.json)."""
    s = run.summary
    cols = {"ood_rmse_std": "std", "ood_rmse_std_ci_lo": "lo", "ood_rmse_std_ci_hi": "hi"}
    t = s.rename(columns=cols).reindex(columns=["cell", *run.axes, "model", "regime", *cols.values()])
    return t.dropna(subset=["std"])


def _spread_by_value(sub: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Per value of `axis`: the median std over the cells of that value (the other axes vary)
    and its interquartile range as lo / hi."""
    q = sub.groupby(sub[axis].astype(str))["std"].quantile([0.25, 0.5, 0.75]).unstack()
    return q.rename(columns={0.25: "lo", 0.5: "std", 0.75: "hi"}).reset_index()


def fig_grid_spread(run: Run):
    """Every cell's std with its interval up to MAX_SPREAD_CELLS cells; beyond, per grid value
    the median and quartiles over the cells of that value: one point per value and series, so
    the figure's size follows the axes' lengths, not their product (2000 cells x 2 axes drew
    12,000 points with an error bar and two caps each: 7.9 MB of SVG)."""
    if not run.axes:
        return None
    t = _spread_table(run)
    if t.empty:
        return None
    per_cell = t.cell.nunique() <= MAX_SPREAD_CELLS
    models, regimes = _ordered(t.model), _ordered(t.regime)
    series = [(m, g) for m in models for g in regimes if not t[(t.model == m) & (t.regime == g)].empty]
    step = 0.8 / len(series)
    fig, axes = plt.subplots(1, len(run.axes), figsize=(4.8 * len(run.axes) + 0.6, 4.0), squeeze=False)
    for a, axis in enumerate(run.axes):
        ax = axes[0][a]
        pos = _axis_positions(t[axis].astype(str))
        for k, (model, regime) in enumerate(series):
            sub = t[(t.model == model) & (t.regime == regime)]
            if not per_cell:
                sub = _spread_by_value(sub, axis)
            x = sub[axis].astype(str).map(pos) + (k - (len(series) - 1) / 2) * step  # side by side
            color = regime_color(regime, regimes)
            # Its std with its 95% bootstrap interval per cell (no bar where undefined), or per
            # value the median std with its interquartile range over the cells.
            yerr = np.vstack([(sub["std"] - sub["lo"]).to_numpy(), (sub["hi"] - sub["std"]).to_numpy()])
            bars = ax.errorbar(x, sub["std"], yerr=np.nan_to_num(yerr, nan=0.0), fmt=MODEL_MARKERS.get(model, "o"),
                               ms=4, capsize=2 if per_cell else 0, elinewidth=0.9, color=color, alpha=0.9,
                               ls="none", label=f"{model} {regime}")
            bars.lines[0].set_gid(f"spread-{model}-{regime}-{axis}")  # ids for the tests: the points
            bars.lines[2][0].set_gid(f"spread-ci-{model}-{regime}-{axis}")  # and their interval bars
            if len(run.axes) > 1:  # the mean (per cell) or the median (per value) over the other axes
                line = sub.assign(x=x).groupby("x")["std"].mean()
                ax.plot(line.index, line.to_numpy(), color=color, lw=0.9, ls="-" if model == models[0] else "--")
        ax.set_xticks(list(pos.values()))
        labels = list(pos)
        every = math.ceil(len(labels) / MAX_AXIS_LABELS)  # a label on every k-th value only
        ax.set_xticklabels([v if i % every == 0 else "" for i, v in enumerate(labels)],
                           rotation=20 if max(map(len, labels)) > 6 or every > 1 else 0, fontsize=7)
        ax.set_xlim(-0.6, len(pos) - 0.4)
        ax.set_xlabel(axis)
        ax.set_ylabel("std of OOD RMSE across seeds")
        if len(run.axes) > 1:
            ax.set_title("points: cells; lines: mean over the other axes" if per_cell else
                         "per value: median over the other axes' cells, IQR bars", fontsize=8)
    # One legend, outside the last panel: inside, six entries hid the points of every panel.
    _legend(axes[0][-1], fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


BUILDERS = {
    "seeds": fig_seeds,
    "iid_vs_ood": fig_iid_vs_ood,
    "weights": fig_weights,
    "stress": fig_stress,
    "grid_spread": fig_grid_spread,
}


def expected_figures(run: Run) -> list:
    """The figures a report of `run` holds."""
    names = ["seeds", "iid_vs_ood"]
    if not _weight_table(run).empty:
        names.append("weights")
    if run.stress is not None and not run.stress.empty:
        names.append("stress")
    if run.axes:
        names.append("grid_spread")
    return names


# ---------------------------------------------------------------- HTML


def _svg_text(fig) -> str:
    buf = io.StringIO()
    # No RDF metadata: its Creator and Type are URLs (https://matplotlib.org/, purl.org), and
    # the report holds none but the SVG namespaces.
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Type": None, "Format": None})
    plt.close(fig)
    return buf.getvalue()


def _inline_svg(svg: str, prefix: str) -> str:
    """The <svg> element alone, its ids prefixed so that several figures can share a page."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)
    return svg


UNDEFINED = "—"  # as the CLI table: a std of one replica, a test without data


def _fmt(x, digits=4) -> str:
    # Significant digits, not decimals: a diverging sweep's RMSE of 4e22 stays readable.
    if not finite(x):
        return UNDEFINED
    return f"{float(x):.{digits}g}"


def _count(x):
    """An integer count from the summary (NaN or missing: None)."""
    return int(x) if finite(x) else None


CI_BOUNDS = [("lo", "hi"), ("low", "high"), ("lower", "upper")]


def _interval(row, metric: str, stat: str) -> str:
    """`<stat> [lo, hi]` on a line of its own from summary.json's `<stat>_ci`, or "" where
    undefined: the table stays narrow and every interval says what it is of."""
    for a, b in CI_BOUNDS:
        lo, hi = row.get(f"{metric}_{stat}_ci_{a}"), row.get(f"{metric}_{stat}_ci_{b}")
        if finite(lo) and finite(hi):
            return f'<span class="ci">{stat} [{_fmt(lo)}, {_fmt(hi)}]</span>'
    return ""


def _any_interval(table: pd.DataFrame) -> bool:
    """Whether some interval of the table is defined (with 1 seed none is)."""
    ends = [c for c in table.columns if c.endswith(tuple(f"_ci_{a}" for a, _ in CI_BOUNDS))]
    return bool(ends) and table[ends].apply(pd.to_numeric, errors="coerce").notna().any().any()


def _scroll(table: str) -> str:
    """A table in a box that scrolls sideways: a wide one (many grid axes) stays on the page
    instead of running past its edge."""
    return f'<div class="scroll">{table}</div>'


def _rows_left_out(total: int, what: str, csv: str) -> str:
    """The line under a table cut at MAX_TABLE_ROWS (as the stdout table): thousands of rows
    made a page of megabytes that no one reads; the CSV holds them all."""
    if total <= MAX_TABLE_ROWS:
        return ""
    return (f'<p class="note rows-left-out">The first {MAX_TABLE_ROWS} of {total} {what}; '
            f"{total - MAX_TABLE_ROWS} more in <code>{csv}</code>, which has all of them.</p>")


def _summary_table(run: Run) -> str:
    s = run.summary
    if s.empty:
        return "<p>No groups.</p>"
    has_ci = _any_interval(s)
    w3 = {}
    if _has_weight_summary(run):
        for _, w in run.weights[run.weights["column"] == "w_x3"].iterrows():
            w3[(w["cell"], w["model"], w["regime"])] = w["mean"]
    else:
        per = run.replicas[run.replicas.model == "perceptron"]
        if "w_x3" in per:
            for key, v in per.groupby(["cell", "model", "regime"])["w_x3"].mean().items():
                w3[key] = v
    head = ["cell"] if run.axes else []
    head += ["model", "regime", "n", "diverged", "IID RMSE mean ± std", "OOD RMSE mean ± std",
             "OOD min / median / max", "w_x3 (mean)"]
    out = ['<table class="summary"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for _, row in s.head(MAX_TABLE_ROWS).iterrows():
        cells = [html.escape(run.cell_label(row["cell"]))] if run.axes else []
        # n is what the statistics use: the replicas that did not diverge (as the CLI table).
        replicas, diverged = _count(row.get("replicas")), _count(row.get("diverged"))
        n = _count(row.get("ood_rmse_n"))
        if n is None and replicas is not None:
            n = replicas - (diverged or 0)
        cells += [html.escape(str(row.get("model"))), html.escape(str(row.get("regime"))),
                  UNDEFINED if n is None else str(n),
                  UNDEFINED if diverged is None else (f"{diverged}/{replicas} diverged" if diverged else "0")]
        for metric in ("iid_rmse", "ood_rmse"):
            cells.append(f"{_fmt(row.get(metric + '_mean'))} ± {_fmt(row.get(metric + '_std'))}"
                         + _interval(row, metric, "mean") + _interval(row, metric, "std"))
        cells.append(" / ".join(_fmt(row.get(f"ood_rmse_{k}")) for k in ("min", "median", "max")))
        cells.append(_fmt(w3.get((row.get("cell"), row.get("model"), row.get("regime")))))
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    out = [_scroll("".join(out)) + _rows_left_out(len(s), "groups", "summary.csv")]
    out.append('<p class="note">n: the replicas in the statistics; diverged replicas (parameters or RMSE not '
               'finite) are left out of every statistic. —: undefined (e.g. a std of one replica).</p>')
    if has_ci:
        out.append('<p class="note">Below each mean ± std: the 95% confidence intervals of the mean (Student t) '
                   'and of the std (percentile bootstrap; it covers less than 95% with few seeds, see README '
                   '"Intervals"), from summary.json.</p>')
    return "\n".join(out)


def _with_interval(value, lo, hi) -> str:
    """`value [lo, hi]` as the stdout table prints it; the interval left out where undefined."""
    text = _fmt(value)
    if finite(lo) and finite(hi):
        text += f' <span class="ci">[{_fmt(lo)}, {_fmt(hi)}]</span>'
    return text


def _p_value(p) -> str:
    return f"{float(p):.3g}" if finite(p) else UNDEFINED


# The comparisons table: the columns of the stdout table (src/outputs/outputs.cpp), from comparisons.csv.
COMPARISON_HEADERS = ["model", "remedy vs baseline", "n (remedy / baseline)", "OOD mean diff [95% Welch CI]",
                      "Welch p", "OOD std ratio [95% bootstrap CI]", "Brown–Forsythe p"]


def _comparisons_table(run: Run) -> str:
    """Each remedy against the baseline of its cell and model: the difference of the OOD means
    and the ratio of the OOD stds (remedy / baseline), each value followed by its interval."""
    c = run.comparisons
    if c.empty:
        return ""
    head = (["cell"] if run.axes else []) + COMPARISON_HEADERS
    rows = []
    for _, r in c.head(MAX_TABLE_ROWS).iterrows():
        cells = [html.escape(run.cell_label(r["cell"]))] if run.axes else []
        cells += [html.escape(str(r["model"])), html.escape(f"{r['remedy']} vs {r['baseline']}"),
                  f"{_count(r['remedy_n'])} / {_count(r['baseline_n'])}",
                  _with_interval(r["ood_mean_diff"], r["ood_mean_diff_ci_low"], r["ood_mean_diff_ci_high"]),
                  _p_value(r["welch_p"]),
                  _with_interval(r["ood_std_ratio"], r["ood_std_ratio_ci_low"], r["ood_std_ratio_ci_high"]),
                  _p_value(r["brown_forsythe_p"])]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    table = ('<table class="comparisons"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
             + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    note = ('<p class="note">Remedy − baseline of the OOD RMSE mean (Welch) and remedy / baseline of its std '
            '(below 1: the remedy narrows the spread across seeds); Brown–Forsythe tests equal spreads. '
            'From comparisons.csv; —: undefined.</p>')
    return _scroll(table) + _rows_left_out(len(c), "comparisons", "comparisons.csv") + note


def _stress_table(run: Run) -> str:
    """RMSE on each stress factor, mean ± std with their intervals (summary.json's `stress`),
    one row per group: the stress figure's medians and quartiles, with their uncertainty."""
    ss = run.stress_summary
    if ss is None or ss.empty or "factor" not in ss or "rmse_mean" not in ss:
        return ""
    keys = ["cell", "model", "regime"]
    groups = ss[keys].drop_duplicates()
    factors = list(dict.fromkeys(ss["factor"]))  # in the config's order
    at = {(r["cell"], r["model"], r["regime"], r["factor"]): r for r in ss.to_dict("records")}
    head = (["cell"] if run.axes else []) + ["model", "regime"] + [f"factor {f:g}" for f in factors]
    rows = []
    for cell, model, regime in groups.head(MAX_TABLE_ROWS).itertuples(index=False):
        cells = [html.escape(run.cell_label(cell))] if run.axes else []
        cells += [html.escape(str(model)), html.escape(str(regime))]
        for f in factors:
            row = at.get((cell, model, regime, f))
            if row is None:  # a cell without this factor
                cells.append("")
                continue
            cells.append(f"{_fmt(row.get('rmse_mean'))} ± {_fmt(row.get('rmse_std'))}"
                         + _interval(row, "rmse", "mean") + _interval(row, "rmse", "std"))
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    table = ('<table class="stress"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
             + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    note = ('<p class="note">RMSE on the stress test domains (x3 = y + N(0,1)/factor), mean ± std over seeds, '
            'below them their 95% intervals as in the summary table. From summary.json; —: undefined.</p>')
    return _scroll(table) + _rows_left_out(len(groups), "groups", "summary.csv") + note


def _meta_table(run: Run) -> str:
    order = ["version", "git_commit", "started_utc", "command_line", "host", "backend", "devices", "cpu_kernels",
             "threads", "wall_seconds", "replicas", "cells", "shard"]
    keys = [k for k in order if k in run.meta] + [k for k in run.meta if k not in order]
    rows = []
    for k in keys:
        v = run.meta[k]
        if v in ("", None) or v == []:
            continue
        if k == "wall_seconds" and finite(v):
            v = f"{float(v):.3f} s training"
        if isinstance(v, list):
            v = ", ".join(map(str, v))
        rows.append(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(str(v))}</code></td></tr>")
    return '<table class="meta">' + "".join(rows) + "</table>"


CSS = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1150px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
td { font-variant-numeric: tabular-nums; } .scroll { overflow-x: auto; max-width: 100%; }
thead th { background: #f3f3f3; } .note { color: #555; font-size: 0.85em; }
.ci { color: #666; font-size: 0.9em; white-space: nowrap; } table.summary .ci, table.stress .ci { display: block; }
table.comparisons td:nth-last-child(-n+5) { white-space: nowrap; }  /* numbers, p-values: one line */
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #444; margin-bottom: 0.3em; }
figure svg { max-width: 100%; height: auto; } pre { background: #f6f6f6; padding: 0.6em; font-size: 0.8em; }
"""

CAPTIONS = {
    "seeds": "Box plots (quartiles, whiskers to 1.5 IQR) of the RMSE on the IID and OOD test sets, per regime "
             "and model, with every seed drawn as a dot. Same IID error, wide OOD spread: underspecification.",
    "iid_vs_ood": "One dot per replica. Replicas at the same IID RMSE but different OOD RMSE differ only in "
                  "their seed: the IID test cannot tell them apart.",
    "weights": "Mean ± std over seeds of the perceptron's learned weights, against the structural model's "
               "true coefficients (black) and each regime's population optimum (dashed, in the regime's colour; "
               "from summary.json).",
    "stress": "RMSE on test domains where the spurious feature x3 gets noisier (smaller factor): median over "
              "seeds and interquartile band (hatched) per regime.",
    "grid_spread": "Standard deviation of the OOD RMSE across seeds of every grid cell, against each grid axis, "
                   "with its 95% bootstrap interval (summary.json's std_ci; none where undefined). Grid values "
                   "are drawn as categories, the series side by side.",
}

# Figures drawn per grid cell (one row of panels each), never pooled over cells.
PER_CELL_FIGURES = ("seeds", "iid_vs_ood", "weights", "stress")


def _caption(run: Run, name: str) -> str:
    """The figure's caption, saying how a grid is drawn: one row per cell, and which cells."""
    text = CAPTIONS[name]
    cells = run.replicas.cell.nunique()
    if run.axes and name in PER_CELL_FIGURES:
        which = f"all {cells}" if cells <= MAX_CELL_PANELS else f"the first {MAX_CELL_PANELS} of {cells}"
        text += f" One row of panels per grid cell ({which})."
    if name == "grid_spread" and cells > MAX_SPREAD_CELLS:
        text = (f"Standard deviation of the OOD RMSE across seeds against each grid axis: with {cells} cells "
                f"(over {MAX_SPREAD_CELLS}), one point per grid value, the median over the cells of that value "
                "(the other axes vary), with bars from the first to the third quartile; each cell's std and its "
                "interval are in summary.csv. Grid values are drawn as categories, the series side by side.")
    return text


def render(run: Run, plots_dir: Path) -> str:
    plots_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for name in expected_figures(run):
        fig = BUILDERS[name](run)
        if fig is None:
            continue
        svg = _svg_text(fig)
        _write_atomic(plots_dir / f"{name}.svg", svg)
        figures.append(
            f'<figure class="figure" id="fig-{name}" data-figure="{name}">'
            f"<figcaption><b>{html.escape(FIGURES[name])}.</b> {html.escape(_caption(run, name))} "
            f'(<code>plots/{name}.svg</code>)</figcaption>\n{_inline_svg(svg, name)}</figure>')

    title = f"underspec report — {run.path.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<section id="run"><h2>Run</h2>', _meta_table(run), "</section>",
        '<section id="summary"><h2>Summary</h2>', _summary_table(run),
    ]
    comparisons = _comparisons_table(run)
    if comparisons:
        parts += ["<h3>Comparisons</h3>", comparisons]
    stress = _stress_table(run)
    if stress:
        parts += ["<h3>Stress factors</h3>", stress]
    parts.append("</section>")
    parts += ['<section id="figures"><h2>Figures</h2>', *figures, "</section>"]
    config_text = ""
    config_path = run.path / "config.toml"
    if config_path.is_file():
        config_text = config_path.read_text(errors="replace")
    if config_text:
        parts += ['<section id="config"><h2>Config</h2><details><summary>config.toml</summary><pre>',
                  html.escape(config_text), "</pre></details></section>"]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# The replicas.csv columns the report reads besides those load_run always reads (cell, axes,
# model, regime, ...): the figures draw the RMSEs. The weights and the seeds' other columns are
# left on disk, so that memory stays ~40 bytes a replica (every column, read as text, took 1 GB
# for 10^6 replicas).
REPORT_COLUMNS = ["iid_rmse", "ood_rmse"]


def load_for_report(directory) -> Run:
    """The run with the replicas.csv columns the report uses: the weight columns only where
    summary.json lacks the weights' statistics and some replica is a perceptron."""
    run = load_run(directory, replica_columns=REPORT_COLUMNS)
    if not _has_weight_summary(run) and (run.replicas.model == "perceptron").any():
        run = load_run(directory, replica_columns=REPORT_COLUMNS + WEIGHT_COLUMNS)
    return run


def write_report(directory) -> Path:
    """Writes DIRECTORY/report.html and DIRECTORY/plots/*.svg; returns the report's path."""
    run = load_for_report(directory)
    out = Path(directory) / "report.html"
    _write_atomic(out, render(run, Path(directory) / "plots"))
    return out


@contextlib.contextmanager
def _library_warnings_silenced():
    """Library warnings (Python's warnings, and matplotlib's, which it logs) are not for the
    user of `underspec`, whose terminal they reach: the report is written, or fails with one
    error line. The figures are drawn so as not to cause any (tests/python check that); the
    standard -W / PYTHONWARNINGS options still show them, to whoever asks."""
    if sys.warnoptions:
        yield
        return
    logger = logging.getLogger("matplotlib")
    level = logger.level
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("always", RunDataWarning)  # about the run itself: for the user
            warnings.showwarning = _show_run_data_warning
            logger.setLevel(logging.ERROR)
            yield
    finally:
        logger.setLevel(level)


def _show_run_data_warning(message, category, *_args, **_kwargs):
    print(f"underspec.report: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python3 -m underspec.report",
                                     description="Write DIR/report.html and DIR/plots/*.svg for an underspec run.")
    parser.add_argument("dir", help="a finished run directory")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    try:
        with _library_warnings_silenced():
            out = write_report(args.dir)
    except (OSError, ValueError) as e:
        print(f"underspec.report: error: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
