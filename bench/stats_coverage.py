#!/usr/bin/env python3
"""Coverage of underspec's 95% intervals, simulated: how often each interval contains the
true value, for normal and lognormal data at a few seed counts n.

The intervals are those of summary.json (README "Intervals"), re-implemented with numpy:
  - std:       percentile bootstrap of the sample std (ddof 1); 4000 resamples, type-7
               quantiles 0.025 / 0.975; a resample without spread (std 0) is kept.
  - std ratio: percentile bootstrap of std(y) / std(x), x and y resampled independently
               (ood_std_ratio: remedy / baseline); resamples where std(x) = 0 are left out.
               Both samples have the same spread: the true ratio is 1.
  - mean:      Student t, mean ± t_{0.975, n-1} s / sqrt(n).
The draws differ from the binary's (Philox), not the method. Prints a markdown table; each
coverage has a Monte-Carlo standard error of about sqrt(0.95 * 0.05 / reps).

    python3 bench/stats_coverage.py                     # ~30 s on 2 cores
    python3 bench/stats_coverage.py --reps 2000 --n 10 30
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from scipy import stats

LEVEL = 0.95
DISTRIBUTIONS = {
    # name: (draw(rng, shape), true std, true mean)
    "normal": (lambda rng, shape: rng.standard_normal(shape), 1.0, 0.0),
    "lognormal": (lambda rng, shape: rng.lognormal(0.0, 1.0, shape), float(np.sqrt((np.e - 1) * np.e)),
                  float(np.exp(0.5))),
}
ELEMENTS_PER_CHUNK = 2_000_000  # resampled values held at once (memory, not speed)


def bootstrap_stds(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The std (ddof 1) of `resamples` resamples of each row of x: shape (rows, resamples)."""
    rows, n = x.shape
    idx = rng.integers(0, n, size=(rows, resamples, n))
    return x[np.arange(rows)[:, None, None], idx].std(axis=2, ddof=1)


def percentile_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2.5% and 97.5% quantiles of each row (type 7, numpy's default), NaNs left out; a row
    whose resamples are all undefined gives NaN ends (an undefined interval), without a warning."""
    alpha = (1 - LEVEL) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice encountered"
        lo, hi = np.nanquantile(values, [alpha, 1 - alpha], axis=1)
    return lo, hi


def covers(lo: np.ndarray, hi: np.ndarray, truth: float) -> np.ndarray:
    """Whether each interval contains the truth; an undefined interval does not."""
    return (lo <= truth) & (truth <= hi)


def coverage(dist: str, n: int, reps: int, resamples: int, rng: np.random.Generator) -> dict:
    """Fraction of `reps` simulated groups of n seeds whose interval contains the truth."""
    draw, true_std, true_mean = DISTRIBUTIONS[dist]
    hits = {"std": 0, "std_ratio": 0, "mean_t": 0}
    chunk = max(1, ELEMENTS_PER_CHUNK // (resamples * n))
    for start in range(0, reps, chunk):
        rows = min(chunk, reps - start)
        x, y = draw(rng, (rows, n)), draw(rng, (rows, n))  # baseline, remedy: the same spread
        sx, sy = bootstrap_stds(x, resamples, rng), bootstrap_stds(y, resamples, rng)
        hits["std"] += covers(*percentile_interval(sx), true_std).sum()
        with np.errstate(all="ignore"):
            ratio = np.where(sx > 0, sy / sx, np.nan)  # undefined where the baseline has no spread
        hits["std_ratio"] += covers(*percentile_interval(ratio), 1.0).sum()
        half = stats.t.ppf(0.5 + LEVEL / 2, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
        mean = x.mean(axis=1)
        hits["mean_t"] += covers(mean - half, mean + half, true_mean).sum()
    return {k: v / reps for k, v in hits.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=1000, help="simulated groups per (distribution, n) (default 1000)")
    p.add_argument("--resamples", type=int, default=4000, help="bootstrap resamples (default 4000, as underspec)")
    p.add_argument("--n", type=int, nargs="+", default=[3, 5, 10, 30, 100], help="seed counts")
    p.add_argument("--dist", nargs="+", default=list(DISTRIBUTIONS), choices=list(DISTRIBUTIONS))
    p.add_argument("--seed", type=int, default=20261130, help="numpy seed (the table is reproducible)")
    args = p.parse_args(argv)
    if args.reps < 1 or args.resamples < 2 or min(args.n) < 2:
        p.error("--reps >= 1, --resamples >= 2 and every --n >= 2")

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(f"Coverage of the 95% intervals: {args.reps} simulated groups per row, {args.resamples} bootstrap "
          f"resamples, numpy seed {args.seed} (Monte-Carlo SE ~{np.sqrt(LEVEL * (1 - LEVEL) / args.reps):.3f} "
          "at 95%)\n")
    print("| data | n (seeds) | std: percentile bootstrap | std ratio: percentile bootstrap | mean: t interval |")
    print("|---|---|---|---|---|")
    for dist in args.dist:
        for n in args.n:
            c = coverage(dist, n, args.reps, args.resamples, rng)
            print(f"| {dist} | {n} | {c['std']:.3f} | {c['std_ratio']:.3f} | {c['mean_t']:.3f} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
