"""Choices made after seeing certificates are paid for: union_minimum and pay_for_choice, nested."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbounds.bounds import Certificate, excess_loss_certificate, pac_bayes_certificate, pay_for_choice, union_minimum

RESULTS = Path(__file__).resolve().parents[1] / "paper_figures" / "results"


def _cert(bound: str, emp: float, kl: float, delta: float = 0.025, mc: bool = True) -> Certificate:
    return pac_bayes_certificate(bound, emp, kl, 2000, delta, mc_samples=20000 if mc else None,
                                 mc_delta=0.01 if mc else None)


def _at(cert: Certificate, k: int) -> float:
    """``cert`` recomputed by hand from its raw inputs at every delta part / k."""
    parts = cert.delta_parts
    mc = "monte_carlo" in parts
    if "excess" in parts:
        d = cert.details
        return excess_loss_certificate(d["k_errors"], d["plus_draws"], d["minus_draws"], d["draws"], cert.kl,
                                       cert.n_bound, delta_reference=parts["test_set"] / k,
                                       delta_excess=parts["excess"] / k, delta_monte_carlo=parts["monte_carlo"] / k,
                                       n_prior=cert.n_prior).value
    return pac_bayes_certificate(cert.bound, cert.emp_risk, cert.kl, cert.n_bound, parts["pac_bayes"] / k,
                                 mc_samples=cert.mc_samples if mc else None,
                                 mc_delta=parts["monte_carlo"] / k if mc else None).value


FOUR = [("seeger", 0.04, 30.0), ("catoni", 0.04, 30.0), ("seeger", 0.04, 5.0), ("seeger", 0.035, 12.0)]


def test_a_nested_minimum_pays_for_every_candidate_ever_looked_at():
    certs = [_cert(*spec) for spec in FOUR]
    best3 = union_minimum(certs[:3], ["a", "b", "c"])
    assert best3.candidates == 3 and best3.value == min(_at(c, 3) for c in certs[:3])
    again = union_minimum([best3, certs[3]], ["best3", "d"])
    flat = union_minimum(certs, ["a", "b", "c", "d"])
    # Both are paid at delta/4: the flat minimum over all four, and the earlier winner and the new one.
    assert again.candidates == flat.candidates == 4
    assert flat.value == min(_at(c, 4) for c in certs)
    assert again.value == min(_at(certs[2], 4), _at(certs[3], 4)) >= flat.value
    # The old rule (each input at delta/2 from its raw inputs) gave less than the honest flat minimum.
    assert min(_at(certs[2], 2), _at(certs[3], 2)) < flat.value
    assert again.details["selection"]["candidates"] == [3, 1]
    assert again.details["selection"]["nested"]["best3"]["labels"] == ["a", "b", "c"]
    assert again.details["delta_effective"] == pytest.approx(0.025 / 4)


def test_a_selection_passed_back_alone_keeps_its_payment():
    certs = [_cert(*spec) for spec in FOUR[:3]]
    best3 = union_minimum(certs)
    assert union_minimum([best3]).value == best3.value > min(c.value for c in certs)
    assert Certificate.from_dict(best3.to_dict()).candidates == 3


def test_the_quickstart_records_best_cannot_be_made_cheaper():
    record = json.loads((RESULTS / "pac-bayes-quickstart-digits.json").read_text())
    best = Certificate.from_dict(record["best"])
    assert best.candidates == 2
    assert union_minimum([best]).value == best.value == pytest.approx(0.058885559, abs=1e-9)
    assert union_minimum([best]).value > Certificate.from_dict(record["results"][0]["certificate"]).value


def test_pay_for_choice_charges_every_setting_looked_at():
    cert = _cert("seeger", 0.04, 30.0)
    kept = pay_for_choice(cert, 5, "per-pixel standardisation", "preprocessing, 5 variants")
    assert kept.candidates == 5 and kept.value == _at(cert, 5) > cert.value
    assert kept.delta_parts == cert.delta_parts and kept.delta == cert.delta
    assert kept.details["selection"]["unrecorded_candidates"] == 4
    assert pay_for_choice(cert, 1, "only", "nothing chosen") is cert
    # Two certificates of the kept setting, each paid for the 5 settings: their minimum pays for 10.
    other = pay_for_choice(_cert("catoni", 0.04, 30.0), 5, "per-pixel standardisation", "preprocessing")
    both = union_minimum([kept, other])
    assert both.candidates == 10 and both.value == min(_at(cert, 10), _at(_cert("catoni", 0.04, 30.0), 10))
    # A choice over an earlier choice multiplies: 3 variants of a 5-way-chosen setting.
    assert pay_for_choice(kept, 3, "x", "y").candidates == 15
    with pytest.raises(ValueError, match="'looked_at'"):
        pay_for_choice(cert, 0, "x", "y")


def test_a_selection_must_record_a_whole_positive_count():
    good = union_minimum([_cert("seeger", 0.04, 30.0)] * 2).to_dict()
    for bad in (0, 2.5, None):
        data = json.loads(json.dumps(good))
        data["details"]["selection"]["k"] = bad
        with pytest.raises(ValueError, match="selection"):
            Certificate.from_dict(data)


_leaf = st.tuples(st.sampled_from(["seeger", "catoni", "quad", "mcallester"]), st.floats(0.0, 0.5),
                  st.floats(0.0, 200.0))
_tree = st.recursive(_leaf, lambda kids: st.one_of(st.lists(kids, min_size=1, max_size=3),
                                                    st.tuples(st.just("choice"), st.integers(1, 4), kids)),
                     max_leaves=6)


def _build(tree, leaves: list[Certificate]) -> Certificate:
    """A certificate for ``tree``: a leaf, a minimum over a list of subtrees, or a paid choice among k."""
    if isinstance(tree, list):
        return union_minimum([_build(t, leaves) for t in tree])
    if tree[0] == "choice":
        return pay_for_choice(_build(tree[2], leaves), tree[1], "kept", "property test")
    leaves.append(_cert(tree[0], tree[1], tree[2], mc=False))
    return leaves[-1]


@settings(max_examples=60, deadline=None)
@given(_tree)
def test_nested_selections_are_never_below_the_flat_union_over_every_candidate(tree):
    leaves: list[Certificate] = []
    paid = _build(tree, leaves)
    k = paid.candidates
    assert k >= len(leaves)
    # The flat union bound over every candidate ever looked at: each at delta/k (unrecorded candidates of a
    # paid choice could have any value, so the recorded leaves are the most favourable case for the flat one).
    flat = min(_at(c, k) for c in leaves)
    assert paid.value >= flat
    assert math.fsum(paid.delta_parts.values()) <= paid.delta


@pytest.mark.integration
def test_a_run_that_kept_its_settings_among_several_pays_for_them(tmp_path):
    from genbounds.experiments import pac_bayes_runner as pbm

    cfg = pbm.PacBayesConfig.flat(arch="mlp", prior_dropout=0.0, widths=(16,), prior_epochs=2, epochs=2, mc_r=2, mc_m=4,
                                  objectives=("quad",), settings_looked_at=3)
    record = pbm.run_pac_bayes(cfg, tmp_path / "paid", progress=False, log=lambda _: None).to_dict()
    free = pbm.run_pac_bayes(cfg.replace(settings_looked_at=1), tmp_path / "free", progress=False,
                             log=lambda _: None).to_dict()
    for key in ("certificate", "certificate_weights", "certificate_excess"):
        paid, raw = (Certificate.from_dict(r["results"][0][key]) for r in (record, free))
        assert paid.candidates == 3 and paid.emp_risk == raw.emp_risk and paid.kl == raw.kl
        assert paid.value == _at(raw, 3) >= raw.value
    # The record's best is the combined certificate, quoted by a rule fixed in advance; it pays for the 3 settings.
    assert record["best"]["details"]["selection"]["k"] == 3
    assert record["best"]["details"]["selection"]["chosen"] == "quad (excess)"
    with pytest.raises(ValueError, match="'settings_looked_at'"):
        cfg.replace(settings_looked_at=0)


def test_the_pbb_recipes_pay_for_the_settings_looked_at_on_their_bound_set():
    from genbounds.experiments.recipes import RECIPES

    for name in ("pbb-fashion-fcn", "pbb-fashion-cnn", "pbb-fashion-cnn-aug"):
        assert all(cfg.settings_looked_at == 6 for _, cfg in RECIPES[name].runs), name
        record = json.loads((RESULTS / "reproduce" / f"{name}.json").read_text())
        cert = Certificate.from_dict(record["results"][0]["certificate"])
        assert cert.candidates == 6 and record["config"]["settings_looked_at"] == 6, name
    fcn = json.loads((RESULTS / "reproduce" / "pbb-fashion-fcn.json").read_text())["results"][0]["certificate"]
    assert fcn["value"] == pytest.approx(0.150989, abs=1e-6)


def test_selection_reads_back_typed_and_writes_the_record_unchanged() -> None:
    """``Certificate.selection`` is the typed view of ``details["selection"]``: a nested selection reads back with
    its K, labels, winner, per-candidate shares and inner selection, and writes the recorded dict unchanged."""
    inner = pay_for_choice(_cert("seeger", 0.04, 30.0), 3, "lr 0.01", "learning rate")
    outer = union_minimum([inner, _cert("catoni", 0.04, 30.0)], labels=["seeger", "catoni"])
    sel = outer.selection
    assert sel is not None and sel.k == 4 and sel.labels == ("seeger", "catoni") and sel.candidates == (3, 1)
    assert sel.chosen in sel.labels and sel.nested["seeger"].k == 3 and sel.nested["seeger"].reason == "learning rate"
    assert sum(sel.delta_parts_each.values()) * 4 <= outer.delta
    assert sel.to_dict() == outer.details["selection"]
    assert _cert("seeger", 0.04, 30.0).selection is None


def test_selection_of_records_written_before_the_newer_fields() -> None:
    """Stored records from before ``candidates``/``values_given`` still read: their values are the old
    ``values_at_full_delta``, candidates unknown."""
    seen = 0
    for path in RESULTS.rglob("*.json"):
        for cert in _certificates_in(json.loads(path.read_text())):
            sel = cert.selection
            if sel is not None:
                seen += 1
                assert sel.k >= len(sel.labels) >= 1 and sel.chosen in sel.labels + tuple(sel.nested)
                assert len(sel.values_given) == len(sel.labels)
    assert seen >= 10


def _certificates_in(obj: object) -> list[Certificate]:
    """Every certificate dict (by its schema tag) anywhere in a record, read back."""
    if isinstance(obj, dict):
        if obj.get("schema") == "genbounds.certificate/1":
            return [Certificate.from_dict(obj)]
        return [c for v in obj.values() for c in _certificates_in(v)]
    if isinstance(obj, list):
        return [c for v in obj for c in _certificates_in(v)]
    return []
