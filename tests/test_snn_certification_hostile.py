"""Hostile review of the stochastic-network certification path (estimators/snn/certification.py, families,
models, and the bounds they call). Each test is a problem the review found, now fixed:

* A posterior over half-precision weights is sampled from a discrete, truncated law (the noise is drawn in the
  weights' dtype: bfloat16's normal takes 128 values in [-2.89, 2.52]), while the certificate charges the KL of
  the exact Gaussian and claims the Monte Carlo draws come from it: a certificate below the true risk of Q.
* Monte Carlo sizes that check_count accepts as whole numbers (r = 2.0) crash with a TypeError in range().
* certify_network trains before it finds bad input (delta + mc_delta >= 1, mc_delta = 0, prior_indices out of
  range or covering every example); some refusals name the wrong argument ('optimizer' for NaN inputs, 'n' for
  a prior that used every example) or are tracebacks (batch_size = 0); epochs = -1 is accepted.
* Certificate.from_dict accepts a PAC-Bayes, held-out or combined record whose value was edited (even below its
  own empirical risk).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from posteriors import tiny_task
from scipy.stats import norm

from genbounds.bounds import Certificate
from genbounds.estimators import Dataset, nets, snn
from genbounds.estimators.snn import certification
from genbounds.estimators.snn.families import GAUSSIAN, LAPLACE

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ------------------------------------------------------------------ half-precision weights: the draws are not Q

THRESHOLD = 2.6          # bfloat16's jax.random.normal never exceeds 2.515625


def _one_weight_apply(p, x):
    """Class 0 unless the single weight exceeds THRESHOLD; every label is 0, so the loss is 1[w > THRESHOLD]."""
    w = p["w"].astype(jnp.float32)[0]
    return jnp.stack([jnp.full(x.shape[0], THRESHOLD) - w, jnp.zeros(x.shape[0])], axis=1)


def test_a_bfloat16_posterior_is_not_certified_below_its_true_risk():
    n = 5000
    data = Dataset(np.zeros((n, 1), np.float32), np.zeros(n, np.int32), 2)
    params = {"w": jnp.zeros((1,), jnp.bfloat16)}
    net = nets.custom("one weight", None, _one_weight_apply)
    prior = snn.Prior(params, 1.0)
    post = snn.init_posterior(params, 1.0)            # Q = N(0, 1) = P: KL 0
    cert, mc = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(20))
    true_risk = float(norm.sf(THRESHOLD))              # L_D(Q) = P(W > 2.6) = 0.00466 on every example, exactly
    # got: mc.zero_one 0.0, cert.value 0.00197 (kl 0): a statement that is false with probability one
    assert cert.value >= true_risk, (mc.zero_one, cert.value, true_risk)


@pytest.mark.parametrize("family", [GAUSSIAN, LAPLACE], ids=["gaussian", "laplace"])
def test_a_half_precision_posterior_draw_has_a_continuous_noise(family):
    params = {"w": jnp.zeros((200_000,), jnp.bfloat16)}
    post = snn.init_posterior(params, 1.0)
    w = np.asarray(family.sample(jax.random.PRNGKey(0), post)["w"], np.float64)
    # got 128 distinct values (Gaussian: in [-2.89, 2.52]); a float32 draw has ~200000
    assert len(np.unique(w)) > 10_000 and w.max() > 3.0


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
def test_half_precision_draws_are_the_float32_draws(dtype):
    """Every posterior draw (custom nets, built-in local reparameterisation, matrix-normal) draws its noise in
    float32 whatever the weights' dtype: half-precision weights give the float32 weights' draws."""
    params = {"w": jnp.zeros((50_000,), dtype)}
    post, post32 = snn.init_posterior(params, 1.0), snn.init_posterior({"w": jnp.zeros((50_000,), jnp.float32)}, 1.0)
    key = jax.random.PRNGKey(3)
    for fam in (GAUSSIAN, LAPLACE):
        np.testing.assert_array_equal(np.asarray(fam.sample(key, post)["w"], np.float32),
                                      np.asarray(fam.sample(key, post32)["w"], np.float32))
    net = nets.mlp((3,), (), 2)                            # one dense layer: its logits are one local draw
    mean = jax.tree_util.tree_map(lambda a: a.astype(dtype), net.init(jax.random.PRNGKey(0)))
    scale = jax.tree_util.tree_map(lambda a: jnp.ones_like(a, jnp.float32), mean)
    x = jnp.zeros((20_000, 3), dtype)                      # a zero input: the logits are the bias draws, N(0, 1)
    z = np.asarray(net.apply_independent(key, mean, scale, x), np.float64)
    assert len(np.unique(z)) > 10_000 and np.abs(z).max() > 3.5
    mn = snn.Prior({"w": jnp.zeros((200, 200), dtype)}, 1.0, "matrix_normal")
    w = np.asarray(mn.family.sample(key, mn.family.init(mn.mean, mn))["w"], np.float64)
    assert len(np.unique(w)) > 10_000 and np.abs(w).max() > 3.5


# ------------------------------------------------------------------ Monte Carlo sizes check_count accepts


@pytest.mark.parametrize("conv", ["xla", "matmul"])
def test_a_bfloat16_cnn_trains_with_flipout_on_either_convolution(conv):
    """Flipout's noise kernel is drawn in float32 and its term added in the activations' dtype, so a bf16 CNN
    still runs on the XLA convolution (which needs one dtype for input and kernel); float32 is unchanged."""
    net = nets.cnn((4, 4, 1), 2, channels=(32, 64), dense=(8,), conv=conv)
    mean = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), net.init(jax.random.PRNGKey(0)))
    scale = jax.tree_util.tree_map(lambda a: jnp.full_like(a, 0.05), mean)
    x = jax.random.normal(jax.random.PRNGKey(2), (3, 4, 4, 1))
    out = net.apply_train(jax.random.PRNGKey(1), mean, scale, x.astype(jnp.bfloat16))
    assert out.shape == (3, 2) and bool(jnp.isfinite(out).all())
    mean32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), mean)
    scale32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), scale)
    assert net.apply_train(jax.random.PRNGKey(1), mean32, scale32, x).dtype == jnp.float32


@pytest.mark.parametrize("estimate", [snn.PerExampleDraws(2.0), snn.WeightDraws(3.0)], ids=["r=2.0", "m=3.0"])
def test_a_whole_float_monte_carlo_size_is_refused_or_used(estimate):
    data, net, params = tiny_task()
    prior, post = snn.Prior(params, 0.1), snn.init_posterior(params, 0.05)
    try:
        cert, _ = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=estimate)
    except ValueError as err:                         # a refusal naming the argument is fine
        assert "'r'" in str(err) or "'m'" in str(err)
    else:
        assert cert.mc_samples == len(data) * 2 or cert.mc_samples == 3
        assert type(cert.details["mc_method_param"][next(iter(cert.details["mc_method_param"]))]) is int


@pytest.mark.parametrize("size", [[2], np.array([2, 3]), 2.5, True])
def test_a_monte_carlo_size_that_is_not_one_whole_number_is_refused_by_name(size):
    for estimate, name in ((snn.PerExampleDraws, "'r'"), (snn.WeightDraws, "'m'")):
        with pytest.raises(ValueError, match=name):
            estimate(size)


def test_certify_names_a_train_that_is_not_a_dataset():
    data, net, params = tiny_task()
    prior, post = snn.Prior(params, 0.1), snn.init_posterior(params, 0.05)
    with pytest.raises(ValueError, match="argument 'train'"):
        snn.certify(net, post, prior, (data.x, data.y), key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(1))
    data_prior = snn.Prior(params, 0.1, data_indices=np.arange(20))
    for fn in (certification.certify_excess, certification.certify_with_excess):
        with pytest.raises(ValueError, match="argument 'train'"):
            fn(net, post, data_prior, (data.x, data.y), key=jax.random.PRNGKey(0), r=1)
    with pytest.raises(ValueError, match="argument 'prior'"):
        snn.certify(net, post, params, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(1))


# ------------------------------------------------------------------ certify_network: bad input


def _apply(p, x):
    return x.reshape(x.shape[0], -1) @ p["w"] + p["b"]


def _user():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.zeros(2)}
    return Dataset(x, y, 2), params, {"w": params["w"] * 0.9, "b": params["b"]}


def _network(train=None, model=_apply, **kwargs):
    data, params, prior = _user()
    args = dict(key=jax.random.PRNGKey(0), prior_mean=prior, prior_indices=np.arange(20), epochs=1, r=1,
                progress=False)
    args.update(kwargs)
    return snn.certify_network(model, params, data if train is None else train, **args)


@pytest.fixture
def no_training(monkeypatch):
    """Fail if certify_network reaches training: bad input must be refused first (tests/test_certify_inputs.py)."""
    def refuse(*args, **kwargs):
        raise AssertionError("certify_network started training before checking its input")
    monkeypatch.setattr(certification, "train_posterior", refuse)


def test_certify_network_r_as_a_whole_float():
    try:
        cert, _ = _network(r=2.0)
    except ValueError as err:
        assert "'r'" in str(err)
    else:
        assert cert.mc_samples == 2 * cert.n_bound


@pytest.mark.parametrize("kwargs", [dict(delta=0.99), dict(mc_delta=0.0), dict(prior_indices=np.arange(50, 70)),
                                    dict(prior_indices=np.arange(60))],
                         ids=["delta+mc_delta=1", "mc_delta=0", "prior_indices_out_of_range", "prior_used_all"])
def test_certify_network_refuses_bad_input_before_training(no_training, kwargs):
    with pytest.raises(ValueError) as err:
        _network(**kwargs)
    name = next(iter(kwargs))
    assert f"'{name}'" in str(err.value) or (name == "prior_indices" and "prior" in str(err.value))


def test_certify_network_refuses_batch_size_zero(no_training):
    with pytest.raises(ValueError, match="'batch_size'"):
        _network(batch_size=0)


def test_certify_network_refuses_negative_epochs(no_training):
    with pytest.raises(ValueError, match="'epochs'"):
        _network(epochs=-1)


def test_certify_network_names_train_for_nan_inputs(no_training):
    data, _, _ = _user()
    x = data.x.copy()
    x[5, 0] = np.nan
    with pytest.raises(ValueError, match="'train'"):
        _network(train=Dataset(x, data.y, 2))


def test_certify_network_names_model_for_nan_logits(no_training):
    with pytest.raises(ValueError, match="'model'"):
        _network(model=lambda p, x: _apply(p, x) * jnp.nan)


@pytest.mark.parametrize("kwargs, name", [
    (dict(delta=0.5, mc_delta=0.5), "'mc_delta'"), (dict(delta=np.array([0.01, 0.02])), "'delta'"),
    (dict(mc_delta="0.01"), "'mc_delta'"), (dict(epochs=2.5), "'epochs'"), (dict(batch_size=1.5), "'batch_size'"),
    (dict(prior_scale=-1.0), "'prior_scale'"), (dict(prior_scale=math.inf), "'prior_scale'"),
    (dict(prior_indices=np.array([1, 1, 2])), "'prior_indices'"),
    (dict(prior_indices=np.array([0.0, 1.0])), "'prior_indices'"),
    (dict(test_set=Dataset(np.full((4, 3), np.nan, np.float32), np.zeros(4, np.int32), 2)), "'test_set'"),
    (dict(test_set=Dataset(np.zeros((0, 3), np.float32), np.zeros(0, np.int32), 2)), "'test_set'"),
], ids=["delta_sum", "delta_array", "mc_delta_text", "epochs_fraction", "batch_fraction", "scale_negative",
        "scale_inf", "prior_indices_twice", "prior_indices_float", "test_set_nan", "test_set_empty"])
def test_certify_network_names_each_bad_argument_before_training(no_training, kwargs, name):
    with pytest.raises(ValueError, match=name):
        _network(**kwargs)


def test_certify_network_takes_whole_float_batch_and_epochs():
    cert, _ = _network(batch_size=20.0, epochs=2.0)
    assert cert.details["training"]["steps"] == 2 * 3 and cert.details["training"]["batch_size"] == 20


def test_certify_refuses_a_bad_delta_before_the_draws(monkeypatch):
    data, net, params = tiny_task()
    prior, post = snn.Prior(params, 0.1, data_indices=np.arange(20)), snn.init_posterior(params, 0.05)

    def refuse(*args, **kwargs):
        raise AssertionError("drew before checking delta")
    monkeypatch.setattr(certification, "independent_draws", refuse)
    with pytest.raises(ValueError, match="'mc_delta'"):
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(1), delta=0.99)
    with pytest.raises(ValueError, match="'mc_delta'"):
        certification.certify_with_excess(net, post, prior, data, key=jax.random.PRNGKey(0), r=1, mc_delta=0.99)


# ------------------------------------------------------------------ records edited by hand


def _edited(cert: Certificate, value: float) -> dict:
    d = cert.to_dict()
    d.pop("vacuous")
    d["value"] = value
    return d


def test_from_dict_refuses_an_edited_snn_record():
    data, net, params = tiny_task(200)
    prior = snn.Prior(params, 0.1, data_indices=np.arange(50))
    post = snn.init_posterior(params, 0.05)
    (cert, _), (combined, _) = certification.certify_with_excess(net, post, prior, data, key=jax.random.PRNGKey(0),
                                                                 r=2)
    held = certification.heldout_certificate(10, cert.n_bound, cert.delta)
    for c in (cert, held, combined):
        assert c.emp_risk > 0.0
        with pytest.raises(ValueError):
            Certificate.from_dict(_edited(c, 0.0))     # 0 < emp_risk: accepted today


# ------------------------------------------------------------------ the record: what the library derives


def test_user_details_do_not_override_the_derived_provenance():
    data, net, params = tiny_task()
    with pytest.raises(ValueError, match="argument 'details' must not hold 'kind'"):
        snn.Prior(params, 0.1, data_indices=np.arange(20), details={"kind": "init"})
    with pytest.raises(ValueError, match="argument 'details' must not hold 'family'"):
        snn.Prior(params, 0.1, details={"family": "laplace"})
    prior = snn.Prior(params, 0.1, data_indices=np.arange(20), details={"seed": 3})
    prior.details["kind"] = "init"                      # edited after construction: the derived kind still wins
    post = snn.init_posterior(params, 0.05)
    lie = {"mc_method": "weights", "split": {"n_train": 60, "n_prior": 0, "n_bound": 60}}
    try:
        cert, _ = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(2),
                              details=lie)
    except ValueError:
        cert = None                                     # refusing the derived keys is a fix too
    if cert is not None:
        assert cert.details["mc_method"] == "independent"
        assert cert.details["split"] == {"n_train": 60, "n_prior": 20, "n_bound": 40}
        assert cert.details["prior"]["kind"] == "data"
    cert, _ = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(2),
                          details={"note": "mine"})
    assert cert.details["prior"] == {"kind": "data", "family": "gaussian", "seed": 3}
    assert cert.details["note"] == "mine" and cert.details["mc_method_param"] == {"r": 2}
    for key in ("mc_method", "mc_method_param", "split", "prior", "prior_scale", "delta_effective"):
        with pytest.raises(ValueError, match=f"argument 'details' must not hold '{key}'"):
            snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(1),
                        details={key: 0})
    for key in ("shares", "reference", "k_errors", "mc_method_param"):
        for fn in (certification.certify_excess, certification.certify_with_excess):
            with pytest.raises(ValueError, match=f"argument 'details' must not hold '{key}'"):
                fn(net, post, prior, data, key=jax.random.PRNGKey(0), r=1, details={key: 0})
    try:
        _, (combined, _) = certification.certify_with_excess(
            net, post, snn.Prior(params, 0.1, data_indices=np.arange(20)), data, key=jax.random.PRNGKey(0), r=2,
            details={"shares": {"reference": 0.5, "excess": 0.4}, "mc_method_param": {"r": 1000}})
    except ValueError:
        return
    assert combined.details["shares"] == {"reference": 0.9, "excess": 0.07}
    assert combined.details["mc_method_param"] == {"r": 2}


# ------------------------------------------------------------------ certify(prior_scale=...) with a grid


@pytest.mark.parametrize("scale", [-1.0, "0.1", 1e300, np.array([0.1, 0.2]), 1e-200],
                         ids=["negative", "text", "huge", "array", "tiny"])
def test_certify_refuses_a_bad_prior_scale_by_name(scale):
    data, net, params = tiny_task()
    prior, post = snn.Prior(params, 0.1), snn.init_posterior(params, 0.05)
    with pytest.raises(ValueError, match="'prior_scale'"):
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(1),
                    prior_scale=scale, prior_grid=(100.0, 0.1))
    if not (isinstance(scale, float) and 0 < scale < 1e100):        # no grid: refused by name too, not read as 0.1
        with pytest.raises(ValueError, match="'prior_scale'"):
            snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(1),
                        prior_scale=scale)


def test_certify_on_the_grid_names_a_prior_whose_variance_has_no_grid_index():
    data, net, params = tiny_task()
    post = snn.init_posterior(params, 0.05)
    with pytest.raises(ValueError, match="argument 'prior'"):
        snn.certify(net, post, snn.Prior(params, 1e-200), data, key=jax.random.PRNGKey(0),
                    estimate=snn.PerExampleDraws(1), prior_grid=(100.0, 0.1))


# ------------------------------------------------------------------ differentially private priors


@pytest.mark.parametrize("n", [0, -5, 2.5, "10", [10], True, math.inf])
def test_gibbs_tau_refuses_a_bad_sample_size(n):
    import importlib
    dp = importlib.import_module("genbounds.estimators.snn.dp_prior")
    with pytest.raises(ValueError, match="'n'"):
        dp.gibbs_tau(1.0, n)
    with pytest.raises(ValueError, match="'n'"):
        dp.gibbs_epsilon(1.0, n)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, "1"], ids=["zero", "neg", "inf", "nan", "text"])
def test_gibbs_tau_and_epsilon_name_a_bad_parameter(bad):
    import importlib
    dp = importlib.import_module("genbounds.estimators.snn.dp_prior")   # snn.dp_prior is the function
    for fn, name in ((dp.gibbs_tau, "'epsilon'"), (dp.gibbs_epsilon, "'tau'")):
        with pytest.raises(ValueError, match=name):
            fn(bad, 100)
        with pytest.raises(ValueError, match="'loss_range'"):
            fn(1.0, 100, bad)
    assert dp.gibbs_tau(1.0, 10.0) == 5.0 and dp.gibbs_epsilon(5.0, 10.0) == 1.0


@pytest.mark.parametrize("scale", ["0.1", math.inf, math.nan, True, -1.0], ids=["text", "inf", "nan", "bool", "neg"])
def test_a_location_scale_prior_refuses_a_bad_scale_by_name(scale):
    _, _, params = tiny_task()
    for family in (GAUSSIAN, LAPLACE):
        with pytest.raises(ValueError, match="argument 'scale'"):
            snn.Prior(params, scale, family)
