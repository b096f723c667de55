"""No accepted input may produce a bound below what its theorem allows (issue #9).

One test per reported failure, each built from the failing case (they failed on the main of
2026-11-24), then property tests over random valid supersample run sets.
"""

import inspect
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from genbounds.bounds import cmi as B
from genbounds.bounds import pac_bayes_certificate, seeger, union_minimum
from genbounds.cli import main
from genbounds.estimators import nets, snn
from genbounds.estimators import supersample as S
from genbounds.estimators.data import Dataset
from genbounds.estimators.snn.objectives import zero_one
from genbounds.estimators.supersample import bounds_from_runs, check_supersample_runs, loo_bounds_from_runs
from genbounds.estimators.supersample.mi import plugin_mi

CMI_BOUNDS = ("fcmi", "ecmi", "ldcmi", "single_loss", "binary_kl", "interpolating", "fast_rate",
              "fast_rate_closed_form", "fast_rate_variance", "fast_rate_sharpness")


def _memorising(masks, labels):
    """Predictions of a learner that is right on its training member and wrong on the other."""
    return np.where(masks[..., None] == np.arange(2), labels[:, None], 1 - labels[:, None])


def _applicable(res):
    return {k: b.value for k, b in res.bounds.items() if b.applicable}


# --- 1. Supersample designs the theorem does not cover -----------------------------------------


def test_masks_constant_across_runs_are_refused_naming_the_pair(tmp_path, capsys):
    """Identical masks in every run: MI 0, every 'bound' = training error 0 with test error 1."""
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 30, 20), dtype=int)
    labels = rng.integers(0, 2, (2, 20, 2))
    preds = _memorising(masks, labels)
    with pytest.raises(ValueError, match=r"array 'masks': pair 0 of draw 0 has U = 0 in all 30 runs"):
        bounds_from_runs(masks, preds, labels)
    # One pair one-sided among balanced ones is named too.
    masks = rng.integers(0, 2, (2, 30, 20))
    masks[1, :, 7] = 1
    with pytest.raises(ValueError, match=r"pair 7 of draw 1 has U = 1 in all 30 runs \(1 of 40 pairs"):
        bounds_from_runs(masks, _memorising(masks, labels), labels)
    # The command line refuses the same input, one line, exit 2.
    np.savez(tmp_path / "runs.npz", masks=masks, predictions=_memorising(masks, labels), labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "runs.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "array 'masks'" in err and "pair 7 of draw 1" in err


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
    res = bounds_from_runs(masks, _memorising(masks, labels), labels)
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


# --- 2. Leave-one-out run sets that are incomplete or repeated ---------------------------------


def test_loo_run_set_must_enumerate_every_held_out_index():
    """n = 100, every held-out point wrong, one run: the MI over U is 0 and loo_sqrt printed 0."""
    n = 100
    losses = np.zeros((1, 1, n + 1), dtype=int)
    losses[0, 0, 0] = 1
    with pytest.raises(ValueError, match=r"array 'held_out': draw 0 has 1 runs for n\+1 = 101 points"):
        loo_bounds_from_runs(np.array([[0]]), losses)
    # A repeated index (n+1 runs, index 3 twice, 4 missing) is named.
    held = np.arange(n + 1)[None].copy()
    held[0, 4] = 3
    with pytest.raises(ValueError, match=r"missing indices \[4\], repeated \[3\]"):
        loo_bounds_from_runs(held, np.zeros((1, n + 1, n + 1), dtype=int))
    # The library's own design is the full enumeration and nothing else.
    assert list(inspect.signature(S.loo_held_out).parameters) == ["n"]
    np.testing.assert_array_equal(S.loo_held_out(n), np.arange(n + 1))


def test_loo_cli_refuses_the_same_run_set(tmp_path, capsys):
    labels = np.zeros((1, 6), dtype=int)
    np.savez(tmp_path / "loo.npz", held_out=np.array([[0, 1, 2]]), predictions=np.ones((1, 3, 6), dtype=int),
             labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "loo.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "array 'held_out': draw 0" in err


# --- 3. single_loss per-draw minimum --------------------------------------------------------------


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


# --- 4. Variance / sharpness forms --------------------------------------------------------------


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


# --- 5. Public PAC-Bayes API ----------------------------------------------------------------------


def _tiny():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3, 1, 1)).astype(np.float32)
    y = (x[:, 0, 0, 0] > 0).astype(np.int32)
    net = nets.mlp((3, 1, 1), (), 2)
    return Dataset(x, y, 2, "tiny"), net, net.init(jax.random.PRNGKey(0))


def test_certify_refuses_an_unpaid_prior_scale():
    data, net, params = _tiny()
    prior = snn.Prior(params, 0.1)
    post = snn.init_posterior(params, 0.05)
    with pytest.raises(ValueError, match="'prior_scale'.*prior_grid"):
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0),
                    estimate=snn.PerExampleDraws(1), prior_scale=0.01)
    # Paid for on the grid it is accepted and records the grid point.
    cert, _ = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0),
                          estimate=snn.PerExampleDraws(1), prior_scale=0.01, prior_grid=(100.0, 0.1))
    assert "prior_grid" in cert.details


def test_certify_network_needs_the_prior_provenance():
    data, net, params = _tiny()
    kwargs = dict(key=jax.random.PRNGKey(0), prior_mean=params, epochs=1, r=1, progress=False)
    with pytest.raises(ValueError, match="'prior_indices' and 'data_free'"):
        snn.certify_network(net, params, data, **kwargs)
    with pytest.raises(ValueError, match="'prior_indices' and 'data_free'"):
        snn.certify_network(net, params, data, prior_indices=np.arange(10), data_free=True, **kwargs)
    cert, _ = snn.certify_network(net, params, data, prior_indices=np.arange(20), **kwargs)
    assert cert.n_prior == 20 and cert.n_bound == 40
    # A prior's kind is derived from its indices: it cannot claim 'init' while holding data.
    assert snn.Prior(params, 0.1, data_indices=np.arange(3)).kind == "data"
    assert snn.Prior(params, 0.1).kind == "init"


# --- 6. Selection among several certificates -----------------------------------------------------


def test_union_minimum_recomputes_every_certificate_at_delta_over_k():
    certs = [pac_bayes_certificate(b, 0.04, kl, 2000, 0.025, mc_samples=20000, mc_delta=0.01)
             for b, kl in (("seeger", 30.0), ("catoni", 30.0), ("seeger", 5.0))]
    best = union_minimum(certs, ["a", "b", "c"])
    redone = [pac_bayes_certificate(c.bound, 0.04, c.kl, 2000, 0.025 / 3, mc_samples=20000, mc_delta=0.01 / 3)
              for c in certs]
    assert best.value == min(r.value for r in redone) > min(c.value for c in certs)
    assert best.details["selection"]["chosen"] == "c" and best.details["selection"]["k"] == 3
    assert best.delta_parts == {"pac_bayes": 0.025, "monte_carlo": 0.01}
    assert best.details["delta_effective"] == pytest.approx(0.025 / 3)
    # The recomputation keeps a prior-grid payment.
    grid = pac_bayes_certificate("seeger", 0.04, 30.0, 2000, 0.025, prior_grid_j=200)
    assert union_minimum([grid, grid]).value == pac_bayes_certificate(
        "seeger", 0.04, 30.0, 2000, 0.0125, prior_grid_j=200).value
    with pytest.raises(ValueError, match="one delta budget"):
        union_minimum([certs[0], pac_bayes_certificate("seeger", 0.04, 5.0, 2000, 0.05)])


def test_calculator_says_the_best_row_needs_a_union_bound(capsys):
    assert main(["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5000", "--n", "55000"]) == 0
    out = capsys.readouterr().out
    assert "each holds on its own" in out and "union bound" in out
    honest = union_minimum([pac_bayes_certificate(b, 0.03, 5000.0, 55000, 0.025) for b in ("seeger", "catoni")])
    assert f"honest minimum is {math.ceil(honest.value * 1e4) / 1e4:.4f}" in out


# --- 7. Labels: certificate or estimate ----------------------------------------------------------


def test_every_cmi_number_is_labelled_an_estimate(tmp_path, capsys):
    rng = np.random.default_rng(3)
    masks = rng.integers(0, 2, (2, 20, 10))
    labels = rng.integers(0, 2, (2, 10, 2))
    res = bounds_from_runs(masks, _memorising(masks, labels), labels)
    assert res.summary.kind == "estimate"
    assert all(b.kind == "estimate" and b.target in (None, "gap", "risk") for b in res.bounds.values())
    assert all(d["kind"] == "estimate" for d in res.to_dict().values())
    n1 = 6
    loo = loo_bounds_from_runs(np.arange(n1)[None], np.eye(n1, dtype=int)[None])
    assert loo.summary.kind == "estimate" and "estimate" in loo.summary.note
    np.savez(tmp_path / "runs.npz", masks=masks, predictions=_memorising(masks, labels), labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "runs.npz")]) == 0
    assert "ESTIMATES, not certificates" in capsys.readouterr().out


def test_report_has_a_kind_column():
    from genbounds.experiments.records import new_record
    from genbounds.experiments.report import REPORT_COLUMNS, render, rows_from_record
    rng = np.random.default_rng(4)
    masks = rng.integers(0, 2, (2, 20, 10))
    labels = rng.integers(0, 2, (2, 10, 2))
    res = bounds_from_runs(masks, _memorising(masks, labels), labels).to_dict()
    summary = res.pop("summary")
    cmi = new_record("cmi", {"dataset": "synthetic", "arch": "linear"}, 0,
                     [{"n": 10, "summary": summary, "bounds": res}])
    calc = new_record("calculator", {}, None, [pac_bayes_certificate("seeger", 0.03, 50.0, 1000, 0.025).to_dict()])
    rows = rows_from_record(cmi) + rows_from_record(calc)
    assert {r["kind"] for r in rows[:-1]} == {"estimate"} and rows[-1]["kind"] == "certificate"
    text = render(REPORT_COLUMNS, rows, "markdown")
    assert "| kind" in text and "estimate" in text and "certificate" in text


# --- 8. Smaller input defects -------------------------------------------------------------------


def test_huge_class_ids_are_remapped_not_allocated():
    """Ids near 1e7 made K^2 cells (an 8 PiB allocation); the result must equal small ids'."""
    rng = np.random.default_rng(5)
    masks = rng.integers(0, 2, (2, 20, 15))
    labels = rng.integers(0, 3, (2, 15, 2))
    preds = np.where(rng.random((2, 20, 15, 2)) < 0.7, labels[:, None], rng.integers(0, 3, (2, 20, 15, 2)))
    small = bounds_from_runs(masks, preds, labels)
    ids = np.array([10_000_019, 3, 99_999_989])
    big = bounds_from_runs(masks, ids[preds], ids[labels])
    for name in CMI_BOUNDS:       # relabelling permutes codes: equal up to summation order
        assert big[name].applicable == small[name].applicable, name
        assert big[name].per_draw == pytest.approx(small[name].per_draw, rel=1e-12), name
    many = bounds_from_runs(masks, preds + 3000 * rng.integers(0, 2, preds.shape), labels)   # ~3000 ids
    assert many["fcmi"].value >= small["fcmi"].value - 1e-12


def test_sample_sizes_must_be_whole_numbers():
    with pytest.raises(ValueError, match="'n' must be a whole number, got 1.5"):
        seeger(0.1, 10.0, 1.5, 0.05)
    assert float(seeger(0.1, 10.0, 100.0, 0.05)) == float(seeger(0.1, 10.0, 100, 0.05))


def test_non_finite_logits_count_as_errors():
    logits = jnp.array([[jnp.nan, 0.0], [1.0, 0.0], [jnp.inf, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(zero_one(logits, jnp.array([0, 0, 0, 1])), [1.0, 0.0, 1.0, 0.0])
    # A population member that diverges predicts -1 on every point: all errors, never "class 0".
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 1, 1)).astype(np.float32)
    y = np.zeros(40, dtype=np.int32)
    net = nets.mlp((2, 1, 1), (), 2)
    preds = S.train_population(net, jax.random.split(jax.random.PRNGKey(0), 2), x, y,
                               np.tile(np.arange(20), (2, 1)),
                               S.TrainConfig(epochs=2, batch_size=10, optimizer=optax.sgd(1e30)), progress=False)
    assert preds.shape == (2, 40) and set(np.unique(preds)) <= {-1, 0, 1}


@pytest.mark.parametrize("argv,needle", [
    (["--delta", "0.6", "--mc-samples", "100", "--mc-delta", "0.6"], "'delta' + 'mc_delta' sum to 1.2"),
    (["--digits", "-2"], "--digits"),
])
def test_calculator_input_errors_are_one_line(capsys, argv, needle):
    base = ["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5000", "--n", "55000"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and err.startswith("genbounds")


def test_headers_never_round_delta(capsys):
    assert main(["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5", "--n", "55", "--delta", "0.99999999"]) == 0
    out = capsys.readouterr().out
    assert "1 - 0.99999999" in out and "1 - 1 " not in out


def test_empty_and_foreign_run_files_are_named(tmp_path, capsys):
    np.savez(tmp_path / "empty.npz", masks=np.zeros((1, 30, 0)), predictions=np.zeros((1, 30, 0, 2)),
             labels=np.zeros((1, 0, 2)))
    (tmp_path / "text.npz").write_text("masks,predictions\n1,2\n")
    np.save(tmp_path / "one.npy", np.zeros(3))
    for name, needle in (("empty.npz", "n = 0 pairs"), ("text.npz", "not a readable .npz"),
                         ("one.npy", "single array, not an .npz")):
        assert main(["bound", "cmi", "--runs", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err and "Traceback" not in err, (name, err)
    with pytest.raises(ValueError, match="k1 = 0 draws"):
        check_supersample_runs(np.zeros((0, 30, 5)), np.zeros((0, 30, 5, 2)), np.zeros((0, 5, 2)))


# --- Properties over random valid supersample run sets -------------------------------------------


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


def test_cli_and_api_refuse_the_same_designs(tmp_path, capsys):
    """Every refused design: the API raises ValueError, the CLI exits 2 with the same one line."""
    rng = np.random.default_rng(6)
    masks = rng.integers(0, 2, (2, 10, 6))
    masks[:, 0], masks[:, 1] = 0, 1
    labels = rng.integers(0, 2, (2, 6, 2))
    preds = _memorising(masks, labels)
    one_sided = masks.copy()
    one_sided[0, :, 3] = 0
    bad = [(one_sided, preds, labels), (masks, preds[:, :1], labels), (masks[:, :1], preds[:, :1], labels),
           (masks * 2, preds, labels), (masks, preds + 0.5, labels)]
    for i, (m, p, y) in enumerate(bad):
        with pytest.raises(ValueError) as info:
            bounds_from_runs(m, p, y)
        np.savez(tmp_path / f"bad{i}.npz", masks=m, predictions=p, labels=y)
        assert main(["bound", "cmi", "--runs", str(tmp_path / f"bad{i}.npz")]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"genbounds: error: {info.value}", (i, err)


def test_record_of_old_cmi_schema_is_refused_with_the_fix(tmp_path):
    from genbounds.experiments.records import load_records
    old = {"schema": "genbounds.record/1", "kind": "cmi", "config": {}, "results": []}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "pb.json").write_text(json.dumps(dict(old, kind="pac-bayes")))
    good, errors = load_records([tmp_path])
    assert [p.name for p, _ in good] == ["pb.json"]
    assert len(errors) == 1 and "re-run the same 'genbounds cmi' command" in errors[0]


def test_library_masks_are_never_one_sided():
    """The library's own design: antithetic pairs, so every pair has both values (exactly k2/2 of
    each for even k2) while every single mask stays uniform on {0,1}^n."""
    for k2 in (2, 3, 4, 30):
        masks = S.draw_masks(jax.random.PRNGKey(k2), k2, 500)
        ones = masks.sum(axis=0)
        assert masks.shape == (k2, 500) and ones.min() >= 1 and ones.max() <= k2 - 1, k2
        if k2 % 2 == 0:
            assert (ones == k2 // 2).all()
    first = S.draw_masks(jax.random.PRNGKey(0), 30, 4000)[0]
    assert abs(first.mean() - 0.5) < 4 * 0.5 / math.sqrt(4000)        # a single mask: fair bits
    with pytest.raises(ValueError, match="'k2' must be >= 2"):
        S.draw_masks(jax.random.PRNGKey(0), 1, 5)


def test_every_committed_pac_bayes_certificate_recomputes_from_its_recorded_inputs():
    """Delta audit over every family's records: each certificate's delta parts sum to at most its delta,
    and recomputing it from what it records (empirical risk, Monte Carlo count, KL, n, delta parts, prior
    grid, DP adjustment) gives exactly its value, so nothing it depends on is missing from the record."""
    from pathlib import Path

    from genbounds.bounds import Certificate

    root = Path(__file__).resolve().parents[1] / "paper_figures" / "results"
    seen, kinds = 0, set()
    for path in sorted(root.rglob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") != "pac-bayes":
            continue
        for r in record["results"]:
            found = [r["certificate"], r.get("certificate_weights")]
            found += [m["certificate"] for k, m in r.get("masks", {}).items() if k in ("magnitude", "thresholded")]
            for c in filter(None, found):
                cert = Certificate.from_dict(c)
                assert math.fsum(cert.delta_parts.values()) <= cert.delta, path.name
                assert union_minimum([cert]).value == cert.value, path.name
                kinds.add((c["details"].get("prior", {}).get("family", "gaussian"), "dp_prior" in c["details"]))
                seen += 1
    assert seen >= 50
    assert {("mask", False), ("matrix_normal", False), ("gaussian", True), ("gaussian", False)} <= kinds
