"""Stochastic neural networks: posteriors and priors (factorised Gaussian or Laplace weights,
Bernoulli pruning masks; see :mod:`genbounds.estimators.snn.families`).

A posterior is a pytree of means and a pytree of softplus-scales over all weights of a
:class:`genbounds.estimators.nets.Net`; weights are sampled by the reparameterisation trick with
explicit PRNG keys. The prior remembers which training examples built it
(``data_indices``), so that :mod:`genbounds.estimators.snn.certification` can evaluate the bound
on the remaining examples only: the split is enforced by the code, not the caller.

KL(Q||P) is the family's closed form (:func:`genbounds.bounds.kl_diag_gaussian`,
:func:`genbounds.bounds.kl_diag_laplace`, :func:`genbounds.bounds.kl_bernoulli_masks`; tested
equal to ``numpyro.distributions.kl_divergence``): on JAX arrays inside training objectives, on
float64 NumPy copies for certificates. :func:`distributions` returns the numpyro distributions
for users who want them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jax
import numpy as np

from .base import Params, Posterior, init_posterior, posterior_scale
from .families import FAMILIES, GAUSSIAN, Family, get_family

__all__ = [
    "FAMILIES",
    "Posterior",
    "Prior",
    "PriorKind",
    "init_posterior",
    "posterior_scale",
    "sample_params",
    "kl_divergence",
    "kl_float64",
    "distributions",
]


class PriorKind(StrEnum):
    """Where a prior comes from: trained on held-out training examples (``data``), the random
    initialisation (``init``), or drawn by a differentially private mechanism on all of them (``dp``)."""

    DATA = "data"
    INIT = "init"
    DP = "dp"


@dataclass(frozen=True)
class Prior:
    """A prior fixed before the bound set is looked at.

    Attributes:
        mean: pytree of prior means (the random initialisation, or a net trained on
            ``data_indices``).
        scale: the family's second prior parameter (``family.scale_means``): the isotropic std
            (Gaussian, matrix-normal) or scale b (Laplace), one number > 0; for masks the Bernoulli
            keep probabilities, a pytree like ``mean`` or one number in [0, 1].
        family: the posterior :class:`~genbounds.estimators.snn.families.Family` (a name from
            :data:`FAMILIES` is looked up).
        data_indices: indices of the training set used to build the prior (empty for a
            data-independent prior); these examples are excluded from the bound set.
        details: how it was built (seed, epochs, ...), copied into certificates.
        dp: for a prior drawn by a differentially private mechanism on the *whole* training set
            (Dziugaite & Roy 2018; :mod:`genbounds.estimators.snn.dp_prior`): ``{"epsilon": ...,
            "mechanism": ..., "privacy": "exact" | "approximate ..."}``. Nothing is held out; the
            certificate pays :func:`genbounds.bounds.dp_prior_kl_adjustment` instead. None otherwise.
    """

    mean: Params
    scale: Any
    family: Family = GAUSSIAN
    data_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    details: dict = field(default_factory=dict)
    dp: dict | None = None

    def __post_init__(self) -> None:
        family = get_family(self.family)
        object.__setattr__(self, "family", family)
        family.check_prior_scale(self.scale, self.mean)
        raw = np.asarray(self.data_indices)
        if raw.size and (raw.dtype.kind not in "iu" or raw.min() < 0):
            raise ValueError("argument 'data_indices' must hold integer indices >= 0 into the training set, got "
                             f"{raw.dtype} values (a cast would truncate or wrap them, and the bound set would keep "
                             "examples the prior saw)")
        idx = raw.astype(np.int64)
        if idx.ndim != 1 or len(np.unique(idx)) != len(idx):
            raise ValueError("argument 'data_indices' must be a 1-d array of distinct indices")
        object.__setattr__(self, "data_indices", idx)
        if not isinstance(self.details, Mapping):
            raise ValueError(f"argument 'details' must be a mapping of names to values, got "
                             f"{type(self.details).__name__}")
        for key, why in (("kind", "data_indices and dp decide it"), ("family", "argument 'family' gives it")):
            if key in self.details:
                raise ValueError(f"argument 'details' must not hold {key!r}: the prior's {key} is derived ({why}), "
                                 "and certificates record the derived one")
        if self.dp is not None:
            if idx.size:
                raise ValueError("arguments 'dp' and 'data_indices': a differentially private prior is paid for "
                                 "with epsilon on the whole sample; it cannot also hold out examples (choose one "
                                 "route per certificate)")
            if not family.private_mean:
                raise ValueError(f"argument 'dp': a private prior mean needs a location family, not "
                                 f"{family.name.value!r}")
            eps = self.dp.get("epsilon")
            if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
                raise ValueError(f"argument 'dp' must hold a finite 'epsilon' >= 0, got {eps!r}")

    @property
    def kind(self) -> PriorKind:
        """``data`` when training examples built the prior (``data_indices`` non-empty), ``dp`` for a
        differentially private prior, else ``init``."""
        return PriorKind.DP if self.dp is not None else PriorKind.DATA if self.data_indices.size else PriorKind.INIT

    @property
    def n_data(self) -> int:
        return int(self.data_indices.shape[0])


def sample_params(key: jax.Array, post: Posterior, family: Family | str = GAUSSIAN) -> Params:
    """One draw of every weight from the posterior (Gaussian/Laplace: mean + scale * eps by the
    reparameterisation trick; mask: the weights times Bernoulli(q) bits)."""
    return get_family(family).sample(key, post)


def kl_divergence(post: Posterior, prior_mean: Params, prior_scale: Any, family: Family | str = GAUSSIAN):
    """KL(Q||P) summed over all weights, in the inputs' precision (for objectives)."""
    return get_family(family).kl(post, prior_mean, prior_scale)


def kl_float64(post: Posterior, prior: Prior, prior_scale: float | None = None) -> float:
    """KL(Q||P) in float64 on host copies of the parameters (for certificates)."""
    scale = prior.scale if prior_scale is None else prior_scale
    return prior.family.kl_float64(post, prior.mean, scale)


def distributions(post: Posterior, family: Family | str = GAUSSIAN) -> Params:
    """The posterior as a pytree of numpyro distributions: Normal or Laplace weights; for masks,
    the Bernoulli keep bits (multiply by ``post.mean``); for matrix-normal posteriors a
    ``MatrixNormal`` per dense matrix (row factor A, column factor B) and Normal elsewhere."""
    return get_family(family).distributions(post)
