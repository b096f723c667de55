"""The combined (held-out + excess) certificate of a stochastic network: its Monte Carlo counts agree with
method (b)'s draws, it is recomputable, and it is never worse than the prior network's test-set share."""

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genbounds.bounds import Certificate, test_set_bound, union_minimum
from genbounds.estimators import nets, snn
from genbounds.estimators.data import Dataset


def _blobs(n=300, d=10, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.stack([-np.ones(d), np.ones(d)])[y] * 0.4 + rng.normal(size=(n, d))
    return Dataset(x.astype(np.float32).reshape(n, d, 1, 1), y.astype(np.int32), 2, "blobs")


@pytest.fixture(scope="module")
def setting():
    data = _blobs()
    net = nets.mlp((10, 1, 1), (16,), 2)
    idx = np.arange(100)
    mean = snn.train_deterministic(net, net.init(jax.random.PRNGKey(0)), data.take(idx), key=jax.random.PRNGKey(1),
                                   epochs=5, batch_size=50, optimizer=optax.sgd(0.05, momentum=0.9), progress=False)
    prior = snn.Prior(mean, 0.05, data_indices=idx)
    return net, data, prior, snn.init_posterior(mean, 0.05)


def test_ternary_counts_are_method_b_draws_against_the_prior_network(setting):
    net, data, prior, post = setting
    bset, _ = snn.bound_set(data, prior)
    key = jax.random.PRNGKey(7)
    counts = snn.ternary_draws(net, post, prior.family, bset, prior.mean, r=4, key=key)
    mc = snn.mc_independent(net, post, prior.family, bset, r=4, key=key)
    k = counts.reference_errors
    assert k == round(snn.error_rate(net, prior.mean, bset) * len(bset))
    assert counts.draws == 4 * len(bset) == mc.n_samples
    assert 4 * k + counts.plus_draws - counts.minus_draws == round(mc.zero_one * mc.n_samples)
    assert counts.plus_draws + counts.minus_draws > 0          # the noise makes some draws disagree


def test_certify_excess_records_what_it_certifies_and_pays_in_a_union(setting):
    net, data, prior, post = setting
    key = jax.random.PRNGKey(7)
    cert_b, _ = snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(4))
    cert, counts = snn.certify_excess(net, post, prior, data, key=key, r=4, delta=cert_b.delta)
    n = len(data) - prior.n_data
    assert cert.delta == cert_b.delta == 0.035
    assert sum(map(Fraction, cert.delta_parts.values())) <= Fraction(cert.delta)
    assert cert.n_bound == n and cert.n_prior == 100 and cert.mc_samples == 4 * n
    ts = test_set_bound(counts.reference_errors, n, cert.delta_parts["test_set"])
    assert cert.value <= ts and cert.details["reference_bound"] == ts
    assert cert.details["certifies"] == ("posterior" if cert.details["excess_bound"] < 0 else "reference")
    assert cert.kl == pytest.approx(cert_b.kl, rel=1e-12)
    # (b)'s Monte Carlo risk and the excess certificate's come from the same draws
    assert cert.emp_risk == pytest.approx(cert_b.emp_risk, abs=1e-12)
    assert Certificate.from_dict(cert.to_dict()) == cert
    best = union_minimum([cert_b, cert], ["(b)", "excess"])
    assert best.details["selection"]["k"] == 2 and best.value >= min(cert_b.value, cert.value)
    assert math.isclose(union_minimum([cert]).value, cert.value)


def test_one_pass_gives_both_certificates_exactly_as_two_passes(setting):
    net, data, prior, post = setting
    key = jax.random.PRNGKey(11)
    details = {"objective": "quad"}
    cert_b, mc_b = snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(3), details=details)
    cert_x, counts = snn.certify_excess(net, post, prior, data, key=key, r=3, delta=cert_b.delta, details=details)
    (one_b, one_mc), (one_x, one_counts) = snn.certify_with_excess(net, post, prior, data, key=key, r=3,
                                                                   details=details)
    assert one_b == cert_b and one_x == cert_x and one_x.to_dict() == cert_x.to_dict()
    assert one_counts._replace(seconds=0.0) == counts._replace(seconds=0.0)
    assert (one_mc.zero_one, one_mc.cross_entropy, one_mc.n_samples) == (mc_b.zero_one, mc_b.cross_entropy,
                                                                         mc_b.n_samples)
    np.testing.assert_array_equal(one_mc.per_group, mc_b.per_group)
    # another key: other draws, so the pass is not replaying a cache
    (other_b, _), _ = snn.certify_with_excess(net, post, prior, data, key=jax.random.PRNGKey(12), r=3)
    assert other_b.emp_risk != cert_b.emp_risk


def test_one_pass_refuses_before_drawing(setting):
    net, data, prior, post = setting
    with pytest.raises(ValueError, match="method"):
        snn.certify_with_excess(net, post, prior, data, key=jax.random.PRNGKey(0), r=2, method="median")
    with pytest.raises(ValueError, match="'r'"):
        snn.certify_with_excess(net, post, prior, data, key=jax.random.PRNGKey(0), r=0)


def test_a_dp_prior_has_no_independent_reference(setting):
    net, data, prior, post = setting
    dp = snn.Prior(prior.mean, 0.05, dp={"epsilon": 1.0})
    with pytest.raises(ValueError, match="argument 'prior'"):
        snn.certify_excess(net, post, dp, data, key=jax.random.PRNGKey(0), r=2)


def test_the_excess_objective_is_the_unexpected_bernstein_bound_at_its_eta():
    """At eta = 1/4 (theta = 0): (d+ - d-) + psi(-eta)/eta (d+ + d-) + (KL + ln(6/(0.07 delta)))/(eta n), the
    grid paid at the excess bound's share of delta."""
    obj = snn.get_objective("excess")
    eta = 0.25
    coef = (-eta - math.log1p(-eta)) / eta
    want = (0.01 - 0.03) + coef * 0.04 + (2.0 + math.log(6 / (0.07 * 0.025))) / (eta * 1000)
    got = float(obj(jnp.array([0.01, 0.03]), jnp.float32(2.0), 1000, 0.025, {"eta": jnp.float32(0.0)}))
    assert got == pytest.approx(want, rel=1e-5) and obj.relative


def test_training_against_the_excess_objective_fixes_more_than_it_breaks(setting):
    """Trained against the excess objective on all the data, the posterior stays close to the prior network
    (few disagreements) and the objective falls."""
    net, data, prior, post = setting
    step = snn.posterior_step(net, prior, optimizer=optax.adam(1e-3), objective_name="excess", n_bound=200)
    state, hist = snn.train_posterior(step, post, data, key=jax.random.PRNGKey(3), epochs=4, batch_size=50,
                                      progress=False)
    assert hist[-1]["objective"] < hist[0]["objective"]
    cert, counts = snn.certify_excess(net, state.posterior, prior, data, key=jax.random.PRNGKey(4), r=4)
    assert (counts.plus_draws + counts.minus_draws) / counts.draws < 0.2


def test_certify_network_reports_the_prior_networks_baseline_and_the_combined_certificate(setting):
    net, data, prior, post = setting
    with pytest.warns(UserWarning):
        cert, _ = snn.certify_network(net, prior.mean, data, key=jax.random.PRNGKey(5), prior_mean=prior.mean,
                                      prior_indices=prior.data_indices, epochs=1, r=2, progress=False)
    held = Certificate.from_dict(cert.details["heldout_baseline"])
    combined = Certificate.from_dict(cert.details["combined"])
    bset, _ = snn.bound_set(data, prior)
    k = round(snn.error_rate(net, prior.mean, bset) * len(bset))
    assert held.details["k_errors"] == k and held.value == test_set_bound(k, len(bset), cert.delta)
    assert held.delta == combined.delta == cert.delta and combined.n_bound == cert.n_bound == len(bset)
    assert combined.value <= test_set_bound(k, len(bset), combined.delta_parts["test_set"])
