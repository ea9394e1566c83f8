"""underspec.load_run on a real run."""

import json

import pandas as pd
import pytest

import underspec


def test_tables_and_metadata(small_run):
    run = underspec.load_run(small_run)
    assert run.axes == ["train.lr"]
    assert len(run.replicas) == 48
    assert list(run.replicas.columns[:3]) == ["replica", "cell", "train.lr"]
    assert set(run.replicas["train.lr"]) == {"1e-3", "3e-3"} or run.replicas["train.lr"].nunique() == 2
    assert run.replicas.ood_rmse.notna().all()
    # stress.csv, joined with the replicas' groups.
    assert len(run.stress) == 48 * 3
    assert {"model", "regime", "cell", "seed", "factor", "rmse"} <= set(run.stress.columns)
    # summary.json's groups, flattened.
    assert len(run.summary) == 2 * 2 * 3
    for col in ["cell", "train.lr", "model", "regime", "replicas", "iid_rmse_mean", "ood_rmse_std", "ood_rmse_median"]:
        assert col in run.summary.columns, col
    assert (run.summary.replicas == 4).all()
    assert len(run.stress_summary) == 12 * 3
    w = run.weights
    assert set(w["column"]) == {"w_x1", "w_x2", "w_x3", "bias"} and len(set(w["name"])) == 4
    assert (w.model == "perceptron").all() and {"true", "mean", "std"} <= set(w.columns)
    # config and run metadata.
    assert run.config["sweep"]["seeds"] == 4
    assert run.meta["replicas"] == 48 and "command_line" in run.meta and "backend" in run.meta
    # Dict-style access.
    assert run["replicas"] is run.replicas and run["run"] is run.meta


def test_summary_matches_replicas(small_run):
    run = underspec.load_run(small_run)
    mine = run.replicas.groupby(["cell", "model", "regime"]).ood_rmse.agg(["mean", "std"]).reset_index()
    both = run.summary.merge(mine, on=["cell", "model", "regime"])
    assert len(both) == len(run.summary)
    assert (both.ood_rmse_mean - both["mean"]).abs().max() < 1e-9
    assert (both.ood_rmse_std - both["std"]).abs().max() < 1e-9


def test_optional_fields_and_missing_files(run_copy):
    # Intervals and other fields summary.json may grow are kept, flattened; nothing is required.
    path = run_copy / "summary.json"
    doc = json.loads(path.read_text())
    g = doc["groups"][0]
    g["ood_rmse"]["mean_ci"] = [1.0, 2.0]
    g["ood_rmse"]["std_ci"] = {"lo": 0.1, "hi": 0.3}
    g["novel"] = {"x": 1}
    doc["comparisons"] = [{"a": "baseline", "b": "augmentation", "p": 0.01}]
    path.write_text(json.dumps(doc))
    run = underspec.load_run(run_copy)
    row = run.summary.iloc[0]
    assert row.ood_rmse_mean_ci_lo == 1.0 and row.ood_rmse_mean_ci_hi == 2.0
    assert row.ood_rmse_std_ci_lo == 0.1 and row.novel_x == 1
    # Without summary.json, stress.csv and config.toml: computed from replicas.csv.
    for name in ("summary.json", "stress.csv", "config.toml"):
        (run_copy / name).unlink()
    run = underspec.load_run(run_copy)
    assert len(run.summary) == 12 and "ood_rmse_std" in run.summary and run.stress.empty
    assert run.config == {} and run.meta["replicas"] == 48


def test_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError):
        underspec.load_run(tmp_path)
