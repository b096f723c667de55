r"""PAC-Bayes bounds on the risk of a posterior Q over predictors, for a loss in [0, 1].

Notation (shared by every function): ``emp_risk`` is the empirical risk of Q on the ``n``
examples of the *bound set* (never data used to build the prior), ``kl`` is KL(Q||P) in
nats, ``delta`` the confidence parameter. Each bound holds with probability at least
``1 - delta`` over the draw of the bound set, simultaneously for all posteriors Q.

Most bounds share the complexity term

.. math::  B = \frac{\mathrm{KL}(Q\|P) + \ln(2\sqrt{n}/\delta)}{n},

from Maurer (2004), "A note on the PAC Bayesian theorem", arXiv:cs/0411099. All
functions accept Python numbers / NumPy arrays (computed in float64, the certificate
path) or JAX arrays (computed in their dtype; jit-able and differentiable). The constants
follow the papers cited in each function (and PBB's code, Pérez-Ortiz et al. 2021).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ._array import (
    ArrayLike,
    as_float,
    check_count,
    check_delta,
    check_nonnegative,
    check_probability,
    check_range,
    check_scalar,
    divide_down,
    float_at_most,
    namespace,
)
from .kl import kl_inv_upper

__all__ = [
    "complexity",
    "dp_max_information",
    "dp_prior_kl_adjustment",
    "mcallester",
    "seeger",
    "catoni",
    "catoni_grid",
    "quad",
    "lambda_bound",
    "lambda_opt",
    "lambda_bound_opt",
    "sample_convergence",
    "prior_grid_index",
    "prior_grid_parameters",
    "prior_grid_scale",
    "prior_grid_delta",
    "union_delta",
    "DEFAULT_CATONI_GRID",
]

#: Default grid for Catoni's parameter C: 32 log-spaced values in [0.01, 100].
DEFAULT_CATONI_GRID = tuple(float(x) for x in np.geomspace(1e-2, 1e2, 32))


def _check_common(emp_risk, kl, n, delta):
    check_probability("emp_risk", emp_risk)
    check_nonnegative("kl", kl)
    check_count("n", n)
    check_delta("delta", delta)


def _inputs(emp_risk, kl, n, delta):
    _check_common(emp_risk, kl, n, delta)
    xp = namespace(emp_risk, kl, n, delta)
    return xp, *as_float(xp, emp_risk, kl, n, delta)


def _complexity(xp, kl, n, delta):
    # ln(2 sqrt(n) / delta) written as a sum of logs (pacbb's bug was ln(2 sqrt(n)) / delta).
    return (kl + math.log(2.0) + 0.5 * xp.log(n) - xp.log(delta)) / n


def complexity(kl: ArrayLike, n: ArrayLike, delta: ArrayLike) -> ArrayLike:
    r"""Maurer's complexity term :math:`B = (\mathrm{KL} + \ln(2\sqrt{n}/\delta)) / n`."""
    check_nonnegative("kl", kl)
    check_count("n", n)
    check_delta("delta", delta)
    xp = namespace(kl, n, delta)
    kl, n, delta = as_float(xp, kl, n, delta)
    return _complexity(xp, kl, n, delta)[()]


def seeger(emp_risk: ArrayLike, kl: ArrayLike, n: ArrayLike, delta: ArrayLike) -> ArrayLike:
    r"""PAC-Bayes-kl bound (Seeger 2002, in Maurer's 2004 form).

    .. math::  L(Q) \le \mathrm{kl}^{-1}_{\uparrow}\big(\hat L(Q),\, B\big).

    The tightest of the bounds here that share :math:`B`: McAllester, quad and lambda are
    relaxations of it. References: Seeger, JMLR 3 (2002); Maurer (2004); PBB's ``fkl``
    (Pérez-Ortiz et al., JMLR 22, 2021).
    """
    xp, emp_risk, kl, n, delta = _inputs(emp_risk, kl, n, delta)
    return kl_inv_upper(emp_risk, _complexity(xp, kl, n, delta))


def mcallester(emp_risk: ArrayLike, kl: ArrayLike, n: ArrayLike, delta: ArrayLike) -> ArrayLike:
    r"""McAllester's bound with Maurer's constant (PBB's ``fclassic``).

    .. math::  L(Q) \le \hat L(Q) + \sqrt{B / 2}.

    Follows from the kl bound by Pinsker's inequality. References: McAllester, COLT 1999;
    Maurer (2004); Pérez-Ortiz et al., JMLR 22 (2021), eq. (6).
    """
    xp, emp_risk, kl, n, delta = _inputs(emp_risk, kl, n, delta)
    return (emp_risk + xp.sqrt(_complexity(xp, kl, n, delta) / 2.0))[()]


def quad(emp_risk: ArrayLike, kl: ArrayLike, n: ArrayLike, delta: ArrayLike) -> ArrayLike:
    r"""The "quad" bound (Pérez-Ortiz et al. 2021, PBB's ``fquad``).

    .. math::  L(Q) \le \Big(\sqrt{\hat L(Q) + K} + \sqrt{K}\Big)^2, \qquad K = B / 2.

    Solves :math:`p - \hat L \le \sqrt{2pB}`, which follows from the kl bound and
    :math:`\mathrm{kl}(q\|p) \ge (p-q)^2/(2p)`. Equals the lambda bound at its optimal lambda.
    Reference: Pérez-Ortiz, Rivasplata, Shawe-Taylor, Szepesvári, JMLR 22 (2021), eq. (9).
    """
    xp, emp_risk, kl, n, delta = _inputs(emp_risk, kl, n, delta)
    k = _complexity(xp, kl, n, delta) / 2.0
    return ((xp.sqrt(emp_risk + k) + xp.sqrt(k)) ** 2)[()]


def lambda_bound(
    emp_risk: ArrayLike, kl: ArrayLike, n: ArrayLike, delta: ArrayLike, lam: ArrayLike
) -> ArrayLike:
    r"""Thiemann et al. (2017) lambda bound, valid for all :math:`\lambda \in (0, 2)` at once.

    .. math::  L(Q) \le \frac{\hat L(Q)}{1 - \lambda/2} + \frac{B}{\lambda (1 - \lambda/2)}.

    Because it holds simultaneously for every lambda, lambda may be chosen after seeing the
    data (``lambda_bound_opt``) at no union-bound cost. Reference: Thiemann, Igel, Wintenberger,
    Seldin, "A strongly quasiconvex PAC-Bayesian bound", ALT 2017, Theorem 3.
    """
    check_range("lam", lam, 0.0, 2.0, lo_open=True, hi_open=True)
    xp, emp_risk, kl, n, delta = _inputs(emp_risk, kl, n, delta)
    (lam,) = as_float(xp, lam)
    half = 1.0 - lam / 2.0
    return (emp_risk / half + _complexity(xp, kl, n, delta) / (lam * half))[()]


def lambda_opt(emp_risk: ArrayLike, kl: ArrayLike, n: ArrayLike, delta: ArrayLike) -> ArrayLike:
    r"""Minimiser of :func:`lambda_bound` in lambda (Thiemann et al. 2017, eq. after Thm 3).

    .. math::  \lambda^\star = \frac{2}{\sqrt{2 \hat L / B + 1} + 1}.
    """
    xp, emp_risk, kl, n, delta = _inputs(emp_risk, kl, n, delta)
    return (2.0 / (xp.sqrt(2.0 * emp_risk / _complexity(xp, kl, n, delta) + 1.0) + 1.0))[()]


def lambda_bound_opt(emp_risk: ArrayLike, kl: ArrayLike, n: ArrayLike, delta: ArrayLike) -> ArrayLike:
    """:func:`lambda_bound` at :func:`lambda_opt` (no union cost: the bound is uniform in lambda)."""
    return lambda_bound(emp_risk, kl, n, delta, lambda_opt(emp_risk, kl, n, delta))


def catoni(
    emp_risk: ArrayLike, kl: ArrayLike, n: ArrayLike, delta: ArrayLike, C: ArrayLike
) -> ArrayLike:
    r"""Catoni's bound for one parameter C > 0, fixed before seeing the data.

    .. math::  L(Q) \le \frac{1 - \exp\!\big(-C \hat L(Q) - (\mathrm{KL} + \ln(1/\delta))/n\big)}
                           {1 - e^{-C}}.

    For the same complexity term it is never tighter than the kl bound, since
    :math:`\mathrm{kl}(q\|p) = \sup_C [-\ln(1 - p(1 - e^{-C})) - Cq]`. Choosing C after
    seeing the data needs a union bound: :func:`catoni_grid`. Reference: Catoni (2007),
    "PAC-Bayesian supervised classification", Theorem 1.2.6; Germain et al., ICML 2009.
    """
    check_range("C", C, 0.0, math.inf, lo_open=True, hi_open=True)
    xp, emp_risk, kl, n, delta = _inputs(emp_risk, kl, n, delta)
    (C,) = as_float(xp, C)
    exponent = -C * emp_risk - (kl - xp.log(delta)) / n
    return (xp.expm1(exponent) / xp.expm1(-C))[()]


def catoni_grid(
    emp_risk: ArrayLike,
    kl: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    grid: ArrayLike = DEFAULT_CATONI_GRID,
) -> ArrayLike:
    r"""Catoni's bound minimised over a finite grid of g values of C, union-bound cost paid.

    .. math::  L(Q) \le \min_{C \in \mathcal{C}} \mathrm{Catoni}(C;\ \delta / g),

    i.e. :math:`\ln(1/\delta)` becomes :math:`\ln(g/\delta)`. The grid must be fixed before
    seeing the data (default :data:`DEFAULT_CATONI_GRID`).
    """
    xp = namespace(emp_risk, kl, n, delta, grid)
    check_range("grid", grid, 0.0, math.inf, lo_open=True, hi_open=True)      # before as_float, which parses text
    (grid_arr,) = as_float(xp, grid)
    if grid_arr.ndim != 1 or grid_arr.shape[0] < 1:
        raise ValueError("argument 'grid' must be a non-empty 1-d sequence of C values")
    check_delta("delta", delta)
    g = grid_arr.shape[0]
    share = divide_down(float(delta), g) if xp is np and np.ndim(delta) == 0 else xp.asarray(delta) / g
    values = catoni(
        xp.expand_dims(xp.asarray(emp_risk), -1),
        xp.expand_dims(xp.asarray(kl), -1),
        xp.expand_dims(xp.asarray(n), -1),
        share,
        grid_arr,
    )
    return xp.min(values, axis=-1)[()]


def sample_convergence(mc_risk: ArrayLike, m: ArrayLike, delta: ArrayLike) -> ArrayLike:
    r"""Certify a Monte Carlo estimate of a stochastic predictor's empirical risk.

    With ``m`` independent [0,1]-valued losses whose mean has expectation equal to the
    quantity to certify, with probability at least ``1 - delta``

    .. math::  \hat L(Q) \le \mathrm{kl}^{-1}_{\uparrow}\big(\hat Q_m, \ln(2/\delta)/m\big).

    Langford & Caruana (2002), "(Not) bounding the true error", NIPS 14, Theorem 2.5 (with
    the two-sided ln(2/delta), as in DR17 and PBB). Two uses: ``m`` weight samples each
    evaluated on the whole bound set (the classic way), or ``m = n * r`` losses each with
    its own weight draw (the Chernoff-kl bound holds for independent, non-identical
    variables; Hoeffding 1963).
    """
    check_probability("mc_risk", mc_risk)
    check_count("m", m)
    check_delta("delta", delta)
    xp = namespace(mc_risk, m, delta)
    mc_risk, m, delta = as_float(xp, mc_risk, m, delta)
    return kl_inv_upper(mc_risk, (math.log(2.0) - xp.log(delta)) / m)


# ---------------------------------------------------------------------------------------
# Union bounds over priors.


def prior_grid_parameters(prior_grid: Any) -> tuple[float, float]:
    r"""``(b, c)`` of a Dziugaite & Roy grid :math:`c\, e^{-j/b}`, both finite and > 0, else one ValueError naming
    argument 'prior_grid'."""
    if np.shape(prior_grid) != (2,):
        raise ValueError(f"argument 'prior_grid' must be (b, c), got {prior_grid!r}")
    check_range("prior_grid", prior_grid, 0.0, math.inf, lo_open=True, hi_open=True)
    b, c = prior_grid
    return float(b), float(c)


def prior_grid_index(scale: ArrayLike, b: float = 100.0, c: float = 0.1) -> ArrayLike:
    r"""Real-valued grid position :math:`j = b \ln(c / \lambda)` of a prior scale lambda.

    Dziugaite & Roy (2017), "Computing nonvacuous generalization bounds for deep (stochastic)
    neural networks with many more parameters than training data", UAI, Section 4: the
    prior scale is restricted to :math:`\lambda_j = c\, e^{-j/b}`, j = 0, 1, 2, ...; a
    learned scale is rounded to a neighbouring integer j (:func:`prior_grid_scale`) before
    the bound is computed with :func:`prior_grid_delta`.
    """
    check_range("scale", scale, 0.0, math.inf, lo_open=True, hi_open=True)
    xp = namespace(scale)
    (scale,) = as_float(xp, scale)
    return (b * (math.log(c) - xp.log(scale)))[()]


def prior_grid_scale(j: ArrayLike, b: float = 100.0, c: float = 0.1) -> ArrayLike:
    r"""Grid value :math:`\lambda_j = c\, e^{-j/b}` for integer ``j >= 0``."""
    check_range("j", j, 0.0, math.inf, hi_open=True)
    xp = namespace(j)
    (j,) = as_float(xp, j)
    return (c * xp.exp(-j / b))[()]


#: A float64 above pi^2 (9.86960440108935861883449099987615113531...; fl(pi^2) is below it): the grid's shares,
#: rounded down from delta 6 / (pi^2 (j+1)^2) with it, sum to at most delta over all j.
_PI2_UP = math.nextafter(math.pi**2, math.inf)
assert Fraction(_PI2_UP) > Fraction("9.869604401089358618834490999876152")      # pi^2 rounded up at 34 digits


def prior_grid_delta(delta: float, j: int) -> float:
    r"""Share of ``delta`` given to grid point ``j >= 0``: :math:`\delta \cdot 6 / (\pi^2 (j+1)^2)`.

    The shares sum to ``delta`` over j = 0, 1, 2, ..., so a bound computed at
    ``prior_grid_delta(delta, j)`` holds for every grid point simultaneously with
    probability ``1 - delta``; the cost over ``ln(1/delta)`` is
    :math:`\ln(\pi^2 (j+1)^2 / 6)`. Dziugaite & Roy (2017) index from j = 1 and add
    :math:`2\ln j`; their released code breaks (NaN) when the rounded index is <= 0
    (pacbayes-opt issues #3, #5). Indexing from 0 with (j+1) keeps every grid point valid.
    """
    check_delta("delta", delta)
    check_scalar("j", j)
    check_count("j", j, minimum=0)
    m = (int(j) + 1) ** 2
    if m > 2**53:                                       # beyond float64's exact integers: exact arithmetic
        return float_at_most(Fraction(float(delta)) * 6 / (Fraction(_PI2_UP) * m))
    share = float(delta) * 6.0 / (_PI2_UP * m)         # three roundings, each within half an ulp: 4 ulps down
    for _ in range(4):
        share = math.nextafter(share, 0.0)
    return share


def union_delta(delta: float, k: int) -> float:
    """Share of ``delta`` for each of ``k`` priors fixed in advance: ``delta / k`` rounded down (cost ln k)."""
    check_delta("delta", delta)
    check_scalar("k", k)
    check_count("k", k)
    return divide_down(float(delta), int(k))


def dp_max_information(epsilon: float, n: int, beta: float) -> float:
    r"""Beta-approximate max-information (nats) of an epsilon-differentially private mechanism run on
    n i.i.d. examples (Dwork, Feldman, Hardt, Pitassi, Reingold & Roth 2015, "Generalization in
    adaptive data analysis and holdout reuse", NeurIPS, Theorem 20; replace-one neighbours):

    .. math::  k(\varepsilon, n, \beta) = \frac{n\varepsilon^2}{2}
               + \varepsilon\sqrt{\frac{n\ln(2/\beta)}{2}}.
    """
    check_scalar("epsilon", epsilon)
    check_nonnegative("epsilon", epsilon)
    if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1):
        raise ValueError(f"argument 'n' must be an integer >= 1, got {n!r}")
    check_scalar("beta", beta)
    check_delta("beta", beta)
    return n * epsilon**2 / 2 + epsilon * math.sqrt(n * math.log(2 / beta) / 2)


def dp_prior_kl_adjustment(epsilon: float, n: int, delta: float) -> float:
    r"""Nats added to KL(Q||P) in any fixed-prior PAC-Bayes bound when the prior P(S) is drawn by an
    epsilon-DP mechanism on the bound's own sample S (n examples): ln 2 + k(epsilon, n, delta/2).

    Dziugaite & Roy (2018), "Data-dependent PAC-Bayes priors via differential privacy", NeurIPS,
    through max-information: with k the delta/2-approximate max-information
    (:func:`dp_max_information`), an event of probability <= delta' under an independent prior has
    probability <= e^k delta' + delta/2 under P(S) (Dwork et al. 2015, Theorem 13). Running the
    fixed-prior bound at delta' = (delta/2) e^{-k} turns ln(2 sqrt(n)/delta') into
    ln(2 sqrt(n)/delta) + ln 2 + k, so for the kl bound

    .. math::  \mathrm{kl}(\hat L_S(Q)\|L_D(Q)) \le \frac{KL(Q\|P(S)) + \ln(4\sqrt n/\delta)}{n}
               + \frac{\varepsilon^2}{2} + \varepsilon\sqrt{\frac{\ln(4/\delta)}{2n}}.

    At epsilon = 0 the bound is still ln 2 / n looser than the plain one (the delta/2 spent on the
    transfer). The mechanism must be exactly epsilon-DP (pure DP).
    """
    check_scalar("delta", delta)
    check_delta("delta", delta)
    return math.log(2.0) + dp_max_information(epsilon, n, delta / 2)
