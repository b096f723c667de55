"""Training steps shared by both pipelines, and the one rule for minibatches.

A step builder returns a :class:`Step`: ``init(params) -> state`` and a pure
``step(state, ...) -> (state, metrics)`` that callers ``jit``, ``vmap`` or ``lax.scan``. There is
one builder per model kind:

* :func:`supervised_step`: a deterministic network trained on softmax cross-entropy. It trains a
  prior's mean or Dziugaite & Roy's first (SGD) stage (:func:`genbounds.estimators.snn.train.
  train_deterministic`), and every member of a CMI population
  (:func:`genbounds.estimators.supersample.train_population`);
* :func:`genbounds.estimators.snn.train.posterior_step`: a stochastic network's posterior trained
  on a PAC-Bayes objective (training loops, ``certify_network`` and the benchmark).

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
           "compile_epoch"]


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
