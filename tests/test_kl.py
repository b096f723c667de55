"""Binary kl and its inverses against an mpmath reference, edge cases, JAX path, gradients."""

import math

import jax
import jax.numpy as jnp
import kl_reference_table as table
import mpmath as mp
import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from genbounds.bounds import kl_bernoulli, kl_inv_lower, kl_inv_upper

GRID = table.GRID


@pytest.fixture(scope="module")
def reference_grid():
    """tests/reference.py's values on GRID, read from the stored table (tests/kl_reference_table.py: about 8 s to
    recompute); test_reference_table_matches_a_live_recomputation checks a random part of it on every run."""
    return table.load()


def test_reference_table_matches_a_live_recomputation(reference_grid):
    """The stored table covers GRID exactly, and 16 random grid points (different on every run) recomputed live
    with mpmath give the stored values to 1e-40 relative (the reference's own precision is about 1e-45)."""
    assert set(reference_grid) == set(GRID) and len(GRID) == len(set(GRID))
    rng = np.random.default_rng()
    picks = [GRID[i] for i in rng.choice(len(GRID), 16, replace=False)]
    for q, c in picks:
        live = table.compute(q, c)
        for got, stored in zip(live, reference_grid[(q, c)], strict=True):
            with mp.workdps(80):
                assert abs(got - stored) <= mp.mpf("1e-40") * abs(stored), (q, c, got, stored)


def test_upper_inverse_never_below_reference_and_within_1e12(reference_grid):
    q, c = np.array(GRID).T
    got = kl_inv_upper(q, c)
    assert got.shape == q.shape and got.dtype == np.float64
    for (qi, ci), p in zip(GRID, got):
        exact = reference_grid[(qi, ci)][0]
        assert mp.mpf(float(p)) >= exact, (qi, ci, p, exact)
        assert mp.mpf(float(p)) - exact <= 1e-12, (qi, ci, p, exact)


def test_lower_inverse_never_above_reference_and_within_1e12(reference_grid):
    q, c = np.array(GRID).T
    got = kl_inv_lower(q, c)
    for (qi, ci), p in zip(GRID, got):
        exact = reference_grid[(qi, ci)][1]
        assert mp.mpf(float(p)) <= exact, (qi, ci, p, exact)
        assert exact - mp.mpf(float(p)) <= 1e-12, (qi, ci, p, exact)


@settings(max_examples=100)
@given(
    q=st.one_of(st.floats(0, 1), st.floats(-300, 0).map(lambda e: 10.0**e),
                st.floats(-15, 0).map(lambda e: 1 - 10.0**e), st.just(5e-324)),
    c=st.one_of(st.floats(0, 1e3), st.floats(-300, 3).map(lambda e: 10.0**e), st.just(5e-324)),
)
def test_property_upper_inverse_sound_and_tight(q, c):
    p = float(kl_inv_upper(q, c))
    exact = ref.kl_inv_upper(q, c)
    assert mp.mpf(p) >= exact
    assert mp.mpf(p) - exact <= 1e-12
    # kl at the returned point exceeds c by at most what the upward margin of a few ulps
    # in p can add: d kl / dp = (p - q) / (p (1 - p)).
    if 0 < p < 1:
        slope = (p - q) / (p * (1 - p))
        assert float(kl_bernoulli(q, p)) <= c + 1e-12 + 1e-9 * c + 64 * 2.2e-16 * p * slope


@settings(max_examples=100)
@given(q=st.floats(0, 1), c=st.one_of(st.floats(0, 50), st.floats(-300, 1).map(lambda e: 10.0**e)))
def test_property_lower_inverse_sound(q, c):
    p = float(kl_inv_lower(q, c))
    exact = ref.kl_inv_lower(q, c)
    assert mp.mpf(p) <= exact
    assert exact - mp.mpf(p) <= 1e-12


def test_edge_cases_closed_forms():
    # q = 0: kl(0||p) = -ln(1-p), so the upper inverse is 1 - e^{-c}.
    for c in [1e-10, 0.1, 1.0, 5.0]:
        assert kl_inv_upper(0.0, c) == pytest.approx(-math.expm1(-c), rel=1e-14)
        # q = 1: kl(1||p) = -ln p, so the lower inverse is e^{-c}.
        assert kl_inv_lower(1.0, c) == pytest.approx(math.exp(-c), rel=1e-14)
    assert kl_inv_upper(0.3, 0.0) == 0.3 and kl_inv_lower(0.3, 0.0) == 0.3
    assert kl_inv_upper(0.3, math.inf) == 1.0 and kl_inv_lower(0.3, math.inf) == 0.0
    assert kl_inv_upper(0.3, 1e300) == 1.0 and kl_inv_lower(0.3, 1e300) == 0.0
    assert kl_inv_upper(1.0, 0.5) == 1.0 and kl_inv_lower(0.0, 0.5) == 0.0


def test_kl_bernoulli_values():
    assert kl_bernoulli(0.5, 0.5) == 0.0
    assert kl_bernoulli(0.0, 0.0) == 0.0 and kl_bernoulli(1.0, 1.0) == 0.0
    assert kl_bernoulli(0.1, 0.0) == math.inf and kl_bernoulli(0.1, 1.0) == math.inf
    assert kl_bernoulli(0.0, 0.5) == pytest.approx(math.log(2), rel=1e-15)
    expected = 0.2 * math.log(0.2 / 0.6) + 0.8 * math.log(0.8 / 0.4)
    assert kl_bernoulli(0.2, 0.6) == pytest.approx(expected, rel=1e-14)
    # Symmetry kl(q||p) = kl(1-q||1-p), and accuracy near p = q against mpmath.
    assert kl_bernoulli(0.3, 0.6) == pytest.approx(kl_bernoulli(0.7, 0.4), rel=1e-14)
    assert float(kl_bernoulli(0.3, 0.3 + 1e-9)) == pytest.approx(float(ref.kl(0.3, 0.3 + 1e-9)), rel=1e-6)


def test_vectorised_shapes_and_broadcasting():
    q = np.linspace(0, 1, 24).reshape(2, 3, 4)
    c = np.array([0.01, 0.1, 1.0, 10.0])
    p = kl_inv_upper(q, c)
    assert p.shape == (2, 3, 4)
    assert np.all(p >= q) and np.all(p <= 1)
    assert p[1, 2, 3] == kl_inv_upper(q[1, 2, 3], c[3])


def test_jax_path_matches_numpy_in_float64_and_jits():
    rng = np.random.default_rng(1)
    q = rng.uniform(0, 1, 1000)
    c = 10.0 ** rng.uniform(-12, 2, 1000)
    expected_up, expected_lo = kl_inv_upper(q, c), kl_inv_lower(q, c)
    with jax.enable_x64(True):
        got_up = jax.jit(kl_inv_upper)(jnp.asarray(q), jnp.asarray(c))
        got_lo = jax.jit(kl_inv_lower)(jnp.asarray(q), jnp.asarray(c))
        assert got_up.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got_up), expected_up, rtol=0, atol=1e-14)
        np.testing.assert_allclose(np.asarray(got_lo), expected_lo, rtol=0, atol=1e-14)


def test_float32_path_is_close():
    p32 = kl_inv_upper(jnp.float32(0.05), jnp.float32(0.02))
    assert p32.dtype == jnp.float32
    assert float(p32) == pytest.approx(float(kl_inv_upper(0.05, 0.02)), rel=1e-5)


#: One compiled gradient per inverse, shared by the parameter cases (eagerly, each case's first call compiles
#: every operation of the Newton iteration).
_GRADS = {fn: jax.jit(jax.grad(fn, argnums=(0, 1))) for fn in (kl_inv_upper, kl_inv_lower)}


@pytest.mark.parametrize("q,c", [(0.03, 0.09), (0.2, 0.5), (0.5, 1e-3), (0.9, 0.01), (0.001, 2.0)])
def test_gradients_match_finite_differences(q, c):
    h = 1e-6
    for fn in (kl_inv_upper, kl_inv_lower):
        with jax.enable_x64(True):
            gq, gc = _GRADS[fn](jnp.float64(q), jnp.float64(c))
        fd_q = (fn(q + h, c) - fn(q - h, c)) / (2 * h)
        fd_c = (fn(q, c + h) - fn(q, c - h)) / (2 * h)
        assert float(gq) == pytest.approx(fd_q, rel=1e-5, abs=1e-8)
        assert float(gc) == pytest.approx(fd_c, rel=1e-5, abs=1e-8)


def test_kl_bernoulli_gradient():
    with jax.enable_x64(True):
        gq, gp = jax.grad(kl_bernoulli, argnums=(0, 1))(jnp.float64(0.2), jnp.float64(0.6))
    assert float(gq) == pytest.approx(math.log(0.2 * 0.4 / (0.6 * 0.8)), rel=1e-12)
    assert float(gp) == pytest.approx((0.6 - 0.2) / (0.6 * 0.4), rel=1e-12)


def test_gradients_are_finite_at_edges():
    g = jax.grad(lambda q: kl_inv_upper(q, 0.1))(jnp.float32(0.0))
    assert np.isfinite(float(g)) and float(g) > 0
    g = jax.grad(lambda c: kl_inv_upper(0.2, c))(jnp.float32(0.0))
    assert np.isfinite(float(g))


@pytest.mark.parametrize(
    "args,name",
    [((1.5, 0.1), "q"), ((-0.1, 0.1), "q"), ((float("nan"), 0.1), "q"), ((0.5, -1.0), "c"),
     ((0.5, float("nan")), "c")],
)
def test_bad_input_names_argument(args, name):
    for fn in (kl_inv_upper, kl_inv_lower):
        with pytest.raises(ValueError, match=f"'{name}'"):
            fn(*args)
    with pytest.raises(ValueError, match="'p'"):
        kl_bernoulli(0.5, 1.2)
