"""The CNN's per-example kernel draws: standard normal, exact in distribution (each example its own kernel,
shared by its positions), and drawn from XLA's bit generator rather than JAX's slower Threefry lowering."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import jaxprs_in_params
from scipy import stats

from genbounds.estimators import nets, snn


def test_standard_normal_moments_and_distribution():
    draw = jax.jit(nets.standard_normal, static_argnums=1)      # one program for the three draws
    z = np.asarray(draw(jax.random.PRNGKey(0), (400_000,)), np.float64)
    assert z.dtype == np.float64 and np.all(np.isfinite(z))
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 4 * np.sqrt(2 / n)
    assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n) and abs(stats.kurtosis(z)) < 4 * np.sqrt(24 / n)
    assert stats.kstest(z[:100_000], "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / np.sqrt(n)       # neighbours uncorrelated
    other = np.asarray(draw(jax.random.PRNGKey(1), (400_000,)))
    assert abs(np.corrcoef(z, other)[0, 1]) < 4 / np.sqrt(n)              # keys give independent streams
    again = np.asarray(draw(jax.random.PRNGKey(0), (400_000,)))
    assert np.array_equal(z, again)                                       # a function of the key


def test_standard_normal_float64_and_jit():
    with jax.enable_x64(True):
        z = jax.jit(lambda k: nets.standard_normal(k, (200_000,), jnp.float64))(jax.random.PRNGKey(2))
        assert z.dtype == jnp.float64
        z = np.asarray(z)
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.var() - 1.0) < 4 * np.sqrt(2 / z.size)
    assert len(np.unique(z)) == z.size                                    # 52-bit grid, not float32's


def test_per_example_kernel_draws_are_exact():
    """Many examples with the same input: every output is Gaussian with mean x.M + m and, within one example,
    covariance sum_k x_pk x_qk s_k^2 (+ s_b^2) between positions p and q (one kernel per example, shared by its
    positions; a per-position draw would make that covariance zero); different examples are independent."""
    kh, km = jax.random.split(jax.random.PRNGKey(5))
    x1 = jax.random.normal(kh, (1, 4, 4, 2))
    m = {"w": jax.random.normal(km, (3, 3, 2, 1)), "b": jnp.array([0.5])}
    s = {"w": jnp.full((3, 3, 2, 1), 0.4), "b": jnp.array([0.3])}
    n = 40_000
    out = np.asarray(jax.jit(nets._conv_per_example)(jax.random.PRNGKey(6), jnp.broadcast_to(x1, (n, 4, 4, 2)), m, s),
                     np.float64).reshape(n, 4)                          # 2 x 2 positions, 1 channel
    patches = np.stack([np.asarray(x1[0, i:i + 3, j:j + 3, :]).ravel() for i in range(2) for j in range(2)])
    mean = patches @ np.asarray(m["w"]).ravel() + 0.5
    cov = (patches * 0.4 ** 2) @ patches.T + 0.3 ** 2
    np.testing.assert_allclose(out.mean(0), mean, atol=4 * np.sqrt(cov.diagonal().max() / n))
    emp = np.cov(out.T)
    np.testing.assert_allclose(emp, cov, atol=5 * np.sqrt(2 / n) * cov.diagonal().max())
    lagged = np.corrcoef(out[:-1, 0], out[1:, 0])[0, 1]                 # example i against example i + 1
    assert abs(lagged) < 4 / np.sqrt(n)


@pytest.mark.parametrize("batch", [64])
def test_cnn_kernel_draws_use_xla_bit_generator(batch):
    """The quickstart CNN's per-example pass draws its kernels (batch x 18,720 numbers) through
    ``lax.rng_bit_generator``; JAX's Threefry is left only the seeds and the dense layers' noise (batch x 138)."""
    net = nets.cnn((8, 8, 1), 10)
    mean = scale = jax.eval_shape(net.init, jax.random.PRNGKey(0))    # tracing needs shapes only
    jaxpr = jax.make_jaxpr(net.apply_independent)(jax.random.PRNGKey(1), mean, scale, jnp.zeros((batch, 8, 8, 1)))

    def drawn(eqns, name):
        total = 0
        for e in eqns:
            if e.primitive.name == name:
                total += sum(int(np.prod(v.aval.shape)) for v in e.outvars)
            for sub in jaxprs_in_params(e.params):
                total += drawn(sub.eqns, name)
        return total

    threefry = drawn(jaxpr.jaxpr.eqns, "threefry2x32")
    generator = drawn(jaxpr.jaxpr.eqns, "rng_bit_generator")
    assert generator >= batch * (3 * 3 * 32 * 64 + 3 * 3 * 32)
    assert threefry <= batch * 2 * (128 + 10) + 1000


def test_flipout_convolution_has_the_posterior_marginal():
    """Training's convolution (flipout: one kernel perturbation per minibatch, its signs flipped per example
    on input and output channels): each example's kernel is exactly N(M, S^2), so one example's outputs over
    many draws have the exact mean and within-example covariance of the per-example draw above."""
    kh, km = jax.random.split(jax.random.PRNGKey(5))
    x1 = jax.random.normal(kh, (1, 4, 4, 2))
    m = {"w": jax.random.normal(km, (3, 3, 2, 1)), "b": jnp.array([0.5])}
    s = {"w": jnp.full((3, 3, 2, 1), 0.4), "b": jnp.array([0.3])}
    n = 40_000
    batch = jnp.broadcast_to(x1, (3, 4, 4, 2))           # example 0 of a minibatch of 3, over n minibatch draws
    out = jax.jit(jax.vmap(lambda k: nets._conv_flipout(nets.CONVS["matmul"], k, batch, m, s)[0]))(
        jax.random.split(jax.random.PRNGKey(6), n))
    out = np.asarray(out, np.float64).reshape(n, 4)
    patches = np.stack([np.asarray(x1[0, i:i + 3, j:j + 3, :]).ravel() for i in range(2) for j in range(2)])
    mean = patches @ np.asarray(m["w"]).ravel() + 0.5
    cov = (patches * 0.4 ** 2) @ patches.T + 0.3 ** 2
    np.testing.assert_allclose(out.mean(0), mean, atol=4 * np.sqrt(cov.diagonal().max() / n))
    np.testing.assert_allclose(np.cov(out.T), cov, atol=5 * np.sqrt(2 / n) * cov.diagonal().max())


def test_gaussian_training_uses_flipout_for_the_cnn_only():
    """The Gaussian family's training logits are the CNN's flipout pass and the MLP's per-example pass; its
    certificate logits are the per-example pass for both. Compared as traced programs (the same program gives
    the same numbers to the bit), which compiles nothing."""
    x = jax.ShapeDtypeStruct((6, 8, 8, 1), jnp.float32)
    key = jax.random.PRNGKey(1)
    fam = snn.get_family("gaussian")

    def program(f, net, post):
        return str(jax.make_jaxpr(lambda k, p, x: f(net, k, p, x))(key, post, x))

    def direct(name):
        return lambda net, k, p, x: getattr(net, name)(k, p.mean, snn.posterior_scale(p), x)

    for net, train in ((nets.cnn((8, 8, 1), 10), "apply_train"), (nets.mlp((8, 8, 1), (16,), 10), "apply_independent")):
        post = jax.eval_shape(lambda k, net=net: snn.init_posterior(net.init(k), 0.05), jax.random.PRNGKey(2))
        assert program(fam.train_logits, net, post) == program(direct(train), net, post)
        assert program(fam.independent_logits, net, post) == program(direct("apply_independent"), net, post)
    cnn = nets.cnn((8, 8, 1), 10)
    post = jax.eval_shape(lambda k: snn.init_posterior(cnn.init(k), 0.05), jax.random.PRNGKey(2))
    assert program(direct("apply_train"), cnn, post) != program(direct("apply_independent"), cnn, post)


def test_cnn_training_draws_one_kernel_per_minibatch():
    net = nets.cnn((8, 8, 1), 10)
    mean = scale = jax.eval_shape(net.init, jax.random.PRNGKey(0))    # tracing needs shapes only
    batch = 64
    jaxpr = jax.make_jaxpr(net.apply_train)(jax.random.PRNGKey(1), mean, scale, jnp.zeros((batch, 8, 8, 1)))
    drawn = sum(int(np.prod(v.aval.shape)) for e in jaxpr.jaxpr.eqns if e.primitive.name == "rng_bit_generator"
                for v in e.outvars[1:])
    assert drawn <= 3 * 3 * 32 * 64 + 3 * 3 * 32 + batch * (32 + 64)         # kernels once, biases per example
