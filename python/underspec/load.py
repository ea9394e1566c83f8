"""Reading a run directory (replicas.csv, stress.csv, summary.json, config.toml) into pandas.

Only replicas.csv is required. Everything else is optional, and fields of summary.json that
this module does not know (new statistics, intervals, comparisons) are kept: scalars become
columns of ``Run.summary``, two-element lists become ``<name>_lo`` / ``<name>_hi`` columns,
nested objects are flattened with ``_``; null (an undefined statistic) becomes NaN.
"""

from __future__ import annotations

import csv
import json
import warnings
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


class RunDataWarning(UserWarning):
    """Something in a run directory was unusable and left out (the report says so)."""


WEIGHT_COLUMNS = ["w_x1", "w_x2", "w_x3", "bias"]


@dataclass
class Run:
    """The outputs of one run directory as pandas objects.

    replicas: one row per replica (replicas.csv), grid axis values as strings; model, regime and
              diverged (its reason, "" where the replica did not diverge) are text, every other
              column numeric (NaN where empty).
    stress:   one row per (replica, stress factor), with the replica's cell, axes, model,
              regime and seed joined in; empty without stress factors.
    summary:  one row per group (cell, model, regime), summary.json's groups flattened;
              computed from ``replicas`` when summary.json is missing.
    stress_summary: one row per (group, factor) from the groups' ``stress`` lists.
    weights:  one row per (group, weight name) from the groups' ``weights`` objects
              (perceptrons only): name (x1, x2, x3, bias), column (its replicas.csv column:
              w_x1, ..., bias), true, mean, std and any further lists (e.g. optimum).
    comparisons: one row per remedy against the baseline of its cell and model (comparisons.csv):
              cell, the axes (strings), model, remedy, baseline, baseline_n, remedy_n,
              ood_mean_diff with ood_mean_diff_ci_low / _high (Welch), welch_df, welch_t,
              welch_p, ood_std_ratio (remedy / baseline) with ood_std_ratio_ci_low / _high
              (bootstrap), brown_forsythe_f, _df1, _df2, _p; NaN where undefined. Empty when the
              run has no comparisons.csv (no baseline, or an older run).
    config:   config.toml as a dict (summary.json's ``config`` when config.toml is unreadable).
    meta:     the run metadata: summary.json's top-level scalars plus its ``run`` object.
    axes:     the grid axis keys, in column order (empty without a grid).
    raw:      summary.json as parsed ({} when missing).
    """

    path: Path
    replicas: pd.DataFrame
    stress: pd.DataFrame
    summary: pd.DataFrame
    stress_summary: pd.DataFrame
    weights: pd.DataFrame
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    axes: list = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    _labels: dict = field(default_factory=dict, repr=False, compare=False)
    _labels_of: Any = field(default=None, repr=False, compare=False)

    # Dict-style access for notebooks: run["replicas"], run.keys().
    def __getitem__(self, key: str) -> Any:
        if key == "run":
            return self.meta
        if key in self.keys():
            return getattr(self, key)
        raise KeyError(key)

    def keys(self) -> list:
        return ["replicas", "stress", "summary", "stress_summary", "weights", "comparisons", "config", "meta", "axes",
                "raw"]

    @property
    def group_keys(self) -> list:
        """Columns identifying a group: cell, the axes, model, regime."""
        return ["cell", *self.axes, "model", "regime"]

    def cell_label(self, cell: int) -> str:
        """`train.lr=1e-3 data.seed=2` for a grid cell, `` without a grid."""
        if not self.axes:
            return ""
        return self._cell_labels().get(cell, f"cell {cell}")

    def _cell_labels(self) -> dict:
        """Every cell's label, made once per replicas table: filtering the replicas for each
        of 6000 groups of a 2000-cell grid took seconds."""
        if self._labels_of is not self.replicas:
            first = self.replicas.drop_duplicates("cell")
            self._labels = {c: " ".join(f"{a}={v}" for a, v in zip(self.axes, values))
                            for c, *values in first[["cell", *self.axes]].itertuples(index=False)}
            self._labels_of = self.replicas
        return self._labels


def _axes_from_header(path: Path) -> list:
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    if "cell" not in header or "model" not in header:
        raise ValueError(f"{path}: not an underspec replicas.csv (header {header})")
    return header[header.index("cell") + 1 : header.index("model")]


def _number(v: Any) -> Any:
    """JSON null (an undefined statistic) as NaN, so that its column stays a float column."""
    return math.nan if v is None else v


def _is_pair(value: Any) -> bool:
    """An interval: two numbers, either of them null where undefined ([null, null] with n = 1)."""
    return (isinstance(value, list) and len(value) == 2
            and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value))


def _flatten(prefix: str, value: Any, out: dict) -> None:
    # The columns must not depend on the data: an interval is always split into _lo / _hi,
    # whether or not its ends are defined, and null is always NaN.
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}_{k}" if prefix else str(k), v, out)
    elif _is_pair(value):
        out[f"{prefix}_lo"], out[f"{prefix}_hi"] = (_number(v) for v in value)
    elif isinstance(value, list):
        out[prefix] = value  # kept whole (e.g. comparisons): an object column
    else:
        out[prefix] = _number(value)


def _group_rows(groups: list, axes: list) -> tuple[list, list, list]:
    summary, stress, weights = [], [], []
    for g in groups:
        key = {"cell": g.get("cell", 0)}
        grid = g.get("grid") or {}
        for a in axes:
            key[a] = None if grid.get(a) is None else str(grid.get(a))
        key["model"] = g.get("model")
        key["regime"] = g.get("regime")
        row = dict(key)
        for k, v in g.items():
            if k in ("cell", "grid", "model", "regime", "stress", "weights"):
                continue
            _flatten(k, v, row)
        summary.append(row)
        for s in g.get("stress") or []:
            srow = dict(key)
            srow["factor"] = s.get("factor")
            for k, v in s.items():
                if k != "factor":
                    _flatten(k, v, srow)
            stress.append(srow)
        w = g.get("weights")
        if isinstance(w, dict) and isinstance(w.get("names"), list):
            names = w["names"]
            for i, name in enumerate(names):
                wrow = dict(key)
                wrow["name"] = name
                wrow["column"] = name if name in WEIGHT_COLUMNS else f"w_{name}"  # its replicas.csv column
                for k, v in w.items():
                    if k == "names":
                        continue
                    if isinstance(v, list) and len(v) == len(names):
                        item = v[i]
                        if isinstance(item, list) and len(item) == 2:
                            wrow[f"{k}_lo"], wrow[f"{k}_hi"] = (_number(x) for x in item)
                        elif isinstance(item, dict):
                            _flatten(k, item, wrow)
                        else:
                            wrow[k] = _number(item)
                    elif isinstance(v, dict):  # e.g. {"lo": [...], "hi": [...]} per name
                        for kk, vv in v.items():
                            if isinstance(vv, list) and len(vv) == len(names):
                                wrow[f"{k}_{kk}"] = vv[i]
                weights.append(wrow)
    return summary, stress, weights


def _quantile(q: float):
    def f(x):
        return x.quantile(q)

    f.__name__ = {0.25: "q1", 0.5: "median", 0.75: "q3"}[q]
    return f


def summarize(replicas: pd.DataFrame, axes: list) -> pd.DataFrame:
    """Per-group statistics computed from replicas.csv (used when summary.json is missing)."""
    keys = ["cell", *axes, "model", "regime"]
    stats = ["mean", "std", "min", _quantile(0.25), _quantile(0.5), _quantile(0.75), "max"]
    g = replicas.groupby(keys, sort=False, dropna=False)
    out = g.size().rename("replicas").to_frame()
    if "diverged" in replicas:  # its text where a replica diverged, else empty
        out["diverged"] = g["diverged"].agg(lambda x: int((x.fillna("").astype(str) != "").sum()))
    for metric in ("iid_rmse", "ood_rmse"):
        s = g[metric].agg(stats)
        s.columns = [f"{metric}_{c}" for c in s.columns]
        out = out.join(s)
    return out.reset_index()


def _read_toml(path: Path) -> dict | None:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - older Pythons
        try:
            import tomli as tomllib  # type: ignore
        except ImportError:
            return None
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, ValueError):
        return None


# pandas' words for a missing value (read_csv's default na_values): NaN as pd.to_numeric makes them.
_NA_WORDS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
             "NA", "NULL", "NaN", "n/a", "nan", "null"]


def _read_table(path: Path, text: list, counts: list, columns=None) -> pd.DataFrame:
    """A CSV of the run: the `text` columns (grid axes, names) as strings exactly as written
    (an axis value such as "1e-3" or "[16, 16]" must not become a float or NaN), the `counts`
    (ids, seeds, n) as integers where complete, every other column float, an empty field NaN.
    Every column is converted, not a list of known ones, so that a column the binary adds
    later (as *_expected once was) is numeric too; and a statistic is float whatever its
    values (an interval end of exactly 0 must not make an int64 column). `columns`: read only
    those (in the file's order; None: all).

    The numbers are parsed by the CSV reader itself: reading every field as a string first
    (one Python object per number) took 1 GB and 12 s for 10^6 replicas. Where a field is
    neither a number nor one of pandas' missing-value words, the reader fails, and the table
    is read the old way, field by field as text, a field that is not a number becoming NaN."""
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    use = header if columns is None else [c for c in header if c in set(columns)]
    numeric = [c for c in use if c not in text]
    try:
        table = pd.read_csv(path, usecols=use, keep_default_na=False,
                            na_values={c: _NA_WORDS for c in numeric},
                            dtype={**{c: str for c in use if c in text},
                                   **{c: "float64" for c in numeric if c not in counts}})
        if any(table[c].dtype == object for c in numeric):  # a count field that is no number
            raise ValueError
    except ValueError:
        table = pd.read_csv(path, usecols=use, dtype=str, keep_default_na=False)
        for c in numeric:
            table[c] = pd.to_numeric(table[c], errors="coerce")
            if c not in counts:
                table[c] = table[c].astype(float)
    return table[use]


def _join_replicas(stress: pd.DataFrame, replicas: pd.DataFrame, columns: list) -> pd.DataFrame:
    """stress.merge(replicas[["replica", *columns]], on="replica", how="left"), by position where
    every stress row has exactly one replica: the merge's hash join took 10 s and 800 MB for
    5x10^6 stress rows of 10^6 replicas. The same table (order, dtypes, values)."""
    right = replicas[["replica", *columns]]
    ids = pd.Index(right["replica"])
    if ids.is_unique and stress["replica"].dtype == right["replica"].dtype:
        at = ids.get_indexer(stress["replica"])
        if len(at) == 0 or at.min() >= 0:
            index = stress.index
            plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
            joined = stress.copy(deep=False) if plain else stress.reset_index(drop=True)  # no copy of the rows
            for c in columns:
                if c not in joined:
                    joined[c] = right[c].to_numpy()[at]
            if list(joined.columns) == [*stress.columns, *columns]:
                return joined
    return stress.merge(right, on="replica", how="left")


def load_run(directory, replica_columns=None) -> Run:
    """Reads the run directory `directory` (a finished run, a merged run or a shard).

    replica_columns: None (the default) reads every column of replicas.csv. A list reads only
    those columns that exist, plus the ones the Run needs: cell, the grid axes, model and
    regime; replica where stress.csv has rows (``stress`` gets the columns read of cell, the
    axes, model, regime and seed); and diverged,
    iid_rmse and ood_rmse where the statistics must be computed from replicas.csv (no
    summary.json). A lean load for large runs: each column takes 8 bytes a replica.
    """
    path = Path(directory)
    replicas_path = path / "replicas.csv"
    if not replicas_path.is_file():
        raise FileNotFoundError(f"{replicas_path}: no such file (not a finished underspec run directory?)")
    axes = _axes_from_header(replicas_path)

    raw: dict = {}
    summary_path = path / "summary.json"
    if summary_path.is_file():
        try:
            raw = json.loads(summary_path.read_text())
        except (OSError, ValueError) as e:
            warnings.warn(f"{summary_path} is unreadable ({e}); the statistics are recomputed from "
                          "replicas.csv, without their intervals", RunDataWarning, stacklevel=2)
            raw = {}
    groups = raw.get("groups") if isinstance(raw.get("groups"), list) else []

    stress_path = path / "stress.csv"
    stress = pd.DataFrame(columns=["replica", "factor", "rmse"])
    if stress_path.is_file():
        stress = pd.read_csv(stress_path)

    columns = None
    if replica_columns is not None:
        columns = ["cell", *axes, "model", "regime", *replica_columns]
        if not stress.empty:
            columns.append("replica")
        if not groups:
            columns += ["diverged", "iid_rmse", "ood_rmse"]
    replicas = _read_table(replicas_path, text=[*axes, "model", "regime", "diverged"],
                           counts=["replica", "cell", "seed"], columns=columns)

    if not stress.empty:
        stress = _join_replicas(stress, replicas, [c for c in ["cell", *axes, "model", "regime", "seed"]
                                                   if replica_columns is None or c in replicas])

    if groups:
        rows, srows, wrows = _group_rows(groups, axes)
        summary = pd.DataFrame(rows)
    else:
        summary, srows, wrows = summarize(replicas, axes), [], []
    stress_summary = pd.DataFrame(srows)
    weights = pd.DataFrame(wrows)

    comparisons_path = path / "comparisons.csv"
    comparisons = pd.DataFrame()
    if comparisons_path.is_file():
        comparisons = _read_table(comparisons_path, text=[*axes, "model", "remedy", "baseline"],
                                  counts=["cell", "baseline_n", "remedy_n"])

    config = _read_toml(path / "config.toml")
    if config is None:
        config = raw.get("config") if isinstance(raw.get("config"), dict) else {}

    meta = {k: v for k, v in raw.items() if k not in ("groups", "config", "run") and not isinstance(v, (dict, list))}
    if isinstance(raw.get("run"), dict):
        meta.update(raw["run"])
    meta.setdefault("replicas", len(replicas))
    meta.setdefault("cells", int(replicas["cell"].nunique()) if len(replicas) else 0)
    return Run(path=path, replicas=replicas, stress=stress, summary=summary, stress_summary=stress_summary,
               weights=weights, comparisons=comparisons, config=config, meta=meta, axes=axes, raw=raw)


def finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
