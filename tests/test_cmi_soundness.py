"""No CMI bound is below what its theorem allows: run sets where the truth is known (unbalanced
masks, a learner that memorises, one hard member per pair) and properties over random valid
supersample run sets."""

import math

import numpy as np
import pytest
from cmi_cases import CMI_BOUNDS, memorising
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from genbounds.bounds import cmi as B
from genbounds.estimators.supersample import bounds_from_runs
from genbounds.estimators.supersample.mi import plugin_mi


def _applicable(res):
    return {k: b.value for k, b in res.bounds.items() if b.applicable}


def test_unbalanced_masks_do_not_bias_the_mi_low():
    """27 zeros : 3 ones per pair and a memorising learner: U_i is fully revealed, MI = ln 2.
    The empirical-marginal plug-in gave H(0.1) = 0.33 nats and bounds below the test error 1."""
    rng = np.random.default_rng(1)
    k1, k2, n = 3, 30, 25
    masks = np.zeros((k1, k2, n), dtype=int)
    for d in range(k1):
        for i in range(n):
            masks[d, rng.choice(k2, 3, replace=False), i] = 1
    labels = rng.integers(0, 2, (k1, n, 2))
    res = bounds_from_runs(masks, memorising(masks, labels), labels)
    s = res.summary
    assert s.train_error == 0.0 and s.test_error == pytest.approx(1.0, rel=1e-12)
    assert s.mean_mi["loss_pair"] == pytest.approx(math.log(2), rel=1e-12)
    for name, value in _applicable(res).items():
        assert value >= s.test_error - 1e-12, (name, value)


def test_known_marginal_mi_on_an_unbalanced_table():
    """U: 4 zeros, 2 ones; F | U=0 ~ {0: 3/4, 1: 1/4}, F | U=1 = 1 always. With U's known uniform
    marginal I = JS(p0, p1) = 0.5 KL(p0 || m) + 0.5 KL(p1 || m), m = (p0 + p1) / 2."""
    u = np.array([0, 0, 0, 0, 1, 1])
    f = np.array([0, 0, 0, 1, 1, 1])
    p0, p1 = np.array([0.75, 0.25]), np.array([0.0, 1.0])
    m = (p0 + p1) / 2
    kl = lambda p: sum(a * math.log(a / b) for a, b in zip(p, m) if a > 0)   # noqa: E731
    assert plugin_mi(u, f) == pytest.approx(0.5 * kl(p0) + 0.5 * kl(p1), rel=1e-12)
    with pytest.raises(ValueError, match="never takes the value 1"):
        plugin_mi(np.zeros(6, dtype=int), f)


def test_single_loss_never_picks_the_member_per_draw():
    """One member of each pair is 'hard' (learnt only when trained on) and the other always right;
    the hard side alternates between draws. The per-draw minimum gave 0 with test error 0.5."""
    rng = np.random.default_rng(2)
    k1, k2, n = 4, 30, 20
    masks = rng.integers(0, 2, (k1, k2, n))
    masks[:, 0], masks[:, 1] = 0, 1
    hard = np.array([0, 1, 0, 1])[:, None, None]
    loss = np.stack([np.where(hard == j, (masks != j).astype(int), 0) for j in (0, 1)], axis=-1)
    labels = np.zeros((k1, n, 2), dtype=int)
    res = bounds_from_runs(masks, loss, labels)          # prediction = loss when every label is 0
    s = res.summary
    assert s.test_error == pytest.approx(0.5)
    assert res["single_loss"].value >= s.test_error
    # Per draw it is the mean of both members' 2 sqrt(2 I) terms: here I = ln 2 on the hard side.
    assert res["single_loss"].per_draw == pytest.approx([math.sqrt(2 * math.log(2))] * k1, rel=1e-9)


def test_variance_and_sharpness_forms_never_beat_fast_rate_on_unbalanced_masks():
    """Member 0 always wrong, masks ~85% ones: the sharpness term used another weighting than the
    training error and came out 0.198, below fast_rate 0.299 (and the test error 0.835)."""
    rng = np.random.default_rng(1)
    k1, k2, n = 3, 30, 50
    masks = (rng.random((k1, k2, n)) < 0.85).astype(int)
    masks[:, 0], masks[:, 1] = 0, 1
    labels = rng.integers(0, 2, (k1, n, 2))
    loss0 = np.ones((k1, k2, n), dtype=int)
    loss1 = np.where(masks == 1, 0, rng.random((k1, k2, n)) < 0.05).astype(int)
    loss = np.stack([loss0, loss1], -1)
    preds = np.where(loss == 1, 1 - labels[:, None], labels[:, None])
    res = bounds_from_runs(masks, preds, labels)
    fr = res["fast_rate"].per_draw
    for name in ("fast_rate_variance", "fast_rate_sharpness"):
        assert np.all(np.asarray(res[name].per_draw) >= np.asarray(fr) - 1e-12), name
    for name, value in _applicable(res).items():
        assert value >= res.summary.test_error - 1e-12 or name == "fast_rate_closed_form", (name, value)


@given(lhat=st.floats(0, 1), ibar=st.floats(0, 0.7), v=st.floats(0, 1))
@settings(max_examples=200)
def test_second_moment_forms_are_never_below_fast_rate(lhat, ibar, v):
    """For a [0,1] loss V <= L_hat, so C1 (L_hat - (1 - g^2) V) >= (C1 g^2) L_hat: the forms can
    never beat fast_rate; any v above L_hat is clamped."""
    assert float(B.fast_rate_variance(lhat, ibar, v)) >= float(B.fast_rate(lhat, ibar)) - 1e-12


@st.composite
def run_sets(draw):
    k1 = draw(st.integers(1, 3))
    k2 = draw(st.integers(2, 12))
    n = draw(st.integers(1, 8))
    classes = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, 2, (k1, k2, n))
    masks[:, 0], masks[:, 1] = 0, 1                         # both values of every U_i present
    masks = masks[:, rng.permutation(k2)]
    labels = rng.integers(0, classes, (k1, n, 2))
    p_right = draw(st.floats(0, 1))
    preds = np.where(rng.random((k1, k2, n, 2)) < p_right, labels[:, None],
                     rng.integers(0, classes, (k1, k2, n, 2)))
    if draw(st.booleans()):                               # a memorising learner
        preds = np.where(masks[..., None] == np.arange(2), labels[:, None], preds)
    return masks, preds, labels


def _continuous_fast_rate(lhat, ibar):
    """min over C2 in (0, ln2/2) of C1_min(C2) L + I / C2, by a bounded scalar search."""
    def gap(c2):
        return (-math.log(2 - math.exp(2 * c2)) / (2 * c2) - 1) * lhat + ibar / c2
    if ibar == 0:
        return lhat
    res = minimize_scalar(gap, bounds=(1e-9, math.log(2) / 2 - 1e-12), method="bounded",
                          options={"xatol": 1e-12})
    return lhat + min(res.fun, gap(math.log(2) / 2 - 1e-12))


@given(run_sets())
@settings(max_examples=60)
def test_invariants_of_every_valid_run_set(runs):
    masks, preds, labels = runs
    res = bounds_from_runs(masks, preds, labels)
    s = res.summary
    # ld <= e <= f before the square root (data processing, per pair; so for the means too).
    mi = s.mean_mi
    assert mi["loss_difference"] <= mi["loss_pair"] + 1e-12 <= mi["prediction_pair"] + 2e-12
    assert 0 <= mi["prediction_pair"] <= math.log(2) + 1e-12
    for name, entry in res.bounds.items():
        if not entry.applicable:
            continue
        assert entry.kind == "estimate"
        assert entry.value >= s.train_error - 1e-12, name          # never below its start
    assert res["binary_kl"].value <= 1.0
    assert np.all(np.asarray(res["ldcmi"].per_draw) <= np.asarray(res["ecmi"].per_draw) + 1e-12)
    assert np.all(np.asarray(res["ecmi"].per_draw) <= np.asarray(res["fcmi"].per_draw) + 1e-12)
    # The fast-rate family is never below its exact (continuous) minimum (one draw: the summary's
    # training error and mean single-loss MI are that draw's).
    if masks.shape[0] == 1:
        exact = min(1.0, _continuous_fast_rate(s.train_error, mi["single_loss"]))
        for name in ("fast_rate", "fast_rate_variance", "fast_rate_sharpness", "fast_rate_closed_form"):
            assert res[name].value >= exact - 1e-9, name
    for name in ("fast_rate_variance", "fast_rate_sharpness"):
        assert res[name].value >= res["fast_rate"].value - 1e-12
    # The same output for any permutation of the pairs.
    perm = np.random.default_rng(0).permutation(masks.shape[2])
    again = bounds_from_runs(masks[:, :, perm], preds[:, :, perm], labels[:, perm])
    for name in CMI_BOUNDS:
        if res[name].applicable:
            assert again[name].value == pytest.approx(res[name].value, abs=1e-12), name
