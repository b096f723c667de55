"""Populations of models trained as one program (the runs of a supersample experiment).

:func:`train_population` trains many small models at once: one training run is a pure function
(init, epochs of :func:`genbounds.estimators.steps.supervised_step` over
:func:`genbounds.estimators.steps.epoch_batches` minibatches, predictions on every point of its
pool) that is ``vmap``-ed over runs, compiled once, processed in chunks that fit memory, and
sharded over all visible devices along one "pop" mesh axis with ``jax.sharding``. Each run has
its own PRNG key (initialisation and minibatch order).
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

from ..nets import Net, predict
from ..steps import epoch_batches, supervised_step

__all__ = ["TrainConfig", "map_batch_for", "train_population"]


class TrainConfig(NamedTuple):
    """How each model of a population is trained: ``epochs`` passes of minibatches of
    ``batch_size`` with an optax ``optimizer`` (default Adam, learning rate 1e-3).

    The config is a static argument of the compiled population: build it once per experiment
    and reuse it, so that every chunk hits the same compiled program.
    """

    epochs: int = 200
    batch_size: int = 128
    optimizer: optax.GradientTransformation = optax.adam(1e-3)
    #: 0: vmap over all runs of a chunk. k > 0: ``jax.lax.map`` over runs in groups of k inside
    #: the same compiled program. CNN populations use ``nets.cnn(..., conv="matmul")`` (vmapped,
    #: XLA convolutions become grouped convolutions, ~60x slower than a loop on CPU); on XLA's
    #: CPU backend they also run fastest with k = 1 (30 CNNs at n = 75: 13 model-steps/s with
    #: k = 1, 9 with vmap, 7.7 for a Python loop over a jitted step), see :func:`map_batch_for`.
    map_batch: int = 0


def map_batch_for(arch: str) -> int:
    """``TrainConfig.map_batch`` for an architecture on the default backend (see there)."""
    return 1 if arch == "cnn" and jax.default_backend() == "cpu" else 0


def _make_run(net: Net, cfg: TrainConfig, m: int):
    train = supervised_step(net, cfg.optimizer)

    def run(key, pool_x, pool_y, train_idx):
        k_init, k_data = jax.random.split(key)
        state = train.init(net.init(k_init))
        xt, yt = pool_x[train_idx], pool_y[train_idx]

        def epoch(state, k):
            def one(s, idx):
                return train.step(s, xt[idx], yt[idx])[0], None
            return jax.lax.scan(one, state, epoch_batches(k, m, cfg.batch_size))[0], None

        state, _ = jax.lax.scan(epoch, state, jax.random.split(k_data, cfg.epochs))
        return predict(net.apply(state.params, pool_x))

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
        pool_x, pool_y: the points every run is evaluated on, ``pool_x: [M, ...]``, ``pool_y: [M]``
            shared by all runs with ``shared_pool``; else per run, ``[P, M, ...]`` and ``[P, M]``.
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
