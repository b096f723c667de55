r"""Training steps shared by the three pipelines, and the one rule for minibatches.

A step builder returns a :class:`Step`: ``init(params) -> state`` and a pure
``step(state, ...) -> (state, metrics)`` that callers ``jit``, ``vmap`` or ``lax.scan``. There is
one builder per model kind:

* :func:`supervised_step`: a deterministic network trained on softmax cross-entropy. It trains a
  prior's mean or Dziugaite & Roy's first (SGD) stage (:func:`genbounds.estimators.snn.train.
  train_deterministic`), and every member of a CMI population
  (:func:`genbounds.estimators.supersample.train_population`);
* :func:`genbounds.estimators.snn.train.posterior_step`: a stochastic network's posterior trained
  on a PAC-Bayes objective (training loops, ``certify_network`` and the benchmark);
* :func:`langevin_step`: Langevin dynamics (full batch) and SGLD (minibatches),

  .. math:: W_t = W_{t-1} - \eta_t \nabla \hat L_{B_t}(W_{t-1}) + \sqrt{2\eta_t/\beta_t}\,\varepsilon_t,
            \qquad \varepsilon_t \sim N(0, I),

  so the injected noise has per-coordinate variance :math:`2\eta_t/\beta_t`
  (:func:`genbounds.bounds.langevin_noise_variance`), the variance the bounds of
  :mod:`genbounds.bounds.iterative` assume (a test measures it from the trajectory). The step
  evaluates an optional ``statistics`` function at :math:`W_{t-1}`, with the noise it is about to
  add, so everything a bound needs is recorded along the trajectory without storing it
  (:mod:`genbounds.estimators.iterative`). It draws a Gibbs-distributed DP prior
  (:mod:`genbounds.estimators.snn.dp_prior`) and every run of a Langevin population. Schedules
  are functions of the step index, fixed before the run: :func:`constant_schedule` and
  :func:`staircase_schedule` (Haghifam et al. 2020's family); :func:`run_langevin` runs
  full-batch steps as one ``lax.scan``.

Every trainer and benchmark draws its minibatches with :func:`epoch_batches`: each epoch is a
fresh permutation of all m examples cut into ceil(m / b) batches of b = min(batch, m), the last
one topped up from the start of the permutation. Every example is seen each epoch, and every
batch has the same static shape (one compilation). :func:`scan_epoch` runs one epoch of any step
as one ``lax.scan`` over device-resident data (the population trains each run with it;
:func:`compile_epoch` jits it, with donated state and an optional data-parallel batch sharding,
for the trainers): the host only acts between epochs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding

from .augment import Augment
from .nets import Net

__all__ = ["Step", "SupervisedState", "supervised_step", "owned", "steps_per_epoch", "epoch_batches", "scan_epoch",
           "compile_epoch", "Schedule", "constant_schedule", "staircase_schedule", "gaussian_noise", "LangevinState",
           "LangevinMetrics", "langevin_step", "run_langevin"]


class Step(NamedTuple):
    """A pure training step and the function that builds its initial state."""

    init: Callable[..., Any]
    step: Callable[..., tuple[Any, Any]]


class SupervisedState(NamedTuple):
    """Parameters of a deterministic network and its optimiser state."""

    params: Any
    opt_state: optax.OptState


def supervised_step(net: Net, optimizer: optax.GradientTransformation, dropout: float = 0.0,
                    augment: Augment | None = None) -> Step:
    """Softmax cross-entropy step of a deterministic network.

    ``init(params) -> SupervisedState``; ``step(state, key, xb, yb) -> (state, loss)`` with
    ``xb: [b, ...]``, ``yb: [b]``: one ``value_and_grad -> optimizer.update -> apply_updates``.
    With ``dropout`` > 0 the loss is computed with inverted dropout at that rate on every hidden
    activation (``net.apply_dropout``, masks from ``key``; PBB trains its priors so); the
    trained weights are used without dropout. ``augment`` (:mod:`genbounds.estimators.augment`),
    when given, transforms each minibatch first (its own key, split from ``key``).
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"argument 'dropout' must be in [0, 1), got {dropout!r}")
    if dropout > 0 and net.apply_dropout is None:
        raise ValueError(f"argument 'dropout': network {net.name!r} has no dropout (built-in nets only)")

    def init(params: Any) -> SupervisedState:
        params = owned(params)
        return SupervisedState(params, optimizer.init(params))

    def step(state: SupervisedState, key: jax.Array, xb: jax.Array, yb: jax.Array) -> tuple[SupervisedState, jax.Array]:
        if augment is not None:
            key, k_aug = jax.random.split(key)
            xb = augment(k_aug, xb)

        def loss(p):
            logits = net.apply_dropout(p, xb, key, dropout) if dropout > 0 else net.apply(p, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        value, grads = jax.value_and_grad(loss)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return SupervisedState(optax.apply_updates(state.params, updates), opt_state), value

    return Step(init, step)


def owned(tree: Any) -> Any:
    """Fresh buffers for every array of ``tree``. Initial states are built from them: the compiled
    epoch donates its state's buffers, and the caller's arrays (initial weights that may also be a
    prior's mean) must survive training. Under ``jit`` (populations) the copy is free."""
    return jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), tree)


def steps_per_epoch(m: int, batch_size: int) -> int:
    """Optimiser steps in one epoch of :func:`epoch_batches`: ceil(m / min(batch_size, m))."""
    return -(-int(m) // min(int(batch_size), int(m)))


def epoch_batches(key: jax.Array, m: int, batch_size: int) -> jax.Array:
    """Minibatch indices of one epoch, ``[ceil(m / b), b]`` with ``b = min(batch_size, m)``.

    A permutation of ``range(m)`` from ``key``, cut into batches; the last batch is topped up
    with the first indices of the same permutation, so every example appears each epoch. Works
    eagerly and inside ``jit`` / ``lax.scan`` (``m`` and ``batch_size`` static).
    """
    bs = min(int(batch_size), int(m))
    steps = steps_per_epoch(m, bs)
    perm = jax.random.permutation(key, m)
    return jnp.concatenate([perm, perm])[: steps * bs].reshape(steps, bs)


def scan_epoch(step: Callable, state: Any, epoch_key: jax.Array, x: jax.Array, y: jax.Array, *, m: int,
               batch_size: int, sharding: NamedSharding | None = None) -> tuple[Any, Any]:
    """One epoch of ``step`` as one ``lax.scan``: minibatches ``epoch_batches(epoch_key, m,
    batch_size)`` of ``x: [m, ...]``, ``y: [m]``; ``step(state, key, xb, yb)`` gets key
    ``fold_in(epoch_key, 10_000 + i)`` at step i. With
    ``sharding`` each minibatch is split over the devices of its mesh (data parallelism).
    Returns the final state and the steps' metrics stacked along a leading ``[steps]`` axis."""
    batches = epoch_batches(epoch_key, m, batch_size)

    def body(st, inp):
        i, idx = inp
        xb, yb = x[idx], y[idx]
        if sharding is not None:
            xb = jax.lax.with_sharding_constraint(xb, sharding)
            yb = jax.lax.with_sharding_constraint(yb, sharding)
        return step(st, jax.random.fold_in(epoch_key, 10_000 + i), xb, yb)

    return jax.lax.scan(body, state, (jnp.arange(batches.shape[0]), batches))


def compile_epoch(step: Callable, *, m: int, batch_size: int, sharding: NamedSharding | None = None) -> Callable:
    """:func:`scan_epoch` compiled: ``epoch(state, epoch_key, x, y) -> (state, metrics)``, with the
    state's buffers donated (updated in place on accelerators)."""
    return jax.jit(functools.partial(scan_epoch, step, m=m, batch_size=batch_size, sharding=sharding),
                   donate_argnums=0)


#: ``schedule(t) -> (eta_t, beta_t)`` for the step index t = 0, 1, ... (jit-able).
Schedule = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


class LangevinState(NamedTuple):
    """Parameters and the number of steps taken (the schedule's index)."""

    params: Any
    t: jax.Array


class LangevinMetrics(NamedTuple):
    """Per-step record: the mean training loss at W_{t-1}, the step's eta and beta, and the
    ``statistics`` evaluated at W_{t-1} (None without a statistics function)."""

    loss: jax.Array
    eta: jax.Array
    beta: jax.Array
    stats: Any


def constant_schedule(eta: float, beta: float) -> Schedule:
    """eta_t = eta, beta_t = beta."""
    return lambda t: (jnp.asarray(eta, jnp.float32), jnp.asarray(beta, jnp.float32))


def staircase_schedule(eta0: float, decay: float, every: int, v0: float, v_inf: float, rate: float,
                       every_v: int) -> Schedule:
    r"""Haghifam et al. (2020)'s schedule family (their public code): step size
    :math:`\eta_t = \eta_0 d^{\lfloor t/s\rfloor}`, noise variance
    :math:`v_t = v_\infty + (v_0 - v_\infty) e^{-r\lfloor t/s_v\rfloor}`, and inverse temperature
    :math:`\beta_t = 2\eta_t / v_t` (so the injected variance is v_t)."""
    def schedule(t):
        eta = eta0 * decay ** jnp.floor(t / every)
        v = v_inf + (v0 - v_inf) * jnp.exp(-rate * jnp.floor(t / every_v))
        return eta, 2.0 * eta / v
    return schedule


def gaussian_noise(key: jax.Array, tree: Any, scale: jax.Array) -> Any:
    """``scale`` times a standard normal draw shaped like ``tree`` (one key per leaf, in each
    leaf's dtype)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(scale).astype(p.dtype) * jax.random.normal(k, p.shape, p.dtype)
                  for k, p in zip(keys, leaves)])


def langevin_step(loss: Callable[[Any, jax.Array, jax.Array], jax.Array], schedule: Schedule,
                  statistics: Callable[..., Any] | None = None) -> Step:
    """A Langevin / SGLD step on ``loss(params, xb, yb) -> [b]`` per-example losses (the objective
    is their mean).

    ``init(params) -> LangevinState``; ``step(state, key, xb, yb) -> (state, LangevinMetrics)``.
    ``statistics(params, grads, noise, xb, yb, eta, beta)`` is evaluated at W_{t-1}, with the batch
    gradient G_t and the noise pytree about to be added (``noise`` = W_t - W_{t-1} + eta_t G_t
    exactly)."""

    def objective(params, xb, yb):
        return jnp.mean(loss(params, xb, yb))

    def init(params: Any) -> LangevinState:
        return LangevinState(jax.tree_util.tree_map(jnp.asarray, params), jnp.zeros((), jnp.int32))

    def step(state: LangevinState, key: jax.Array, xb: jax.Array, yb: jax.Array):
        eta, beta = schedule(state.t)
        value, grads = jax.value_and_grad(objective)(state.params, xb, yb)
        noise = gaussian_noise(key, state.params, jnp.sqrt(2.0 * eta / beta))
        stats = None if statistics is None else statistics(state.params, grads, noise, xb, yb, eta, beta)
        params = jax.tree_util.tree_map(lambda p, g, e: p - eta.astype(p.dtype) * g + e, state.params, grads, noise)
        return LangevinState(params, state.t + 1), LangevinMetrics(value, eta, beta, stats)

    return Step(init, step)


def run_langevin(step: Step, params: Any, key: jax.Array, x: jax.Array, y: jax.Array, steps: int):
    """``steps`` full-batch Langevin steps on ``x: [n, ...]``, ``y: [n]`` as one ``lax.scan``
    (jit-able, vmap-able over keys or data for populations). Returns the final state and the
    metrics stacked along ``[steps]``."""
    def body(state, k):
        return step.step(state, k, x, y)
    return jax.lax.scan(body, step.init(params), jax.random.split(key, steps))
