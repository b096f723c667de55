"""Stochastic pruning masks (Bernoulli masks over fixed weights): closed-form KL, the sampler's
exact keep probabilities, the training surrogate's moments, per-example independence, and the
runner's refusals (certificate (b)'s coverage, for every family, is in test_snn.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from posteriors import mask_posterior
from scipy.special import rel_entr

from genbounds.bounds import kl_bernoulli, kl_bernoulli_masks
from genbounds.estimators import nets, snn
from genbounds.estimators.data import Dataset
from genbounds.experiments.pac_bayes_runner import PacBayesConfig, run_pac_bayes


def _blobs(n=300, d=6, seed=0, noise=1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.stack([-np.ones(d), np.ones(d)])[y] * 0.6 + noise * rng.normal(size=(n, d))
    return Dataset(x.astype(np.float32).reshape(n, d, 1, 1), y.astype(np.int32), 2, "blobs")


def test_mask_kl_closed_form_symmetries_and_refusals():
    rng = np.random.default_rng(0)
    q, p = rng.uniform(0.05, 0.95, 50), rng.uniform(0.05, 0.95, 50)
    closed = float(kl_bernoulli_masks({"a": q}, {"a": p}))
    ref = float(np.sum(rel_entr(q, p) + rel_entr(1 - q, 1 - p)))        # scipy's elementwise x ln(x / y)
    assert closed == pytest.approx(ref, rel=1e-5)
    assert closed == pytest.approx(float(kl_bernoulli_masks({"a": 1 - q}, {"a": 1 - p})), rel=1e-12)
    assert float(kl_bernoulli_masks({"a": q}, {"a": q})) == 0.0
    # Point mass (q in {0, 1}): -sum ln P(mask), all-or-nothing exact.
    m = (q > 0.5).astype(float)
    assert float(kl_bernoulli_masks({"a": m}, {"a": p})) == pytest.approx(
        -np.sum(m * np.log(p) + (1 - m) * np.log1p(-p)), rel=1e-12)
    assert float(kl_bernoulli_masks({"a": np.array([1.0, 0.0])}, {"a": np.array([1.0, 0.0])})) == 0.0
    with pytest.raises(ValueError, match="infinite"):
        kl_bernoulli_masks({"a": np.array([0.5])}, {"a": np.array([0.0])})
    # Monte Carlo: mean log-likelihood ratio over 200,000 mask draws.
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    bits = np.asarray(jax.random.uniform(keys[0], (200_000, 50)) < q)
    llr = np.where(bits, np.log(q / p), np.log((1 - q) / (1 - p))).sum(axis=1)
    assert abs(llr.mean() - closed) < 4 * llr.std() / math.sqrt(len(llr))


def test_float32_uniform_grid_and_the_sampled_keep_probability():
    """The sampler's premise: float32 uniforms are k / 2^23, so P(u < q) = ceil(q 2^23) / 2^23."""
    u = np.asarray(jax.random.uniform(jax.random.PRNGKey(3), (1_000_000,), jnp.float32), np.float64)
    k = u * snn.families.UNIFORM_GRID
    assert np.array_equal(k, np.floor(k)) and u.min() >= 0 and u.max() < 1
    q = np.array([0.0, 1e-12, 0.3, 1 - 1e-9, 1.0], np.float32)
    lo, hi = snn.sampled_keep_interval(q)
    grid = 2.0 ** -23
    assert lo[0] == 0.0 and hi[0] == grid          # q = 0 computed on host: the device might give a denormal
    assert lo[1] == hi[1] == grid                  # a weight at q = 1e-12 is kept with probability 2^-23
    assert lo[2] <= math.ceil(float(q[2]) / grid) * grid <= hi[2] and hi[2] - lo[2] <= 6 * grid
    assert hi[4] == 1.0 and 1.0 - lo[4] <= 8 * grid   # a device 1 ulp below 1 keeps with prob. 1 - k 2^-23
    # The empirical keep rate of q = 1e-12 matches 2^-23 (8 * 2^23 draws: mean 8 hits).
    # The one program here whose running time outweighs its compile time: compiled at XLA's default optimisation
    # whatever tests/conftest.py sets for the unit lane (the same draws, about three times faster).
    count = jax.jit(lambda key: jnp.sum(jax.random.uniform(key, (2 ** 23,)) < jnp.float32(1e-12)),
                    compiler_options={"xla_backend_optimization_level": 3, "xla_cpu_use_fusion_emitters": True})
    hits = sum(int(count(jax.random.PRNGKey(s))) for s in range(8))
    assert 1 <= hits <= 20


def test_certificate_kl_is_never_below_the_kl_of_the_sampled_masks():
    net = nets.mlp((6, 1, 1), (4,), 2)
    w = net.init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(1)
    q = jax.tree_util.tree_map(lambda x: rng.uniform(0, 1, x.shape) ** 8, w)    # many tiny keep probabilities
    post = mask_posterior(w, q)
    prior_keep = jax.tree_util.tree_map(lambda x: np.full(x.shape, 0.3), w)
    kl_cert = snn.mask_kl_float64(post, w, prior_keep)
    q32 = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), snn.mask_keep(post))
    sampled = jax.tree_util.tree_map(lambda x: np.ceil(x * 2.0 ** 23) / 2.0 ** 23, q32)
    assert kl_cert >= float(kl_bernoulli_masks(sampled, prior_keep)) - 1e-12
    # (The KL at the nominal q can be higher or lower: the sampler keeps tiny-q weights with 2^-23.)
    assert kl_cert == pytest.approx(float(kl_bernoulli_masks(q32, prior_keep)), rel=1e-3)
    moved = snn.Posterior(jax.tree_util.tree_map(lambda x: x + 1e-6, w), post.rho)
    with pytest.raises(ValueError, match="keep the prior's weights"):
        snn.mask_kl_float64(moved, w, prior_keep)
    prior = snn.Prior(w, prior_keep, "mask")
    assert snn.kl_float64(post, prior) == kl_cert
    with pytest.raises(ValueError, match="keep probabilities"):
        snn.Prior(w, 1.5, "mask")


def test_training_surrogate_has_the_exact_moments_of_a_masked_layer():
    """The moment-matched surrogate: for one dense layer its pre-activation mean and variance equal
    those of the Bernoulli-masked layer (enumerated)."""
    data = _blobs(5, d=3)
    net = nets.mlp((3, 1, 1), (), 2)
    w = jax.tree_util.tree_map(lambda x: x + 0.5, net.init(jax.random.PRNGKey(1)))
    rng = np.random.default_rng(3)
    q = jax.tree_util.tree_map(lambda x: rng.uniform(0.1, 0.9, x.shape), w)
    post = mask_posterior(w, q)
    fam = snn.get_family("mask")
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    x = jnp.asarray(data.x[:1])
    out = np.asarray(jax.jit(jax.vmap(lambda k: fam.train_logits(net, k, post, x)[0]))(keys))
    exact = np.asarray(jax.jit(jax.vmap(lambda k: net.apply(fam.sample(k, post), x)[0]))(keys))
    np.testing.assert_allclose(out.mean(0), exact.mean(0), atol=0.03)
    np.testing.assert_allclose(out.var(0), exact.var(0), rtol=0.06)


def test_per_example_masks_are_independent_and_a_shared_mask_is_not():
    """One weight, kept with probability 1/2: per-example masks give uncorrelated example losses,
    a mask shared by the batch gives perfectly correlated ones."""
    net = nets.custom("one", None, lambda p, x: jnp.concatenate([p["w"] * x.reshape(-1, 1),
                                                                 -p["w"] * x.reshape(-1, 1)], axis=1))
    post = mask_posterior({"w": jnp.ones((1,))}, {"w": np.array([0.5])})
    fam = snn.get_family("mask")
    x = jnp.ones((2, 1))
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    indep = np.asarray(jax.jit(jax.vmap(lambda k: fam.independent_logits(net, k, post, x)[:, 0]))(keys))
    shared = np.asarray(jax.jit(jax.vmap(lambda k: net.apply(fam.sample(k, post), x)[:, 0]))(keys))
    assert abs(np.corrcoef(indep.T)[0, 1]) < 0.08
    assert np.corrcoef(shared.T)[0, 1] == pytest.approx(1.0)


def test_mask_training_moves_only_the_keep_logits():
    data = _blobs(200)
    net = nets.mlp((6, 1, 1), (8,), 2)
    w = net.init(jax.random.PRNGKey(0))
    keep = snn.mask_prior(snn.magnitude_mask(w, 0.5), 0.1)
    prior = snn.Prior(w, keep, "mask", np.arange(100))
    start = snn.get_family("mask").init(w, prior)
    assert snn.kl_float64(start, prior) < 1e-3
    step = snn.posterior_step(net, prior, optimizer=optax.adam(0.05), objective_name="quad", n_bound=100)
    state, hist = snn.train_posterior(step, start, data, key=jax.random.PRNGKey(1), epochs=3, batch_size=50,
                                      progress=False)
    post = state.posterior
    for a, b in zip(jax.tree_util.tree_leaves(post.mean), jax.tree_util.tree_leaves(w)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree_util.tree_leaves(post.rho),
                                                     jax.tree_util.tree_leaves(start.rho)))
    training_kl = jax.jit(lambda p: snn.kl_divergence(p, w, keep, "mask"))(post)     # the KL training computes
    assert snn.kl_float64(post, prior) == pytest.approx(float(training_kl), rel=1e-4)
    assert snn.kl_float64(post, prior) > hist[0]["kl"] > 0
    with pytest.raises(ValueError, match="learn_prior_scale"):
        snn.posterior_step(net, prior, optimizer=optax.adam(0.1), objective_name="quad", n_bound=100,
                           learn_prior_scale=True)
    with pytest.raises(ValueError, match="do not apply to a mask prior"):
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(2), estimate=snn.PerExampleDraws(1), prior_scale=0.5)


def test_magnitude_mask_keeps_the_largest_weights():
    params = {"a": np.array([0.1, -3.0, 0.5]), "b": np.array([[2.0, -0.2], [0.0, 1.0]])}
    mask = snn.magnitude_mask(params, 4 / 7)    # keep 3 of 7: |w| = 3, 2, 1
    assert mask["a"].tolist() == [False, True, False] and mask["b"].tolist() == [[True, False], [False, True]]
    keep = snn.mask_prior(mask, 0.01)
    assert keep["a"].tolist() == pytest.approx([0.01, 0.99, 0.01])


@pytest.mark.parametrize("kwargs, needle", [
    (dict(family="mask", prior="init", standardize=False), "'prior' must be 'data' with family 'mask'"),
    (dict(family="mask", learn_prior_scale=True), "learn_prior_scale"),
    (dict(family="mask", sparsity=1.0), "sparsity"),
    (dict(family="mask", mask_flip=0.0), "mask_flip"),
])
def test_bad_mask_settings_are_refused(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        PacBayesConfig.flat(**kwargs)


@pytest.mark.integration
@pytest.mark.parametrize("mask_prior", ["magnitude", "uniform"])
def test_mask_run_records_the_stochastic_and_both_deterministic_certificates(tmp_path, mask_prior):
    cfg = PacBayesConfig.flat(arch="mlp", widths=(32,), family="mask", sparsity=0.8, prior_epochs=3, epochs=1,
                              optimizer="adam", lr=0.01, mc_r=2, mc_m=0, prior_dropout=0.0, mask_prior=mask_prior)
    record = run_pac_bayes(cfg, tmp_path, progress=False, log=lambda m: None).to_dict()
    res = record["results"][0]
    masks = res["masks"]
    assert masks["magnitude"]["certificate"]["kl"] == 0.0
    assert masks["magnitude"]["sparsity"] == pytest.approx(0.8, abs=1e-3)
    # The thresholded mask pays -sum ln P(mask) >= n_params min(-ln p, -ln(1 - p)) for every prior p_i.
    per_weight = -math.log(0.99) if mask_prior == "magnitude" else -math.log(0.8)
    assert masks["thresholded"]["certificate"]["kl"] >= masks["n_params"] * per_weight * 0.999
    assert 0.7 < masks["expected_sparsity"] < 0.9
    if mask_prior == "uniform":       # the start (the magnitude mask, softened) is far from a uniform prior:
        start = 0.2 * float(kl_bernoulli(0.99, 0.2)) + 0.8 * float(kl_bernoulli(0.01, 0.2))     # 0.45 nats/weight
        assert res["certificate"]["kl"] > 0.8 * masks["n_params"] * start
    assert res["certificate"]["details"]["prior"]["family"] == "mask"
    assert res["certificate"]["details"]["prior_scale"] == ("per-weight keep probabilities" if mask_prior == "magnitude"
                                                           else pytest.approx(0.2))
    for c in (res["certificate"], masks["magnitude"]["certificate"], masks["thresholded"]["certificate"]):
        assert c["emp_risk"] <= c["value"] <= 1
