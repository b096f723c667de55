r"""Certified CMI bounds: confidence bounds over the finite runs, not plug-in estimates.

Setting (Steinke & Zakynthinou 2020; conventions of :mod:`genbounds.bounds.cmi`): k1 supersamples
of n pairs, drawn independently; for each, runs trained on masks U whose bit U_i is uniform by
design. Per pair i of supersample j, the runs with U_i = u are i.i.d. draws of a small-alphabet
statistic F (here the loss pair (L_{i,0}, L_{i,1}), A = 4 cells; the loss difference and the single
losses are functions of it) from the conditional :math:`p_u = P(F \mid U_i = u, \tilde Z = z_j)`.
With U_i uniform, the per-pair mutual information is a Jensen-Shannon divergence:

.. math::  I^{z_j}(F_i; U_i) = \mathrm{JS}(p_0, p_1) = \tfrac12 \mathrm{KL}(p_0 \| m) + \tfrac12 \mathrm{KL}(p_1 \| m),
           \qquad m = (p_0 + p_1)/2, \qquad 0 \le \mathrm{JS} \le \ln 2.

The certificate is built in three steps, each a probability statement whose failure probability is a
named part of delta:

1. **Per-pair upper bounds** (:func:`pair_mi_upper`). For every pair and both values of U_i, a
   confidence box for the conditional's cells of each statistic (:func:`cell_intervals`: exact Clopper-Pearson per
   cell with a Bonferroni split over the cells, or the method-of-types KL ball, relaxed to the box
   of its one-cell projections); a union bound over the 2n conditionals of each supersample. Then the maximum of JS
   over the product of the two boxes (intersected with the simplex) is computed *exactly*
   (:func:`max_js_box`): JS is jointly convex (an f-divergence), so is JS of the pushforwards by any
   map of the cells (convex composed with linear), and a convex function attains its maximum over a
   polytope at a vertex; the vertices of a product of polytopes are the pairs of vertices, and the
   vertices of {p in the simplex, lo <= p <= hi} have every coordinate but one at a bound
   (:func:`box_vertices`). Every vertex is enumerated, so the value is the maximum over the box,
   hence at least the maximum over the confidence set and at least the true MI on its event.
   Alternatively (``jensen``, :func:`pair_mi_plugin`), no box: the plug-in JS of the frequencies, whose
   expectation is at least the pair's MI (Jensen: JS jointly convex, frequencies unbiased), so step 2 bounds
   the mean MI from it directly, without a pair slack (:func:`mean_mi_plugin_upper`).
2. **Means over supersamples** (:func:`mean_mi_upper`, :func:`mean_upper`). The per-supersample
   means X'_j of the per-pair upper bounds are functions of supersample j's data and runs alone, so
   they are i.i.d. over the k1 independent supersamples, in [0, ln 2]; the minimum of the kl-Chernoff
   bound (Hoeffding 1963; Maurer 2004, for [0, 1] variables) and the empirical Bernstein bound
   (Maurer & Pontil 2009, Thm 4), each at half the share, bounds E X'. The true mean X_j exceeds X'_j
   only when a box of supersample j fails (probability <= ``pair_slack``, the level of step 1 within
   one supersample), and X_j <= ln 2, so E X <= E X' + ln 2 * ``pair_slack``: the per-pair confidence
   level is paid as an additive term, not as a part of delta and without a union over supersamples.
   The training errors are concentrated the same way (exact values, range [0, 1]).
3. **Forms linear in the MI** (:func:`certified_forms`), each non-decreasing in the MI and in the
   training error that enters it (tested): the interpolating bound (Wang & Mao 2023, Thm 4.2), the
   fast-rate bound (Wang & Mao 2023, over a fixed grid of constants), and the binary-kl bound
   (Hellstrom & Durisi 2022). Each is a deterministic inequality between expectations, so on the
   event of steps 1-2 all forms and all constants hold at once: their minimum needs no union bound.

Everything is float64; every inversion errs upward and the final values are rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np

from . import cmi as B
from ._array import ArrayLike, check_count, check_delta, check_range, divide_down, float_at_least, round_up
from .excess import _test_set_bounds
from .kl import kl_inv_lower, kl_inv_upper

__all__ = ["ConfidenceSet", "STATISTICS", "cell_intervals", "box_vertices", "js_divergence", "max_js_box",
           "pair_mi_upper", "pair_mi_plugin", "mean_mi_plugin_upper",
           "kl_chernoff_upper", "kl_chernoff_from_mean", "empirical_bernstein_upper",
           "mean_upper", "mean_mi_upper",
           "MeanBound",
           "DeltaSplit", "split_delta", "fast_rate_certified", "binary_kl_certified", "interpolating_certified",
           "certified_forms", "CertifiedForms", "LN2_UP", "JS_MARGIN", "DELTA_PARTS", "total_delta"]

#: ln 2 rounded up: every JS is at most ln 2.
LN2_UP = float(np.nextafter(math.log(2.0), math.inf))
#: Absolute margin added to every computed maximal JS: covers float64 rounding of the vertex coordinates
#: (the derivative of a ln(2a/(a+b)) in a is at most ln 2 + 1 + |ln a|, below 746 for float64 a > 0,
#: times an error of a few ulps of 1) and of the sums.
JS_MARGIN = 1e-9
#: Vertex coordinates may leave the box by rounding; a vertex is kept if within this tolerance (keeping a
#: point slightly outside the box can only raise the maximum).
_VERTEX_TOL = 1e-12

#: The loss-pair cells: code 2 L0 + L1. Each statistic maps the 4 cells to its own codes.
STATISTICS: dict[str, tuple[int, ...]] = {
    "loss_pair": (0, 1, 2, 3),          # (L0, L1)
    "loss_difference": (1, 2, 0, 1),    # L1 - L0 + 1: 00 -> 0, 01 -> +1, 10 -> -1, 11 -> 0
    "loss_member0": (0, 0, 1, 1),       # L0
    "loss_member1": (0, 1, 0, 1),       # L1
}


class ConfidenceSet(StrEnum):
    """The confidence set for one conditional of the cells, from m i.i.d. draws.

    * ``cells``: per cell an exact two-sided Clopper-Pearson interval at delta / A (one side at
      delta / (2A)); by the union bound all A intervals hold w.p. >= 1 - delta. For A = 2 one two-sided
      interval at delta covers both cells (p_1 = 1 - p_0; the other cell's interval is its mirror).
    * ``types``: the method-of-types KL ball KL(p_hat || p) <= eps,
      eps = (ln C(m + A - 1, A - 1) + ln(1/delta)) / m (Csiszar & Korner; the number of types is
      C(m + A - 1, A - 1) and each type T has P(p_hat = T) <= exp(-m KL(T || p))), relaxed to the box
      of its projections: kl(p_hat_f || p_f) <= KL(p_hat || p) <= eps (data processing to {f, not f}).

    * ``jensen``: no per-pair set. Each pair's MI is estimated by the plug-in JS of its two conditionals'
      frequencies (:func:`pair_mi_plugin`), whose *expectation* is at least the pair's MI (Jensen: JS is jointly
      convex and the frequencies are unbiased); the concentration over the k1 supersamples
      (:func:`mean_mi_plugin_upper`) then bounds the mean MI directly, with no box and no pair slack.
    """

    CELLS = "cells"
    TYPES = "types"
    JENSEN = "jensen"


def _side_delta(delta: float, cells: int) -> float:
    """delta / (2 A), rounded down."""
    return divide_down(delta, 2 * cells)


def cell_intervals(counts, delta: float,
                   method: ConfidenceSet | str = ConfidenceSet.CELLS) -> tuple[np.ndarray, np.ndarray]:
    """Confidence box ``(lo, hi)`` for a multinomial's cell probabilities from ``counts: [..., A]``.

    With probability >= 1 - ``delta`` over the m = ``counts.sum(-1)`` i.i.d. draws of one slice, every cell's
    probability lies in ``[lo, hi]`` (see :class:`ConfidenceSet`). Bounds err outward (upper bounds from
    :func:`genbounds.bounds.excess.test_set_bound` or :func:`kl_inv_upper`, never below the exact value;
    lower bounds from them by symmetry, rounded down). Each slice needs m >= 1.
    """
    method = ConfidenceSet(method)
    if method is ConfidenceSet.JENSEN:
        raise ValueError("argument 'method': 'jensen' is not a confidence box (use pair_mi_plugin and "
                         "mean_mi_plugin_upper); cell_intervals takes 'cells' or 'types'")
    counts = np.asarray(counts)
    if counts.ndim < 1 or counts.shape[-1] < 2:
        raise ValueError(f"argument 'counts' must have shape [..., A] with A >= 2 cells, got {counts.shape}")
    check_count("counts", counts, minimum=0)
    check_delta("delta", delta)
    counts = counts.astype(np.int64)
    A = counts.shape[-1]
    m = np.broadcast_to(counts.sum(-1, keepdims=True), counts.shape)
    if (m == 0).any():
        raise ValueError("argument 'counts': a slice holds no draws (m = 0); every conditional needs m >= 1 runs")
    if method is ConfidenceSet.CELLS:
        # Two cells: p_1 = 1 - p_0, so one two-sided interval covers both (each side at delta / 2).
        side = divide_down(delta, 2) if A == 2 else _side_delta(delta, A)
        keys, inv = np.unique(np.stack([counts.ravel(), m.ravel()]), axis=1, return_inverse=True)
        # Every distinct (count, m) once, both sides in one call: the upper bound at k = count, the lower one as
        # 1 - the upper bound at k = m - count (elementwise the same operations as test_set_bound).
        c, mm = keys
        both = _test_set_bounds(np.concatenate([c, mm - c]), np.concatenate([mm, mm]), side)
        up, dn = both[:c.size], 1.0 - both[c.size:]
        hi = up[inv.ravel()].reshape(counts.shape)
        lo = np.nextafter(dn[inv.ravel()], -np.inf).reshape(counts.shape)
    else:
        mm = m[..., :1].astype(np.float64)
        # ln C(m + A - 1, A - 1) from the exact integer (math.log of an int errs by a few ulps), rounded up.
        log_types = np.vectorize(lambda k: round_up(math.log(math.comb(int(k) + A - 1, A - 1)), 8))(mm)
        eps = np.vectorize(round_up)((log_types + round_up(math.log(1.0 / delta))) / mm * (1 + 1e-12))
        q = counts / m
        hi = np.asarray(kl_inv_upper(q, np.broadcast_to(eps, q.shape)))
        lo = np.asarray(kl_inv_lower(q, np.broadcast_to(eps, q.shape)))
    lo = np.where(counts == 0, 0.0, np.clip(lo, 0.0, 1.0))
    hi = np.where(counts == m, 1.0, np.clip(hi, 0.0, 1.0))
    return lo, hi


def box_vertices(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    r"""Every vertex of the polytope :math:`\{p : \sum_f p_f = 1,\ lo \le p \le hi\}`, ``lo, hi: [..., A]``.

    A vertex has A - 1 linearly independent active constraints; in this polytope they are bounds of A - 1
    different coordinates, so every vertex is, for some free coordinate f and some choice of lo/hi for the
    others, the point with p_f = 1 - (the others' sum). All A 2^(A-1) candidates are returned
    ``[..., V, A]`` with a mask ``[..., V]`` of those inside the box (within a tolerance of 1e-12; keeping a
    point slightly outside can only raise a maximum). The free coordinate is clipped to [0, 1].
    """
    lo, hi = np.broadcast_arrays(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    A = lo.shape[-1]
    choice = ((np.arange(2 ** (A - 1))[:, None] >> np.arange(A - 1)[None, :]) & 1).astype(bool)    # [2^(A-1), A-1]
    pts, ok = [], []
    for f in range(A):
        others = [g for g in range(A) if g != f]
        lo_o, hi_o = lo[..., others], hi[..., others]                                # [..., A-1]
        vals = np.where(choice, hi_o[..., None, :], lo_o[..., None, :])             # [..., C, A-1]
        free = 1.0 - vals.sum(-1)                                                    # [..., C]
        good = (free >= lo[..., f, None] - _VERTEX_TOL) & (free <= hi[..., f, None] + _VERTEX_TOL)
        p = np.insert(vals, f, np.clip(free, 0.0, 1.0), axis=-1)
        pts.append(p)
        ok.append(good)
    return np.concatenate(pts, axis=-2), np.concatenate(ok, axis=-1)


def _xlog_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a ln(a / b) with 0 ln(0 / b) = 0 (b >= a / 2 > 0 wherever a > 0 here)."""
    pos = a > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pos, a * np.log(np.where(pos, a, 1.0) / np.where(b > 0, b, 1.0)), 0.0)


def js_divergence(p0, p1) -> np.ndarray:
    r"""Jensen-Shannon divergence (nats) over the last axis,
    :math:`\tfrac12 \sum_f p_{0f} \ln\frac{2 p_{0f}}{p_{0f}+p_{1f}}
    + \tfrac12 \sum_f p_{1f} \ln\frac{2 p_{1f}}{p_{0f}+p_{1f}}`:
    the MI between F and a uniform bit U with conditionals p0, p1."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    mix = (p0 + p1) / 2
    return np.maximum(0.5 * (_xlog_ratio(p0, mix).sum(-1) + _xlog_ratio(p1, mix).sum(-1)), 0.0)


def _pushforward(p: np.ndarray, code: Sequence[int]) -> np.ndarray:
    code = np.asarray(code)
    onehot = (code[:, None] == np.arange(code.max() + 1)[None, :]).astype(np.float64)     # [A, B]
    return p @ onehot


def max_js_box(lo0, hi0, lo1, hi1, codes: Sequence[int] | None = None) -> np.ndarray:
    r"""Upper bound (rounded up) of :math:`\max \mathrm{JS}(g_\# p_0, g_\# p_1)` over
    :math:`p_u \in \Delta \cap [lo_u, hi_u]`, ``lo_u, hi_u: [..., A]``, g the map ``codes`` of the A cells
    (identity when None).

    Exact up to float rounding: JS is jointly convex, so is its composition with the linear pushforward;
    a convex function's maximum over the polytope (product of the two boxes' polytopes) is at a vertex,
    and every vertex pair is evaluated (:func:`box_vertices`). The result is raised by :data:`JS_MARGIN`
    and capped at ln 2 (rounded up). Returns ``[...]``.
    """
    v0, ok0 = box_vertices(lo0, hi0)
    v1, ok1 = box_vertices(lo1, hi1)
    if not (ok0.any(-1).all() and ok1.any(-1).all()):
        raise ValueError("arguments 'lo'/'hi' describe an empty box (no distribution lies in it)")
    if codes is not None:
        v0, v1 = _pushforward(v0, codes), _pushforward(v1, codes)
    js = js_divergence(v0[..., :, None, :], v1[..., None, :, :])             # [..., V, V]
    js = np.where(ok0[..., :, None] & ok1[..., None, :], js, -np.inf)
    best = js.max(axis=(-2, -1))
    return np.minimum(best + JS_MARGIN, LN2_UP)


def pair_mi_upper(counts, delta: float, method: ConfidenceSet | str = ConfidenceSet.CELLS,
                  statistics: Sequence[str] = tuple(STATISTICS), chunk: int = 2048) -> dict[str, np.ndarray]:
    r"""Certified upper bounds of every per-pair MI, simultaneously for the n pairs of each supersample.

    Args:
        counts: ``[..., n, 2, 4]`` integer counts of the runs of each pair by U_i (axis -2) and loss-pair
            cell (code 2 L0 + L1, axis -1); every pair needs runs with both values of U_i.
        delta: for each leading index (a supersample), the failure probability of its n pairs' statements
            together: each of its 2n conditionals gets a box at delta / (2n) (rounded down).
        method: the confidence set (:class:`ConfidenceSet`).
        statistics: names of :data:`STATISTICS` to bound.
    Returns:
        ``{statistic: [..., n]}``: for each supersample and each statistic, with probability >= 1 - delta, for
        all its pairs at once, the true :math:`I^{z}(g(F_i); U_i)` is at most the value. Each statistic's box is
        built on its own alphabet from its own counts (a single loss: 2 cells, the loss difference: 3, the
        loss pair: 4), each a separate statement at ``delta``: the means that use them
        (:func:`mean_mi_upper`) are separate statements too, so no union over statistics is needed.
        Identical count rows are bounded once.
    """
    counts = np.asarray(counts)
    check_count("counts", counts, minimum=0)
    if counts.ndim < 3 or counts.shape[-2:] != (2, 4):
        raise ValueError(f"argument 'counts' must have shape [..., n, 2, 4] (pair, U value, loss-pair cell), got "
                         f"{counts.shape}")
    check_delta("delta", delta)
    if ConfidenceSet(method) is ConfidenceSet.JENSEN:
        raise ValueError("argument 'method': 'jensen' has no per-pair confidence statement (use pair_mi_plugin "
                         "and mean_mi_plugin_upper)")
    lead = counts.shape[:-2]
    n = counts.shape[-3]
    per = divide_down(delta, 2 * n)
    out = {}
    for name in statistics:
        # The statistic's own counts (its cells are unions of loss-pair cells): a box on its own alphabet.
        own = np.rint(_pushforward(counts.astype(np.float64), STATISTICS[name])).astype(np.int64)
        A = own.shape[-1]
        rows, inv = np.unique(own.reshape(-1, 2 * A), axis=0, return_inverse=True)
        lo, hi = cell_intervals(rows.reshape(-1, 2, A), per, method)
        vals = np.concatenate([max_js_box(lo[s:s + chunk, 0], hi[s:s + chunk, 0], lo[s:s + chunk, 1],
                                          hi[s:s + chunk, 1]) for s in range(0, rows.shape[0], chunk)])
        out[name] = vals[inv.ravel()].reshape(lead)
    return out


def pair_mi_plugin(counts, statistics: Sequence[str] = tuple(STATISTICS)) -> dict[str, np.ndarray]:
    r"""The plug-in per-pair MI of every statistic: JS of the two conditionals' frequencies,
    :math:`\mathrm{JS}(\hat p_0, \hat p_1)` with :math:`\hat p_u` = counts / m_u (U's known uniform marginal).

    Not an upper bound of each pair's MI, but an estimate biased upward: for every supersample,
    :math:`\mathbb{E}[\mathrm{JS}(\hat p_0, \hat p_1) \mid z] \ge \mathrm{JS}(p_0, p_1)`. Proof: given z and the
    masks' bits U_i of the runs (so m_0, m_1 >= 1), the runs with U_i = u are draws from p_u (their other bits
    and seeds are independent of the runs' bits U_i), so :math:`\mathbb{E}\hat p_u = p_u`; JS is jointly convex
    (an f-divergence), so by Jensen's inequality E JS(p_hat_0, p_hat_1) >= JS(E p_hat_0, E p_hat_1). No
    independence between the two groups is needed. The pushforward of the frequencies by a statistic's map is
    the frequency of the statistic, so the same holds for every statistic. Tested against the exact expectation
    over every multinomial outcome.

    Args:
        counts: ``[..., n, 2, 4]`` as for :func:`pair_mi_upper` (every conditional needs m >= 1 runs).
    Returns:
        ``{statistic: [..., n]}`` in [0, ln 2].
    """
    counts = np.asarray(counts)
    check_count("counts", counts, minimum=0)
    if counts.ndim < 3 or counts.shape[-2:] != (2, 4):
        raise ValueError(f"argument 'counts' must have shape [..., n, 2, 4] (pair, U value, loss-pair cell), got "
                         f"{counts.shape}")
    m = counts.sum(-1, keepdims=True)
    if (m == 0).any():
        raise ValueError("argument 'counts': a slice holds no draws (m = 0); every conditional needs m >= 1 runs")
    freq = counts.astype(np.float64) / m
    out = {}
    for name in statistics:
        own = _pushforward(freq, STATISTICS[name])
        out[name] = np.minimum(js_divergence(own[..., 0, :], own[..., 1, :]), LN2_UP)
    return out


# ---------------------------------------------------------------------------------------
# Concentration over the k1 independent supersamples


def kl_chernoff_upper(values, delta: float) -> float:
    r"""Upper confidence bound on the mean of i.i.d. [0, 1] variables from k of them:
    :math:`\mathrm{kl}^{-1}_\uparrow(\bar X, \ln(1/\delta)/k)`, w.p. >= 1 - delta (Chernoff for [0, 1]
    variables: their moment generating function is at most a Bernoulli's of the same mean, Hoeffding 1963;
    Maurer 2004). Non-decreasing in every observation."""
    check_delta("delta", delta)
    x = _unit_values(values)
    return kl_chernoff_from_mean(float(np.mean(x)), x.size, delta)


def empirical_bernstein_upper(values, delta: float) -> float:
    r"""Empirical Bernstein bound (Maurer & Pontil 2009, Thm 4), i.i.d. [0, 1] variables, k >= 2:

    .. math::  \mathbb{E} X \le \bar X + \sqrt{2 V_k \ln(2/\delta) / k} + \frac{7 \ln(2/\delta)}{3 (k - 1)}
               \quad\text{w.p.} \ge 1 - \delta,

    V_k the unbiased sample variance. Rounded up, capped at 1; 1 for k = 1."""
    check_delta("delta", delta)
    x = _unit_values(values)
    k = x.size
    if k < 2:
        return 1.0
    log_term = math.log(2.0 / delta)
    var = float(np.var(x, ddof=1)) * (1 + 1e-12)
    value = _mean_up(x) + math.sqrt(2.0 * var * log_term / k) + 7.0 * log_term / (3.0 * (k - 1))
    return min(1.0, round_up(value, 16))


def kl_chernoff_from_mean(mean: float, k: int, delta: float) -> float:
    """:func:`kl_chernoff_upper` of any k values in [0, 1] whose float64 mean is ``mean`` (it depends on them only
    through their mean and count): lets a record's kl-Chernoff bound be recomputed from what it holds."""
    check_delta("delta", delta)
    check_count("k", k)
    check_range("mean", mean, 0.0, 1.0)
    mean_up = min(1.0, float(mean) * (1 + 4 * int(k) * np.finfo(float).eps) + 1e-300)
    return float(kl_inv_upper(mean_up, round_up(math.log(1.0 / delta) / int(k))))


def _unit_values(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("argument 'values' must hold at least one observation")
    check_range("values", x, 0.0, 1.0)
    return x


def _mean_up(x: np.ndarray) -> float:
    """Mean rounded up (a few ulps per summand)."""
    return min(1.0, float(np.mean(x)) * (1 + 4 * x.size * np.finfo(float).eps) + 1e-300)


@dataclass(frozen=True)
class MeanBound:
    """An upper confidence bound on the mean of k i.i.d. values in [0, ``scale``]: the smaller of the
    kl-Chernoff and the empirical Bernstein bounds, each at half of ``delta`` (both statements hold together
    w.p. >= 1 - delta, so their minimum needs no further payment)."""

    value: float
    mean: float
    k: int
    delta: float
    scale: float
    kl_chernoff: float
    bernstein: float

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "mean": self.mean, "k": self.k, "delta": self.delta, "range": self.scale,
                "kl_chernoff": self.kl_chernoff, "empirical_bernstein": self.bernstein}


def mean_upper(values, delta: float, *, scale: float = 1.0) -> MeanBound:
    """Upper confidence bound on E X from k i.i.d. observations in [0, ``scale``] (:class:`MeanBound`, in the
    original scale, rounded up): min of :func:`kl_chernoff_upper` and :func:`empirical_bernstein_upper` of
    X / scale, each at delta / 2 (rounded down)."""
    check_delta("delta", delta)
    x = np.asarray(values, dtype=np.float64).ravel()
    check_range("values", x, 0.0, scale)
    u = np.minimum(x / scale, 1.0)
    half = divide_down(delta, 2)
    kl_b = kl_chernoff_upper(u, half)
    eb = empirical_bernstein_upper(u, half)
    value = min(kl_b, eb)
    return MeanBound(value=round_up(value * scale), mean=float(np.mean(x)), k=int(u.size), delta=float(delta),
                     scale=float(scale), kl_chernoff=round_up(kl_b * scale), bernstein=round_up(eb * scale))


def mean_mi_upper(per_draw_upper, pair_slack: float, delta: float) -> MeanBound:
    r"""Upper confidence bound on :math:`\bar I = \mathbb{E}_{\tilde Z} \frac1n \sum_i I^{\tilde Z}_i` from
    the per-supersample means of per-pair upper bounds ``per_draw_upper: [k1]`` (in [0, ln 2]).

    Each X'_j = ``per_draw_upper[j]`` is a function of supersample j's data and runs only, so the X'_j are
    i.i.d. over the k1 independent supersamples, and :func:`mean_upper` bounds E X' w.p. >= 1 - ``delta``.
    The true per-supersample mean X_j <= ln 2 exceeds X'_j only when one of its pairs' confidence boxes fails,
    with probability at most ``pair_slack`` (the failure probability given to :func:`pair_mi_upper` for one
    supersample), so :math:`\mathbb{E} X \le \mathbb{E}[X'] + \ln 2 \cdot` ``pair_slack``. The per-pair
    confidence level thus costs an additive ln 2 * ``pair_slack`` nats, not a part of delta; a k1-fold union
    bound is not needed either. The returned ``value`` includes that term."""
    check_delta("pair_slack", pair_slack)
    b = mean_upper(per_draw_upper, delta, scale=LN2_UP)
    return MeanBound(value=round_up(b.value + LN2_UP * pair_slack), mean=b.mean, k=b.k, delta=b.delta,
                     scale=b.scale, kl_chernoff=b.kl_chernoff, bernstein=b.bernstein)


def mean_mi_plugin_upper(per_draw_plugin, delta: float) -> MeanBound:
    r"""Upper confidence bound on :math:`\bar I = \mathbb{E}_{\tilde Z} \frac1n \sum_i I^{\tilde Z}_i` from the
    per-supersample means of the plug-in per-pair MIs ``per_draw_plugin: [k1]`` (:func:`pair_mi_plugin`).

    Each :math:`\hat X_j` is a function of supersample j's data and runs only, so they are i.i.d. over the k1
    independent supersamples, in [0, ln 2], and :func:`mean_upper` bounds :math:`\mathbb{E}\hat X` w.p. >= 1 -
    ``delta``. By :func:`pair_mi_plugin`, :math:`\mathbb{E}[\hat X_j \mid \tilde Z] \ge \frac1n \sum_i
    I^{\tilde Z}_i`, so :math:`\mathbb{E}\hat X \ge \bar I`: the same value bounds :math:`\bar I`. No per-pair
    confidence box and no pair slack are needed; the plug-in's upward bias (about (A - 1) / (4 m) nats for A
    cells and m runs per U value) only loosens the value."""
    return mean_upper(per_draw_plugin, delta, scale=LN2_UP)


# ---------------------------------------------------------------------------------------
# The delta budget


#: The parts of the budget, fixed in advance: one mean each (the training error and the MI of each
#: statistic a form uses).
DELTA_PARTS = ("mean_train_error", "mean_mi_loss_difference", "mean_mi_single_loss", "mean_mi_loss_pair")


@dataclass(frozen=True)
class DeltaSplit:
    """How a CMI certificate's delta is spent: equally on the four means (:data:`DELTA_PARTS`), each share
    rounded down so that the parts sum to at most delta exactly. Fixed before any run is seen. The per-pair
    confidence level is not a part of delta (:func:`mean_mi_upper`): it is ``pair_slack``, recorded beside."""

    delta: float
    parts: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float]:
        return dict(self.parts)


def split_delta(delta: float) -> DeltaSplit:
    """The fixed split of :class:`DeltaSplit`."""
    check_delta("delta", delta)
    each = divide_down(delta, len(DELTA_PARTS))
    parts = {name: each for name in DELTA_PARTS}
    if sum(map(Fraction, parts.values())) > Fraction(delta):      # cannot happen: divide_down rounds down
        raise ValueError("delta split above delta")
    return DeltaSplit(float(delta), parts)


# ---------------------------------------------------------------------------------------
# Forms linear in the MI, fed with upper bounds


def _broadcast(**arrays: ArrayLike) -> list[np.ndarray]:
    """The arguments as arrays of one shape (not yet converted to float, so that the bounds' checks still see
    text; numbers are passed as they are); a ValueError naming them when their shapes do not broadcast."""
    if all(np.ndim(a) == 0 for a in arrays.values()):
        return list(arrays.values())
    try:
        return np.broadcast_arrays(*map(np.asarray, arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name!r} of shape {list(np.shape(a))}" for name, a in arrays.items())
        raise ValueError(f"arguments {shapes} do not broadcast to one shape") from None


def fast_rate_certified(train_upper: ArrayLike, mi_single_upper: ArrayLike) -> Any:
    r""":func:`genbounds.bounds.cmi.fast_rate` at the upper bounds: on the event that
    :math:`\mathbb{E}\hat L \le` ``train_upper`` and :math:`\bar I \le` ``mi_single_upper``, every grid
    point :math:`C_1 \mathbb{E}\hat L + \bar I / C_2` (C1 >= 0, C2 > 0) is at most its value at the upper
    bounds, and so is the minimum over the grid; the risk bound :math:`\hat L + \mathrm{gap}` is increasing
    in :math:`\hat L` too. The grid of C2 (with the smallest feasible C1) is fixed in advance; every grid
    point is a valid bound on the same event, so the minimum needs no union bound. Rounded up; elementwise
    (a float for numbers)."""
    train, mi = _broadcast(train_upper=train_upper, mi_single_upper=mi_single_upper)
    return round_up(B.fast_rate(train, mi), 16)


#: Past this kl inverse, 2 kl^{-1}(q, c) - q may decrease in q (:func:`binary_kl_certified`).
_BINARY_KL_MONOTONE = (1.0 + math.sqrt(0.5)) / 2.0


def binary_kl_certified(train_upper: ArrayLike, mi_pair_upper: ArrayLike) -> Any:
    r"""Binary-kl bound (Hellstrom & Durisi 2022) at the upper bounds:
    :math:`L_D \le 2 p(\hat L, \bar I) - \hat L`, :math:`p = \mathrm{kl}^{-1}_\uparrow`.

    Monotonicity (so that upper bounds may be fed in): p is increasing in c. In q, implicit differentiation
    of kl(q || p) = c gives :math:`dp/dq = (\mathrm{logit}\,p - \mathrm{logit}\,q)\, p(1-p)/(p-q)
    \ge p(1-p) / \max_{x \in [q, p]} x(1-x)`, which is >= 1 if p <= 1/2 and >= 4p(1-p) >= 1/2 if
    p <= (1 + 1/sqrt 2)/2 ~ 0.854. So while p(``train_upper``) <= 0.854, 2p(q) - q is non-decreasing on
    [0, ``train_upper``] and its value there bounds the true one. Beyond, ``2 p`` alone (dropping -q >= -1)
    is used. Capped at 1, rounded up; elementwise (a float for numbers)."""
    p = np.asarray(kl_inv_upper(train_upper, mi_pair_upper))
    train, mi = _broadcast(train_upper=train_upper, mi_pair_upper=mi_pair_upper)
    monotone = p <= _BINARY_KL_MONOTONE
    form = B.binary_kl(train, np.where(monotone, np.asarray(mi, dtype=np.float64), 0.0)[..., None])
    return round_up(np.minimum(1.0, np.where(monotone, form, 2.0 * p)), 16)


def interpolating_certified(mi_ld_upper: ArrayLike) -> Any:
    r"""Interpolating bound (Wang & Mao 2023, Thm 4.2) at the upper bound: :math:`\bar I_{\Delta L}^+ / \ln 2`
    (increasing). Valid only for an algorithm whose training error is 0 almost surely; finite runs cannot
    certify that, so a certificate using it says so. Capped at 1, rounded up; elementwise (a float for numbers)."""
    return round_up(B.interpolating(np.asarray(mi_ld_upper)[..., None], 0.0), 16)   # text stays text: refused there


@dataclass(frozen=True)
class CertifiedForms:
    """The certified forms' values on one event (``interpolating`` None when not applicable)."""

    fast_rate: float
    binary_kl: float
    interpolating: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"fast_rate": self.fast_rate, "binary_kl": self.binary_kl, "interpolating": self.interpolating}

    def best(self, *, with_interpolating: bool) -> tuple[str, float]:
        """The smallest form (all hold on one event: no union bound)."""
        vals = {"fast_rate": self.fast_rate, "binary_kl": self.binary_kl}
        if with_interpolating and self.interpolating is not None:
            vals["interpolating"] = self.interpolating
        name = min(vals, key=vals.get)
        return name, vals[name]


def certified_forms(train_upper: float, mi_upper: Mapping[str, float], *, interpolates: bool) -> CertifiedForms:
    """Every certified form from the upper bounds: ``mi_upper`` has ``single_loss``, ``loss_pair`` and
    ``loss_difference`` (mean per-pair MIs, nats)."""
    return CertifiedForms(
        fast_rate=fast_rate_certified(train_upper, mi_upper["single_loss"]),
        binary_kl=binary_kl_certified(train_upper, mi_upper["loss_pair"]),
        interpolating=interpolating_certified(mi_upper["loss_difference"]) if interpolates else None)


def total_delta(parts: Mapping[str, float]) -> float:
    """The sum of the parts, rounded up."""
    return float_at_least(sum(map(Fraction, parts.values())))
