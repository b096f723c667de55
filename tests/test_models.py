"""Models as people write them (Flax linen, Flax NNX, Equinox, a plain apply and pytree) are certified
whole by certify_network, around the user's own weights, with fixed state (BatchNorm statistics) taken
from the prior model and refused, by leaf, when the user's differs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genbounds.estimators import Dataset, snn
from genbounds.estimators.snn import certification

eqx = pytest.importorskip("equinox")
nn = pytest.importorskip("flax.linen")
nnx = pytest.importorskip("flax.nnx")

AROUND = "stochastic posterior around your weights"
# Around weights trained past the prior the certificates say little (KL/n near 1 on 200 examples): warned.
pytestmark = pytest.mark.filterwarnings("ignore:certificate .* says little:UserWarning")


@pytest.fixture(scope="module")
def digits():
    """400 training examples (the prior's 200 first), 200 test examples."""
    from sklearn.datasets import load_digits  # here, not at the top: 0.4 s of every worker's collection

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int32)
    perm = np.random.default_rng(0).permutation(len(x))
    train, test = Dataset(x[perm[:400]], y[perm[:400]]), Dataset(x[perm[400:600]], y[perm[400:600]])
    return train, test, np.arange(200)


def _fit(apply, params, data, steps, lr=1e-2):
    """The user's own training loop: full-batch Adam on softmax cross-entropy."""
    opt = optax.adam(lr)

    @jax.jit
    def step(p, s):
        g = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(apply(p, data.x), data.y).mean())(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    state = opt.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params


def _error(predict, data) -> float:
    return float(np.mean(np.asarray(jnp.argmax(predict(data.x), -1)) != data.y))


_CERTIFY = dict(key=jax.random.PRNGKey(3), epochs=2, r=2, progress=False)


def _certify(model, train, prior_idx, test, params=None, **kwargs):
    args = (model, train) if params is None else (model, params, train)
    return snn.certify_network(*args, prior_indices=prior_idx, test_set=test, **_CERTIFY, **kwargs)


def _assert_around_the_weights(cert, test, network_error, prior_error):
    """The certificate covers the posterior centred on the user's weights, says so, and its test errors are
    the user's network's and the prior's, computed independently here."""
    c = snn.CertifiedPredictor.from_dict(cert.details["predictor"])
    assert c.predictor == AROUND and not c.train_mean
    assert c.distance_to_weights == 0.0 and c.distance_to_prior > 0.0
    assert c.bound_set_agreement == 1.0
    assert c.network_test_error == pytest.approx(network_error, abs=1e-12)
    assert c.mean_test_error == pytest.approx(network_error, abs=1e-12)
    assert c.prior_test_error == pytest.approx(prior_error, abs=1e-12)
    assert 0.0 <= c.stochastic_test_error <= 1.0
    assert cert.n_bound == 200 and 0.0 <= cert.emp_risk <= cert.value <= 1.0 and np.isfinite(cert.kl)
    return c


# --- as_model: the pair apply(params, x), params, and the fixed state ------------------------------


def _grad_sees_real_leaves_only(m, x):
    jax.grad(lambda p: m.apply(p, x).sum())(m.params)         # was: grad requires real-valued inputs (uint32)


@pytest.mark.integration
def test_as_model_nnx_params_trainable_batch_stats_fixed_evaluation_mode(digits):
    """Param leaves trainable, BatchStat fixed, the RNG state set aside; dropout off, running statistics used."""
    from genbounds.estimators.models import ModelKind, as_model

    x = digits[0].x[:5]
    _, mine = _nnx_models(digits, bound_set_statistics=False, steps=(0, 0))
    m = as_model(mine)
    assert m.kind is ModelKind.NNX
    assert [jnp.result_type(a) for a in jax.tree_util.tree_leaves(m.params)] == [jnp.float32] * 6
    assert {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(m.state)} == {
        "['bn']['mean'].value", "['bn']['var'].value"}
    np.testing.assert_array_equal(m.apply(m.params, x), m.apply(m.params, x))      # dropout off
    np.testing.assert_allclose(m.apply(m.params, x), _evaluation_copy(mine)(x), rtol=1e-6)
    _grad_sees_real_leaves_only(m, x)


def test_as_model_linen_params_trainable_batch_stats_fixed_train_flag_off(digits):
    from genbounds.estimators.models import ModelKind, as_model

    x = digits[0].x[:5]
    model, _, mine = _linen_bn(digits, steps=(0, 0))
    m = as_model(model, mine)
    assert m.kind is ModelKind.LINEN and set(m.params) == {"params"} and set(m.state) == {"batch_stats"}
    np.testing.assert_allclose(m.apply(m.params, x), model.apply(mine, x, train=False), rtol=1e-6)
    assert as_model(model.apply, mine).kind is ModelKind.LINEN       # the bound apply method too
    _grad_sees_real_leaves_only(m, x)
    # A required training flag is set to its evaluation value: dropout off.
    dropout = _LinenDropout()
    variables = dropout.init(jax.random.PRNGKey(0), x, deterministic=True)
    m = as_model(dropout, variables)
    np.testing.assert_array_equal(m.apply(m.params, x), dropout.apply(variables, x, deterministic=True))


class _LinenDropout(nn.Module):
    @nn.compact
    def __call__(self, x, deterministic: bool):
        return nn.Dense(10)(nn.Dropout(0.5, deterministic=deterministic)(x))


def test_as_model_reads_the_state_of_a_plain_nnx_split(digits):
    """apply(state, x) over nnx.split(model)'s whole state (was: grad requires real-valued inputs, uint32):
    its Param variables trainable, BatchStat and the Dropout RNG state fixed."""
    from genbounds.estimators.models import ModelKind, as_model

    x = digits[0].x[:5]
    _, mine = _nnx_models(digits, bound_set_statistics=False, steps=(0, 0))
    mine.eval()
    graphdef, state = nnx.split(mine)
    m = as_model(lambda s, x: nnx.merge(graphdef, s)(x), state)
    assert m.kind is ModelKind.APPLY
    assert len(jax.tree_util.tree_leaves(m.params)) == 6
    assert {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(m.state)} == {
        "['bn']['mean'].value", "['bn']['var'].value", "['drop']['rngs']['count'].value",
        "['drop']['rngs']['key'].value"}
    np.testing.assert_allclose(m.apply(m.params, x), mine(x), rtol=1e-6)
    _grad_sees_real_leaves_only(m, x)


@pytest.mark.integration
def test_as_model_equinox_inexact_arrays_trainable_vmapped(digits):
    from genbounds.estimators.models import ModelKind, as_model

    x = digits[0].x[:5]
    e = eqx.nn.MLP(64, 10, 8, depth=1, key=jax.random.PRNGKey(0))
    m = as_model(e)
    assert m.kind is ModelKind.EQUINOX
    np.testing.assert_allclose(m.apply(m.params, x), jax.vmap(e)(x), rtol=1e-6)
    _grad_sees_real_leaves_only(m, x)           # was: custom_jvp object is not a valid JAX array type


def test_as_model_plain_apply_integer_leaves_fixed(digits):
    """A plain apply and pytree (Haiku-style apply(params, x) alike): integer leaves fixed."""
    from genbounds.estimators.models import ModelKind, as_model

    x = digits[0].x[:5]
    params = {"net": _plain_params(), "step": jnp.asarray(3, jnp.uint32)}
    m = as_model(lambda p, x: _plain_apply(p["net"], x), params)
    assert m.kind is ModelKind.APPLY and m.params["step"] is None and int(m.state["step"]) == 3
    np.testing.assert_array_equal(m.apply(m.params, x), _plain_apply(params["net"], x))
    _grad_sees_real_leaves_only(m, x)


def test_as_model_refuses_what_it_cannot_read():
    from genbounds.estimators.models import as_model

    with pytest.raises(ValueError, match="argument 'params'.*module holds its own weights"):
        as_model(eqx.nn.MLP(4, 2, 3, depth=1, key=jax.random.PRNGKey(0)), {"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match="argument 'params'.*required"):
        as_model(_plain_apply)
    with pytest.raises(ValueError, match="argument 'params'.*'params' collection"):
        as_model(_LinenMLP(), {"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match="argument 'model'"):
        as_model(3, {"w": jnp.zeros(2)})


# --- the four kinds, certified without glue ---------------------------------------------------------


class _LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(32)(x)))


@pytest.mark.integration
def test_flax_linen_module_and_variables(digits):
    train, test, prior_idx = digits
    model = _LinenMLP()
    init = model.init(jax.random.PRNGKey(0), train.x[:1])
    prior = _fit(model.apply, init, train.take(prior_idx), 100)
    mine = _fit(model.apply, prior, train, 20, lr=1e-3)
    cert, post = _certify(model, train, prior_idx, test, params=mine, prior_mean=prior)
    _assert_around_the_weights(cert, test, _error(lambda x: model.apply(mine, x), test),
                               _error(lambda x: model.apply(prior, x), test))
    assert jax.tree_util.tree_structure(post.mean) == jax.tree_util.tree_structure(mine)


class _NNXNet(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(64, 32, rngs=rngs)
        self.bn = nnx.BatchNorm(32, rngs=rngs)
        self.drop = nnx.Dropout(0.2, rngs=rngs)
        self.l2 = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.drop(nnx.relu(self.bn(self.l1(x)))))


def _nnx_models(digits, bound_set_statistics: bool, steps: tuple[int, int] = (100, 20)):
    """The prior: statistics from the prior split, weights fitted there; your network: the prior's
    weights fitted on all of train, statistics kept (or recomputed on the bound set)."""
    train, _, prior_idx = digits
    prior = _NNXNet(nnx.Rngs(0))
    prior.train()
    for _ in range(3):
        prior(train.x[prior_idx])            # running statistics (and the Dropout RNG counter) advance
    prior.eval()
    graphdef, params, rest = nnx.split(prior, nnx.Param, ...)
    nnx.update(prior, _fit(lambda p, x: nnx.merge(graphdef, p, rest)(x), params, train.take(prior_idx), steps[0]))
    mine = nnx.clone(prior)
    graphdef, params, rest = nnx.split(mine, nnx.Param, ...)
    nnx.update(mine, _fit(lambda p, x: nnx.merge(graphdef, p, rest)(x), params, train, steps[1], lr=1e-3))
    mine.train()                              # left in training mode, as after a user's loop
    if bound_set_statistics:
        for _ in range(3):
            mine(np.delete(train.x, prior_idx, axis=0))
    return prior, mine


def _evaluation_copy(model):
    copy = nnx.clone(model)
    copy.eval()
    return copy


@pytest.mark.integration
def test_flax_nnx_module_with_dropout_and_batch_norm(digits):
    train, test, prior_idx = digits
    prior, mine = _nnx_models(digits, bound_set_statistics=False)
    expected = (_error(_evaluation_copy(mine), test), _error(_evaluation_copy(prior), test))
    cert, _ = _certify(mine, train, prior_idx, test, prior_mean=prior)
    _assert_around_the_weights(cert, test, *expected)
    assert mine.bn.use_running_average is False and mine.drop.deterministic is False   # the module is untouched


def test_flax_nnx_statistics_from_the_bound_set_are_refused_before_training(digits, no_training):
    train, test, prior_idx = digits
    prior, mine = _nnx_models(digits, bound_set_statistics=True, steps=(0, 0))
    with pytest.raises(ValueError, match=r"argument 'model'.*\['bn'\]\['mean'\].*prior") as caught:
        _certify(mine, train, prior_idx, test, prior_mean=prior)
    assert "\n" not in str(caught.value)


@pytest.mark.integration
def test_equinox_module(digits):
    train, test, prior_idx = digits
    init = eqx.nn.MLP(64, 10, 32, depth=1, key=jax.random.PRNGKey(0))
    params, static = eqx.partition(init, eqx.is_inexact_array)

    def apply(p, x):
        return jax.vmap(eqx.combine(p, static))(x)

    prior_params = _fit(apply, params, train.take(prior_idx), 100)
    mine_params = _fit(apply, prior_params, train, 20, lr=1e-3)
    prior, mine = eqx.combine(prior_params, static), eqx.combine(mine_params, static)
    cert, post = _certify(mine, train, prior_idx, test, prior_mean=prior)
    _assert_around_the_weights(cert, test, _error(jax.vmap(mine), test), _error(jax.vmap(prior), test))


def _plain_apply(p, x):
    return jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


def _plain_params(key=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    return {"w1": jax.random.normal(k1, (64, 32)) / 8.0, "b1": jnp.zeros(32),
            "w2": jax.random.normal(k2, (32, 10)) / 6.0, "b2": jnp.zeros(10)}


@pytest.mark.integration
def test_plain_apply_and_pytree_with_an_integer_leaf(digits):
    """An integer leaf (a step counter) is kept fixed: grad never sees it."""
    train, test, prior_idx = digits
    prior = _fit(_plain_apply, _plain_params(), train.take(prior_idx), 100)
    mine = _fit(_plain_apply, prior, train, 20, lr=1e-3)
    counter = jnp.asarray(7, jnp.uint32)
    cert, post = _certify(lambda p, x: _plain_apply(p["net"], x), train, prior_idx, test,
                          params={"net": mine, "step": counter}, prior_mean={"net": prior, "step": counter})
    _assert_around_the_weights(cert, test, _error(lambda x: _plain_apply(mine, x), test),
                               _error(lambda x: _plain_apply(prior, x), test))


# --- batch norm: the prior's statistics, or a refusal ----------------------------------------------


class _LinenBN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train)(nn.Dense(32)(x))
        return nn.Dense(10)(nn.relu(h))


def _linen_bn(digits, steps: tuple[int, int] = (100, 20)):
    """Prior: statistics computed on the prior split and weights fitted there (evaluation mode)."""
    train, _, prior_idx = digits
    model = _LinenBN()
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), train.x[:1])
    update = jax.jit(lambda v: model.apply(v, train.x[prior_idx], train=True, mutable=["batch_stats"])[1])
    for _ in range(20):
        variables = {**variables, **update(variables)}
    stats = {"batch_stats": variables["batch_stats"]}

    def apply(p, x):
        return model.apply({**p, **stats}, x)

    prior = {**_fit(apply, {"params": variables["params"]}, train.take(prior_idx), steps[0]), **stats}
    mine = {**_fit(apply, {"params": prior["params"]}, train, steps[1], lr=1e-3), **stats}
    return model, prior, mine


@pytest.mark.integration
def test_linen_batch_norm_with_the_prior_splits_statistics_is_certified(digits):
    train, test, prior_idx = digits
    model, prior, mine = _linen_bn(digits)
    cert, post = _certify(model, train, prior_idx, test, params=mine, prior_mean=prior)
    _assert_around_the_weights(cert, test, _error(lambda x: model.apply(mine, x), test),
                               _error(lambda x: model.apply(prior, x), test))
    # Only the weights are stochastic: the statistics are no part of the posterior.
    assert "batch_stats" not in post.mean or not jax.tree_util.tree_leaves(post.mean["batch_stats"])


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if certify_network reaches training: every check must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("certify_network started training before checking its input")
    monkeypatch.setattr(certification, "train_posterior", refuse)


def test_linen_statistics_from_the_bound_set_are_refused_with_one_line_naming_the_leaf(digits, no_training):
    train, test, prior_idx = digits
    model, prior, mine = _linen_bn(digits, steps=(0, 0))
    bound_x = np.delete(train.x, prior_idx, axis=0)
    _, updates = model.apply(mine, bound_x, train=True, mutable=["batch_stats"])
    mine = {**mine, **updates}
    with pytest.raises(ValueError, match=r"argument 'model'.*\['batch_stats'\]\['BatchNorm_0'\]\['mean'\]"
                                         r".*prior") as caught:
        _certify(model, train, prior_idx, test, params=mine, prior_mean=prior)
    assert "\n" not in str(caught.value)


def test_non_finite_weights_are_refused_before_training_naming_the_leaf(digits, no_training):
    train, test, prior_idx = digits
    prior = _plain_params()
    mine = {**prior, "b1": prior["b1"].at[3].set(jnp.nan)}
    with pytest.raises(ValueError, match=r"argument 'params'.*\['b1'\].*not finite"):
        _certify(_plain_apply, train, prior_idx, test, params=mine, prior_mean=prior)
    with pytest.raises(ValueError, match=r"argument 'prior_mean'.*\['b1'\].*not finite"):
        _certify(_plain_apply, train, prior_idx, test, params=prior, prior_mean=mine)


def test_a_module_needs_a_module_of_the_same_kind_as_its_prior(digits, no_training):
    train, test, prior_idx = digits
    mine = eqx.nn.MLP(64, 10, 8, depth=1, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="argument 'prior_mean' must be a equinox module"):
        _certify(mine, train, prior_idx, test, prior_mean={"layers": jnp.zeros(3)})
    other = eqx.nn.MLP(64, 10, 8, depth=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="argument 'prior_mean' must have the tree structure"):
        _certify(mine, train, prior_idx, test, prior_mean=other)
    # The same weights in another network (NNX: a different dropout rate) is no prior for this one.
    prior = _NNXNet(nnx.Rngs(0))
    prior.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(1))
    with pytest.raises(ValueError, match="arguments 'model' and 'prior_mean' differ in their fixed structure"):
        _certify(_NNXNet(nnx.Rngs(0)), train, prior_idx, test, prior_mean=prior)


# --- the old call form, and a posterior whose mean may move ----------------------------------------


@pytest.mark.integration
def test_the_old_call_form_and_train_mean(digits):
    """certify_network(apply, params, train, ...) as before; with train_mean=True the mean moves and the
    certificate says so (distance to your weights > 0, the predictor named)."""
    train, test, prior_idx = digits
    prior = _fit(_plain_apply, _plain_params(), train.take(prior_idx), 100)
    mine = _fit(_plain_apply, prior, train, 20, lr=1e-3)
    cert, post = snn.certify_network(_plain_apply, mine, train, prior_mean=prior, prior_indices=prior_idx,
                                     **_CERTIFY)
    c = snn.CertifiedPredictor.from_dict(cert.details["predictor"])
    assert c.predictor == AROUND and c.distance_to_weights == 0.0 and c.network_test_error is None
    moved, post_moved = snn.certify_network(_plain_apply, mine, train, prior_mean=prior, prior_indices=prior_idx,
                                            train_mean=True, optimizer=optax.adam(1e-2), **_CERTIFY)
    m = snn.CertifiedPredictor.from_dict(moved.details["predictor"])
    assert m.train_mean and m.predictor != AROUND and "moved" in m.predictor
    assert m.distance_to_weights > 1e-3
    assert m.distance_to_weights == pytest.approx(certification._relative_distance(post_moved.mean, mine))
    assert c.to_dict() == dataclasses.asdict(c)
