"""Supersample experiments: draws, masks, and populations of models trained as one program.

A supersample is n pairs drawn without replacement from a dataset (shape ``[n, 2, ...]``);
a mask U in {0,1}^n picks the training member of each pair (Steinke & Zakynthinou 2020).
The leave-one-out variant draws n+1 points and a held-out index U in [0, n] (Haghifam et al.
2022); all n+1 held-out choices may be enumerated.

:func:`train_population` trains many small models at once: one training run is a pure
function (init, epochs of shuffled minibatch steps with an optax optimiser, predictions on
every point of its pool) that is ``vmap``-ed over runs, compiled once, processed in chunks
that fit memory, and sharded over all visible devices along one "pop" mesh axis with
``jax.sharding``. Each run has its own PRNG key (initialisation and minibatch order).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from estimators.data import Dataset
from estimators.nets import Net
from estimators.objectives import predict
from estimators.train import make_optimizer

__all__ = ["Supersample", "TrainConfig", "draw_supersample", "draw_masks", "draw_loo_supersample",
           "loo_held_out", "loo_runs", "map_batch_for", "supersample_runs", "train_population"]


class Supersample(NamedTuple):
    """``x [n, 2, ...]``, ``y [n, 2]`` and the source ``indices [n, 2]``."""

    x: np.ndarray
    y: np.ndarray
    indices: np.ndarray


class TrainConfig(NamedTuple):
    """How each model of a population is trained."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    #: 0: vmap over all runs of a chunk. k > 0: ``jax.lax.map`` over runs in groups of k inside
    #: the same compiled program. CNN populations use ``nets.cnn(..., conv="matmul")`` (vmapped,
    #: XLA convolutions become grouped convolutions, ~60x slower than a loop on CPU); on XLA's
    #: CPU backend they also run fastest with k = 1 (30 CNNs at n = 75: 13 model-steps/s with
    #: k = 1, 9 with vmap, 7.7 for a Python loop over a jitted step), see :func:`map_batch_for`.
    map_batch: int = 0


def map_batch_for(arch: str) -> int:
    """``TrainConfig.map_batch`` for an architecture on the default backend (see there)."""
    return 1 if arch == "cnn" and jax.default_backend() == "cpu" else 0


def draw_supersample(key: jax.Array, data: Dataset, n: int) -> Supersample:
    """n pairs of distinct examples drawn without replacement."""
    if 2 * n > len(data):
        raise ValueError(f"argument 'n' = {n} needs {2 * n} examples, the dataset has {len(data)}")
    idx = np.asarray(jax.random.choice(key, len(data), (2 * n,), replace=False)).reshape(n, 2)
    return Supersample(data.x[idx], data.y[idx], idx)


def draw_masks(key: jax.Array, k2: int, n: int) -> np.ndarray:
    """``[k2, n]`` masks in antithetic pairs: k2 // 2 masks of independent fair bits, then their
    complements (and, for odd k2, one more independent mask).

    Every mask is uniform on {0,1}^n, as the CMI theorems require of U. Every pair i has both
    values of U_i among the k2 runs (exactly k2/2 each when k2 is even), so the design can never
    be one-sided (:func:`estimators.cmi.check_supersample_runs`). Independent bits left a pair
    one-sided with probability 2^(1-k2): 1/8 at k2 = 4. The runs with U_i = u are then i.i.d.
    draws of the model given U_i = u (the other bits are independent and uniform), which is
    what the plug-in MI with U's known marginal (:func:`estimators.mi.plugin_mi`) estimates from.
    """
    if k2 < 2:
        raise ValueError(f"argument 'k2' must be >= 2 (both values of every U_i), got {k2}")
    half = np.asarray(jax.random.bernoulli(key, 0.5, (k2 // 2, n))).astype(np.int64)
    extra = np.asarray(jax.random.bernoulli(jax.random.fold_in(key, 1), 0.5, (k2 % 2, n))).astype(np.int64)
    return np.concatenate([half, 1 - half, extra])


def draw_loo_supersample(key: jax.Array, data: Dataset, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n+1 distinct examples ``(x [n+1, ...], y [n+1], indices [n+1])`` for leave-one-out CMI."""
    idx = np.asarray(jax.random.choice(key, len(data), (n + 1,), replace=False))
    return data.x[idx], data.y[idx], idx


def loo_held_out(n: int) -> np.ndarray:
    """Held-out indices of one leave-one-out draw: all n+1 of them, each once (run r leaves out r).

    The leave-one-out bound needs exactly this design (:func:`estimators.cmi.check_loo_runs`);
    sampling a subset of held-out indices would cap the MI at ln R, so it is not offered.
    """
    return np.arange(n + 1)


def supersample_runs(sup: Supersample, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pool (the 2n points, pair-major) and each mask's training indices into it.

    Point j of pair i sits at pool index ``2 i + j``; run r trains on ``2 i + masks[r, i]``.
    """
    n = sup.y.shape[0]
    pool_x = sup.x.reshape(2 * n, *sup.x.shape[2:])
    pool_y = sup.y.reshape(2 * n)
    train_idx = 2 * np.arange(n)[None, :] + np.asarray(masks)
    return pool_x, pool_y, train_idx


def loo_runs(held_out: np.ndarray) -> np.ndarray:
    """Training indices ``[R, n]`` into a pool of n+1 points: run r trains on all but ``held_out[r]``."""
    held_out = np.asarray(held_out)
    n1 = int(held_out.max()) + 1 if held_out.size else 0
    n1 = max(n1, held_out.shape[0])
    everyone = np.arange(n1)
    return np.stack([everyone[everyone != h] for h in held_out])


def _make_run(net: Net, cfg: TrainConfig, m: int):
    opt = make_optimizer(cfg.optimizer, cfg.lr, cfg.momentum)
    bs = min(cfg.batch_size, m)
    steps = -(-m // bs)      # every example each epoch; the last batch is topped up from the start

    def run(key, pool_x, pool_y, train_idx):
        k_init, k_data = jax.random.split(key)
        params = net.init(k_init)
        opt_state = opt.init(params)
        xt, yt = pool_x[train_idx], pool_y[train_idx]

        def loss(p, xb, yb):
            return optax.softmax_cross_entropy_with_integer_labels(net.apply(p, xb), yb).mean()

        def epoch(carry, k):
            perm = jax.random.permutation(k, m)
            perm = jnp.concatenate([perm, perm])[: steps * bs].reshape(steps, bs)

            def step(c, idx):
                p, s = c
                g = jax.grad(loss)(p, xt[idx], yt[idx])
                u, s = opt.update(g, s, p)
                return (optax.apply_updates(p, u), s), None

            return jax.lax.scan(step, carry, perm)[0], None

        (params, _), _ = jax.lax.scan(epoch, (params, opt_state), jax.random.split(k_data, cfg.epochs))
        return predict(net.apply(params, pool_x))

    return run


@functools.partial(jax.jit, static_argnames=("net", "cfg", "shared_pool"))
def _population(keys, pool_x, pool_y, train_idx, *, net: Net, cfg: TrainConfig, shared_pool: bool):
    """All runs of one chunk as one compiled program (cached per net, config and shapes)."""
    run = _make_run(net, cfg, train_idx.shape[1])
    if cfg.map_batch > 0:
        if shared_pool:
            return jax.lax.map(lambda a: run(a[0], pool_x, pool_y, a[1]), (keys, train_idx),
                               batch_size=cfg.map_batch)
        return jax.lax.map(lambda a: run(*a), (keys, pool_x, pool_y, train_idx), batch_size=cfg.map_batch)
    axes = None if shared_pool else 0
    return jax.vmap(run, in_axes=(0, axes, axes, 0))(keys, pool_x, pool_y, train_idx)


def train_population(
    net: Net, keys: jax.Array, pool_x: np.ndarray, pool_y: np.ndarray, train_idx: np.ndarray,
    cfg: TrainConfig, *, chunk: int | None = None, devices: list | None = None, progress: bool = True,
    shared_pool: bool = True,
) -> np.ndarray:
    """Train one model per row of ``train_idx`` and return its predicted classes on the pool.

    Args:
        net: architecture (``init``, ``apply``).
        keys: ``[P]`` PRNG keys, one per run.
        pool_x, pool_y: the points every run is evaluated on (``[M, ...]``, ``[M]``), shared by
            all runs with ``shared_pool``; else per run (``[P, M, ...]``, ``[P, M]``).
        train_idx: ``[P, m]`` indices into the pool of each run's training set.
        cfg: the training configuration.
        chunk: runs per compiled call (default: all, rounded to the device count).
        devices: devices to shard the population axis over (default: all visible).
    Returns:
        ``[P, M]`` predicted classes (int32); -1 where a model's logits are not finite.
    """
    train_idx = np.asarray(train_idx)
    P, m = train_idx.shape
    devices = list(devices or jax.devices())
    nd = len(devices)
    chunk = int(chunk or P)
    chunk = max(nd, -(-chunk // nd) * nd)                       # a multiple of the device count
    mesh = Mesh(np.array(devices), ("pop",))
    pop = NamedSharding(mesh, PartitionSpec("pop"))
    rep = NamedSharding(mesh, PartitionSpec())
    px = jax.device_put(jnp.asarray(pool_x), rep) if shared_pool else None
    py = jax.device_put(jnp.asarray(pool_y), rep) if shared_pool else None
    outs = []
    with tqdm(total=P, desc="runs", disable=not progress, leave=False) as bar:
        for start in range(0, P, chunk):
            stop = min(P, start + chunk)
            sel = np.arange(start, start + chunk).clip(max=stop - 1)      # pad with the last run
            k = jax.device_put(keys[sel], pop)
            idx = jax.device_put(jnp.asarray(train_idx[sel]), pop)
            if not shared_pool:
                px = jax.device_put(jnp.asarray(pool_x[sel]), pop)
                py = jax.device_put(jnp.asarray(pool_y[sel]), pop)
            preds = _population(k, px, py, idx, net=net, cfg=cfg, shared_pool=shared_pool)
            outs.append(np.asarray(preds)[: stop - start])
            bar.update(stop - start)
    return np.concatenate(outs).astype(np.int32)
