"""Network implementations: the matmul convolution computes the XLA convolution, and a CNN
population trains the same models whichever way the runs are batched."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genbounds.estimators import nets
from genbounds.estimators import supersample as S
from genbounds.estimators.data import Dataset


@pytest.mark.parametrize("shape", [(3, 9, 8, 2, 5), (1, 5, 5, 1, 3), (4, 28, 28, 1, 32)])
def test_matmul_convolution_equals_xla_convolution(shape):
    n, h, w, c_in, c_out = shape
    kx, kw, kb = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (n, h, w, c_in))
    p = {"w": jax.random.normal(kw, (3, 3, c_in, c_out)), "b": jax.random.normal(kb, (c_out,))}

    def value_and_grad(conv):           # one compiled program per convolution: its output and a gradient
        return jax.jit(lambda x, p: (conv(x, p), jax.grad(lambda x, p: jnp.sum(jnp.sin(conv(x, p))),
                                                         argnums=(0, 1))(x, p)))
    (a, ga), (b, gb) = value_and_grad(nets.CONVS["xla"])(x, p), value_and_grad(nets.CONVS["matmul"])(x, p)
    assert a.shape == b.shape == (n, h - 2, w - 2, c_out)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for u, v in zip(jax.tree_util.tree_leaves(ga), jax.tree_util.tree_leaves(gb)):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-4)


def test_cnn_convolution_choice():
    kw = dict(channels=(4, 4), dense=(8,))
    a, b = nets.cnn((10, 10, 1), 3, conv="xla", **kw), nets.cnn((10, 10, 1), 3, conv="matmul", **kw)
    assert b.name == a.name + "-matmul"
    assert nets.cnn((10, 10, 1), 3, **kw).name == b.name      # the default on CPU: nets.conv_for_backend()
    rng = np.random.default_rng(0)        # random weights of the init's shapes (compiling the init is no part of it)
    params = jax.tree_util.tree_map(lambda t: jnp.asarray(0.3 * rng.normal(size=t.shape), t.dtype),
                                    jax.eval_shape(a.init, jax.random.PRNGKey(0)))
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 10, 10, 1))
    np.testing.assert_allclose(jax.jit(a.apply)(params, x), jax.jit(b.apply)(params, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="'conv'"):
        nets.cnn((10, 10, 1), 3, conv="fft")


@pytest.mark.integration
def test_cnn_population_mapped_equals_vmapped_and_fits():
    """``TrainConfig.map_batch`` changes how runs are batched, not what each run computes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8, 8, 1)).astype(np.float32)
    y = (x[:, 2:6, 2:6, 0].mean(axis=(1, 2)) > 0).astype(np.int32)
    sup = S.draw_supersample(jax.random.PRNGKey(0), Dataset(x, y, 2, "t"), 24)
    px, py, idx = S.supersample_runs(sup, S.draw_masks(jax.random.PRNGKey(1), 4, 24))
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    net = nets.cnn((8, 8, 1), 2, channels=(4, 4), dense=(8,), conv="matmul")
    cfg = S.TrainConfig(epochs=60, batch_size=12, optimizer=optax.adam(1e-2))
    vmapped = S.train_population(net, keys, px, py, idx, cfg, progress=False)
    mapped = S.train_population(net, keys, px, py, idx, cfg._replace(map_batch=1), progress=False)
    assert vmapped.shape == (4, 48)
    assert (mapped == vmapped).mean() >= 0.99, (mapped != vmapped).sum()
    train_acc = np.take_along_axis(mapped == py[None], idx, axis=1).mean()
    assert train_acc == 1.0


def test_per_example_convolution_draws_one_kernel_per_example():
    """Each example goes through its own kernel w_i = mean + scale * eps_i (the same draws an
    explicit loop of XLA convolutions gets)."""
    kh, km, ks, kd = jax.random.split(jax.random.PRNGKey(3), 4)
    h = jax.random.normal(kh, (5, 7, 6, 2))
    m = {"w": jax.random.normal(km, (3, 3, 2, 4)), "b": jnp.arange(4.0)}
    s = {"w": 0.5 * jnp.abs(jax.random.normal(ks, (3, 3, 2, 4))), "b": jnp.full((4,), 0.3)}
    per_example = jax.jit(nets._conv_per_example)
    out = per_example(kd, h, m, s)

    @jax.jit
    def kernels(kd):
        kw, kb = jax.random.split(kd)
        return m["w"] + s["w"] * nets.standard_normal(kw, (5, 3, 3, 2, 4)), \
            m["b"] + s["b"] * nets.standard_normal(kb, (5, 4))

    w, b = kernels(kd)
    xla = jax.jit(nets.CONVS["xla"])
    for i in range(5):
        expect = xla(h[i:i + 1], {"w": w[i], "b": b[i]})[0]
        np.testing.assert_allclose(out[i], expect, rtol=1e-5, atol=1e-5)
    same = per_example(kd, jnp.broadcast_to(h[:1], h.shape), m, s)
    assert float(jnp.abs(same[0] - same[1]).max()) > 0.1          # same input, different draws
