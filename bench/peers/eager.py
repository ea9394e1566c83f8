#!/usr/bin/env python3
"""Eager PyTorch peer: one model at a time, nn.Module + DataLoader, as a researcher
would write the seed experiment. See common.py for the experiment."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import common


def make_model(model):
    if model == "perceptron":
        return nn.Linear(3, 1)
    h1, h2 = common.HIDDEN
    return nn.Sequential(nn.Linear(3, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, 1))


def train_one(model_name, regime, x, y, epochs, seed):
    torch.manual_seed(seed)
    net = make_model(model_name)
    loader = DataLoader(TensorDataset(x, y), batch_size=common.BATCH, shuffle=True, drop_last=False)
    opt = torch.optim.Adam(net.parameters(), lr=common.LR, betas=common.BETAS, eps=common.EPS)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=common.STEP_SIZE, gamma=common.GAMMA)
    loss_fn = nn.MSELoss()
    for _ in range(epochs):
        for xb, yb in loader:
            if regime == "augmentation":
                xb = xb.clone()
                xb[:, 2] += common.AUG_NOISE_STD * torch.randn(xb.shape[0])
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
        sched.step()
    return net


def train_model(args, model, train, iid, ood):
    records = []
    for regime in args.regimes:
        x, y = train[regime]
        for s in range(args.seeds):
            net = train_one(model, regime, x, y, args.epochs, common.replica_seed(args.seed, model, regime, s))
            with torch.no_grad():
                weights = None
                if model == "perceptron":
                    weights = torch.cat([net.weight.flatten(), net.bias]).tolist()
                records.append(common.replica_record(model, regime, args.seed + s, common.rmse(net(iid[0]), iid[1]),
                                                     common.rmse(net(ood[0]), ood[1]), weights))
    return records


if __name__ == "__main__":
    common.main("eager", __doc__, train_model)
