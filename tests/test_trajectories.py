"""Bounds from trajectory statistics (estimators.iterative): the arrays a population records go in,
typed estimates come out, each the bound of bounds.iterative at the statistics up to its step, with
the expectations where the theorems put them."""

import dataclasses

import numpy as np
import pytest

from genbounds import bounds as B
from genbounds.estimators.iterative import (
    Checkpoint,
    IterativeBound,
    IterativeResult,
    SGDBound,
    bounds_from_trajectories,
    sgd_bounds_from_trajectories,
)
from genbounds.estimators.supersample import bootstrap_interval
from genbounds.experiments.cmi_results import checkpoint

K1, K2, T, C, N = 3, 4, 6, 2, 50


def _pair_stats(seed=0):
    """Random PairStats-shaped arrays stacked over K1 draws (float32, as the population records them)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return dict(xi_sq=rng.gamma(2.0, 0.5, (K1, K2, T)).astype(f32),
                noise_dot=rng.normal(0, 0.1, (K1, K2, T)).astype(f32),
                loo_sq=rng.gamma(2.0, 0.01, (K1, K2, T)).astype(f32),
                eta=np.full(T, 0.05, f32), beta=np.linspace(100, 400, T).astype(f32),
                train_error=rng.uniform(0, 0.3, (K1, K2, C)).astype(f32),
                test_error=rng.uniform(0.2, 0.5, (K1, K2, C)).astype(f32))


def test_langevin_bounds_are_the_theorems_at_each_checkpoint():
    st = _pair_stats()
    res = bounds_from_trajectories(**st, n=N)
    assert isinstance(res, IterativeResult) and len(res) == C
    eta, beta = st["eta"].astype(np.float64), st["beta"].astype(np.float64)
    xi = st["xi_sq"].astype(np.float64)
    theta = B.wrong_member_weight(B.hypothesis_llr(beta, eta, N, xi, st["noise_dot"].astype(np.float64)))
    for c, cp in enumerate(res.checkpoints):
        s = (c + 1) * (T // C)
        assert isinstance(cp, Checkpoint) and cp.step == s
        assert cp.eta == pytest.approx(0.05) and cp.beta == float(beta[s - 1])
        loo = st["loo_sq"][..., :s].astype(np.float64)
        per_draw_negrea = B.negrea_bound(eta[:s] * beta[:s], loo, n_heldout=1)
        pooled = B.negrea_bound(eta[:s] * beta[:s], loo.reshape(1, K1 * K2, s), n_heldout=1)[0]
        haghifam = B.haghifam_ld_bound(eta[:s] * beta[:s], theta[..., :s], xi[..., :s], N)
        assert list(cp.bounds) == ["haghifam_ld", "negrea_loo"]
        b = cp["haghifam_ld"]
        assert isinstance(b, IterativeBound) and b.kind == "estimate" and b.target == "gap" and not b.pooled
        assert b.per_draw == tuple(haghifam)                     # E_C sqrt(E^C[...]): one root per draw
        assert b.value == haghifam.mean() and b.interval == bootstrap_interval(haghifam)
        assert b.vacuous == (b.value >= 1.0)
        # Negrea's conditioning is the shared points alone: every run of every draw pooled inside the root,
        # never below the mean of per-draw roots (Jensen)
        b = cp["negrea_loo"]
        assert isinstance(b, IterativeBound) and b.kind == "estimate" and b.target == "gap" and b.pooled
        assert b.per_draw == () and b.value == pytest.approx(pooled, rel=1e-15)
        assert b.value >= per_draw_negrea.mean() and b.interval[0] <= b.value <= b.interval[1]
        assert b.vacuous == (b.value >= 1.0)
        train = st["train_error"][:, :, c].mean(axis=1)
        test = st["test_error"][:, :, c].mean(axis=1)
        assert cp.train_error == pytest.approx(train.mean()) and cp.gap == pytest.approx((test - train).mean())
    assert res[1].bounds["negrea_loo"].value > res[0].bounds["negrea_loo"].value
    with pytest.raises(dataclasses.FrozenInstanceError):
        res[0].bounds["negrea_loo"].value = 0.0
    # The record's fields, in the record's order.
    d = res[0].to_dict()
    assert list(d) == ["step", "eta", "beta", "train_error", "test_error", "gap", "gap_interval", "bounds"]
    assert list(d["bounds"]["negrea_loo"]) == ["value", "interval", "per_draw", "target", "kind", "vacuous",
                                               "pooled"]
    assert isinstance(d["gap_interval"], list) and isinstance(d["bounds"]["haghifam_ld"]["per_draw"], list)
    assert res.to_dict()["checkpoints"][1] == res[1].to_dict()


def test_sgld_leaves_out_the_full_batch_bound():
    st = _pair_stats()
    for batch in (0, N):
        assert set(bounds_from_trajectories(**st, n=N, batch=batch)[0].bounds) == {"negrea_loo", "haghifam_ld"}
    res = bounds_from_trajectories(**st, n=N, batch=10)
    assert all(set(cp.bounds) == {"negrea_loo"} for cp in res.checkpoints)
    assert res[0]["negrea_loo"] == bounds_from_trajectories(**st, n=N)[0]["negrea_loo"]


@pytest.mark.parametrize("name, value, match", [
    ("xi_sq", np.ones((K1, T)), "'xi_sq'"),
    ("noise_dot", np.zeros((K1, K2, T + 1)), "'noise_dot'"),
    ("loo_sq", np.zeros((K1, K2 - 1, T)), "'loo_sq'"),
    ("eta", np.full(T - 1, 0.05), "'eta'"),
    ("beta", np.ones((1, T)), "'beta'"),
    ("train_error", np.zeros((K1, K2, 4)), "'train_error'"),       # 4 checkpoints do not divide T = 6
    ("train_error", np.full((K1, K2, C), 1.5), "'train_error'"),
    ("test_error", np.zeros((K1, K2, 3)), "'test_error'"),
    ("test_error", np.full((K1, K2, C), np.nan), "'test_error'"),
    ("loo_sq", np.full((K1, K2, T), -1.0), "'loo_sq'"),            # the caller's name, not the inner bound's
])
def test_langevin_arrays_of_the_wrong_shape_or_range_are_refused_by_name(name, value, match):
    with pytest.raises(ValueError, match=match):
        bounds_from_trajectories(**dict(_pair_stats(), **{name: value}), n=N)


def test_langevin_sizes_are_checked():
    with pytest.raises(ValueError, match="'n'"):
        bounds_from_trajectories(**_pair_stats(), n=0)
    with pytest.raises(ValueError, match="'batch'"):
        bounds_from_trajectories(**_pair_stats(), n=N, batch=-1)


def _sgd_stats(variance, value_gap, steps=30):
    """Two draws of two runs, one perturbation scale: draw d has V_t = variance[d], Gamma_t = 0."""
    var = np.stack([np.full((2, steps), v) for v in variance])
    gap = np.stack([np.full((2, 1), g) for g in value_gap])
    return dict(variance=var, sensitivity=np.zeros((2, 2, steps, 1)), value_train=np.zeros((2, 2, 1)),
                value_test=gap, train_error=np.zeros((2, 2)), test_error=np.full((2, 2), 0.1))


def test_neu_bound_pools_every_run_of_every_draw_before_the_root():
    """Two draws, one with information sum I and one with none: the bound is
    sqrt(4 R^2 / n * I / 2) = 0.3062, not the mean of per-draw roots (0.2165); value gaps +0.05 and
    -0.05 pool to 0 before the absolute value."""
    steps, n = 30, 40
    eta = 0.05 * 0.95 ** (np.arange(steps) // 50)
    info = float(np.sum(eta**2 / 0.1**2))
    pooled = np.sqrt(4 * 0.25 / n * info / 2)
    assert pooled == pytest.approx(0.30619, abs=1e-5)
    res = sgd_bounds_from_trajectories(**_sgd_stats((1.0, 0.0), (0.0, 0.0)), eta=eta, sigmas=(0.1,), n=n)
    (cp,) = res.checkpoints
    assert cp.step == steps and cp.beta is None and cp.eta == eta[-1]
    assert cp.test_error == pytest.approx(0.1) and cp.gap == pytest.approx(0.1)
    b = cp["neu_sgd_sigma0.1"]
    assert isinstance(b, SGDBound) and b.sigma == 0.1 and b.kind == "estimate"
    assert b.value == pytest.approx(pooled, rel=1e-12)
    assert b.per_draw_information == pytest.approx((info, 0.0)) and b.per_draw_value_gap == (0.0, 0.0)
    assert b.interval[0] <= b.value <= b.interval[1]
    assert list(b.to_dict()) == ["value", "interval", "per_draw_information", "per_draw_value_gap", "target",
                                 "kind", "vacuous", "sigma"]
    res = sgd_bounds_from_trajectories(**_sgd_stats((0.0, 0.0), (0.05, -0.05)), eta=eta, sigmas=(0.1,), n=n)
    assert res[0]["neu_sgd_sigma0.1"].value == pytest.approx(0.0, abs=1e-12)
    assert res[0]["neu_sgd_sigma0.1"].per_draw_value_gap == pytest.approx((0.05, -0.05))


def test_sgd_arrays_of_the_wrong_shape_are_refused_by_name():
    eta = np.full(30, 0.05)
    good = _sgd_stats((1.0, 0.0), (0.0, 0.0))
    for name, value in (("sensitivity", np.zeros((2, 2, 30, 2))), ("value_test", np.zeros((2, 2))),
                        ("train_error", np.zeros(2)), ("test_error", np.full((2, 2), -0.1))):
        with pytest.raises(ValueError, match=f"'{name}'"):
            sgd_bounds_from_trajectories(**dict(good, **{name: value}), eta=eta, sigmas=(0.1,), n=40)
    with pytest.raises(ValueError, match="'eta'"):
        sgd_bounds_from_trajectories(**good, eta=eta[:-1], sigmas=(0.1,), n=40)


def test_a_record_whose_negrea_bound_was_a_mean_of_per_draw_roots_is_refused_with_the_way_out():
    # records written before the pooling hold a biased-low negrea_loo: reading one back says how to rewrite it
    cp = bounds_from_trajectories(**_pair_stats(), n=N)[0].to_dict()
    assert checkpoint(cp).bounds["negrea_loo"].pooled
    old = dict(cp, bounds={**cp["bounds"], "negrea_loo": {k: v for k, v in cp["bounds"]["negrea_loo"].items()
                                                          if k != "pooled"}})
    with pytest.raises(ValueError, match="negrea_loo was computed per outer draw, which is biased low.*rerun the "
                                         "same `genbounds langevin` command into the same --out"):
        checkpoint(old)
