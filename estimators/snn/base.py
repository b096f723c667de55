"""What every posterior family shares: the :class:`Posterior` pytree pair and the softplus
scale map between ``rho`` and a scale.

:mod:`genbounds.estimators.snn.families` (what each family does with the pair) and
:mod:`genbounds.estimators.snn.posterior` (priors, KL, sampling by family name) both build on
this module, which imports neither.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Params", "Posterior", "init_posterior", "posterior_scale", "softplus_inv"]

#: A pytree of arrays (network parameters, or anything shaped like them).
Params = Any


class Posterior(NamedTuple):
    """A posterior: ``mean`` and ``rho`` pytrees whose meaning the family gives
    (:mod:`genbounds.estimators.snn.families`): Gaussian / Laplace scale = softplus(rho); mask
    keep probability = sigmoid(rho) over the fixed weights ``mean``; matrix-normal Cholesky
    factors from ``rho``'s squares."""

    mean: Params
    rho: Params


def softplus_inv(x):
    """The inverse of softplus, x + ln(1 - e^{-x}) (scales to ``rho``)."""
    return x + jnp.log(-jnp.expm1(-x))


def posterior_scale(post: Posterior) -> Params:
    """Per-weight scales softplus(rho) of a location-scale posterior (Gaussian std, Laplace b)."""
    return jax.tree_util.tree_map(jax.nn.softplus, post.rho)


def init_posterior(mean: Params, scale: float | Params) -> Posterior:
    """Posterior centred at ``mean`` with scale ``scale`` (a number or a pytree):
    rho = softplus^{-1}(scale), in float32."""
    if not isinstance(scale, (int, float)):
        rho = jax.tree_util.tree_map(lambda s: softplus_inv(jnp.asarray(s, jnp.float32)), scale)
    else:
        rho0 = softplus_inv(jnp.float32(scale))
        rho = jax.tree_util.tree_map(lambda m: jnp.full(jnp.shape(m), rho0), mean)
    return Posterior(jax.tree_util.tree_map(jnp.asarray, mean), rho)
