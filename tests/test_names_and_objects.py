"""Objects inside the library, names only at its edges: a prior holds its :class:`Family`, a
certificate takes its Monte Carlo estimate as an object, the closed sets of names are
:class:`enum.StrEnum` members read once, and the PAC-Bayes bounds are named in one place."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import jax
import numpy as np
import pytest
from posteriors import tiny_task

from genbounds import bounds as B
from genbounds.estimators import snn
from genbounds.experiments import commands

ROOT = Path(__file__).resolve().parent.parent
#: A family (a variable or attribute so named) compared with a name: what per-family fields replace.
FAMILY_BY_NAME = re.compile(r"""\bfamily\s*[!=]=\s*["']""")


def test_no_family_is_compared_with_a_name_outside_families_py():
    hits = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "build") or rel.as_posix() == "estimators/snn/families.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if FAMILY_BY_NAME.search(line):
                hits.append(f"{rel}:{i}: {line.strip()}")
    assert hits == [], "\n".join(hits)


def _prior(name: str):
    data, net, params = tiny_task()
    scale = 0.5 if name == "mask" else 0.1
    return data, net, params, scale, snn.Prior(params, scale, name, np.arange(20))


@pytest.mark.parametrize("name", snn.FAMILIES)
def test_a_prior_holds_its_family_object(name):
    _, _, params, scale, prior = _prior(name)
    assert isinstance(prior.family, snn.Family) and prior.family is snn.get_family(name)
    assert snn.Prior(params, scale, prior.family, np.arange(20)).family is prior.family
    assert pickle.loads(pickle.dumps(prior.family)) is prior.family
    assert prior.kind is snn.PriorKind.DATA and snn.Prior(params, scale, name).kind is snn.PriorKind.INIT


#: One family certified in the unit tests (its compiled passes are shared with the test below); every family in
#: the full suite (each compiles its own certification passes).
_RECORD_CASES = [pytest.param(f, marks=() if f == "gaussian" else pytest.mark.integration) for f in snn.FAMILIES]


@pytest.mark.parametrize("name", _RECORD_CASES)
def test_a_certificate_records_the_prior_family_and_kind_by_name(name):
    data, net, params, _, prior = _prior(name)
    post = prior.family.init(params, prior)
    cert, _ = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(2))
    record = cert.to_dict()["details"]["prior"]
    assert (type(record["family"]), record["family"]) == (str, name)
    assert (type(record["kind"]), record["kind"]) == (str, "data")


def test_family_fields_say_what_the_prior_scale_is():
    mask, gaussian = snn.get_family("mask"), snn.get_family("gaussian")
    assert (mask.scale_means, mask.learns_prior_scale, mask.needs_data_prior, mask.private_mean) == (
        "keep probabilities", False, True, False)
    assert (gaussian.scale_means, gaussian.learns_prior_scale, gaussian.needs_data_prior) == ("std", True, False)
    _, _, params = tiny_task()
    with pytest.raises(ValueError, match="keep probabilities: they must lie in"):
        snn.Prior(params, 1.5, snn.MASK)
    with pytest.raises(ValueError, match="argument 'scale' must be a number > 0"):
        snn.Prior(params, -1.0, snn.LAPLACE)
    with pytest.raises(ValueError, match=r"argument 'family' must be one of \('gaussian', 'laplace', 'mask'"):
        snn.Prior(params, 0.1, "gauss")


def test_certify_takes_the_monte_carlo_estimate_as_an_object_and_records_its_names():
    data, net, params = tiny_task()
    prior = snn.Prior(params, 0.1, "gaussian", np.arange(20))
    post = snn.init_posterior(params, 0.05)
    key = jax.random.PRNGKey(3)
    cert_b, mc_b = snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(3))
    cert_a, mc_a = snn.certify(net, post, prior, data, key=key, estimate=snn.WeightDraws(7))
    assert (cert_b.mc_samples, cert_b.details["mc_method"], cert_b.details["mc_method_param"]) == (
        40 * 3, "independent", {"r": 3})
    assert (cert_a.mc_samples, cert_a.details["mc_method"], cert_a.details["mc_method_param"]) == (
        7, "weights", {"m": 7})
    assert (snn.PerExampleDraws.label, snn.WeightDraws.label) == ("(b)", "(a)")
    # The estimate objects run the same programs as the functions behind them.
    assert mc_b.zero_one == snn.mc_independent(net, post, prior.family, data.take(np.arange(20, 60)), r=3,
                                               key=key).zero_one
    assert mc_a.zero_one == snn.mc_weight_samples(net, post, "gaussian", data.take(np.arange(20, 60)), m=7,
                                                  key=key).zero_one
    with pytest.raises(ValueError, match="argument 'estimate' must be PerExampleDraws"):
        snn.certify(net, post, prior, data, key=key, estimate="independent")


def test_the_pac_bayes_bounds_are_named_in_one_place():
    assert commands.PAC_BAYES_ORDER == tuple(B.PacBayesBound)
    assert set(B.PAC_BAYES_BOUNDS) == set(B.PacBayesBound)
    for obj in snn.OBJECTIVE_REGISTRY.values():
        if obj.relative:        # trains against the combined certificate's excess bound
            assert obj.bound in B.EXCESS_BOUNDS and obj.name == "excess"
            continue
        assert obj.bound in B.PAC_BAYES_BOUNDS
        assert obj.name == obj.bound or (obj.name, obj.bound) == ("classic", "mcallester")
    assert snn.OBJECTIVES == ("classic", "seeger", "quad", "lambda", "catoni", "excess")
    assert snn.get_objective("mcallester") is snn.get_objective("classic")
    with pytest.raises(ValueError, match=r"argument 'bound' must be one of \('seeger', 'catoni'"):
        B.pac_bayes_certificate("seger", 0.03, 5000.0, 55000, 0.025)
    with pytest.raises(ValueError, match=r"argument 'objective' must be one of \('classic', 'seeger'"):
        snn.get_objective("kl")
    cert = B.pac_bayes_certificate(B.PacBayesBound.CATONI, 0.03, 5000.0, 55000, 0.025)
    assert type(cert.bound) is str and cert.bound == "catoni" and cert == B.pac_bayes_certificate(
        "catoni", 0.03, 5000.0, 55000, 0.025)
