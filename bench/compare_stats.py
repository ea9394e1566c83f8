#!/usr/bin/env python3
"""Reads the runs of bench/compare.sh, prints the timing and agreement tables, writes
compare.json and exits 1 when the statistics disagree or a qualitative finding fails, 2
when RUN_DIR holds no underspec run or no peer run (nothing was compared).

Layout of RUN_DIR (written by compare.sh):
  underspec-K/{replicas.csv,summary.json}   underspec runs, K = 1..
  batched-K-pJ.json, eager-K-pJ.json,      peer runs (bench/peers/*.py --out), process J of
  jax-K-pJ.json                            run K; the processes of a run split the seeds
  times.tsv                                name <TAB> repetition <TAB> process wall seconds

A run's compute time is that of its slowest process. The JAX peer also reports its compile
and training seconds (compile_seconds, train_seconds; each the slowest process's): the
ratio "train" sets underspec's compute time against JAX's training alone.

Agreement: for every (model, regime) and metric (IID, OOD RMSE), the seed means of
underspec and of a peer must satisfy |m1 - m2| <= z * se with
  se^2 = s1^2/n1 + s2^2/n2 + (m1^2 + m2^2) / (2 n_test).
The first two terms are the sampling error of the seed means; the last is the sampling
error of each implementation's own test set (one draw per implementation, shared by all its
seeds, so it shifts a whole group and is not in the seed spread; for Gaussian residuals the
RMSE over n_test samples has standard error RMSE / sqrt(2 n_test)). The peers share their
data (common.make_data, same torch generator), so between them only the seed terms apply.
"""
import argparse
import csv
import glob
import json
import math
import os
import statistics
import sys

MODELS = ("perceptron", "mlp")
REGIMES = ("baseline", "domain_randomization", "augmentation")
METRICS = ("iid_rmse", "ood_rmse")
PEERS = ("batched", "eager", "jax")


def load_underspec(path):
    with open(os.path.join(path, "replicas.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        rec = {"model": r["model"], "regime": r["regime"], "seed": int(r["seed"]),
               "iid_rmse": float(r["iid_rmse"]), "ood_rmse": float(r["ood_rmse"])}
        if r.get("w_x3") not in (None, ""):
            rec["w_x3"] = float(r["w_x3"])
        out.append(rec)
    with open(os.path.join(path, "summary.json")) as f:
        summary = json.load(f)
    return out, float(summary.get("wall_seconds", float("nan")))


def load_peer(path):
    """(replicas, {"compute": wall seconds, and "compile", "train" where the peer times them})."""
    with open(path) as f:
        data = json.load(f)
    times = {"compute": float(data["wall_seconds"])}
    for key in ("compile", "train"):
        if f"{key}_seconds" in data:
            times[key] = float(data[f"{key}_seconds"])
    return data["replicas"], times


def group(replicas, model, regime, key):
    vals = [r[key] for r in replicas if r["model"] == model and r["regime"] == regime and key in r]
    if not vals:
        return None
    n = len(vals)
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": std}


def agreement(a, b, z, n_test):
    """Rows comparing every (model, regime, metric) of implementations a and b."""
    rows = []
    for model in MODELS:
        for regime in REGIMES:
            for metric in METRICS:
                ga, gb = group(a, model, regime, metric), group(b, model, regime, metric)
                if ga is None or gb is None:
                    continue
                var = ga["std"] ** 2 / ga["n"] + gb["std"] ** 2 / gb["n"]
                if n_test:
                    var += (ga["mean"] ** 2 + gb["mean"] ** 2) / (2 * n_test)
                se = math.sqrt(var)
                diff = ga["mean"] - gb["mean"]
                rows.append({"model": model, "regime": regime, "metric": metric, "mean_a": ga["mean"],
                             "mean_b": gb["mean"], "n_a": ga["n"], "n_b": gb["n"], "diff": diff, "se": se,
                             "z": diff / se if se > 0 else 0.0, "ok": abs(diff) <= z * se})
    return rows


def findings(replicas):
    """The seed experiment's qualitative findings for the perceptron."""
    def g(regime, key):
        return group(replicas, "perceptron", regime, key)

    base_iid, base_ood = g("baseline", "iid_rmse"), g("baseline", "ood_rmse")
    if base_iid is None or base_ood is None:
        return [{"check": "perceptron baseline present", "ok": False}]
    gap = {r: g(r, "ood_rmse")["mean"] - g(r, "iid_rmse")["mean"] for r in REGIMES if g(r, "ood_rmse")}
    checks = [{"check": "baseline perceptron OOD RMSE > 1.2 x its IID RMSE",
               "value": f"{base_ood['mean']:.3f} vs {base_iid['mean']:.3f}",
               "ok": base_ood["mean"] > 1.2 * base_iid["mean"]}]
    for r in ("domain_randomization", "augmentation"):
        if r in gap:
            checks.append({"check": f"{r} closes the OOD-IID gap to < 1/2 of baseline's",
                           "value": f"{gap[r]:.3f} vs {gap['baseline']:.3f}",
                           "ok": gap[r] < 0.5 * gap["baseline"]})
    w_base = g("baseline", "w_x3")
    for r in ("domain_randomization", "augmentation"):
        w = g(r, "w_x3")
        if w_base and w:
            se = math.sqrt(w_base["std"] ** 2 / w_base["n"] + w["std"] ** 2 / w["n"])
            checks.append({"check": f"baseline w_x3 > 2 x {r}'s (and by > 3 se)",
                           "value": f"{w_base['mean']:.3f} vs {w['mean']:.3f}",
                           "ok": w_base["mean"] > 2 * w["mean"] and w_base["mean"] - w["mean"] > 3 * se})
    return checks


def median_or_nan(values):
    return statistics.median(values) if values else float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--z", type=float, default=3.5, help="agreement threshold in standard errors")
    p.add_argument("--n-test", type=int, default=5000, help="test-set size of every implementation")
    args = p.parse_args()

    impls = {}  # name -> {"replicas": first run's replicas, "compute": [s], "process": [s], maybe "compile", "train"}
    for path in sorted(glob.glob(os.path.join(args.run_dir, "underspec-*", "replicas.csv"))):
        reps, wall = load_underspec(os.path.dirname(path))
        d = impls.setdefault("underspec", {"replicas": reps, "compute": [], "process": []})
        d["compute"].append(wall)
    for peer in PEERS:
        runs = {}  # run K -> its processes' (replicas, times)
        for path in glob.glob(os.path.join(args.run_dir, f"{peer}-*-p*.json")):
            run = os.path.basename(path)[len(peer) + 1:].split("-p")[0]
            runs.setdefault(run, []).append(load_peer(path))
        for run in sorted(runs, key=int):
            reps = [r for part, _ in runs[run] for r in part]
            d = impls.setdefault(peer, {"replicas": reps, "compute": [], "process": []})
            for key in runs[run][0][1]:  # compute (and compile, train): the slowest process
                d.setdefault(key, []).append(max(times[key] for _, times in runs[run]))
    times_path = os.path.join(args.run_dir, "times.tsv")
    if os.path.exists(times_path):
        with open(times_path) as f:
            for line in f:
                name, _, seconds = line.rstrip("\n").split("\t")
                if name in impls:
                    impls[name]["process"].append(float(seconds))
    if "underspec" not in impls or not any(p in impls for p in PEERS):
        missing = "underspec" if "underspec" not in impls else "peer (batched, eager or jax)"
        print(f"compare_stats: no {missing} run in {args.run_dir}: nothing to compare", file=sys.stderr)
        return 2

    result = {"timing": {}, "ratios": {}, "agreement": {}, "findings": {}, "z": args.z}
    print("Wall time (median over runs; compute = the tool's own timer, process = whole command)")
    print(f"{'implementation':<14} {'runs':>4} {'trainings':>9} {'compute s':>10} {'process s':>10} "
          f"{'compile s':>10} {'train s':>10}")
    for name, d in impls.items():
        t = {"runs": len(d["compute"]), "trainings": len(d["replicas"])}
        for key in ("compute", "process", "compile", "train"):
            if key in d:
                t[f"{key}_seconds"] = d[key]
                t[f"{key}_median"] = median_or_nan(d[key])
        result["timing"][name] = t
        extra = "".join(f" {t[k]:>10.3f}" if k in t else f" {'-':>10}" for k in ("compile_median", "train_median"))
        print(f"{name:<14} {t['runs']:>4} {t['trainings']:>9} {t['compute_median']:>10.3f} {t['process_median']:>10.3f}"
              + extra)
    base = result["timing"]["underspec"]
    print()
    for peer in ("eager", "batched", "jax"):
        if peer in result["timing"]:
            t = result["timing"][peer]
            r = {"compute": t["compute_median"] / base["compute_median"],
                 "process": t["process_median"] / base["process_median"]}
            line = f"speed-up of underspec over {peer:<8}: {r['compute']:8.1f}x compute, {r['process']:8.1f}x process"
            if "train_median" in t:  # JAX: its training alone, compile excluded
                r["train"] = t["train_median"] / base["compute_median"]
                line += f", {r['train']:8.1f}x training only"
            result["ratios"][f"{peer}/underspec"] = r
            print(line)

    failed = False
    peers = [p for p in PEERS if p in impls]
    pairs = [("underspec", p, args.n_test) for p in peers]
    if "batched" in impls and "eager" in impls:
        pairs.append(("eager", "batched", 0))  # same data: seed terms only
    if "jax" in impls and len(peers) > 1:
        pairs.append((peers[0], "jax", 0))  # same data (common.make_data) too
    for a, b, n_test in pairs:
        rows = agreement(impls[a]["replicas"], impls[b]["replicas"], args.z, n_test)
        result["agreement"][f"{a} vs {b}"] = rows
        print(f"\nAgreement {a} vs {b} (|diff| <= {args.z} se)")
        print(f"{'model':<11} {'regime':<21} {'metric':<8} {a:>10} {b:>10} {'diff':>8} {'se':>7} {'z':>6}")
        for r in rows:
            print(f"{r['model']:<11} {r['regime']:<21} {r['metric']:<8} {r['mean_a']:>10.4f} {r['mean_b']:>10.4f} "
                  f"{r['diff']:>8.4f} {r['se']:>7.4f} {r['z']:>6.2f} {'ok' if r['ok'] else 'DISAGREE'}")
            failed |= not r["ok"]
        if not rows:
            print("  (no common groups)")
            failed = True

    for name, d in impls.items():
        checks = findings(d["replicas"])
        result["findings"][name] = checks
        print(f"\nQualitative findings, {name}")
        for c in checks:
            print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c.get('value', '')}")
            failed |= not c["ok"]

    result["ok"] = not failed
    with open(os.path.join(args.run_dir, "compare.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n{'PASS' if not failed else 'FAIL'}: results in {os.path.join(args.run_dir, 'compare.json')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
