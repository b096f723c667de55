r"""KL divergences between factorised weight distributions, summed over parameter pytrees.

Posterior and prior are given as pytrees of means and scales with the same structure
(a scale may also be a single number shared by every weight, as for an isotropic prior).
NumPy leaves are summed in float64 (the certificate path: pass :func:`to_float64` of the
trained parameters); JAX leaves are summed in their own dtype inside training objectives.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular as jnp_solve_triangular
from scipy.linalg import solve_triangular as np_solve_triangular

from ._array import namespace
from .kl import kl_bernoulli

__all__ = ["kl_diag_gaussian", "kl_diag_laplace", "kl_bernoulli_masks", "kl_matrix_normal", "to_float64",
           "aligned_leaves"]

PyTree = Any


def to_float64(tree: PyTree) -> PyTree:
    """Copy a pytree of arrays to host NumPy float64 arrays (for exact certificates)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x), dtype=np.float64), tree)


def aligned_leaves(name: str, tree: PyTree, like: PyTree) -> list:
    """Leaves of ``tree`` matched to those of ``like``; a scalar is broadcast to every leaf (a prior
    scale or keep probability given as one number). Refuses other structures and leaf shapes,
    naming the argument ``name``."""
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
        aligned_leaves("scale_q", scale_q, mu_q),
        aligned_leaves("mu_p", mu_p, mu_q),
        aligned_leaves("scale_p", scale_p, mu_q),
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


def kl_bernoulli_masks(q: PyTree, p: PyTree) -> Any:
    r"""KL(Bern(q)||Bern(p)) for independent Bernoulli masks, summed over all weights.

    .. math::  \sum_i q_i \ln\frac{q_i}{p_i} + (1 - q_i) \ln\frac{1 - q_i}{1 - p_i}

    the binary kl of :func:`genbounds.bounds.kl_bernoulli` per weight (0 ln 0 = 0, so keep
    probabilities in {0, 1} are exact; a prior p_i in {0, 1} gives infinity unless q_i = p_i). A
    deterministic mask ``q`` in {0, 1} gives the point-mass KL -sum_i ln P(mask_i), the Occam
    term of a thresholded mask. ``p`` is a pytree like ``q`` or one number for every weight.
    Reference: Hayou, He & Dziugaite (2021), stochastic pruning masks with a Bernoulli prior
    (posterior and prior are product measures, so the KL is the sum).
    """
    leaves_q = jax.tree_util.tree_leaves(q)
    leaves_p = aligned_leaves("p", p, q)
    xp = namespace(*leaves_q, *leaves_p)
    if xp is np:
        total = math.fsum(float(np.sum(kl_bernoulli(np.asarray(a, np.float64), np.asarray(b, np.float64))))
                          for a, b in zip(leaves_q, leaves_p))
        if not np.isfinite(total):
            raise ValueError("KL is infinite: a prior keep probability in {0, 1} differs from the posterior's")
        return np.float64(total)
    return sum(jnp.sum(kl_bernoulli(a, b)) for a, b in zip(leaves_q, leaves_p))


def _check_factor(name: str, f: Any, k: int, mean_shape: tuple[int, int], *, scalar_ok: bool) -> None:
    """Refuse (``ValueError`` naming ``name``) anything but a Cholesky factor of a [k, k] covariance
    (or, where ``scalar_ok``, a number c meaning c I).

    The shape is checked on any input (a tracer's shape is static); lower-triangularity, a positive
    diagonal and finiteness on concrete values (NumPy, or JAX outside ``jit``/``grad``)."""
    shape = np.shape(f)
    if shape != (k, k) and not (scalar_ok and shape == ()):
        what = f"[{k}, {k}]" + (" or a positive number" if scalar_ok else "")
        raise ValueError(f"argument {name!r} must be {what} for a mean of shape {list(mean_shape)} "
                         f"(W = M + A E B^T: A is [rows, rows], B is [cols, cols]), got shape {list(shape)}")
    if isinstance(f, jax.core.Tracer):
        return
    v = np.asarray(f, np.float64)
    if np.any(np.triu(np.atleast_2d(v), 1) != 0):
        raise ValueError(f"argument {name!r} must be lower triangular (a Cholesky factor): it has nonzero "
                         f"entries above the diagonal; pass np.linalg.cholesky(F @ F.T) for a full factor F")
    if not np.all(np.diagonal(np.atleast_2d(v)) > 0) or not np.all(np.isfinite(v)):
        raise ValueError(f"argument {name!r} must have a positive diagonal and finite entries (a Cholesky factor)")


_EPS = float(np.finfo(np.float64).eps)


def kl_matrix_normal(m_q: Any, a_q: Any, b_q: Any, m_p: Any, a_p: Any, b_p: Any) -> Any:
    r"""KL(MN(M, A A^T, B B^T) || MN(M0, A0 A0^T, B0 B0^T)) for one ``[n, p]`` weight matrix.

    W ~ MN(M, U, V) means W = M + A E B^T with E i.i.d. N(0, 1) (column-major vec(W) ~
    N(vec M, V kron U)); ``a_q: [n, n]``, ``b_q: [p, p]`` are lower-triangular with a positive
    diagonal (Cholesky factors of U and V). The prior's factors ``a_p``, ``b_p`` are such matrices or
    positive numbers c (meaning c I); the isotropic prior N(M0, s^2 I) is ``a_p = s, b_p = 1``.

    .. math::  \tfrac12\Big[\|A_0^{-1}A\|_F^2\,\|B_0^{-1}B\|_F^2
               + \|A_0^{-1}(M - M_0)B_0^{-T}\|_F^2 - np
               + 2p\ln\frac{|A_0|}{|A|} + 2n\ln\frac{|B_0|}{|B|}\Big]

    (|A| = prod diag A, which holds for triangular factors only), which for the isotropic prior is
    1/2 [tr U tr V / s^2 + ||M - M0||_F^2 / s^2 - np + np ln s^2 - p ln|U| - n ln|V|].
    Reference: the Gaussian KL with covariance V kron U (e.g. Gupta & Nagar 2000, matrix variate
    normal); used for Kronecker-factored posteriors by Huang et al. (2020), "Stochastic neural
    network with Kronecker flow", AISTATS. The trace and log-determinant terms, each about np, are
    regrouped into nonnegative sums (x - 1 - ln x per diagonal entry, via log1p), so nothing
    cancels when Q is near P; NumPy inputs are evaluated in float64 (certificates) and rounded up
    by (2(n + p) + 64) ulps of the size of the terms summed.

    Refused, naming the argument: factor shapes other than the above (e.g. swapped), and on concrete
    input a factor with a nonzero entry above the diagonal (its trace and log-determinant terms
    would describe different distributions) or a diagonal entry <= 0. Traced input (inside
    ``jit``/``grad``) is checked for shapes only: the training family builds its factors lower
    triangular (``jnp.tril``, :func:`genbounds.estimators.snn.matrix_normal_factors`), and the
    certificate recomputes the KL from concrete float64 factors, where every check runs.
    """
    xp = namespace(m_q, a_q, b_q, m_p, a_p, b_p)
    if np.ndim(m_q) != 2:
        raise ValueError(f"argument 'm_q' must be an [n, p] matrix, got shape {np.shape(m_q)}")
    n, p = np.shape(m_q)
    if np.shape(m_p) != (n, p):
        raise ValueError(f"argument 'm_p' must have the posterior mean's shape {(n, p)}, got {np.shape(m_p)}")
    for name, f, k in (("a_q", a_q, n), ("b_q", b_q, p), ("a_p", a_p, n), ("b_p", b_p, p)):
        _check_factor(name, f, k, (n, p), scalar_ok=name.endswith("_p"))
    if xp is np:
        m_q, a_q, b_q, m_p = (np.asarray(x, np.float64) for x in (m_q, a_q, b_q, m_p))
        a_p, b_p = (float(x) if np.ndim(x) == 0 else np.asarray(x, np.float64) for x in (a_p, b_p))
    solve_triangular = np_solve_triangular if xp is np else jnp_solve_triangular

    def solve(f, x):                                   # f^{-1} x
        return x / f if xp.ndim(f) == 0 else solve_triangular(f, x, lower=True)

    def excess(f_q, f_p, k):
        # X = F_p^{-1} F_q is lower triangular with diagonal x = diag F_q / diag F_p; with w = x^2 - 1,
        # ||X||_F^2 - k = off + sum w and ||X||_F^2 - k - ln|X|^2 = off + sum (w - ln(1 + w)) >= 0, each term >= 0
        x = xp.diagonal(f_q) / (f_p if xp.ndim(f_p) == 0 else xp.diagonal(f_p))
        off = xp.sum(xp.tril(solve(f_p, f_q), -1) ** 2)
        w = (x - 1) * (x + 1)
        log1p_w = xp.log1p(w)
        return off + xp.sum(w - log1p_w), off + xp.sum(w), off + xp.sum(xp.abs(w) + xp.abs(log1p_w))

    # tr(U) tr(V) - np - ln|U| terms regrouped without cancellation: with t_u = n + delta_u, t_v = p + delta_v,
    # t_u t_v - np + logdets = p ex_u + n ex_v + delta_u delta_v (ex: the factors' nonnegative excesses above)
    ex_u, delta_u, size_u = excess(a_q, a_p, n)
    ex_v, delta_v, size_v = excess(b_q, b_p, p)
    mahalanobis = xp.sum(solve(b_p, solve(a_p, m_q - m_p).T) ** 2)
    kl = 0.5 * (p * ex_u + n * ex_v + delta_u * delta_v + mahalanobis)
    if xp is not np:
        return kl
    if not np.isfinite(kl):
        raise ValueError("KL is not finite: check the means and factors for NaN or inf")
    # Round up by (2 (n + p) + 64) ulps of the size of the terms summed (a float64 sum of N terms errs by at most
    # about N ulps of their absolute sum; the diagonal ratios by an ulp each).
    size = p * size_u + n * size_v + abs(delta_u * delta_v) + mahalanobis
    return np.float64(max(kl + 0.5 * (2 * (n + p) + 64) * _EPS * size, 0.0))
