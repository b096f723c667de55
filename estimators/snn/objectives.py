"""Training objectives: differentiable PAC-Bayes bounds on a bounded surrogate loss.

The surrogate is :func:`genbounds.estimators.losses.bounded_cross_entropy` (re-exported here with
:func:`~genbounds.estimators.losses.zero_one`): the cross-entropy with the predicted probability
clamped at ``p_min`` and divided by ln(1/p_min), so it lies in [0, 1] and is itself certifiable.
Each objective is the corresponding bound of :mod:`bounds.pac_bayes` evaluated on JAX arrays:

* ``classic`` (= ``mcallester``): emp + sqrt(B/2)
* ``seeger``: kl^-1(emp, B), differentiated through the kl inverse's implicit JVP
* ``quad``: (sqrt(emp + B/2) + sqrt(B/2))^2
* ``lambda``: emp/(1 - l/2) + B/(l (1 - l/2)) with l = 2 sigmoid(theta) learned jointly
  (the bound holds for all l at once, Thiemann et al. 2017)
* ``catoni``: Catoni's bound with C = softplus(theta) learned jointly (a training
  objective only; certificates use the kl bound)

with B = (KL + ln(2 sqrt(n)/delta))/n and n the size of the *bound set*.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ... import bounds
from ..losses import bounded_cross_entropy, zero_one

__all__ = ["OBJECTIVES", "bounded_cross_entropy", "zero_one", "objective", "objective_extras"]

OBJECTIVES = ("classic", "seeger", "quad", "lambda", "catoni")


def objective_extras(name: str) -> dict:
    """Extra trainable scalars an objective needs (initial raw values)."""
    if name == "lambda":
        return {"lam": jnp.float32(0.0)}          # l = 2 sigmoid(0) = 1
    if name == "catoni":
        return {"C": jnp.float32(math.log(math.e - 1.0))}   # C = softplus(.) = 1
    return {}


def objective(name: str, emp: jax.Array, kl: jax.Array, n: int, delta: float, extras: dict) -> jax.Array:
    """The training objective ``name`` at surrogate empirical risk ``emp`` and ``kl``."""
    emp = jnp.clip(emp, 0.0, 1.0)
    kl = jnp.maximum(kl, 0.0)
    if name in ("classic", "mcallester"):
        return bounds.mcallester(emp, kl, n, delta)
    if name == "seeger":
        return bounds.seeger(emp, kl, n, delta)
    if name == "quad":
        return bounds.quad(emp, kl, n, delta)
    if name == "lambda":
        lam = jnp.clip(2.0 * jax.nn.sigmoid(extras["lam"]), 1e-3, 2.0 - 1e-3)
        return bounds.lambda_bound(emp, kl, n, delta, lam)
    if name == "catoni":
        C = jax.nn.softplus(extras["C"]) + 1e-3
        return bounds.catoni(emp, kl, n, delta, C)
    raise ValueError(f"argument 'objective' must be one of {OBJECTIVES}, got {name!r}")
