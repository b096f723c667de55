"""The ``jensen`` per-pair estimate of the certified CMI bound (bounds/cmi_certified.py): the plug-in JS of a pair's
frequencies has expectation at least the pair's MI, so the concentration over supersamples bounds the mean MI
without per-pair boxes. Checked against the exact expectation over every multinomial outcome (independent and
coupled groups), by coverage simulations with a known mean MI (and a control that a too-small value fails them),
and through certify_runs (records that read back, refusals of edited slacks)."""

import copy
import itertools

import numpy as np
import pytest
from cmi_cases import bernoulli_learner_runs, compositions
from scipy.stats import multinomial

from genbounds.bounds import cmi_certified as C
from genbounds.estimators.supersample import certified as E


def _counts(c0, c1) -> np.ndarray:
    return np.stack([np.asarray(c0), np.asarray(c1)])[None, None]          # [1, 1, 2, 4]


def _true_js(p0, p1) -> dict[str, float]:
    return {name: float(C.js_divergence(C._pushforward(np.asarray(p0), code), C._pushforward(np.asarray(p1), code)))
            for name, code in C.STATISTICS.items()}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("m0,m1", [(1, 1), (1, 4), (2, 3), (5, 5), (8, 2)])
def test_plugin_js_expectation_is_at_least_the_js_independent_groups(seed, m0, m1):
    """E JS(p_hat_0, p_hat_1), computed exactly over every pair of multinomial outcomes, is >= JS(p_0, p_1) for
    every statistic; the enumeration is checked to give E p_hat_u = p_u and total probability 1."""
    rng = np.random.default_rng(seed)
    p0, p1 = rng.dirichlet(np.full(4, 0.5)), rng.dirichlet(np.full(4, 0.5))
    t0, t1 = compositions(m0, 4), compositions(m1, 4)
    w0, w1 = multinomial.pmf(t0, m0, p0), multinomial.pmf(t1, m1, p1)
    assert w0.sum() == pytest.approx(1.0) and w1.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w0 @ (t0 / m0), p0, atol=1e-12)
    c = np.stack([np.repeat(t0, len(t1), axis=0), np.tile(t1, (len(t0), 1))], axis=1)      # [T0 T1, 2, 4]
    plug = C.pair_mi_plugin(c[:, None])                                                    # {stat: [T0 T1, 1]}
    w = np.outer(w0, w1).ravel()
    truth = _true_js(p0, p1)
    for name, vals in plug.items():
        assert float(w @ vals[:, 0]) >= truth[name] - 1e-12, name


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [1, 2, 3])
def test_plugin_js_expectation_is_at_least_the_js_coupled_groups(seed, m):
    """Antithetic masks couple a run with U_i = 0 to one with U_i = 1: with m coupled draws (F0, F1) from a joint J
    (marginals p_0, p_1), the exact E JS(p_hat_0, p_hat_1) over all 16^m outcomes is still >= JS(p_0, p_1)."""
    rng = np.random.default_rng(100 + seed)
    joint = rng.dirichlet(np.full(16, 0.3)).reshape(4, 4)
    p0, p1 = joint.sum(1), joint.sum(0)
    truth = _true_js(p0, p1)
    rows, weights = [], []
    for outcome in itertools.product(range(16), repeat=m):
        c = np.zeros((2, 4), np.int64)
        for o in outcome:
            c[0, o // 4] += 1
            c[1, o % 4] += 1
        rows.append(c)
        weights.append(np.prod([joint.ravel()[o] for o in outcome]))
    plug = C.pair_mi_plugin(np.array(rows)[:, None])
    w = np.array(weights)
    assert w.sum() == pytest.approx(1.0)
    for name, vals in plug.items():
        assert float(w @ vals[:, 0]) >= truth[name] - 1e-12, name


def test_plugin_js_is_the_known_marginal_js_of_the_frequencies():
    """pair_mi_plugin is JS of counts / m_u with weights 1/2 (U's design marginal), not of the pooled frequencies."""
    c = _counts([3, 1, 0, 0], [0, 0, 1, 7])
    got = C.pair_mi_plugin(c)["loss_pair"][0, 0]
    assert got == pytest.approx(float(C.js_divergence(np.array([3, 1, 0, 0]) / 4, np.array([0, 0, 1, 7]) / 8)))
    assert C.pair_mi_plugin(_counts([5, 0, 0, 0], [2, 0, 0, 0]))["loss_pair"][0, 0] == 0.0
    with pytest.raises(ValueError, match="m = 0"):
        C.pair_mi_plugin(_counts([5, 0, 0, 0], [0, 0, 0, 0]))
    with pytest.raises(ValueError, match="jensen"):
        C.cell_intervals(np.array([[1, 2]]), 0.05, "jensen")
    with pytest.raises(ValueError, match="jensen"):
        C.pair_mi_upper(_counts([1, 0, 0, 0], [1, 0, 0, 0]), 0.05, "jensen")


# ---------------------------------------------------------------------------------------
# Coverage: a learner whose per-pair conditionals are known


#: Example types of a simulated learner (probability, p_0, p_1 over the loss-pair cells 00, 01, 10, 11): an easy
#: example (no information), a memorised one, a noisy one.
_TYPES = [
    (0.6, [0.9, 0.05, 0.05, 0.0], [0.9, 0.05, 0.05, 0.0]),
    (0.3, [0.7, 0.3, 0.0, 0.0], [0.7, 0.0, 0.3, 0.0]),
    (0.1, [0.4, 0.3, 0.1, 0.2], [0.4, 0.1, 0.3, 0.2]),
]


def _true_mean_mi(name: str) -> float:
    return sum(pi * _true_js(p0, p1)[name] for pi, p0, p1 in _TYPES)


def _simulated_per_draw(rng, trials: int, k1: int, n: int, m: int, name: str) -> np.ndarray:
    """Per-supersample means of the plug-in MI, ``[trials, k1]``: each pair's type drawn by its probability, its
    runs m per U value from the type's conditionals."""
    probs = np.array([t[0] for t in _TYPES])
    cond = np.array([[t[1], t[2]] for t in _TYPES])                        # [T, 2, 4]
    kind = rng.choice(len(_TYPES), size=(trials, k1, n), p=probs)
    counts = rng.multinomial(m, cond[kind])                                 # [trials, k1, n, 2, 4]
    return C.pair_mi_plugin(counts, (name,))[name].mean(-1)


@pytest.mark.parametrize("name", ["single_loss", "loss_pair"])
def test_mean_mi_plugin_upper_covers_the_true_mean_mi(name):
    """At delta = 0.3, over 600 simulated experiments (k1 = 20 supersamples of n = 3 pairs, m = 400 runs per U value:
    the plug-in bias is small), the bound is below the known mean MI in at most delta of them (binomial slack of 3
    sd); a control, the plain mean of the plug-in values, is below it in about half of them, so the simulation
    detects a value that is too small."""
    rng = np.random.default_rng(7)
    trials, delta = 600, 0.3
    stat = "loss_member0" if name == "single_loss" else "loss_pair"
    truth = _true_mean_mi(stat)
    draws = _simulated_per_draw(rng, trials, 20, 3, 400, stat)
    bounds = np.array([C.mean_mi_plugin_upper(d, delta).value for d in draws])
    fails = int((bounds < truth).sum())
    assert fails <= delta * trials + 3 * np.sqrt(delta * (1 - delta) * trials), (fails, truth)
    plain = int((draws.mean(-1) < truth).sum())
    assert plain >= 0.3 * trials, (plain, truth)                            # the control does fail


def test_certificate_from_jensen_runs_covers_the_true_risk():
    """Whole certificates (certify_runs, jensen) of a simulated learner at delta = 0.5: wrong on a training member
    w.p. 0.02, on a held-out member w.p. 0.15 for a memorised pair (type 2 of 2) and 0.02 otherwise: the exact
    expected risk is 0.5 (0.15) + 0.5 (0.02) = 0.085; no certificate of 40 falls below it, and the mean MI bound
    covers its known value in every trial."""
    rng = np.random.default_rng(11)
    k1, k2, n = 200, 40, 4
    risk = 0.5 * 0.15 + 0.5 * 0.02
    below = 0
    for _ in range(40):
        half = rng.integers(0, 2, (k1, k2 // 2, n))
        masks = np.concatenate([half, 1 - half], axis=1)
        labels = rng.integers(0, 2, (k1, n, 2))
        memorised = rng.random((k1, 1, n, 2)) < 0.5
        test_err = np.where(memorised, 0.15, 0.02)
        wrong_if_test = rng.random((k1, k2, n, 2)) < test_err
        wrong_if_train = rng.random((k1, k2, n, 2)) < 0.02
        train_member = masks[..., None] == np.arange(2)
        wrong = np.where(train_member, wrong_if_train, wrong_if_test)
        preds = np.where(wrong, 1 - labels[:, None], labels[:, None])
        res = E.certify_runs(masks, preds, labels, np.arange(k1 * n * 2).reshape(k1, n, 2), delta=0.5,
                             method="jensen")
        below += res.certificate.value < risk
    assert below == 0


# ---------------------------------------------------------------------------------------
# Through certify_runs: design, record, refusals


@pytest.fixture(scope="module")
def jensen_cert():
    masks, preds, labels, idx = bernoulli_learner_runs(200, 200, 5, 0.2, 0.0, seed=0)
    return (masks, preds, labels, idx), E.certify_runs(masks, preds, labels, idx, delta=0.05, method="jensen")


def test_jensen_certificate_is_the_concentrated_plugin_and_reads_back(jensen_cert):
    (masks, preds, labels, idx), res = jensen_cert
    d = res.certificate.details
    assert d["confidence_set"] == "jensen" and d["pair_slack"] == 0.0 and d["pair_slack_grid"] == []
    loss = (preds != labels[:, None]).astype(np.int64)
    plug = C.pair_mi_plugin(E.loss_pair_counts(masks, loss))
    single = ((plug["loss_member0"] + plug["loss_member1"]) / 2).mean(-1)
    want = C.mean_upper(single, C.split_delta(0.05).parts["mean_mi_single_loss"], scale=C.LN2_UP)
    assert res.mean_mi["single_loss"].value == want.value
    assert res.mean_mi["single_loss"].value >= float(single.mean())
    assert res.certificate.details["best_case"] == E.certified_floor(5, 200, 200, 0.05, "jensen")
    assert E.CertifiedCMI.from_dict(res.to_dict()).to_dict() == res.to_dict()
    # Never above the boxes' certificate of the same runs: every box holds the plug-in frequencies.
    boxes = E.certify_runs(masks, preds, labels, idx, delta=0.05)
    assert res.certificate.value <= boxes.certificate.value
    for name in res.mean_mi:
        assert res.mean_mi[name].value <= boxes.mean_mi[name].value


@pytest.mark.parametrize("edit", [("jensen", 1e-3), ("cells", 0.0), ("cells", 2e-3)])
def test_a_pair_slack_its_confidence_set_does_not_use_is_refused_on_read(jensen_cert, edit):
    """A jensen entry with a slack, or a boxes entry with slack 0 or one off the grid, is refused."""
    _, res = jensen_cert
    d = copy.deepcopy(res.to_dict())
    d["certificate"]["details"]["confidence_set"], d["certificate"]["details"]["pair_slack"] = edit
    with pytest.raises(ValueError, match="pair_slack"):
        E.CertifiedCMI.from_dict(d)


def test_jensen_design_sizing():
    """The jensen best case is the concentration of zeros: independent of k2, far below the boxes'; runs_needed keeps
    k2 at JENSEN_K2."""
    assert E.certified_floor(20, 300, 600, 0.05, "jensen") == E.certified_floor(20, 300, 40, 0.05, "jensen")
    assert E.certified_floor(20, 300, 600, 0.05, "jensen") < E.certified_floor(20, 300, 600, 0.05) / 2
    need = E.runs_needed(20, 0.05, 0.2, "jensen")
    assert need.k2 == E.JENSEN_K2 and need.floor <= 0.2
    assert E.certified_floor(20, need.k1, need.k2, 0.05, "jensen") == need.floor
