"""Stochastic neural networks: factorised Gaussian (or Laplace) posteriors and priors.

A posterior is a pytree of means and a pytree of softplus-scales over all weights of a
:class:`genbounds.estimators.nets.Net`; weights are sampled by the reparameterisation trick with
explicit PRNG keys. The prior remembers which training examples built it
(``data_indices``), so that :mod:`genbounds.estimators.snn.certification` can evaluate the bound
on the remaining examples only: the split is enforced by the code, not the caller.

KL(Q||P) is :func:`genbounds.bounds.kl_diag_gaussian` / :func:`genbounds.bounds.kl_diag_laplace`
(tested equal to ``numpyro.distributions.kl_divergence``): on JAX arrays inside training
objectives, on float64 NumPy copies for certificates. :func:`distributions` returns the numpyro
distributions for users who want them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ...bounds import kl_diag_gaussian, kl_diag_laplace, to_float64

__all__ = [
    "FAMILIES",
    "Posterior",
    "Prior",
    "init_posterior",
    "posterior_scale",
    "sample_params",
    "kl_divergence",
    "kl_float64",
    "distributions",
]

Params = Any
FAMILIES = ("gaussian", "laplace")


class Posterior(NamedTuple):
    """Factorised posterior: ``mean`` and ``rho`` pytrees, scale = softplus(rho)."""

    mean: Params
    rho: Params


@dataclass(frozen=True)
class Prior:
    """A prior fixed before the bound set is looked at.

    Attributes:
        mean: pytree of prior means (the random initialisation, or a net trained on
            ``data_indices``).
        scale: isotropic prior scale (std for Gaussian, b for Laplace).
        family: "gaussian" or "laplace".
        data_indices: indices of the training set used to build the prior (empty for a
            data-independent prior); these examples are excluded from the bound set.
        details: how it was built (seed, epochs, ...), copied into certificates.
    """

    mean: Params
    scale: float
    family: str = "gaussian"
    data_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"argument 'family' must be one of {FAMILIES}, got {self.family!r}")
        if not (self.scale > 0):
            raise ValueError(f"argument 'scale' must be > 0, got {self.scale!r}")
        idx = np.asarray(self.data_indices, dtype=np.int64)
        if idx.ndim != 1 or len(np.unique(idx)) != len(idx):
            raise ValueError("argument 'data_indices' must be a 1-d array of distinct indices")
        object.__setattr__(self, "data_indices", idx)

    @property
    def kind(self) -> str:
        """"data" when training examples built the prior (``data_indices`` non-empty), else "init"."""
        return "data" if self.data_indices.size else "init"

    @property
    def n_data(self) -> int:
        return int(self.data_indices.shape[0])


def _softplus_inv(x):
    return x + jnp.log(-jnp.expm1(-x))


def init_posterior(mean: Params, scale: float | Params) -> Posterior:
    """Posterior centred at ``mean`` with scale ``scale`` (a number or a pytree)."""
    if not isinstance(scale, (int, float)):
        rho = jax.tree_util.tree_map(lambda s: _softplus_inv(jnp.asarray(s, jnp.float32)), scale)
    else:
        rho0 = _softplus_inv(jnp.float32(scale))
        rho = jax.tree_util.tree_map(lambda m: jnp.full(jnp.shape(m), rho0), mean)
    return Posterior(jax.tree_util.tree_map(jnp.asarray, mean), rho)


def posterior_scale(post: Posterior) -> Params:
    return jax.tree_util.tree_map(jax.nn.softplus, post.rho)


def _noise(key, shape, dtype, family):
    if family == "gaussian":
        return jax.random.normal(key, shape, dtype)
    return jax.random.laplace(key, shape, dtype)


def sample_params(key: jax.Array, post: Posterior, family: str = "gaussian") -> Params:
    """One weight draw W = mean + scale * eps (reparameterisation trick)."""
    leaves, treedef = jax.tree_util.tree_flatten(post.mean)
    keys = jax.random.split(key, len(leaves))
    scales = jax.tree_util.tree_leaves(posterior_scale(post))
    return jax.tree_util.tree_unflatten(
        treedef, [m + s * _noise(k, m.shape, m.dtype, family) for k, m, s in zip(keys, leaves, scales)])


def kl_divergence(post: Posterior, prior_mean: Params, prior_scale: Any, family: str = "gaussian"):
    """KL(Q||P) summed over all weights, in the inputs' precision (for objectives)."""
    fn = kl_diag_gaussian if family == "gaussian" else kl_diag_laplace
    return fn(post.mean, posterior_scale(post), prior_mean, prior_scale)


def kl_float64(post: Posterior, prior: Prior, prior_scale: float | None = None) -> float:
    """KL(Q||P) in float64 on host copies of the parameters (for certificates)."""
    fn = kl_diag_gaussian if prior.family == "gaussian" else kl_diag_laplace
    scale = prior.scale if prior_scale is None else prior_scale
    return float(fn(to_float64(post.mean), to_float64(posterior_scale(post)), to_float64(prior.mean),
                    float(scale)))


def distributions(post: Posterior, family: str = "gaussian") -> Params:
    """The posterior as a pytree of numpyro distributions (Normal or Laplace)."""
    cls = dist.Normal if family == "gaussian" else dist.Laplace
    return jax.tree_util.tree_map(cls, post.mean, posterior_scale(post))
