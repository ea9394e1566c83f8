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
    _require_packages()

import contextlib  # noqa: E402
import html  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
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
MAX_SEED_PANELS = 6  # grid cells drawn in the seed figure

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


def fig_seeds(run: Run):
    r = run.replicas
    models, regimes = _ordered(r.model), _ordered(r.regime)
    cells = _ordered(r.cell)[:MAX_SEED_PANELS]
    fig, axes = plt.subplots(len(cells), len(models), figsize=(4.2 * len(models) + 0.8, 3.2 * len(cells)),
                             squeeze=False)
    rng = np.random.default_rng(0)
    for i, cell in enumerate(cells):
        for j, model in enumerate(models):
            ax = axes[i][j]
            ticks, labels = [], []
            for k, regime in enumerate(regimes):
                sub = r[(r.cell == cell) & (r.model == model) & (r.regime == regime)]
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
            title = model if not run.axes else f"{model} — {run.cell_label(cell)}"
            ax.set_title(title)
            if j == 0:
                ax.set_ylabel("RMSE")
    if len(_ordered(r.cell)) > len(cells):
        fig.suptitle(f"first {len(cells)} of {r.cell.nunique()} cells", fontsize=8)
    fig.tight_layout()
    return fig


def fig_iid_vs_ood(run: Run):
    r = run.replicas
    models, regimes = _ordered(r.model), _ordered(r.regime)
    fig, axes = plt.subplots(1, len(models), figsize=(4.4 * len(models) + 0.6, 4.0), squeeze=False)
    for j, model in enumerate(models):
        ax = axes[0][j]
        sub = _sample(r[r.model == model].dropna(subset=["iid_rmse", "ood_rmse"]), MAX_SCATTER_POINTS)
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
        ax.set_title(model)
        _legend(ax, fontsize=7)
    fig.tight_layout()
    return fig


def _weight_table(run: Run) -> pd.DataFrame:
    """Per (regime, name): mean, std, true, optimum (when known), pooled over cells."""
    r = run.replicas
    per = r[(r.model == "perceptron")]
    cols = [c for c in WEIGHT_COLUMNS if c in per]
    per = per.dropna(subset=cols)
    if per.empty or not cols:
        return pd.DataFrame()
    long = per.melt(id_vars=["regime"], value_vars=cols, var_name="name", value_name="value")
    t = long.groupby(["regime", "name"], sort=False)["value"].agg(["mean", "std"]).reset_index()
    w = run.weights
    if not w.empty and "column" in w:
        wp = w[w.model == "perceptron"] if "model" in w else w
        for extra in ("true", "optimum"):
            if extra in wp:
                vals = wp.groupby("column", sort=False)[extra].first()
                t[extra] = t["name"].map(vals)
    if "true" not in t or t["true"].isna().all():
        data = run.config.get("data", {}) if isinstance(run.config, dict) else {}
        coef = data.get("coefficients", [1.0, 2.0])
        truth = {"w_x1": coef[0], "w_x2": coef[1], "w_x3": 0.0, "bias": data.get("intercept", 3.0)}
        t["true"] = t["name"].map(truth)
    if "optimum" not in t:
        opt = run.raw.get("optimum") if isinstance(run.raw.get("optimum"), dict) else None
        if opt and isinstance(opt.get("weights"), list) and len(opt["weights"]) == len(cols):
            t["optimum"] = t["name"].map(dict(zip(cols, opt["weights"])))
    return t


def fig_weights(run: Run):
    t = _weight_table(run)
    if t.empty:
        return None
    names = _ordered(t["name"])
    regimes = _ordered(t.regime)
    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    width = 0.8 / max(1, len(regimes))
    for k, regime in enumerate(regimes):
        s = t[t.regime == regime].set_index("name").reindex(names)
        x = np.arange(len(names)) - 0.4 + width * (k + 0.5)
        ax.errorbar(x, s["mean"], yerr=s["std"].fillna(0), fmt="o", capsize=3, ms=5,
                    color=regime_color(regime, regimes), label=f"{regime} (mean ± std over seeds)")
    first = t.drop_duplicates("name").set_index("name").reindex(names)
    for i, name in enumerate(names):
        if finite(first.loc[name, "true"]):
            v = float(first.loc[name, "true"])
            ax.plot([i - 0.45, i + 0.45], [v, v], color="black", lw=1.6, label="truth" if i == 0 else None)
        if "optimum" in first and finite(first.loc[name, "optimum"]):
            v = float(first.loc[name, "optimum"])
            ax.plot([i - 0.45, i + 0.45], [v, v], color="#9467bd", lw=1.4, ls="--",
                    label="population optimum" if i == 0 else None)
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("weight")
    ax.axhline(0, color="grey", lw=0.6)
    _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def fig_stress(run: Run):
    s = run.stress
    if s is None or s.empty or "rmse" not in s:
        return None
    s = s.dropna(subset=["rmse", "factor"])
    if s.empty:
        return None
    models, regimes = _ordered(s.model), _ordered(s.regime)
    fig, axes = plt.subplots(1, len(models), figsize=(4.4 * len(models) + 0.6, 3.8), squeeze=False)
    for j, model in enumerate(models):
        ax = axes[0][j]
        for regime in regimes:
            sub = s[(s.model == model) & (s.regime == regime)]
            if sub.empty:
                continue
            q = sub.groupby("factor")["rmse"].quantile([0.25, 0.5, 0.75]).unstack().sort_index()
            color = regime_color(regime, regimes)
            ax.fill_between(q.index, q[0.25], q[0.75], color=color, alpha=0.2, lw=0)
            ax.plot(q.index, q[0.5], marker="o", ms=3.5, color=color, label=f"{regime} (median, IQR)")
        ax.set_xscale("log")
        factors = sorted(s.factor.unique())
        if len(factors) <= 12:
            ax.set_xticks(factors)
            ax.set_xticklabels([f"{f:g}" for f in factors])
            ax.minorticks_off()
        ax.set_xlabel("stress factor (x3 = y + N(0,1)/factor)")
        ax.set_ylabel("RMSE")
        ax.set_title(model)
        _legend(ax, fontsize=7)
    fig.tight_layout()
    return fig


def fig_grid_spread(run: Run):
    if not run.axes:
        return None
    r = run.replicas
    models, regimes = _ordered(r.model), _ordered(r.regime)
    spread = r.groupby(["cell", *run.axes, "model", "regime"], sort=False)["ood_rmse"].std().reset_index()
    fig, axes = plt.subplots(1, len(run.axes), figsize=(4.6 * len(run.axes) + 0.6, 3.8), squeeze=False)
    for a, axis in enumerate(run.axes):
        ax = axes[0][a]
        values = _ordered(spread[axis])
        numeric = all(_as_number(v) is not None for v in values)
        if numeric:
            pos = {v: _as_number(v) for v in values}
        else:
            pos = {v: i for i, v in enumerate(values)}
        for model in models:
            for regime in regimes:
                sub = spread[(spread.model == model) & (spread.regime == regime)]
                if sub.empty:
                    continue
                # Other axes: the mean over their values of the spread.
                per = sub.groupby(axis, sort=False)["ood_rmse"].mean()
                xs = sorted(per.index, key=lambda v: pos[v])
                ax.plot([pos[v] for v in xs], [per[v] for v in xs], marker=MODEL_MARKERS.get(model, "o"), ms=4,
                        color=regime_color(regime, regimes), ls="-" if model == models[0] else "--",
                        label=f"{model} {regime}")
        if numeric:
            positive = all(p > 0 for p in pos.values())
            if positive and max(pos.values()) / min(pos.values()) >= 20:
                ax.set_xscale("log")
        else:
            ax.set_xticks(list(pos.values()))
            ax.set_xticklabels(values, rotation=20, fontsize=7)
        ax.set_xlabel(axis)
        ax.set_ylabel("std of OOD RMSE across seeds")
        if len(run.axes) > 1:
            ax.set_title("mean over the other axes", fontsize=8)
        _legend(ax, fontsize=6)
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
    fig.savefig(buf, format="svg", metadata={"Date": None})
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
    """`[lo, hi]` from summary.json's `<stat>_ci` (a pair, or an object with lo/hi-like keys)."""
    for a, b in CI_BOUNDS:
        lo, hi = row.get(f"{metric}_{stat}_ci_{a}"), row.get(f"{metric}_{stat}_ci_{b}")
        if finite(lo) and finite(hi):
            return f' <span class="ci">[{_fmt(lo)}, {_fmt(hi)}]</span>'
    return ""


def _summary_table(run: Run) -> str:
    s = run.summary
    if s.empty:
        return "<p>No groups.</p>"
    has_ci = any(c.endswith(tuple(f"_ci_{a}" for a, _ in CI_BOUNDS)) for c in s.columns)
    w3 = {}
    if not run.weights.empty and {"column", "mean"} <= set(run.weights.columns):
        for _, w in run.weights[run.weights["column"] == "w_x3"].iterrows():
            w3[(w["cell"], w["model"], w["regime"])] = w["mean"]
    else:
        per = run.replicas[run.replicas.model == "perceptron"]
        if "w_x3" in per:
            for key, v in per.groupby(["cell", "model", "regime"])["w_x3"].mean().items():
                w3[key] = v
    head = ["cell"] if run.axes else []
    head += ["model", "regime", "n", "diverged", "IID RMSE mean ± std", "OOD RMSE mean ± std", "OOD min / median / max",
             "w_x3 (mean)"]
    out = ['<table class="summary"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for _, row in s.iterrows():
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
    out.append('<p class="note">n: the replicas in the statistics; diverged replicas (parameters or RMSE not '
               'finite) are left out of every statistic. —: undefined (e.g. a std of one replica).</p>')
    if has_ci:
        out.append('<p class="note">Brackets: confidence intervals of the mean and of the std, from summary.json.</p>')
    return "\n".join(out)


def _generic_table(records: list, css: str, lead: tuple = ()) -> str:
    """A list of flat-ish dicts (e.g. summary.json's comparisons) as a table; the columns
    whose names start with a `lead` entry come first, in that order (JSON keys are sorted)."""
    rows = []
    for rec in records:
        flat = {}
        if isinstance(rec, dict):
            for k, v in rec.items():
                if isinstance(v, dict):
                    for kk, vv in v.items():
                        flat[f"{k}.{kk}"] = vv
                else:
                    flat[k] = v
        rows.append(flat)
    cols = _ordered([k for r in rows for k in r])
    rank = {c: next((i for i, p in enumerate(lead) if c == p or c.startswith(p + ".")), len(lead)) for c in cols}
    cols.sort(key=lambda c: rank[c])  # stable: the rest keep their order
    if not cols:
        return ""

    def cell(v):
        if v is None:  # JSON null: undefined
            return UNDEFINED
        if isinstance(v, float):
            return _fmt(v, 4)
        if isinstance(v, list):
            if v and all(x is None for x in v):  # an interval with no defined end
                return UNDEFINED
            return "[" + ", ".join(cell(x) for x in v) + "]"
        return html.escape(str(v))

    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return (f'<table class="{css}"><thead><tr>' + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
            + f"</tr></thead><tbody>{body}</tbody></table>")


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
table.summary td { font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { background: #f3f3f3; } .ci { color: #666; font-size: 0.9em; } .note { color: #555; font-size: 0.85em; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #444; margin-bottom: 0.3em; }
figure svg { max-width: 100%; height: auto; } pre { background: #f6f6f6; padding: 0.6em; font-size: 0.8em; }
"""

CAPTIONS = {
    "seeds": "Box plots (quartiles, whiskers to 1.5 IQR) of the RMSE on the IID and OOD test sets, per regime "
             "and model, with every seed drawn as a dot. Same IID error, wide OOD spread: underspecification.",
    "iid_vs_ood": "One dot per replica. Replicas at the same IID RMSE but different OOD RMSE differ only in "
                  "their seed: the IID test cannot tell them apart.",
    "weights": "Mean ± std over seeds of the perceptron's learned weights, against the structural model's "
               "true coefficients (black) and the population optimum when known (dashed).",
    "stress": "RMSE on test domains where the spurious feature x3 gets noisier (smaller factor): median over "
              "seeds and interquartile band per regime.",
    "grid_spread": "Standard deviation of the OOD RMSE across seeds, per grid cell, against each grid axis.",
}


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
            f"<figcaption><b>{html.escape(FIGURES[name])}.</b> {html.escape(CAPTIONS[name])} "
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
    comparisons = run.raw.get("comparisons")
    if isinstance(comparisons, list) and comparisons:
        parts += ['<h3>Comparisons</h3>', _generic_table(comparisons, "comparisons",
                                                                 ("cell", "grid", "model", "remedy", "baseline",
                                                                  "remedy_n", "baseline_n", "ood_mean_diff",
                                                                  "ood_std_ratio", "brown_forsythe"))]
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


def write_report(directory) -> Path:
    """Writes DIRECTORY/report.html and DIRECTORY/plots/*.svg; returns the report's path."""
    run = load_run(directory)
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
