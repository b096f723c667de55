"""Hostile review of bounds/excess.py: each test is a finding reproduced against it, kept as a regression test.

Exact references: the binomial tail in exact rational arithmetic (``fractions.Fraction``; a float ``p`` is a
rational number, so ``P(Bin(n, p) <= k)`` is computed with no rounding at all) and 60-digit mpmath.
"""

import math
from fractions import Fraction

import mpmath as mp
import pytest

from genbounds.bounds import (
    excess_certificate,
    split_kl_excess,
    ternary_rates,
    test_set_bound,
    unexpected_bernstein,
    unexpected_bernstein_excess,
)


def _binom_cdf_exact(k: int, n: int, p: float) -> Fraction:
    """P(Bin(n, p) <= k) exactly, for the float p (no rounding anywhere)."""
    p_ = Fraction(p)
    q_ = 1 - p_
    return sum(math.comb(n, j) * p_**j * q_ ** (n - j) for j in range(k + 1))


def _cdf_excess_over_delta(k: int, n: int, p: float, delta: float) -> float:
    """P(Bin(n, p) <= k) / delta - 1, exactly then rounded: > 0 means p is below the exact bound."""
    return float(_binom_cdf_exact(k, n, p) / Fraction(delta) - 1)


# ------------------------------------------------------------------------------------------ test-set bound: unsound

@pytest.mark.parametrize("k,n,delta", [(10, 55, 1e-6), (9, 48, 3.656918055006195e-06), (117, 352, 1e-10)])
def test_test_set_bound_never_below_clopper_pearson_at_small_delta(k, n, delta):
    # (10, 55, 1e-6) returns 0.5003972019467938; the exact bound is 0.50039720194679515645 (12 ulps higher)
    p = test_set_bound(k, n, delta)
    assert _cdf_excess_over_delta(k, n, p, delta) <= 0.0


@pytest.mark.parametrize("k,n,delta", [(10, 200, 1e-300), (16, 64, 1e-304), (100, 1000, 5e-324)])
def test_test_set_bound_tiny_delta_refused_or_sound(k, n, delta):
    # (10, 200, 1e-300): returns 0.9783483404655745, exact 0.97834834054754599 (8.2e-11 below);
    # (100, 1000, 5e-324): returns 0.6808718106983251, exact 0.68088021025847075 (8.4e-6 below)
    try:
        p = test_set_bound(k, n, delta)
    except ValueError as err:
        assert "delta" in str(err)
        return
    assert _cdf_excess_over_delta(k, n, p, delta) <= 0.0


# ------------------------------------------------------------------------------------------ combined certificate
# Inputs outside the theorem's assumptions that are accepted and give a certificate of 0.

def test_combined_refuses_d_minus_above_reference_error_rate():
    ex = split_kl_excess(0.0, 0.5, 0.0, 1000, 0.01)          # EX = -0.4222
    with pytest.raises(ValueError):
        excess_certificate(0, 1000, ex, 0.01)                 # returns value 0.0, certifies "posterior"


def test_combined_refuses_rates_inconsistent_with_reference_errors():
    rates = ternary_rates(0, 100, 1000, 0.01, examples=1000)   # R = 1: at most k = 5 draws can have Z = -1
    ex = split_kl_excess(rates.d_plus_upper, rates.d_minus_lower, 0.0, 1000, 0.01)
    with pytest.raises(ValueError):
        excess_certificate(5, 1000, ex, 0.01, rates=rates)     # returns 0.0 (TS alone is 0.01306)


def test_risk_upper_refuses_reference_errors_below_minus_draws():
    rates = ternary_rates(0, 500, 1000, 0.01, examples=1000)
    with pytest.raises(ValueError):
        rates.risk_upper(0, 1000)                             # returns 0.0


def test_combined_refuses_generic_ub_with_impossible_moments():
    ex = unexpected_bernstein(-0.5, 0.0, 0.0, 1000, 0.01)     # EX = -0.4886
    with pytest.raises(ValueError):
        excess_certificate(100, 1000, ex, 0.01)               # returns 0.0


def test_combined_refuses_ub_with_b_below_the_excess_range():
    right = unexpected_bernstein_excess(0.01, 0.05, 0.0, 1000, 0.01, etas=(0.5,))
    wrong = unexpected_bernstein(-0.04, 0.06, 0.0, 1000, 0.01, b=0.5, etas=(0.5,))
    assert wrong.value < right.value                          # -0.012702 < -0.007612
    with pytest.raises(ValueError):
        excess_certificate(100, 1000, wrong, 0.01)            # returns 0.111484 (theorem: 0.116574)


def test_combined_refuses_shares_whose_exact_sum_is_above_delta():
    ex = split_kl_excess(0.0, 0.1, 0.0, 1000, 1e-20)
    assert Fraction(0.05) + Fraction(1e-20) > Fraction(0.05)
    with pytest.raises(ValueError, match="delta"):
        excess_certificate(200, 1000, ex, 0.05, delta=0.05)   # accepted, records delta = 0.05


# ------------------------------------------------------------------------------------------ bad failures

def test_test_set_bound_huge_n_no_traceback():
    n, delta = 10**19, 0.1
    try:
        p = test_set_bound(0, n, delta)
    except ValueError as err:
        assert "'n'" in str(err)
        return
    with mp.workdps(40):
        assert mp.mpf(p) >= 1 - mp.power(mp.mpf(delta), mp.mpf(1) / n)


@pytest.mark.parametrize("call", [lambda: split_kl_excess(0.1, 0.1, 0.1, 10**400, 0.1),
                                  lambda: test_set_bound(0, 10**400, 0.1),
                                  lambda: ternary_rates(0, 0, 10**400, 0.1)])
def test_int_beyond_float_range_is_a_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_test_set_bound_list_delta_is_a_value_error():
    with pytest.raises(ValueError, match="delta"):
        test_set_bound(0, 10, [0.1, 0.2])


def test_unexpected_bernstein_scalar_etas_is_a_value_error():
    with pytest.raises(ValueError, match="etas"):
        unexpected_bernstein(0.1, 0.1, 0.1, 100, 0.1, etas=0.5)


def test_unexpected_bernstein_huge_b_does_not_blame_etas():
    try:
        unexpected_bernstein(0.1, 0.1, 0.1, 100, 0.1, b=1e308)
    except ValueError as err:
        assert "'etas'" not in str(err)
