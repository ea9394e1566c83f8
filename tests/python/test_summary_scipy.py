"""An independent check of summary.json and comparisons.csv: run a small sweep with the
binary, recompute every statistic from replicas.csv with SciPy and compare.

Point statistics and t/Welch/Brown-Forsythe results must agree to 1e-9 (relative). Bootstrap
intervals are Monte Carlo estimates (ours: 4000 Philox resamples; SciPy's: 20000 from its own
generator), so each end must agree within BOOT_Z Monte Carlo standard deviations of the two
estimates combined, the standard deviation of a B-resample p-quantile being
sqrt(p (1 - p) / B) / density, the density read off SciPy's bootstrap distribution; and
within BOOT_MAX_WIDTH of the interval's width whatever that says.
"""
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

BINARY = os.environ.get("UNDERSPEC_BINARY", "build/underspec")
SEEDS = 24
OUR_RESAMPLES = 4000
SCIPY_RESAMPLES = 20000
BOOT_Z = 5.0
BOOT_MAX_WIDTH = 0.08
EXACT = dict(rel=1e-9, abs=1e-12)
STRESS_FACTORS = [0.05, 0.02]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scipy") / "run"
    cmd = [BINARY, "run", "--device", "cpu", "--out", str(out),
           "--set", "data.n_train=256", "--set", "data.n_test=512", "--set", "train.epochs=3",
           "--set", f"sweep.seeds={SEEDS}", "--set", f"data.stress_factors={STRESS_FACTORS}"]
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    replicas = pd.read_csv(out / "replicas.csv").sort_values("replica")
    # Each stress factor's RMSE as a column of its replica's row.
    stress = pd.read_csv(out / "stress.csv").pivot(index="replica", columns="factor", values="rmse")
    replicas = replicas.join(stress.rename(columns=lambda f: f"stress_{f:g}"), on="replica")
    with open(out / "summary.json") as f:
        summary = json.load(f)
    comparisons = pd.read_csv(out / "comparisons.csv")
    return replicas, summary, comparisons


def groups_of(replicas, summary):
    for g in summary["groups"]:
        rows = replicas[(replicas.cell == g["cell"]) & (replicas.model == g["model"]) & (replicas.regime == g["regime"])]
        yield g, rows


def sd(x, axis=-1):
    return np.std(x, ddof=1, axis=axis)


def rho(a, b, axis=-1):
    ra, rb = stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    return (ra * rb).sum(axis=axis) / np.sqrt((ra * ra).sum(axis=axis) * (rb * rb).sum(axis=axis))


def boot(data, statistic, paired):
    res = stats.bootstrap(data, statistic, paired=paired, vectorized=True, n_resamples=SCIPY_RESAMPLES,
                          confidence_level=0.95, method="percentile", random_state=np.random.default_rng(12345))
    return res.confidence_interval.low, res.confidence_interval.high, res.bootstrap_distribution


def quantile_sd(dist, p, resamples, h=0.01):
    q = np.quantile(dist, [p - h, p + h])
    return (q[1] - q[0]) / (2 * h) * np.sqrt(p * (1 - p) / resamples)


def assert_interval(ours, theirs, what):
    low, high, dist = theirs
    width = high - low
    assert width > 0, what
    for o, t, p in ((ours[0], low, 0.025), (ours[1], high, 0.975)):
        sd = np.hypot(quantile_sd(dist, p, OUR_RESAMPLES), quantile_sd(dist, p, SCIPY_RESAMPLES))
        assert abs(o - t) <= min(BOOT_Z * sd, BOOT_MAX_WIDTH * width), \
            f"{what}: ours {ours}, scipy {(low, high)}, z = {(o - t) / sd:.2f}"


def t975(df):
    """t_{0.975, df} by root-finding on SciPy's t survival function: stats.t.ppf is off by
    ~1e-9 (relative) for non-integer df such as Welch's, while t.sf is accurate to ~1e-16."""
    return optimize.brentq(lambda t: stats.t.sf(t, df) - 0.025, 0.0, 1e3, xtol=1e-15, rtol=1e-15)


def t_interval(x):
    half = t975(len(x) - 1) * stats.sem(x)
    return np.mean(x) - half, np.mean(x) + half


def test_group_statistics(run):
    replicas, summary, _ = run
    assert summary["bootstrap"] == {"resamples": 4000, "method": "percentile", "level": 0.95}
    for g, rows in groups_of(replicas, summary):
        assert len(rows) == SEEDS
        iid, ood = rows.iid_rmse.to_numpy(), rows.ood_rmse.to_numpy()
        seeds = rows.seed.to_numpy()
        assert [e["factor"] for e in g["stress"]] == STRESS_FACTORS
        metrics = [("iid_rmse", iid, g["iid_rmse"]), ("ood_rmse", ood, g["ood_rmse"])]
        metrics += [(f"stress {e['factor']:g}", rows[f"stress_{e['factor']:g}"].to_numpy(), e["rmse"])
                    for e in g["stress"]]
        for name, x, s in metrics:
            assert s["n"] == len(x)
            assert s["mean"] == pytest.approx(np.mean(x), **EXACT)
            assert s["std"] == pytest.approx(sd(x), **EXACT)
            for q, key in ((0, "min"), (25, "q1"), (50, "median"), (75, "q3"), (100, "max")):
                assert s[key] == pytest.approx(np.percentile(x, q), **EXACT)
            assert s["mean_ci"] == pytest.approx(list(t_interval(x)), **EXACT)
            assert s["worst_seed"] == seeds[np.argmax(x)]
            assert s["best_seed"] == seeds[np.argmin(x)]
            assert_interval(s["std_ci"], boot((x,), sd, False), f"{g['model']}/{g['regime']} {name} std")
        gap = ood - iid
        assert g["ood_minus_iid"]["mean"] == pytest.approx(np.mean(gap), **EXACT)
        assert g["ood_minus_iid"]["ci"] == pytest.approx(list(t_interval(gap)), **EXACT)
        assert g["spread_ratio"]["value"] == pytest.approx(sd(ood) / sd(iid), **EXACT)
        assert_interval(g["spread_ratio"]["ci"], boot((iid, ood), lambda a, b, axis=-1: sd(b, axis) / sd(a, axis), True),
                        f"{g['model']}/{g['regime']} spread ratio")
        assert g["spearman"]["value"] == pytest.approx(stats.spearmanr(iid, ood).correlation, **EXACT)
        assert_interval(g["spearman"]["ci"], boot((iid, ood), rho, True), f"{g['model']}/{g['regime']} spearman")


def test_perceptron_weights_and_expected_rmse(run):
    replicas, summary, _ = run
    config = summary["config"]
    for g, rows in groups_of(replicas, summary):
        if g["model"] != "perceptron":
            assert "weights" not in g
            assert rows.iid_rmse_expected.isna().all() and rows.ood_rmse_expected.isna().all()
            continue
        # float32 weights, printed with 9 digits: back to the float they were
        w = rows[["w_x1", "w_x2", "w_x3", "bias"]].to_numpy().astype(np.float32).astype(np.float64)
        assert g["weights"]["mean"] == pytest.approx(list(w.mean(axis=0)), **EXACT)
        assert g["weights"]["std"] == pytest.approx(list(sd(w, 0)), **EXACT)
        # The population least-squares optimum, here by solving the normal equations of the
        # second moments (not the closed form the binary uses).
        d = config["data"]
        c1, c2 = d["coefficients"]
        b, s = d["intercept"], d["noise_std"]
        f = d["train_factor"]
        v = {"baseline": 1 / f**2,
             "domain_randomization": 1 / np.prod(config["regime"]["domain_randomization"]["factor_range"]),
             "augmentation": 1 / f**2 + config["regime"]["augmentation"]["noise_std"] ** 2}[g["regime"]]
        var_y = c1**2 + c2**2 + s**2
        # E[f f^T] and E[f y] for f = (x1, x2, x3, 1).
        m = np.array([[1, 0, c1, 0], [0, 1, c2, 0], [c1, c2, var_y + v + b * b, b], [0, 0, b, 1]], dtype=float)
        m[2, 3] = m[3, 2] = b
        r = np.array([c1, c2, var_y + b * b, b])
        assert g["weights"]["optimum"] == pytest.approx(list(np.linalg.solve(m, r)), rel=1e-12, abs=1e-12)
        # Expected RMSE on a test domain: sqrt(E[(y - w.f)^2]) from the same moments.
        for col, factor in (("iid_rmse_expected", d["iid_factor"]), ("ood_rmse_expected", d["ood_factor"])):
            mt = m.copy()
            mt[2, 2] = var_y + 1 / factor**2 + b * b
            e_y2 = var_y + b * b
            mse = e_y2 - 2 * w @ r + np.einsum("ij,jk,ik->i", w, mt, w)
            assert rows[col].to_numpy() == pytest.approx(np.sqrt(mse), rel=1e-9)
            # and the empirical RMSE of n_test samples is close to it
            emp = rows[col.replace("_expected", "")].to_numpy()
            assert np.all(np.abs(emp / rows[col].to_numpy() - 1) < 0.15)


def test_comparisons(run):
    replicas, summary, comparisons_csv = run
    comps = summary["comparisons"]
    assert len(comps) == 4  # 2 models x 2 remedies
    assert len(comparisons_csv) == len(comps)
    for c, (_, row) in zip(comps, comparisons_csv.iterrows()):
        assert (row.model, row.remedy, row.baseline) == (c["model"], c["remedy"], "baseline")
        sel = (replicas.cell == c["cell"]) & (replicas.model == c["model"])
        base = replicas[sel & (replicas.regime == "baseline")].ood_rmse.to_numpy()
        rem = replicas[sel & (replicas.regime == c["remedy"])].ood_rmse.to_numpy()
        d = c["ood_mean_diff"]
        t = stats.ttest_ind(rem, base, equal_var=False)
        ua, ub = np.var(base, ddof=1) / len(base), np.var(rem, ddof=1) / len(rem)
        df = (ua + ub) ** 2 / (ua**2 / (len(base) - 1) + ub**2 / (len(rem) - 1))
        diff = rem.mean() - base.mean()
        half = t975(df) * np.sqrt(ua + ub)
        assert d["value"] == pytest.approx(diff, **EXACT)
        assert d["t"] == pytest.approx(t.statistic, **EXACT)
        assert d["p_value"] == pytest.approx(t.pvalue, **EXACT)
        assert d["df"] == pytest.approx(df, **EXACT)
        assert d["ci"] == pytest.approx([diff - half, diff + half], **EXACT)
        bf = stats.levene(base, rem, center="median")
        assert c["brown_forsythe"]["statistic"] == pytest.approx(bf.statistic, **EXACT)
        assert c["brown_forsythe"]["p_value"] == pytest.approx(bf.pvalue, **EXACT)
        assert (c["brown_forsythe"]["df1"], c["brown_forsythe"]["df2"]) == (1, len(base) + len(rem) - 2)
        assert c["ood_std_ratio"]["value"] == pytest.approx(sd(rem) / sd(base), **EXACT)
        theirs = boot((base, rem), lambda a, b, axis=-1: sd(b, axis) / sd(a, axis), False)
        assert_interval(c["ood_std_ratio"]["ci"], theirs, f"{c['model']}/{c['remedy']} std ratio")
        # comparisons.csv holds the same numbers
        assert row.ood_mean_diff == pytest.approx(d["value"], **EXACT)
        assert row.welch_p == pytest.approx(d["p_value"], **EXACT)
        assert row.brown_forsythe_p == pytest.approx(c["brown_forsythe"]["p_value"], **EXACT)
        assert [row.ood_std_ratio_ci_low, row.ood_std_ratio_ci_high] == pytest.approx(c["ood_std_ratio"]["ci"], **EXACT)
