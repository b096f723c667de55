"""The held-out (test-set) certificate of the prior's network, and its place among the other certificates."""

from __future__ import annotations

import pytest

from genbounds.bounds import (
    HELDOUT,
    Certificate,
    heldout_certificate,
    pac_bayes_certificate,
    test_set_bound,
    union_minimum,
)


def test_heldout_certificate_is_the_exact_binomial_bound_of_its_error_count():
    cert = heldout_certificate(2343, 30000, 0.025, n_prior=30000, details={"predictor": "prior network"})
    assert cert.bound == HELDOUT and cert.kl == 0.0 and cert.delta_parts == {"test_set": 0.025}
    assert cert.value == test_set_bound(2343, 30000, 0.025) == pytest.approx(0.081194, abs=1e-6)
    assert cert.emp_risk == 2343 / 30000 and cert.details["k_errors"] == 2343 and cert.n_prior == 30000
    again = Certificate.from_dict(cert.to_dict())
    assert again == cert and union_minimum([again]).value == cert.value     # recomputes from its record
    with pytest.raises(ValueError, match="'k_errors'"):
        heldout_certificate(30001, 30000, 0.025)
    with pytest.raises(ValueError, match="selection"):
        heldout_certificate(3, 100, 0.025, details={"selection": {"k": 1}})


def test_the_best_of_a_heldout_and_a_pac_bayes_certificate_pays_for_both():
    delta = 0.035
    pb = pac_bayes_certificate("seeger", 0.0242, 0.24, 719, 0.025, mc_samples=71900, mc_delta=0.01)
    held = heldout_certificate(16, 719, delta)
    best = union_minimum([pb, held], ["quad (b)", "prior network (held-out)"])
    at_half = [pac_bayes_certificate("seeger", 0.0242, 0.24, 719, 0.0125, mc_samples=71900, mc_delta=0.005).value,
               test_set_bound(16, 719, delta / 2)]
    assert best.value == min(at_half) and best.details["selection"]["k"] == 2
    assert best.details["selection"]["chosen"] == "prior network (held-out)" and best.bound == HELDOUT
    assert best.delta == delta and best.delta_parts == {"test_set": delta}
    with pytest.raises(ValueError, match="one total delta"):
        union_minimum([pb, heldout_certificate(16, 719, 0.025)])
