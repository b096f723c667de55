"""The combined (held-out + excess-loss) certificate as a :class:`Certificate`: the reference sheet's value,
recomputation at a delta share, payment for choices, refusals."""

from fractions import Fraction

import pytest

from genbounds.bounds import (
    EXCESS_BOUNDS,
    Certificate,
    Certified,
    ExcessMethod,
    excess_loss_certificate,
    heldout_certificate,
    pay_for_choice,
    split_excess_delta,
    test_set_bound,
    union_minimum,
)

N, K, KL, DELTA, DPRIME = 30000, 2343, 0.13, 0.025, 0.01


def case_b(**kw) -> Certificate:
    """Sheet case B: d+ = 15/n, d- = 135/n, KL 0.13, R = 10 draws per example (150 and 1350 of 300000)."""
    args = dict(delta_reference=0.9 * DELTA, delta_excess=0.1 * DELTA, delta_monte_carlo=DPRIME, n_prior=30000)
    args.update(kw)
    return excess_loss_certificate(K, 150, 1350, 10 * N, KL, N, **args)


def test_case_b_with_monte_carlo_is_the_sheets_value():
    cert = case_b()
    assert cert.value == pytest.approx(0.079568, abs=1.5e-6)
    assert cert.value >= 0.079568 - 1.5e-6
    assert cert.bound == EXCESS_BOUNDS[ExcessMethod.UNEXPECTED_BERNSTEIN] == "excess_unexpected_bernstein"
    assert cert.details["certifies"] == "posterior"
    assert cert.value < test_set_bound(K, N, DELTA) == pytest.approx(0.081194, abs=1e-6)
    assert sum(map(Fraction, cert.delta_parts.values())) <= Fraction(cert.delta)
    assert cert.delta == pytest.approx(0.035)
    # the posterior's Monte Carlo risk: (10 k + plus - minus) / draws
    assert cert.emp_risk == (10 * K + 150 - 1350) / (10 * N)
    assert cert.emp_risk <= cert.emp_risk_bound < 0.0781 + 0.0006
    assert Certificate.from_dict(cert.to_dict()) == cert


def test_no_advantage_certifies_the_reference_at_its_share():
    cert = excess_loss_certificate(K, 3300, 3000, 10 * N, KL, N, delta_reference=0.9 * DELTA,
                                   delta_excess=0.1 * DELTA, delta_monte_carlo=DPRIME, n_prior=N)
    assert cert.details["certifies"] == "reference" and cert.certifies is Certified.REFERENCE
    assert cert.value == test_set_bound(K, N, 0.9 * DELTA) == pytest.approx(0.081265, abs=1e-6)
    assert case_b().certifies is Certified.POSTERIOR
    assert heldout_certificate(K, N, DELTA).certifies is Certified.REFERENCE


def test_split_kl_route():
    cert = case_b(method=ExcessMethod.SPLIT_KL)
    assert cert.bound == "excess_split_kl"
    assert cert.details["excess_bound"] > case_b().details["excess_bound"]     # UB is the tighter route here


def test_recomputed_at_a_delta_share_equals_a_direct_computation():
    cert = case_b()
    paid = pay_for_choice(cert, 6, "setting", "kept among 6")
    direct = case_b(delta_reference=0.9 * DELTA / 6, delta_excess=0.1 * DELTA / 6, delta_monte_carlo=DPRIME / 6)
    assert paid.value == direct.value > cert.value
    assert paid.delta == cert.delta and paid.candidates == 6
    # a union with a held-out certificate at the same total delta pays K = 6 + 1
    held = heldout_certificate(K, N, cert.delta, n_prior=N)
    best = union_minimum([paid, held], ["excess", "held-out"])
    assert best.details["selection"]["k"] == 7
    assert best.value == min(case_b(delta_reference=0.9 * DELTA / 7, delta_excess=0.1 * DELTA / 7,
                                    delta_monte_carlo=DPRIME / 7).value,
                             test_set_bound(K, N, cert.delta / 7))


def test_split_excess_delta_never_sums_above_delta():
    for delta in (0.035, 0.1, 1e-9, 0.3, 0.0123456789):
        parts = split_excess_delta(delta)
        assert sum(map(Fraction, parts)) <= Fraction(delta)
        assert parts[0] == delta * 0.9 and parts[1] == delta * 0.07
        assert parts[2] == pytest.approx(0.03 * delta, rel=1e-9)
    with pytest.raises(ValueError, match="'reference'"):
        split_excess_delta(0.05, reference=0.95, excess=0.1)


@pytest.mark.parametrize("kw, match", [
    (dict(draws=10 * N + 1), "'draws'"),
    (dict(minus_draws=10 * K + 1), "Z = -1"),
    (dict(method="pbkl"), "'method'"),
])
def test_refusals_name_the_argument(kw, match):
    args = dict(k_errors=K, plus_draws=150, minus_draws=1350, draws=10 * N, kl=KL, n_bound=N, delta_reference=0.02,
                delta_excess=0.002, delta_monte_carlo=0.01, n_prior=N)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        excess_loss_certificate(**args)
