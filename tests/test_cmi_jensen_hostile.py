"""Hostile checks of the ``jensen`` certified CMI (per pair the plug-in JS, concentrated over supersamples) and of the
``gaussian`` task.

* Exact expectations through :func:`certify_runs` itself: every equally likely configuration of masks and seeds of a
  small design is fed as one "supersample", so the plain means the certificate records are exact expectations. The
  plug-in mean MI is >= the true mean MI and the training / test error estimates are exactly unbiased for i.i.d.
  fair masks (random counts m_u, one-sided configurations refused and so conditioned away), the runner's antithetic
  masks with an odd extra mask, antithetic partners sharing their training seed, and duplicated runs, for learners
  whose losses depend on the other pairs' bits.
* Coverage: simulated learners with a known expected risk and known mean MIs (exact enumeration), whole
  certificates at a large delta so that a failure would show.
* Adversarial run sets: masks shared by supersamples break the i.i.d.-over-supersamples premise (refused, and the
  attack measured with the check off); records whose mean bounds are edited consistently are refused.
* The CLI's refusals (one line, exit 2), and the gaussian task against 10^6 fresh Monte Carlo points.
"""

import copy
import itertools
from fractions import Fraction

import jax
import numpy as np
import pytest
from scipy.special import ndtr
from scipy.stats import binom

from genbounds.bounds import cmi_certified as C
from genbounds.bounds.kl import kl_inv_upper
from genbounds.cli import main
from genbounds.estimators import nets
from genbounds.estimators.data import gaussian_linear_risk, gaussian_mean, gaussian_task
from genbounds.estimators.supersample import certified as E
from genbounds.experiments.cmi_runner import _permutation

# ---------------------------------------------------------------------------------------
# Exact expectations: a learner given by a table, every design configuration enumerated

N, SEEDS = 3, 2
ALL_U = np.array(list(itertools.product((0, 1), repeat=N)))                 # [8, N]


def _ids(n: int, k1: int) -> np.ndarray:
    return np.arange(k1 * n * 2).reshape(k1, n, 2)


def _losses(masks: np.ndarray, seeds: np.ndarray, table: np.ndarray) -> np.ndarray:
    """0-1 losses ``[R, k2, N, 2]`` of a learner given by ``table[mask id, seed, pair]`` = loss-pair cell 2 L0 + L1:
    the losses of pair i may depend on every bit of the mask (the other pairs' bits too) and on the run's seed."""
    uid = (masks * (2 ** np.arange(N - 1, -1, -1))).sum(-1)
    cell = table[uid, seeds]
    return np.stack([cell // 2, cell % 2], -1)


def _truth(table: np.ndarray) -> tuple[dict[str, float], float, float]:
    """The learner's true mean MIs (U uniform on {0,1}^N, seed uniform), mean training and test error."""
    onehot = np.eye(4)[table]                                               # [8, S, N, 4]
    p = np.stack([onehot[ALL_U[:, i] == u].mean((0, 1))[i] for i in range(N) for u in (0, 1)]).reshape(N, 2, 4)
    js = {name: C.js_divergence(C._pushforward(p[:, 0], code), C._pushforward(p[:, 1], code))
          for name, code in C.STATISTICS.items()}
    loss = np.stack([table // 2, table % 2], -1)                           # [8, S, N, 2]
    train = float(np.take_along_axis(loss, ALL_U[:, None, :, None], -1).mean())
    test = float(np.take_along_axis(loss, 1 - ALL_U[:, None, :, None], -1).mean())
    mi = {"single_loss": float(((js["loss_member0"] + js["loss_member1"]) / 2).mean()),
          "loss_pair": float(js["loss_pair"].mean()), "loss_difference": float(js["loss_difference"].mean())}
    return mi, train, test


def _design_iid(k2: int = 3):
    """Every configuration of k2 i.i.d. fair masks (counts m_u random: 1 or 2 of 3) and per-run seeds, the one-sided
    ones (which certify_runs refuses) left out: the rest are equally likely."""
    ms, ss = [], []
    for flat in itertools.product((0, 1), repeat=k2 * N):
        m = np.array(flat).reshape(k2, N)
        if not ((m.sum(0) == 0) | (m.sum(0) == k2)).any():
            for s in itertools.product(range(SEEDS), repeat=k2):
                ms.append(m)
                ss.append(s)
    return np.array(ms), np.array(ss)


def _design_odd():
    """The runner's draw_masks at k2 = 3: V, 1 - V and one more independent mask; independent seeds."""
    rows = [(np.stack([v, 1 - v, x]), s) for v in ALL_U for x in ALL_U
            for s in itertools.product(range(SEEDS), repeat=3)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def _design_shared_seed():
    """Antithetic masks V1, V2, 1 - V1, 1 - V2 whose partners share their training seed (masks and seeds coupled)."""
    rows = [(np.stack([v1, v2, 1 - v1, 1 - v2]), (s1, s2, s1, s2)) for v1 in ALL_U for v2 in ALL_U
            for s1, s2 in itertools.product(range(SEEDS), repeat=2)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def _design_duplicated():
    """Reused runs: V, V, 1 - V, 1 - V where each duplicate is the same run (same mask, same seed)."""
    rows = [(np.stack([v, v, 1 - v, 1 - v]), (s1, s1, s2, s2)) for v in ALL_U
            for s1, s2 in itertools.product(range(SEEDS), repeat=2)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


_DESIGNS = {"iid": _design_iid, "odd_k2": _design_odd, "shared_seed": _design_shared_seed,
            "duplicated": _design_duplicated}


def _table(kind: str, seed: int) -> np.ndarray:
    """Learners: uniformly random tables, and tables whose cell is mostly a function of (U_i, U_{i+1}) with a little
    seed noise (the tight cases: the plug-in is nearly exact there)."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, 4, (8, SEEDS, N))
    g = rng.integers(0, 4, (N, 2, 2))                                        # cell of pair i by (U_i, U_{i+1})
    base = np.array([[g[i, u[i], u[(i + 1) % N]] for i in range(N)] for u in ALL_U])       # [8, N]
    noise = rng.random((8, SEEDS, N)) < 0.15
    return np.where(noise, rng.integers(0, 4, (8, SEEDS, N)), base[:, None, :])


@pytest.mark.parametrize("design", list(_DESIGNS))
@pytest.mark.parametrize("kind", ["random", "neighbour"])
def test_exact_expectations_through_certify_runs(design, kind):
    """For 10 learners per case, the certificate's recorded plain means over all equally likely configurations are
    exact expectations: the plug-in mean MI is >= the true mean MI for all three statistics (Jensen, with random m_u,
    coupled / shared-seed / duplicated runs, losses depending on the other pairs' bits), and the training and
    held-out test error estimates (U's design weights 1 / (2 m_u)) equal the true ones to 1e-12."""
    masks, seeds = _DESIGNS[design]()
    labels = np.zeros((len(masks), N, 2), np.int64)
    worst = np.inf
    for seed in range(10):
        table = _table(kind, seed)
        loss = _losses(masks, seeds, table)
        res = E.certify_runs(masks, loss, labels, _ids(N, len(masks)), delta=0.5, method="jensen")
        mi, train, test = _truth(table)
        for name in mi:
            assert res.mean_mi[name].mean >= mi[name] - 1e-12, (design, kind, seed, name)
            worst = min(worst, res.mean_mi[name].mean - mi[name])
        assert res.train.mean == pytest.approx(train, abs=1e-12)
        assert res.held_out.emp_risk == pytest.approx(test, abs=1e-12)
    assert worst >= -1e-12


def test_exact_expectation_is_tight_for_a_learner_deterministic_in_its_own_bit():
    """Control: a learner whose pair-i cell is a function of U_i alone has no plug-in bias, so the exact expectation
    equals the true MI (a margin of 0: the enumeration does not hide a bias in the tests above)."""
    table = np.zeros((8, SEEDS, N), np.int64)
    for k, u in enumerate(ALL_U):
        table[k, :, :] = np.where(u == 0, 1, 2)[None, :]                     # U_i = 0: cell 01, U_i = 1: cell 10
    masks, seeds = _design_iid()
    res = E.certify_runs(masks, _losses(masks, seeds, table), np.zeros((len(masks), N, 2), np.int64),
                         _ids(N, len(masks)), delta=0.5, method="jensen")
    mi, _, test = _truth(table)
    assert mi["loss_pair"] == pytest.approx(np.log(2))
    for name in mi:
        assert res.mean_mi[name].mean == pytest.approx(mi[name], abs=1e-12)
    assert test == 1.0


# ---------------------------------------------------------------------------------------
# Coverage: simulated learners with a known risk and known mean MIs


def _antithetic(rng, k1: int, k2: int, n: int) -> np.ndarray:
    half = rng.integers(0, 2, (k1, k2 // 2, n))
    return np.concatenate([half, 1 - half], axis=1)


def _preds_from_loss(rng, loss: np.ndarray):
    labels = rng.integers(0, 2, (loss.shape[0], loss.shape[2], 2))
    return np.where(loss == 1, 1 - labels[:, None], labels[:, None]), labels


def test_interpolating_learner_coverage_is_the_concentration_level():
    """A learner that memorises every training member and errs on a held-out member iff its pair is 'hard' (w.p. 0.3):
    per pair the plug-in JS is exact (ln 2 for a hard pair, 0 otherwise), the expected risk is 0.3 and the mean
    loss-difference MI 0.3 ln 2, so the interpolating form is tight (I / ln 2 = risk) and its coverage is exactly the
    concentration's. With n = 1 each supersample's value is ln 2 x Bernoulli(0.3), where the kl-Chernoff bound is
    sharpest. At delta = 0.8 (0.2 per mean), over 200 experiments of k1 = 60 x k2 = 2: the interpolating certificate
    and every MI bound cover their true values at a rate >= 1 - 0.2 (3 sd slack; measured: 3 misses in 300, 1%), the
    certificate always covers the risk; the control, the plain mean, falls below in about half of them (144 of 300)."""
    rng = np.random.default_rng(5)
    k1, k2, n, trials, delta, h = 60, 2, 1, 200, 0.8, 0.3
    part = C.split_delta(delta).parts["mean_mi_loss_difference"]
    misses = {"interpolating": 0, "loss_difference": 0, "loss_pair": 0, "single_loss": 0, "plain": 0, "cert": 0}
    for _ in range(trials):
        masks = _antithetic(rng, k1, k2, n)
        hard = rng.random((k1, 1, n, 1)) < h                 # a hard pair: both members hard
        train_member = masks[..., None] == np.arange(2)
        loss = np.where(train_member, 0, hard).astype(np.int64)
        preds, labels = _preds_from_loss(rng, loss)
        res = E.certify_runs(masks, preds, labels, _ids(n, k1), delta=delta, method="jensen")
        assert res.interpolating is not None
        misses["interpolating"] += res.interpolating.value < h
        misses["cert"] += res.certificate.value < h
        misses["plain"] += res.mean_mi["loss_difference"].mean < h * np.log(2)
        for name in ("loss_difference", "loss_pair", "single_loss"):
            misses[name] += res.mean_mi[name].value < h * np.log(2)
    slack = part * trials + 3 * np.sqrt(part * (1 - part) * trials)
    for name in ("interpolating", "loss_difference", "loss_pair", "single_loss"):
        assert misses[name] <= slack, misses
    assert misses["cert"] == 0
    assert misses["plain"] >= 0.3 * trials, misses


# A learner whose held-out errors depend on the other pairs' training members: example types hard (w.p. 0.3) or
# easy; training members err w.p. 0 (easy) / 0.2 (hard); held-out members w.p. 0.05 + 0.2 H / n (easy) or
# 0.5 + 0.3 H / n (hard), H the number of hard training members; losses independent given types and masks.
_N_DEP, _HARD = 3, 0.3
_TRAIN_ERR = np.array([0.0, 0.2])


def _held_out_err(t, hard_train):
    return np.where(t == 0, 0.05 + 0.2 * hard_train / _N_DEP, 0.5 + 0.3 * hard_train / _N_DEP)


def _dependent_truth() -> tuple[dict[str, float], float]:
    """Exact mean MIs and expected risk of the dependent learner (every type configuration x every mask)."""
    n = _N_DEP
    masks = np.array(list(itertools.product((0, 1), repeat=n)))
    mi = {"single_loss": 0.0, "loss_pair": 0.0}
    risk = 0.0
    for flat in itertools.product((0, 1), repeat=2 * n):
        t = np.array(flat).reshape(n, 2)
        w = _HARD ** t.sum() * (1 - _HARD) ** (2 * n - t.sum())
        cells, errs = [], []
        for u in masks:
            tr, te = t[np.arange(n), u], t[np.arange(n), 1 - u]
            a, b = _TRAIN_ERR[tr], _held_out_err(te, tr.sum())
            l0, l1 = np.where(u == 0, a, b), np.where(u == 0, b, a)
            cells.append(np.stack([(1 - l0) * (1 - l1), (1 - l0) * l1, l0 * (1 - l1), l0 * l1], -1))
            errs.append(b.mean())
        cells = np.array(cells)
        risk += w * float(np.mean(errs))
        p = np.stack([cells[masks[:, i] == u].mean(0)[i] for i in range(n) for u in (0, 1)]).reshape(n, 2, 4)
        js = {k: C.js_divergence(C._pushforward(p[:, 0], c), C._pushforward(p[:, 1], c))
              for k, c in C.STATISTICS.items()}
        mi["single_loss"] += w * float(((js["loss_member0"] + js["loss_member1"]) / 2).mean())
        mi["loss_pair"] += w * float(js["loss_pair"].mean())
    return mi, risk


def _dependent_runs(rng, k1: int, k2: int):
    n = _N_DEP
    t = (rng.random((k1, n, 2)) < _HARD).astype(np.int64)
    masks = _antithetic(rng, k1, k2, n)
    tr = np.take_along_axis(t[:, None], masks[..., None], -1)[..., 0]
    te = np.take_along_axis(t[:, None], 1 - masks[..., None], -1)[..., 0]
    wrong_train = rng.random(tr.shape) < _TRAIN_ERR[tr]
    wrong_test = rng.random(te.shape) < _held_out_err(te, tr.sum(-1, keepdims=True))
    loss = np.where(masks[..., None] == np.arange(2), wrong_train[..., None], wrong_test[..., None]).astype(np.int64)
    preds, labels = _preds_from_loss(rng, loss)
    return masks, preds, labels


def test_dependent_learner_truth_is_what_the_enumeration_says():
    """The exact values of the dependent learner (used below): risk 0.254, mean single-loss MI 0.0534, loss-pair MI
    0.1004 nats; and one large simulation's held-out error agrees with the risk (4 sd)."""
    mi, risk = _dependent_truth()
    assert risk == pytest.approx(0.254, abs=1e-12)
    assert mi["single_loss"] == pytest.approx(0.053361, abs=1e-5) and mi["loss_pair"] == pytest.approx(0.100448,
                                                                                                          abs=1e-5)
    masks, preds, labels = _dependent_runs(np.random.default_rng(0), 2000, 20)
    res = E.certify_runs(masks, preds, labels, _ids(_N_DEP, 2000), delta=0.5, method="jensen")
    assert abs(res.held_out.emp_risk - risk) < 4 * 0.25 / np.sqrt(2000)


@pytest.mark.integration
def test_dependent_learner_coverage():
    """400 experiments of k1 = 100 x k2 = 400 x n = 3 at delta = 0.8 (0.2 per mean): the certificate never falls
    below the risk 0.254; each MI bound covers its true value at a rate >= 0.8 (3 sd slack); the control, the plain
    mean of the plug-in values (bias about 3 / 800 nats at m = 200), falls below in more than a quarter."""
    mi, risk = _dependent_truth()
    rng = np.random.default_rng(1)
    k1, k2, trials, delta = 100, 400, 400, 0.8
    part = C.split_delta(delta).parts["mean_mi_single_loss"]
    misses = {"cert": 0, "single_loss": 0, "loss_pair": 0, "plain_single": 0, "plain_pair": 0}
    for _ in range(trials):
        masks, preds, labels = _dependent_runs(rng, k1, k2)
        res = E.certify_runs(masks, preds, labels, _ids(_N_DEP, k1), delta=delta, method="jensen")
        misses["cert"] += res.certificate.value < risk
        for name in ("single_loss", "loss_pair"):
            misses[name] += res.mean_mi[name].value < mi[name]
        misses["plain_single"] += res.mean_mi["single_loss"].mean < mi["single_loss"]
        misses["plain_pair"] += res.mean_mi["loss_pair"].mean < mi["loss_pair"]
    slack = part * trials + 3 * np.sqrt(part * (1 - part) * trials)
    assert misses["cert"] == 0, misses
    assert misses["single_loss"] <= slack and misses["loss_pair"] <= slack, misses
    assert misses["plain_single"] >= 0.25 * trials and misses["plain_pair"] >= 0.25 * trials, misses


# ---------------------------------------------------------------------------------------
# Adversarial run sets


def _neighbour_learner(masks, rng):
    """Memorises its training members; errs on the held-out member of pair i iff U_i == U_{i+1}: expected risk 1/2
    under fair independent masks, but 0 for every run of a mask with no two equal neighbours."""
    test_loss = (masks == np.roll(masks, -1, axis=2)).astype(np.int64)
    loss = np.where(masks[..., None] == np.arange(2), 0, test_loss[..., None])
    return _preds_from_loss(rng, loss)


def test_neighbour_learner_is_covered_with_independent_masks():
    """Control for the attack below: with masks drawn independently for every supersample, 30 certificates at
    delta = 0.2 (k1 = 200, k2 = 2, n = 2) are all above the risk 1/2."""
    rng = np.random.default_rng(3)
    k1, k2, n = 200, 2, 2
    for _ in range(30):
        masks = _antithetic(rng, k1, k2, n)
        preds, labels = _neighbour_learner(masks, rng)
        res = E.certify_runs(masks, preds, labels, _ids(n, k1), delta=0.2, method="jensen")
        assert res.certificate.value >= 0.5


def test_masks_shared_by_every_supersample_are_refused():
    rng = np.random.default_rng(4)
    k1, k2, n = 200, 2, 2
    masks = np.broadcast_to(_antithetic(rng, 1, k2, n), (k1, k2, n)).copy()
    masks[:, 0] = [0, 1]                                   # no two equal neighbours: every held-out loss is 0
    masks[:, 1] = [1, 0]
    preds, labels = _neighbour_learner(masks, rng)
    with pytest.raises(ValueError, match="masks"):
        E.certify_runs(masks, preds, labels, _ids(n, k1), delta=0.2, method="jensen")


def test_shared_masks_attack_is_real(monkeypatch):
    """What the refusal above guards against, measured with the check switched off: with one random mask set shared
    by all supersamples, the neighbour learner's certificate (delta = 0.2) is below its risk 1/2 in at least a
    quarter of 40 trials."""
    monkeypatch.setattr(E, "_check_independent_masks", lambda masks: None)
    rng = np.random.default_rng(0)
    k1, k2, n = 200, 2, 2
    below = 0
    for _ in range(40):
        masks = np.broadcast_to(_antithetic(rng, 1, k2, n), (k1, k2, n)).copy()
        preds, labels = _neighbour_learner(masks, rng)
        below += E.certify_runs(masks, preds, labels, _ids(n, k1), delta=0.2, method="jensen").certificate.value < 0.5
    assert below >= 10, below


@pytest.mark.parametrize("bad", ["k2=1", "one_sided"])
def test_designs_without_both_mask_values_are_refused(bad):
    rng = np.random.default_rng(0)
    k1, n = 60, 2
    masks = np.zeros((k1, 1, n), np.int64) if bad == "k2=1" else np.zeros((k1, 4, n), np.int64)
    if bad == "one_sided":
        masks[:, :2, 0] = 1                                 # pair 1 always trains on member 0
    preds = np.zeros((*masks.shape, 2), np.int64)
    labels = rng.integers(0, 2, (k1, n, 2))
    with pytest.raises(ValueError, match="masks") as err:
        E.certify_runs(masks, preds, labels, _ids(n, k1), delta=0.1, method="jensen")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------
# The budget, the ranges, the forms' monotone use


@pytest.fixture(scope="module")
def jensen_result():
    rng = np.random.default_rng(0)
    k1, k2, n = 200, 200, 5
    masks = _antithetic(rng, k1, k2, n)
    wrong = rng.random((k1, k2, n, 2)) < np.where(masks[..., None] == np.arange(2), 0.0, 0.2)
    preds, labels = _preds_from_loss(rng, wrong.astype(np.int64))
    return E.certify_runs(masks, preds, labels, _ids(n, k1), delta=0.05, method="jensen")


@pytest.mark.parametrize("delta", [0.05, 0.1 + 0.2, 1 / 3, 0.7, 1e-7])
def test_jensen_delta_parts_sum_to_at_most_delta_exactly(delta):
    """The recorded parts (four equal ones) sum to <= delta in exact arithmetic, and the MIs used are at their part."""
    rng = np.random.default_rng(1)
    k1, n = 400, 2
    masks = _antithetic(rng, k1, 4, n)
    preds, labels = _neighbour_learner(masks, rng)
    res = E.certify_runs(masks, preds, labels, _ids(n, k1), delta=delta, method="jensen")
    parts = res.certificate.delta_parts
    assert set(parts) == set(C.DELTA_PARTS)
    assert sum(map(Fraction, parts.values())) <= Fraction(delta)
    assert res.mean_mi["single_loss"].delta == parts["mean_mi_single_loss"]
    assert res.mean_mi["loss_pair"].delta == parts["mean_mi_loss_pair"]
    assert res.train.delta == parts["mean_train_error"]
    assert res.held_out.delta == delta and res.held_out.delta_parts == {"mean_test_error": delta}


def test_plugin_values_stay_in_the_range_the_concentration_assumes():
    """Disjoint point-mass conditionals give a plug-in of exactly ln 2 (float), within LN2_UP, the range of the
    concentration; an all-ln-2 population is bounded at (at most) LN2_UP and never refused."""
    counts = np.zeros((1, 1, 2, 4), np.int64)
    counts[..., 0, 1], counts[..., 1, 2] = 7, 3
    plug = C.pair_mi_plugin(counts)
    for name in ("loss_pair", "loss_member0", "loss_member1"):
        assert 0.6931 < plug[name][0, 0] <= C.LN2_UP
    b = C.mean_mi_plugin_upper(np.full(50, plug["loss_pair"][0, 0]), 0.05)
    assert plug["loss_pair"][0, 0] <= b.value <= C.LN2_UP * (1 + 1e-12)


def test_binary_kl_certified_dominates_the_true_form_below_its_inputs_across_the_switch():
    """Around the switch at kl^-1 = 0.854 (where 2 p(q) - q stops being monotone), the certified binary-kl value at
    (q_up, c_up) is >= the exact form 2 kl^-1(q, c) - q at every q <= q_up, c <= c_up on a dense grid."""
    for c_up in (0.05, 0.2, 0.4, 0.6):
        for q_up in np.linspace(0.0, 0.9, 46):
            got = C.binary_kl_certified(float(q_up), c_up)
            q = np.linspace(0.0, q_up, 40)[:, None]
            c = np.linspace(0.0, c_up, 12)[None, :]
            exact = np.minimum(1.0, 2 * np.asarray(kl_inv_upper(np.broadcast_to(q, (40, 12)),
                                                                np.broadcast_to(c, (40, 12)))) - q)
            assert got >= exact.max() - 1e-12, (q_up, c_up, got, exact.max())


# ---------------------------------------------------------------------------------------
# Records read back; edits refused


def test_jensen_entry_reads_back_and_a_lowered_value_is_refused(jensen_result):
    d = jensen_result.to_dict()
    assert E.CertifiedCMI.from_dict(d).to_dict() == d
    for path, value in ((("certificate", "value"), 0.01), (("forms", "fast_rate"), 0.01),
                        (("mean_mi", "single_loss", "value"), 0.0), (("train_error", "value"), 0.0)):
        e = copy.deepcopy(d)
        node = e
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(ValueError):
            E.CertifiedCMI.from_dict(e)


def test_consistently_lowered_mi_bounds_are_refused(jensen_result):
    d = copy.deepcopy(jensen_result.to_dict())
    for name in d["mean_mi"]:
        mb = d["mean_mi"][name]
        mb["value"] = mb["kl_chernoff"] = mb["empirical_bernstein"] = 0.0
    forms = C.certified_forms(d["train_error"]["value"], {k: 0.0 for k in d["mean_mi"]},
                              interpolates=d["forms"]["interpolating"] is not None)
    d["forms"] = forms.to_dict()
    form, value = forms.best(with_interpolating=False)
    d["certificate"]["value"], d["certificate"]["details"]["form"] = value, form
    if d.get("interpolating") is not None:
        d["interpolating"]["value"] = forms.interpolating
    assert value < 0.1 < jensen_result.certificate.value
    with pytest.raises(ValueError):
        E.CertifiedCMI.from_dict(d)


# ---------------------------------------------------------------------------------------
# CLI: refusals in one line, exit 2, before any training


_BASE = ["cmi", "--certify", "--per-pair", "jensen", "--dataset", "gaussian", "--arch", "linear", "--n", "4",
         "--epochs", "1", "--no-progress"]


@pytest.mark.parametrize("extra, needle", [
    (["--gaussian-margin", "0", "--k1", "100", "--k2", "200"], "'gaussian_margin' must be > 0"),
    (["--gaussian-margin", "-1", "--k1", "100", "--k2", "200"], "'gaussian_margin' must be > 0"),
    (["--gaussian-margin", "nan", "--k1", "100", "--k2", "200"], "'gaussian_margin' must be > 0"),
    (["--gaussian-margin", "inf", "--k1", "100", "--k2", "200"], "'gaussian_margin' must be > 0"),
    (["--gaussian-margin", "abc"], "--gaussian-margin: invalid float value"),
    (["--k1", "100", "--k2", "1"], "'k2' must be >= 2"),
    (["--k1", "0", "--k2", "200"], "'k1' must be >= 1"),
    (["--delta", "nan", "--k1", "100", "--k2", "200"], "'delta' must be in (0, 1)"),
    (["--delta", "1", "--k1", "100", "--k2", "200"], "'delta' must be in (0, 1)"),
    (["--target-width", "nan"], "'target_width' must be in (0, 1]"),
    (["--loo", "--k1", "100"], "'loo' must be off with --certify"),
    (["--per-pair", "bogus"], "invalid choice: 'bogus'"),
    (["--n", "1", "--k1", "100", "--k2", "200"], "'n' must be a list of sizes >= 2"),
    (["--k1", "5", "--k2", "200"], "too few for a certified CMI bound"),
    (["--k1", "200000", "--k2", "2"], "the pool has 1000000"),
])
def test_cli_refusals_are_one_line_exit_2(tmp_path, capsys, extra, needle):
    assert main([*_BASE, *extra, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and "error:" in err[-1], err
    assert sum("error:" in line for line in err) == 1
    assert not (tmp_path / "o" / "record.json").exists()


# ---------------------------------------------------------------------------------------
# The gaussian task


def _fresh_gaussian(rng, size: int, features: int, margin: float):
    """An independent sampler of the stated distribution (not gaussian_task's code)."""
    y = (rng.random(size) < 0.5).astype(np.int64)
    x = rng.normal(size=(size, features)) + np.where(y[:, None] == 1, 1.0, -1.0) * (margin / np.sqrt(features))
    return x, y


def test_gaussian_linear_risk_against_a_million_fresh_points():
    """The closed form against 10^6 fresh points of an independent sampler (within 4 standard errors, ~0.0016) for
    random classifiers, a strongly biased one, the Bayes classifier (Phi(-margin)) and a near-degenerate w."""
    f, margin = 5, 0.8
    x, y = _fresh_gaussian(np.random.default_rng(123), 1_000_000, f, margin)
    rng = np.random.default_rng(7)
    cases = [(rng.normal(size=f), rng.normal()) for _ in range(3)]
    cases += [(rng.normal(size=f), 2.5), (gaussian_mean(f, margin), 0.0), (np.r_[1e-6, np.zeros(f - 1)], 1e-7)]
    for w, b in cases:
        mc = float(((x @ w + b > 0).astype(np.int64) != y).mean())
        exact = float(gaussian_linear_risk(w, b, f, margin))
        assert abs(mc - exact) < 4 * np.sqrt(max(exact * (1 - exact), 1e-6) / len(y)), (w, b, mc, exact)
    assert float(gaussian_linear_risk(gaussian_mean(f, margin), 0.0, f, margin)) == pytest.approx(ndtr(-margin))


def test_gaussian_linear_risk_is_the_risk_of_the_linear_net():
    """The library's linear net (two logits, argmax) predicts class 1 where w x + b > 0 with w = W[:, 1] - W[:, 0],
    b = b_1 - b_0: its error on 10^6 fresh points of gaussian_task (a seed not used elsewhere) matches the closed
    form within 4 standard errors."""
    f, margin = 5, 1.0
    pool = gaussian_task(1_000_000, f, margin, seed=2024)
    net = nets.mlp(pool.x.shape[1:], (), 2)
    params = net.init(jax.random.PRNGKey(3))
    params["dense"][0]["b"] = params["dense"][0]["b"] + np.array([0.3, -0.2], np.float32)
    preds = np.asarray(net.apply(params, pool.x)).argmax(-1)
    err = float((preds != pool.y).mean())
    W, bias = np.asarray(params["dense"][0]["w"], np.float64), np.asarray(params["dense"][0]["b"], np.float64)
    exact = float(gaussian_linear_risk(W[:, 1] - W[:, 0], bias[1] - bias[0], f, margin))
    assert abs(err - exact) < 4 * np.sqrt(exact * (1 - exact) / len(pool.y)), (err, exact)


def test_gaussian_fresh_blocks_have_iid_labels():
    """The blocks the runner cuts (2n examples of one seeded permutation) hold i.i.d. Bernoulli(1/2) labels: over the
    125,000 blocks of 8 of the default pool, the count of label 1 per block is Binomial(8, 1/2) (chi-square, 8 dof,
    below the 0.999 quantile 26.1), the two members of a pair agree w.p. 1/2, and consecutive blocks are
    uncorrelated."""
    pool = gaussian_task()
    perm = _permutation(0, len(pool))
    y = pool.y[perm].reshape(-1, 4, 2).astype(np.int64)                  # blocks of n = 4 pairs
    counts = y.sum((1, 2))
    observed = np.bincount(counts, minlength=9)
    expected = binom.pmf(np.arange(9), 8, 0.5) * len(counts)
    assert float(((observed - expected) ** 2 / expected).sum()) < 26.1
    agree = float((y[..., 0] == y[..., 1]).mean())
    assert abs(agree - 0.5) < 4 * 0.5 / np.sqrt(y[..., 0].size)
    r = np.corrcoef(counts[:-1], counts[1:])[0, 1]
    assert abs(r) < 4 / np.sqrt(len(counts))
