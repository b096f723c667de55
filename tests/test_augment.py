"""Prior-training augmentation: what it draws, that the step applies it, and where the config allows it."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import genbounds.experiments.pac_bayes_runner as pbm
from genbounds.estimators import nets
from genbounds.estimators.augment import AUGMENTATIONS, get_augment, shift_flip
from genbounds.estimators.steps import supervised_step

TINY = pbm.PacBayesConfig.flat(arch="mlp", prior_dropout=0.0, widths=(16,), prior_epochs=2, epochs=2, mc_r=2, mc_m=0,
                               objectives=("quad",))


def _offsets(x: np.ndarray, out: np.ndarray, s: int) -> list[tuple[int, int]]:
    """Every (dy, dx) with out == edge-padded x cropped at (dy, dx)."""
    h, w = x.shape[:2]
    padded = np.pad(x, ((s, s), (s, s), (0, 0)), mode="edge")
    return [(i, j) for i in range(2 * s + 1) for j in range(2 * s + 1)
            if np.array_equal(padded[i:i + h, j:j + w], out)]


def test_shift_is_an_edge_padded_crop_and_reaches_every_offset():
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (400, 7, 9, 2)))
    out = np.asarray(jax.jit(shift_flip(2, flip=False))(jax.random.PRNGKey(1), jnp.asarray(x)))
    assert out.shape == x.shape
    seen = set()
    for a, b in zip(x, out):
        found = _offsets(a, b, 2)
        assert len(found) == 1          # continuous random pixels: exactly one crop matches
        seen.add(found[0])
    assert seen == {(i, j) for i in range(5) for j in range(5)}   # all 25 offsets drawn among 400 images
    assert (2, 2) in seen                                          # including no shift at all


def test_flip_mirrors_about_half_the_images_and_nothing_else():
    x = jax.random.normal(jax.random.PRNGKey(2), (2000, 5, 6, 1))
    out = shift_flip(0, flip=True)(jax.random.PRNGKey(3), x)
    same = np.all(np.asarray(out) == np.asarray(x), axis=(1, 2, 3))
    mirrored = np.all(np.asarray(out) == np.asarray(x[:, :, ::-1, :]), axis=(1, 2, 3))
    assert np.all(same ^ mirrored)                                  # each image is one or the other
    assert abs(mirrored.mean() - 0.5) < 4 * np.sqrt(0.25 / 2000)   # Bernoulli(1/2), 4 standard errors
    np.testing.assert_array_equal(shift_flip(0, flip=False)(jax.random.PRNGKey(3), x), x)


def test_augment_refusals_name_the_argument():
    with pytest.raises(ValueError, match="'max_shift'"):
        shift_flip(-1)
    with pytest.raises(ValueError, match=r"\[b, h, w, c\]"):
        shift_flip(2)(jax.random.PRNGKey(0), jnp.zeros((3, 64)))
    with pytest.raises(ValueError, match="'prior_augment'"):
        get_augment("rotate")
    assert get_augment("none") is None and set(AUGMENTATIONS) == {"none", "shift", "shift-flip"}


def test_supervised_step_trains_on_the_augmented_batch():
    net = nets.mlp((4, 4, 1), (8,), 3)
    params = net.init(jax.random.PRNGKey(0))
    xb = jax.random.normal(jax.random.PRNGKey(1), (6, 4, 4, 1))
    yb = jnp.array([0, 1, 2, 0, 1, 2])

    def zero(key, x):                   # an "augmentation" whose effect on the loss is known exactly
        return jnp.zeros_like(x)

    step = supervised_step(net, optax.sgd(0.1), augment=zero)
    _, loss = jax.jit(step.step)(step.init(params), jax.random.PRNGKey(2), xb, yb)      # as training compiles it
    expected = optax.softmax_cross_entropy_with_integer_labels(net.apply(params, jnp.zeros_like(xb)), yb).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    _, plain = jax.jit(supervised_step(net, optax.sgd(0.1)).step)(step.init(params), jax.random.PRNGKey(2), xb, yb)
    assert float(plain) != pytest.approx(float(expected), rel=1e-3)


@pytest.mark.integration
def test_config_prior_augment_is_a_prior_setting_for_data_priors_only(tmp_path):
    cfg = TINY.replace(prior_augment="shift")
    assert cfg.prior_digest() != TINY.prior_digest()
    with pytest.raises(ValueError, match="'prior_augment'"):
        TINY.replace(prior_augment="rotate")
    with pytest.raises(ValueError, match="'prior_augment'"):
        TINY.replace(prior="init", standardize=False, prior_augment="shift")
    record = pbm.run_pac_bayes(cfg, tmp_path, progress=False, log=lambda s: None).to_dict()
    cert = record["results"][0]["certificate"]
    assert cert["details"]["prior"]["augment"] == "shift"
    assert cert["n_bound"] + cert["n_prior"] == cert["details"]["split"]["n_train"]
