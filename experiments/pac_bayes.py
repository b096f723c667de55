"""PAC-Bayes experiment runner: train a prior and posteriors, certify, record, plot.

One :class:`PacBayesConfig` describes a run; :func:`run` executes it with checkpoints in
``OUT/checkpoints/``: the prior under a hash of the settings it depends on (so runs that differ
only in posterior settings share it), each posterior after every epoch and each finished
objective under a hash of the whole config, so that the same command after an interruption
resumes where it stopped.
``genbounds quickstart`` is :data:`QUICKSTART`; ``genbounds pac-bayes`` takes every field
as a flag.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.records import RunConfig

__all__ = ["PacBayesConfig", "QUICKSTART", "run", "all_certificates", "summary_rows", "summary_columns", "plot_run"]


@dataclass(frozen=True)
class PacBayesConfig(RunConfig):
    """Every setting of a PAC-Bayes run (recorded verbatim in the result record)."""

    dataset: str = "digits"
    data_dir: str | None = None
    binary: tuple[int, ...] | None = None     # classes relabelled 1 (e.g. 5 6 7 8 9)
    arch: str = "mlp"                          # mlp | cnn
    widths: tuple[int, ...] = (256, 256)       # MLP hidden widths
    prior: str = "data"                        # data | init
    alpha: float = 0.5                         # fraction of the training set for the prior
    objectives: tuple[str, ...] = ("quad",)
    family: str = "gaussian"
    prior_scale: float = 0.02                  # prior std (fixed), or initial value if learned
    learn_prior_scale: bool = False            # learn it, then round to the DR17 grid (union bound)
    grid_b: float = 100.0
    grid_c: float = 0.1
    prior_epochs: int = 100                    # deterministic training (prior mean / DR17 stage 1)
    prior_lr: float = 0.05
    prior_batch: int = 64
    prior_optimizer: str = "sgd"
    epochs: int = 50                           # posterior training
    lr: float = 0.01
    batch: int = 64
    optimizer: str = "sgd"
    momentum: float = 0.95
    shared_sample: bool = False                # one weight draw per minibatch (faster CNN training)
    p_min: float = 1e-4
    delta: float = 0.025
    mc_delta: float = 0.01
    mc_r: int = 100                            # method (b): repetitions per example
    mc_m: int = 1000                           # method (a): weight draws (0 = skip)
    seed: int = 0

    #: Settings the prior depends on: runs that share them share one trained prior.
    PRIOR_FIELDS = ("dataset", "data_dir", "binary", "arch", "widths", "prior", "alpha", "prior_epochs",
                    "prior_lr", "prior_batch", "prior_optimizer", "seed")

    def prior_digest(self) -> str:
        return self.digest(self.PRIOR_FIELDS)

    def __post_init__(self) -> None:
        from estimators.data import DATASETS
        from estimators.objectives import OBJECTIVES
        from estimators.snn import FAMILIES
        checks = [
            (self.dataset in DATASETS, "dataset", f"one of {DATASETS}"),
            (self.arch in ("mlp", "cnn"), "arch", "'mlp' or 'cnn'"),
            (self.prior in ("data", "init"), "prior", "'data' or 'init'"),
            (0.0 < self.alpha < 1.0 or self.prior == "init", "alpha", "in (0, 1)"),
            (len(self.objectives) > 0 and all(o in OBJECTIVES for o in self.objectives),
             "objectives", f"from {OBJECTIVES}"),
            (self.family in FAMILIES, "family", f"one of {FAMILIES}"),
            (self.prior_scale > 0, "prior_scale", "> 0"),
            (0 < self.delta < 1 and 0 < self.mc_delta < 1, "delta", "in (0, 1)"),
            (self.delta + self.mc_delta < 1, "mc_delta", f"such that delta + mc_delta < 1 (delta = {self.delta})"),
            (self.mc_r >= 1 and self.mc_m >= 0, "mc_r", ">= 1 (and mc_m >= 0)"),
            (self.epochs >= 0 and self.prior_epochs >= 0, "epochs", ">= 0"),
        ]
        self._validate(checks)


#: The README's main job: 10-class digits, MLP, prior on half the data, three objectives.
QUICKSTART = PacBayesConfig(objectives=("quad", "seeger", "classic"))


# ---------------------------------------------------------------------------------------
# Checkpoints


def _save_pickle(path: Path, obj: Any) -> None:
    import jax

    from experiments.records import write_atomic
    write_atomic(path, lambda f: pickle.dump(jax.device_get(obj), f), binary=True)


def _load_pickle(path: Path) -> Any | None:
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return pickle.load(f)


# ---------------------------------------------------------------------------------------


def _net(cfg: PacBayesConfig, data):
    from estimators import nets
    shape = data.train.x.shape[1:]
    k = data.train.num_classes
    return nets.mlp(shape, cfg.widths, k) if cfg.arch == "mlp" else nets.cnn(shape, k)


def run(cfg: PacBayesConfig, out: str | os.PathLike, *, progress: bool = True,
        log: Callable[[str], None] = print) -> dict:
    """Run ``cfg``, resuming from checkpoints in ``out``; returns the written record."""
    import jax

    from bounds import Certificate, union_minimum
    from estimators import certify, snn, train
    from estimators import data as data_mod
    from experiments.records import new_record, write_json_atomic, write_record
    from experiments.report import format_number

    out = Path(out)
    ckpt = out / "checkpoints" / cfg.digest()
    write_json_atomic(ckpt / "config.json", cfg.to_dict())
    t_start = time.perf_counter()
    data = data_mod.load(cfg.dataset, cfg.data_dir, binary=cfg.binary, seed=cfg.seed)
    net = _net(cfg, data)
    key = jax.random.PRNGKey(cfg.seed)
    k_init, k_split, k_prior, k_post, k_cert, k_test = jax.random.split(key, 6)
    n = len(data.train)
    log(f"{cfg.dataset}: {n} training / {len(data.test)} test examples, {data.train.num_classes} classes; "
        f"{net.name}; prior: {cfg.prior}")

    # --- Prior ------------------------------------------------------------------------
    prior_file = out / "checkpoints" / f"prior-{cfg.prior_digest()}.pkl"
    saved = _load_pickle(prior_file)
    timings: dict[str, float] = {}
    if saved is not None:
        prior_mean, prior_idx, sgd_params = saved["mean"], saved["indices"], saved["sgd"]
        log("resumed: prior from checkpoint")
    else:
        t0 = time.perf_counter()
        init = net.init(k_init)
        if cfg.prior == "data":
            perm = np.asarray(jax.random.permutation(k_split, n))
            prior_idx = np.sort(perm[: int(round(cfg.alpha * n))])
            prior_mean = train.train_deterministic(
                net, init, data.train.take(prior_idx), key=k_prior, epochs=cfg.prior_epochs,
                batch_size=cfg.prior_batch, optimizer=cfg.prior_optimizer, lr=cfg.prior_lr,
                progress=progress, desc="prior")
            sgd_params = prior_mean
        else:   # DR17: prior mean = random init; posterior starts from SGD on all data
            prior_idx = np.zeros(0, dtype=np.int64)
            prior_mean = init
            sgd_params = train.train_deterministic(
                net, init, data.train, key=k_prior, epochs=cfg.prior_epochs, batch_size=cfg.prior_batch,
                optimizer=cfg.prior_optimizer, lr=cfg.prior_lr, progress=progress, desc="sgd")
        timings["prior_s"] = time.perf_counter() - t0
        _save_pickle(prior_file, {"mean": prior_mean, "indices": prior_idx, "sgd": sgd_params})
    prior = snn.Prior(prior_mean, cfg.prior_scale, cfg.family, prior_idx,
                      {"seed": cfg.seed, "alpha": cfg.alpha if cfg.prior == "data" else 0.0})
    n_bound = n - prior.n_data
    prior_test = certify.error_rate(net, sgd_params, data.test)
    log(f"{'prior' if cfg.prior == 'data' else 'SGD'} net test error {prior_test:.4f}; "
        f"bound set {n_bound} examples, prior data {prior.n_data}")

    # --- Posteriors ---------------------------------------------------------------------
    results = []
    for obj in cfg.objectives:
        done = ckpt / f"{obj}.result.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            log(f"resumed: {obj} already finished")
            continue
        t0 = time.perf_counter()
        state_file = ckpt / f"{obj}.state.pkl"
        saved = _load_pickle(state_file)
        state, start, history = (None, 0, []) if saved is None else (
            saved["state"], saved["epoch"], saved["history"])
        if saved is not None:
            log(f"resumed: {obj} from epoch {start}")

        def on_epoch(epoch, st, rec, obj=obj, history=history, state_file=state_file):
            history.append(rec)
            _save_pickle(state_file, {"state": st, "epoch": epoch, "history": history})

        post0 = snn.init_posterior(sgd_params, cfg.prior_scale)
        state, _ = train.train_posterior(
            net, post0, prior, data.train, key=jax.random.fold_in(k_post, zlib.crc32(obj.encode())),
            n_bound=n_bound, objective_name=obj, delta=cfg.delta, epochs=cfg.epochs, batch_size=cfg.batch,
            optimizer=cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum, p_min=cfg.p_min,
            learn_prior_scale=cfg.learn_prior_scale, independent=not cfg.shared_sample, progress=progress,
            state=state, start_epoch=start,
            on_epoch=on_epoch, desc=obj)
        t_train = time.perf_counter() - t0
        post = snn.Posterior(state.trainable["mean"], state.trainable["rho"])
        learned = (float(np.exp(np.asarray(state.trainable["log_prior_scale"])))
                   if cfg.learn_prior_scale else None)
        grid = (cfg.grid_b, cfg.grid_c) if cfg.learn_prior_scale else None
        details = {"objective": obj, "dataset": cfg.dataset, "arch": net.name, "seed": cfg.seed,
                   "config_digest": cfg.digest()}
        cert_b, mc_b = certify.certify(net, post, prior, data.train, key=k_cert, method="independent",
                                       r=cfg.mc_r, delta=cfg.delta, mc_delta=cfg.mc_delta,
                                       prior_scale=learned, prior_grid=grid, details=details)
        entry: dict[str, Any] = {
            "objective": obj, "certificate": cert_b.to_dict(), "mc": mc_b,
        }
        if cfg.mc_m > 0:
            cert_a, mc_a = certify.certify(net, post, prior, data.train, key=jax.random.fold_in(k_cert, 1),
                                           method="weights", m=cfg.mc_m, delta=cfg.delta,
                                           mc_delta=cfg.mc_delta, prior_scale=learned, prior_grid=grid,
                                           details=details)
            entry["certificate_weights"] = cert_a.to_dict()
            entry["mc_weights"] = mc_a
        test_b = certify.mc_independent(net, post, cfg.family, data.test, r=10, key=k_test)
        entry.update({
            "test_error_stochastic": test_b["zero_one"],
            "test_error_mean": certify.error_rate(net, post.mean, data.test),
            "prior_test_error": prior_test,
            "kl_over_n": cert_b.kl / cert_b.n_bound,
            "train_seconds": t_train,
            "certify_seconds": mc_b["seconds"],
            "history": history,
        })
        Certificate.from_dict(entry["certificate"])  # re-validated before it is stored
        write_json_atomic(done, entry)
        results.append(entry)
        log(f"{obj}: certificate {format_number(cert_b.value, 4, upper=True)} (stochastic test error "
            f"{entry['test_error_stochastic']:.4f}), {t_train:.0f} s training")

    timings["total_s"] = time.perf_counter() - t_start
    record = new_record("pac-bayes", cfg.to_dict(), cfg.seed, results, timings)
    candidates = all_certificates(record)
    if len(candidates) > 1:
        best = union_minimum([c for _, c in candidates], [label for label, _ in candidates])
        record["best"] = best.to_dict()
    write_record(out / "record.json", record)
    return record


def all_certificates(record: dict) -> list[tuple[str, Any]]:
    """Every certificate of a PAC-Bayes record with a label: "quad (b)", "quad (a)", ..."""
    from bounds import Certificate
    out = []
    for r in record["results"]:
        out.append((f"{r['objective']} (b)", Certificate.from_dict(r["certificate"])))
        if r.get("certificate_weights"):
            out.append((f"{r['objective']} (a)", Certificate.from_dict(r["certificate_weights"])))
    return out


def summary_rows(record: dict) -> list[dict]:
    """One row per objective: certificates, test errors, KL/n."""
    rows = []
    for r in record["results"]:
        c = r["certificate"]
        row = {
            "objective": r["objective"],
            "certificate": c["value"],
            "mc_risk": c["emp_risk"],
            "certificate_weights": r.get("certificate_weights", {}).get("value"),
            "test_error": r["test_error_stochastic"],
            "test_error_mean": r["test_error_mean"],
            "kl_over_n": r["kl_over_n"],
            "n_bound": c["n_bound"],
            "n_prior": c["n_prior"],
            "vacuous": c["vacuous"],
        }
        rows.append(row)
    return rows


def summary_columns():
    from experiments.report import Column
    return [
        Column("objective", "objective"),
        Column("certificate", "certificate (b)", upper=True),
        Column("certificate_weights", "certificate (a)", upper=True),
        Column("mc_risk", "MC risk (b)"),
        Column("test_error", "test err (stoch.)"),
        Column("test_error_mean", "test err (mean)"),
        Column("kl_over_n", "KL/n", digits=5),
        Column("n_bound", "n bound"),
        Column("n_prior", "n prior"),
    ]


def plot_run(record: dict, path: str | os.PathLike) -> Path:
    """Certificates next to test errors per objective, and the training objective per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary_rows(record)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    x = np.arange(len(rows))
    bars = [("certificate", "certificate (b): per-example draws"),
            ("certificate_weights", "certificate (a): weight draws"),
            ("test_error", "test error (stochastic)"),
            ("test_error_mean", "test error (posterior mean)")]
    width = 0.8 / len(bars)
    for i, (key, label) in enumerate(bars):
        vals = [r[key] if r[key] is not None else np.nan for r in rows]
        ax1.bar(x + (i - (len(bars) - 1) / 2) * width, vals, width, label=label)
    ax1.set_xticks(x, [r["objective"] for r in rows])
    ax1.set_ylabel("0-1 risk")
    cfg = record["config"]
    ax1.set_title(f"{cfg['dataset']}, {cfg['arch']}, {cfg['prior']} prior")
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    for r in record["results"]:
        h = r.get("history") or []
        if h:
            ax2.plot([e["epoch"] for e in h], [e["objective"] for e in h], label=r["objective"])
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training objective (bound on surrogate)")
    ax2.set_title("posterior training")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
