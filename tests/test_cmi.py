"""CMI: plug-in MI on hand tables, bound formulas, data-processing order, bring-your-own
runs, the synthetic experiment, resume, and sharded population training."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cmi_cases import memorising
from scipy.optimize import minimize

from genbounds.bounds import cmi as B
from genbounds.bounds import kl_bernoulli
from genbounds.cli import main
from genbounds.estimators.supersample import bounds_from_runs, loo_bounds_from_runs
from genbounds.estimators.supersample.mi import bootstrap_interval, encode_pairs, plugin_mi


def test_plugin_mi_hand_tables():
    assert plugin_mi(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == pytest.approx(math.log(2))
    assert plugin_mi(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])) == pytest.approx(0.0, abs=1e-15)
    u = np.array([0, 0, 0, 1, 1, 1])
    f = np.array([0, 1, 2, 0, 0, 1])
    # p(u) = 1/2 each; p(f) = 1/2, 1/3, 1/6; cells (0,0)=(0,1)=(0,2)=(1,1)=1/6, (1,0)=1/3.
    by_hand = (1 / 6) * math.log((1 / 6) / (1 / 4)) + (1 / 6) * math.log((1 / 6) / (1 / 12)) \
        + (1 / 3) * math.log((1 / 3) / (1 / 4))
    assert plugin_mi(u, f) == pytest.approx(by_hand, rel=1e-12)
    # Miller-Madow: m_uf = 5, m_u = 2, m_f = 3 -> subtract (4 - 1 - 2) / (2 * 6).
    assert plugin_mi(u, f, miller_madow=True) == pytest.approx(by_hand - 1 / 12, rel=1e-12)
    # Vectorised over leading axes, each slice estimated independently.
    stacked = plugin_mi(np.stack([u, u[::-1]]), np.stack([f, f]))
    assert stacked.shape == (2,) and stacked[0] == pytest.approx(by_hand)
    with pytest.raises(ValueError, match="same shape"):
        plugin_mi(u, f[:3])
    with pytest.raises(ValueError, match="'u'"):
        plugin_mi(u + 1, f)


def _random_runs(k1=3, k2=24, n=40, classes=3, seed=0, memorise=True):
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, 2, (k1, k2, n))
    labels = rng.integers(0, classes, (k1, n, 2))
    preds = np.where(rng.random((k1, k2, n, 2)) < 0.8, labels[:, None], rng.integers(0, classes, (k1, k2, n, 2)))
    if memorise:
        preds = np.where(masks[..., None] == np.arange(2), labels[:, None], preds)
    return masks, preds, labels


def test_data_processing_order_per_pair():
    masks, preds, labels = _random_runs(memorise=False)
    u = np.moveaxis(masks, 1, -1)
    loss = (preds != labels[:, None]).astype(int)
    mi_f = plugin_mi(u, np.moveaxis(encode_pairs(preds[..., 0], preds[..., 1], 3), 1, -1))
    mi_e = plugin_mi(u, np.moveaxis(encode_pairs(loss[..., 0], loss[..., 1], 2), 1, -1))
    mi_ld = plugin_mi(u, np.moveaxis(loss[..., 1] - loss[..., 0] + 1, 1, -1))
    assert np.all(mi_ld <= mi_e + 1e-12) and np.all(mi_e <= mi_f + 1e-12)
    assert np.any(mi_ld < mi_e - 1e-6) and np.any(mi_e < mi_f - 1e-6)   # not trivially equal
    res = bounds_from_runs(masks, preds, labels)
    for d in range(3):
        assert res["ldcmi"].per_draw[d] <= res["ecmi"].per_draw[d] + 1e-12
        assert res["ecmi"].per_draw[d] <= res["fcmi"].per_draw[d] + 1e-12


def test_bound_formulas_recomputed():
    mi = np.array([[0.1, 0.0, 0.3, 0.05]])
    assert B.samplewise_sqrt(mi)[0] == pytest.approx(np.mean(np.sqrt(2 * mi)))
    assert B.sqrt_cmi(2.0, 100) == pytest.approx(math.sqrt(0.04))
    # Both members' single-loss terms averaged per draw (never the per-draw minimum).
    both = (np.mean(2 * np.sqrt(2 * mi)) + np.mean(2 * np.sqrt(4 * mi))) / 2
    assert B.single_loss(mi, mi * 2)[0] == pytest.approx(both)
    # Binary kl: at the returned R, kl(L || (L + R)/2) = I_bar (R < 1 here).
    lhat, ibar = 0.05, float(mi.mean())
    r = float(B.binary_kl(lhat, mi)[0])
    assert float(kl_bernoulli(lhat, (lhat + r) / 2)) == pytest.approx(ibar, rel=1e-6)
    assert float(B.binary_kl(0.2, np.full((1, 4), 5.0))[0]) == 1.0      # capped, never 6.1
    assert B.fast_rate_closed_form(lhat, ibar) == pytest.approx(lhat + 4 * ibar + 4 * math.sqrt(ibar * lhat))
    with pytest.raises(ValueError, match="training error exactly 0"):
        B.interpolating(mi, np.array([0.0, 0.01]))
    assert B.interpolating(mi, np.zeros(3))[0] == pytest.approx(ibar / math.log(2))
    assert B.loo_interpolating(np.array([0.2]), 9)[0] == pytest.approx(0.2 / math.log(10))
    assert B.loo_sqrt(np.array([0.08]))[0] == pytest.approx(0.4)


@pytest.mark.parametrize("lhat,ibar", [(0.0, 0.01), (0.05, 0.02), (0.2, 0.005), (0.1, 0.1)])
def test_fast_rate_matches_a_direct_optimisation(lhat, ibar):
    """Independent SLSQP solve of min C1 L + I / C2 s.t. e^{2 C2} + e^{-2 C2 (C1 + 1)} <= 2."""
    cons = {"type": "ineq", "fun": lambda x: 2 - np.exp(2 * x[1]) - np.exp(-2 * x[1] * (x[0] + 1))}
    best = min(minimize(lambda x: x[0] * lhat + ibar / x[1], x0, method="SLSQP", constraints=[cons],
                        bounds=[(0, None), (1e-6, math.log(2) / 2)]).fun
               for x0 in ([0.5, 0.1], [2.0, 0.3], [0.1, 0.05]))
    ours = float(B.fast_rate(lhat, ibar)) - lhat
    assert best - 1e-6 <= ours <= best + 2e-3 * max(best, 1e-3)
    assert float(B.fast_rate(lhat, ibar)) <= float(B.fast_rate_closed_form(lhat, ibar)) + 1e-12
    assert float(B.fast_rate_variance(lhat, ibar, lhat**2)) <= float(B.fast_rate(lhat, ibar)) + 1e-12


def test_bounds_from_runs_shapes_and_errors():
    masks, preds, labels = _random_runs()
    res = bounds_from_runs(masks, preds, labels)
    for name in ("fcmi", "ecmi", "ldcmi", "single_loss", "binary_kl", "interpolating", "fast_rate"):
        assert name in res.bounds and res[name].applicable
        lo, hi = res[name].interval
        assert lo <= res[name].value <= hi and len(res[name].per_draw) == 3
    assert res.summary.train_error == 0.0
    with pytest.raises(ValueError, match="'predictions'"):
        bounds_from_runs(masks, preds[..., :1], labels)
    with pytest.raises(ValueError, match="'labels'"):
        bounds_from_runs(masks, preds, labels[:2])
    with pytest.raises(ValueError, match="'masks'"):
        bounds_from_runs(masks + 1, preds, labels)
    nonint = bounds_from_runs(*_random_runs(memorise=False))
    assert nonint["interpolating"].applicable is False


def test_loo_bounds_on_an_exact_table():
    """n+1 = 10 points; run r leaves out r and errs on it for r < 3 (held-out error p = 0.3),
    interpolates the rest. Then I = H(loss vector) = p ln 10 - (1-p) ln(1-p) exactly."""
    n1, p = 10, 0.3
    losses = np.zeros((1, n1, n1), dtype=int)
    for r in range(3):
        losses[0, r, r] = 1
    res = loo_bounds_from_runs(np.arange(n1)[None], losses)
    i_exact = p * math.log(n1) - (1 - p) * math.log(1 - p)
    assert res.summary.mean_mi == pytest.approx(i_exact)
    assert res["loo_interpolating"].value == pytest.approx(i_exact / math.log(n1))
    assert res["loo_interpolating"].value >= res.summary.test_error == p


def test_bootstrap_interval_covers_mean():
    x = np.array([0.1, 0.2, 0.3, 0.4])
    lo, hi = bootstrap_interval(x)
    assert lo <= x.mean() <= hi and 0.1 <= lo and hi <= 0.4


def test_every_cmi_number_is_labelled_an_estimate(tmp_path, capsys):
    rng = np.random.default_rng(3)
    masks = rng.integers(0, 2, (2, 20, 10))
    labels = rng.integers(0, 2, (2, 10, 2))
    res = bounds_from_runs(masks, memorising(masks, labels), labels)
    assert res.summary.kind == "estimate"
    assert all(b.kind == "estimate" and b.target in (None, "gap", "risk") for b in res.bounds.values())
    assert all(d["kind"] == "estimate" for d in res.to_dict().values())
    n1 = 6
    loo = loo_bounds_from_runs(np.arange(n1)[None], np.eye(n1, dtype=int)[None])
    assert loo.summary.kind == "estimate" and "estimate" in loo.summary.note
    np.savez(tmp_path / "runs.npz", masks=masks, predictions=memorising(masks, labels), labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "runs.npz")]) == 0
    assert "ESTIMATES, not certificates" in capsys.readouterr().out


@pytest.fixture(scope="module")
def synthetic_record(tmp_path_factory):
    from genbounds.experiments.cmi_runner import CMIConfig, run_cmi
    out = tmp_path_factory.mktemp("cmi")
    cfg = CMIConfig(n=(5, 15, 50), k1=3, k2=20, epochs=100)
    return cfg, out, run_cmi(cfg, out, progress=False, log=lambda s: None)


@pytest.mark.integration
def test_synthetic_bounds_above_gap_and_decreasing(synthetic_record):
    _, _, record = synthetic_record
    res = record["results"]
    assert [r["n"] for r in res] == [5, 15, 50]
    for r in res:
        gap = r["summary"]["gap"]
        for name in ("fcmi", "ecmi", "ldcmi", "single_loss", "fast_rate", "binary_kl"):
            b = r["bounds"][name]
            assert b["value"] - r["summary"]["train_error"] >= gap - 1e-12, (r["n"], name)
    for name in ("fcmi", "ecmi", "ldcmi"):
        vals = [r["bounds"][name]["value"] for r in res]
        assert vals[0] > vals[1] > vals[2], (name, vals)


@pytest.mark.integration
def test_cmi_resume_retrains_only_missing_chunks(synthetic_record):
    from genbounds.experiments.cmi_runner import run_cmi
    cfg, out, record = synthetic_record
    chunks = sorted((out / "runs" / cfg.digest()).glob("n15_draw1_*.npz"))
    assert len(chunks) == 1
    chunks[0].unlink()
    again = run_cmi(cfg, out, progress=False, log=lambda s: None)
    assert [r["runs_trained"] for r in again["results"]] == [0, 20, 0]
    for a, b in zip(record["results"], again["results"]):
        assert a["bounds"]["fcmi"]["value"] == b["bounds"]["fcmi"]["value"]


def test_cli_bound_cmi(tmp_path, capsys):
    masks, preds, labels = _random_runs()
    np.savez(tmp_path / "runs.npz", masks=masks, predictions=preds, labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "runs.npz"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for name in ("fcmi", "ecmi", "ldcmi", "single_loss", "binary_kl", "interpolating", "fast_rate"):
        assert "value" in data[name]
    assert main(["bound", "cmi", "--runs", str(tmp_path / "runs.npz")]) == 0
    assert "fcmi" in capsys.readouterr().out
    np.savez(tmp_path / "bad.npz", masks=masks, predictions=preds[:, :3], labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "bad.npz")]) == 2
    assert "'predictions'" in capsys.readouterr().err
    np.savez(tmp_path / "missing.npz", masks=masks)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "missing.npz")]) == 2
    assert "predictions, labels" in capsys.readouterr().err


SHARDED = textwrap.dedent("""
    import jax, numpy as np, optax
    from genbounds.estimators import nets, supersample as S
    from genbounds.estimators.data import Dataset
    assert jax.device_count() == 4, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6, 1, 1)).astype(np.float32); y = (x[:, 0, 0, 0] > 0).astype(np.int32)
    sup = S.draw_supersample(jax.random.PRNGKey(0), Dataset(x, y, 2, "t"), 30)
    masks = S.draw_masks(jax.random.PRNGKey(1), 10, 30)
    px, py, idx = S.supersample_runs(sup, masks)
    keys = jax.random.split(jax.random.PRNGKey(2), 10)
    net = nets.mlp((6, 1, 1), (16,), 2)
    cfg = S.TrainConfig(epochs=20, batch_size=16, optimizer=optax.adam(1e-2))
    a = S.train_population(net, keys, px, py, idx, cfg, progress=False)
    b = S.train_population(net, keys, px, py, idx, cfg, progress=False, devices=jax.devices()[:1])
    c = S.train_population(net, keys, px, py, idx, cfg, progress=False, chunk=4)
    assert a.shape == (10, 60)
    assert (a == b).all() and (a == c).all(), (a != b).sum()
    print("SHARDED-OK", (a == y[sup.indices.reshape(-1)]).mean())
""")


@pytest.mark.integration
def test_sharded_population_equals_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "SHARDED-OK" in out.stdout


@pytest.mark.integration
def test_leave_one_out_population_end_to_end():
    """All n+1 held-out choices enumerated and trained as one population; the LOO bounds come
    out of the same estimator and hold against the measured held-out error."""
    import jax
    import optax

    from genbounds.estimators import nets
    from genbounds.estimators import supersample as S
    from genbounds.estimators.data import Dataset

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4, 1, 1)).astype(np.float32)
    y = (x[:, 0, 0, 0] + 0.5 * x[:, 1, 0, 0] > 0).astype(np.int32)
    n = 19
    px, py, _ = S.draw_loo_supersample(jax.random.PRNGKey(0), Dataset(x, y, 2, "t"), n)
    held = S.loo_held_out(n)
    train_idx = S.loo_runs(held)
    assert train_idx.shape == (n + 1, n) and all(h not in row for h, row in zip(held, train_idx))
    preds = S.train_population(nets.mlp((4, 1, 1), (), 2), jax.random.split(jax.random.PRNGKey(1), n + 1),
                               px, py, train_idx, S.TrainConfig(epochs=100, batch_size=32, optimizer=optax.adam(0.05)),
                               progress=False)
    losses = (preds != py[None]).astype(int)[None]               # [1, n+1, n+1]
    res = loo_bounds_from_runs(held[None], losses)
    s = res.summary
    assert res["loo_sqrt"].value - s.train_error >= s.gap - 1e-12
    if res["loo_interpolating"].applicable:
        assert res["loo_interpolating"].value >= s.test_error


@pytest.mark.integration
def test_cli_leave_one_out_experiment_resumes_and_reports(tmp_path, capsys):
    """``genbounds cmi --loo``: all n+1 held-out runs per draw, LOO bounds above the measured gap,
    a resumed run retrains nothing, and the record renders in reports and figures."""
    out = tmp_path / "loo"
    argv = ["cmi", "--loo", "--n", "8", "16", "--k1", "2", "--epochs", "60", "--out", str(out),
            "--no-progress", "--format", "json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["n"] for r in rows] == [8, 16]
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["loo"] is True
    for r in record["results"]:
        s = r["summary"]
        assert s["runs"] == r["n"] + 1 and r["runs_trained"] == 2 * (r["n"] + 1)
        assert r["bounds"]["loo_sqrt"]["value"] - s["train_error"] >= s["gap"] - 1e-12
    with np.load(out / "runs_n16.npz") as z:
        assert z["held_out"].shape == (2, 17) and z["predictions"].shape == (2, 17, 17)
        assert (z["held_out"] == np.arange(17)).all()
    assert main(argv) == 0
    again = json.loads((out / "record.json").read_text())
    assert [r["runs_trained"] for r in again["results"]] == [0, 0]
    assert again["results"][1]["bounds"] == record["results"][1]["bounds"]
    capsys.readouterr()
    assert main(["report", str(out), "--format", "csv"]) == 0
    assert "loo_sqrt" in capsys.readouterr().out
    assert main(["figures", str(out), str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "cmi_vs_n_synthetic_linear_loo.png").exists()


def test_cli_bound_cmi_leave_one_out_runs(tmp_path, capsys):
    """``genbounds bound cmi`` reads leave-one-out runs (``held_out``) and checks their shapes."""
    rng = np.random.default_rng(3)
    k1, n = 2, 6
    labels = rng.integers(0, 2, size=(k1, n + 1))
    held = np.tile(np.arange(n + 1), (k1, 1))
    preds = np.repeat(labels[:, None], n + 1, axis=1)
    preds[0, 2, 2] ^= 1                                   # run 2 errs on its held-out point only
    np.savez(tmp_path / "loo.npz", held_out=held, predictions=preds, labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "loo.npz"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    direct = loo_bounds_from_runs(held, (preds != labels[:, None]).astype(np.int8))
    assert data["loo_sqrt"]["value"] == pytest.approx(direct["loo_sqrt"].value)
    assert data["summary"]["test_error"] == pytest.approx(1 / 14)
    assert data["loo_interpolating"]["value"] >= 1 / 14
    np.savez(tmp_path / "bad.npz", held_out=held, predictions=preds[:, :, :3], labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "bad.npz")]) == 2
    assert "'predictions'" in capsys.readouterr().err
    np.savez(tmp_path / "range.npz", held_out=held + 1, predictions=preds, labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "range.npz")]) == 2
    assert "'held_out'" in capsys.readouterr().err
