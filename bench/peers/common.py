"""Shared parts of the peers of underspec's seed experiment (PyTorch; the JAX peer uses the data and I/O).

The experiment (the same model as underspec's built-in default; the random bits differ):
  x1, x2 ~ N(0, 1);  y = 1*x1 + 2*x2 + 3 + N(0, 1);  x3 = y + N(0, 1) / factor
  train factor 0.2, IID test 0.2, OOD test 0.1; 5000 training and 5000 test samples each.
Regimes: baseline; domain_randomization (every training sample its own factor
~ U(0.01, 0.2), drawn once with the dataset); augmentation (training domain, and at every
step each sample of the batch gets fresh noise x3 += N(0, 10^2)). Within a regime all seeds
share one training set; baseline and augmentation share the same draw.
Models: perceptron = Linear(3, 1); mlp = 3 -> 64 -> 64 -> 1 with ReLU; PyTorch default init.
Training: MSE, Adam(lr 1e-3), StepLR(10, 0.5) per epoch, 30 epochs, batch 64, reshuffled
every epoch, last smaller batch kept.
"""
import argparse
import json
import math
import os
import platform
import time

import torch

MODELS = ("perceptron", "mlp")
REGIMES = ("baseline", "domain_randomization", "augmentation")
HIDDEN = (64, 64)
N_TRAIN = 5000
N_TEST = 5000
TRAIN_FACTOR, IID_FACTOR, OOD_FACTOR = 0.2, 0.2, 0.1
DR_FACTOR_RANGE = (0.01, 0.2)
AUG_NOISE_STD = 10.0
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
STEP_SIZE, GAMMA = 10, 0.5
BATCH = 64


def whole_number(minimum):
    """An argparse type: an int >= minimum (0 seeds or epochs would 'succeed' having trained nothing)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=whole_number(1), default=10, help="seeds per (model, regime)")
    p.add_argument("--epochs", type=whole_number(1), default=30)
    p.add_argument("--threads", type=whole_number(1), default=1, help="torch.set_num_threads")
    p.add_argument("--data-seed", type=whole_number(0), default=0)
    p.add_argument("--seed", type=whole_number(0), default=0,
                   help="first replica seed: runs with --seed 0 --seeds 15 and --seed 15 --seeds 15 "
                        "together are the replicas of one --seeds 30 run (eager: bit for bit)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--regimes", default=",".join(REGIMES))
    p.add_argument("--out", help="JSON file for per-replica results and wall time")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    args = p.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.regimes = [r for r in args.regimes.split(",") if r]
    for m in args.models:
        if m not in MODELS:
            p.error(f"unknown model {m!r}")
    for r in args.regimes:
        if r not in REGIMES:
            p.error(f"unknown regime {r!r}")
    if not args.models or not args.regimes:
        p.error("--models and --regimes each need at least one name")
    torch.set_num_threads(args.threads)
    return args


def _scm(gen, n, factor):
    """(x [n, 3], y [n, 1]) with x3 = y + z / factor; factor a float or an [n] tensor."""
    z = torch.randn(n, 4, generator=gen)
    x1, x2 = z[:, 0], z[:, 1]
    y = 1.0 * x1 + 2.0 * x2 + 3.0 + z[:, 2]
    x3 = y + z[:, 3] / factor
    return torch.stack([x1, x2, x3], dim=1), y.unsqueeze(1)


def make_data(data_seed, regimes):
    """Training sets per regime and the shared IID / OOD test sets."""
    gen = torch.Generator().manual_seed(data_seed)
    base = torch.randn(N_TRAIN, 4, generator=gen)  # x1, x2, y-noise, x3-noise
    lo, hi = DR_FACTOR_RANGE
    dr_factor = lo + (hi - lo) * torch.rand(N_TRAIN, generator=gen)
    x1, x2 = base[:, 0], base[:, 1]
    y = 1.0 * x1 + 2.0 * x2 + 3.0 + base[:, 2]
    train = {}
    for regime in regimes:
        factor = dr_factor if regime == "domain_randomization" else TRAIN_FACTOR
        x3 = y + base[:, 3] / factor
        train[regime] = (torch.stack([x1, x2, x3], dim=1), y.unsqueeze(1))
    iid = _scm(gen, N_TEST, IID_FACTOR)
    ood = _scm(gen, N_TEST, OOD_FACTOR)
    return train, iid, ood


def replica_seed(base_seed, model, regime, seed_index):
    """Distinct torch seed per replica (init, shuffles, augmentation noise)."""
    return 1_000_003 * (base_seed + seed_index) + 1009 * MODELS.index(model) + REGIMES.index(regime)


def rmse(pred, y):
    return math.sqrt(float(((pred.double() - y.double()) ** 2).mean()))


def _mean_std(values):
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def group_stats(replicas):
    groups = []
    keys = []
    for r in replicas:
        if (r["model"], r["regime"]) not in keys:
            keys.append((r["model"], r["regime"]))
    for model, regime in keys:
        rows = [r for r in replicas if r["model"] == model and r["regime"] == regime]
        g = {"model": model, "regime": regime, "replicas": len(rows)}
        for metric in ("iid_rmse", "ood_rmse"):
            mean, std = _mean_std([r[metric] for r in rows])
            g[metric] = {"mean": mean, "std": std}
        if model == "perceptron":
            mean, std = _mean_std([r["w_x3"] for r in rows])
            g["w_x3"] = {"mean": mean, "std": std}
        groups.append(g)
    return groups


def replica_record(model, regime, seed_index, iid_rmse, ood_rmse, weights=None):
    rec = {"model": model, "regime": regime, "seed": seed_index, "iid_rmse": iid_rmse, "ood_rmse": ood_rmse}
    if weights is not None:  # perceptron: (w_x1, w_x2, w_x3, bias)
        rec.update(zip(("w_x1", "w_x2", "w_x3", "bias"), (float(w) for w in weights)))
    return rec


def finish(peer, args, replicas, wall_seconds, extra=None):
    """Prints the group table (unless --quiet) and writes --out; `extra`: more top-level
    JSON fields (the JAX peer's compile and training seconds)."""
    groups = group_stats(replicas)
    extra = extra or {}
    if not args.quiet:
        timings = "".join(f", {k} {v:.2f}" for k, v in extra.items() if k.endswith("_seconds"))
        print(f"{peer}: {len(replicas)} trainings, {args.epochs} epochs, "
              f"{torch.get_num_threads()} thread(s), {wall_seconds:.2f} s{timings}")
        print(f"{'model':<11} {'regime':<21} {'n':>3}  {'iid mean':>8} {'iid std':>8}  "
              f"{'ood mean':>8} {'ood std':>8}  {'w_x3':>6}")
        for g in groups:
            w3 = f"{g['w_x3']['mean']:6.3f}" if "w_x3" in g else ""
            print(f"{g['model']:<11} {g['regime']:<21} {g['replicas']:>3}  "
                  f"{g['iid_rmse']['mean']:8.4f} {g['iid_rmse']['std']:8.4f}  "
                  f"{g['ood_rmse']['mean']:8.4f} {g['ood_rmse']['std']:8.4f}  {w3}")
    if args.out:
        result = {
            "peer": peer,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "seeds": args.seeds,
            "epochs": args.epochs,
            "host": platform.node(),
            "wall_seconds": wall_seconds,
            "groups": groups,
            "replicas": replicas,
            **extra,
        }
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.out)


def main(peer, description, train_model):
    """Parses the command line, makes the data, calls train_model(args, model, train, iid,
    ood) -> replica records for every model, and reports. The wall time covers data,
    training and scoring (not the import of torch)."""
    args = parse_args(description)
    start = time.perf_counter()
    train, iid, ood = make_data(args.data_seed, args.regimes)
    replicas = []
    for model in args.models:
        replicas += train_model(args, model, train, iid, ood)
    finish(peer, args, replicas, time.perf_counter() - start)
