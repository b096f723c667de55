"""KL between factorised Gaussians / Laplaces over pytrees."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from genbounds.bounds import kl_diag_gaussian, kl_diag_laplace, to_float64


def _tree(rng):
    return {"w": rng.normal(size=(5, 3)), "b": rng.normal(size=3), "layers": [rng.normal(size=4)]}


def test_gaussian_matches_numpyro_and_closed_form():
    rng = np.random.default_rng(0)
    mq, mp = _tree(rng), _tree(rng)
    sq = jax.tree_util.tree_map(lambda x: np.exp(rng.normal(size=x.shape) * 0.3) * 0.1, mq)
    sp = jax.tree_util.tree_map(lambda x: np.full(x.shape, 0.2), mq)
    got = kl_diag_gaussian(mq, sq, mp, sp)
    assert isinstance(got, np.float64)
    ref = sum(float(jnp.sum(dist.kl_divergence(dist.Normal(a, s), dist.Normal(b, t))))
              for a, s, b, t in zip(*(jax.tree_util.tree_leaves(x) for x in (mq, sq, mp, sp))))
    assert got == pytest.approx(ref, rel=1e-5)
    # Closed form for one weight: ln(sp/sq) + (sq^2 + (mq-mp)^2) / (2 sp^2) - 1/2.
    one = kl_diag_gaussian({"a": np.array([1.0])}, {"a": np.array([0.5])}, {"a": np.array([0.0])}, 2.0)
    assert one == pytest.approx(np.log(4.0) + (0.25 + 1.0) / 8.0 - 0.5, rel=1e-14)


def test_scalar_prior_scale_broadcasts_and_zero_when_equal():
    rng = np.random.default_rng(1)
    m = _tree(rng)
    assert kl_diag_gaussian(m, 0.3, m, 0.3) == 0.0
    full = jax.tree_util.tree_map(lambda x: np.full(x.shape, 0.3), m)
    zeros = jax.tree_util.tree_map(np.zeros_like, m)
    assert kl_diag_gaussian(m, 0.1, zeros, full) == kl_diag_gaussian(m, 0.1, zeros, 0.3)
    assert kl_diag_gaussian(m, 0.1, zeros, 0.3) > 0


def test_laplace_closed_form_and_numpyro():
    got = kl_diag_laplace({"a": np.array([0.3])}, 0.2, {"a": np.array([0.0])}, 0.5)
    a = 0.3
    assert got == pytest.approx(np.log(0.5 / 0.2) + a / 0.5 + (0.2 / 0.5) * np.exp(-a / 0.2) - 1, rel=1e-14)


def test_jax_path_is_differentiable_and_float64_path_exact():
    m = {"w": jnp.ones((3, 2), jnp.float32)}
    g = jax.grad(lambda s: kl_diag_gaussian(m, s, jax.tree_util.tree_map(jnp.zeros_like, m), 1.0))(
        {"w": jnp.full((3, 2), 0.5, jnp.float32)})
    # d/ds [ln(1/s) + s^2/2] = -1/s + s = -1.5 at s = 0.5
    np.testing.assert_allclose(np.asarray(g["w"]), -1.5, rtol=1e-6)
    m64 = to_float64(m)
    assert m64["w"].dtype == np.float64


def test_bad_inputs():
    m = {"w": np.ones(3)}
    with pytest.raises(ValueError, match="scale_p"):
        kl_diag_gaussian(m, 0.1, m, {"v": np.ones(3)})
    with pytest.raises(ValueError, match="scales must be > 0"):
        kl_diag_gaussian(m, 0.0, m, 1.0)
    with pytest.raises(ValueError, match="not finite"):
        kl_diag_gaussian({"w": np.array([np.nan])}, 0.1, {"w": np.zeros(1)}, 1.0)
