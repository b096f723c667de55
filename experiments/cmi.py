"""CMI experiment runner: supersample draws x masks, trained as vmapped populations.

For each n, each of k1 supersample draws and its k2 masks are trained as one population
(draw d uses the first n pairs of one supersample of size max(n) and the first n bits of
shared masks, so that curves over n differ by n, not by fresh draws)
(chunks of ``chunk`` runs); every finished (n, draw, chunk) is written atomically to
``OUT/runs/<config hash>/``, so an interrupted run restarted with the same command resumes
and loses nothing. Then :func:`estimators.cmi.bounds_from_runs` evaluates every bound.

With ``loo=True`` the experiment is leave-one-out (Haghifam et al. 2022): draw d is n+1
points (the first n+1 of one draw of max(n)+1), all n+1 held-out choices are enumerated as
one population, and :func:`estimators.cmi.loo_bounds_from_runs` evaluates the bounds; ``k2``
is not used. The n+1 runs of a draw share one seed (initialisation and minibatch order), so
training is a deterministic function of (points, U) given the draw's seed R, and the plug-in
MI over the n+1 equally likely values of U is the exact I(L; U | Z, R), not an estimate. The
LOO bounds hold conditionally on R (for each R the algorithm is deterministic, and R is
independent of the data), so averaging over draws of (Z, R) estimates them without MI bias.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.records import RunConfig

__all__ = ["CMIConfig", "run_cmi", "cmi_rows", "cmi_columns", "DEFAULT_CLASSES", "task_pool", "task_net"]

#: Binary tasks of the anchors: MNIST 4-vs-9 (Harutyunyan et al. 2021), Fashion-MNIST
#: pullover (2) vs coat (4).
DEFAULT_CLASSES = {"digits": (4, 9), "mnist-5k": (4, 9), "mnist": (4, 9), "fashion-mnist": (2, 4)}


@dataclass(frozen=True)
class CMIConfig(RunConfig):
    """Every setting of a supersample experiment (recorded verbatim)."""

    dataset: str = "synthetic"             # synthetic | digits | mnist-5k | mnist | fashion-mnist
    data_dir: str | None = None
    classes: tuple[int, int] | None = None   # negative, positive class (default per dataset)
    arch: str = "linear"                   # linear | mlp | cnn
    widths: tuple[int, ...] = (128,)
    n: tuple[int, ...] = (5, 10, 20, 30, 40, 50)
    k1: int = 5
    k2: int = 30
    epochs: int = 200
    batch: int = 128
    lr: float = 1e-2
    optimizer: str = "adam"
    synthetic_features: int = 5
    seed: int = 0
    chunk: int = 0                         # runs per saved chunk (0: all runs of one draw)
    miller_madow: bool = False
    loo: bool = False                      # leave-one-out: n+1 points, all n+1 held-out runs

    def __post_init__(self) -> None:
        checks = [
            (self.dataset in ("synthetic", *DEFAULT_CLASSES), "dataset", "synthetic, digits, mnist-5k, mnist "
             "or fashion-mnist"),
            (self.arch in ("linear", "mlp", "cnn"), "arch", "linear, mlp or cnn"),
            (len(self.n) > 0 and all(v >= 2 for v in self.n), "n", "a list of sizes >= 2"),
            (self.k1 >= 1, "k1", ">= 1"),
            (self.k2 >= 2, "k2", ">= 2"),
            (self.epochs >= 1, "epochs", ">= 1"),
        ]
        self._validate(checks)


def task_pool(cfg: CMIConfig):
    """All examples of the binary task (train and test splits pooled: the supersample's ghost
    halves are the test data)."""
    from estimators.data import Dataset, load

    if cfg.dataset == "synthetic":
        from sklearn.datasets import make_classification
        x, y = make_classification(n_samples=20000, n_features=cfg.synthetic_features,
                                   n_informative=cfg.synthetic_features, n_redundant=0, n_repeated=0,
                                   n_classes=2, n_clusters_per_class=1, class_sep=1.0, flip_y=0.0,
                                   random_state=cfg.seed)
        return Dataset(x.astype(np.float32).reshape(len(y), -1, 1, 1), y.astype(np.int32), 2, "synthetic")
    neg, pos = cfg.classes or DEFAULT_CLASSES[cfg.dataset]
    tt = load(cfg.dataset, cfg.data_dir)
    x = np.concatenate([tt.train.x, tt.test.x])
    y = np.concatenate([tt.train.y, tt.test.y])
    keep = np.isin(y, (neg, pos))
    return Dataset(x[keep], (y[keep] == pos).astype(np.int32), 2, f"{cfg.dataset}-{neg}v{pos}")


def task_net(cfg: CMIConfig, pool):
    """The experiment's network for ``pool`` (CNNs with the matmul convolution, for populations)."""
    from estimators import nets
    shape = pool.x.shape[1:]
    if cfg.arch == "linear":
        return nets.mlp(shape, (), 2)
    if cfg.arch == "mlp":
        return nets.mlp(shape, cfg.widths, 2)
    return nets.cnn(shape, 2, conv="matmul")      # see estimators.supersample.TrainConfig


def _save_npz(path: Path, **arrays) -> None:
    from experiments.records import write_atomic
    write_atomic(path, lambda f: np.savez(f, **arrays), binary=True)


def run_cmi(cfg: CMIConfig, out: str | os.PathLike, *, progress: bool = True,
            log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the experiment; returns the written record."""
    import jax
    from tqdm import tqdm

    from estimators import supersample as S
    from estimators.cmi import bounds_from_runs, loo_bounds_from_runs, loo_losses
    from experiments.records import new_record, write_json_atomic, write_record
    from experiments.report import format_number

    out = Path(out)
    runs_dir = out / "runs" / cfg.digest()
    write_json_atomic(runs_dir / "config.json", cfg.to_dict())
    t_start = time.perf_counter()
    pool = task_pool(cfg)
    net = task_net(cfg, pool)
    train_cfg = S.TrainConfig(cfg.epochs, cfg.batch, cfg.lr, cfg.optimizer, map_batch=S.map_batch_for(cfg.arch))
    log(f"{pool.name}: {len(pool)} examples; {net.name}; n = {list(cfg.n)}; k1 = {cfg.k1}, "
        + ("leave-one-out (n+1 runs per draw)" if cfg.loo else f"k2 = {cfg.k2}"))
    total = sum(cfg.k1 * (n + 1 if cfg.loo else cfg.k2) for n in cfg.n)
    n_max = max(cfg.n)
    results, timings = [], {}
    key = jax.random.PRNGKey(cfg.seed)
    with tqdm(total=total, desc="runs", disable=not progress) as bar:
        for n in cfg.n:
            t_n = time.perf_counter()
            trained = 0
            u_all, preds_all, labels_all = [], [], []
            for draw in range(cfg.k1):
                # Common random numbers across n: draw d for n is the first n pairs (n+1 points)
                # of one draw of size max(n), with the first n bits of shared masks.
                kd = jax.random.fold_in(key, draw)
                if cfg.loo:
                    x, y, indices = S.draw_loo_supersample(jax.random.fold_in(kd, 0), pool, n_max)
                    px, py, indices = x[: n + 1], y[: n + 1], indices[: n + 1]
                    u = S.loo_held_out(n)                           # run r leaves out point r
                    idx, labels = S.loo_runs(u), py
                else:
                    full = S.draw_supersample(jax.random.fold_in(kd, 0), pool, n_max)
                    sup = S.Supersample(full.x[:n], full.y[:n], full.indices[:n])
                    u = S.draw_masks(jax.random.fold_in(kd, 1), cfg.k2, n_max)[:, :n]
                    px, py, idx = S.supersample_runs(sup, u)
                    labels, indices = sup.y, sup.indices
                runs = idx.shape[0]
                if cfg.loo:     # one seed for all n+1 runs: the MI over the enumerated U is exact
                    keys = np.repeat(np.asarray(jax.random.fold_in(kd, 2))[None], runs, axis=0)
                else:
                    keys = jax.random.split(jax.random.fold_in(kd, 2), runs)
                chunk = cfg.chunk or runs
                parts = []
                for c0 in range(0, runs, chunk):
                    f = runs_dir / f"n{n}_draw{draw}_runs{c0}-{min(runs, c0 + chunk)}.npz"
                    if f.exists():
                        with np.load(f) as z:
                            parts.append(z["predictions"])
                    else:
                        sl = slice(c0, c0 + chunk)
                        preds = S.train_population(net, keys[sl], px, py, idx[sl], train_cfg, progress=False)
                        preds = preds.reshape(-1, *labels.shape)
                        _save_npz(f, predictions=preds, masks=u[sl], labels=labels, indices=indices)
                        parts.append(preds)
                        trained += preds.shape[0]
                    bar.update(parts[-1].shape[0])
                u_all.append(u)
                preds_all.append(np.concatenate(parts))
                labels_all.append(labels)
            u_a, preds_a, labels_a = np.stack(u_all), np.stack(preds_all), np.stack(labels_all)
            if cfg.loo:
                _save_npz(out / f"runs_n{n}.npz", held_out=u_a, predictions=preds_a, labels=labels_a)
                res = loo_bounds_from_runs(u_a, loo_losses(preds_a, labels_a))
            else:
                _save_npz(out / f"runs_n{n}.npz", masks=u_a, predictions=preds_a, labels=labels_a)
                res = bounds_from_runs(u_a, preds_a, labels_a, miller_madow=cfg.miller_madow)
            summary = res.pop("summary")
            seconds = time.perf_counter() - t_n
            timings[f"n{n}_s"] = seconds
            results.append({"n": n, "summary": summary, "bounds": res, "runs_trained": trained,
                            "seconds": seconds})
            name = "loo_sqrt" if cfg.loo else "fcmi"
            log(f"n = {n}: train {summary['train_error']:.4f}, test {summary['test_error']:.4f}, "
                f"{name} bound estimate {format_number(res[name]['value'], 4, upper=True)} "
                f"({trained} runs trained, {seconds:.0f} s)")
    timings["total_s"] = time.perf_counter() - t_start
    record = new_record("cmi", cfg.to_dict(), cfg.seed, results, timings)
    write_record(out / "record.json", record)
    return record


SHOWN = ("fcmi", "ecmi", "ldcmi", "binary_kl", "interpolating", "fast_rate")
LOO_SHOWN = ("loo_sqrt", "loo_interpolating")


def shown_bounds(record: dict) -> tuple[str, ...]:
    """The bounds a table or figure shows for a CMI record (supersample or leave-one-out)."""
    return LOO_SHOWN if record.get("config", {}).get("loo") else SHOWN


def cmi_rows(record: dict) -> list[dict]:
    rows = []
    for r in record["results"]:
        s = r["summary"]
        row = {"n": r["n"], "train_error": s["train_error"], "test_error": s["test_error"], "gap": s["gap"]}
        for name in shown_bounds(record):
            row[name] = r["bounds"][name]["value"] if r["bounds"][name].get("applicable") else None
        rows.append(row)
    return rows


def cmi_columns(record: dict):
    from experiments.report import Column
    cols = [Column("n", "n"), Column("train_error", "train err"), Column("test_error", "test err"),
            Column("gap", "gap")]
    return cols + [Column(name, name, upper=True) for name in shown_bounds(record)]
