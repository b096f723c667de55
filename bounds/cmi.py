r"""Conditional-mutual-information (CMI) bounds on the expected generalization gap and risk.

Supersample setting (Steinke & Zakynthinou 2020): n pairs :math:`\tilde Z_i = (Z_{i,0},
Z_{i,1})`, a mask :math:`U_i \in \{0,1\}` picks the training member of pair i; losses in
[0, 1], MI in nats. Every bound takes per-pair mutual informations ``mi: [..., n]`` (e.g.
``[k1, n]`` for k1 supersample draws) and averages over pairs;
:mod:`genbounds.estimators.supersample.runs` estimates them from training runs. The functions
return the bound for each leading index (one value per supersample draw), so callers can
average and form intervals over draws.

Each function cites its source. For which mutual information enters the fast-rate forms
(single-loss MIs averaged over the two members) we follow the released code of Wang & Mao
(2023).
"""

from __future__ import annotations

import math

import numpy as np

from ._array import check_count, check_nonnegative, check_probability, check_range
from .kl import kl_inv_upper

__all__ = [
    "sqrt_cmi",
    "samplewise_sqrt",
    "single_loss",
    "binary_kl",
    "interpolating",
    "fast_rate",
    "fast_rate_closed_form",
    "fast_rate_variance",
    "loo_sqrt",
    "loo_interpolating",
    "LN2",
]

LN2 = math.log(2.0)


def _mi(name, mi):
    check_nonnegative(name, mi)             # before the float conversion, which would parse text
    return np.asarray(mi, dtype=np.float64)


def _matching(name: str, x, other: str, shape: tuple[int, ...]) -> None:
    """One ValueError naming both arguments unless ``x`` broadcasts to ``shape`` (``other``'s per-draw shape)."""
    try:
        if np.broadcast_shapes(np.shape(x), shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"argument {name!r} of shape {list(np.shape(x))} does not match argument {other!r} "
                         f"(one value per draw: shape {list(shape)})") from None


def sqrt_cmi(cmi: float, n: int) -> float:
    r"""Steinke & Zakynthinou (2020), Thm 2: :math:`|\mathbb{E}\,\mathrm{gen}| \le \sqrt{2\,\mathrm{CMI}/n}`,
    CMI = :math:`I(W; U \mid \tilde Z)` in nats."""
    check_nonnegative("cmi", cmi)
    check_count("n", n)
    return float(math.sqrt(2.0 * float(cmi) / n))


def samplewise_sqrt(mi) -> np.ndarray:
    r"""Samplewise square-root bound :math:`|\mathbb{E}\,\mathrm{gen}| \le \frac1n \sum_i \sqrt{2 I_i}`.

    With :math:`I_i = I^{\tilde Z}(f(\tilde Z_i); U_i)` (predictions on both members) this is
    the f-CMI bound of Harutyunyan et al. (2021), Thm 2.2 (samplewise form); with the loss pair
    it is the e-CMI bound of Hellström & Durisi (2022); with the loss difference
    :math:`\Delta L_i = L_{i,1} - L_{i,0}` it is the ld-CMI bound of Wang & Mao (2023), Thm 3.1.
    By data processing the three are ordered ld <= e <= f. Returns one value per draw.
    """
    mi = _mi("mi", mi)
    return np.mean(np.sqrt(2.0 * mi), axis=-1)


def single_loss(mi_member0, mi_member1) -> np.ndarray:
    r"""Single-loss bound of Wang & Mao (2023), in its disintegrated form, both members averaged:

    .. math::  \mathbb{E}\,\mathrm{gen} \le \frac1n \sum_i \mathbb{E}_{\tilde Z}\,
               \big[\sqrt{2 I^{\tilde Z}(L_{i,0}; U_i)} + \sqrt{2 I^{\tilde Z}(L_{i,1}; U_i)}\big].

    Derivation: the pair's gap is :math:`g_i = \mathbb{E}[L_{i,1-U_i} - L_{i,U_i}]`. By the
    exchangeability of the two members it equals, for each member j alone,
    :math:`2\,\mathbb{E}[(-1)^{j+1-U_i}\, L_{i,j}]`. Given :math:`\tilde Z`, Donsker-Varadhan with
    U_i uniform and a [-1, 1] integrand gives :math:`|\mathbb{E}[(-1)^{U_i} L_{i,j} \mid \tilde Z]|
    \le \sqrt{2 I^{\tilde Z}(L_{i,j}; U_i)}`, hence :math:`g_i \le 2\,\mathbb{E}_{\tilde Z}
    \sqrt{2 I^{\tilde Z}(L_{i,j}; U_i)}` for j = 0 and for j = 1 (Wang & Mao's single-loss bound,
    2 sqrt(2 I) per member). The exchangeability step holds only after averaging over
    supersamples, so the member may not be chosen per draw. Taking the smaller member per draw
    undershoots: where one member of each pair is "hard" and the hard side alternates between
    draws, the per-draw minimum is 0 with a test error of 0.5. We average the two valid
    statements, j = 0 and j = 1. Per draw that is the mean of both members' terms: nothing is
    chosen after seeing the data, and the variance is lower than either member's.
    ``mi_member0``, ``mi_member1``: ``[..., n]`` per-pair MIs. Returns one value per draw.
    """
    a = _mi("mi_member0", mi_member0)
    b = _mi("mi_member1", mi_member1)
    if a.shape != b.shape:
        raise ValueError(f"argument 'mi_member1' must have the shape of 'mi_member0' {list(a.shape)} (the same "
                         f"pairs of the same draws), got {list(b.shape)}")
    return (np.mean(2 * np.sqrt(2 * a), axis=-1) + np.mean(2 * np.sqrt(2 * b), axis=-1)) / 2


def binary_kl(train_risk, mi) -> np.ndarray:
    r"""Binary-kl bound on the expected risk (Hellström & Durisi 2022, samplewise e-CMI):

    .. math::  \mathrm{kl}\big(\hat L \,\|\, (\hat L + L_D)/2\big) \le \bar I = \frac1n \sum_i I_i,

    so :math:`L_D \le \min\{1,\; 2\,\mathrm{kl}^{-1}_{\uparrow}(\hat L, \bar I) - \hat L\}`.
    The kl inverse errs upward and the result is capped at 1 (the anchor's solver could
    return 6.1 where the exact value is 0.854).
    """
    check_probability("train_risk", train_risk)
    mi = _mi("mi", mi)
    i_bar = np.mean(mi, axis=-1)
    _matching("train_risk", train_risk, "mi", i_bar.shape)
    lhat = np.broadcast_to(np.asarray(train_risk, dtype=np.float64), i_bar.shape)
    # The midpoint (L_hat + L_D)/2 is at most kl_inv_upper(L_hat, I_bar).
    return np.minimum(1.0, 2.0 * np.asarray(kl_inv_upper(lhat, i_bar)) - lhat)


def interpolating(mi_ld, train_risk: float) -> np.ndarray:
    r"""Interpolating bound for the 0-1 loss (Wang & Mao 2023, Thm 4.2): if every run has
    training error 0, :math:`\mathbb{E} L_D \le \frac{1}{n \ln 2} \sum_i I(\Delta L_i; U_i)`
    (with equality for the ld-CMI). Raises ``ValueError`` when the training error is not 0:
    the bound does not apply (the anchor code returned a number regardless)."""
    check_probability("train_risk", train_risk)
    if float(np.max(train_risk)) != 0.0:
        raise ValueError("the interpolating bound needs training error exactly 0 in every run; "
                         f"got mean training error {float(np.mean(train_risk)):.4g}")
    mi = _mi("mi_ld", mi_ld)
    return np.minimum(1.0, np.mean(mi, axis=-1) / LN2)


# Constraint of the fast-rate family: exp(2 C2) + exp(-2 C2 (C1 g^2 + 1)) <= 2, so C2 < ln(2)/2
# and C1 >= (-ln(2 - e^{2 C2}) / (2 C2) - 1) / g^2.
_C2 = np.linspace(1e-4, LN2 / 2 - 1e-6, 4000)
# C1 is raised by a relative 1e-10 (float64's error near C2 = ln(2)/2, where 2 - e^{2 C2} cancels, is ~1e-11
# relative), so that every grid point satisfies the constraint in exact arithmetic.
_C1_BASE = (-np.log1p(-np.expm1(2 * _C2)) / (2 * _C2) - 1.0) * (1.0 + 1e-10)


def fast_rate(train_risk, i_bar) -> np.ndarray:
    r"""Wang & Mao (2023), fast-rate bound on the gap:

    .. math::  \mathbb{E}\,\mathrm{gen} \le \min_{C_1, C_2 > 0}\; C_1 \hat L + \bar I / C_2
               \quad\text{s.t.}\quad e^{2C_2} + e^{-2C_2(C_1+1)} \le 2,

    :math:`\bar I` the mean single-loss MI (anchor convention). Minimised over a fine grid of
    C2 with the smallest feasible C1; every grid point is itself a valid bound, so the grid can
    only make the value slightly larger, never invalid. Returns the bound on the *risk*,
    :math:`\hat L` + gap bound, capped at 1.
    """
    return fast_rate_variance(train_risk, i_bar, 0.0)


def fast_rate_variance(train_risk, i_bar, v) -> np.ndarray:
    r"""Variance- and sharpness-based fast-rate forms of Wang & Mao (2023): replace :math:`\hat L` by
    :math:`\hat L - (1-\gamma^2) V` under :math:`e^{2C_2} + e^{-2C_2(C_1\gamma^2+1)} \le 2`,
    :math:`\gamma \in (0, 1]`.

    ``v`` is a second moment of the training loss computed with the *same weighting* as
    ``train_risk`` (:func:`genbounds.estimators.supersample.runs.bounds_from_runs` uses the uniform design weight of U
    for both): the mean squared training error of a run (variance form) or the mean over pairs
    of the squared per-example training loss (sharpness form). A second moment of a [0, 1] loss
    never exceeds its mean, so ``v`` is clamped to ``v <= train_risk``. Without the clamp,
    a ``v`` from another weighting let the bound drop the training error
    (``fast_rate_sharpness`` 0.198 below ``fast_rate`` 0.299 on unbalanced masks).
    With :math:`V \le \hat L` every grid point satisfies
    :math:`C_1(\hat L - (1-\gamma^2)V) \ge (C_1\gamma^2)\hat L`, so these forms are never below
    :func:`fast_rate`; for the 0-1 loss (:math:`\ell^2 = \ell`) they equal it. ``v = 0`` gives
    :func:`fast_rate`. Returns the bound on the risk, capped at 1."""
    check_probability("train_risk", train_risk)
    lhat = np.asarray(train_risk, dtype=np.float64)[..., None, None]
    i_bar = _mi("i_bar", i_bar)
    _matching("train_risk", train_risk, "i_bar", i_bar.shape)
    check_range("v", v, 0.0, 1.0)
    _matching("v", v, "i_bar", i_bar.shape)
    v = np.asarray(v, dtype=np.float64)
    v = np.minimum(v, np.asarray(train_risk, dtype=np.float64))
    gammas = np.linspace(0.05, 1.0, 96)[:, None] if np.any(v > 0) else np.ones((1, 1))
    c1 = np.maximum(_C1_BASE[None, :] / gammas**2, 0.0)
    eff = np.maximum(lhat - (1 - gammas**2) * v[..., None, None], 0.0)
    gap = np.min(c1 * eff + i_bar[..., None, None] / _C2[None, :], axis=(-2, -1))
    return np.minimum(1.0, np.asarray(train_risk, dtype=np.float64) + gap)


def fast_rate_closed_form(train_risk, i_bar) -> np.ndarray:
    r"""Closed-form relaxation of :func:`fast_rate` (Wang & Mao 2023):
    :math:`L_D \le \hat L + 4\bar I + 4\sqrt{\bar I \hat L}`, capped at 1."""
    check_probability("train_risk", train_risk)
    lhat = np.asarray(train_risk, dtype=np.float64)
    i_bar = _mi("i_bar", i_bar)
    _matching("train_risk", train_risk, "i_bar", i_bar.shape)
    return np.minimum(1.0, lhat + 4 * i_bar + 4 * np.sqrt(i_bar * lhat))


def loo_sqrt(mi_loo) -> np.ndarray:
    r"""Leave-one-out CMI bound on the gap (Haghifam, Moran, Roy & Dziugaite 2022 setting):
    n+1 points, U uniform on the n+1 indices marks the held-out one,

    .. math::  |\mathbb{E}\,\mathrm{gen}| \le \mathbb{E}_{\tilde Z} \sqrt{2\, I(\tilde L; U \mid \tilde Z)}.

    Proof sketch: :math:`f = \tilde L_U - \frac1n \sum_{j \ne U} \tilde L_j \in [-1, 1]` has
    mean 0 when U is independent of :math:`\tilde L` and uniform, so it is 1-sub-Gaussian
    under the product of marginals; Donsker-Varadhan gives the bound. One value per draw."""
    return np.sqrt(2.0 * _mi("mi_loo", mi_loo))


def loo_interpolating(mi_loo, n: int) -> np.ndarray:
    r"""Leave-one-out CMI for interpolating algorithms and the 0-1 loss (Haghifam et al. 2022):
    :math:`\mathbb{E} L_D \le I(\tilde L; U \mid \tilde Z) / \ln(n+1)`.

    Proof sketch: with training error 0 a nonzero loss vector reveals U, so
    :math:`H(U \mid \tilde L) \le (1 - p)\ln(n+1)` where p is the held-out error probability,
    i.e. :math:`p \le I / \ln(n+1)`. One value per draw, capped at 1."""
    check_count("n", n)
    return np.minimum(1.0, _mi("mi_loo", mi_loo) / math.log(n + 1))
