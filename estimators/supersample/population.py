"""Populations of models trained as one program (the runs of a supersample experiment).

:func:`train_population` trains many small models at once: one training run is a pure function
(init, epochs of :func:`genbounds.estimators.steps.supervised_step` by
:func:`genbounds.estimators.steps.scan_epoch`, predictions on every point of its pool) that is
``vmap``-ed over runs, compiled once, processed in chunks that fit memory (:func:`plan_population`
reads XLA's memory analysis of the compiled program and the devices' free memory), and sharded
over all devices along one "pop" mesh axis with ``jax.sharding``, across processes too after
``jax.distributed.initialize``. Each run has its own PRNG key (initialisation and minibatch
order).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..devices import free_memory, global_array, population_mesh, population_shardings, to_host
from ..nets import Net, predict
from ..progress import Progress
from ..steps import scan_epoch, supervised_step

__all__ = ["TrainConfig", "Plan", "map_batch_for", "device_bytes", "plan_population", "train_population"]


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
    #: the same compiled program. CNNs on CPU compute with the matmul convolution
    #: (:func:`genbounds.estimators.nets.conv_for_backend`); on XLA's
    #: CPU backend they also run fastest with k = 1 (30 CNNs at n = 75: 13 model-steps/s with
    #: k = 1, 9 with vmap, 7.7 for a Python loop over a jitted step), see :func:`map_batch_for`.
    map_batch: int = 0
    #: 0: each trained run predicts the whole pool at once. k > 0: in batches of k points (a
    #: ``lax.map``), which bounds the evaluation's memory; :func:`train_population` sets it when
    #: the whole pool does not fit.
    eval_batch: int = 0


def map_batch_for(arch: str) -> int:
    """``TrainConfig.map_batch`` for an architecture on the default backend (see there)."""
    return 1 if arch == "cnn" and jax.default_backend() == "cpu" else 0


def _predictions(net: Net, cfg: TrainConfig, params, pool_x):
    """Predicted classes ``[M]`` on ``pool_x: [M, ...]``, at once or in batches of ``eval_batch``."""
    n = pool_x.shape[0]
    if cfg.eval_batch <= 0 or cfg.eval_batch >= n:
        return predict(net.apply(params, pool_x))
    eb = cfg.eval_batch
    nb = -(-n // eb)
    padded = jnp.concatenate([pool_x, jnp.zeros((nb * eb - n, *pool_x.shape[1:]), pool_x.dtype)])
    preds = jax.lax.map(lambda xb: predict(net.apply(params, xb)), padded.reshape(nb, eb, *pool_x.shape[1:]))
    return preds.reshape(-1)[:n]


def _make_run(net: Net, cfg: TrainConfig, m: int):
    train = supervised_step(net, cfg.optimizer)

    def run(key, pool_x, pool_y, train_idx):
        k_init, k_data = jax.random.split(key)
        state = train.init(net.init(k_init))
        xt, yt = pool_x[train_idx], pool_y[train_idx]

        def epoch(state, k):
            return scan_epoch(train.step, state, k, xt, yt, m=m, batch_size=cfg.batch_size)[0], None

        state, _ = jax.lax.scan(epoch, state, jax.random.split(k_data, cfg.epochs))
        return _predictions(net, cfg, state.params, pool_x)

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


@functools.lru_cache(maxsize=64)
def _compiled(net: Net, cfg: TrainConfig, shared_pool: bool, *avals: jax.ShapeDtypeStruct):
    """The population program compiled for these argument shapes and shardings (kept, so the
    memory plan and the runs share one compilation)."""
    return _population.lower(*avals, net=net, cfg=cfg, shared_pool=shared_pool).compile()


def device_bytes(compiled) -> int:
    """Memory one device needs to run a compiled program: arguments + outputs + temporaries, from
    XLA's static analysis of the program's shapes (no trial run)."""
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)


class Plan(NamedTuple):
    """How a population runs: ``chunk`` runs per compiled call, the config (possibly with an
    ``eval_batch``), the compiled program, and the bytes per device it needs and may use."""

    chunk: int
    cfg: TrainConfig
    compiled: Any
    bytes_needed: int
    budget: int


def plan_population(net: Net, cfg: TrainConfig, keys: jax.Array, pool_x, pool_y, train_idx: np.ndarray, *,
                    devices: list, shared_pool: bool = True, chunk: int | None = None,
                    budget: int | None = None) -> Plan:
    """Choose runs per compiled call and the evaluation batch from the devices' free memory.

    The program for all P runs is compiled and XLA's memory analysis (:func:`device_bytes`) is
    compared with ``budget`` (default: 80% of the smallest free memory among this process's
    devices, :func:`genbounds.estimators.devices.free_memory`; half of it on CPU, where the host
    shares it). While it does not fit: evaluate the pool in batches (1024 points, or half the
    pool), then run fewer runs per call (vmapped runs need memory in proportion), then halve the
    evaluation batch down to 64; past that it refuses with the sizes. A given ``chunk`` is used
    as it is (``--chunk`` overrides the plan). Only a plan that needs more memory than there is
    triggers a new compilation: the program that fits is the one that runs.
    """
    P = train_idx.shape[0]
    nd = len(devices)
    pop, rep = population_shardings(population_mesh(devices))
    if budget is None:
        local = [d for d in devices if d.process_index == jax.process_index()]
        share = 0.5 if local[0].platform == "cpu" else 0.8
        budget = int(share * min(free_memory(d) for d in local))

    def avals(c: int):
        def sds(shape, dtype, sharding):
            return jax.ShapeDtypeStruct(tuple(shape), dtype, sharding=sharding)
        px = sds(pool_x.shape, pool_x.dtype, rep) if shared_pool else sds((c, *pool_x.shape[1:]), pool_x.dtype, pop)
        py = sds(pool_y.shape, pool_y.dtype, rep) if shared_pool else sds((c, *pool_y.shape[1:]), pool_y.dtype, pop)
        return (sds((c, *keys.shape[1:]), keys.dtype, pop), px, py, sds((c, train_idx.shape[1]), np.int32, pop))

    def fit(c: int) -> int:
        return max(nd, -(-c // nd) * nd)                       # a multiple of the device count

    c = fit(chunk or P)
    fixed = chunk is not None
    n_pool = pool_x.shape[1] if not shared_pool else pool_x.shape[0]
    while True:
        compiled = _compiled(net, cfg, shared_pool, *avals(c))
        need = device_bytes(compiled)
        if need <= budget:
            return Plan(c, cfg, compiled, need, budget)
        if cfg.eval_batch == 0 and n_pool > 64:
            cfg = cfg._replace(eval_batch=min(1024, n_pool // 2))
        elif not fixed and cfg.map_batch == 0 and c > nd:
            c = max(nd, (int(c * budget / need * 0.9) // nd) * nd)
        elif 64 < cfg.eval_batch:
            cfg = cfg._replace(eval_batch=cfg.eval_batch // 2)
        else:
            hint = "a smaller --chunk, " if fixed and c > nd else ""
            raise ValueError(
                f"{c // nd} run(s) of {net.name} per device need {_size(need)} (XLA's memory analysis), more than "
                f"the {_size(budget)} available: use {hint}a smaller --batch, a smaller model or fewer pool points")


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def train_population(
    net: Net, keys: jax.Array, pool_x: np.ndarray, pool_y: np.ndarray, train_idx: np.ndarray,
    cfg: TrainConfig, *, chunk: int | None = None, devices: list | None = None, progress: bool = True,
    shared_pool: bool = True, budget: int | None = None,
) -> np.ndarray:
    """Train one model per row of ``train_idx`` and return its predicted classes on the pool.

    Args:
        net: architecture (``init``, ``apply``).
        keys: ``[P]`` PRNG keys, one per run.
        pool_x, pool_y: the points every run is evaluated on, ``pool_x: [M, ...]``, ``pool_y: [M]``
            shared by all runs with ``shared_pool``; else per run, ``[P, M, ...]`` and ``[P, M]``.
        train_idx: ``[P, m]`` indices into the pool of each run's training set.
        cfg: the training configuration.
        chunk: runs per compiled call; default: planned from the devices' free memory
            (:func:`plan_population`), all runs when they fit.
        devices: devices to shard the population axis over (default: every device of every
            process: after ``jax.distributed.initialize`` the runs spread over all hosts, and every
            process gets all predictions back).
        budget: bytes per device the plan may use (default: from the free memory).
    Returns:
        ``[P, M]`` predicted classes (int32); -1 where a model's logits are not finite.
    """
    train_idx = np.asarray(train_idx, dtype=np.int32)
    P = train_idx.shape[0]
    devices = list(devices or jax.devices())
    if jax.dtypes.issubdtype(getattr(keys, "dtype", np.uint32), jax.dtypes.prng_key):
        keys = jax.random.key_data(keys)                # typed keys (jax.random.key) as their raw data
    keys = np.asarray(keys)
    pool_x, pool_y = np.asarray(pool_x), np.asarray(pool_y)
    plan = plan_population(net, cfg, keys, pool_x, pool_y, train_idx, devices=devices, shared_pool=shared_pool,
                           chunk=chunk, budget=budget)
    pop, rep = population_shardings(population_mesh(devices))
    px = global_array(pool_x, rep) if shared_pool else None
    py = global_array(pool_y, rep) if shared_pool else None
    outs = []
    with Progress(P, "runs", unit="run", enabled=progress) as bar:
        for start in range(0, P, plan.chunk):
            stop = min(P, start + plan.chunk)
            sel = np.arange(start, start + plan.chunk).clip(max=stop - 1)      # pad with the last run
            if not shared_pool:
                px, py = global_array(pool_x[sel], pop), global_array(pool_y[sel], pop)
            preds = plan.compiled(global_array(keys[sel], pop), px, py, global_array(train_idx[sel], pop))
            outs.append(to_host(preds)[: stop - start])
            bar.update(stop - start)
    return np.concatenate(outs).astype(np.int32)
