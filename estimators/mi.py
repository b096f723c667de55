r"""Plug-in mutual information between a binary mask and a discrete variable.

For each of many pairs (vectorised over leading axes) we observe k2 samples of
:math:`(U, F)` with :math:`U \in \{0, 1\}` and F a discrete code in ``[0, K)`` (a prediction
pair, a loss pair, a loss difference). The plug-in estimate is the MI of the empirical joint,

.. math::  \hat I = \sum_{u, f} \hat p(u, f) \ln \frac{\hat p(u, f)}{\hat p(u)\, \hat p(f)},

in nats, clipped at 0 (it is >= 0 up to rounding anyway).

Why it is biased: :math:`\hat I` is a non-linear function of the empirical frequencies. When
U and F are independent it is upward biased, :math:`\mathbb{E}\hat I \approx (|U|-1)(|F|-1)/(2k_2)`
(Miller 1955; Paninski 2003), so with k2 = 30 masks and many prediction pairs it reports
information that is not there; when the true MI is large, the empirical entropies are biased
downward and :math:`\hat I` can under-estimate, so a bound computed from it is an estimate,
not a certificate (an interpolating bound estimated this way fell below the observed test error
on a synthetic table). The Miller-Madow correction adds (m - 1)/(2N) to each plug-in entropy
(m = number of occupied cells), i.e. subtracts :math:`[(m_{UF} - 1) - (m_U - 1) - (m_F - 1)]/(2N)`
from :math:`\hat I`; it reduces the first-order bias but not the variance. Report intervals.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plugin_mi", "encode_pairs", "bootstrap_interval"]


def _xlogx_ratio(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(q > 0, q, 1.0)), 0.0)


def plugin_mi(u: np.ndarray, f: np.ndarray, num_values: int | None = None, *, u_values: int = 2,
              miller_madow: bool = False) -> np.ndarray:
    """Plug-in MI (nats) between ``u`` (a mask) and integer ``f`` along the last axis.

    Args:
        u: array ``[..., N]`` of codes in ``[0, u_values)`` (0/1 for supersample masks).
        f: array ``[..., N]`` of integer codes in ``[0, num_values)``, same shape as ``u``.
        num_values: number of possible codes (default ``f.max() + 1``).
        u_values: number of possible mask values (2; n+1 for leave-one-out).
        miller_madow: apply the Miller-Madow bias correction (then clipped at 0).
    Returns:
        ``[...]`` estimates, clipped at 0.
    """
    u = np.asarray(u)
    f = np.asarray(f)
    if u.shape != f.shape:
        raise ValueError(f"arguments 'u' and 'f' must have the same shape, got {u.shape} and {f.shape}")
    if u.size and (u.min() < 0 or u.max() >= u_values):
        raise ValueError(f"argument 'u' must hold codes in [0, {u_values})")
    if f.size and (f.min() < 0 or not np.issubdtype(f.dtype, np.integer)):
        raise ValueError("argument 'f' must hold non-negative integer codes")
    k = int(num_values if num_values is not None else (f.max() + 1 if f.size else 1))
    n = u.shape[-1]
    codes = u.astype(np.int64) * k + f.astype(np.int64)          # joint code in [0, u_values k)
    cells = u_values * k
    flat = codes.reshape(-1, n)
    offsets = (np.arange(flat.shape[0]) * cells)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * cells)
    joint = counts.reshape(*u.shape[:-1], u_values, k) / n
    pu = joint.sum(-1, keepdims=True)
    pf = joint.sum(-2, keepdims=True)
    mi = _xlogx_ratio(joint, pu * pf).sum(axis=(-2, -1))
    if miller_madow:
        m_uf = (joint > 0).sum(axis=(-2, -1))
        m_u = (pu > 0).sum(axis=(-2, -1))
        m_f = (pf > 0).sum(axis=(-2, -1))
        mi = mi - ((m_uf - 1) - (m_u - 1) - (m_f - 1)) / (2.0 * n)
    return np.maximum(mi, 0.0)


def encode_pairs(a: np.ndarray, b: np.ndarray, num_values: int) -> np.ndarray:
    """Integer code of a pair of values in ``[0, num_values)``: ``a * num_values + b``."""
    return np.asarray(a, dtype=np.int64) * num_values + np.asarray(b, dtype=np.int64)


def bootstrap_interval(per_draw: np.ndarray, *, level: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over draws (the k1 supersamples)."""
    x = np.asarray(per_draw, dtype=np.float64).ravel()
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
