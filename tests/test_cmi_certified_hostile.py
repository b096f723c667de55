"""Hostile review of the certified CMI bound (bounds/cmi_certified.py, estimators/supersample/certified.py).

Checks that hold are plain tests, and so are the defects this review found that have since been fixed (edited
records refused on read, unchecked deltas and counts refused, the types radius and the fast-rate grid at or above
their exact values, the unbalanced-mask and pool_size refusals), and so is the finding about the data rather than
the bound: a fresh certificate uses a pool that is an i.i.d. sample (the gaussian task) and refuses the stratified
one. Every test builds its counts / run arrays by hand or
with numpy: no training."""

import copy
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from cmi_cases import bernoulli_learner_runs, compositions
from scipy.special import entr
from scipy.stats import multinomial

from genbounds.bounds import cmi as B
from genbounds.bounds import cmi_certified as C
from genbounds.bounds._array import divide_down
from genbounds.estimators.data import GAUSSIAN_POOL, binary_task
from genbounds.estimators.supersample import certified as E
from genbounds.experiments.cmi_results import CMIRecord
from genbounds.experiments.cmi_runner import CMIConfig, certify_plan_lines, check_fresh_sampling

RESULTS = Path(__file__).resolve().parents[1] / "paper_figures" / "results"


# ---------------------------------------------------------------------------------------
# Helpers


def _grid_simplex(lo, hi, step):
    """Points of {p in the simplex, lo <= p <= hi} on a grid of the first A-1 coordinates (their bounds included)."""
    a = len(lo)
    ticks = [np.unique(np.concatenate([np.arange(lo[f], hi[f] + 1e-15, step), [lo[f], hi[f]]])) for f in range(a - 1)]
    t = np.stack([g.ravel() for g in np.meshgrid(*ticks, indexing="ij")], axis=-1)     # every tick combination
    last = 1.0 - t.sum(-1)
    keep = (lo[-1] - 1e-12 <= last) & (last <= hi[-1] + 1e-12)
    return np.concatenate([t[keep], np.maximum(last[keep], 0.0)[:, None]], axis=-1)


def _brute_max_js(g0, g1, block=256):
    """max over every pair (g0[i], g1[j]) of their JS, every pair evaluated (a [len(g0), len(g1)] array in blocks of
    g0's rows). Written as JS = H((p0 + p1) / 2) - (H(p0) + H(p1)) / 2 with H summed cell by cell (scipy's entr,
    0 ln 0 = 0): the same divergence as C.js_divergence, per pair within 5e-16 of it (float rounding; the bound's
    JS_MARGIN is 1e-9), and four times as fast on grids of ~1800 points (one log per cell and pair instead of two,
    and no reduction over a short last axis). Never below 0, as C.js_divergence."""
    h0, h1 = entr(g0).sum(-1), entr(g1).sum(-1)
    best = 0.0
    for s in range(0, len(g0), block):
        rows = g0[s:s + block]
        total = -0.5 * h0[s:s + block, None] - 0.5 * h1[None, :]
        for f in range(g0.shape[-1]):
            total += entr((rows[:, f, None] + g1[None, :, f]) * 0.5)
        best = max(best, float(total.max()))
    return best


def test_brute_max_js_is_the_js_of_every_pair():
    """The brute force's formula agrees with C.js_divergence pair by pair (random points, zero cells included)."""
    rng = np.random.default_rng(11)
    for a in (3, 4):
        g0 = rng.dirichlet(np.full(a, 0.3), 40)
        g1 = rng.dirichlet(np.full(a, 0.3), 30)
        g0[:5, 0], g1[:5, -1] = 0.0, 0.0
        g0[:5] /= g0[:5].sum(-1, keepdims=True)
        g1[:5] /= g1[:5].sum(-1, keepdims=True)
        ref = C.js_divergence(g0[:, None, :], g1[None, :, :])
        for i in range(len(g0)):
            for j in range(0, len(g1), 7):
                assert abs(_brute_max_js(g0[i:i + 1], g1[j:j + 1]) - ref[i, j]) <= 1e-15
        assert abs(_brute_max_js(g0, g1) - ref.max()) <= 1e-15


@pytest.fixture(scope="module")
def small_cert():
    masks, preds, labels, idx = bernoulli_learner_runs(40, 400, 5, 0.2, 0.0, seed=0)
    return (masks, preds, labels, idx), E.certify_runs(masks, preds, labels, idx, delta=0.05)


# ---------------------------------------------------------------------------------------
# Per-pair JS maximisation over the box: against brute force, boundary cases


BOX_CASES = [
    # (counts under U = 0, counts under U = 1): zero cells, m = 1, very unbalanced splits, all mass in one cell
    ([1, 0, 0], [0, 0, 1]),
    ([1, 0, 0], [400, 0, 0]),
    ([0, 1, 0], [3, 200, 197]),
    ([5, 0, 0], [0, 0, 5]),
    ([2, 2, 2], [2, 2, 2]),
    ([300, 0, 0], [300, 0, 0]),
    ([1, 0, 0, 0], [0, 0, 0, 1]),
    ([0, 0, 1, 0], [400, 0, 0, 0]),
    ([50, 0, 0, 0], [0, 25, 25, 0]),
    ([3, 1, 0, 7], [0, 9, 2, 0]),
]


@pytest.mark.parametrize("c0,c1", BOX_CASES)
@pytest.mark.parametrize("method", ["cells", "types"])
def test_max_js_box_at_least_brute_force_on_boundary_boxes(c0, c1, method):
    """The reported maximal JS is >= the JS of every grid point pair of the box (A = 3: step 0.02, A = 4: 0.05)
    and >= the JS at every enumerated vertex pair; it is at most ln 2 (rounded up)."""
    lo, hi = C.cell_intervals(np.array([c0, c1]), 0.01, method)
    got = float(C.max_js_box(lo[0], hi[0], lo[1], hi[1]))
    step = 0.02 if len(c0) == 3 else 0.05
    g0, g1 = _grid_simplex(lo[0], hi[0], step), _grid_simplex(lo[1], hi[1], step)
    assert len(g0) and len(g1)
    brute = _brute_max_js(g0, g1)
    assert got >= brute
    assert got <= C.LN2_UP
    # The plug-in frequencies lie in the box: the maximum is at least their JS.
    q0, q1 = np.array(c0) / sum(c0), np.array(c1) / sum(c1)
    assert got >= float(C.js_divergence(q0, q1))


def test_pair_mi_upper_at_least_brute_force_on_random_rows():
    """pair_mi_upper (statistic boxes on their own alphabets, per-conditional level delta / 2n) is >= brute force
    over the same boxes for the loss pair (A = 4) and the loss difference (A = 3), random sparse counts."""
    rng = np.random.default_rng(3)
    n, delta = 3, 0.02
    for _ in range(6):
        counts = np.stack([np.stack([rng.multinomial(int(rng.choice([1, 2, 40])), rng.dirichlet(np.full(4, 0.3)))
                                     for _ in range(2)]) for _ in range(n)])[None]        # [1, n, 2, 4]
        up = C.pair_mi_upper(counts, delta)
        per = divide_down(delta, 2 * n)
        for name, step in (("loss_pair", 0.05), ("loss_difference", 0.02)):
            own = np.rint(C._pushforward(counts.astype(float), C.STATISTICS[name])).astype(int)
            for i in range(n):
                lo, hi = C.cell_intervals(own[0, i], per)
                g0, g1 = _grid_simplex(lo[0], hi[0], step), _grid_simplex(lo[1], hi[1], step)
                brute = _brute_max_js(g0, g1)
                assert up[name][0, i] >= brute, (name, counts[0, i])


# ---------------------------------------------------------------------------------------
# Confidence sets: exact coverage at small m, Clopper-Pearson against mpmath


@pytest.mark.parametrize("method", ["cells", "types"])
@pytest.mark.parametrize("a", [2, 3, 4])
def test_box_exact_coverage_at_small_m(method, a):
    """Exact (enumerated) probability that the true p leaves the box, m = 1..8 draws, random p: <= delta."""
    rng = np.random.default_rng(a)
    delta = 0.1
    for m in (1, 2, 3, 5, 8):
        outs = compositions(m, a)
        lo, hi = C.cell_intervals(outs, delta, method)
        for _ in range(25):
            p = rng.dirichlet(np.full(a, rng.choice([0.2, 1.0, 5.0])))
            inside = ((lo <= p) & (p <= hi)).all(-1)
            assert multinomial.pmf(outs, m, p)[~inside].sum() <= delta


def _cp_upper_exact(c: int, m: int, side) -> mp.mpf:
    """sup{p : P(Bin(m, p) <= c) >= side} by bisection in 40-digit arithmetic."""
    if c == m:
        return mp.mpf(1)
    a, b = mp.mpf(0), mp.mpf(1)
    for _ in range(120):
        mid = (a + b) / 2
        if 1 - mp.betainc(c + 1, m - c, 0, mid, regularized=True) < side:
            b = mid
        else:
            a = mid
    return b


@pytest.mark.parametrize("m", [1, 3, 30, 300])
@pytest.mark.parametrize("a", [2, 3, 4])
def test_cells_box_outward_of_exact_clopper_pearson(m, a):
    """Every cell's upper end >= the exact Clopper-Pearson upper bound at delta / (2A) (delta / 2 for A = 2),
    every lower end <= the exact lower bound (mpmath, 40 digits)."""
    mp.mp.dps = 40
    delta = 0.013
    side = mp.mpf(delta) / (2 if a == 2 else 2 * a)
    for c in sorted({0, 1, m // 3, m // 2, m - 1, m}):
        counts = np.array([[c, m - c] + [0] * (a - 2)])
        lo, hi = C.cell_intervals(counts, delta)
        assert mp.mpf(float(hi[0, 0])) >= _cp_upper_exact(c, m, side)
        assert mp.mpf(float(lo[0, 0])) <= 1 - _cp_upper_exact(m - c, m, side)


def _kl_mp(q, p):
    q, p = mp.mpf(q), mp.mpf(p)
    t1 = q * mp.log(q / p) if q > 0 else mp.mpf(0)
    t2 = (1 - q) * mp.log((1 - q) / (1 - p)) if q < 1 else mp.mpf(0)
    return t1 + t2


def test_types_box_upper_end_at_least_exact_at_large_m():
    """The types box's upper end at m = 1e5, A = 4 is >= the exact method-of-types value (mpmath, 50 digits)."""
    mp.mp.dps = 50
    m, a, delta = 100_000, 4, 1e-7
    counts = np.array([[m // 2, m - m // 2, 0, 0]])
    lo, hi = C.cell_intervals(counts, delta, "types")
    eps = (mp.log(mp.binomial(m + a - 1, a - 1)) + mp.log(1 / mp.mpf(delta))) / m
    q = mp.mpf(int(counts[0, 0])) / m
    x, y = q, mp.mpf(1)
    for _ in range(200):
        mid = (x + y) / 2
        if _kl_mp(q, mid) > eps:
            y = mid
        else:
            x = mid
    assert mp.mpf(float(hi[0, 0])) >= x


# ---------------------------------------------------------------------------------------
# The forms: monotone where upper bounds are plugged in, valid on exactly computable learners, rounding


def test_forms_monotone_on_a_grid():
    """binary_kl_certified and fast_rate_certified never decrease in the training error (over [0, 1]) or in the MI
    (the forms are elementwise: a 401 x 15 and an 11 x 401 grid at once, checked against scalar calls)."""
    qs = np.linspace(0.0, 1.0, 401)
    cs = np.linspace(0.0, 0.7, 15)
    for form in (C.binary_kl_certified, C.fast_rate_certified):
        grid = form(qs[:, None], cs[None, :])                      # [q, c]
        assert (np.diff(grid, axis=0) >= 0).all(), form.__name__
        assert [form(float(qs[i]), float(cs[j])) for i, j in [(0, 0), (200, 7), (400, 14), (37, 3)]] == \
            [grid[0, 0], grid[200, 7], grid[400, 14], grid[37, 3]]
    cs = np.linspace(0.0, 0.7, 401)
    it = C.interpolating_certified(cs)                 # a function of the MI alone: once, not per q
    assert (np.diff(it) >= 0).all() and it[123] == C.interpolating_certified(float(cs[123]))
    for form in (C.binary_kl_certified, C.fast_rate_certified):
        grid = form(np.linspace(0.0, 1.0, 11)[:, None], cs[None, :])
        assert (np.diff(grid, axis=1) >= 0).all(), form.__name__


@pytest.mark.parametrize("form, args", [(C.interpolating_certified, ("0.5",)), (C.fast_rate_certified, (0.1, "0.5")),
                                         (C.binary_kl_certified, ("0.1", 0.5))])
def test_forms_refuse_text(form, args):
    with pytest.raises(ValueError, match="text"):
        form(*args)


def _bern(p):
    return np.array([1.0 - p, p])


def test_forms_bound_the_risk_of_two_bernoulli_learners():
    """A learner whose training member is wrong w.p. b and held-out member w.p. a (independently) has risk a and
    exact per-pair MIs: single loss JS(Bern b, Bern a), loss pair JS(b x a, a x b), loss difference a ln 2 at b = 0.
    Every certified form at the exact values is >= a (the theorems as implemented, on a 51 x 51 grid)."""
    a, b = np.meshgrid(np.linspace(0, 1, 51), np.linspace(0, 1, 51), indexing="ij")      # [a, b]
    bern_a, bern_b = _bern(a), _bern(b)                                                    # [2, a, b]
    single = C.js_divergence(np.moveaxis(bern_b, 0, -1), np.moveaxis(bern_a, 0, -1))
    pair = C.js_divergence(np.einsum("i...,j...->...ij", bern_b, bern_a).reshape(*a.shape, 4),
                           np.einsum("i...,j...->...ij", bern_a, bern_b).reshape(*a.shape, 4))
    assert single[17, 40] == float(C.js_divergence(_bern(b[17, 40]), _bern(a[17, 40])))
    assert (C.fast_rate_certified(b, single) >= a - 1e-15).all()
    assert (C.binary_kl_certified(b, pair) >= a - 1e-15).all()
    a = a[:, 0]
    ld = C.js_divergence(np.stack([np.zeros_like(a), 1 - a, a], -1), np.stack([a, 1 - a, np.zeros_like(a)], -1))
    assert (C.interpolating_certified(ld) >= a - 1e-15).all()


def _fast_rate_exact(lhat: float, i_bar: float, c2s) -> mp.mpf:
    vals = []
    for c2 in c2s:
        c2 = mp.mpf(float(c2))
        c1 = max(-mp.log(2 - mp.exp(2 * c2)) / (2 * c2) - 1, mp.mpf(0))
        vals.append(c1 * lhat + mp.mpf(i_bar) / c2)
    return min(mp.mpf(1), mp.mpf(lhat) + min(vals))


def test_fast_rate_certified_above_the_exact_infimum_over_all_constants():
    """The certified fast-rate value is >= the exact value (mpmath) at the best of a 4x denser C2 grid near the
    grid's optimum, so >= the theorem's infimum over all feasible (C1, C2)."""
    mp.mp.dps = 30
    for lhat, i_bar in [(0.0, 0.01), (1e-3, 1e-3), (0.1, 1e-8), (0.3, 0.1), (0.05, 0.3)]:
        got = C.fast_rate_certified(lhat, i_bar)
        j = int(np.argmin(np.maximum(B._C1_BASE, 0) * lhat + i_bar / B._C2))
        lo_c, hi_c = B._C2[max(j - 3, 0)], B._C2[min(j + 3, len(B._C2) - 1)]
        assert mp.mpf(got) >= _fast_rate_exact(lhat, i_bar, np.linspace(lo_c, hi_c, 25))


def test_fast_rate_certified_at_least_its_own_grid_in_exact_arithmetic():
    """fast_rate_certified >= the exact minimum over its own grid's C2 near the optimum (exact C1 per C2)."""
    mp.mp.dps = 30
    got = C.fast_rate_certified(0.1, 1e-8)
    j = int(np.argmin(np.maximum(B._C1_BASE, 0) * 0.1 + 1e-8 / B._C2))
    assert mp.mpf(got) >= _fast_rate_exact(0.1, 1e-8, B._C2[max(j - 50, 0): j + 50])


# ---------------------------------------------------------------------------------------
# Concentration, the pair slack, the delta budget


@pytest.mark.parametrize("delta", [0.05, 0.035, 0.1, 1e-6, 0.3, 0.07, 0.013, float(np.nextafter(1.0, 0.0)), 3e-300])
def test_delta_split_parts_sum_to_at_most_delta_exactly(delta):
    split = C.split_delta(delta)
    assert sum(map(Fraction, split.parts.values())) <= Fraction(delta)
    assert set(split.parts) == set(C.DELTA_PARTS)
    assert all(v > 0 for v in split.parts.values())


def test_mean_mi_upper_adds_the_pair_slack_and_covers_the_mean():
    """value >= (the [0, ln 2] mean bound at delta) + ln 2 * pair_slack, and the mean bound covers the true mean of
    i.i.d. [0, ln 2] draws at >= 1 - delta in simulation (500 repetitions, k = 30, skewed Beta draws)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, C.LN2_UP, 50)
    b = C.mean_mi_upper(x, 1e-3, 0.05)
    assert b.value >= C.mean_upper(x, 0.05, scale=C.LN2_UP).value + math.log(2) * 1e-3
    delta, true = 0.1, C.LN2_UP * 2 / (2 + 30)
    misses = sum(C.mean_upper(C.LN2_UP * rng.beta(2, 30, 30), delta, scale=C.LN2_UP).value < true
                 for _ in range(500))
    assert misses <= 500 * delta


def test_kl_chernoff_upper_refuses_delta_zero_naming_it():
    """delta = 0 is one ValueError naming 'delta'."""
    with pytest.raises(ValueError, match="delta"):
        C.kl_chernoff_upper([0.1, 0.2], 0.0)


def test_empirical_bernstein_upper_refuses_delta_above_one():
    """delta > 1 is one ValueError naming 'delta', not a number."""
    with pytest.raises(ValueError, match="delta"):
        C.empirical_bernstein_upper([0.1, 0.2] * 10, 1.5)


def test_certificate_never_below_the_true_risk_of_simulated_learners():
    """On learners with a known expected test error (memoriser: train 0, test 0.5; noisy: train 0.1, test 0.3), the
    certificate and the held-out baseline are >= the true risk; the design is fixed before the draws."""
    for k1, k2, n, a, b, seed in [(100, 400, 2, 0.5, 0.0, 5), (100, 400, 3, 0.3, 0.1, 6)]:
        masks, preds, labels, idx = bernoulli_learner_runs(k1, k2, n, a, b, seed, antithetic=seed % 2 == 0)
        res = E.certify_runs(masks, preds, labels, idx, delta=0.05)
        assert res.certificate.value >= a and res.held_out.value >= a
        assert res.train.value >= b


# ---------------------------------------------------------------------------------------
# Target and statement


def test_target_and_statement_everywhere(small_cert):
    _, res = small_cert
    for cert in (res.certificate, res.held_out):
        assert cert.details["target"] == E.TARGET == "expected risk of the algorithm at n"
        assert "expected test error of the training algorithm" in cert.details["statement"]
        assert "not the risk of one trained network" in cert.details["statement"]
        assert "provided the pool is an i.i.d. sample of it" in cert.details["statement"]
        assert cert.certifies.value == "algorithm"
    assert E.TARGET in str(res)
    assert res.to_dict()["target"] == E.TARGET


# ---------------------------------------------------------------------------------------
# Refusals: one ValueError naming the argument


@pytest.mark.parametrize("delta", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_certify_refuses_delta_outside_unit_interval(small_cert, delta):
    (masks, preds, labels, idx), _ = small_cert
    with pytest.raises(ValueError, match="'delta'"):
        E.certify_runs(masks, preds, labels, idx, delta=delta)


def test_certify_refuses_bad_designs_in_one_line(small_cert):
    (masks, preds, labels, idx), _ = small_cert
    with pytest.raises(ValueError, match="'masks'.*n = 0"):
        E.certify_runs(masks[..., :0], preds[:, :, :0], labels[:, :0], idx[:, :0], delta=0.05)
    bad = preds.astype(float)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="'predictions'"):
        E.certify_runs(masks, bad, labels, idx, delta=0.05)
    badl = labels.astype(float)
    badl[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="'labels'"):
        E.certify_runs(masks, preds, badl, idx, delta=0.05)
    one = masks.copy()
    one[2, :, 1] = 1
    with pytest.raises(ValueError, match="pair 1 of draw 2.*one-sided"):
        E.certify_runs(one, preds, labels, idx, delta=0.05)
    reused = idx.copy()
    reused[3, 1, 0] = reused[0, 0, 0]
    with pytest.raises(ValueError, match="'indices'.*reuse"):
        E.certify_runs(masks, preds, labels, reused, delta=0.05)
    with pytest.raises(ValueError, match="'pool_size'"):
        E.certify_runs(masks, preds, labels, reused, delta=0.05, sampling="pool")
    with pytest.raises(ValueError, match=r"'indices'.*\[0, 5\)"):
        E.certify_runs(masks, preds, labels, reused, delta=0.05, sampling="pool", pool_size=5)


def test_too_few_runs_message_gives_a_count_that_is_enough():
    """The refusal's advertised design really has a nonvacuous best case, and the refused one does not."""
    masks, preds, labels, idx = bernoulli_learner_runs(5, 30, 4, 0.1, 0.0, seed=1)
    with pytest.raises(ValueError, match=r"k1 = (\d+) supersamples x k2 = (\d+) masks \((\d+) runs") as err:
        E.certify_runs(masks, preds, labels, idx, delta=0.05)
    k1, k2, runs = map(int, re.search(r"at least k1 = (\d+) supersamples x k2 = (\d+) masks \((\d+) runs",
                                      str(err.value)).groups())
    assert runs == k1 * k2
    assert E.certified_floor(4, k1, k2, 0.05) < 1.0 <= E.certified_floor(4, 5, 30, 0.05)


def _unbalanced(m1: int):
    """Runs where pair 0 has U_0 = 1 in only m1 of 400 runs (a memoriser with test error 0.4)."""
    masks, _, labels, idx = bernoulli_learner_runs(100, 400, 2, 0.4, 0.0, seed=7)
    masks = masks.copy()
    masks[:, :, 0] = 0
    masks[:, :m1, 0] = 1
    wrong_test = np.random.default_rng(9).random(masks.shape) < 0.4
    wrong = np.where(masks[..., None] == np.arange(2), False, wrong_test[..., None])
    return masks, np.where(wrong, 1 - labels[:, None], labels[:, None]), labels, idx


def test_very_unbalanced_pair_still_covers_the_true_risk():
    """A pair with U_0 = 1 in 30 of 400 runs is accepted (not one-sided, 30 runs is enough for a nonvacuous best
    case); its wide box keeps the certificate >= the true risk 0.4."""
    masks, preds, labels, idx = _unbalanced(30)
    res = E.certify_runs(masks, preds, labels, idx, delta=0.05)
    assert res.certificate.value >= 0.4 and res.held_out.value >= 0.4
    assert res.certificate.details["runs_per_u_min"] == 30


def test_unbalanced_refusal_names_the_real_design():
    """A pair with a single U = 1 run of 400 masks is refused naming that pair and the real k2."""
    masks, preds, labels, idx = _unbalanced(1)
    with pytest.raises(ValueError, match="k2 = 400") as err:
        E.certify_runs(masks, preds, labels, idx, delta=0.05)
    assert "pair 0" in str(err.value)


def test_pool_size_without_pool_sampling_refused(small_cert):
    """pool_size with sampling='fresh' is refused, not recorded."""
    (masks, preds, labels, idx), _ = small_cert
    with pytest.raises(ValueError, match="pool_size"):
        E.certify_runs(masks, preds, labels, idx, delta=0.05, pool_size=5)


def test_pair_mi_upper_refuses_fractional_counts():
    """Counts of 2.5 runs are refused as not whole, not rounded."""
    with pytest.raises(ValueError, match="'counts'.*whole"):
        C.pair_mi_upper(np.full((1, 2, 4), 2.5), 0.05)


# ---------------------------------------------------------------------------------------
# Records read back


def _committed_record():
    path = RESULTS / "cmi-certified-gaussian-n5.json"
    if not path.exists():
        pytest.skip("no committed certified record")
    return json.loads(path.read_text())


def test_committed_record_reads_back():
    data = _committed_record()
    rec = CMIRecord.from_dict(data)
    cert = rec.results[0].result.certified
    assert cert is not None and cert.certificate.value == data["results"][0]["certified"]["certificate"]["value"]


def test_edited_certified_value_refused_on_read():
    """A certificate value edited below what its recorded mean bounds give (0.4620 -> 0.01) is refused."""
    data = _committed_record()
    data["results"][0]["certified"]["certificate"]["value"] = 0.01
    with pytest.raises(ValueError):
        CMIRecord.from_dict(data)


def test_edited_held_out_value_refused_on_read(small_cert):
    """A held-out value edited to 0 (its recorded mean test error bound unchanged) is refused."""
    _, res = small_cert
    d = copy.deepcopy(res.to_dict())
    d["held_out"]["value"] = 0.0
    d["held_out"]["vacuous"] = False
    with pytest.raises(ValueError):
        E.CertifiedCMI.from_dict(d)


def test_certified_entry_missing_key_is_a_value_error(small_cert):
    """An entry without 'forms' is one ValueError naming it."""
    _, res = small_cert
    d = copy.deepcopy(res.to_dict())
    del d["forms"]
    with pytest.raises(ValueError, match="forms"):
        E.CertifiedCMI.from_dict(d)


def test_gaussian_pool_is_an_iid_sample():
    """The pool of fresh certificates is an i.i.d. sample: the gaussian task's label count is Binomial (here not
    exactly half of the pool, within 5 sd of it), where make_classification's pool is stratified (exactly half)."""
    pool = binary_task("gaussian")
    k, size = int(pool.y.sum()), len(pool)
    assert k != size // 2 and abs(k - size / 2) < 5 * math.sqrt(size) / 2
    assert int(binary_task("synthetic", None, None, seed=0, synthetic_features=5).y.sum()) == 10000


def test_stratified_pool_refused_for_a_fresh_certificate():
    """A fresh certificate on the stratified pool is refused in one line naming the argument and what to use
    instead; the same pool with draws with replacement (its uniform distribution the target), and the gaussian
    task with fresh supersamples, are accepted."""
    cfg = CMIConfig(certify=True, dataset="synthetic", n=(4,), k1=100, k2=200)
    with pytest.raises(ValueError) as err:
        certify_plan_lines(cfg, 20000)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("argument 'dataset'") and "--dataset gaussian" in msg
    assert "--sampling pool" in msg and "stratified" in msg
    with pytest.raises(ValueError, match="argument 'dataset'"):
        check_fresh_sampling(cfg, 20000)
    assert certify_plan_lines(cfg.replace(sampling="pool"), 20000)
    assert certify_plan_lines(cfg.replace(dataset="gaussian"), GAUSSIAN_POOL)
