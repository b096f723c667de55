r"""KL divergences between factorised weight distributions, summed over parameter pytrees.

Posterior and prior are given as pytrees of means and scales with the same structure
(a scale may also be a single number shared by every weight, as for an isotropic prior).
NumPy leaves are summed in float64 (the certificate path: pass :func:`to_float64` of the
trained parameters); JAX leaves are summed in their own dtype inside training objectives.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._array import namespace

__all__ = ["kl_diag_gaussian", "kl_diag_laplace", "to_float64"]

PyTree = Any


def to_float64(tree: PyTree) -> PyTree:
    """Copy a pytree of arrays to host NumPy float64 arrays (for exact certificates)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x), dtype=np.float64), tree)


def _aligned_leaves(name: str, tree: PyTree, like: PyTree) -> list:
    """Leaves of ``tree`` matched to those of ``like``; a scalar is broadcast to every leaf."""
    like_def = jax.tree_util.tree_structure(like)
    leaves = jax.tree_util.tree_leaves(tree)
    if jax.tree_util.tree_structure(tree) == like_def:
        out = leaves
    elif len(leaves) == 1 and np.ndim(leaves[0]) == 0:
        out = leaves * like_def.num_leaves
    else:
        raise ValueError(
            f"argument {name!r} must have the posterior mean's tree structure or be a scalar"
        )
    for leaf, ref in zip(out, jax.tree_util.tree_leaves(like)):
        if np.ndim(leaf) and np.shape(leaf) != np.shape(ref):
            raise ValueError(f"argument {name!r} has a leaf of shape {np.shape(leaf)}, "
                             f"expected {np.shape(ref)}")
    return out


def _tree_kl(elementwise, mu_q, scale_q, mu_p, scale_p):
    leaves_mq = jax.tree_util.tree_leaves(mu_q)
    groups = [
        leaves_mq,
        _aligned_leaves("scale_q", scale_q, mu_q),
        _aligned_leaves("mu_p", mu_p, mu_q),
        _aligned_leaves("scale_p", scale_p, mu_q),
    ]
    xp = namespace(*[leaf for g in groups for leaf in g])
    total = 0.0
    for mq, sq, mp, sp in zip(*groups):
        if xp is np:
            args = [np.asarray(a, dtype=np.float64) for a in (mq, sq, mp, sp)]
            if any(np.any(a <= 0) for a in args[1::2]):
                raise ValueError("scales must be > 0")
            total += float(np.sum(np.broadcast_to(elementwise(np, *args), np.shape(mq))))
        else:
            total = total + jnp.sum(jnp.broadcast_to(elementwise(jnp, mq, sq, mp, sp), jnp.shape(mq)))
    if xp is np:
        if not np.isfinite(total):
            raise ValueError("KL is not finite: check the means and scales for NaN or inf")
        return np.float64(total)
    return total


def _gauss(xp, mq, sq, mp, sp):
    r = sq / sp
    return 0.5 * (r - 1.0) * (r + 1.0) - xp.log(r) + 0.5 * ((mq - mp) / sp) ** 2


def _laplace(xp, mq, bq, mp, bp):
    a = xp.abs(mq - mp)
    return xp.log(bp / bq) + a / bp + (bq / bp) * xp.exp(-a / bq) - 1.0


def kl_diag_gaussian(mu_q: PyTree, sigma_q: PyTree, mu_p: PyTree, sigma_p: PyTree) -> Any:
    r"""KL(Q||P) for factorised Gaussians, summed over all weights.

    .. math::  \sum_i \ln\frac{\sigma_{p,i}}{\sigma_{q,i}}
               + \frac{\sigma_{q,i}^2 + (\mu_{q,i} - \mu_{p,i})^2}{2\sigma_{p,i}^2} - \frac12.

    Reference: e.g. Dziugaite & Roy (2017), eq. (5); Pérez-Ortiz et al. (2021), Section 5.
    """
    return _tree_kl(_gauss, mu_q, sigma_q, mu_p, sigma_p)


def kl_diag_laplace(mu_q: PyTree, b_q: PyTree, mu_p: PyTree, b_p: PyTree) -> Any:
    r"""KL(Q||P) for factorised Laplace distributions (PBB's Laplace option), summed.

    .. math::  \sum_i \ln\frac{b_{p,i}}{b_{q,i}} + \frac{|\mu_{q,i}-\mu_{p,i}|}{b_{p,i}}
               + \frac{b_{q,i}}{b_{p,i}} e^{-|\mu_{q,i}-\mu_{p,i}|/b_{q,i}} - 1.

    Reference: Pérez-Ortiz et al. (2021), Appendix (Laplace posteriors).
    """
    return _tree_kl(_laplace, mu_q, b_q, mu_p, b_p)
