"""Differentially private priors (Dziugaite & Roy 2018): the max-information adjustment against the
reference sheet's worked example, the exponential mechanism's epsilon on a finite class, a coverage
simulation with an exactly private prior, certificates that record epsilon and the privacy caveat,
and refusals."""

import math

import jax
import numpy as np
import pytest

from genbounds.bounds import (
    dp_max_information,
    dp_prior_kl_adjustment,
    kl_inv_upper,
    pac_bayes_certificate,
    seeger,
    union_minimum,
)
from genbounds.estimators import nets, snn
from genbounds.experiments.pac_bayes_runner import PacBayesConfig, run_pac_bayes
from genbounds.experiments.report import rows_from_record


def test_adjustment_matches_the_worked_example():
    # Sheet: m = 60000, delta = 0.05, eps = 0.03266: extra kl budget 7.31e-4; ln(4 sqrt m / delta) / m = 1.647e-4.
    m, delta, eps = 60000, 0.05, 0.03266
    extra = (dp_prior_kl_adjustment(eps, m, delta) - math.log(2)) / m
    assert extra == pytest.approx(eps**2 / 2 + eps * math.sqrt(math.log(4 / delta) / (2 * m)), rel=1e-12)
    assert extra == pytest.approx(7.31e-4, abs=5e-7)
    assert (math.log(2 * math.sqrt(m) / delta) + math.log(2)) / m == pytest.approx(1.647e-4, abs=5e-8)
    assert dp_prior_kl_adjustment(0.0, m, delta) == pytest.approx(math.log(2))      # eps = 0 still costs ln 2
    assert dp_max_information(0.1, 100, 0.01) == pytest.approx(0.5 + 0.1 * math.sqrt(100 * math.log(200) / 2))
    for bad in (dict(epsilon=-1.0, n=10, beta=0.1), dict(epsilon=0.1, n=0, beta=0.1), dict(epsilon=0.1, n=10, beta=1)):
        with pytest.raises(ValueError):
            dp_max_information(**bad)


def test_certificate_pays_the_adjustment_and_records_it():
    plain = pac_bayes_certificate("seeger", 0.1, 20.0, 5000, 0.025, mc_samples=50000, mc_delta=0.01)
    dp = pac_bayes_certificate("seeger", 0.1, 20.0, 5000, 0.025, mc_samples=50000, mc_delta=0.01, dp_epsilon=0.05,
                               dp_mechanism={"privacy": "approximate: test"})
    adj = dp_prior_kl_adjustment(0.05, 5000, 0.025)
    assert dp.value == pytest.approx(float(seeger(plain.emp_risk_bound, 20.0 + adj, 5000, 0.025)), abs=1e-12)
    assert dp.value > plain.value and dp.kl == 20.0
    k = adj - math.log(2)
    assert dp.details["dp_prior"] == {"epsilon": 0.05, "adjustment_nats": adj, "max_information_nats": k,
                                      "beta": 0.0125, "ln_delta_fixed_prior": math.log(0.0125) - k,
                                      "privacy": "approximate: test"}
    # The two parts of the PAC-Bayes delta: beta + delta' <= delta.
    assert 0.0125 + math.exp(math.log(0.0125) - k) <= 0.025
    # The union bound recomputes the adjustment at each share of delta.
    both = union_minimum([dp, dp], ["a", "b"])
    assert both.value > dp.value and both.details["dp_prior"]["epsilon"] == 0.05
    assert both.details["dp_prior"]["beta"] == pytest.approx(0.025 / 4)
    assert both.details["dp_prior"]["privacy"] == "approximate: test"
    # A mechanism description cannot overwrite what the certificate derives.
    forged = pac_bayes_certificate("seeger", 0.1, 20.0, 5000, 0.025, mc_samples=50000, mc_delta=0.01,
                                   dp_epsilon=0.05, dp_mechanism={"adjustment_nats": 0.0, "epsilon": 0.0})
    assert forged.details["dp_prior"]["adjustment_nats"] == adj and forged.details["dp_prior"]["epsilon"] == 0.05


def test_exponential_mechanism_epsilon_on_a_finite_class():
    """Gibbs distribution over 21 thresholds, exp(-tau R_S(h)): over every replace-one neighbour the
    log-probability ratio is at most 2 tau / m."""
    rng = np.random.default_rng(0)
    m, tau = 12, 2.0
    x, y = rng.uniform(size=m), rng.integers(0, 2, m)
    thresholds = np.linspace(0, 1, 21)

    def log_gibbs(xs, ys):
        risk = np.mean((xs[None, :] > thresholds[:, None]) != ys[None, :], axis=1)
        lw = -tau * risk
        return lw - np.logaddexp.reduce(lw)

    base, worst = log_gibbs(x, y), 0.0
    for i in range(m):
        for xi in np.linspace(0, 1, 7):
            for yi in (0, 1):
                x2, y2 = x.copy(), y.copy()
                x2[i], y2[i] = xi, yi
                worst = max(worst, float(np.max(np.abs(log_gibbs(x2, y2) - base))))
    assert 0 < worst <= snn.gibbs_epsilon(tau, m) + 1e-12
    assert snn.gibbs_tau(snn.gibbs_epsilon(tau, m), m) == pytest.approx(tau)


def test_coverage_with_an_exactly_private_prior_centre():
    """Threshold classifiers with 20% label noise, R_D(h) known exactly. The prior's centre is drawn by
    the exact exponential mechanism on S; prior and posterior are distributions over a threshold grid;
    the DP-adjusted kl bound fails on at most delta of 2000 samples."""
    rng = np.random.default_rng(1)
    grid = np.linspace(0, 1, 101)
    true_t, noise, m, delta, eps = 0.4, 0.2, 200, 0.1, 1.0
    tau = snn.gibbs_tau(eps, m)
    risk_d = noise + (1 - 2 * noise) * np.abs(grid - true_t)          # x ~ U[0, 1]
    failures = 0
    for _ in range(2000):
        x = rng.uniform(size=m)
        y = (x > true_t).astype(int) ^ (rng.uniform(size=m) < noise)
        emp = np.mean((x[None, :] > grid[:, None]) != y[None, :], axis=1)
        lw = -tau * emp
        centre = grid[rng.choice(grid.size, p=np.exp(lw - np.logaddexp.reduce(lw)))]
        prior = np.exp(-np.abs(grid - centre) / 0.05)
        prior /= prior.sum()
        post = np.exp(-m * emp)                                           # a Gibbs posterior around the ERM
        post /= post.sum()
        kl = float(np.sum(np.where(post > 0, post * (np.log(np.maximum(post, 1e-300)) - np.log(prior)), 0.0)))
        c = (kl + math.log(2 * math.sqrt(m) / delta) + dp_prior_kl_adjustment(eps, m, delta)) / m
        failures += float(kl_inv_upper(float(post @ emp), c)) < float(post @ risk_d)
    assert failures / 2000 <= delta


def test_dp_prior_refusals():
    net = nets.mlp((4, 1, 1), (3,), 2)
    w = net.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="cannot also hold out"):
        snn.Prior(w, 0.1, data_indices=np.arange(3), dp={"epsilon": 0.1})
    with pytest.raises(ValueError, match="location family"):
        snn.Prior(w, 0.5, "mask", dp={"epsilon": 0.1})
    with pytest.raises(ValueError, match="epsilon"):
        snn.Prior(w, 0.1, dp={"epsilon": -1.0})
    with pytest.raises(ValueError, match="dp_epsilon"):
        PacBayesConfig.flat(prior="dp", dp_epsilon=0.0)
    with pytest.raises(ValueError, match="standardize"):
        PacBayesConfig.flat(prior="dp", standardize=True)


@pytest.mark.integration
def test_dp_run_uses_all_data_and_labels_the_certificate(tmp_path):
    cfg = PacBayesConfig.flat(arch="mlp", widths=(32,), prior="dp", dp_epsilon=0.2, dp_epochs=2, epochs=1,
                              optimizer="adam", lr=0.001, mc_r=2, mc_m=0, prior_dropout=0.0)
    record = run_pac_bayes(cfg, tmp_path, progress=False, log=lambda m: None).to_dict()
    cert = record["results"][0]["certificate"]
    assert cert["n_prior"] == 0 and cert["n_bound"] == cert["details"]["split"]["n_train"]
    dp = cert["details"]["dp_prior"]
    assert dp["epsilon"] == 0.2 and dp["privacy"].startswith("approximate")
    assert dp["adjustment_nats"] == pytest.approx(dp_prior_kl_adjustment(0.2, cert["n_bound"], 0.025))
    assert cert["details"]["prior"]["kind"] == "dp"
    row = rows_from_record(record)[0]
    assert row["kind"] == "certificate if SGLD's privacy approximation holds" and row["prior"].startswith("dp")
