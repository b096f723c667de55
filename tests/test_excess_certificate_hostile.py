"""Hostile review of the combined certificate TS(h_ref; delta_ref) + min(0, EX(Q; delta_ex)) as a
:class:`Certificate` (bounds/certificate.py ``excess_loss_certificate``, its recomputation in ``union_minimum`` /
``pay_for_choice``), of ``certify_excess`` and of the runner's use of it.

The tests of the first two sections each reproduce a finding (the comments say what the code did before); the
last section guards what was checked and held: the coverage of the certificate built from per-example counts,
that honest payment never lowers a value, and where the runner applies it.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import genbounds.bounds.certificate as certificate_module
import genbounds.estimators.snn.certification as certification
from genbounds.bounds import (
    Certificate,
    Certified,
    excess_loss_certificate,
    heldout_certificate,
    pac_bayes_certificate,
    pay_for_choice,
    split_excess_delta,
    test_set_bound,
    unexpected_bernstein_excess,
    union_minimum,
)
from genbounds.estimators import nets, snn
from genbounds.estimators.data import Dataset
from genbounds.experiments.pac_bayes_runner import PacBayesConfig, excess_applies
from genbounds.experiments.results import Disagreement

# The reference sheet's case B at the runner's shares of delta = 0.035 (0.9 / 0.07 / the rest).
N, K, KL, R = 30000, 2343, 0.13, 10
D_REF, D_EX, D_MC = split_excess_delta(0.035)


def _case_b(**kw) -> Certificate:
    args = dict(k_errors=K, plus_draws=150, minus_draws=1350, draws=R * N, kl=KL, n_bound=N, delta_reference=D_REF,
                delta_excess=D_EX, delta_monte_carlo=D_MC, n_prior=N, delta=0.035)
    args.update(kw)
    return excess_loss_certificate(**args)


def _edited(cert: Certificate, top: dict | None = None, details: dict | None = None) -> Certificate:
    """``cert`` with fields edited in Python (the object route: union_minimum and pay_for_choice must refuse it
    themselves, as :func:`_read_back` refuses the same edit in a record)."""
    return dataclasses.replace(cert, **(top or {}), details={**cert.details, **(details or {})})


def _read_back(cert: Certificate, top: dict | None = None, details: dict | None = None) -> Certificate:
    """``cert`` written out, edited by hand, read back (the record route: from_dict recomputes it)."""
    data = cert.to_dict()
    data.update(top or {})
    data["details"] = {**data["details"], **(details or {})}
    return Certificate.from_dict(data)


# ------------------------------------------------------------------------------------------ unsound

@pytest.mark.parametrize("top, details", [
    ({}, {"k_errors": 1000}),                     # paid at 6: 0.034761 instead of 0.080832
    ({"n_bound": 60000}, {}),                     # draws 300000 still a multiple: 0.039179 instead
    ({"kl": 0.0}, {}),                            # KL 0.13 -> 0: 0.080815
    ({}, {"minus_draws": 1500}),                  # more "fixed" draws than were counted: 0.080432
])
def test_a_record_edited_by_hand_cannot_lower_the_paid_value(top, details):
    honest = _case_b()
    with pytest.raises(ValueError, match="reproduce"):
        _read_back(honest, top, details)
    tampered = _edited(honest, top, details)
    honest_paid = pay_for_choice(honest, 6, "setting", "kept among 6")
    try:
        paid = pay_for_choice(tampered, 6, "setting", "kept among 6")
        best = union_minimum([tampered, heldout_certificate(K, N, 0.035, n_prior=N)], ["excess", "held-out"])
    except ValueError:
        return                                    # refused: the record does not reproduce its own value
    assert paid.value >= honest_paid.value
    assert best.value >= union_minimum([honest, heldout_certificate(K, N, 0.035, n_prior=N)]).value


def test_renaming_the_bound_of_a_record_does_not_switch_the_method():
    split = _case_b(method="split_kl")
    with pytest.raises(ValueError, match="disagree"):
        _read_back(split, {"bound": "excess_unexpected_bernstein"})
    renamed = _edited(split, {"bound": "excess_unexpected_bernstein"})    # details["method"] still 'split_kl'
    try:
        paid = pay_for_choice(renamed, 2, "setting", "kept among 2")
    except ValueError:
        return
    # was 0.0800193, below the split-kl record's own unpaid value 0.0803042
    assert paid.value >= split.value


def test_a_fractional_error_count_is_refused():
    with pytest.raises(ValueError, match="'k_errors'"):
        _case_b(k_errors=K + 0.9)               # was: the certificate of k = 2343, 0.079437 (k = 2344: 0.079471)
    assert _case_b(k_errors=K).value < _case_b(k_errors=K + 1).value


def test_a_fractional_error_count_in_a_record_is_refused():
    with pytest.raises(ValueError, match="k_errors"):
        _read_back(_case_b(), details={"k_errors": K + 0.7})
    tampered = _edited(_case_b(), details={"k_errors": K + 0.7})
    with pytest.raises(ValueError, match="k_errors"):
        pay_for_choice(tampered, 2, "setting", "kept among 2")


def test_a_record_whose_parts_sum_exactly_above_delta_is_refused():
    parts = {"test_set": 0.0315, "excess": 0.00245, "monte_carlo": 0.00105}
    while sum(map(Fraction, parts.values())) <= Fraction(0.035):
        parts["monte_carlo"] = float(np.nextafter(parts["monte_carlo"], 1.0))
    assert math.fsum(parts.values()) == 0.035                  # exact sum is 0.035 + 2.2e-19
    with pytest.raises(ValueError, match="delta_parts"):
        _edited(_case_b(), {"delta_parts": parts})


def test_the_k_shares_of_a_payment_never_sum_above_the_part(monkeypatch):
    cert = _case_b()
    used: list[dict] = []

    def spy(*args, **kwargs):
        used.append(kwargs)
        return excess_loss_certificate(*args, **kwargs)

    monkeypatch.setattr(certificate_module, "excess_loss_certificate", spy)
    over = []
    for k in range(2, 13):
        used.clear()
        pay_for_choice(cert, k, "setting", f"kept among {k}")
        for name, key in (("test_set", "delta_reference"), ("excess", "delta_excess"),
                          ("monte_carlo", "delta_monte_carlo")):
            if k * Fraction(used[0][key]) > Fraction(cert.delta_parts[name]):
                over.append((k, name))
    assert over == []


def test_a_posterior_certificate_cannot_be_labelled_as_the_reference_by_its_details():
    try:
        cert = pac_bayes_certificate("seeger", 0.05, 10.0, 1000, 0.025, details={"certifies": "reference"})
    except ValueError:
        return                                    # refused: a derived entry
    assert cert.certifies is Certified.POSTERIOR


# ------------------------------------------------------------------------------------------ bad input, bad messages

_BASE = dict(k_errors=K, plus_draws=150, minus_draws=1350, draws=R * N, kl=KL, n_bound=N, delta_reference=D_REF,
             delta_excess=D_EX, delta_monte_carlo=D_MC, n_prior=N)


@pytest.mark.parametrize("kw, name", [
    (dict(delta_excess=0.0), "'delta_excess'"),              # was: argument 'delta' must be in (0, 1)
    (dict(delta_excess=float("nan")), "'delta_excess'"),     # was: argument 'delta' must not be NaN
    (dict(delta_monte_carlo=0.0), "'delta_monte_carlo'"),    # was: argument 'delta'
    (dict(delta_reference=0.0), "'delta_reference'"),        # was: argument 'delta_ref'
    # was: 'the shares delta_ref + excess.delta + rates.delta sum to 1.1'
    (dict(delta_reference=0.6, delta_excess=0.3, delta_monte_carlo=0.2), "delta_reference"),
    (dict(n_bound=2**60, draws=2**60, k_errors=0, plus_draws=0, minus_draws=0), "'n_bound'"),  # was: 'n'
    (dict(k_errors=float("nan")), "'k_errors'"),             # was: ValueError cannot convert float NaN to integer
    (dict(k_errors=None), "'k_errors'"),                     # was: TypeError from int()
    (dict(k_errors=math.inf), "'k_errors'"),                 # was: OverflowError
    (dict(n_prior=None), "'n_prior'"),                       # was: TypeError from int()
    (dict(n_prior=2.5), "'n_prior'"),                        # was: accepted, recorded as 2
    (dict(kl=[0.1, 0.2]), "'kl'"),                           # was: TypeError from float()
    (dict(details=[1, 2]), "'details'"),                     # was: TypeError from dict()
])
def test_every_refusal_is_one_value_error_naming_the_argument(kw, name):
    args = dict(_BASE)
    args.update(kw)
    with pytest.raises(ValueError, match=name):
        excess_loss_certificate(**args)


def test_plus_draws_beyond_the_references_right_examples_are_refused():
    with pytest.raises(ValueError, match="plus_draws|Z = \\+1"):
        excess_loss_certificate(**{**_BASE, "plus_draws": R * (N - K) + 1})   # was: value 0.081265, 'reference'


def test_a_record_missing_a_count_is_a_value_error():
    data = _case_b().to_dict()
    del data["details"]["k_errors"]
    with pytest.raises(ValueError, match="k_errors"):
        Certificate.from_dict(data)
    cert = dataclasses.replace(_case_b(), details={k: v for k, v in _case_b().details.items() if k != "k_errors"})
    with pytest.raises(ValueError, match="k_errors"):
        pay_for_choice(cert, 2, "setting", "kept among 2")


@pytest.mark.parametrize("args", [
    (0.035, 0.9, 0.0999999999999999),    # was: Monte Carlo share -4.3e-19
    (1e-300, 1e-30, 0.5),                # was: test-set share 0.0 (underflow)
])
def test_split_excess_delta_never_returns_a_share_outside_0_1(args):
    try:
        shares = split_excess_delta(*args)
    except ValueError:
        return
    assert all(0.0 < s < 1.0 for s in shares)


def _tiny_model():
    """A 2-class MLP at its initialisation (nothing trained), a prior on the first 20 of 60 examples."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4, 1, 1)).astype(np.float32)
    data = Dataset(x, rng.integers(0, 2, 60).astype(np.int32), 2, "toy")
    net = nets.mlp((4, 1, 1), (3,), 2)
    params = net.init(jax.random.PRNGKey(0))
    return net, snn.init_posterior(params, 0.05), snn.Prior(params, 0.05, data_indices=np.arange(20)), data


@pytest.mark.parametrize("kw, name", [(dict(reference_share=1.5), "'reference_share'"),
                                      (dict(method="pbkl"), "'method'"), (dict(delta=2.0), "'delta'")])
def test_certify_excess_refuses_bad_arguments_before_drawing(monkeypatch, kw, name):
    net, post, prior, data = _tiny_model()

    def no_draws(*args, **kwargs):
        raise AssertionError("the Monte Carlo pass ran before the arguments were checked")

    monkeypatch.setattr(certification, "ternary_draws", no_draws)
    with pytest.raises(ValueError, match=name):
        certification.certify_excess(net, post, prior, data, key=jax.random.PRNGKey(1), r=2, **kw)


@pytest.mark.parametrize("data", [dict(reference_errors=5, plus=0, minus=0, draws=0),
                                  dict(reference_errors=5, plus=3, minus=60, draws=100)])   # minus > k R = 50
def test_a_disagreement_record_with_impossible_counts_is_refused(data):
    with pytest.raises(ValueError):
        Disagreement.from_dict(data)


def test_a_paid_combined_certificate_records_its_per_candidate_share():
    paid = pay_for_choice(_case_b(), 6, "setting", "kept among 6")
    assert "delta_effective" in paid.details


def test_the_excess_objective_pays_what_the_certificate_pays():
    cfg = PacBayesConfig()
    n, kl, d_plus, d_minus = 30000, 0.13, 0.0005, 0.0045
    objective = snn.get_objective("excess")
    # eta = 1/4 on both sides (theta = 0 in training, the grid point 2^-2 in the certificate)
    trained = float(objective(jnp.array([d_plus, d_minus]), jnp.float32(kl), n, cfg.delta, {"eta": jnp.float32(0.0)}))
    _, d_ex, _ = split_excess_delta(cfg.delta + cfg.mc_delta)
    grid = unexpected_bernstein_excess(d_plus, d_minus, kl, n, d_ex).grid_size
    # the certificate's bound at eta = 1/4, its grid paid: (KL + ln(|G| / delta_ex)) / (eta n)
    certified = unexpected_bernstein_excess(d_plus, d_minus, kl, n, d_ex, etas=(0.25,)).value \
        + math.log(grid) / (0.25 * n)
    assert trained >= certified - 1e-6          # was -0.002498 < -0.002189


# ------------------------------------------------------------------------------------------ every certificate kind

def _pac_bayes() -> Certificate:
    return pac_bayes_certificate("seeger", 0.0242, 0.24, 719, 0.025, mc_samples=71900, mc_delta=0.01, n_prior=719)


@pytest.mark.parametrize("make, top, details", [
    (_pac_bayes, {"kl": 0.0}, {}),
    (_pac_bayes, {"emp_risk": 0.02}, {}),
    (_pac_bayes, {"mc_samples": 719000}, {}),
    (_pac_bayes, {"value": 0.05}, {}),                        # a value below what the inputs give
    (lambda: heldout_certificate(16, 719, 0.035, n_prior=719), {}, {"k_errors": 10}),
    (lambda: heldout_certificate(16, 719, 0.035, n_prior=719), {"n_bound": 1000}, {}),
    (lambda: _case_b(), {"value": 0.0794}, {}),
    (lambda: _case_b(), {}, {"certifies": "reference"}),      # the predictor relabelled in the record
])
def test_every_kind_of_record_edited_by_hand_is_refused(make, top, details):
    honest = make()
    assert union_minimum([honest]).value == honest.value
    with pytest.raises(ValueError, match="edited|reproduce"):
        _read_back(honest, top, details)
    tampered = _edited(honest, top, details)
    for pay in (lambda c: union_minimum([c]), lambda c: pay_for_choice(c, 3, "setting", "kept among 3")):
        with pytest.raises(ValueError, match="edited|reproduce"):
            pay(tampered)


@pytest.mark.parametrize("make", [_pac_bayes, lambda: heldout_certificate(16, 719, 0.035, n_prior=719), _case_b])
def test_a_record_from_another_cpu_reads_back_and_an_edit_does_not(make):
    """A record written where NumPy's log and exp round their last bits differently (AVX-512 against AVX2)
    recomputes a unit or two in the last place apart: it reads back and is paid for at this machine's own
    recomputation; a value moved by 1e-9 (relative) is an edit."""
    honest = make()
    for ulps in (-2, 2):
        near = honest.value + ulps * float(np.spacing(honest.value))
        read = _read_back(honest, {"value": near})
        assert union_minimum([read]).value == honest.value
        assert pay_for_choice(read, 3, "setting", "kept among 3").value == pay_for_choice(honest, 3, "setting",
                                                                                          "kept among 3").value
    with pytest.raises(ValueError, match="edited|reproduce"):
        union_minimum([_edited(honest, {"value": honest.value * (1 - 1e-9)})])


def test_a_paid_record_is_checked_at_the_shares_it_records():
    """K = 6 rounds 0.01 / 6 up to the nearest float: the paid record states its shares rounded down, six of them at
    most each part exactly, and is checked at those (nested: the winner of a later minimum at the outer K)."""
    cert = _pac_bayes()
    kept = pay_for_choice(cert, 6, "setting", "kept among 6")
    each = kept.details["selection"]["delta_parts_each"]
    assert 6 * Fraction(0.01 / 6) > Fraction(0.01)
    assert each == {"pac_bayes": 0.025 / 6, "monte_carlo": float(np.nextafter(0.01 / 6, 0.0))}
    assert all(6 * Fraction(each[name]) <= Fraction(part) for name, part in kept.delta_parts.items())
    assert union_minimum([kept]).value == kept.value == Certificate.from_dict(kept.to_dict()).value
    best = union_minimum([kept, heldout_certificate(16, 719, 0.035, n_prior=719)], ["kept", "held-out"])
    assert best.candidates == 7
    for name, share in best.details["selection"]["delta_parts_each"].items():    # the largest float with 7 x <= part
        part = Fraction(best.delta_parts[name])
        assert 7 * Fraction(share) <= part < 7 * Fraction(float(np.nextafter(share, 1.0)))
    assert union_minimum([best]).value == best.value
    with pytest.raises(ValueError, match="edited|reproduce"):
        union_minimum([_edited(best, {"kl": 0.2})])
    data = kept.to_dict()
    data["details"]["selection"]["delta_parts_each"]["monte_carlo"] = 0.01 / 6        # 6 of them above 0.01
    with pytest.raises(ValueError, match="delta_parts_each"):
        Certificate.from_dict(data)


def test_a_pac_bayes_total_is_never_below_the_exact_sum_of_its_parts():
    cert = pac_bayes_certificate("seeger", 0.04, 5.0, 2000, 0.02, mc_samples=20000, mc_delta=0.01)
    assert Fraction(0.02) + Fraction(0.01) > Fraction(math.fsum((0.02, 0.01)))     # the rounded sum is below
    assert Fraction(cert.delta) >= Fraction(0.02) + Fraction(0.01)
    assert pay_for_choice(cert, 3, "setting", "kept among 3").value > cert.value


def test_only_the_combined_certificate_derives_which_predictor_it_certifies():
    with pytest.raises(ValueError, match="'details'.*certifies"):
        heldout_certificate(16, 719, 0.035, details={"certifies": "posterior"})
    assert _case_b().certifies is Certified.POSTERIOR
    assert _case_b(plus_draws=3300, minus_draws=3000).certifies is Certified.REFERENCE
    data = _case_b().to_dict()
    del data["details"]["certifies"]
    with pytest.raises(ValueError, match="certifies"):
        Certificate.from_dict(data)


# ------------------------------------------------------------------------------------------ checks that held

def _synthetic(rng, n, r, a, b):
    ref_wrong = rng.random(n) < r
    u = rng.random((len(a), n))
    plus = ~ref_wrong & (u < b[:, None])
    minus = ref_wrong & (u < a[:, None])
    return ref_wrong, plus, minus


def test_coverage_of_the_certificate_built_from_counts():
    """Known rates, a mixture posterior chosen on the bound set (KL paid), R = 4 per-example draws per example
    counted into (k, plus, minus, draws): the predictor each certificate names has risk above its value at a rate
    at most delta_ref + delta_ex + delta_mc, and paying for a choice among 3 keeps it so. A reference term without
    its test-set bound (k / n) is caught failing."""
    rng = np.random.default_rng(11)
    n, reps, trials, r = 1000, 4, 300, 0.25
    a = np.array([0.40, 0.20, 0.05])          # P(h right | h_ref wrong)
    b = np.array([0.02, 0.10, 0.01])          # P(h wrong | h_ref right)
    true_excess = (1 - r) * b - r * a
    shares = dict(delta_reference=0.1, delta_excess=0.1, delta_monte_carlo=0.1)
    fails = dict.fromkeys(("combined", "paid", "naive"), 0)
    posterior = 0
    for _ in range(trials):
        ref_wrong, plus, minus = _synthetic(rng, n, r, a, b)
        w = np.exp(-20 * (plus.sum(1) - minus.sum(1)) / n)
        w /= w.sum()
        kl = float(np.sum(w * np.log(len(a) * w)))
        losses = np.where(ref_wrong, ~minus, plus)
        post = losses[rng.choice(len(a), size=(n, reps), p=w), np.arange(n)[:, None]]     # [n, R]
        k = int(ref_wrong.sum())
        p_draws = int(np.sum(post & ~ref_wrong[:, None]))
        m_draws = int(np.sum(~post & ref_wrong[:, None]))
        cert = excess_loss_certificate(k, p_draws, m_draws, n * reps, kl, n, n_prior=n, **shares)
        paid = pay_for_choice(cert, 3, "setting", "kept among 3")
        for name, c in (("combined", cert), ("paid", paid)):
            risk = r + w @ true_excess if c.certifies is Certified.POSTERIOR else r
            fails[name] += risk > c.value
        posterior += cert.certifies is Certified.POSTERIOR
        fails["naive"] += r > k / n
    slack = stats.binom.ppf(1 - 1e-4, trials, 0.3)
    assert fails["combined"] <= slack and fails["paid"] <= fails["combined"]
    assert fails["naive"] > 0.3 * trials
    assert posterior > trials // 2               # the excess route, not only the reference, is exercised


@pytest.mark.parametrize("kw", [{}, dict(method="split_kl"), dict(plus_draws=3300, minus_draws=3000),
                                dict(k_errors=16, n_bound=719, draws=7190, plus_draws=2, minus_draws=40, n_prior=719)])
def test_honest_payment_never_lowers_the_value(kw):
    cert = _case_b(**kw)
    values = [pay_for_choice(cert, k, "setting", "kept").value for k in (1, 2, 6, 50)]
    assert values == sorted(values) and values[0] == cert.value
    assert cert.value <= cert.details["reference_bound"] == test_set_bound(cert.details["k_errors"], cert.n_bound,
                                                                           cert.delta_parts["test_set"])


def test_the_runner_applies_it_only_with_a_reference_independent_of_the_bound_set():
    mean = {"w": np.zeros(3, np.float32)}
    data_prior = snn.Prior(mean, 0.05, data_indices=np.arange(10))
    assert excess_applies(PacBayesConfig(), data_prior)
    assert not excess_applies(PacBayesConfig(), snn.Prior(mean, 0.05))                        # data-free
    assert not excess_applies(PacBayesConfig(), snn.Prior(mean, 0.05, dp={"epsilon": 1.0}))   # DP
    assert not excess_applies(PacBayesConfig.flat(learn_prior_scale=True), data_prior)       # scale learned
