"""Certificate record: delta budget, validation, JSON round trip, upward rounding."""

import json
import math

import pytest

import genbounds.bounds as B
from genbounds.bounds import Certificate, pac_bayes_certificate, union_minimum


def _cert(**kw):
    args = dict(bound="seeger", value=0.1, delta=0.035,
                delta_parts={"pac_bayes": 0.025, "monte_carlo": 0.01},
                emp_risk=0.03, kl=100.0, n_bound=1000, n_prior=500)
    return Certificate(**(args | kw))


def test_delta_parts_must_sum_to_at_most_delta():
    _cert()  # 0.025 + 0.01 == 0.035 is accepted
    with pytest.raises(ValueError, match="'delta_parts' sums to"):
        _cert(delta=0.03)
    with pytest.raises(ValueError, match="delta_parts"):
        _cert(delta_parts={"pac_bayes": 0.0})
    with pytest.raises(ValueError, match="delta_parts"):
        _cert(delta_parts={})


@pytest.mark.parametrize("field,value", [("value", float("nan")), ("emp_risk", 1.5), ("kl", -1.0),
                                         ("n_bound", 0), ("n_prior", -1), ("delta", 1.0)])
def test_refuses_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        _cert(**{field: value})


def test_json_round_trip_and_required_fields():
    c = pac_bayes_certificate("catoni", 0.03, 5000, 55000, 0.025, mc_samples=1000, mc_delta=0.01,
                              n_prior=5000, details={"seed": 3})
    d = json.loads(c.to_json())
    for key in ("value", "vacuous", "delta", "delta_parts", "emp_risk", "kl", "n_bound", "n_prior"):
        assert key in d
    assert d["delta_parts"] == {"pac_bayes": 0.025, "monte_carlo": 0.01}
    assert d["delta"] == 0.035 and d["details"]["seed"] == 3
    assert Certificate.from_json(c.to_json()) == c
    bad = dict(d, vacuous=True)
    with pytest.raises(ValueError, match="vacuous"):
        Certificate.from_dict(bad)
    with pytest.raises(ValueError, match="schema"):
        Certificate.from_dict(dict(d, schema="other/9"))


def test_monte_carlo_step_and_budget():
    c = pac_bayes_certificate("seeger", 0.03, 5000, 55000, 0.025, mc_samples=1000, mc_delta=0.01)
    assert c.emp_risk_bound == pytest.approx(float(B.sample_convergence(0.03, 1000, 0.01)))
    assert c.value >= float(B.seeger(c.emp_risk_bound, 5000, 55000, 0.025))
    assert c.value <= float(B.seeger(c.emp_risk_bound, 5000, 55000, 0.025)) * (1 + 1e-14)
    assert math.fsum(c.delta_parts.values()) <= c.delta
    with pytest.raises(ValueError, match="together"):
        pac_bayes_certificate("seeger", 0.03, 5000, 55000, 0.025, mc_samples=1000)


def test_union_bounds_are_recorded_and_paid():
    plain = pac_bayes_certificate("seeger", 0.05, 300, 10000, 0.025)
    grid = pac_bayes_certificate("seeger", 0.05, 300, 10000, 0.025, prior_grid_j=40, n_priors=3)
    expected_delta = B.prior_grid_delta(0.025 / 3, 40)
    assert grid.details["delta_effective"] == pytest.approx(expected_delta)
    assert grid.details["prior_grid"]["j"] == 40 and grid.details["n_priors"] == 3
    assert grid.value == pytest.approx(float(B.seeger(0.05, 300, 10000, expected_delta)), rel=1e-14)
    assert grid.value > plain.value
    assert grid.delta == 0.025


def test_union_minimum_recomputes_every_certificate_at_delta_over_k():
    certs = [pac_bayes_certificate(b, 0.04, kl, 2000, 0.025, mc_samples=20000, mc_delta=0.01)
             for b, kl in (("seeger", 30.0), ("catoni", 30.0), ("seeger", 5.0))]
    best = union_minimum(certs, ["a", "b", "c"])
    redone = [pac_bayes_certificate(c.bound, 0.04, c.kl, 2000, 0.025 / 3, mc_samples=20000, mc_delta=0.01 / 3)
              for c in certs]
    assert best.value == min(r.value for r in redone) > min(c.value for c in certs)
    assert best.details["selection"]["chosen"] == "c" and best.details["selection"]["k"] == 3
    assert best.delta_parts == {"pac_bayes": 0.025, "monte_carlo": 0.01}
    assert best.details["delta_effective"] == pytest.approx(0.025 / 3)
    # The recomputation keeps a prior-grid payment.
    grid = pac_bayes_certificate("seeger", 0.04, 30.0, 2000, 0.025, prior_grid_j=200)
    assert union_minimum([grid, grid]).value == pac_bayes_certificate(
        "seeger", 0.04, 30.0, 2000, 0.0125, prior_grid_j=200).value
    with pytest.raises(ValueError, match="one total delta"):
        union_minimum([certs[0], pac_bayes_certificate("seeger", 0.04, 5.0, 2000, 0.05)])


def test_values_round_up_and_vacuous_flag():
    for name in B.PAC_BAYES_BOUNDS:
        c = pac_bayes_certificate(name, 0.03, 5000, 55000, 0.025)
        raw = float(B.PAC_BAYES_BOUNDS[name](0.03, 5000, 55000, 0.025))
        assert c.value > raw and not c.vacuous
    v = pac_bayes_certificate("mcallester", 0.4, 1e5, 100, 0.025)
    assert v.vacuous and v.value > 1
    s = pac_bayes_certificate("seeger", 0.4, 1e5, 100, 0.025)
    assert s.vacuous and s.value == 1.0
    assert B.round_up(0.5) > 0.5 and B.round_up(1.0) == 1.0


def test_unknown_bound():
    with pytest.raises(ValueError, match="'bound'"):
        pac_bayes_certificate("nope", 0.1, 1, 10, 0.05)
