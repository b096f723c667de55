r"""Plug-in mutual information between a uniform design variable U and a discrete variable F.

In every CMI theorem the mask U is drawn *by design* uniformly: U_i ~ Bernoulli(1/2) for a
supersample pair (Steinke & Zakynthinou 2020), U uniform on {0, ..., n} for a leave-one-out
supersample (Haghifam et al. 2022). Its marginal is therefore known and is not estimated.
For each of many slices (vectorised over leading axes) we observe N samples of (U, F), F a
discrete code (a prediction pair, a loss pair, a loss difference, a loss vector). The estimate
is the MI of the joint built from the *empirical conditionals* and the known marginal,

.. math::  \hat I = \frac1K \sum_{u} \sum_f \hat p(f \mid u) \ln \frac{\hat p(f \mid u)}{\hat m(f)},
           \qquad \hat m(f) = \frac1K \sum_u \hat p(f \mid u),

in nats (a generalised Jensen-Shannon divergence of the K conditionals; 0 <= I <= ln K).
Every value of U must occur in every slice, or the conditional is undefined and the slice is
refused. For a balanced design (each value of U equally often) this is the ordinary plug-in MI
of the empirical joint. For an unbalanced one, the ordinary plug-in MI uses the empirical
marginal of U, whose entropy is below ln K, and is biased low however informative F is. With
masks 27 zeros : 3 ones it gave H(0.1) = 0.33 nats for a memorising learner, where the MI is
ln 2 = 0.69. The known-marginal form removes that bias. Reweighting a pair's runs to a uniform
U_i keeps the conditional law of the other bits, so it is the MI of a design that the
samplewise theorems cover: U_i uniform and U independent of the data.

Why it is still an estimate: :math:`\hat I` is a non-linear function of the empirical
frequencies. When U and F are independent it is upward biased, about
:math:`(K-1)(|F|-1)/(2N)` (Miller 1955; Paninski 2003). When the true MI is large the
conditional entropies are biased low and :math:`\hat I` can under-estimate. So a bound computed
from it is an estimate, not a certificate: report intervals over draws. The Miller-Madow
correction adds (m - 1)/(2N) to each plug-in entropy (m occupied cells): here
:math:`\hat I + (m_F - 1)/(2 N_\mathrm{eff}) - \frac1K \sum_u (m_u - 1)/(2 N_u)`, with
:math:`N_\mathrm{eff} = K^2 / \sum_u N_u^{-1}`. For a balanced design this is the textbook
correction of the joint plug-in MI.

Codes are remapped to dense ranks within each slice before counting, and counting is sparse
(sorting, not a dense table). Memory is O(number of samples) whatever the range of the codes:
class ids near 1e7, or thousands of classes, cost nothing extra.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plugin_mi", "encode_pairs", "dense_codes", "bootstrap_interval"]


def dense_codes(f: np.ndarray) -> np.ndarray:
    """Rank of each entry among the distinct values of its row (last axis): codes in [0, N)."""
    f = np.asarray(f)
    order = np.argsort(f, axis=-1, kind="stable")
    fs = np.take_along_axis(f, order, axis=-1)
    new = np.ones(fs.shape, dtype=bool)
    new[..., 1:] = fs[..., 1:] != fs[..., :-1]
    ranks = np.cumsum(new, axis=-1) - 1
    out = np.empty(f.shape, dtype=np.int64)
    np.put_along_axis(out, order, ranks, axis=-1)
    return out


def plugin_mi(u: np.ndarray, f: np.ndarray, *, u_values: int = 2, miller_madow: bool = False) -> np.ndarray:
    """Plug-in MI (nats) between a uniform ``u`` (known marginal) and integer codes ``f``.

    Args:
        u: ``[..., N]`` design values in ``[0, u_values)``; every value must occur in every slice.
        f: ``[..., N]`` integer codes (any integers; only equality matters), same shape as ``u``.
        u_values: number of values of U (2 for supersample masks, n+1 for leave-one-out).
        miller_madow: apply the Miller-Madow bias correction (then clipped at 0).
    Returns:
        ``[...]`` estimates in [0, ln u_values] (clipped at 0).
    """
    u, f = np.asarray(u), np.asarray(f)
    if u.shape != f.shape:
        raise ValueError(f"arguments 'u' and 'f' must have the same shape, got {u.shape} and {f.shape}")
    for name, arr in (("u", u), ("f", f)):
        if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise ValueError(f"argument {name!r} must hold integer codes, got dtype {arr.dtype}")
    K = int(u_values)
    if u.size and (u.min() < 0 or u.max() >= K):
        raise ValueError(f"argument 'u' must hold codes in [0, {K})")
    lead, N = u.shape[:-1], u.shape[-1]
    S = int(np.prod(lead))
    u2 = u.reshape(S, N).astype(np.int64)
    s_idx = np.repeat(np.arange(S, dtype=np.int64), N)
    su_key = s_idx * K + u2.ravel()
    n_su = np.bincount(su_key, minlength=S * K).reshape(S, K)
    if S and (n_su == 0).any():
        s, v = map(int, np.argwhere(n_su == 0)[0])
        raise ValueError(f"argument 'u': slice {s} never takes the value {v}; the MI with U's known "
                         "uniform marginal needs every value in every slice")
    if S == 0:
        return np.zeros(lead)
    cells, counts = np.unique(su_key * N + dense_codes(f.reshape(S, N)).ravel(), return_counts=True)
    su, f_c = cells // N, cells % N
    s_c = su // K
    p_cond = counts / n_su.ravel()[su]                                   # p(f | u), one per occupied cell
    sf_cells, sf_inv = np.unique(s_c * N + f_c, return_inverse=True)
    mix = np.bincount(sf_inv, weights=p_cond) / K                        # m(f) = mean_u p(f | u)
    terms = p_cond * np.log(p_cond / mix[sf_inv])
    mi = np.bincount(s_c, weights=terms, minlength=S) / K
    if miller_madow:
        occ_u = np.bincount(su, minlength=S * K).reshape(S, K)
        occ_f = np.bincount(sf_cells // N, minlength=S)
        n_eff = K**2 / (1.0 / n_su).sum(axis=1)
        mi = mi + (occ_f - 1) / (2.0 * n_eff) - ((occ_u - 1) / (2.0 * n_su)).sum(axis=1) / K
    return np.maximum(mi, 0.0).reshape(lead)


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
