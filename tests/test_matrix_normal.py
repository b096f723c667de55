"""Matrix-normal (Kronecker-factored) Gaussian weights: the closed-form KL against the dense Gaussian
with covariance V kron U, its scale invariance, the exact per-example draws of a dense layer, and
coverage of certificate (b) against an exactly computable risk."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.stats import norm

from genbounds.bounds import kl_matrix_normal, sample_convergence
from genbounds.estimators import nets, snn
from genbounds.estimators.data import Dataset


def _tril(rng, k):
    f = np.tril(rng.normal(size=(k, k)))
    np.fill_diagonal(f, np.abs(np.diag(f)) + 0.3)
    return f


def _dense_gaussian_kl(m1, a1, b1, m0, a0, b0):
    """KL between the dense Gaussians of vec(W) (column-major): mean vec M, covariance V kron U."""
    mu1, mu0 = m1.reshape(-1, order="F"), m0.reshape(-1, order="F")
    s1, s0 = np.kron(b1 @ b1.T, a1 @ a1.T), np.kron(b0 @ b0.T, a0 @ a0.T)
    s0_inv = np.linalg.inv(s0)
    d = mu0 - mu1
    return 0.5 * (np.trace(s0_inv @ s1) + d @ s0_inv @ d - len(mu1)
                  + np.linalg.slogdet(s0)[1] - np.linalg.slogdet(s1)[1])


@pytest.mark.parametrize("n, p", [(1, 1), (2, 5), (4, 3), (5, 5)])
def test_closed_form_kl_equals_the_dense_kronecker_gaussian(n, p):
    rng = np.random.default_rng(n * 10 + p)
    m, m0 = rng.normal(size=(n, p)), rng.normal(size=(n, p))
    a, b, a0, b0 = _tril(rng, n), _tril(rng, p), _tril(rng, n), _tril(rng, p)
    ref = _dense_gaussian_kl(m, a, b, m0, a0, b0)
    assert float(kl_matrix_normal(m, a, b, m0, a0, b0)) == pytest.approx(ref, rel=1e-10, abs=1e-10)
    # Isotropic prior N(M0, s^2 I) given as scalars.
    iso = _dense_gaussian_kl(m, a, b, m0, 0.7 * np.eye(n), np.eye(p))
    assert float(kl_matrix_normal(m, a, b, m0, 0.7, 1.0)) == pytest.approx(iso, rel=1e-10)
    # The JAX path (training objectives) agrees in float32.
    jx = kl_matrix_normal(*(jnp.asarray(x, jnp.float32) for x in (m, a, b, m0)), 0.7, 1.0)
    assert float(jx) == pytest.approx(iso, rel=1e-4)
    # (A, B) -> (cA, B/c) is the same distribution: the same KL.
    assert float(kl_matrix_normal(m, 3.0 * a, b / 3.0, m0, a0, b0)) == pytest.approx(ref, rel=1e-9)
    with pytest.raises(ValueError, match="positive diagonal"):
        kl_matrix_normal(m, -a, b, m0, a0, b0)


def _mn_posterior(net, key, prior_scale=0.3):
    mean = net.init(key)
    prior = snn.Prior(mean, prior_scale, "matrix_normal")
    post = snn.get_family("matrix_normal").init(mean, prior)
    rng = np.random.default_rng(0)
    rho = jax.tree_util.tree_map(lambda r: jnp.asarray(np.asarray(r) + 0.3 * rng.normal(size=np.shape(r)),
                                                       jnp.float32), post.rho)
    shifted = jax.tree_util.tree_map(lambda m: m + 0.2, mean)
    return snn.Posterior(shifted, rho), prior


def test_isotropic_start_has_zero_kl_and_the_float64_kl_matches_training():
    net = nets.mlp((6, 1, 1), (5,), 3)
    mean = net.init(jax.random.PRNGKey(0))
    prior = snn.Prior(mean, 0.05, "matrix_normal")
    start = snn.get_family("matrix_normal").init(mean, prior)
    assert snn.kl_float64(start, prior) == pytest.approx(0.0, abs=1e-6)
    f = snn.matrix_normal_factors(start)["dense"][0]["w"]
    cov = np.kron(f["b"] @ f["b"].T, f["a"] @ f["a"].T)
    np.testing.assert_allclose(cov, 0.05 ** 2 * np.eye(30), atol=1e-8)          # float32 factors
    post, prior = _mn_posterior(net, jax.random.PRNGKey(0))
    assert snn.kl_float64(post, prior) == pytest.approx(float(snn.kl_divergence(post, prior.mean, 0.3,
                                                                                 "matrix_normal")), rel=1e-4)


def test_per_example_draws_have_the_moments_of_a_matrix_normal_layer():
    """The local reparameterisation of a dense layer: mean h M + m_b and covariance
    ||h A||^2 B B^T + diag(s_b^2), exactly those of h W + b with W ~ MN(M, AA^T, BB^T)."""
    net = nets.mlp((3, 1, 1), (), 4)
    post, _ = _mn_posterior(net, jax.random.PRNGKey(1))
    fam = snn.get_family("matrix_normal")
    x = jnp.asarray([[0.5, -1.0, 2.0]]).reshape(1, 3, 1, 1)
    keys = jax.random.split(jax.random.PRNGKey(2), 100_000)
    local = np.asarray(jax.vmap(lambda k: fam.independent_logits(net, k, post, x)[0])(keys), np.float64)
    direct = np.asarray(jax.vmap(lambda k: net.apply(fam.sample(k, post), x)[0])(keys), np.float64)
    m, f = post.mean["dense"][0], snn.matrix_normal_factors(post)["dense"][0]
    h = np.asarray(x).reshape(1, 3)
    mean = (h @ np.asarray(m["w"]) + np.asarray(m["b"]))[0]
    a, b, sb = (np.asarray(v, np.float64) for v in (f["w"]["a"], f["w"]["b"], f["b"]))
    cov = np.sum((h @ a) ** 2) * b @ b.T + np.diag(sb ** 2)
    for draws in (local, direct):
        se = np.sqrt(np.diag(cov) / len(draws))
        assert np.all(np.abs(draws.mean(0) - mean) < 5 * se)
        np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.03, atol=0.03 * np.abs(cov).max())


def test_matrix_normal_certificate_b_covers_the_exact_risk():
    """A linear 2-class model: the logit difference is Gaussian with a known variance per example,
    so the Gibbs risk is exact; certificate (b)'s Monte Carlo step covers it."""
    rng = np.random.default_rng(0)
    n, d = 300, 6
    y = rng.integers(0, 2, n)
    x = (np.stack([-np.ones(d), np.ones(d)])[y] * 0.6 + 1.5 * rng.normal(size=(n, d))).astype(np.float32)
    data = Dataset(x.reshape(n, d, 1, 1), y.astype(np.int32), 2, "blobs")
    net = nets.mlp((d, 1, 1), (), 2)
    post, _ = _mn_posterior(net, jax.random.PRNGKey(3), prior_scale=0.4)
    m, f = post.mean["dense"][0], snn.matrix_normal_factors(post)["dense"][0]
    w, bias = np.asarray(m["w"], np.float64), np.asarray(m["b"], np.float64)
    a, b, sb = (np.asarray(v, np.float64) for v in (f["w"]["a"], f["w"]["b"], f["b"]))
    v = b @ b.T
    diff_mean = x @ (w[:, 1] - w[:, 0]) + bias[1] - bias[0]
    diff_var = np.sum((x @ a) ** 2, axis=1) * (v[0, 0] + v[1, 1] - 2 * v[0, 1]) + sb[0] ** 2 + sb[1] ** 2
    p_class1 = norm.sf(0.0, loc=diff_mean, scale=np.sqrt(diff_var))
    per_example = np.where(y == 1, 1 - p_class1, p_class1)
    exact, sum_pq = per_example.mean(), float(np.sum(per_example * (1 - per_example)))
    assert 0.1 < exact < 0.9
    delta, reps = 0.1, 300
    mc = snn.mc_independent(net, post, "matrix_normal", data, r=reps, key=jax.random.PRNGKey(0))
    sd = math.sqrt(sum_pq) / n
    assert abs(mc.per_group.mean() - exact) < 4 * sd / math.sqrt(reps)
    assert 0.75 < mc.per_group.std(ddof=1) / sd < 1.3
    assert np.mean([float(sample_convergence(e, n, delta)) < exact for e in mc.per_group]) <= delta
    a_draws = snn.mc_weight_samples(net, post, "matrix_normal", data, m=300, key=jax.random.PRNGKey(1))
    assert abs(a_draws.zero_one - exact) < 4 * a_draws.per_group.std() / math.sqrt(300)


def test_matrix_normal_training_and_refusals():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    data = Dataset(x.reshape(120, 4, 1, 1), (x[:, 0] > 0).astype(np.int32), 2, "lin")
    net = nets.mlp((4, 1, 1), (6,), 2)
    mean = net.init(jax.random.PRNGKey(0))
    prior = snn.Prior(mean, 0.1, "matrix_normal", np.arange(60))
    start = snn.get_family("matrix_normal").init(mean, prior)
    state, hist = snn.train_posterior(net, start, prior, data, key=jax.random.PRNGKey(1), n_bound=60,
                                      objective_name="quad", optimizer=optax.adam(0.01), epochs=3, batch_size=30,
                                      progress=False, learn_prior_scale=True)
    assert np.isfinite(hist[-1]["objective"]) and state.prior_scale != 0.1
    cert, _ = snn.certify(net, state.posterior, prior, data, key=jax.random.PRNGKey(2), r=2,
                          prior_scale=state.prior_scale, prior_grid=(100.0, 0.1))
    assert cert.details["prior"]["family"] == "matrix_normal" and cert.emp_risk <= cert.value <= 1
    custom = nets.custom("mine", net.init, net.apply)
    with pytest.raises(ValueError, match="built-in network"):
        snn.mc_independent(custom, state.posterior, "matrix_normal", data, r=1, key=jax.random.PRNGKey(0))
