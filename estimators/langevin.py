r"""Noisy iterative training: the (stochastic-gradient) Langevin step, its schedules, trajectories.

:func:`langevin_step` is the step builder for Langevin dynamics (full batch) and SGLD
(minibatches):

.. math:: W_t = W_{t-1} - \eta_t \nabla \hat L_{B_t}(W_{t-1}) + \sqrt{2\eta_t/\beta_t}\,\varepsilon_t,
          \qquad \varepsilon_t \sim N(0, I),

so the injected noise has per-coordinate variance :math:`2\eta_t/\beta_t`
(:func:`genbounds.bounds.langevin_noise_variance`), the variance the bounds of
:mod:`genbounds.bounds.iterative` assume (one public reimplementation injected noise about beta
times too small; a test measures the variance from the trajectory). The step evaluates an optional
``statistics`` function at :math:`W_{t-1}`, with the noise it is about to add, so everything a
bound needs (incoherences, two-sample gradient differences, the test statistic) is recorded along
the trajectory without storing it. Schedules are functions of the step index, fixed before the
run: :func:`constant_schedule` and :func:`staircase_schedule` (Haghifam et al. 2020's family).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .steps import Step

__all__ = ["LangevinState", "LangevinMetrics", "Schedule", "constant_schedule", "staircase_schedule",
           "langevin_step", "run_langevin"]

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


def langevin_step(loss: Callable[[Any, jax.Array, jax.Array], jax.Array], schedule: Schedule,
                  statistics: Callable[..., Any] | None = None) -> Step:
    """A Langevin / SGLD step on ``loss(params, xb, yb) -> [b]`` per-example losses (the objective
    is their mean).

    ``init(params) -> LangevinState``; ``step(state, key, xb, yb) -> (state, LangevinMetrics)``.
    ``statistics(params, noise, xb, yb, eta, beta)`` is evaluated at W_{t-1} with the noise pytree
    about to be added (``noise`` = W_t - W_{t-1} + eta_t G_t exactly)."""

    def objective(params, xb, yb):
        return jnp.mean(loss(params, xb, yb))

    def init(params: Any) -> LangevinState:
        return LangevinState(jax.tree_util.tree_map(jnp.asarray, params), jnp.zeros((), jnp.int32))

    def step(state: LangevinState, key: jax.Array, xb: jax.Array, yb: jax.Array):
        eta, beta = schedule(state.t)
        value, grads = jax.value_and_grad(objective)(state.params, xb, yb)
        leaves, treedef = jax.tree_util.tree_flatten(state.params)
        keys = jax.random.split(key, len(leaves))
        scale = jnp.sqrt(2.0 * eta / beta)
        noise = jax.tree_util.tree_unflatten(
            treedef, [scale.astype(p.dtype) * jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)])
        stats = None if statistics is None else statistics(state.params, noise, xb, yb, eta, beta)
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
