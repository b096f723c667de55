"""Langevin-dynamics experiment: bound estimates along the trajectory against the measured gap.

For each of ``k1`` outer draws (the conditioning of both bounds: n - 1 shared training points and
one pair (Z_{J,1}, Z_{J,2}) drawn from the binary task's pool, plus a test set from the rest), a
population of ``k2`` full-batch Langevin runs (:func:`genbounds.estimators.langevin.pair_population`)
trains on the shared points plus one pair member, U_J alternating (antithetic), each run from its
own initialisation and noise. At every checkpoint the record holds, with 95% bootstrap intervals
over outer draws:

* ``haghifam_ld`` (Haghifam et al. 2020, Bayes hypothesis test; full batch only) and ``negrea_loo``
  (Negrea et al. 2019, leave-one-out, the trained pair member held out, forecast from the n - 1
  shared points; with ``batch`` = b, SGLD, the forecast error in expectation over the batch),
  each :func:`genbounds.bounds.haghifam_ld_bound` / :func:`genbounds.bounds.negrea_bound` of the
  statistics up to that step: bound *estimates* on E[test error - training error] (0-1 loss);
* the measured training error, test error and gap.

Where the expectations sit, as in the theorems: both Langevin bounds are E_C sqrt(E^C[...]) with
C the conditioning (Negrea: the n - 1 shared points S_J; Haghifam: those and the pair, with
U_{-J}), so each outer draw's k2 runs (held-out member / U_J, initialisation, noise, batches) are
averaged inside the square root and the per-draw roots are averaged over draws.

The k2 runs of a draw are sharded over the local devices along a ``"pop"`` mesh axis (as many
devices as divide k2; each run stays on one device, so the statistics do not depend on the device
count). With ``algorithm="sgd"`` the runs are plain SGD (``batch`` > 0, no noise) on n points (the shared
ones plus the first pair member), and the record holds Neu et al. (2021)'s Theorem 1 at the last
step for each perturbation scale of ``sigmas`` (fixed before the runs; the population gradient is
estimated on ``n_heldout`` further points of the pool, never the training set). That theorem has
no conditioning: its expectations over the training set and SGD's randomness sit inside the
square root (and the absolute value of the value-sensitivity term), so the statistics of every run
of every draw are pooled before the root, and the interval bootstraps draws of the pooled bound. Taking the
smallest over the grid afterwards is a choice after seeing the estimates (biased low); the record
keeps every scale.

Each finished outer draw is saved to ``OUT/runs/<config hash>/draw-<d>.npz``; rerunning
resumes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from ..bounds import haghifam_ld_bound, hypothesis_llr, negrea_bound, neu_sgd_bound, wrong_member_weight
from ..bounds.iterative import neu_information
from ..estimators import langevin as L
from ..estimators import nets
from ..estimators.data import BINARY_CLASSES, binary_task
from ..estimators.supersample.mi import bootstrap_interval
from .config import RunConfig
from .records import new_record, write_atomic, write_json_atomic, write_record

__all__ = ["LangevinConfig", "run_langevin_experiment", "LANGEVIN_BOUNDS"]

#: The bounds a Langevin record holds, by name.
LANGEVIN_BOUNDS = ("haghifam_ld", "negrea_loo")


@dataclass(frozen=True)
class LangevinConfig(RunConfig):
    """Every setting of a Langevin-dynamics experiment (recorded verbatim)."""

    dataset: str = "mnist-5k"
    data_dir: str | None = None
    classes: tuple[int, int] | None = None
    widths: tuple[int, ...] = (100,)
    n: int = 400
    n_test: int = 500
    steps: int = 300
    every: int = 50
    k1: int = 5
    k2: int = 8
    eta0: float = 0.05                      # step size eta_t = eta0 decay^floor(t / every_eta)
    decay: float = 0.95
    every_eta: int = 50
    v0: float = 1e-4                        # noise variance v_t = v_inf + (v0 - v_inf) exp(-rate floor(t / every_v))
    v_inf: float = 1e-6
    rate: float = 0.5
    every_v: int = 50
    batch: int = 0                          # 0: full-batch Langevin dynamics; b > 0: SGLD on batches of b
    algorithm: str = "langevin"             # langevin | sgd (Neu et al. 2021, needs batch > 0)
    sigmas: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)   # sgd: perturbation scales (a grid fixed in advance)
    n_heldout: int = 200                    # sgd: points for the population gradient
    mc: int = 4                             # sgd: Gaussian draws per expectation over the perturbation
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.dataset in BINARY_CLASSES, "dataset", f"one of {tuple(BINARY_CLASSES)}"),
            (self.n >= 3 and self.n_test >= 1, "n", ">= 3 (and n_test >= 1)"),
            (self.every >= 1 and self.steps >= self.every and self.steps % self.every == 0, "steps",
             f"a positive multiple of every = {self.every}"),
            (self.k1 >= 1, "k1", ">= 1"),
            (self.k2 >= 2 and self.k2 % 2 == 0, "k2", "an even number >= 2 (both values of U_J, antithetic)"),
            (self.eta0 > 0 and 0 < self.decay <= 1 and self.every_eta >= 1, "eta0", "> 0 (decay in (0, 1])"),
            (self.v0 > 0 and self.v_inf > 0 and self.rate >= 0 and self.every_v >= 1, "v0", "> 0 (and v_inf > 0)"),
            (0 <= self.batch <= self.n, "batch", f"in [0, n = {self.n}] (0: full batch)"),
            (self.algorithm in ("langevin", "sgd"), "algorithm", "'langevin' or 'sgd'"),
            (self.algorithm != "sgd" or self.batch > 0, "batch", "> 0 with algorithm='sgd' (minibatch SGD)"),
            (len(self.sigmas) > 0 and all(s > 0 for s in self.sigmas) and self.mc >= 1 and self.n_heldout >= 1,
             "sigmas", "positive numbers (and mc, n_heldout >= 1)"),
        ]
        self._validate(checks)

    def step_size(self, t):
        """eta_t = eta0 decay^floor(t / every_eta) for step indices ``t`` (NumPy or JAX integers)."""
        return self.eta0 * self.decay ** (t // self.every_eta)

    def schedule(self) -> L.Schedule:
        return L.staircase_schedule(self.eta0, self.decay, self.every_eta, self.v0, self.v_inf, self.rate,
                                    self.every_v)


def _draw(cfg: LangevinConfig, pool, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outer draw d: indices of the n - 1 shared points, the pair, the test points and (sgd) the
    held-out points for the population gradient."""
    need = cfg.n + 1 + cfg.n_test + (cfg.n_heldout if cfg.algorithm == "sgd" else 0)
    if need > len(pool):
        extra = " + n_heldout" if cfg.algorithm == "sgd" else ""
        raise ValueError(f"argument 'n': n + 1 + n_test{extra} = {need} exceeds the {len(pool)} examples of "
                         f"{pool.name}")
    perm = np.random.default_rng([cfg.seed, d]).permutation(len(pool))
    test_end = cfg.n + 1 + cfg.n_test
    return perm[: cfg.n - 1], perm[cfg.n - 1: cfg.n + 1], perm[cfg.n + 1: test_end], perm[test_end: need]


def _population_mesh(runs: int) -> Mesh:
    """A ``"pop"`` mesh over the largest number of local devices that divides ``runs``."""
    devices = jax.local_devices()
    count = max(d for d in range(1, len(devices) + 1) if runs % d == 0)
    return Mesh(np.array(devices[:count]), ("pop",))


def _neu_pooled(cfg: LangevinConfig, eta: np.ndarray, draws: list[dict], g: int) -> float:
    """Neu et al.'s Theorem 1 at ``cfg.sigmas[g]`` from the statistics of every run of every draw,
    pooled before the square root and the absolute value, as in the theorem (its expectations are
    over the training set and SGD's randomness together)."""
    return neu_sgd_bound(eta, np.full(cfg.steps, cfg.sigmas[g]), np.stack([d["sensitivity"][:, :, g] for d in draws]),
                         np.stack([d["variance"] for d in draws]), cfg.n,
                         value_sensitivity_gap=np.stack([d["value_test"][:, g] - d["value_train"][:, g]
                                                         for d in draws]))


def _bootstrap_pooled(statistic: Callable[[list[dict]], float], draws: list[dict], *, level: float = 0.95,
                      resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval over outer draws of a statistic of the pooled draws (resampled
    with replacement; the same resampling as :func:`bootstrap_interval`, for a nonlinear statistic)."""
    if len(draws) == 1:
        value = statistic(draws)
        return value, value
    rng = np.random.default_rng(seed)
    values = [statistic([draws[i] for i in idx]) for idx in rng.integers(0, len(draws), (resamples, len(draws)))]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _sgd_bounds(cfg: LangevinConfig, draws: list[dict]) -> list[dict]:
    """Neu et al.'s Theorem 1 at the last step, per perturbation scale, from the statistics pooled over
    draws (:func:`_neu_pooled`), with a bootstrap interval over draws; the record also keeps each
    draw's information sum and value-sensitivity gap (the pooled inputs, not per-draw bounds)."""
    eta = cfg.step_size(np.arange(cfg.steps)).astype(np.float64)
    train = np.array([d["train_error"].mean() for d in draws])
    test = np.array([d["test_error"].mean() for d in draws])
    bounds = {}
    for g, sigma in enumerate(cfg.sigmas):
        value = _neu_pooled(cfg, eta, draws, g)
        info = [neu_information(eta, np.full(cfg.steps, sigma), d["sensitivity"][:, :, g], d["variance"])
                for d in draws]
        gaps = [float(np.mean(d["value_test"][:, g] - d["value_train"][:, g])) for d in draws]
        bounds[f"neu_sgd_sigma{sigma:g}"] = {
            "value": value, "interval": list(_bootstrap_pooled(lambda ds, g=g: _neu_pooled(cfg, eta, ds, g), draws)),
            "per_draw_information": info, "per_draw_value_gap": gaps, "target": "gap", "kind": "estimate",
            "vacuous": bool(value >= 1.0), "sigma": sigma}
    return [{"step": cfg.steps, "eta": float(eta[-1]), "beta": None, "train_error": float(train.mean()),
             "test_error": float(test.mean()), "gap": float((test - train).mean()),
             "gap_interval": list(bootstrap_interval(test - train)), "bounds": bounds}]


def _bounds_at(cfg: LangevinConfig, draws: list[dict]) -> list[dict]:
    """Per checkpoint: every bound's mean over outer draws with its interval, and the errors."""
    eta, beta = draws[0]["eta"].astype(np.float64), draws[0]["beta"].astype(np.float64)
    xi = np.stack([d["xi_sq"] for d in draws]).astype(np.float64)            # [k1, k2, T]
    dot = np.stack([d["noise_dot"] for d in draws]).astype(np.float64)
    loo = np.stack([d["loo_sq"] for d in draws]).astype(np.float64)
    theta = wrong_member_weight(hypothesis_llr(beta, eta, cfg.n, xi, dot))
    rows = []
    for c in range(cfg.steps // cfg.every):
        s = (c + 1) * cfg.every
        train = np.array([d["train_error"][:, c].mean() for d in draws])
        test = np.array([d["test_error"][:, c].mean() for d in draws])
        per = {"negrea_loo": negrea_bound(eta[:s] * beta[:s], loo[..., :s], n_heldout=1)}
        if cfg.batch in (0, cfg.n):        # Haghifam et al.'s Langevin bound is for full-batch dynamics only
            per["haghifam_ld"] = haghifam_ld_bound(eta[:s] * beta[:s], theta[..., :s], xi[..., :s], cfg.n)
        rows.append({
            "step": s, "eta": float(eta[s - 1]), "beta": float(beta[s - 1]),
            "train_error": float(train.mean()), "test_error": float(test.mean()),
            "gap": float((test - train).mean()), "gap_interval": list(bootstrap_interval(test - train)),
            "bounds": {k: {"value": float(v.mean()), "interval": list(bootstrap_interval(v)),
                           "per_draw": [float(x) for x in v], "target": "gap", "kind": "estimate",
                           "vacuous": bool(v.mean() >= 1.0)} for k, v in per.items()},
        })
    return rows


def run_langevin_experiment(cfg: LangevinConfig, out: str | os.PathLike, *, progress: bool = True,
                            log: Callable[[str], None] = print) -> dict:
    """Run (or resume) ``cfg``; returns the written record (``OUT/record.json``)."""
    out = Path(out)
    runs_dir = out / "runs" / cfg.digest()
    write_json_atomic(runs_dir / "config.json", cfg.to_dict())
    t_start = time.perf_counter()
    pool = binary_task(cfg.dataset, cfg.data_dir, cfg.classes)
    net = nets.mlp(pool.x.shape[1:], cfg.widths, 2)
    log(f"{pool.name}: {len(pool)} examples; {net.name}; n = {cfg.n}; {cfg.k1} draws x {cfg.k2} runs; "
        + (f"{cfg.steps} SGD steps, batch {cfg.batch}" if cfg.algorithm == "sgd" else
           f"{cfg.steps} Langevin steps" + (f", batch {cfg.batch}" if cfg.batch else ", full batch")))
    population = jax.jit(lambda *a: L.pair_population(net, *a, schedule=cfg.schedule(), steps=cfg.steps,
                                                       every=cfg.every, batch=cfg.batch))

    sgd = jax.jit(lambda tr, ho, te, keys: L.sgd_population(
        net.init, *L.net_losses(net), tr, ho, te, keys, eta=cfg.step_size, sigmas=cfg.sigmas, steps=cfg.steps,
        batch=cfg.batch, mc=cfg.mc))
    draws = []
    mesh = _population_mesh(cfg.k2)
    pop, rep = NamedSharding(mesh, PartitionSpec("pop")), NamedSharding(mesh, PartitionSpec())
    u = jax.device_put(jnp.arange(cfg.k2) % 2, pop)
    for d in tqdm(range(cfg.k1), desc="draws", disable=not progress, leave=False):
        path = runs_dir / f"draw-{d}.npz"
        if path.exists():
            with np.load(path) as f:
                draws.append({k: f[k] for k in f.files})
            continue
        shared, pair, test, heldout = _draw(cfg, pool, d)
        keys = jax.device_put(jax.random.split(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), d), cfg.k2), pop)
        tests = jax.device_put((pool.x[test], pool.y[test]), rep)
        if cfg.algorithm == "sgd":
            train_idx = np.concatenate([shared, pair[:1]])
            stats = jax.device_get(sgd(jax.device_put((pool.x[train_idx], pool.y[train_idx]), rep),
                                       jax.device_put((pool.x[heldout], pool.y[heldout]), rep), tests, keys))
        else:
            data = jax.device_put((pool.x[shared], pool.y[shared], pool.x[pair], pool.y[pair]), rep)
            stats = jax.device_get(population(*data, u, keys, *tests))
        arrays = {k: np.asarray(v) for k, v in stats._asdict().items()}
        write_atomic(path, lambda f, a=arrays: np.savez(f, **a), binary=True)
        draws.append(arrays)
    rows = _sgd_bounds(cfg, draws) if cfg.algorithm == "sgd" else _bounds_at(cfg, draws)
    record = new_record("langevin", cfg.to_dict(), cfg.seed, rows, {"total_s": time.perf_counter() - t_start})
    record["environment"] = {"backend": jax.default_backend(), "devices": int(mesh.devices.size), "net": net.name,
                             "pool": pool.name}
    write_record(out / "record.json", record)
    return record
