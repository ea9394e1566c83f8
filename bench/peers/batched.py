#!/usr/bin/env python3
"""Batched PyTorch peer, the expert way: every replica of an architecture (all seeds, all
regimes) trained at once. Weights are stacked [R, in, out] and applied with torch.baddbmm;
one torch.optim.Adam over the stacked parameters is exactly one Adam per replica (Adam is
element-wise and each replica's loss term only reaches its own slice); every replica gets
its own shuffle per epoch (argsort of uniform keys) and its own augmentation noise per
step. See common.py for the experiment."""
import math

import torch

import common


def init_stack(widths, replicas, gen):
    """PyTorch's default nn.Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), per replica."""
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(replicas, fan_in, fan_out, generator=gen) * 2 - 1) * bound
        b = (torch.rand(replicas, 1, fan_out, generator=gen) * 2 - 1) * bound
        params += [w.requires_grad_(), b.requires_grad_()]
    return params


def forward(params, x):
    """x [R, batch, in] -> predictions [R, batch, 1]; ReLU between layers."""
    layers = len(params) // 2
    for l in range(layers):
        x = torch.baddbmm(params[2 * l + 1], x, params[2 * l])
        if l + 1 < layers:
            x = torch.relu(x)
    return x


def train_architecture(model, regimes, seeds, train, epochs, gen):
    """Trains len(regimes) * seeds replicas (regime-major) of one architecture at once."""
    widths = (3, 1) if model == "perceptron" else (3, *common.HIDDEN, 1)
    replicas = len(regimes) * seeds
    # Distinct training sets, and which one each replica reads.
    xs = torch.stack([train[r][0] for r in regimes])  # [D, n, 3]
    ys = torch.stack([train[r][1] for r in regimes])  # [D, n, 1]
    data_of = torch.arange(len(regimes)).repeat_interleave(seeds)[:, None]  # [R, 1]
    augmented = torch.tensor([r == "augmentation" for r in regimes]).repeat_interleave(seeds)
    aug_rows = augmented.nonzero().flatten()
    n = xs.shape[1]

    params = init_stack(widths, replicas, gen)
    opt = torch.optim.Adam(params, lr=common.LR, betas=common.BETAS, eps=common.EPS)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=common.STEP_SIZE, gamma=common.GAMMA)
    for _ in range(epochs):
        order = torch.argsort(torch.rand(replicas, n, generator=gen), dim=1)  # [R, n]
        for start in range(0, n, common.BATCH):
            idx = order[:, start:start + common.BATCH]  # [R, B]
            xb = xs[data_of, idx]  # [R, B, 3] (a gathered copy)
            yb = ys[data_of, idx]  # [R, B, 1]
            if len(aug_rows):
                noise = common.AUG_NOISE_STD * torch.randn(len(aug_rows), idx.shape[1], generator=gen)
                xb[aug_rows, :, 2] += noise
            # Sum over replicas of each replica's mean squared error.
            loss = (forward(params, xb) - yb).pow(2).mean(dim=(1, 2)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return [p.detach() for p in params]


def rmse_per_replica(params, test):
    x, y = test
    replicas = params[0].shape[0]
    pred = forward(params, x.expand(replicas, *x.shape))
    return ((pred.double() - y.double()) ** 2).mean(dim=(1, 2)).sqrt().tolist()


def train_model(args, model, train, iid, ood):
    gen = torch.Generator().manual_seed(common.replica_seed(args.seed, model, args.regimes[0], 0))
    params = train_architecture(model, args.regimes, args.seeds, train, args.epochs, gen)
    with torch.no_grad():
        iid_rmse = rmse_per_replica(params, iid)
        ood_rmse = rmse_per_replica(params, ood)
    records = []
    for k in range(len(args.regimes) * args.seeds):
        regime, s = args.regimes[k // args.seeds], k % args.seeds
        weights = None
        if model == "perceptron":
            weights = torch.cat([params[0][k].flatten(), params[1][k].flatten()]).tolist()
        records.append(common.replica_record(model, regime, args.seed + s, iid_rmse[k], ood_rmse[k], weights))
    return records


if __name__ == "__main__":
    common.main("batched", __doc__, train_model)
