"""CMI experiment runner: supersample draws x masks, trained as vmapped populations, as stages.

For each n and each of the k1 draws: :func:`design_stage` (the supersample and the masks, or the
n+1 points and held-out indices), :func:`train_stage` (the runs as populations, in chunks of
``chunk`` runs), then per n :func:`bounds_stage` (every bound from the run set,
:func:`genbounds.estimators.supersample.bounds_from_runs`), and finally the record. Every
finished (n, draw, chunk) is written atomically to ``OUT/runs/<config hash>/``, so an
interrupted run restarted with the same command resumes and loses nothing.

With ``loo=True`` the experiment is leave-one-out (Haghifam et al. 2022): draw d is n+1 points
(the first n+1 of one draw of max(n)+1), all n+1 held-out choices are enumerated as one
population, and :func:`genbounds.estimators.supersample.loo_bounds_from_runs` evaluates the
bounds; ``k2`` is not used. The n+1 runs of a draw share one seed (initialisation and minibatch
order), so training is a deterministic function of (points, U) given the draw's seed R, and the
plug-in MI over the n+1 equally likely values of U is the exact I(L; U | Z, R), not an estimate.
The LOO bounds hold conditionally on R (for each R the algorithm is deterministic, and R is
independent of the data), so averaging over draws of (Z, R) estimates them without MI bias.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from ..bounds._array import check_choice
from ..bounds.cmi_certified import ConfidenceSet
from ..estimators import nets
from ..estimators import supersample as S
from ..estimators.data import BINARY_CLASSES, STRATIFIED_TASKS, SYNTHETIC_TASKS, Dataset, binary_task
from ..estimators.devices import broadcast_from_main, is_main_process
from ..estimators.progress import Progress
from ..estimators.supersample import Sampling
from ..estimators.supersample.certified import TARGET as CERTIFIED_TARGET
from .config import OPTIMIZERS, POSITIVE, SEED, Check, CMIArch, OptimizerName, RunConfig, make_optimizer, setting, whole
from .records import new_record, write_atomic, write_json_atomic, write_record
from .report import format_number
from .results import CMIRunResult

__all__ = ["CMIConfig", "Design", "run_cmi", "environment", "design_stage", "train_stage", "bounds_stage",
           "task_net", "bounds_from_npz", "certify_plan_lines", "check_fresh_capacity",
           "check_fresh_sampling"]


@dataclass(frozen=True)
class CMIConfig(RunConfig):
    """Every setting of a supersample experiment (recorded verbatim)."""

    dataset: str = setting("synthetic", "dataset: " + " | ".join((*SYNTHETIC_TASKS, *BINARY_CLASSES)) + " (a binary "
                           "task; gaussian: an i.i.d. sample of a known distribution, synthetic: a class-stratified "
                           "pool)")
    data_dir: str | None = setting(None, "folder with IDX files, or a .npz (mnist, fashion-mnist)",
                                   default_text="none: the bundled or installed copy")
    classes: tuple[int, int] | None = setting(
        None, "the binary task's negative and positive class", nargs=2, metavar=("NEG", "POS"),
        default_text="4 9; fashion-mnist 2 4: pullover vs coat")
    arch: CMIArch = setting(CMIArch.LINEAR, "network: a linear model, an MLP or a CNN",
                            choices=[a.value for a in CMIArch])
    widths: tuple[int, ...] = setting((128,), "MLP hidden widths", check=whole(1))
    n: tuple[int, ...] = setting((5, 10, 20, 30, 40, 50), "training-set sizes n (one experiment each)")
    k1: int | None = setting(None, "supersample draws per n", default_text="5; with --certify the smallest design "
                             "whose best case reaches --target-width")
    k2: int | None = setting(None, "masks per supersample draw (not used with --loo)",
                             default_text="30; with --certify as for --k1")
    epochs: int = setting(200, "training epochs of every run")
    batch: int = setting(128, "minibatch size of every run", check=whole(1))
    lr: float = setting(1e-2, "learning rate of every run", check=POSITIVE)
    optimizer: OptimizerName = setting(OptimizerName.ADAM, "optimiser of every run", choices=OPTIMIZERS)
    synthetic_features: int = setting(5, "input dimension of the synthetic and gaussian datasets", check=whole(1))
    gaussian_margin: float = setting(1.0, "gaussian dataset: the class means' distance from 0, ||mu|| (Bayes risk "
                                     "Phi(-margin))", check=Check(POSITIVE.ok, "> 0"))
    seed: int = setting(0, "seed of the draws, the masks and the runs' initialisations", check=SEED)
    chunk: int = setting(0, "runs per saved chunk (0: all the runs of a draw)", check=whole(0))
    miller_madow: bool = setting(False, "bias-correct the plug-in MIs (Miller-Madow)")
    loo: bool = setting(False, "leave-one-out CMI: n+1 points per draw, all n+1 held-out runs trained (k2 is not "
                        "used)")
    certify: bool = setting(False, "certify the expected risk of the algorithm at each n: confidence bounds over the "
                            "finite runs (not plug-in estimates), with the held-out baseline beside")
    delta: float = setting(0.05, "with --certify: the certificate's confidence budget (the held-out baseline is a "
                           "separate statement at the same delta)")
    sampling: Sampling = setting(Sampling.FRESH, "with --certify: 'fresh' = every supersample 2n examples no other "
                                 "supersample uses; 'pool' = drawn with replacement from the pool (certifies the risk "
                                 "under the pool's uniform distribution)", choices=[x.value for x in Sampling])
    target_width: float = setting(0.2, "with --certify: the best-case value (no errors, no information) the default "
                                  "design aims at, and the printed run count is for")
    per_pair: ConfidenceSet = setting(ConfidenceSet.CELLS, "with --certify: the per-pair MI statement: 'cells' / "
                                      "'types' = confidence boxes; 'jensen' = the plug-in JS, whose expectation is "
                                      "at least the MI (no boxes: far tighter)",
                                      choices=[x.value for x in ConfidenceSet])

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", check_choice("arch", self.arch, CMIArch))
        object.__setattr__(self, "optimizer", check_choice("optimizer", self.optimizer, OptimizerName))
        object.__setattr__(self, "sampling", check_choice("sampling", self.sampling, Sampling))
        object.__setattr__(self, "per_pair", check_choice("per_pair", self.per_pair, ConfidenceSet))
        if self.certify:
            self._validate([(0.0 < self.delta < 1.0, "delta", "in (0, 1)"),
                            (0.0 < self.target_width <= 1.0, "target_width", "in (0, 1]"),
                            (not self.loo, "loo", "off with --certify (the certificate uses supersample masks)")])
        if self.k1 is None or self.k2 is None:
            plan = _certify_plan(max(self.n), self.delta, self.target_width, self.per_pair) \
                if self.certify and self.n else None
            object.__setattr__(self, "k1", self.k1 if self.k1 is not None else plan.k1 if plan else 5)
            object.__setattr__(self, "k2", self.k2 if self.k2 is not None else plan.k2 if plan else 30)
        checks = [
            (self.dataset in (*SYNTHETIC_TASKS, *BINARY_CLASSES), "dataset", "gaussian, synthetic, digits, "
             "mnist-5k, mnist or fashion-mnist"),
            (len(self.n) > 0 and all(v >= 2 for v in self.n), "n", "a list of sizes >= 2"),
            (self.k1 >= 1, "k1", ">= 1"),
            (self.k2 >= 2, "k2", ">= 2"),
            (self.epochs >= 1, "epochs", ">= 1"),
        ]
        self._validate(checks)

    def flag_defaults(self) -> dict[str, Any]:
        """The flags' defaults: k1 and k2 unset (None), so that --certify sizes its own design."""
        return {**super().flag_defaults(), "k1": None, "k2": None}

    def flat_items(self) -> dict[str, Any]:
        """Every setting by flat name; without --certify, the certificate's settings only when changed, so that
        the records and digests of uncertified experiments are the bytes they were."""
        items = super().flat_items()
        if not self.certify:
            for key in _CERTIFY_KEYS:
                if items[key] == _CERTIFY_DEFAULTS[key]:
                    del items[key]
        elif items["per_pair"] == _CERTIFY_DEFAULTS["per_pair"]:
            del items["per_pair"]           # certified records written before the setting existed: the same bytes
        if self.dataset != "gaussian" and items["gaussian_margin"] == 1.0:
            del items["gaussian_margin"]
        return items


#: The settings of --certify, and their defaults.
_CERTIFY_KEYS = ("certify", "delta", "sampling", "target_width", "per_pair")
_CERTIFY_DEFAULTS = {"certify": False, "delta": 0.05, "sampling": Sampling.FRESH, "target_width": 0.2,
                     "per_pair": ConfidenceSet.CELLS}


@functools.lru_cache(maxsize=32)
def _certify_plan(n: int, delta: float, target: float, method: ConfidenceSet = ConfidenceSet.CELLS) -> S.RunsNeeded:
    """The default design of a certified experiment (:func:`genbounds.estimators.supersample.runs_needed`)."""
    return S.runs_needed(n, delta, target, method)


def task_net(cfg: CMIConfig, pool):
    """The experiment's network for ``pool`` (a CNN computes its convolutions the way that is fast
    on the backend, :func:`genbounds.estimators.nets.conv_for_backend`)."""
    shape = pool.x.shape[1:]
    if cfg.arch is CMIArch.LINEAR:
        return nets.mlp(shape, (), 2)
    if cfg.arch is CMIArch.MLP:
        return nets.mlp(shape, cfg.widths, 2)
    return nets.cnn(shape, 2)          # matmul convolution on CPU, XLA's (cuDNN) elsewhere


def _save_npz(path: Path, **arrays) -> None:
    if is_main_process():                           # in a multi-host run, process 0 writes
        write_atomic(path, lambda f: np.savez(f, **arrays), binary=True)


class Design(NamedTuple):
    """One supersample draw for one n: the pool every run predicts on, each run's training indices
    ``train_idx: [R, m]``, its design variable ``u`` (masks ``u: [k2, n]`` or held-out indices
    ``u: [n+1]``), the labels the bounds compare predictions with, the source indices and the run keys."""

    pool_x: np.ndarray
    pool_y: np.ndarray
    train_idx: np.ndarray
    u: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    keys: jax.Array


def design_stage(cfg: CMIConfig, pool: Dataset, n: int, draw: int) -> Design:
    """Stage 1: the design of draw ``draw`` for size ``n``.

    Common random numbers across n: draw d for n is the first n pairs (n+1 points) of one draw of
    size max(n), with the first n bits of shared masks, so curves over n differ by n alone. In
    leave-one-out mode all n+1 runs of a draw share one seed: given the draw, training is a
    function of U and the MI over the enumerated U is exact.
    """
    kd = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), draw)
    n_max = max(cfg.n)
    if cfg.loo:
        x, y, indices = S.draw_loo_supersample(jax.random.fold_in(kd, 0), pool, n_max)
        px, py, indices = x[: n + 1], y[: n + 1], indices[: n + 1]
        u = S.loo_held_out(n)                                   # run r leaves out point r
        idx, labels = S.loo_runs(u), py
        keys = np.repeat(np.asarray(jax.random.fold_in(kd, 2))[None], idx.shape[0], axis=0)
    else:
        full = _certified_supersample(cfg, pool, n_max, draw) if cfg.certify else \
            S.draw_supersample(jax.random.fold_in(kd, 0), pool, n_max)
        sup = S.Supersample(full.x[:n], full.y[:n], full.indices[:n])
        u = S.draw_masks(jax.random.fold_in(kd, 1), cfg.k2, n_max)[:, :n]
        px, py, idx = S.supersample_runs(sup, u)
        labels, indices = sup.y, sup.indices
        keys = jax.random.split(jax.random.fold_in(kd, 2), idx.shape[0])
    return Design(px, py, idx, u, labels, indices, keys)


def _certified_supersample(cfg: CMIConfig, pool: Dataset, n_max: int, draw: int) -> S.Supersample:
    """Supersample ``draw`` of a certified experiment: with ``fresh`` sampling block ``draw`` of 2 max(n) examples
    of one seeded permutation of the pool (no example in two supersamples); with ``pool`` sampling 2 max(n)
    examples drawn with replacement, independently for every draw."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), draw), 3)
    if cfg.sampling is Sampling.FRESH:
        check_fresh_sampling(cfg, len(pool))
        idx = _permutation(cfg.seed, len(pool))[draw * 2 * n_max:(draw + 1) * 2 * n_max].reshape(n_max, 2)
    else:
        idx = np.asarray(jax.random.choice(key, len(pool), (2 * n_max,), replace=True)).reshape(n_max, 2)
    return S.Supersample(pool.x[idx], pool.y[idx], idx)


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, size: int) -> np.ndarray:
    """The seeded permutation of the pool whose disjoint blocks are the fresh supersamples (computed once)."""
    perm = np.asarray(jax.random.permutation(jax.random.PRNGKey(seed), size))
    perm.setflags(write=False)
    return perm


def check_fresh_sampling(cfg: CMIConfig, pool_size: int) -> None:
    """Refuse fresh supersamples of a pool that is not an i.i.d. sample of a distribution
    (:data:`genbounds.estimators.data.STRATIFIED_TASKS`: the certificate's premise fails there by construction) or
    that holds too few examples (:func:`check_fresh_capacity`)."""
    if cfg.dataset in STRATIFIED_TASKS:
        raise ValueError(f"argument 'dataset': {cfg.dataset!r} with --certify and fresh supersamples is refused: "
                         f"{STRATIFIED_TASKS[cfg.dataset]}, so its supersamples are not i.i.d. draws of a data "
                         "distribution; use --dataset gaussian (an i.i.d. sample of a known distribution), or "
                         "--sampling pool (certifies the risk under the pool's uniform distribution)")
    check_fresh_capacity(cfg, pool_size)


def check_fresh_capacity(cfg: CMIConfig, pool_size: int) -> None:
    """Refuse a certified design with fresh supersamples that needs more examples than the pool has."""
    need = cfg.k1 * 2 * max(cfg.n)
    if need > pool_size:
        raise ValueError(f"argument 'k1': {cfg.k1} fresh supersamples of 2 x {max(cfg.n)} examples need {need} "
                         f"examples, the pool has {pool_size}: use k1 <= {pool_size // (2 * max(cfg.n))}, or "
                         "--sampling pool (draws with replacement; certifies the risk under the pool's uniform "
                         "distribution)")


def train_stage(net: nets.Net, train_cfg: S.TrainConfig, design: Design, chunk: int, files: Callable[[int, int], Path],
                on_chunk: Callable[[int], None] = lambda k: None) -> tuple[np.ndarray, int]:
    """Stage 2: every run of a design, chunk by chunk; a chunk whose file ``files(start, stop)``
    exists is read back, not retrained. Returns predictions ``[R, ...labels.shape]`` and the
    number of runs trained now."""
    runs = design.train_idx.shape[0]
    chunk = chunk or runs
    parts, trained = [], 0
    for c0 in range(0, runs, chunk):
        c1 = min(runs, c0 + chunk)
        f = files(c0, c1)
        if broadcast_from_main(f.exists()):         # one decision for every process of a multi-host run
            shape = (c1 - c0, *design.labels.shape)
            preds = np.load(f)["predictions"] if is_main_process() else np.zeros(shape, np.int32)
            parts.append(broadcast_from_main(preds.astype(np.int32)))
        else:
            sl = slice(c0, c1)
            preds = S.train_population(net, design.keys[sl], design.pool_x, design.pool_y, design.train_idx[sl],
                                       train_cfg, progress=False).reshape(-1, *design.labels.shape)
            _save_npz(f, predictions=preds, masks=design.u[sl], labels=design.labels, indices=design.indices)
            parts.append(preds)
            trained += preds.shape[0]
        on_chunk(parts[-1].shape[0])
    return np.concatenate(parts), trained


def bounds_stage(cfg: CMIConfig, u: np.ndarray, preds: np.ndarray, labels: np.ndarray, out: Path,
                 n: int, indices: np.ndarray | None = None, pool_size: int | None = None) -> S.CMIResult:
    """Stage 3: save the run set of size n (``OUT/runs_n<n>.npz``, readable by ``genbounds bound
    cmi``) and estimate every bound from it; with ``certify`` also the certificate and its held-out baseline
    (``indices``: the supersamples' example ids, ``pool_size``: the pool's size)."""
    if cfg.loo:
        _save_npz(out / f"runs_n{n}.npz", held_out=u, predictions=preds, labels=labels)
        return S.loo_bounds_from_runs(u, S.loo_losses(preds, labels))
    if not cfg.certify:
        _save_npz(out / f"runs_n{n}.npz", masks=u, predictions=preds, labels=labels)
        return S.bounds_from_runs(u, preds, labels, miller_madow=cfg.miller_madow)
    _save_npz(out / f"runs_n{n}.npz", masks=u, predictions=preds, labels=labels, indices=indices)
    return S.bounds_from_runs(u, preds, labels, miller_madow=cfg.miller_madow, certify=True, delta=cfg.delta,
                              indices=indices, sampling=cfg.sampling, method=cfg.per_pair,
                              pool_size=pool_size if cfg.sampling is Sampling.POOL else None,
                              details={"seed": cfg.seed, "epochs": cfg.epochs})


def run_cmi(cfg: CMIConfig, out: str | os.PathLike, *, progress: bool = True,
            log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the experiment: for each n, design -> train -> bounds; then the record."""
    out = Path(out)
    runs_dir = out / "runs" / cfg.digest()
    if is_main_process():
        write_json_atomic(runs_dir / "config.json", cfg.to_dict())
    t_start = time.perf_counter()
    pool = binary_task(cfg.dataset, cfg.data_dir, cfg.classes, seed=cfg.seed,
                       synthetic_features=cfg.synthetic_features, gaussian_margin=cfg.gaussian_margin)
    net = task_net(cfg, pool)
    train_cfg = S.TrainConfig(cfg.epochs, cfg.batch, make_optimizer(cfg.optimizer, cfg.lr), S.map_batch_for(cfg.arch))
    log(f"{pool.name}: {len(pool)} examples; {net.name}; n = {list(cfg.n)}; k1 = {cfg.k1}, "
        + ("leave-one-out (n+1 runs per draw)" if cfg.loo else f"k2 = {cfg.k2}"))
    if cfg.certify:
        for line in certify_plan_lines(cfg, len(pool)):
            log(line)
    total = sum(cfg.k1 * (n + 1 if cfg.loo else cfg.k2) for n in cfg.n)
    results, timings = [], {}
    with Progress(total, "runs", unit="run", enabled=progress, leave=True) as bar:
        for n in cfg.n:
            t_n = time.perf_counter()
            trained = 0
            u_all, preds_all, labels_all, idx_all = [], [], [], []
            for draw in range(cfg.k1):
                design = design_stage(cfg, pool, n, draw)
                preds, k = train_stage(
                    net, train_cfg, design, cfg.chunk,
                    lambda a, b, n=n, draw=draw: runs_dir / f"n{n}_draw{draw}_runs{a}-{b}.npz", bar.update)
                trained += k
                u_all.append(design.u)
                preds_all.append(preds)
                labels_all.append(design.labels)
                idx_all.append(design.indices)
            res = bounds_stage(cfg, np.stack(u_all), np.stack(preds_all), np.stack(labels_all), out, n,
                               np.stack(idx_all), len(pool))
            seconds = time.perf_counter() - t_n
            timings[f"n{n}_s"] = seconds
            results.append(CMIRunResult(n, res, trained, seconds))
            name = "loo_sqrt" if cfg.loo else "fcmi"
            log(f"n = {n}: train {res.summary.train_error:.4f}, test {res.summary.test_error:.4f}, "
                f"{name} bound estimate {format_number(res[name].value, 4, upper=True)} "
                f"({trained} runs trained, {seconds:.0f} s)")
            if res.certified is not None:
                c, h = res.certified.certificate, res.certified.held_out
                log(f"n = {n}: certificate of the {CERTIFIED_TARGET} (w.p. >= 1 - {c.delta!r}): "
                    f"{format_number(c.value, 4, upper=True)} ({c.details['form']}); held-out baseline "
                    f"{format_number(h.value, 4, upper=True)}; plug-in {c.details['form']} estimate "
                    f"{format_number(res[c.details['form']].value, 4, upper=True)}; measured test error "
                    f"{res.summary.test_error:.4f}")
    timings["total_s"] = time.perf_counter() - t_start
    record = new_record("cmi", cfg.to_dict(), cfg.seed, [r.to_dict() for r in results], timings)
    record["environment"] = environment(net)
    if is_main_process():
        write_record(out / "record.json", record)
    return record


def certify_plan_lines(cfg: CMIConfig, pool_size: int) -> list[str]:
    """What a certified experiment needs, said before it starts: per n, the best case of this design and the
    design whose best case reaches ``target_width``; refuses (ValueError) a design that is vacuous in any case or
    that needs more fresh examples than the pool has."""
    if cfg.sampling is Sampling.FRESH:
        check_fresh_sampling(cfg, pool_size)
    lines = [f"certify: delta = {cfg.delta!r}; the certificate bounds the {CERTIFIED_TARGET} "
             f"({'fresh supersamples' if cfg.sampling is Sampling.FRESH else 'draws with replacement from the pool'}"
             f"); {cfg.k1} supersamples x {cfg.k2} masks = {cfg.k1 * cfg.k2} runs per n"]
    for n in cfg.n:
        _, floor = S.require_nonvacuous_design(n, cfg.k1, cfg.k2, cfg.delta, cfg.per_pair)
        need = _certify_plan(n, cfg.delta, cfg.target_width, cfg.per_pair)
        lines.append(f"  n = {n}: best case of this design (no errors, no information) "
                     f"{format_number(floor, 4, upper=True)}; a best case <= {cfg.target_width:g} needs about "
                     f"k1 = {need.k1} x k2 = {need.k2} = {need.runs} runs")
    return lines


def environment(net: nets.Net) -> dict:
    """Where the runs ran: backend, devices and processes, and the network as built (a CNN's name
    says which convolution it computed with, ``-matmul`` on CPU)."""
    return {"backend": jax.default_backend(), "devices": jax.device_count(), "processes": jax.process_count(),
            "device_kind": jax.devices()[0].device_kind, "net": net.name}


def bounds_from_npz(path: str | os.PathLike, *, miller_madow: bool = False) -> tuple[S.CMIResult, bool]:
    """Every CMI bound from runs saved with ``np.savez`` (``genbounds bound cmi --runs``): supersample
    runs (``masks``, ``predictions``, ``labels``) or leave-one-out runs (``held_out``, ``predictions``,
    ``labels``). Returns the result and whether the runs are leave-one-out; a file that is not such an
    archive is refused in one line naming it."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"--runs {path} is not a readable .npz archive (np.savez output): {err}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"--runs {path} holds a single array, not an .npz archive of named arrays "
                         "(save with np.savez(file, masks=..., predictions=..., labels=...))")
    with z:
        loo = "held_out" in z.files
        needed = ("held_out" if loo else "masks", "predictions", "labels")
        missing = [k for k in needed if k not in z.files]
        if missing:
            raise ValueError(f"--runs {path} lacks array(s) {', '.join(missing)} (has {z.files})")
        if loo:
            return S.loo_bounds_from_runs(z["held_out"], S.loo_losses(z["predictions"], z["labels"])), True
        return S.bounds_from_runs(z["masks"], z["predictions"], z["labels"], miller_madow=miller_madow), False
