"""Bad input to the certifying entry points is refused before any work, naming the user's argument:
an unpaid prior scale (and the refusal names only paid routes), class ids a cast would wrap onto
another class, labels the model cannot output, a Monte Carlo count of zero, a prior mean of another
shape than the weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genbounds.estimators import nets, snn
from genbounds.estimators.data import Dataset
from genbounds.estimators.snn import certification
from genbounds.estimators.supersample import bounds_from_runs, check_supersample_runs, loo_losses


def _tiny(n: int = 60, classes: int = 2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3, 1, 1)).astype(np.float32)
    y = (x[:, 0, 0, 0] > 0).astype(np.int32)
    net = nets.mlp((3, 1, 1), (), classes)
    return Dataset(x, y, 2, "tiny"), net, net.init(jax.random.PRNGKey(0))


# --- An unpaid prior scale: the refusal names only paid routes ------------------------------------


def test_unpaid_prior_scale_refusal_names_only_paid_routes():
    data, net, params = _tiny()
    prior = snn.Prior(params, 0.1)
    post = snn.init_posterior(params, 0.05)
    with pytest.raises(ValueError, match="argument 'prior_scale'") as err:
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0),
                    estimate=snn.PerExampleDraws(1), prior_scale=0.01)
    msg = str(err.value)
    # The old line offered building the Prior with the (possibly bound-set-learned) scale, unpaid.
    assert "build the Prior with that scale" not in msg
    # Paid routes: the DR17 grid with its union bound (what learn_prior_scale uses) ...
    assert "prior_grid=(b, c)" in msg and "union bound" in msg and "learn_prior_scale=True" in msg
    # ... or a scale fixed before the bound set was seen; a bound-set scale is said to have only the grid.
    assert "fixed before seeing the bound set" in msg and "on the bound set" in msg


# --- Class ids a cast would wrap onto another class -----------------------------------------------


def _x(n: int) -> np.ndarray:
    return np.zeros((n, 1, 1, 1), np.float32)


def test_dataset_refuses_a_label_beyond_int32_instead_of_wrapping_it():
    # int32 would store 2^32 + 1 as class 1.
    with pytest.raises(ValueError, match="argument 'y'.*4294967297"):
        Dataset(_x(2), np.array([0, 2**32 + 1], np.int64))
    with pytest.raises(ValueError, match="argument 'y'"):
        Dataset(_x(2), np.array([0, 2**64 - 1], np.uint64))


def test_dataset_refuses_huge_float_labels_that_would_collide():
    # Both cast to the same int32; num_classes became a 300-digit number.
    with pytest.raises(ValueError, match="argument 'y'"):
        Dataset(_x(2), np.array([1e300, 2e300]))
    with pytest.raises(ValueError, match="argument 'y'"):
        Dataset(_x(2), np.array([0.0, 0.5]))


def test_dataset_refuses_labels_outside_num_classes():
    with pytest.raises(ValueError, match="argument 'y'.*\\[0, 2\\)"):
        Dataset(_x(3), np.array([0, 1, 2]), 2)
    d = Dataset(_x(3), np.array([0.0, 1.0, 2.0]), 3)
    assert d.y.dtype == np.int32 and d.y.tolist() == [0, 1, 2] and d.num_classes == 3
    assert Dataset(_x(3), np.array([0, 1, 2], np.uint64)).num_classes == 3


def _fair_masks(k1: int = 2, k2: int = 8, n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    half = np.r_[np.zeros(k2 // 2), np.ones(k2 // 2)]
    return np.stack([np.stack([rng.permutation(half) for _ in range(n)], 1) for _ in range(k1)])


def test_cmi_runs_refuse_huge_float_class_ids_instead_of_reporting_zero_error():
    masks = _fair_masks()
    k1, k2, n = masks.shape
    labels = np.where(np.random.default_rng(1).random((k1, n, 2)) < 0.5, 1e300, 2e300)
    wrong = np.broadcast_to(np.where(labels == 1e300, 2e300, 1e300)[:, None], (k1, k2, n, 2))
    # Every prediction is wrong; the int64 cast made every id the same and reported test error 0.0.
    with pytest.raises(ValueError, match=r"array 'predictions' holds id [12]e\+300, beyond the largest int64"):
        bounds_from_runs(masks, wrong, labels)
    with pytest.raises(ValueError, match=r"array 'labels' holds id 2e\+300"):
        bounds_from_runs(masks, np.zeros((k1, k2, n, 2)), labels)
    with pytest.raises(ValueError, match="array 'labels' must hold whole-number ids, got 0.5"):
        bounds_from_runs(masks, np.zeros((k1, k2, n, 2)), np.full((k1, n, 2), 0.5))
    # Whole floats that fit are accepted and compared exactly: every prediction wrong, error 1.
    small = np.where(labels == 1e300, 1.0, 2.0)
    result = bounds_from_runs(masks, np.broadcast_to((3.0 - small)[:, None], (k1, k2, n, 2)), small)
    assert result.summary.test_error == 1.0 and result.summary.train_error == 1.0


def test_no_class_prediction_never_equals_a_label():
    masks = _fair_masks()
    k1, k2, n = masks.shape
    nan_model = np.full((k1, k2, n, 2), -1, np.int64)          # "no class": every logit NaN
    # uint64 2^64 - 1 became -1 in int64 and matched the NaN model's "no class": test error 0.0.
    with pytest.raises(ValueError, match="array 'labels'"):
        bounds_from_runs(masks, nan_model, np.full((k1, n, 2), 2**64 - 1, np.uint64))
    # A negative label could equal the "no class" prediction: refused too.
    with pytest.raises(ValueError, match="array 'labels'.*no class"):
        check_supersample_runs(masks, nan_model, np.full((k1, n, 2), -1))
    with pytest.raises(ValueError, match="array 'labels'"):
        loo_losses(np.full((1, 3, 3), -1), np.full((1, 3), 2**64 - 1, np.uint64))
    with pytest.raises(ValueError, match="array 'labels'"):
        loo_losses(np.full((1, 3, 3), -1), np.full((1, 3), -1))
    # With valid labels the NaN model is wrong everywhere.
    result = bounds_from_runs(masks, nan_model, np.zeros((k1, n, 2), np.uint64))
    assert result.summary.test_error == 1.0 and result.summary.train_error == 1.0
    assert loo_losses(np.full((1, 3, 3), -1), np.zeros((1, 3), np.uint64)).tolist() == [[[1, 1, 1]] * 3]


# --- certify_network: checked before training, naming the user's argument -------------------------


def _apply(params, x):
    return x.reshape(x.shape[0], -1) @ params["w"] + params["b"]


def _user_model(classes: int = 10):
    params = {"w": jnp.full((3, classes), 0.1), "b": jnp.zeros(classes)}
    return params


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if certify_network reaches training: every check must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("certify_network started training before checking its input")
    monkeypatch.setattr(certification, "train_posterior", refuse)


def _labels_data(top: int) -> Dataset:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 40)
    y[7] = top
    return Dataset(rng.normal(size=(40, 3, 1, 1)).astype(np.float32), y)


def test_certify_network_refuses_labels_the_model_cannot_output(no_training):
    params = _user_model(10)
    data = _labels_data(12)
    with pytest.raises(ValueError, match="argument 'train'.*label 12.*10 logits"):
        snn.certify_network(_apply, params, data, key=jax.random.PRNGKey(0), prior_mean=params,
                            data_free=True, epochs=1, r=1, progress=False)


def test_certify_network_refuses_r_below_one(no_training):
    params = _user_model(10)
    data = _labels_data(9)
    for r in (0, -1, 1.5):
        with pytest.raises(ValueError, match="argument 'r'"):
            snn.certify_network(_apply, params, data, key=jax.random.PRNGKey(0), prior_mean=params,
                                data_free=True, epochs=1, r=r, progress=False)


def test_certify_network_names_prior_mean_and_the_leaf_of_a_wrong_shape(no_training):
    params = _user_model(10)
    data = _labels_data(9)
    kwargs = dict(key=jax.random.PRNGKey(0), data_free=True, epochs=1, r=1, progress=False)
    short = {"w": jnp.zeros((3, 9)), "b": jnp.zeros(10)}
    with pytest.raises(ValueError, match=r"argument 'prior_mean'.*\['w'\].*\(3, 9\).*\(3, 10\)"):
        snn.certify_network(_apply, params, data, prior_mean=short, **kwargs)
    with pytest.raises(ValueError, match="argument 'prior_mean'.*structure.*'params'"):
        snn.certify_network(_apply, params, data, prior_mean={"w": params["w"]}, **kwargs)


def test_certify_refuses_monte_carlo_counts_below_one():
    data, net, params = _tiny()
    prior = snn.Prior(params, 0.1)
    post = snn.init_posterior(params, 0.1)
    with pytest.raises(ValueError, match="argument 'r'"):
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.PerExampleDraws(0))
    with pytest.raises(ValueError, match="argument 'm'"):
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0), estimate=snn.WeightDraws(0))


@pytest.mark.integration      # a training end to end; the unit tests certify valid input in test_prior_provenance.py
@pytest.mark.filterwarnings("ignore:certificate .* says little:UserWarning")
def test_certify_network_still_certifies_valid_input():
    params = _user_model(10)
    data = _labels_data(9)
    cert, _ = snn.certify_network(_apply, params, data, key=jax.random.PRNGKey(0), prior_mean=params,
                                  data_free=True, epochs=1, r=1, progress=False)
    assert cert.n_bound == 40 and cert.mc_samples == 40 and 0.0 <= cert.emp_risk <= cert.value <= 1.0
