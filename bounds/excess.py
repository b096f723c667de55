r"""The test-set bound of a reference network, and certificates of a posterior's excess loss over it.

Setting: ``h_ref`` is a deterministic network fixed before the ``n`` examples of the bound set were drawn (for
instance trained on a prior split); it makes ``k`` errors there. For a posterior ``Q`` and ``h ~ Q`` the excess
loss on an example is ternary, :math:`Z = \ell(h) - \ell(h_\mathrm{ref}) \in \{-1, 0, 1\}`, and on the bound set

.. math::

    \hat d^+ = \mathbb{E}_Q \tfrac1n \#\{Z = +1\} \;(Q \text{ wrong, } h_\mathrm{ref} \text{ right}), \qquad
    \hat d^- = \mathbb{E}_Q \tfrac1n \#\{Z = -1\}, \qquad
    \mathbb{E}_Q \hat L(h) = k/n + \hat d^+ - \hat d^-.

* :func:`test_set_bound`: the exact binomial (Clopper-Pearson) bound on ``L(h_ref)`` from ``k`` and ``n``.
* :func:`split_kl_excess` (Wu & Seldin 2022) and :func:`unexpected_bernstein_excess` (Mhammedi, Grünwald &
  Guedj 2019) bound :math:`\mathbb{E}_Q L(h) - L(h_\mathrm{ref})` for all posteriors at once.
* :func:`ternary_rates` / :func:`certify_ternary_draws`: the Monte Carlo step, certifying
  :math:`\hat d^+` from above and :math:`\hat d^-` from below from per-example posterior draws.
* :func:`excess_certificate`: :math:`C = \mathrm{TS}(h_\mathrm{ref}; \delta_\mathrm{ref}) + \min(0,
  \mathrm{EX}(Q; \delta_\mathrm{ex}))`. It holds with probability at least
  :math:`1 - \delta_\mathrm{ref} - \delta_\mathrm{ex} (- \delta_\mathrm{mc})` (union bound) and certifies ``Q``
  when the excess bound is negative, ``h_ref`` otherwise; it is never above the test-set bound at
  :math:`\delta_\mathrm{ref}`.

``h_ref``, the prior, and every grid must be fixed without the bound set. Everything here is float64 and errs
upward (a lower inverse, which is subtracted, errs downward).
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import special

from ._array import (
    ArrayLike,
    check_count,
    check_delta,
    check_nonnegative,
    check_probability,
    check_range,
    check_scalar,
    check_share_total,
    float_at_least,
    round_up,
)
from .kl import kl_inv_lower, kl_inv_upper

__all__ = [
    "ExcessCertificate",
    "SplitKLExcess",
    "TernaryRates",
    "UnexpectedBernsteinBound",
    "certify_ternary_draws",
    "check_ternary_counts",
    "ternary_count_limits",
    "excess_certificate",
    "split_kl_excess",
    "ternary_rates",
    "test_set_bound",
    "unexpected_bernstein",
    "unexpected_bernstein_excess",
    "unexpected_bernstein_grid",
]

#: Upward margins on SciPy's beta quantile: a relative QUANTILE_N_EPS * n * eps plus QUANTILE_ULPS ulps. Measured
#: against 60-digit mpmath, ``betainccinv`` is within 4 ulps for n <= 1e5 at delta = 0.025, off by up to 0.045 n eps
#: relative for k <= 10 errors and n >= 1e6 (9e-9 at n = 1e9, k = 1), and by about 1.5 n eps near p = 1/2 at small
#: delta; tests/test_excess.py and tests/test_excess_hostile.py check the raised value in these regimes. The raised
#: value must also pass SciPy's binomial cdf (at most delta, no tolerance), or the kl form is returned.
QUANTILE_ULPS = 64
#: The relative margin is QUANTILE_N_EPS * n machine epsilons: SciPy's quantile was measured low by up to about
#: 1.5 n eps near p = 1/2 at small delta (against exact rational tails).
QUANTILE_N_EPS = 4.0
#: Below this delta SciPy's quantile (and its binomial cdf) lose accuracy near float underflow: the kl form, which
#: is never below the exact bound, is returned instead (no failure was found at delta >= 1e-5).
QUANTILE_MIN_DELTA = 1e-5
#: The largest sample size the test-set bound accepts: float64 counts every example exactly up to 2**53.
MAX_N = 2**53
_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)


class _Record:
    """Results are frozen dataclasses; ``to_dict`` gives their fields as a JSON-ready dict."""

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def _upward(value: float, scale: float) -> float:
    """``value`` raised by 16 machine epsilons of ``scale``, the size of the terms it was summed from (a short float
    sum whose terms may cancel is off by a few epsilons of its terms, not of its result)."""
    return float(value + 16.0 * _EPS * scale + _TINY)


def _check_errors(k_errors: ArrayLike, n: ArrayLike, name: str = "k_errors") -> None:
    check_count("n", n)
    check_count(name, k_errors, minimum=0)
    check_range(name, k_errors, 0.0, float(n))


# ---------------------------------------------------------------------------------------------- test-set bound


def test_set_bound(k_errors: int, n: int, delta: float) -> float:
    r"""Exact binomial (Clopper-Pearson) upper confidence bound on the risk of one fixed predictor.

    .. math::

        \overline{\mathrm{Bin}}(n, k, \delta) = \max\{p \in [0, 1] : P(\mathrm{Bin}(n, p) \le k) \ge \delta\},

    the upper :math:`\delta`-quantile of Beta(k + 1, n - k), since :math:`P(\mathrm{Bin}(n, p) \le k) =
    P(\mathrm{Beta}(k + 1, n - k) > p)`; ``k = n`` gives 1. With probability at least ``1 - delta`` over ``n``
    i.i.d. examples, a predictor fixed before they were drawn has risk at most this value (Langford 2005, JMLR 6,
    Section 3, the test set bound; Clopper & Pearson 1934). No early stopping, selection or calibration on these
    examples is allowed.

    Never looser than the kl form :math:`\mathrm{kl}^{-1}_{\uparrow}(k/n, \ln(1/\delta)/n)` (Chernoff:
    :math:`P(\mathrm{Bin}(n,p) \le k) \le e^{-n\,\mathrm{kl}(k/n\|p)}` for :math:`p \ge k/n`; equal at ``k = 0``):
    0.081194 against 0.082377 at n = 30000, k = 2343, delta = 0.025. At least ``k / n`` when ``delta <= 1/2``.

    Float64, never below the exact value: SciPy's beta quantile (``betainccinv``) raised by a relative ``n`` machine
    epsilons times :data:`QUANTILE_N_EPS` and :data:`QUANTILE_ULPS` ulps, and never above the
    kl form computed from upward-rounded inputs (itself never below the exact bound), which is also returned if
    SciPy's quantile fails (non-finite, or its binomial cdf is above delta at the raised value and at two wider
    margins, 16 and 256 times the first).

    Args:
        k_errors: errors on the held-out examples, a whole number in [0, n].
        n: number of held-out examples, >= 1.
        delta: confidence parameter in (0, 1).
    """
    _check_errors(k_errors, n)
    check_delta("delta", delta)
    for name, x in (("k_errors", k_errors), ("n", n), ("delta", delta)):
        check_scalar(name, x)
    k, n, delta = int(k_errors), int(n), float(delta)
    _check_max_n(n)
    return float(_test_set_bounds(np.array([k], np.int64), np.array([n], np.int64), delta)[0])


# A library function whose name starts with "test": tell pytest not to collect it where it is imported.
test_set_bound.__test__ = False  # type: ignore[attr-defined]


def _check_max_n(n: int) -> None:
    if n > MAX_N:
        raise ValueError(f"argument 'n' must be at most 2**53 = {MAX_N} (float64 counts every example exactly up to "
                         f"there), got {n}")


def _test_set_bounds(k: np.ndarray, n: np.ndarray, delta: float) -> np.ndarray:
    """:func:`test_set_bound` elementwise over integer arrays ``k`` (errors) and ``n`` (sizes) of one shape, at one
    ``delta`` (checked here, unless the arrays are empty: in (0, 1); and every ``n`` at most :data:`MAX_N`, the first
    above it refused by name);
    ``0 <= k <= n`` and ``n >= 1`` are the caller's to ensure. The same float operations as the scalar bound, entry by
    entry: SciPy's quantile raised by the margins, its binomial cdf checked at up to three widenings (each entry
    takes the first that passes), the min with the kl form; ``k == n`` gives 1."""
    k, n = np.asarray(k, np.int64), np.asarray(n, np.int64)
    if k.size == 0:                      # nothing to bound (as a loop of test_set_bound calls: nothing checked)
        return np.ones(k.shape, np.float64)
    delta = float(delta)
    if not 0.0 < delta < 1.0:
        check_delta("delta", delta)
    if n.max() > MAX_N:
        _check_max_n(int(n[n > MAX_N].flat[0]))
    todo = k != n
    if not todo.all():                   # k == n gives 1; the rest as below
        out = np.ones(k.shape, np.float64)
        if todo.any():
            out[todo] = _test_set_bounds(k[todo], n[todo], delta)
        return out
    kl_form = _kl_test_set_bounds(k, n, delta)
    if delta < QUANTILE_MIN_DELTA:
        return kl_form
    kf, nf = k.astype(np.float64), n.astype(np.float64)
    q = special.betainccinv(kf + 1.0, nf - kf, delta)
    res = kl_form
    left = np.ones(k.shape, bool)        # entries whose cdf check has not passed yet
    for widen in (1, 16, 256):           # SciPy's cdf can sit a few 1e-14 above delta at the first raised value
        p = round_up(q * (1.0 + widen * QUANTILE_N_EPS * nf * _EPS), widen * QUANTILE_ULPS)
        ok = left & np.isfinite(p) & (0.0 < p) & (p <= 1.0)
        ok[ok] = special.bdtr(k[ok], n[ok], p[ok]) <= delta
        res = np.where(ok, np.where(kl_form < p, kl_form, p), res)      # min(p, kl_form), p first
        left &= ~ok
        if not left.any():
            break
    return res


def _kl_test_set_bounds(k: np.ndarray, n: np.ndarray, delta: float) -> np.ndarray:
    """kl^-1,+(k/n, ln(1/delta)/n) elementwise with k/n and the right-hand side rounded up (the upper inverse
    increases in both), so that it is never below the exact kl form, which is never below the binomial bound."""
    kf, nf = k.astype(np.float64), n.astype(np.float64)
    ratio = kf / nf
    q = np.where((0 < k) & (k < n), np.nextafter(ratio, 1.0), ratio)
    return np.asarray(kl_inv_upper(q, round_up(-math.log(delta) / nf, 4)), np.float64)


# ---------------------------------------------------------------------------------------------- split-kl


@dataclass(frozen=True)
class SplitKLExcess(_Record):
    """A PAC-Bayes-split-kl bound on E_Q L(h) - L(h_ref) (see :func:`split_kl_excess`).

    Fields: ``value`` (the bound, rounded up), its inputs ``d_plus``, ``d_minus``, ``kl``, ``n``, ``delta``,
    ``n_priors`` (union bound over priors fixed in advance), ``epsilon`` (the right-hand side of both kl
    inversions), ``plus_upper`` (kl^-1,+(d_plus, epsilon), the bound on the population rate of Z = +1),
    ``minus_lower`` (kl^-1,-(d_minus, epsilon), the lower bound on that of Z = -1), ``method``.
    """

    value: float
    d_plus: float
    d_minus: float
    kl: float
    n: int
    delta: float
    n_priors: int
    epsilon: float
    plus_upper: float
    minus_lower: float
    method: str = "split_kl"


def split_kl_excess(d_plus: float, d_minus: float, kl: float, n: int, delta: float, *,
                    n_priors: int = 1) -> SplitKLExcess:
    r"""PAC-Bayes-split-kl bound on the excess loss of a posterior over a fixed reference, for Z in {-1, 0, 1}.

    Split at the middle value :math:`\mu = 0` (range a = -1, b = 1): :math:`Z = Z^+ - Z^-` with
    :math:`Z^+ = 1[Z = +1]`, :math:`Z^- = 1[Z = -1]`, two binary variables. With probability at least
    ``1 - delta``, for all posteriors Q at once,

    .. math::

        \mathbb{E}_Q L(h) - L(h_\mathrm{ref}) \le \mathrm{kl}^{-1}_{\uparrow}(\hat d^+, \varepsilon)
            - \mathrm{kl}^{-1}_{\downarrow}(\hat d^-, \varepsilon), \qquad
        \varepsilon = \frac{\mathrm{KL}(Q\|P) + \ln(4 K \sqrt{n} / \delta)}{n}.

    Each part is the PAC-Bayes-kl inequality at ``delta / 2`` (Seeger 2002; Maurer 2004:
    :math:`\mathbb{E}\, e^{n\,\mathrm{kl}} \le 2\sqrt n`), which bounds :math:`\mathrm{kl}(\hat d \| d)` and so gives
    an upper inverse for :math:`d^+` and a lower one for :math:`d^-`; ``K = n_priors`` pays for a prior chosen
    among K fixed in advance (``delta / K``). Wu & Seldin (2022), "Split-kl and PAC-Bayes-split-kl inequalities
    for ternary random variables", NeurIPS 35: the PAC-Bayes-split-kl inequality (Theorem 7 of the submitted text).

    The bound increases in ``d_plus`` and decreases in ``d_minus``, so Monte Carlo bounds
    (:attr:`TernaryRates.d_plus_upper`, :attr:`TernaryRates.d_minus_lower`) may replace the exact rates, at the
    Monte Carlo step's extra delta. Rounding: epsilon up, the upper inverse up, the lower inverse down, the
    difference up.

    Args:
        d_plus: E_Q of the fraction of bound examples where h errs and h_ref does not, in [0, 1].
        d_minus: E_Q of the fraction where h_ref errs and h does not, in [0, 1].
        kl: KL(Q||P) in nats (finite, >= 0).
        n: bound-set size.
        delta: this bound's share of the confidence budget.
        n_priors: number of priors fixed in advance among which P was chosen.
    """
    check_probability("d_plus", d_plus)
    check_probability("d_minus", d_minus)
    check_nonnegative("kl", kl)
    check_count("n", n)
    check_delta("delta", delta)
    check_count("n_priors", n_priors)
    n, n_priors = int(n), int(n_priors)
    log_term = math.fsum((float(kl), math.log(4.0), math.log(n_priors), 0.5 * math.log(n), -math.log(delta)))
    eps = round_up(log_term / n)
    plus_upper = float(kl_inv_upper(float(d_plus), eps))
    minus_lower = float(kl_inv_lower(float(d_minus), eps))
    return SplitKLExcess(value=round_up(plus_upper - minus_lower), d_plus=float(d_plus), d_minus=float(d_minus),
                         kl=float(kl), n=n, delta=float(delta), n_priors=n_priors, epsilon=eps,
                         plus_upper=plus_upper, minus_lower=minus_lower)


# ---------------------------------------------------------------------------------------------- Unexpected Bernstein


@dataclass(frozen=True)
class UnexpectedBernsteinBound(_Record):
    """A PAC-Bayes-Unexpected-Bernstein bound (see :func:`unexpected_bernstein`).

    Fields: ``value`` (the bound, rounded up, at most ``b``), its inputs ``mean``, ``second_moment``, ``kl``, ``n``,
    ``delta``, ``b``, ``n_priors``; ``etas`` (the grid, paid for with a union bound), ``grid_size`` (its size),
    ``eta`` (the grid point that gave the minimum); ``d_plus`` / ``d_minus`` when built from ternary rates
    (:func:`unexpected_bernstein_excess`), else None; ``method``.
    """

    value: float
    mean: float
    second_moment: float
    kl: float
    n: int
    delta: float
    b: float
    n_priors: int
    etas: tuple[float, ...]
    grid_size: int
    eta: float
    d_plus: float | None = None
    d_minus: float | None = None
    method: str = "unexpected_bernstein"


def unexpected_bernstein_grid(n: int, delta: float, b: float = 1.0) -> tuple[float, ...]:
    r"""The eta grid of Mhammedi, Grünwald & Guedj (2019): :math:`\eta_i = 1 / (b\, 2^i)`, ``i = 1..k``, with
    :math:`k = \lceil \log_2(\tfrac12 \sqrt{n / \ln(1/\delta)}) \rceil` (at least 1). It depends on ``n`` and
    ``delta`` only, so it is fixed before the data; :func:`unexpected_bernstein` pays ``ln k`` for it.
    """
    check_count("n", n)
    check_delta("delta", delta)
    check_range("b", b, 0.0, math.inf, lo_open=True, hi_open=True)
    k = max(1, math.ceil(math.log2(0.5 * math.sqrt(int(n) / math.log(1.0 / float(delta))))))
    return tuple(1.0 / (float(b) * 2.0**i) for i in range(1, k + 1))


def _ub_coefficient(eta: np.ndarray, b: float) -> np.ndarray:
    r""":math:`\psi(-\eta b) / (\eta b^2)` with :math:`\psi(u) = u - \ln(1 + u)`, i.e.
    :math:`(-\eta b - \ln(1 - \eta b)) / (\eta b^2) \ge 0`."""
    x = eta * b
    return (-x - np.log1p(-x)) / (eta * b * b)


def unexpected_bernstein(mean: float, second_moment: float, kl: float, n: int, delta: float, *, b: float = 1.0,
                         etas: tuple[float, ...] | None = None, n_priors: int = 1) -> UnexpectedBernsteinBound:
    r"""PAC-Bayes-Unexpected-Bernstein bound on :math:`\mathbb{E}_Q L` for a loss bounded above by ``b``.

    With probability at least ``1 - delta``, for all posteriors Q at once,

    .. math::

        \mathbb{E}_Q L \le \min_{\eta \in G} \Big[\mathbb{E}_Q \hat L + \frac{\psi(-\eta b)}{\eta b^2}\,
            \mathbb{E}_Q \hat V + \frac{\mathrm{KL}(Q\|P) + \ln(|G| K / \delta)}{\eta n}\Big],
        \qquad \psi(u) = u - \ln(1 + u),

    where :math:`\hat V = \frac1n \sum_i \ell_i^2` is the uncentred empirical second moment, ``G`` the grid of
    ``eta`` in (0, 1/b) (default :func:`unexpected_bernstein_grid`) and ``K = n_priors``; each grid point and prior
    gets ``delta / (|G| K)``. Mhammedi, Grünwald & Guedj (2019), "PAC-Bayes un-expected Bernstein inequality",
    NeurIPS 32, as stated by Wu & Seldin (2022, Theorem 6 of the submitted text) and computed in the authors' code.

    Why it holds: for :math:`Z \le b` and :math:`\eta \in (0, 1/b)`, :math:`u = \eta Z \le \eta b` and
    :math:`\psi(-u)/u^2` increases in ``u``, so :math:`e^{-u - \psi(-\eta b) u^2/(\eta b)^2} \le 1 - u` and
    :math:`\mathbb{E} \exp(\eta(\mathbb{E}Z - Z) - \psi(-\eta b) Z^2 / b^2) \le e^{\eta \mathbb{E}Z}(1 - \eta
    \mathbb{E}Z) \le 1`; over n i.i.d. examples, then Markov and the change of measure (Donsker-Varadhan).

    The value is clipped at ``b`` (``L <= b``) and raised by a few epsilons of the terms it sums.

    Args:
        mean: E_Q of the empirical mean loss, at most ``b``.
        second_moment: E_Q of the empirical mean squared loss, >= 0.
        kl: KL(Q||P) in nats. n: bound-set size. delta: this bound's share of the confidence budget.
        b: the loss is at most ``b`` (> 0). etas: the grid (each in (0, 1/b)). n_priors: priors fixed in advance.
    """
    check_range("b", b, 0.0, math.inf, lo_open=True, hi_open=True)
    b = float(b)
    check_range("mean", mean, -math.inf, b, lo_open=True)
    check_nonnegative("second_moment", second_moment)
    check_nonnegative("kl", kl)
    check_count("n", n)
    check_delta("delta", delta)
    check_count("n_priors", n_priors)
    if etas is not None and np.ndim(etas) != 1:
        raise ValueError(f"argument 'etas' must be a sequence of values in (0, 1/b), got {reprlib.repr(etas)}")
    grid = unexpected_bernstein_grid(n, delta, b) if etas is None else tuple(float(e) for e in etas)
    if not grid:
        raise ValueError("argument 'etas' must hold at least one value")
    if etas is None and not all(e > 0.0 for e in grid):
        raise ValueError(f"argument 'b' = {b!r} is too large: the default eta grid 1 / (b 2^i) underflows to 0")
    check_range("etas", grid, 0.0, 1.0 / b, lo_open=True, hi_open=True)
    n, n_priors, mean, second = int(n), int(n_priors), float(mean), float(second_moment)
    eta = np.asarray(grid)
    coef = _ub_coefficient(eta, b)
    comp = round_up(math.fsum((float(kl), math.log(len(grid)), math.log(n_priors), -math.log(delta))))
    terms = mean + coef * second + comp / (eta * n)
    i = int(np.argmin(terms))
    scale = abs(mean) + second * (coef[i] + 1.0 / b) + comp / (eta[i] * n)
    value = min(_upward(float(terms[i]), scale), b)
    return UnexpectedBernsteinBound(value=value, mean=mean, second_moment=second, kl=float(kl), n=n,
                                    delta=float(delta), b=b, n_priors=n_priors, etas=grid, grid_size=len(grid),
                                    eta=grid[i])


def unexpected_bernstein_excess(d_plus: float, d_minus: float, kl: float, n: int, delta: float, *,
                                etas: tuple[float, ...] | None = None, n_priors: int = 1) -> UnexpectedBernsteinBound:
    r"""PAC-Bayes-Unexpected-Bernstein bound on the ternary excess :math:`\mathbb{E}_Q L(h) - L(h_\mathrm{ref})`.

    :func:`unexpected_bernstein` with ``b = 1``, mean :math:`\hat d^+ - \hat d^-` and second moment
    :math:`\hat d^+ + \hat d^-` (:math:`Z^2 = 1[Z \ne 0]`):

    .. math::

        \min_{\eta \in G} \Big[(\hat d^+ - \hat d^-) + \frac{\psi(-\eta)}{\eta} (\hat d^+ + \hat d^-)
            + \frac{\mathrm{KL}(Q\|P) + \ln(|G| K / \delta)}{\eta n}\Big],

    default grid :math:`\eta_i = 2^{-i}` (:func:`unexpected_bernstein_grid`). The bound increases in ``d_plus``;
    it decreases in ``d_minus`` when every grid point has :math:`\psi(-\eta)/\eta \le 1` (eta up to about 0.797;
    0.386 at eta = 1/2), which :func:`excess_certificate` requires before it accepts Monte Carlo rates.

    Args: as :func:`split_kl_excess`, plus ``etas`` (the grid, each in (0, 1)).
    """
    check_probability("d_plus", d_plus)
    check_probability("d_minus", d_minus)
    d_plus, d_minus = float(d_plus), float(d_minus)
    bound = unexpected_bernstein(d_plus - d_minus, d_plus + d_minus, kl, n, delta, etas=etas, n_priors=n_priors)
    return replace(bound, d_plus=d_plus, d_minus=d_minus)


# ---------------------------------------------------------------------------------------------- Monte Carlo step


@dataclass(frozen=True)
class TernaryRates(_Record):
    """Monte Carlo bounds on E_Q d+ (from above) and E_Q d- (from below) from posterior draws (see
    :func:`ternary_rates`).

    Fields: ``plus_draws`` / ``minus_draws`` (draws with Z = +1 / -1), ``draws`` (all draws, m), ``delta`` (the
    Monte Carlo share; delta / 2 per side), ``d_plus`` / ``d_minus`` (the fractions of draws), ``d_plus_upper`` /
    ``d_minus_lower`` (the certified bounds), ``examples`` (bound examples the draws cover, R = draws / examples
    each; None when not recorded).
    """

    plus_draws: int
    minus_draws: int
    draws: int
    delta: float
    d_plus: float
    d_minus: float
    d_plus_upper: float
    d_minus_lower: float
    examples: int | None = None

    def risk_upper(self, reference_errors: int, n: int) -> float:
        r"""A bound on the posterior's empirical (Gibbs) risk through the reference, :math:`\mathbb{E}_Q \hat L
        \le k/n + d^+_\mathrm{up} - d^-_\mathrm{lo}` (exact identity :math:`\mathbb{E}_Q \hat L = k/n + \hat d^+ -
        \hat d^-`; ``h_ref`` is deterministic, so its ``k`` errors need no Monte Carlo), holding with the rates'
        probability; usually tighter than a direct Monte Carlo bound on the Gibbs risk. The draws must cover the
        ``n`` examples equally (``draws`` a multiple of ``n``)."""
        _check_errors(reference_errors, n, "reference_errors")
        if (self.examples is not None and int(n) != self.examples) or self.draws % int(n):
            raise ValueError(f"argument 'n' ({n}) must be the number of examples the {self.draws} draws cover "
                             f"equally (recorded: {self.examples})")
        _check_rates_counts(self, int(reference_errors), int(n))
        k_over_n = int(reference_errors) / int(n)
        total = k_over_n + self.d_plus_upper - self.d_minus_lower
        return min(max(_upward(total, k_over_n + self.d_plus_upper + self.d_minus_lower), 0.0), 1.0)


def check_ternary_counts(plus_draws: int, minus_draws: int, draws: int, k_errors: int, n: int, *,
                         names: tuple[str, str] = ("plus_draws", "minus_draws")) -> None:
    """Per-example draw counts against h_ref's ``k_errors`` on the ``n`` examples they cover (R = draws / n draws
    each): a draw with Z = -1 needs h_ref wrong on its example, so at most k R of them; one with Z = +1 needs h_ref
    right, so at most (n - k) R. ``names`` are the arguments the two counts came in (refusals name them)."""
    reps = int(draws) // int(n)
    k, n = int(k_errors), int(n)
    most_plus, most_minus = ternary_count_limits(draws, k, n)
    if int(minus_draws) > most_minus:
        raise ValueError(f"argument {names[1]!r} has {minus_draws} draws with Z = -1, but h_ref's {k} errors allow "
                         f"at most {most_minus} ({reps} draws per example): the draws and the error count cannot come "
                         "from the same bound set")
    if int(plus_draws) > most_plus:
        raise ValueError(f"argument {names[0]!r} has {plus_draws} draws with Z = +1, but the {n - k} examples where "
                         f"h_ref is right allow at most {most_plus} ({reps} draws per example): the draws and "
                         "the error count cannot come from the same bound set")


def ternary_count_limits(draws: int, k_errors: int, n: int) -> tuple[int, int]:
    """The most draws with Z = +1 and with Z = -1 that ``draws`` per-example draws (R = draws // n on each of the
    ``n`` examples) can hold when h_ref errs on ``k_errors`` of them: ``((n - k) R, k R)``."""
    reps = int(draws) // int(n)
    return (int(n) - int(k_errors)) * reps, int(k_errors) * reps


def _check_rates_counts(rates: TernaryRates, k: int, n: int) -> None:
    """:func:`check_ternary_counts` for a :class:`TernaryRates` record (refusals name argument 'rates')."""
    check_ternary_counts(rates.plus_draws, rates.minus_draws, rates.draws, k, n, names=("rates", "rates"))


def ternary_rates(plus_draws: int, minus_draws: int, draws: int, delta: float, *,
                  examples: int | None = None) -> TernaryRates:
    r"""Certify the posterior's ternary rates from ``m = draws`` independent posterior draws.

    Per-example draws: a fresh :math:`h_{i,r} \sim Q` for every bound example ``i`` and repeat ``r = 1..R``
    (``m = nR``), drawn after all training and selection. Given the bound set the indicators
    :math:`1[Z_{i,r} = \pm 1]` are independent, not identically distributed, and their mean has expectation
    :math:`\hat d^\pm`; the kl-Chernoff bound for independent [0, 1] variables (Hoeffding 1963, Theorem 1) gives,
    with probability at least ``1 - delta`` (``delta / 2`` per side),

    .. math::

        \hat d^+ \le \mathrm{kl}^{-1}_{\uparrow}(\tilde d^+, \ln(2/\delta)/m), \qquad
        \hat d^- \ge \mathrm{kl}^{-1}_{\downarrow}(\tilde d^-, \ln(2/\delta)/m),

    with :math:`\tilde d^\pm` the fractions of draws with :math:`Z = \pm 1` (Monte Carlo step of Wu, Zhang,
    Chérief-Abdellatif & Seldin 2024, "Recursive PAC-Bayes", NeurIPS 37, Section 5.1.3, applied to each part).
    Not for full passes (one ``h`` for all examples): their draws are not independent across examples.

    Args:
        plus_draws: draws with Z = +1 (h wrong, h_ref right). minus_draws: draws with Z = -1.
        draws: all draws, m >= 1. delta: the Monte Carlo share of the confidence budget.
        examples: the number of bound examples the draws cover (recorded; must divide ``draws``).
    """
    check_count("draws", draws)
    m = int(draws)
    check_count("plus_draws", plus_draws, minimum=0)
    check_range("plus_draws", plus_draws, 0.0, float(m))
    check_count("minus_draws", minus_draws, minimum=0)
    check_range("minus_draws", minus_draws, 0.0, float(m - int(plus_draws)))
    check_delta("delta", delta)
    if examples is not None:
        check_count("examples", examples)
        if m % int(examples):
            raise ValueError(f"argument 'examples' ({examples}) must divide 'draws' ({m}): every example gets the "
                             "same number of draws")
        examples = int(examples)
    plus, minus = int(plus_draws), int(minus_draws)
    eps = round_up(math.log(2.0 / float(delta)) / m)
    # the fractions rounded outward (the upper inverse increases in q, the lower one too)
    q_plus = float(np.nextafter(plus / m, 1.0)) if 0 < plus < m else plus / m
    q_minus = float(np.nextafter(minus / m, 0.0)) if 0 < minus < m else minus / m
    return TernaryRates(plus_draws=plus, minus_draws=minus, draws=m, delta=float(delta), d_plus=plus / m,
                        d_minus=minus / m, d_plus_upper=float(kl_inv_upper(q_plus, eps)),
                        d_minus_lower=float(kl_inv_lower(q_minus, eps)), examples=examples)


def _zero_one(name: str, x: np.ndarray) -> None:
    bad = ~np.isin(x, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"argument {name!r} must hold 0-1 losses (0 or 1), got {x[bad].flat[0]!r}")


def certify_ternary_draws(posterior_losses: ArrayLike, reference_losses: ArrayLike, delta: float) -> TernaryRates:
    """:func:`ternary_rates` from the 0-1 losses of per-example posterior draws.

    Args:
        posterior_losses: ``[n, R]`` 0-1 losses, entry ``(i, r)`` of an independent posterior draw on example i.
        reference_losses: ``[n]`` 0-1 losses of the reference network.
        delta: the Monte Carlo share of the confidence budget.
    """
    post = np.asarray(posterior_losses, dtype=np.float64)
    refl = np.asarray(reference_losses, dtype=np.float64)
    if post.ndim != 2 or post.size == 0:
        raise ValueError(f"argument 'posterior_losses' must be a non-empty [n, R] array, got shape {post.shape}")
    if refl.shape != post.shape[:1]:
        raise ValueError(f"argument 'reference_losses' must have shape ({post.shape[0]},), got {refl.shape}")
    _zero_one("posterior_losses", post)
    _zero_one("reference_losses", refl)
    plus = int(np.sum((post == 1.0) & (refl[:, None] == 0.0)))
    minus = int(np.sum((post == 0.0) & (refl[:, None] == 1.0)))
    return ternary_rates(plus, minus, post.size, delta, examples=post.shape[0])


# ---------------------------------------------------------------------------------------------- combined certificate


@dataclass(frozen=True)
class ExcessCertificate(_Record):
    """``C = TS(h_ref; delta_reference) + min(0, EX(Q; delta_excess))`` with every share recorded.

    Fields: ``value`` (C, rounded up); ``certifies`` ("posterior" when the excess bound is negative: a bound on
    Q's risk; else "reference": the test-set bound of h_ref); ``method`` (of the excess bound);
    ``reference_bound`` (TS at delta_reference); ``excess_bound`` (EX); ``k_errors``, ``n``; ``delta`` (the total,
    the statement holds with probability >= 1 - delta), ``delta_reference``, ``delta_excess``,
    ``delta_monte_carlo`` (None without Monte Carlo); ``excess`` and ``rates``: the records they came from.
    """

    value: float
    certifies: str
    method: str
    reference_bound: float
    excess_bound: float
    k_errors: int
    n: int
    delta: float
    delta_reference: float
    delta_excess: float
    delta_monte_carlo: float | None
    excess: SplitKLExcess | UnexpectedBernsteinBound
    rates: TernaryRates | None = None

    @property
    def delta_parts(self) -> dict[str, float]:
        """The shares by name, as :class:`bounds.Certificate` records them."""
        parts = {"reference": self.delta_reference, "excess": self.delta_excess}
        if self.delta_monte_carlo is not None:
            parts["monte_carlo"] = self.delta_monte_carlo
        return parts


def _recomputed(excess: SplitKLExcess | UnexpectedBernsteinBound) -> SplitKLExcess | UnexpectedBernsteinBound:
    """The excess bound recomputed from its recorded inputs (a record edited by hand does not match)."""
    if isinstance(excess, SplitKLExcess):
        return split_kl_excess(excess.d_plus, excess.d_minus, excess.kl, excess.n, excess.delta,
                               n_priors=excess.n_priors)
    if excess.d_plus is not None and excess.d_minus is not None:
        return unexpected_bernstein_excess(excess.d_plus, excess.d_minus, excess.kl, excess.n, excess.delta,
                                           etas=excess.etas, n_priors=excess.n_priors)
    return unexpected_bernstein(excess.mean, excess.second_moment, excess.kl, excess.n, excess.delta, b=excess.b,
                                etas=excess.etas, n_priors=excess.n_priors)


def _check_monte_carlo(excess: SplitKLExcess | UnexpectedBernsteinBound, rates: TernaryRates, n: int) -> None:
    """The excess bound must have been computed from these certified rates, with a bound monotone in them."""
    if not isinstance(rates, TernaryRates) or rates != ternary_rates(
            rates.plus_draws, rates.minus_draws, rates.draws, rates.delta, examples=rates.examples):
        raise ValueError("argument 'rates' must be a TernaryRates from ternary_rates or certify_ternary_draws")
    if (rates.examples is not None and rates.examples != n) or rates.draws % n:
        raise ValueError(f"argument 'rates' must come from draws covering the n = {n} bound examples equally "
                         f"(draws {rates.draws}, examples {rates.examples})")
    if excess.d_plus != rates.d_plus_upper or excess.d_minus != rates.d_minus_lower:
        raise ValueError("argument 'rates' does not match 'excess': the excess bound must take d_plus = "
                         "rates.d_plus_upper and d_minus = rates.d_minus_lower")
    if isinstance(excess, UnexpectedBernsteinBound):
        coef = _ub_coefficient(np.asarray(excess.etas), 1.0)
        if (coef > 1.0).any():
            raise ValueError(f"argument 'excess' has etas with psi(-eta)/eta > 1 ({excess.etas[int(np.argmax(coef))]}"
                             "): the bound then grows with d_minus, so a lower bound on d_minus is not enough")


def excess_certificate(k_errors: int, n: int, excess: SplitKLExcess | UnexpectedBernsteinBound, delta_ref: float,
                       *, rates: TernaryRates | None = None, delta: float | None = None) -> ExcessCertificate:
    r"""The combined certificate :math:`C = \mathrm{TS}(h_\mathrm{ref}; \delta_\mathrm{ref}) +
    \min(0, \mathrm{EX}(Q; \delta_\mathrm{ex}))`, never above the test-set bound at :math:`\delta_\mathrm{ref}`.

    On the event where both :math:`L(h_\mathrm{ref}) \le \mathrm{TS}` (:func:`test_set_bound`, probability at least
    :math:`1 - \delta_\mathrm{ref}`) and :math:`\mathbb{E}_Q L(h) - L(h_\mathrm{ref}) \le \mathrm{EX}`
    (``excess``, at least :math:`1 - \delta_\mathrm{ex}`, or :math:`1 - \delta_\mathrm{ex} - \delta_\mathrm{mc}`
    with Monte Carlo ``rates``), :math:`\mathbb{E}_Q L \le \mathrm{TS} + \mathrm{EX}`; by the union bound the
    reported value holds with probability at least :math:`1 - \delta_\mathrm{ref} - \delta_\mathrm{ex}
    (- \delta_\mathrm{mc})`. It certifies Q when EX < 0 and h_ref otherwise (then C = TS). Beating the plain
    test-set bound at the full delta needs a certified negative excess larger than TS(delta_ref) - TS(delta)
    (0.000071 at n = 30000, k = 2343, delta_ref = 0.9 delta). The decomposition
    :math:`\mathbb{E}_Q L = \mathbb{E}_Q[L(h) - L(h_\mathrm{ref})] + L(h_\mathrm{ref})` is that of Mhammedi et al.
    (2019) and Wu & Seldin (2022) (Wu et al. 2024, "Recursive PAC-Bayes", eqs. (1)-(2) with gamma = 1); the
    reference's test-set event serves both the sum and the min.

    Args:
        k_errors, n: errors of h_ref on the n bound examples (the same examples as the excess bound's).
        excess: from :func:`split_kl_excess` or :func:`unexpected_bernstein_excess` (recomputed here from its
            recorded inputs; its ``delta`` is delta_ex).
        delta_ref: the test-set bound's share.
        rates: the Monte Carlo record the excess bound took its d_plus / d_minus from, if any.
        delta: the total budget, if given: the shares must not sum above it.
    """
    if not isinstance(excess, (SplitKLExcess, UnexpectedBernsteinBound)):
        raise ValueError(f"argument 'excess' must be a SplitKLExcess or UnexpectedBernsteinBound, "
                         f"got {type(excess).__name__}")
    _check_errors(k_errors, n)
    n = int(n)
    if excess.n != n:
        raise ValueError(f"argument 'n' ({n}) differs from the excess bound's n ({excess.n}): both must be the "
                         "same bound set")
    if isinstance(excess, UnexpectedBernsteinBound) and (excess.d_plus is None or excess.d_minus is None
                                                         or excess.b != 1.0):
        raise ValueError("argument 'excess' must be the ternary excess bound (split_kl_excess or "
                         "unexpected_bernstein_excess, range b = 1): a generic unexpected_bernstein record's moments "
                         "and range are not tied to Z in {-1, 0, 1}")
    if _recomputed(excess) != excess:
        raise ValueError("argument 'excess' does not match its recorded inputs")
    if excess.d_minus > int(k_errors) / n:
        raise ValueError(f"argument 'excess' has d_minus {excess.d_minus!r} above h_ref's error rate k/n = "
                         f"{int(k_errors) / n!r}: Z = -1 needs h_ref wrong, so they cannot come from the same "
                         "bound set")
    check_delta("delta_ref", delta_ref)
    if rates is not None:
        _check_monte_carlo(excess, rates, n)
        _check_rates_counts(rates, int(k_errors), n)
    shares = {"delta_ref": float(delta_ref), "excess.delta": excess.delta}
    if rates is not None:
        shares["rates.delta"] = rates.delta
    total = float_at_least(check_share_total(shares, delta))   # never below the exact sum of the shares
    ts = test_set_bound(k_errors, n, delta_ref)
    if excess.value < 0.0:
        value, certifies = max(0.0, min(ts, round_up(ts + excess.value))), "posterior"
    else:
        value, certifies = ts, "reference"
    return ExcessCertificate(value=value, certifies=certifies, method=excess.method, reference_bound=ts,
                             excess_bound=excess.value, k_errors=int(k_errors), n=n, delta=total,
                             delta_reference=float(delta_ref), delta_excess=excess.delta,
                             delta_monte_carlo=None if rates is None else rates.delta, excess=excess, rates=rates)
