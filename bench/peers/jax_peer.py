#!/usr/bin/env python3
"""JAX peer, written the strong way: one jitted program per architecture trains every
replica (all seeds of all regimes, as batched.py), jax.vmap over replicas and jax.lax.scan
over epochs and steps; Adam and StepLR as torch.optim computes them; float32 on the CPU.
The data are common.make_data's (the PyTorch peers' torch generator, so the very sets the
other peers train and test on); init (PyTorch's default bounds), shuffles and augmentation
noise come from jax.random, one key per replica.
The compile (ahead of time, once per program) and the training are timed apart and both
written to --out (compile_seconds, train_seconds); wall_seconds covers data, compile,
training and scoring, as for the other peers. See common.py for the experiment.

Run it with a JAX from PyPI (bench/compare.sh --jax makes a venv that also sees Debian's
torch, which common.py needs for the data)."""
import math
import os
import time
from functools import partial

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402

jax.config.update("jax_enable_x64", False)  # float32 throughout, as the other peers


def set_threads(threads):
    """XLA's CPU threads (compare.sh runs one process of 1 thread per core, as for torch);
    must run before JAX's backend starts, i.e. before the first array."""
    flags = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


def init_params(key, widths):
    """PyTorch's default nn.Linear init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        key, kw, kb = jax.random.split(key, 3)
        bound = 1.0 / math.sqrt(fan_in)
        w = jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound)
        b = jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound)
        params.append((w, b))
    return params


def forward(params, x):
    for l, (w, b) in enumerate(params):
        x = x @ w + b
        if l + 1 < len(params):
            x = jax.nn.relu(x)
    return x


def mse(params, x, y, w):
    """Mean squared error over the rows with weight 1 (0 marks padding of the last batch)."""
    return jnp.sum(w * (forward(params, x) - y)[:, 0] ** 2) / jnp.sum(w)


def adam_step(params, m, v, t, lr, batch):
    """One step of torch.optim.Adam (no weight decay, not amsgrad): bias corrections of step t,
    eps added after sqrt(v_hat)."""
    b1, b2 = common.BETAS
    g = jax.grad(mse)(params, *batch)
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
    step_size = lr / (1 - b1**t)
    bc2_sqrt = jnp.sqrt(1 - b2**t)
    params = jax.tree_util.tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / bc2_sqrt + common.EPS),
                                    params, m, v)
    return params, m, v


def shuffle(key, n):
    """A random order of range(n): sorts random bits with the index in the low bits. XLA's
    CPU sort of one uint32 array is ~6x faster than jnp.argsort (a two-operand sort), which
    is itself faster than jax.random.permutation. Keys tie with probability 2^-(32 - index
    bits) per pair (2^-19 for n = 5000: ~24 pairs an epoch keep their index order; torch's
    argsort(rand) in batched.py ties at 2^-24)."""
    index_bits = max(1, (n - 1).bit_length())
    assert index_bits <= 24, "n too large for packed keys"
    low = jnp.uint32((1 << index_bits) - 1)
    packed = (jax.random.bits(key, (n,), jnp.uint32) & ~low) | jnp.arange(n, dtype=jnp.uint32)
    return (jnp.sort(packed) & low).astype(jnp.int32)


def train_one(key, data, augment, xs_all, ys_all, *, widths, epochs):
    """One replica on training set `data` of xs_all [D, n, 3], ys_all [D, n, 1], with x3 noise
    when augment is 1: init, then `epochs` passes in a fresh order each, batches of BATCH and
    the last smaller one kept (padded to BATCH with weight-0 rows, so that one step body is
    compiled, not two); returns its parameters."""
    n = xs_all.shape[1]
    steps = -(-n // common.BATCH)
    pad = steps * common.BATCH - n
    weights = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)]).reshape(steps, common.BATCH)
    key_init, key_run = jax.random.split(key)
    params = init_params(key_init, widths)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)

    def epoch(carry, e):
        k_order, k_noise = jax.random.split(jax.random.fold_in(key_run, e))
        order = shuffle(k_order, n)
        order = jnp.concatenate([order, order[:pad]])  # padding rows, weight 0
        xs, ys = xs_all[data, order], ys_all[data, order]  # the epoch's batches, gathered once
        # Fresh x3 noise for every sample of every step (drawn for all replicas: one program).
        xs = xs.at[:, 2].add(augment * common.AUG_NOISE_STD * jax.random.normal(k_noise, (n + pad,)))
        lr = common.LR * common.GAMMA ** (e // common.STEP_SIZE)  # StepLR, stepped per epoch

        def step(carry, batch):
            params, m, v, t = carry
            t = t + 1
            params, m, v = adam_step(params, m, v, t, lr, batch)
            return (params, m, v, t), None

        batches = (xs.reshape(steps, common.BATCH, -1), ys.reshape(steps, common.BATCH, -1), weights)
        return jax.lax.scan(step, carry, batches)[0], None

    carry = (params, zeros, zeros, jnp.zeros((), jnp.float32))
    (params, _, _, _), _ = jax.lax.scan(epoch, carry, jnp.arange(epochs))
    return params


@partial(jax.jit, static_argnames=("widths", "epochs"))
def train_replicas(keys, data, augment, xs_all, ys_all, *, widths, epochs):
    """All replicas of one architecture: keys [R, 2], data [R] (which training set),
    augment [R] (0 or 1); training sets xs_all [D, n, 3], ys_all [D, n, 1]."""
    one = partial(train_one, widths=widths, epochs=epochs)
    return jax.vmap(one, in_axes=(0, 0, 0, None, None))(keys, data, augment, xs_all, ys_all)


@jax.jit
def predict(params, x):
    return jax.vmap(forward, in_axes=(0, None))(params, x)


def rmse_per_replica(params, test):
    x, y = test
    pred = np.asarray(predict(params, jnp.asarray(x.numpy())), dtype=np.float64)  # [R, n, 1]
    return np.sqrt(((pred - y.numpy().astype(np.float64)) ** 2).mean(axis=(1, 2))).tolist()


def train_model(args, model, train, iid, ood, times):
    """Trains every regime's seeds of one architecture in one program (as batched.py)."""
    widths = (3, 1) if model == "perceptron" else (3, *common.HIDDEN, 1)
    regimes, seeds = args.regimes, args.seeds
    xs_all = jnp.asarray(np.stack([train[r][0].numpy() for r in regimes]))
    ys_all = jnp.asarray(np.stack([train[r][1].numpy() for r in regimes]))
    data = jnp.repeat(jnp.arange(len(regimes)), seeds)
    augment = jnp.repeat(jnp.asarray([float(r == "augmentation") for r in regimes]), seeds)
    replica_seeds = [common.replica_seed(args.seed, model, r, s) % 2**32 for r in regimes for s in range(seeds)]
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(replica_seeds, dtype=jnp.uint32))
    start = time.perf_counter()
    compiled = train_replicas.lower(keys, data, augment, xs_all, ys_all, widths=widths, epochs=args.epochs).compile()
    times["compile_seconds"] += time.perf_counter() - start
    start = time.perf_counter()
    params = jax.block_until_ready(compiled(keys, data, augment, xs_all, ys_all))
    times["train_seconds"] += time.perf_counter() - start
    iid_rmse, ood_rmse = rmse_per_replica(params, iid), rmse_per_replica(params, ood)
    records = []
    for k in range(len(regimes) * seeds):
        weights = None
        if model == "perceptron":
            (w, b), = params
            weights = np.concatenate([np.asarray(w[k]).ravel(), np.asarray(b[k]).ravel()]).tolist()
        records.append(common.replica_record(model, regimes[k // seeds], args.seed + k % seeds, iid_rmse[k],
                                             ood_rmse[k], weights))
    return records


def main():
    args = common.parse_args(__doc__)
    set_threads(args.threads)
    start = time.perf_counter()
    train, iid, ood = common.make_data(args.data_seed, args.regimes)
    times = {"compile_seconds": 0.0, "train_seconds": 0.0}
    replicas = []
    for model in args.models:
        replicas += train_model(args, model, train, iid, ood, times)
    wall = time.perf_counter() - start
    common.finish("jax", args, replicas, wall, extra={"jax": jax.__version__, **times})


if __name__ == "__main__":
    main()
