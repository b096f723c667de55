"""How Gaussian posterior training of a built-in CNN draws its kernels (``nets.conv_train_draw``):
flipout where a layer's draws outweigh its outputs, the exact per-example draw otherwise; both train."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genbounds.estimators import nets, snn


@pytest.mark.parametrize(("in_shape", "channels", "conv", "want"), [
    ((8, 8, 1), (32, 64), "matmul", "flipout"),          # the quickstart's CNN: layer 2 has P = 16 < 288 / 4
    ((28, 28, 1), (32, 64), "matmul", "per-example"),    # pbb-fashion-cnn: P = 676 and 576
    ((28, 28, 1), (32, 64), "xla", "flipout"),           # XLA's convolution keeps flipout
    ((5, 5, 4), (2,), "matmul", "per-example"),          # 4 P = 36 = 9 c_in: the boundary takes the exact draw
    ((5, 5, 5), (2,), "matmul", "flipout"),              # 4 P = 36 < 45
    ((6, 6, 1), (4, 8), "matmul", "flipout"),            # layer 1 favours the exact draw, layer 2 flipout
])
def test_rule_picks_the_draw(in_shape, channels, conv, want):
    assert nets.conv_train_draw(in_shape, channels, conv) == want
    net = nets.cnn(in_shape, 3, channels=channels, dense=(8,), conv=conv)
    assert (net.apply_train is not None) == (want == "flipout")


def _draws(fn, *args) -> int:
    jaxpr = jax.make_jaxpr(fn)(*args)
    return sum(int(np.prod(v.aval.shape)) for e in jaxpr.jaxpr.eqns if e.primitive.name == "rng_bit_generator"
               for v in e.outvars[1:])


@pytest.mark.parametrize("channels", [(4, 8), (4,)])
def test_gaussian_training_takes_the_chosen_law(channels):
    """Flipout draws each kernel once per minibatch; the exact law is ``apply_independent`` itself."""
    net = nets.cnn((6, 6, 1), 2, channels=channels, dense=(8,))
    post = snn.init_posterior(net.init(jax.random.PRNGKey(0)), 0.05)
    x, key = jax.random.normal(jax.random.PRNGKey(1), (16, 6, 6, 1)), jax.random.PRNGKey(2)
    fam = snn.get_family("gaussian")
    got = fam.train_logits(net, key, post, x)
    kernels = sum(9 * a * b for a, b in zip((1, *channels[:-1]), channels))
    drawn = _draws(lambda k: fam.train_logits(net, k, post, x), key)
    if nets.conv_train_draw((6, 6, 1), channels) is nets.ConvTrainDraw.FLIPOUT:
        np.testing.assert_array_equal(got, net.apply_train(key, post.mean, snn.posterior_scale(post), x))
        assert drawn < 16 * kernels
    else:
        np.testing.assert_array_equal(got, net.apply_independent(key, post.mean, snn.posterior_scale(post), x))
        assert drawn >= 16 * kernels


@pytest.mark.parametrize("channels", [(4, 8), (4,)])
def test_both_laws_train(channels):
    """A few steps of f_quad on a separable two-class problem lower the training objective either way."""
    net = nets.cnn((6, 6, 1), 2, channels=channels, dense=(8,))
    mean = net.init(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 6, 6, 1))
    y = (x[:, :3].mean(axis=(1, 2, 3)) > x[:, 3:].mean(axis=(1, 2, 3))).astype(jnp.int32)
    st = snn.posterior_step(net, snn.Prior(mean, 0.03), optimizer=optax.adam(0.03), objective_name="quad",
                            n_bound=10**6, p_min=1e-3)
    step = jax.jit(st.step)
    state = st.init(snn.init_posterior(mean, 0.03))
    values, errors = [], []
    for i in range(60):
        state, metrics = step(state, jax.random.PRNGKey(10 + i), x, y)
        values.append(float(metrics.emp_ce))
        errors.append(float(metrics.err))
    assert np.all(np.isfinite(values))
    assert np.mean(values[-10:]) < 0.25 * np.mean(values[:10])      # seen: 0.088 -> 0.0008, 0.082 -> 0.0012
    assert np.mean(errors[-10:]) <= 0.05 < np.mean(errors[:10])      # seen: 0.30 -> 0, 0.31 -> 0
