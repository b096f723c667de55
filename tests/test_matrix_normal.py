"""Matrix-normal (Kronecker-factored) Gaussian weights: the closed-form KL against the dense Gaussian
with covariance V kron U, its scale invariance, the exact per-example draws of a dense layer, training
and refusals (certificate (b)'s coverage, for every family, is in test_snn.py)."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from posteriors import matrix_normal_posterior

from genbounds.bounds import kl_matrix_normal
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


def test_isotropic_start_has_zero_kl_and_the_float64_kl_matches_training():
    net = nets.mlp((6, 1, 1), (5,), 3)
    mean = net.init(jax.random.PRNGKey(0))
    prior = snn.Prior(mean, 0.05, "matrix_normal")
    start = snn.get_family("matrix_normal").init(mean, prior)
    assert snn.kl_float64(start, prior) == pytest.approx(0.0, abs=1e-6)
    f = snn.matrix_normal_factors(start)["dense"][0]["w"]
    cov = np.kron(f["b"] @ f["b"].T, f["a"] @ f["a"].T)
    np.testing.assert_allclose(cov, 0.05 ** 2 * np.eye(30), atol=1e-8)          # float32 factors
    post, prior = matrix_normal_posterior(net, jax.random.PRNGKey(0))
    training_kl = jax.jit(lambda p: snn.kl_divergence(p, prior.mean, 0.3, "matrix_normal"))(post)
    assert snn.kl_float64(post, prior) == pytest.approx(float(training_kl), rel=1e-4)


def test_per_example_draws_have_the_moments_of_a_matrix_normal_layer():
    """The local reparameterisation of a dense layer: mean h M + m_b and covariance
    ||h A||^2 B B^T + diag(s_b^2), exactly those of h W + b with W ~ MN(M, AA^T, BB^T)."""
    net = nets.mlp((3, 1, 1), (), 4)
    post, _ = matrix_normal_posterior(net, jax.random.PRNGKey(1))
    fam = snn.get_family("matrix_normal")
    x = jnp.asarray([[0.5, -1.0, 2.0]]).reshape(1, 3, 1, 1)
    keys = jax.random.split(jax.random.PRNGKey(2), 100_000)
    local = np.asarray(jax.jit(jax.vmap(lambda k: fam.independent_logits(net, k, post, x)[0]))(keys), np.float64)
    direct = np.asarray(jax.jit(jax.vmap(lambda k: net.apply(fam.sample(k, post), x)[0]))(keys), np.float64)
    m, f = post.mean["dense"][0], snn.matrix_normal_factors(post)["dense"][0]
    h = np.asarray(x).reshape(1, 3)
    mean = (h @ np.asarray(m["w"]) + np.asarray(m["b"]))[0]
    a, b, sb = (np.asarray(v, np.float64) for v in (f["w"]["a"], f["w"]["b"], f["b"]))
    cov = np.sum((h @ a) ** 2) * b @ b.T + np.diag(sb ** 2)
    for draws in (local, direct):
        se = np.sqrt(np.diag(cov) / len(draws))
        assert np.all(np.abs(draws.mean(0) - mean) < 5 * se)
        np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.03, atol=0.03 * np.abs(cov).max())


def test_matrix_normal_training_and_refusals():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    data = Dataset(x.reshape(120, 4, 1, 1), (x[:, 0] > 0).astype(np.int32), 2, "lin")
    net = nets.mlp((4, 1, 1), (6,), 2)
    mean = net.init(jax.random.PRNGKey(0))
    prior = snn.Prior(mean, 0.1, "matrix_normal", np.arange(60))
    start = snn.get_family("matrix_normal").init(mean, prior)
    step = snn.posterior_step(net, prior, optimizer=optax.adam(0.01), objective_name="quad", n_bound=60,
                              learn_prior_scale=True)
    state, hist = snn.train_posterior(step, start, data, key=jax.random.PRNGKey(1), epochs=3, batch_size=30,
                                      progress=False)
    assert hist[-1]["prior_scale"] == state.prior_scale
    assert np.isfinite(hist[-1]["objective"]) and state.prior_scale != 0.1
    cert, _ = snn.certify(net, state.posterior, prior, data, key=jax.random.PRNGKey(2), estimate=snn.PerExampleDraws(2),
                          prior_scale=state.prior_scale, prior_grid=(100.0, 0.1))
    assert cert.details["prior"]["family"] == "matrix_normal" and cert.emp_risk <= cert.value <= 1
    custom = nets.custom("mine", net.init, net.apply)
    with pytest.raises(ValueError, match="built-in network"):
        snn.mc_independent(custom, state.posterior, "matrix_normal", data, r=1, key=jax.random.PRNGKey(0))


def _issue_example():
    """M = M0 = 0 of shape [2, 3], B = I, isotropic prior s = 1, and the symmetric (not triangular)
    factor A = [[1, .9], [.9, 1]]: W = A E has row covariance U = A A^T."""
    return np.zeros((2, 3)), np.array([[1.0, 0.9], [0.9, 1.0]]), np.eye(3), np.zeros((2, 3))


def test_non_triangular_posterior_factor_is_refused():
    """The trace term would use all of A and the log-determinant prod(diag A) = 1: 2.43 nats, while the
    distribution W = A E B^T has KL 7.41 (the dense Kronecker Gaussian; also the closed form at the
    Cholesky factor of A A^T, the same distribution)."""
    m, a, b, m0 = _issue_example()
    true_kl = _dense_gaussian_kl(m, a, b, m0, np.eye(2), np.eye(3))
    assert true_kl == pytest.approx(7.41, abs=5e-3)
    chol = np.linalg.cholesky(a @ a.T)
    assert float(kl_matrix_normal(m, chol, b, m0, 1.0, 1.0)) == pytest.approx(true_kl, rel=1e-12)
    with pytest.raises(ValueError, match="'a_q' must be lower triangular"):
        kl_matrix_normal(m, a, b, m0, 1.0, 1.0)
    with pytest.raises(ValueError, match="'b_q' must be lower triangular"):
        kl_matrix_normal(m.T, np.eye(3), a, m0.T, 1.0, 1.0)
    # Concrete JAX input (outside jit) is checked too.
    with pytest.raises(ValueError, match="'a_q' must be lower triangular"):
        kl_matrix_normal(*(jnp.asarray(x, jnp.float32) for x in (m, a, b, m0)), 1.0, 1.0)


def test_non_triangular_prior_factor_is_refused():
    """A non-triangular prior factor would lose its upper triangle in the triangular solves."""
    rng = np.random.default_rng(7)
    m, m0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    a, b = _tril(rng, 2), _tril(rng, 3)
    full_a0 = np.array([[1.0, 0.5], [0.2, 1.0]])
    with pytest.raises(ValueError, match="'a_p' must be lower triangular"):
        kl_matrix_normal(m, a, b, m0, full_a0, np.eye(3))
    with pytest.raises(ValueError, match="'b_p' must be lower triangular"):
        kl_matrix_normal(m, a, b, m0, np.eye(2), np.eye(3) + np.triu(np.ones((3, 3)), 1))
    # The same prior through its Cholesky factor is accepted and matches the dense reference.
    chol0 = np.linalg.cholesky(full_a0 @ full_a0.T)
    ref = _dense_gaussian_kl(m, a, b, m0, full_a0, np.eye(3))
    assert float(kl_matrix_normal(m, a, b, m0, chol0, np.eye(3))) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("a, b, name", [(np.eye(3), np.eye(2), "a_q"), (np.eye(2), np.eye(2), "b_q"),
                                         (np.eye(2, 3), np.eye(3), "a_q"), (np.ones(2), np.eye(3), "a_q"),
                                         (1.0, np.eye(3), "a_q"), (np.eye(2), 1.0, "b_q")])
def test_factor_shapes_must_match_the_mean(a, b, name):
    """For M of shape [rows, cols] = [2, 3]: A is [2, 2] and B is [3, 3] (W = M + A E B^T); the
    swapped shapes [3, 3] and [2, 2] are refused (today they give 0.0 nats), as is a scalar posterior
    factor (only the prior's factors may be numbers c, meaning c I)."""
    m = np.zeros((2, 3))
    with pytest.raises(ValueError, match=f"'{name}' must be"):
        kl_matrix_normal(m, a, b, m, 1.0, 1.0)


def test_prior_factor_and_mean_shapes_and_diagonals_are_checked():
    m, a, b = np.zeros((2, 3)), np.eye(2), np.eye(3)
    with pytest.raises(ValueError, match="'a_p' must be"):
        kl_matrix_normal(m, a, b, m, np.eye(3), 1.0)
    with pytest.raises(ValueError, match="'b_p' must be"):
        kl_matrix_normal(m, a, b, m, 1.0, np.eye(2))
    with pytest.raises(ValueError, match="'m_p' must"):
        kl_matrix_normal(m, a, b, np.zeros((3, 2)), 1.0, 1.0)
    with pytest.raises(ValueError, match="'m_q' must"):
        kl_matrix_normal(np.zeros(3), a, b, np.zeros(3), 1.0, 1.0)
    for name, args in (("a_q", (m, np.diag([1.0, 0.0]), b, m, 1.0, 1.0)),
                       ("b_q", (m, a, np.diag([1.0, np.nan, 1.0]), m, 1.0, 1.0)),
                       ("a_p", (m, a, b, m, -1.0, 1.0)), ("b_p", (m, a, b, m, 1.0, 0.0))):
        with pytest.raises(ValueError, match=f"'{name}' must have a positive diagonal"):
            kl_matrix_normal(*args)
    # Traced input: shapes are still checked inside jit.
    with pytest.raises(ValueError, match="'a_q' must be"):
        jax.jit(lambda a_: kl_matrix_normal(jnp.zeros((2, 3)), a_, jnp.eye(3), jnp.zeros((2, 3)), 1.0, 1.0))(
            jnp.eye(3))


def test_training_factors_are_triangular_by_construction():
    """Training calls kl_matrix_normal on traced factors, where the triangle cannot be checked; the
    family builds A and B with jnp.tril from the unconstrained parameters, so whatever the upper
    triangle of rho holds, the factors (and the KL, float64 and traced) use a lower-triangular A, B."""
    net = nets.mlp((3, 1, 1), (), 2)
    post, prior = matrix_normal_posterior(net, jax.random.PRNGKey(4))
    rho = post.rho["dense"][0]["w"]
    noisy = {"a": rho["a"] + 5.0 * jnp.triu(jnp.ones_like(rho["a"]), 1),
             "b": rho["b"] + 5.0 * jnp.triu(jnp.ones_like(rho["b"]), 1)}
    post2 = snn.Posterior(post.mean, {"dense": [{"w": noisy, "b": post.rho["dense"][0]["b"]}]})
    f = snn.matrix_normal_factors(post2)["dense"][0]["w"]
    for k in ("a", "b"):
        assert np.all(np.triu(np.asarray(f[k]), 1) == 0)
    assert snn.kl_float64(post2, prior) == pytest.approx(snn.kl_float64(post, prior), rel=1e-12)
    traced = jax.jit(lambda p: snn.kl_divergence(p, prior.mean, 0.3, "matrix_normal"))(post2)
    assert float(traced) == pytest.approx(snn.kl_float64(post, prior), rel=1e-4)
