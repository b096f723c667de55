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


def test_every_data_dependent_record_shows_the_prior_networks_heldout_bound():
    import json
    from pathlib import Path

    from genbounds.experiments.report import rows_from_record
    from genbounds.experiments.results import heldout_baseline

    root = Path(__file__).resolve().parents[1] / "paper_figures" / "results"
    record = json.loads((root / "pac-bayes-quickstart-digits.json").read_text())
    r = record["results"][0]
    cert = Certificate.from_dict(r["certificate"])
    held = heldout_baseline(cert, r["prior_heldout_error"])
    k = round(r["prior_heldout_error"] * cert.n_bound)
    assert held.value == test_set_bound(k, cert.n_bound, cert.delta) and held.delta == cert.delta == 0.035
    assert held.value < cert.value                 # the posterior's certificate does not beat it here
    rows = rows_from_record(record)
    assert [row["certificate"] for row in rows if row["bound"].startswith("prior network, held-out")] == [held.value]
    # The PBB recipes' settings choice is paid for by the baseline too; a DP prior holds nothing out.
    fcn = json.loads((root / "reproduce" / "pbb-fashion-fcn.json").read_text())["results"][0]
    paid = heldout_baseline(Certificate.from_dict(fcn["certificate"]), fcn["prior_heldout_error"])
    assert paid.candidates == 6 and paid.value == test_set_bound(round(0.1249 * 30000), 30000, 0.035 / 6)
    dp = json.loads((root / "pac-bayes-digits-dp-eps1.0.json").read_text())["results"][0]
    assert heldout_baseline(Certificate.from_dict(dp["certificate"]), dp.get("prior_heldout_error")) is None
