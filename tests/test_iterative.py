"""Bounds for noisy iterative algorithms on the Gaussian location toys, where the trajectory MI and
CMI are known in closed form or by 1-D quadrature (reference sheet iterative-algorithms.md, §5)."""

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genbounds import bounds as B
from genbounds.bounds import iterative
from genbounds.estimators import iterative as I
from genbounds.estimators import steps as L


def _sq_loss(w, xb, yb):
    """Per-example ||w - z||^2 / 2 (the toys' training objective); yb unused."""
    return 0.5 * jnp.sum((w[None, :] - xb) ** 2, axis=1)


def _run(step, w0, keys, x):
    """Full-batch runs vmapped over keys (and data when x has a leading run axis)."""
    in_x = 0 if x.ndim == 3 else None
    return jax.jit(jax.vmap(lambda k, xx: L.run_langevin(step, w0, k, xx, jnp.zeros(xx.shape[0]), T),
                            in_axes=(0, in_x)))(keys, x)         # one compiled program, not one per operation


T, ETA = 200, 0.1


def test_injected_noise_variance_measured_from_the_trajectory():
    """Var(W_t - W_{t-1} + eta_t G_t) = 2 eta_t / beta_t at every step of a staircase schedule."""
    d, n = 4000, 20
    sched = L.staircase_schedule(0.2, 0.5, 3, 1e-2, 1e-4, 1.0, 2)
    step = L.langevin_step(_sq_loss, sched)
    x = jax.random.normal(jax.random.PRNGKey(0), (n, d))
    state = step.init(jnp.zeros(d))
    key = jax.random.PRNGKey(1)
    grad, one_step = jax.jit(jax.grad(lambda w: jnp.mean(_sq_loss(w, x, None)))), jax.jit(step.step)
    for t in range(8):
        w_prev = state.params
        g = grad(w_prev)
        state, m = one_step(state, jax.random.fold_in(key, t), x, jnp.zeros(n))
        nu = np.asarray(state.params - w_prev + m.eta * g, np.float64)
        expected = float(B.langevin_noise_variance(float(m.eta), float(m.beta)))
        # 4000 coordinates: the sample variance is within 5 standard errors (sqrt(2/d) relative)
        assert nu.var() == pytest.approx(expected, rel=5 * np.sqrt(2 / d))
        assert abs(nu.mean()) < 5 * np.sqrt(expected / d)


def test_negrea_leave_one_out_on_the_gaussian_toy():
    """T1: KL sum (the bound's inner term) >= the exact trajectory MI I(W_{0:T}; z_j | S_J) =
    (d/2) ln(1 + s^2 T beta eta / (2 n^2)); its mean matches the closed form
    (beta eta T / (4 n^2)) (d s^2 + ||zbar_{-j} - mu||^2) (n = 50, d = 5, beta = 200: 2.04 >= 1.47)."""
    n, d, beta, k_outer, k_inner = 50, 5, 200.0, 4, 256
    with jax.enable_x64(True):
        def stats(w, grads, noise, xb, yb, eta, beta):
            g = jax.vmap(jax.grad(lambda w1, z: _sq_loss(w1, z[None], None)[0]), in_axes=(None, 0))(w, xb)
            diff = (g[-1] - g[:-1].mean(axis=0)) / xb.shape[0]      # the held-out point is the last
            return jnp.sum(diff**2)

        step = L.langevin_step(_sq_loss, L.constant_schedule(ETA, beta), stats)
        rng = np.random.default_rng(0)
        shared = rng.normal(size=(k_outer, n - 1, d))               # S_J, the conditioning
        heldout = rng.normal(size=(k_outer, k_inner, 1, d))         # z_j: averaged inside
        x = np.concatenate([np.broadcast_to(shared[:, None], (k_outer, k_inner, n - 1, d)), heldout], axis=2)
        keys = jax.random.split(jax.random.PRNGKey(0), k_outer * k_inner)
        _, metrics = _run(step, jnp.zeros(d), keys, jnp.asarray(x.reshape(-1, n, d)))
        sq = np.asarray(metrics.stats).reshape(k_outer, k_inner, T)
    beta_eta = np.full(T, beta * ETA)
    kl = B.gaussian_step_kl(beta_eta, sq.mean(axis=1)).sum(axis=1)
    zbar = shared.mean(axis=1)
    closed = beta * ETA * T / (4 * n**2) * (d + (zbar**2).sum(axis=1))
    np.testing.assert_allclose(kl, closed, rtol=0.12)                 # 256 inner draws: ~6% s.e.
    exact_mi = d / 2 * np.log1p(T * beta * ETA / (2 * n**2))
    assert exact_mi == pytest.approx(1.469, abs=1e-3)
    assert np.all(kl >= exact_mi)
    bound = B.negrea_bound(beta_eta, sq, n_heldout=1)
    # sigma = 1/2: sqrt(2 sigma^2 KL) = sqrt((1/8) sum_t beta eta ||Delta_t||^2), the authors' constant
    np.testing.assert_allclose(bound, np.sqrt(kl / 2))
    np.testing.assert_allclose(bound, np.sqrt((beta_eta * sq.mean(axis=1)).sum(axis=1) / 8))
    assert np.all(bound >= np.sqrt(exact_mi / 2))


def _exact_pair_cmi(k_t: float) -> float:
    """E[ln 2 - ln(1 + e^{-L})], L ~ N(K, 2K): the exact trajectory CMI of toy T2 (quadrature)."""
    x, w = np.polynomial.hermite_e.hermegauss(200)
    ell = k_t + np.sqrt(2 * k_t) * x
    return float(np.sum(w * (np.log(2) - np.logaddexp(0, -ell))) / np.sqrt(2 * np.pi))


def test_haghifam_langevin_cmi_on_the_gaussian_pair_toy():
    """T2 at K_T = 4: exact CMI 0.500 <= Bayes-test bound term (sheet: 0.503) <= theta = 1/2 term
    (K_T / 4 = 1.0); averaging inner runs before the square root gives sqrt(2 * 0.503) = 1.003,
    one run per draw (mean of square roots) about 0.879."""
    n, d = 10, 2
    beta = 20.0                                   # K_T = T beta eta ||xi||^2 / (4 n^2) = 4 with ||xi||^2 = 4
    z1, z2 = np.zeros(d), np.array([2.0, 0.0])
    k_t = T * beta * ETA * 4.0 / (4 * n**2)
    assert k_t == pytest.approx(4.0)
    assert _exact_pair_cmi(4.0) == pytest.approx(0.500, abs=2e-3)
    runs = 4000
    with jax.enable_x64(True):
        def stats(w, grads, noise, xb, yb, eta, beta):
            # xb[-1] is the trained member; yb[0] carries which (0: z1, 1: z2); the other is known.
            other = jnp.where(yb[0] == 0, jnp.asarray(z2), jnp.asarray(z1))
            xi = (w - other) - (w - xb[-1])                          # grad l(w, other) - grad l(w, true)
            return jnp.sum(xi**2), jnp.vdot(noise, xi)

        step = L.langevin_step(_sq_loss, L.constant_schedule(ETA, beta), stats)
        shared = np.random.default_rng(0).normal(size=(n - 1, d))
        u = np.arange(runs) % 2                                      # antithetic: both values of U_J
        x = np.stack([np.concatenate([shared, (z2 if ui else z1)[None]]) for ui in u])
        y = np.broadcast_to(u[:, None], (runs, n)).astype(np.float64)
        keys = jax.random.split(jax.random.PRNGKey(3), runs)
        _, metrics = jax.jit(jax.vmap(lambda k, xx, yy: L.run_langevin(step, jnp.zeros(d), k, xx, yy, T)))(
            keys, jnp.asarray(x), jnp.asarray(y))
        xi_sq, dot = (np.asarray(a) for a in metrics.stats)
    llr = B.hypothesis_llr(beta, ETA, n, xi_sq, dot)
    theta = B.wrong_member_weight(llr)
    beta_eta = np.full(T, beta * ETA)
    inner = B.gaussian_step_kl(beta_eta, theta**2 * xi_sq).sum(axis=1) / n**2
    assert inner.mean() == pytest.approx(0.503, abs=0.02)
    assert inner.mean() >= _exact_pair_cmi(4.0) - 0.01
    half = B.gaussian_step_kl(beta_eta, 0.25 * xi_sq).sum(axis=1) / n**2
    np.testing.assert_allclose(half, k_t / 4)
    one_outer = B.haghifam_ld_bound(beta_eta, theta[None], xi_sq[None], n)
    assert one_outer[0] == pytest.approx(np.sqrt(2 * inner.mean()))
    assert one_outer[0] == pytest.approx(1.003, abs=0.02)
    per_run = B.haghifam_ld_bound(beta_eta, theta[:, None], xi_sq[:, None], n)
    assert per_run.mean() == pytest.approx(0.879, abs=0.03) and per_run.mean() < one_outer[0] - 0.08


def test_neu_sgd_mi_step_on_the_gaussian_toy():
    """T3: I(W~_T; S) = (d/2) ln(1 + (1 - a')^2 s^2 / (n sigma_{1:T}^2)) <= the Theorem-5 sum
    sum_t (2 eta^2 / sigma^2)(d (t - 1) sigma^2 + d s^2 / n) (n = 100, d = 10, eta = .1, T = 50,
    sigma = .05: 0.39 <= 285); the quadratic loss has zero value-sensitivity term."""
    n, d, eta, t_steps, sigma = 100, 10, 0.1, 50, 0.05
    t = np.arange(1, t_steps + 1)
    gamma = d * (t - 1) * sigma**2
    v = np.full(t_steps, d * 1.0 / n)
    theorem5 = float(np.sum(2 * eta**2 / sigma**2 * (gamma + v)))
    assert theorem5 == pytest.approx(285.0, abs=1.0)
    a = (1 - eta) ** (t_steps - 1)
    exact = d / 2 * np.log1p((1 - a) ** 2 / (n * (t_steps - 1) * sigma**2))
    assert exact == pytest.approx(0.39, abs=0.01) and exact <= theorem5
    # Theorem 1 with R = 1/2 is sqrt(2 R^2 / n * (Theorem-5 sum)) = sqrt((4 R^2 / n) sum eta^2/sigma^2 (G + V)).
    assert B.neu_sgd_bound(np.full(t_steps, eta), np.full(t_steps, sigma), gamma, v, n) == \
        pytest.approx(np.sqrt(2 * 0.25 / n * theorem5))


def test_bounds_refuse_malformed_statistics():
    with pytest.raises(ValueError, match="k_outer, k_inner, T"):
        B.negrea_bound(np.ones(3), np.ones((2, 3)), 1)
    with pytest.raises(ValueError, match="'beta_eta'"):
        B.negrea_bound(np.ones(4), np.ones((1, 2, 3)), 1)
    with pytest.raises(ValueError, match="'theta'"):
        B.haghifam_ld_bound(np.ones(3), np.full((1, 1, 3), 1.5), np.ones((1, 1, 3)), 10)
    with pytest.raises(ValueError, match="'forecast_error_sq'"):
        B.negrea_bound(np.ones(3), np.full((1, 1, 3), np.nan), 1)
    with pytest.raises(ValueError, match="'beta'"):
        B.langevin_noise_variance(0.1, 0.0)
    # Monotone in beta at fixed statistics, zero at zero information.
    sq = np.ones((1, 2, 3))
    assert B.negrea_bound(np.full(3, 2.0), sq, 1)[0] > B.negrea_bound(np.full(3, 1.0), sq, 1)[0]
    assert B.negrea_bound(np.full(3, 1.0), np.zeros((1, 2, 3)), 1)[0] == 0.0


@pytest.mark.integration
def test_langevin_experiment_records_bounds_at_every_checkpoint_and_resumes(tmp_path, capsys):
    from genbounds.cli import main
    from genbounds.experiments.langevin_runner import LangevinConfig, run_langevin_experiment
    from genbounds.experiments.records import load_record

    cfg = LangevinConfig(dataset="digits", widths=(16,), n=60, n_test=100, steps=20, every=10, k1=2, k2=4,
                         eta0=0.1, v0=1e-3, v_inf=1e-4)
    rec = run_langevin_experiment(cfg, tmp_path, progress=False, log=lambda m: None)
    assert [r["step"] for r in rec["results"]] == [10, 20]
    for r in rec["results"]:
        assert set(r["bounds"]) == {"haghifam_ld", "negrea_loo"}
        for name, b in r["bounds"].items():
            pooled = name == "negrea_loo"             # its conditioning is coarser than a draw: pooled, no per-draw
            assert b["kind"] == "estimate" and b["pooled"] is pooled and b["value"] > 0
            assert len(b["per_draw"]) == (0 if pooled else 2)
            assert b["interval"][0] <= b["value"] <= b["interval"][1]
    # Bounds use the statistics up to each checkpoint: non-decreasing in the step.
    for name in ("haghifam_ld", "negrea_loo"):
        assert rec["results"][1]["bounds"][name]["value"] >= rec["results"][0]["bounds"][name]["value"]
    assert load_record(tmp_path / "record.json")["kind"] == "langevin"
    again = run_langevin_experiment(cfg, tmp_path, progress=False, log=lambda m: None)   # resumes from the draws
    assert again["results"] == rec["results"]
    assert main(["langevin", "--dataset", "digits", "--k2", "3", "--out", str(tmp_path)]) == 2
    assert "'k2'" in capsys.readouterr().err


@pytest.mark.integration
def test_minibatch_forecast_error_is_incoherence_over_n_b(tmp_path):
    """E_B ||G - Xi||^2 = ||g_j - gbar_{-j}||^2 / (n b) for a batch of b drawn without replacement,
    Xi replacing the held-out j's gradient by the mean of the others (what pair_population records
    for SGLD), checked by Monte Carlo over batches; and the SGLD experiment records only the bound
    that applies to mini-batches."""
    rng = np.random.default_rng(0)
    n, b, d = 30, 7, 5
    g = rng.normal(size=(n, d))
    j = n - 1
    gbar = g[:j].mean(axis=0)
    draws = []
    for _ in range(40000):
        batch = rng.choice(n, b, replace=False)
        xi = np.where((batch == j)[:, None], gbar, g[batch])
        draws.append(np.sum((g[batch].mean(axis=0) - xi.mean(axis=0)) ** 2))
    assert np.mean(draws) == pytest.approx(np.sum((g[j] - gbar) ** 2) / (n * b), rel=0.03)

    from genbounds.experiments.langevin_runner import LangevinConfig, run_langevin_experiment
    cfg = LangevinConfig(dataset="digits", widths=(8,), n=40, n_test=50, steps=10, every=5, k1=1, k2=2, v0=1e-3,
                         v_inf=1e-4, batch=10)
    rec = run_langevin_experiment(cfg, tmp_path, progress=False, log=lambda m: None)
    assert all(set(r["bounds"]) == {"negrea_loo"} for r in rec["results"])
    with pytest.raises(ValueError, match="'batch'"):
        LangevinConfig(n=40, batch=41)


def test_sgd_statistics_on_the_quadratic_toy():
    """T3 through sgd_population: with loss ||w - z||^2 / 2 the held-out gradient is linear in w,
    so Gamma_t = E||xi||^2 = d t sigma^2 (sigma_{1:t} counts the previous steps only; Gamma_0 = 0);
    V_t = ||zbar_B - zbar_H||^2 has mean d s_S^2 (n - b) / (b (n - 1)) + ||zbar_S - zbar_H||^2 given
    the data; Delta = -d T sigma^2 / 2 on any set for this quadratic evaluated loss (its sensitivity
    term is 0 in expectation)."""
    d, n, b, steps, runs = 6, 40, 8, 12, 64
    sigmas = (0.05, 0.2)
    rng = np.random.default_rng(0)
    train = rng.normal(size=(n, d)).astype(np.float32)
    held = rng.normal(size=(2000, d)).astype(np.float32)
    test = rng.normal(size=(500, d)).astype(np.float32)
    zeros = np.zeros

    def quad(w, x, y):
        return 0.5 * jnp.sum((w[None] - x) ** 2, axis=1)

    population = jax.jit(lambda keys: I.sgd_population(      # one compiled program, not one per operation
        lambda k: jnp.zeros(d), quad, quad, (train, zeros(n)), (held, zeros(2000)), (test, zeros(500)), keys,
        eta=lambda t: 0.1, sigmas=sigmas, steps=steps, batch=b, mc=16))
    st = population(jax.random.split(jax.random.PRNGKey(0), runs))
    sens = np.asarray(st.sensitivity).mean(axis=0)                    # [T, G]
    t = np.arange(steps)[:, None]
    expected = d * t * np.asarray(sigmas)[None] ** 2
    assert np.all(sens[0] == 0)
    np.testing.assert_allclose(sens[1:], expected[1:], rtol=0.1)
    v_expected = d * train.var(axis=0, ddof=1).mean() * (n - b) / (b * (n - 1)) + \
        np.sum((train.mean(axis=0) - held.mean(axis=0)) ** 2)
    assert np.asarray(st.variance).mean() == pytest.approx(v_expected, rel=0.1)
    for g, s in enumerate(sigmas):
        for vals in (st.value_train, st.value_test):
            assert np.asarray(vals)[:, g].mean() == pytest.approx(-d * steps * s**2 / 2, rel=0.1)
    bound = B.neu_sgd_bound(np.full(steps, 0.1), np.full(steps, sigmas[1]), sens[:, 1],
                            np.asarray(st.variance).mean(axis=0), n)
    assert bound > 0


@pytest.mark.integration
def test_sgd_experiment_records_neu_bound_per_sigma(tmp_path):
    from genbounds.experiments.langevin_runner import LangevinConfig, run_langevin_experiment

    cfg = LangevinConfig(dataset="digits", widths=(8,), n=40, n_test=50, steps=6, every=6, k1=2, k2=2, batch=10,
                         algorithm="sgd", sigmas=(0.01, 0.1), n_heldout=60, mc=2)
    rec = run_langevin_experiment(cfg, tmp_path, progress=False, log=lambda m: None)
    (row,) = rec["results"]
    assert row["step"] == 6 and set(row["bounds"]) == {"neu_sgd_sigma0.01", "neu_sgd_sigma0.1"}
    for b in row["bounds"].values():
        assert b["kind"] == "estimate" and b["value"] > 0 and b["interval"][0] <= b["value"] <= b["interval"][1]
        assert len(b["per_draw_information"]) == 2 and len(b["per_draw_value_gap"]) == 2
        # The value is the theorem at the statistics pooled over draws, not a mean of per-draw roots.
        info, gaps = np.asarray(b["per_draw_information"]), np.asarray(b["per_draw_value_gap"])
        assert b["value"] == pytest.approx(np.sqrt(4 * 0.25 / cfg.n * info.mean()) + abs(gaps.mean()), rel=1e-9)
    with pytest.raises(ValueError, match="'batch'"):
        LangevinConfig(algorithm="sgd", batch=0)


# One validation rule for the module: every argument of every public function is checked the same
# way (finite; statistics >= 0; step sizes, temperatures, scales and the subGaussian constant > 0;
# sample sizes whole numbers >= 1), naming the argument.
_NAN, _INF = math.nan, math.inf
_VALID = {
    "langevin_noise_variance": dict(eta=0.1, beta=2.0),
    "gaussian_step_kl": dict(beta_eta=np.ones(3), drift_sq=np.ones(3)),
    "negrea_bound": dict(beta_eta=np.ones(3), forecast_error_sq=np.ones((1, 2, 3)), n_heldout=1, subgaussian=0.5),
    "haghifam_ld_bound": dict(beta_eta=np.ones(3), theta=np.full((1, 2, 3), 0.5), two_sample_sq=np.ones((1, 2, 3)),
                              n=10),
    "hypothesis_llr": dict(beta=2.0, eta=0.1, n=10, xi_other_true=np.ones(3), noise_dot=np.zeros(3)),
    "wrong_member_weight": dict(llr=np.zeros((2, 3))),
    "neu_information": dict(eta=np.full(3, 0.1), sigma=np.full(3, 0.05), sensitivity=np.ones((2, 3)),
                            variance=np.ones(3)),
    "neu_sgd_bound": dict(eta=np.full(3, 0.1), sigma=np.full(3, 0.05), sensitivity=np.ones(3), variance=np.ones(3),
                          n=10, subgaussian=0.5, value_sensitivity_gap=0.0),
}
_POSITIVE = (_NAN, _INF, 0.0, -1.0)
_STATISTIC = (_NAN, _INF, -1.0)
_SIGNED = (_NAN, _INF, -_INF)
_COUNT = (_NAN, _INF, 0, -1, 1.5)
_BAD = {"eta": _POSITIVE, "beta": _POSITIVE, "beta_eta": _POSITIVE, "sigma": _POSITIVE, "subgaussian": _POSITIVE,
        "drift_sq": _STATISTIC, "forecast_error_sq": _STATISTIC, "two_sample_sq": _STATISTIC,
        "xi_other_true": _STATISTIC, "sensitivity": _STATISTIC, "variance": _STATISTIC,
        "theta": (_NAN, -0.1, 1.5), "noise_dot": _SIGNED, "llr": _SIGNED, "value_sensitivity_gap": _SIGNED,
        "n": _COUNT, "n_heldout": _COUNT}


def _with(value, bad):
    """``value`` with its first entry replaced by ``bad`` (a scalar replaced whole)."""
    if np.ndim(value) == 0:
        return bad
    out = np.array(value, dtype=np.float64)
    out.flat[0] = bad
    return out


def test_every_public_function_and_argument_is_in_the_validation_table():
    assert set(_VALID) == set(iterative.__all__)
    for name, kwargs in _VALID.items():
        fn = getattr(iterative, name)
        assert set(kwargs) == set(inspect.signature(fn).parameters), name
        assert np.all(np.isfinite(fn(**kwargs))), name


@pytest.mark.parametrize("fn, arg, bad", [(fn, arg, bad) for fn, kw in _VALID.items() for arg in kw
                                          for bad in _BAD[arg]])
def test_every_function_refuses_bad_input_naming_the_argument(fn, arg, bad):
    """NaN, infinite, negative statistics, n <= 0 or fractional, and a subGaussian constant <= 0 (which
    would silently drop the information term) give one ValueError naming the argument."""
    kwargs = dict(_VALID[fn], **{arg: _with(_VALID[fn][arg], bad)})
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=f"'{arg}'"):
        getattr(iterative, fn)(**kwargs)


def _sgd_draw(k2, steps, variance, value_gap):
    """One outer draw of an SGD population (the arrays sgd_population records), one sigma."""
    return {"variance": np.full((k2, steps), variance), "sensitivity": np.zeros((k2, steps, 1)),
            "value_train": np.zeros((k2, 1)), "value_test": np.full((k2, 1), value_gap),
            "train_error": np.zeros(k2), "test_error": np.zeros(k2)}


def test_neu_bound_pools_the_draws_before_the_square_root():
    """Neu et al. (2021), Theorem 1: the expectation over the training set (and SGD's randomness)
    sits inside the square root, and |E[Delta(W, S') - Delta(W, S)]| takes the expectation before
    the absolute value. Two draws, one with information sum I and one with none: the reported bound
    is sqrt(4 R^2 / n * I / 2) = 0.3062, not the mean of per-draw roots (1/sqrt(2) of it, 0.2165);
    value gaps +0.05 and -0.05 pool to 0, not 0.05."""
    from genbounds.experiments.langevin_runner import LangevinConfig, _sgd_bounds

    steps, n = 30, 40
    cfg = LangevinConfig(dataset="digits", n=n, n_test=50, steps=steps, every=steps, k1=2, k2=2, batch=10,
                         algorithm="sgd", sigmas=(0.1,), n_heldout=60, mc=2)
    eta = cfg.step_size(np.arange(steps))
    info = float(np.sum(eta**2 / 0.1**2 * 1.0))                     # draw 0: V_t = 1, Gamma_t = 0
    assert info == pytest.approx(7.5)
    pooled = np.sqrt(4 * 0.25 / n * info / 2)
    assert pooled == pytest.approx(0.30619, abs=1e-5)
    (row,) = _sgd_bounds(cfg, [_sgd_draw(2, steps, 1.0, 0.0), _sgd_draw(2, steps, 0.0, 0.0)])
    b = row["bounds"]["neu_sgd_sigma0.1"]
    assert b["value"] == pytest.approx(pooled, rel=1e-12)
    assert b["value"] == pytest.approx(np.sqrt(2) * np.mean([np.sqrt(4 * 0.25 / n * info), 0.0]), rel=1e-12)
    assert b["per_draw_information"] == pytest.approx([info, 0.0])
    assert b["interval"][0] <= b["value"] <= b["interval"][1]
    (row,) = _sgd_bounds(cfg, [_sgd_draw(2, steps, 0.0, 0.05), _sgd_draw(2, steps, 0.0, -0.05)])
    assert row["bounds"]["neu_sgd_sigma0.1"]["value"] == pytest.approx(0.0, abs=1e-12)
    # The bound function itself pools leading (draw, run) axes the same way.
    stats = np.stack([np.ones((2, steps)), np.zeros((2, steps))])          # [draws, runs, T]
    assert B.neu_sgd_bound(eta, np.full(steps, 0.1), np.zeros_like(stats), stats, n) == pytest.approx(pooled)
    assert B.neu_sgd_bound(eta, np.full(steps, 0.1), np.zeros(steps), np.zeros(steps), n,
                           value_sensitivity_gap=np.array([[0.05, 0.05], [-0.05, -0.05]])) == 0.0
    with pytest.raises(ValueError, match="'variance'"):
        B.neu_sgd_bound(eta, np.full(steps, 0.1), np.zeros(steps), np.zeros(steps + 1), n)
    with pytest.raises(ValueError, match="'sigma'"):
        B.neu_sgd_bound(eta, np.full(steps - 1, 0.1), np.zeros(steps), np.zeros(steps), n)
