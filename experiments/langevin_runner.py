"""Langevin-dynamics experiment: bound estimates along the trajectory against the measured gap.

For each of ``k1`` outer draws (n - 1 shared training points and one pair (Z_{J,1}, Z_{J,2}) drawn
from the binary task's pool, plus a test set from the rest), a population of ``k2`` Langevin runs
(:func:`genbounds.estimators.iterative.pair_population`; SGLD with ``batch`` = b > 0) trains on the
shared points plus one pair member, U_J alternating (antithetic), each run from its own
initialisation and noise. :func:`genbounds.estimators.iterative.bounds_from_trajectories` turns
the draws' statistics into the record's rows: at every checkpoint ``negrea_loo`` (Negrea et al.
2019, leave-one-out) and, full batch only, ``haghifam_ld`` (Haghifam et al. 2020, Bayes hypothesis
test), bound *estimates* on E[test error - training error] (0-1 loss) with 95% bootstrap intervals
over draws, and the measured training error, test error and gap. ``haghifam_ld`` averages each
draw's runs inside the square root (the draw is its conditioning); ``negrea_loo``, whose
conditioning is the shared points alone (the held-out point's law belongs inside the root), pools
every run of every draw before the root.

With ``algorithm="sgd"`` the runs are plain SGD (``batch`` > 0, no noise) on n points (the shared
ones plus the first pair member), and the record holds Neu et al. (2021)'s Theorem 1 at the last
step for each perturbation scale of ``sigmas`` (fixed before the runs; the population gradient is
estimated on ``n_heldout`` further points of the pool, never the training set), from the
statistics of every run of every draw pooled before the square root
(:func:`genbounds.estimators.iterative.sgd_bounds_from_trajectories`). Taking the smallest over the
grid afterwards is a choice after seeing the estimates (biased low); the record keeps every scale.

The k2 runs of a draw are sharded over the local devices along a ``"pop"`` mesh axis
(:func:`genbounds.estimators.devices.population_mesh`: as many devices as divide k2; each run
stays on one device, so the statistics do not depend on the device count). Each finished outer
draw is saved to ``OUT/runs/<config hash>/draw-<d>.npz``; rerunning resumes.
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

from ..bounds._array import check_choice
from ..estimators import nets
from ..estimators.data import BINARY_CLASSES, binary_task
from ..estimators.devices import population_mesh, population_shardings
from ..estimators.iterative import (
    BOUND_NAMES,
    bounds_from_trajectories,
    net_losses,
    pair_population,
    sgd_bounds_from_trajectories,
    sgd_population,
)
from ..estimators.progress import track
from ..estimators.steps import Schedule, staircase_schedule
from .config import NONNEGATIVE, POSITIVE, SEED, LangevinAlgorithm, RunConfig, between, setting, whole
from .records import new_record, write_atomic, write_json_atomic, write_record

__all__ = ["LangevinConfig", "run_langevin_experiment", "LANGEVIN_BOUNDS"]

#: The bounds a Langevin record holds, by name.
LANGEVIN_BOUNDS = BOUND_NAMES


@dataclass(frozen=True)
class LangevinConfig(RunConfig):
    """Every setting of a Langevin-dynamics experiment (recorded verbatim)."""

    dataset: str = setting("mnist-5k", "dataset (its binary task): " + " | ".join(BINARY_CLASSES))
    data_dir: str | None = setting(None, "folder with IDX files, or a .npz (mnist, fashion-mnist)",
                                   default_text="none: the bundled or installed copy")
    classes: tuple[int, int] | None = setting(
        None, "the binary task's negative and positive class", nargs=2, metavar=("NEG", "POS"),
        default_text="4 9; fashion-mnist 2 4: pullover vs coat")
    widths: tuple[int, ...] = setting((100,), "MLP hidden widths", check=whole(1))
    n: int = setting(400, "training-set size n (n - 1 shared points and one of the pair)")
    n_test: int = setting(500, "test points per outer draw", check=whole(1))
    steps: int = setting(300, "training steps")
    every: int = setting(50, "steps between checkpoints (bounds and errors are evaluated at each)", check=whole(1))
    k1: int = setting(5, "outer draws (shared points and pair)", check=whole(1))
    k2: int = setting(8, "runs per outer draw (even: both values of U_J, antithetic)")
    eta0: float = setting(0.05, "step size eta_t = eta0 decay^floor(t / every_eta): eta0", check=POSITIVE)
    decay: float = setting(0.95, "step-size decay per every_eta steps", check=between(0, 1, high_in=True))
    every_eta: int = setting(50, "steps between step-size decays", check=whole(1))
    v0: float = setting(1e-4, "noise variance v_t = v_inf + (v0 - v_inf) exp(-rate floor(t / every_v)): v0",
                        check=POSITIVE)
    v_inf: float = setting(1e-6, "noise variance's limit v_inf", check=POSITIVE)
    rate: float = setting(0.5, "noise variance's decay rate", check=NONNEGATIVE)
    every_v: int = setting(50, "steps between noise-variance decays", check=whole(1))
    batch: int = setting(0, "0: full-batch Langevin dynamics; b > 0: SGLD (or, with --algorithm sgd, SGD) on "
                         "batches of b", check=whole(0))
    algorithm: LangevinAlgorithm = setting(LangevinAlgorithm.LANGEVIN, "sgd: plain minibatch SGD (--batch > 0) with "
                                           "Neu et al. 2021's bound per --sigmas",
                                           choices=[a.value for a in LangevinAlgorithm])
    sigmas: tuple[float, ...] = setting((1e-3, 3e-3, 1e-2, 3e-2), "sgd: perturbation scales, a grid fixed before "
                                        "the runs", check=POSITIVE)
    n_heldout: int = setting(200, "sgd: points for the population gradient", check=whole(1))
    mc: int = setting(4, "sgd: Gaussian draws per expectation over the perturbation", check=whole(1))
    seed: int = setting(0, "seed of the draws, initialisations and noise", check=SEED)

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithm", check_choice("algorithm", self.algorithm, LangevinAlgorithm))
        checks = [
            (self.dataset in BINARY_CLASSES, "dataset", f"one of {tuple(BINARY_CLASSES)}"),
            (self.n >= 3, "n", ">= 3"),
            (self.every < 1 or (self.steps >= self.every and self.steps % self.every == 0), "steps",
             f"a positive multiple of every = {self.every}"),
            (self.k2 >= 2 and self.k2 % 2 == 0, "k2", "an even number >= 2 (both values of U_J, antithetic)"),
            (self.batch <= self.n, "batch", f"in [0, n = {self.n}] (0: full batch)"),
            (self.algorithm is not LangevinAlgorithm.SGD or self.batch > 0, "batch",
             "> 0 with algorithm='sgd' (minibatch SGD)"),
            (len(self.sigmas) > 0, "sigmas", "one or more scales"),
        ]
        self._validate(checks)

    def step_size(self, t):
        """eta_t = eta0 decay^floor(t / every_eta) for step indices ``t`` (NumPy or JAX integers)."""
        return self.eta0 * self.decay ** (t // self.every_eta)

    def schedule(self) -> Schedule:
        return staircase_schedule(self.eta0, self.decay, self.every_eta, self.v0, self.v_inf, self.rate, self.every_v)


def _draw(cfg: LangevinConfig, pool, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outer draw d: indices of the n - 1 shared points, the pair, the test points and (sgd) the
    held-out points for the population gradient."""
    need = cfg.n + 1 + cfg.n_test + (cfg.n_heldout if cfg.algorithm is LangevinAlgorithm.SGD else 0)
    if need > len(pool):
        extra = " + n_heldout" if cfg.algorithm is LangevinAlgorithm.SGD else ""
        raise ValueError(f"argument 'n': n + 1 + n_test{extra} = {need} exceeds the {len(pool)} examples of "
                         f"{pool.name}")
    perm = np.random.default_rng([cfg.seed, d]).permutation(len(pool))
    test_end = cfg.n + 1 + cfg.n_test
    return perm[: cfg.n - 1], perm[cfg.n - 1: cfg.n + 1], perm[cfg.n + 1: test_end], perm[test_end: need]


def _stacked(draws: list[dict], *names: str) -> dict[str, np.ndarray]:
    """The saved draws' statistics ``names``, each stacked along a leading ``[k1]`` axis."""
    return {k: np.stack([d[k] for d in draws]) for k in names}


def _sgd_bounds(cfg: LangevinConfig, draws: list[dict]) -> list[dict]:
    """The record's row: Neu et al.'s Theorem 1 at the last step per perturbation scale, from the
    statistics of every run of every draw pooled before the square root
    (:func:`genbounds.estimators.iterative.sgd_bounds_from_trajectories`)."""
    stats = _stacked(draws, "variance", "sensitivity", "value_train", "value_test", "train_error", "test_error")
    result = sgd_bounds_from_trajectories(**stats, eta=cfg.step_size(np.arange(cfg.steps)).astype(np.float64),
                                          sigmas=cfg.sigmas, n=cfg.n)
    return [c.to_dict() for c in result.checkpoints]


def _langevin_bounds(cfg: LangevinConfig, draws: list[dict]) -> list[dict]:
    """The record's rows: every bound at every checkpoint, the mean over draws of per-draw roots
    (:func:`genbounds.estimators.iterative.bounds_from_trajectories`)."""
    stats = _stacked(draws, "xi_sq", "noise_dot", "loo_sq", "train_error", "test_error")
    result = bounds_from_trajectories(**stats, eta=draws[0]["eta"], beta=draws[0]["beta"], n=cfg.n, batch=cfg.batch)
    return [c.to_dict() for c in result.checkpoints]


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
        + (f"{cfg.steps} SGD steps, batch {cfg.batch}" if cfg.algorithm is LangevinAlgorithm.SGD else
           f"{cfg.steps} Langevin steps" + (f", batch {cfg.batch}" if cfg.batch else ", full batch")))
    population = jax.jit(lambda *a: pair_population(net, *a, schedule=cfg.schedule(), steps=cfg.steps,
                                                     every=cfg.every, batch=cfg.batch))

    sgd = jax.jit(lambda tr, ho, te, keys: sgd_population(
        net.init, *net_losses(net), tr, ho, te, keys, eta=cfg.step_size, sigmas=cfg.sigmas, steps=cfg.steps,
        batch=cfg.batch, mc=cfg.mc))
    draws = []
    mesh = population_mesh(jax.local_devices(), runs=cfg.k2)
    pop, rep = population_shardings(mesh)
    u = jax.device_put(jnp.arange(cfg.k2) % 2, pop)
    for d in track(range(cfg.k1), "draws", unit="draw", enabled=progress):
        path = runs_dir / f"draw-{d}.npz"
        if path.exists():
            with np.load(path) as f:
                draws.append({k: f[k] for k in f.files})
            continue
        shared, pair, test, heldout = _draw(cfg, pool, d)
        keys = jax.device_put(jax.random.split(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), d), cfg.k2), pop)
        tests = jax.device_put((pool.x[test], pool.y[test]), rep)
        if cfg.algorithm is LangevinAlgorithm.SGD:
            train_idx = np.concatenate([shared, pair[:1]])
            stats = jax.device_get(sgd(jax.device_put((pool.x[train_idx], pool.y[train_idx]), rep),
                                       jax.device_put((pool.x[heldout], pool.y[heldout]), rep), tests, keys))
        else:
            data = jax.device_put((pool.x[shared], pool.y[shared], pool.x[pair], pool.y[pair]), rep)
            stats = jax.device_get(population(*data, u, keys, *tests))
        arrays = {k: np.asarray(v) for k, v in stats._asdict().items()}
        write_atomic(path, lambda f, a=arrays: np.savez(f, **a), binary=True)
        draws.append(arrays)
    rows = _sgd_bounds(cfg, draws) if cfg.algorithm is LangevinAlgorithm.SGD else _langevin_bounds(cfg, draws)
    record = new_record("langevin", cfg.to_dict(), cfg.seed, rows, {"total_s": time.perf_counter() - t_start})
    record["environment"] = {"backend": jax.default_backend(), "devices": int(mesh.devices.size), "net": net.name,
                             "pool": pool.name}
    write_record(out / "record.json", record)
    return record
