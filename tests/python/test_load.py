"""underspec.load_run on a real run."""

import json

import pandas as pd
import pytest

import underspec
from conftest import underspec as run_binary


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


def test_a_corrupt_summary_is_said_not_silently_replaced(run_copy):
    (run_copy / "summary.json").write_text("{")
    with pytest.warns(underspec.load.RunDataWarning, match="summary.json is unreadable"):
        run = underspec.load_run(run_copy)
    assert len(run.summary) == 12  # recomputed from replicas.csv


def test_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError):
        underspec.load_run(tmp_path)


# The same columns whatever the data: every group n = 1, and n = 1 next to n = 3.
FAST = ["--set", "data.n_train=300", "--set", "data.n_test=300", "--set", "train.epochs=2", "--device", "cpu",
        "--threads", "2", "--progress", "none", "--no-report"]


@pytest.fixture(scope="module")
def one_and_mixed(binary, tmp_path_factory):
    base = tmp_path_factory.mktemp("n1")
    one, mixed = base / "one", base / "mixed"
    run_binary("run", *FAST, "--set", "sweep.seeds=1", "--out", str(one))
    run_binary("run", *FAST, "--set", "sweep.seeds=3", "--set", "sweep.seeds_per_model.perceptron=1",
               "--out", str(mixed))
    return underspec.load_run(one), underspec.load_run(mixed)


def test_summary_columns_do_not_depend_on_n(one_and_mixed):
    one, mixed = one_and_mixed
    assert set(one.summary.ood_rmse_n) == {1} and set(mixed.summary.ood_rmse_n) == {1, 3}
    assert list(one.summary.columns) == list(mixed.summary.columns)
    for s in (one.summary, mixed.summary):
        for col in ["ood_rmse_mean_ci_lo", "ood_rmse_mean_ci_hi", "ood_rmse_std_ci_lo", "ood_rmse_std_ci_hi",
                    "spearman_ci_lo", "spearman_ci_hi", "ood_minus_iid_ci_lo", "spread_ratio_ci_hi"]:
            assert col in s.columns, col
        # No list-valued interval columns, and every statistic is a float column (NaN if undefined).
        assert not [c for c in s.columns if c.endswith("_ci")]
        for col in s.columns:
            if col not in ("model", "regime"):
                assert pd.api.types.is_numeric_dtype(s[col]), (col, s[col].dtype)
    assert one.summary.ood_rmse_std.isna().all() and one.summary.ood_rmse_mean_ci_lo.isna().all()
    assert one.summary.spearman_value.isna().all()
    n3 = mixed.summary[mixed.summary.ood_rmse_n == 3]
    assert n3.ood_rmse_mean_ci_lo.notna().all() and n3.ood_rmse_std.notna().all()
    n1 = mixed.summary[mixed.summary.ood_rmse_n == 1]
    assert n1.ood_rmse_mean_ci_hi.isna().all() and n1.ood_rmse_std.isna().all()
    # The weights' std of one seed is NaN too, not None.
    assert pd.api.types.is_float_dtype(one.weights["std"]) and one.weights["std"].isna().all()


def test_every_column_has_its_dtype(small_run):
    # QA: iid_rmse_expected / ood_rmse_expected loaded as text, so `r.ood_rmse_expected - r.ood_rmse`
    # raised TypeError. Every column that is not a name or a grid axis must be numeric.
    run = underspec.load_run(small_run)
    r = run.replicas
    text = {*run.axes, "model", "regime", "diverged"}
    assert {"iid_rmse_expected", "ood_rmse_expected"} <= set(r.columns)
    for col in r.columns:
        if col in text:
            assert r[col].dtype == object, (col, r[col].dtype)
        elif col in ("replica", "cell", "seed"):
            assert pd.api.types.is_integer_dtype(r[col]), (col, r[col].dtype)
        else:
            assert pd.api.types.is_float_dtype(r[col]), (col, r[col].dtype)
    assert (r.diverged == "").all()  # text: the reason where a replica diverged
    per = r[r.model == "perceptron"]  # the closed form exists for perceptrons only (NaN for MLPs)
    assert ((per.ood_rmse_expected - per.ood_rmse).abs() < 1).all()
    assert r[r.model == "mlp"].ood_rmse_expected.isna().all()
    # The same file read by plain pandas gives the same numbers.
    plain = pd.read_csv(small_run / "replicas.csv")
    pd.testing.assert_series_equal(plain.ood_rmse_expected, r.ood_rmse_expected)


def test_comparisons(run_copy):
    run = underspec.load_run(run_copy)
    c = run.comparisons
    assert run["comparisons"] is c
    assert len(c) == 2 * 2 * 2  # cells x models x remedies
    assert set(c.remedy) == {"domain_randomization", "augmentation"} and set(c.baseline) == {"baseline"}
    assert c["train.lr"].dtype == object
    for col in c.columns:
        if col not in {*run.axes, "model", "remedy", "baseline"}:
            assert pd.api.types.is_numeric_dtype(c[col]), (col, c[col].dtype)
    # The same numbers as summary.json's comparisons.
    for row, doc in zip(c.itertuples(), run.raw["comparisons"]):
        assert (row.cell, row.model, row.remedy) == (doc["cell"], doc["model"], doc["remedy"])
        assert row.ood_mean_diff == pytest.approx(doc["ood_mean_diff"]["value"], rel=1e-12)
        assert row.ood_std_ratio == pytest.approx(doc["ood_std_ratio"]["value"], rel=1e-12)
        assert row.brown_forsythe_p == pytest.approx(doc["brown_forsythe"]["p_value"], rel=1e-12)
    # A run without comparisons.csv: an empty frame, not an error.
    (run_copy / "comparisons.csv").unlink()
    assert underspec.load_run(run_copy).comparisons.empty


def _as_text_then_numbers(path, text, counts):
    """replicas.csv read as load_run read it before it parsed numbers itself: every field as
    text, then pd.to_numeric (a field that is not a number: NaN)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in table.columns:
        if c not in text:
            table[c] = pd.to_numeric(table[c], errors="coerce")
            if c not in counts:
                table[c] = table[c].astype(float)
    return table


TEXT, COUNTS = ["train.lr", "model", "regime", "diverged"], ["replica", "cell", "seed"]
EDGE_ROWS = {
    "words": ["0,0,1e-3,perceptron,baseline,0,nan,inf,-inf,rmse not finite",
              "1,0,NA,mlp,baseline,1,,1.5,NaN,", '2,1,"[16, 16]",mlp,NA,2,-nan,Infinity,3,'],
    "not a number": ["0,0,1e-3,perceptron,baseline,0,abc,1,2,", "1,,x,mlp,baseline,,1,2,3,"],
    "no rows": [],
}


@pytest.mark.parametrize("case", ["real", *EDGE_ROWS])
def test_numbers_are_read_as_from_text(small_run, tmp_path, case):
    # The reader parses the numbers itself (reading them as text took 1 GB for 10^6 replicas):
    # the same values to the bit, the same dtypes, the same NaN, as from text.
    if case == "real":
        path = small_run / "replicas.csv"
    else:
        path = tmp_path / "replicas.csv"
        path.write_text("\n".join(["replica,cell,train.lr,model,regime,seed,iid_rmse,ood_rmse,w_x1,diverged",
                                   *EDGE_ROWS[case]]) + "\n")
    pd.testing.assert_frame_equal(underspec.load._read_table(path, TEXT, COUNTS),
                                  _as_text_then_numbers(path, TEXT, COUNTS), check_exact=True)


@pytest.mark.parametrize("case", ["every replica", "one missing", "shuffled"])
def test_stress_is_joined_as_by_merge(small_run, case):
    run = underspec.load_run(small_run)
    stress, replicas = pd.read_csv(small_run / "stress.csv"), run.replicas
    if case == "one missing":
        replicas = replicas.iloc[1:]
    elif case == "shuffled":
        stress, replicas = stress.sample(frac=1, random_state=1), replicas.sample(frac=1, random_state=2)
    cols = ["cell", "train.lr", "model", "regime", "seed"]
    pd.testing.assert_frame_equal(underspec.load._join_replicas(stress, replicas, cols),
                                  stress.merge(replicas[["replica", *cols]], on="replica", how="left"),
                                  check_exact=True)


def test_replica_columns_reads_only_those(small_run, run_copy):
    full = underspec.load_run(small_run)
    lean = underspec.load_run(small_run, replica_columns=["seed", "ood_rmse"])
    assert list(lean.replicas.columns) == ["replica", "cell", "train.lr", "model", "regime", "seed", "ood_rmse"]
    pd.testing.assert_frame_equal(lean.replicas, full.replicas[lean.replicas.columns], check_exact=True)
    pd.testing.assert_frame_equal(lean.stress, full.stress, check_exact=True)
    # The stress rows get the replicas' columns that were read: no seed unless asked for.
    assert "seed" not in underspec.load_run(small_run, replica_columns=[]).stress
    pd.testing.assert_frame_equal(lean.summary, full.summary, check_exact=True)
    assert lean.meta == full.meta
    # Without summary.json or stress.csv: what the statistics need, and no seed.
    for name in ("summary.json", "stress.csv"):
        (run_copy / name).unlink()
    lean = underspec.load_run(run_copy, replica_columns=[])
    assert list(lean.replicas.columns) == ["cell", "train.lr", "model", "regime", "iid_rmse", "ood_rmse", "diverged"]
    pd.testing.assert_frame_equal(lean.summary, underspec.load_run(run_copy).summary, check_exact=True)
