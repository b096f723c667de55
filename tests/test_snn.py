"""Stochastic networks on tiny synthetic data: split enforcement, KL, both Monte Carlo
certificates (coverage of the per-example one against an exactly computable risk, for every
posterior family), and the data-dependent prior's advantage."""

import inspect
import itertools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import optax
import pytest
from posteriors import mask_posterior, matrix_normal_posterior
from scipy.integrate import quad
from scipy.stats import norm

from genbounds.bounds import sample_convergence
from genbounds.estimators import nets, snn
from genbounds.estimators.data import Dataset


def _blobs(n=400, d=10, seed=0, noise=1.0):
    """Two Gaussian classes in d dimensions (linearly separable up to noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    centers = np.stack([-np.ones(d), np.ones(d)]) * 0.6
    x = centers[y] + noise * rng.normal(size=(n, d))
    return Dataset(x.astype(np.float32).reshape(n, d, 1, 1), y.astype(np.int32), 2, "blobs")


def test_prior_data_never_in_bound_set_and_certificate_records_split():
    data = _blobs(200)
    net = nets.mlp((10, 1, 1), (8,), 2)
    params = net.init(jax.random.PRNGKey(0))
    prior_idx = np.arange(0, 200, 3)
    prior = snn.Prior(params, 0.1, data_indices=prior_idx)
    bset, keep = snn.bound_set(data, prior)
    assert len(np.intersect1d(keep, prior_idx)) == 0
    assert len(keep) + len(prior_idx) == 200 and len(bset) == len(keep)
    post = snn.init_posterior(params, 0.1)
    cert, mc = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(1), estimate=snn.PerExampleDraws(3))
    assert cert.n_bound == 200 - len(prior_idx) and cert.n_prior == len(prior_idx)
    assert mc.n_samples == 3 * cert.n_bound and cert.mc_samples == mc.n_samples
    # The delta budget: PAC-Bayes 0.025 + Monte Carlo 0.01, summing to the total.
    assert cert.delta_parts == {"pac_bayes": 0.025, "monte_carlo": 0.01}
    assert math.fsum(cert.delta_parts.values()) <= cert.delta == 0.035
    assert cert.details["split"] == {"n_train": 200, "n_prior": len(prior_idx), "n_bound": cert.n_bound}
    with pytest.raises(ValueError, match="no data is left"):
        snn.bound_set(data, snn.Prior(params, 0.1, data_indices=np.arange(200)))
    with pytest.raises(ValueError, match="do not index"):
        snn.bound_set(data, snn.Prior(params, 0.1, data_indices=np.array([5, 300])))


def test_posterior_equal_to_prior_has_zero_kl():
    net = nets.cnn((10, 10, 1), 3, channels=(4, 4), dense=(8,))
    rng = np.random.default_rng(0)        # random weights of the init's shapes (compiling the init is no part of it)
    params = jax.tree_util.tree_map(lambda t: jnp.asarray(0.1 * rng.normal(size=t.shape), t.dtype),
                                    jax.eval_shape(net.init, jax.random.PRNGKey(0)))
    prior = snn.Prior(params, 0.05)
    post = snn.init_posterior(params, 0.05)
    assert snn.kl_float64(post, prior) == pytest.approx(0.0, abs=1e-9)
    training_kl = jax.jit(lambda p: snn.kl_divergence(p, params, 0.05))(post)   # the KL training computes
    assert float(training_kl) == pytest.approx(0.0, abs=1e-3)
    moved = snn.Posterior(jax.tree_util.tree_map(lambda m: m + 0.01, post.mean), post.rho)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    # Shifting every mean by 0.01 at equal scales costs 0.01^2 / (2 * 0.05^2) = 0.02 nats each.
    assert snn.kl_float64(moved, prior) == pytest.approx(0.02 * n_params, rel=1e-4)


def test_kl_matches_numpyro():
    net = nets.mlp((5, 1, 1), (4,), 2)
    mean = net.init(jax.random.PRNGKey(2))
    post = snn.init_posterior(mean, 0.07)
    prior_mean = net.init(jax.random.PRNGKey(3))
    ref = sum(float(dist.kl_divergence(q, dist.Normal(pm, 0.11)).sum())
              for q, pm in zip(jax.tree_util.tree_leaves(snn.distributions(post),
                                                         is_leaf=lambda d: isinstance(d, dist.Distribution)),
                               jax.tree_util.tree_leaves(prior_mean)))
    assert snn.kl_float64(post, snn.Prior(prior_mean, 0.11)) == pytest.approx(ref, rel=1e-5)


def _linear_logit_gap(data, mean):
    """x (w_1 - w_0) + b_1 - b_0 for every example: the mean of the logit difference of a 2-class
    linear net."""
    x = data.x.reshape(len(data), -1).astype(np.float64)
    m = mean["dense"][0]
    w, b = np.asarray(m["w"], np.float64), np.asarray(m["b"], np.float64)
    return x @ (w[:, 1] - w[:, 0]) + b[1] - b[0]


def _gaussian_class1(data, post):
    """P(class 1) per example under a Gaussian posterior on a 2-class linear net: the logit
    difference is N(gap, x^2 (s_w1^2 + s_w0^2) + s_b1^2 + s_b0^2)."""
    s = snn.posterior_scale(post)["dense"][0]
    x = data.x.reshape(len(data), -1).astype(np.float64)
    sw, sb = np.asarray(s["w"], np.float64), np.asarray(s["b"], np.float64)
    var = (x**2) @ (sw[:, 1] ** 2 + sw[:, 0] ** 2) + sb[1] ** 2 + sb[0] ** 2
    return norm.cdf(_linear_logit_gap(data, post.mean) / np.sqrt(var))


def _laplace_class1(data, post):
    """P(class 1) per example under a Laplace posterior on a 2-class linear net. The logit difference
    is gap + sum_k c_k L_k with L_k standard Laplace (c_k = |x_j| b_{j,class}, and the bias scales),
    whose characteristic function is prod_k 1 / (1 + c_k^2 t^2); by Gil-Pelaez (Biometrika 1951)
    P(gap + Z > 0) = 1/2 + (1/pi) int_0^inf sin(t gap) prod_k 1 / (1 + c_k^2 t^2) / t dt."""
    s = snn.posterior_scale(post)["dense"][0]
    x = data.x.reshape(len(data), -1).astype(np.float64)
    sw, sb = np.asarray(s["w"], np.float64), np.asarray(s["b"], np.float64)
    out = []
    for xi, gap in zip(x, _linear_logit_gap(data, post.mean)):
        c = np.concatenate([np.abs(xi) * sw[:, 0], np.abs(xi) * sw[:, 1], sb])
        integral, _ = quad(lambda t, c=c, gap=gap: math.sin(t * gap) * np.prod(1.0 / (1.0 + (c * t) ** 2)) / t,
                           0.0, np.inf, limit=500)
        out.append(0.5 + integral / math.pi)
    return np.asarray(out)


def _mask_class1(data, post):
    """P(class 1) per example under a mask posterior on a 2-class linear net, by enumerating every
    mask of its 14 weights with the float32 keep probabilities the sampler uses."""
    q = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), snn.mask_keep(post))["dense"][0]
    m = post.mean["dense"][0]
    w, b = np.asarray(m["w"], np.float64), np.asarray(m["b"], np.float64)
    x = data.x.reshape(len(data), -1).astype(np.float64)
    flat_q = np.concatenate([q["w"].ravel(), q["b"]])
    p_class1 = np.zeros(len(data))
    for bits in itertools.product([0.0, 1.0], repeat=flat_q.size):
        bits = np.asarray(bits)
        prob = np.prod(np.where(bits == 1, flat_q, 1 - flat_q))
        mw, mb = bits[: w.size].reshape(w.shape), bits[w.size:]
        p_class1 += prob * (np.argmax(x @ (w * mw) + b * mb, axis=1) == 1)
    return p_class1


def _matrix_normal_class1(data, post):
    """P(class 1) per example under a matrix-normal posterior on a 2-class linear net: the logit
    difference is N(gap, ||x A||^2 (V_00 + V_11 - 2 V_01) + s_b0^2 + s_b1^2), V = B B^T."""
    f = snn.matrix_normal_factors(post)["dense"][0]
    a, b, sb = (np.asarray(v, np.float64) for v in (f["w"]["a"], f["w"]["b"], f["b"]))
    v = b @ b.T
    x = data.x.reshape(len(data), -1)
    var = np.sum((x @ a) ** 2, axis=1) * (v[0, 0] + v[1, 1] - 2 * v[0, 1]) + sb[0] ** 2 + sb[1] ** 2
    return norm.sf(0.0, loc=_linear_logit_gap(data, post.mean), scale=np.sqrt(var))


def _mask_case(net):
    w = jax.tree_util.tree_map(lambda x: x + 0.3, net.init(jax.random.PRNGKey(0)))   # every bit matters
    rng = np.random.default_rng(2)
    return mask_posterior(w, jax.tree_util.tree_map(lambda x: rng.uniform(0.2, 0.9, x.shape), w))


#: Per family: (2-class linear net -> posterior, (data, posterior) -> P(class 1) per example,
#: repetitions r of method (b), weight draws m of method (a)).
COVERAGE_CASES = {
    "gaussian": (lambda net: snn.init_posterior(net.init(jax.random.PRNGKey(0)), 0.4), _gaussian_class1, 300, 300),
    "laplace": (lambda net: snn.init_posterior(net.init(jax.random.PRNGKey(0)), 0.4), _laplace_class1, 300, 300),
    "mask": (_mask_case, _mask_class1, 200, 400),
    "matrix_normal": (lambda net: matrix_normal_posterior(net, jax.random.PRNGKey(3), prior_scale=0.4)[0],
                      _matrix_normal_class1, 300, 300),
}


@pytest.mark.parametrize("family", snn.FAMILIES)
def test_independent_draws_certificate_coverage_and_variance(family):
    """Method (b) on a linear net whose risk under Q is known exactly, for every family: unbiased,
    the variance of independent Bernoulli draws per example (a shared weight draw would be far more
    variable), and the kl certificate covers the exact risk in >= 1 - delta' of repeated draws;
    method (a) (one weight draw per pass over the data) estimates the same risk."""
    data = _blobs(300, d=6, noise=1.5)
    net = nets.mlp((6, 1, 1), (), 2)
    assert family in COVERAGE_CASES, f"add a coverage case with an exactly computable risk for {family!r}"
    posterior, class1, reps, m = COVERAGE_CASES[family]
    post = posterior(net)
    p_class1 = class1(data, post)
    per_example = np.where(data.y == 1, 1 - p_class1, p_class1)
    exact, sum_pq = per_example.mean(), float(np.sum(per_example * (1 - per_example)))
    assert 0.1 < exact < 0.9
    delta = 0.1
    mc = snn.mc_independent(net, post, family, data, r=reps, key=jax.random.PRNGKey(0))
    est = mc.per_group
    assert est.shape == (reps,) and mc.zero_one == pytest.approx(est.mean())
    sd_theory = math.sqrt(sum_pq) / len(data)
    assert abs(est.mean() - exact) < 4 * sd_theory / math.sqrt(reps)
    assert 0.75 < est.std(ddof=1) / sd_theory < 1.3
    failures = np.mean([float(sample_convergence(e, len(data), delta)) < exact for e in est])
    assert failures <= delta
    # Method (a): chunk only sets how many draws run at once, not which.
    a = snn.mc_weight_samples(net, post, family, data, m=m, key=jax.random.PRNGKey(1), chunk=100)
    assert abs(a.zero_one - exact) < 4 * a.per_group.std() / math.sqrt(m)


def test_weight_draws_agree_with_per_example_draws():
    data = _blobs(200, d=6, noise=1.5)
    net = nets.mlp((6, 1, 1), (16,), 2)
    post = snn.init_posterior(net.init(jax.random.PRNGKey(4)), 0.2)
    a = snn.mc_weight_samples(net, post, "gaussian", data, m=400, key=jax.random.PRNGKey(5), chunk=100)
    b = snn.mc_independent(net, post, "gaussian", data, r=200, key=jax.random.PRNGKey(6))
    generic = nets.custom("same", net.init, net.apply)
    c = snn.mc_independent(generic, post, "gaussian", data, r=200, key=jax.random.PRNGKey(7))
    se = math.sqrt(a.per_group.var() / 400 + 0.25 / (200 * 200))
    assert abs(a.zero_one - b.zero_one) < 4 * se
    assert abs(b.zero_one - c.zero_one) < 4 * math.sqrt(0.5 / (200 * 200))


def test_cnn_independent_forward_shapes():
    """Compiled as training runs them (one program per function, both scales of one shape: one compile) rather
    than op by op: the same forward passes, a third of the time."""
    net = nets.cnn((10, 10, 1), 3, channels=(4, 4), dense=(8,))
    mean = jax.jit(net.init)(jax.random.PRNGKey(0))
    scale = jax.tree_util.tree_map(lambda m: jnp.full(m.shape, 0.1), mean)
    x = jnp.ones((5, 10, 10, 1))
    independent = jax.jit(net.apply_independent)
    out = independent(jax.random.PRNGKey(1), mean, scale, x)
    assert out.shape == (5, 3)
    zero = jax.tree_util.tree_map(jnp.zeros_like, scale)
    np.testing.assert_allclose(independent(jax.random.PRNGKey(1), mean, zero, x),
                               jax.jit(net.apply)(mean, x), rtol=1e-5, atol=1e-5)


def _certificate_for(prior_kind, data, key):
    net = nets.mlp((10, 1, 1), (32,), 2)
    init = net.init(key)
    n = len(data)
    if prior_kind == "data":
        idx = np.arange(n // 2)
        mean = snn.train_deterministic(net, init, data.take(idx), key=key, epochs=30, batch_size=50,
                                       optimizer=optax.sgd(0.05, momentum=0.9), progress=False)
        prior = snn.Prior(mean, 0.02, data_indices=idx)
        start = mean
    else:
        prior = snn.Prior(init, 0.02)
        start = snn.train_deterministic(net, init, data, key=key, epochs=30, batch_size=50,
                                        optimizer=optax.sgd(0.05, momentum=0.9), progress=False)
    step = snn.posterior_step(net, prior, optimizer=optax.sgd(0.01, momentum=0.95), objective_name="quad",
                              n_bound=n - prior.n_data)
    state, hist = snn.train_posterior(step, snn.init_posterior(start, 0.02), data, key=key, epochs=20,
                                      batch_size=50, progress=False)
    assert all(h["objective"] >= h["emp_ce"] - 1e-6 and h["kl"] >= 0 for h in hist)
    post = state.posterior
    cert, _ = snn.certify(net, post, prior, data, key=key, estimate=snn.PerExampleDraws(20))
    return cert


@pytest.mark.integration
def test_data_dependent_prior_beats_data_independent():
    """On 600 noisy points a net moves far from its random initialisation; a prior trained
    on half the data is close to the posterior, so the bound is much smaller."""
    data = _blobs(600, noise=1.2)
    key = jax.random.PRNGKey(0)
    with_data = _certificate_for("data", data, key)
    without = _certificate_for("init", data, key)
    assert with_data.n_bound == 300 and without.n_bound == 600
    assert with_data.value < without.value - 0.05
    assert with_data.kl < without.kl


@pytest.mark.integration
def test_certify_my_trained_network_in_one_call():
    """A user's own model (plain apply function, own params tree) certified in one call."""
    data = _blobs(400, noise=1.0)

    def apply(params, x):
        h = jnp.tanh(x.reshape(x.shape[0], -1) @ params["w1"] + params["b1"])
        return h @ params["w2"]

    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    init = {"w1": jax.random.normal(k1, (10, 8)) * 0.3, "b1": jnp.zeros(8),
            "w2": jax.random.normal(k2, (8, 2)) * 0.3}
    user_net = nets.custom("user", lambda k: init, apply)
    trained = snn.train_deterministic(user_net, init, data, key=k1, epochs=20, batch_size=50,
                                      optimizer=optax.sgd(0.1, momentum=0.9), progress=False)
    cert, post = snn.certify_network(apply, trained, data, key=k2, prior_mean=init, data_free=True,
                                       prior_scale=0.3, learn_prior_scale=True, optimizer=optax.adam(0.01),
                                       epochs=20, r=5, progress=False)
    assert cert.n_bound == 400 and cert.n_prior == 0 and cert.mc_samples == 2000
    assert "prior_grid" in cert.details and cert.details["prior_grid"]["j"] >= 0
    assert cert.emp_risk < 0.3 and cert.emp_risk <= cert.value < 0.5


def test_default_objective_has_a_gradient_at_a_vacuous_start():
    """certify_network's default objective moves a posterior that starts vacuous (KL/n in the
    hundreds); the Seeger objective, kl^-1 clipped at 1, has exactly zero gradient there."""
    data = _blobs(200)
    net = nets.mlp((10, 1, 1), (16,), 2)
    prior_mean = net.init(jax.random.PRNGKey(0))
    far = jax.tree_util.tree_map(lambda a: a + 1.0, prior_mean)
    prior = snn.Prior(prior_mean, 0.03)
    default = inspect.signature(snn.certify_network).parameters["objective"].default
    moved = {}
    for name in (default, "seeger"):
        train = snn.posterior_step(net, prior, optimizer=optax.sgd(1e-3), objective_name=name, n_bound=200)
        state = train.init(snn.init_posterior(far, 0.03))
        new, metrics = jax.jit(train.step)(state, jax.random.PRNGKey(1), jnp.asarray(data.x), jnp.asarray(data.y))
        assert float(metrics.kl) / 200 > 100
        moved[name] = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                          zip(jax.tree_util.tree_leaves(new.params.mean), jax.tree_util.tree_leaves(state.params.mean)))
    assert moved[default] > 1e-4
    assert moved["seeger"] == 0.0


@pytest.mark.integration
def test_certify_network_reports_its_training_and_warns_when_the_certificate_says_little():
    data = _blobs(300)
    net = nets.mlp((10, 1, 1), (32,), 2)
    init = net.init(jax.random.PRNGKey(0))
    trained = jax.tree_util.tree_map(lambda a: a + 0.5, init)      # far from the data-free prior
    with pytest.warns(UserWarning, match=r"KL/n = .*prior_indices=") as caught:
        cert, _ = snn.certify_network(net, trained, data, key=jax.random.PRNGKey(1), prior_mean=init,
                                      data_free=True, epochs=2, r=1, progress=False)
    t = cert.details["training"]
    assert t["objective"] == "quad" and t["epochs"] == 2 and t["steps"] == 2 * 3
    assert t["kl_start"] / 300 > 10 and cert.details["diagnosis"] == str(caught[0].message)
    assert cert.value >= (t["network_bound_set_error"] + 0.5) / 2
    # Not warned when the certificate is informative: the posterior starts at the prior's mean.
    prior_idx = np.arange(100)
    good = snn.train_deterministic(net, init, data.take(prior_idx), key=jax.random.PRNGKey(2), epochs=30,
                                   batch_size=50, optimizer=optax.adam(1e-2), progress=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cert, _ = snn.certify_network(net, good, data, key=jax.random.PRNGKey(1), prior_mean=good,
                                      prior_indices=prior_idx, epochs=2, r=1, progress=False)
    # the only warning left is the honest comparison: the prior's own network, certified on the same bound set
    assert all("the prior's own network certifies at" in str(w.message) for w in seen)
    assert cert.n_bound == 200 and "diagnosis" not in cert.details and cert.details["training"]["kl_start"] < 1e-9


@pytest.mark.parametrize("name", ["quad", "seeger", "classic"])
def test_posterior_step_gradient_matches_finite_differences_of_the_objective(name):
    """The step's gradient (SGD with lr 1: update = -grad) is the derivative of the written
    objective bound(bounded CE of per-example draws, KL, n_bound, delta) on the same minibatch and
    key, checked by central differences in float64 along random directions (PBB's f_quad setting:
    p_min 1e-5, n = 30000)."""
    with jax.enable_x64(True):
        data = _blobs(64)
        xb, yb = jnp.asarray(data.x, jnp.float64), jnp.asarray(data.y)
        net = nets.mlp((10, 1, 1), (12,), 2)
        to64 = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), t)  # noqa: E731
        prior_mean = to64(net.init(jax.random.PRNGKey(0)))
        start = snn.init_posterior(jax.tree_util.tree_map(lambda a: a + 0.05, prior_mean), 0.03)
        start = snn.Posterior(to64(start.mean), to64(start.rho))
        prior = snn.Prior(prior_mean, 0.03)
        key = jax.random.PRNGKey(1)
        n, delta, p_min = 30000, 0.025, 1e-5
        train = snn.posterior_step(net, prior, optimizer=optax.sgd(1.0), objective_name=name, n_bound=n,
                                   delta=delta, p_min=p_min)
        state = train.init(start)
        new, _ = jax.jit(train.step)(state, key, xb, yb)      # one compile, as training runs it
        grad_mean = jax.tree_util.tree_map(lambda a, b: a - b, state.params.mean, new.params.mean)

        @jax.jit
        def written(mean):
            post = snn.Posterior(mean, start.rho)
            logits = net.apply_independent(key, mean, snn.posterior_scale(post), xb)
            emp = snn.bounded_cross_entropy(logits, yb, p_min).mean()
            return snn.objective(name, emp, snn.kl_divergence(post, prior_mean, 0.03), n, delta, {})

        def shifted(v, s):
            return jax.tree_util.tree_map(lambda m, d: m + s * d, start.mean, v)

        rng = np.random.default_rng(0)
        eps = 1e-6
        for _ in range(3):
            v = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape)), start.mean)
            fd = (written(shifted(v, eps)) - written(shifted(v, -eps))) / (2 * eps)
            analytic = sum(float(jnp.vdot(g, d)) for g, d in zip(jax.tree_util.tree_leaves(grad_mean),
                                                                 jax.tree_util.tree_leaves(v)))
            assert analytic == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def test_dropout_is_identity_at_rate_zero_and_unbiased_on_average():
    net = nets.mlp((10, 1, 1), (64, 64), 3)
    params = net.init(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 10, 1, 1))
    np.testing.assert_array_equal(net.apply_dropout(params, x, jax.random.PRNGKey(2), 0.0), net.apply(params, x))
    one = net.apply_dropout(params, x, jax.random.PRNGKey(2), 0.5)
    assert not np.allclose(one, net.apply(params, x))
    # Linear in the last hidden layer's masks: averaging many masks on a one-hidden-layer net
    # recovers apply (inverted dropout keeps the expectation).
    net1 = nets.mlp((10, 1, 1), (64,), 3)
    p1 = net1.init(jax.random.PRNGKey(0))
    avg = jax.jit(lambda keys: jnp.mean(jax.vmap(lambda k: net1.apply_dropout(p1, x, k, 0.3))(keys), axis=0))(
        jax.random.split(jax.random.PRNGKey(3), 4000))                       # the 4000 masks in one program
    np.testing.assert_allclose(avg, net1.apply(p1, x), atol=0.05)
    cnn = nets.cnn((12, 12, 1), 2, channels=(4, 4), dense=(8,))
    pc = jax.jit(cnn.init)(jax.random.PRNGKey(0))
    xc = jax.random.normal(jax.random.PRNGKey(1), (2, 12, 12, 1))
    np.testing.assert_allclose(cnn.apply_dropout(pc, xc, jax.random.PRNGKey(2), 0.0), cnn.apply(pc, xc), rtol=1e-6)
    custom = nets.custom("user", net.init, net.apply)
    with pytest.raises(ValueError, match="'dropout'"):
        snn.train_deterministic(custom, params, Dataset(np.zeros((4, 10, 1, 1), np.float32), np.arange(4) % 3),
                                key=jax.random.PRNGKey(0), epochs=1, optimizer=optax.sgd(0.1), dropout=0.2,
                                progress=False)
