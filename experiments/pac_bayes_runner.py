"""PAC-Bayes experiment runner: a prior, posteriors, certificates and a record, as named stages.

One :class:`PacBayesConfig` describes a run. :func:`run_pac_bayes` executes it as four stages:

1. :func:`prior_stage`: the prior's mean, trained on a fraction ``alpha`` of the training set
   (data prior) or the random initialisation (DR17), plus the network the posterior starts from;
2. :func:`posterior_stage`: one posterior per objective, trained against that PAC-Bayes bound;
3. :func:`certify_stage`: certificates (b) and optionally (a) on the prior-free bound set, and
   test errors;
4. :func:`record_stage`: the versioned record, with the union-bound minimum over its certificates.

Checkpoints live in ``OUT/checkpoints/``: the prior under a hash of the settings it depends on
(runs that differ only in posterior settings share it), each posterior after every epoch and
each finished objective under a hash of the whole config. The same command after an
interruption resumes where it stopped. ``genbounds quickstart`` is :data:`QUICKSTART`;
``genbounds pac-bayes`` takes every field as a flag.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import pickle
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from .. import bounds
from ..bounds import Certificate, pay_for_choice, union_minimum
from ..bounds._array import check_choice
from ..estimators import nets
from ..estimators import snn as S
from ..estimators.augment import AUGMENTATIONS, get_augment
from ..estimators.data import DATASETS, TrainTest, load
from ..estimators.snn import FAMILIES, OBJECTIVES, FamilyName, PriorKind
from ..estimators.steps import steps_per_epoch
from .config import (
    OPTIMIZERS,
    POSITIVE,
    SCHEDULES,
    SEED,
    Arch,
    AugmentName,
    MaskPrior,
    OptimizerName,
    RunConfig,
    ScheduleName,
    Section,
    between,
    make_optimizer,
    setting,
    whole,
)
from .records import write_atomic, write_json_atomic, write_record
from .report import format_number
from .results import Disagreement, MaskComparison, MaskPredictor, MonteCarloRisk, PacBayesRecord, PacBayesResult

__all__ = ["PacBayesConfig", "QUICKSTART", "MLP_DIGITS", "Setup", "PriorResult", "run_pac_bayes", "prepare",
           "prior_stage", "posterior_stage", "certify_stage", "mask_comparison", "record_stage",
           "prior_split_size", "phase_keys", "phase_table"]


#: Classes of every dataset of :data:`~genbounds.estimators.data.DATASETS` (labels 0-9).
DATASET_CLASSES = 10
#: A probability-like rate in [0, 1): momentum, dropout.
_RATE = between(0, 1, low_in=True)
#: A class label of those datasets.
_CLASS = whole(0, DATASET_CLASSES)


def _whole_positive(x: Any) -> bool:
    """Whether ``x`` is a whole number >= 1 (an int, not a bool or a float)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= 1


@dataclass(frozen=True)
class DataSection(Section):
    """The data: which dataset, from where, which task, and its preprocessing."""

    dataset: str = setting("digits", "dataset: " + " | ".join(DATASETS))
    data_dir: str | None = setting(None, "folder with IDX files, or a .npz (mnist, fashion-mnist)",
                                   default_text="none: the bundled or installed copy")
    binary: tuple[int, ...] | None = setting(
        None, "relabel to 2 classes: these classes -> 1, the rest -> 0 (e.g. 5 6 7 8 9)", metavar="CLASS",
        default_text="none: every class")
    standardize: bool | None = setting(
        None, "standardise inputs per pixel with the prior data's mean and std (a data-free prior cannot)",
        default_text="yes with a data prior, else no")


@dataclass(frozen=True)
class ModelSection(Section):
    """The network (the CNN won the settings search on digits)."""

    arch: Arch = setting(Arch.CNN, "network: an MLP, or PBB's CNN (two 3x3 convolutions, max-pool, dense 128)",
                         choices=[a.value for a in Arch])
    widths: tuple[int, ...] = setting((256, 256), "MLP hidden widths", check=whole(1))

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", check_choice("arch", self.arch, Arch))


@dataclass(frozen=True)
class PriorSection(Section):
    """The prior: its kind and the data it may use, its scale, how its mean is trained (or drawn,
    for a DP prior) and, for masks, its keep probabilities.

    The record's flat ``prior`` is :attr:`kind`; a section never equals a string (``cfg.prior ==
    "data"`` raises ``TypeError``: compare ``cfg.prior.kind``).
    """

    kind: PriorKind = setting(PriorKind.DATA, "data: prior mean trained on --alpha of the data; init: the random init "
                              "(DR17); dp: mean drawn by an epsilon-DP Gibbs mechanism (SGLD) on all the data (DR18)",
                              key="prior", choices=[k.value for k in PriorKind])
    alpha: float = setting(0.5, "fraction of the training set for a data prior")
    sparsity: float = setting(0.9, "mask family: fraction the prior's magnitude mask prunes")
    mask_flip: float = setting(0.01, "mask family: prior keep probability of a pruned weight (1 - it for a kept one)")
    mask_prior: MaskPrior = setting(MaskPrior.MAGNITUDE, "mask family: Bernoulli prior from the prior net's "
                                    "magnitudes, or uniform (data-free) keep probability 1 - sparsity",
                                    choices=[m.value for m in MaskPrior])
    scale: float = setting(0.02, "prior standard deviation (fixed), or the initial value with --learn-prior-scale",
                           key="prior_scale", check=POSITIVE)
    learn_scale: bool = setting(False, "learn the prior scale, then round it to the DR17 grid (union bound paid)",
                                key="learn_prior_scale")
    grid_b: float = setting(100.0, "DR17 grid of prior variances c exp(-j/b): b", check=POSITIVE)
    grid_c: float = setting(0.1, "DR17 grid of prior variances c exp(-j/b): c", check=POSITIVE)
    epochs: int = setting(100, "epochs of deterministic training (prior mean; DR17's SGD stage)", key="prior_epochs",
                          check=whole(0))
    lr: float = setting(0.05, "learning rate of the prior's training", key="prior_lr", check=POSITIVE)
    batch: int = setting(64, "minibatch size of the prior's training (and of the DP prior's SGLD)", key="prior_batch")
    optimizer: OptimizerName = setting(OptimizerName.SGD, "optimiser of the prior's training", key="prior_optimizer",
                                       choices=OPTIMIZERS)
    momentum: float = setting(0.9, "SGD momentum of the prior (0: plain SGD)", key="prior_momentum", check=_RATE)
    dropout: float = setting(0.2, "dropout rate on hidden activations while training the prior (PBB: 0.2)",
                             key="prior_dropout", check=_RATE)
    schedule: ScheduleName = setting(ScheduleName.CONSTANT, "learning-rate schedule of the prior: constant or cosine "
                                     "decay to 0", key="prior_schedule", choices=SCHEDULES)
    augment: AugmentName = setting(AugmentName.NONE, "augment the prior's training images: random 2-pixel shifts "
                                   "(shift), and mirror images (shift-flip); the bound set is never augmented",
                                   key="prior_augment", choices=tuple(sorted(AUGMENTATIONS)))
    dp_epsilon: float = setting(0.1, "dp prior: epsilon of the Gibbs mechanism (tau = epsilon n / 2)", check=POSITIVE)
    dp_base_scale: float = setting(0.1, "dp prior: std of the data-free Gaussian base measure around the "
                                   "initialisation", check=POSITIVE)
    dp_lr: float = setting(0.05, "dp prior: SGLD step size", check=POSITIVE)
    dp_epochs: int = setting(10, "dp prior: SGLD epochs", check=whole(1))

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", check_choice("prior", self.kind, PriorKind))
        object.__setattr__(self, "mask_prior", check_choice("mask_prior", self.mask_prior, MaskPrior))
        object.__setattr__(self, "optimizer", check_choice("prior_optimizer", self.optimizer, OptimizerName))
        object.__setattr__(self, "schedule", check_choice("prior_schedule", self.schedule, ScheduleName))
        object.__setattr__(self, "augment", check_choice("prior_augment", self.augment, AugmentName))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            raise TypeError(f"a PriorSection is not its kind: compare cfg.prior.kind with {other!r}")
        if type(other) is not PriorSection:
            return NotImplemented
        return dataclasses.astuple(self) == dataclasses.astuple(other)


@dataclass(frozen=True)
class PosteriorSection(Section):
    """The posterior: its family, the objectives it is trained against, and its training."""

    objectives: tuple[str, ...] = setting(("quad",), f"training objectives, side by side: {' | '.join(OBJECTIVES)}",
                                          flag="--objective")
    family: FamilyName = setting(FamilyName.GAUSSIAN, "posterior family: factorised Gaussian or Laplace weights, "
                                 "Bernoulli masks over the prior's weights, or matrix-normal (Kronecker-factored) "
                                 "dense layers", choices=FAMILIES)
    epochs: int = setting(50, "posterior epochs", check=whole(0))
    lr: float = setting(0.01, "learning rate of the posterior's training", check=POSITIVE)
    batch: int = setting(64, "minibatch size of the posterior's training")
    optimizer: OptimizerName = setting(OptimizerName.SGD, "optimiser of the posterior's training", choices=OPTIMIZERS)
    momentum: float = setting(0.95, "SGD momentum of the posterior (0: plain SGD)", check=_RATE)
    schedule: ScheduleName = setting(ScheduleName.CONSTANT, "posterior learning-rate schedule", choices=SCHEDULES)
    shared_sample: bool = setting(False, "train with one weight draw per minibatch instead of one per example "
                                  "(faster CNN training)")
    p_min: float = setting(1e-4, "floor of the predicted probability in the bounded cross-entropy the posterior "
                           "is trained on, -ln(max(p, p_min)) / ln(1/p_min)")

    def __post_init__(self) -> None:
        object.__setattr__(self, "family", check_choice("family", self.family, FamilyName))
        object.__setattr__(self, "optimizer", check_choice("optimizer", self.optimizer, OptimizerName))
        object.__setattr__(self, "schedule", check_choice("schedule", self.schedule, ScheduleName))


@dataclass(frozen=True)
class CertificateSection(Section):
    """The certificates: confidence, Monte Carlo estimates, and the settings paid for."""

    delta: float = setting(0.025, "PAC-Bayes confidence part", check=between(0, 1))
    mc_delta: float = setting(0.01, "confidence part of the Monte Carlo step", check=between(0, 1))
    mc_r: int = setting(100, "per-example draws per example, certificate (b)", check=whole(1))
    mc_m: int = setting(1000, "weight draws for certificate (a); 0 skips it", check=whole(0))
    settings_looked_at: int = setting(
        1, "settings whose certificates you already looked at on this bound set, this one included: every "
        "certificate pays for the choice (delta / this number)")


@dataclass(frozen=True)
class PacBayesConfig(RunConfig):
    """Every setting of a PAC-Bayes run, in sections (recorded as one flat object, the sections'
    settings by their flat names: :meth:`to_dict`, :meth:`flat`)."""

    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    prior: PriorSection = field(default_factory=PriorSection)
    posterior: PosteriorSection = field(default_factory=PosteriorSection)
    certificate: CertificateSection = field(default_factory=CertificateSection)
    seed: int = setting(0, "seed of the split, the initialisation, training and the Monte Carlo draws", check=SEED)

    #: Settings the prior depends on: runs that share them share one trained prior.
    PRIOR_FIELDS = ("dataset", "data_dir", "binary", "arch", "widths", "prior", "alpha", "standardize", "prior_epochs",
                    "prior_lr", "prior_batch", "prior_optimizer", "prior_momentum", "prior_dropout",
                    "prior_schedule", "prior_augment", "dp_epsilon", "dp_base_scale", "dp_lr", "dp_epochs", "seed")

    def prior_digest(self) -> str:
        return self.digest(self.PRIOR_FIELDS)

    def __post_init__(self) -> None:
        if self.standardize is None:
            object.__setattr__(self, "data",
                               dataclasses.replace(self.data, standardize=self.prior.kind is PriorKind.DATA))
        checks = [
            (self.dataset in DATASETS, "dataset", f"one of {DATASETS}"),
            # --binary 99 on 10 classes would relabel every example 0: a "2 classes" task of one class.
            (self.binary is None or (0 < len(self.binary) < DATASET_CLASSES
                                     and len(set(self.binary)) == len(self.binary)
                                     and all(_CLASS.ok(c) for c in self.binary)),
             "binary", f"1 to {DATASET_CLASSES - 1} distinct classes in [0, {DATASET_CLASSES})"),
            (self.prior_augment is AugmentName.NONE or self.prior.kind is PriorKind.DATA, "prior_augment",
             "'none' unless the prior is 'data' (only a prior trained on its own data may be augmented)"),
            (not self.standardize or self.prior.kind is PriorKind.DATA, "standardize",
             "False unless the prior is 'data' (with a data-free or DP prior its statistics would come from the "
             "bound set)"),
            (0.0 < self.alpha < 1.0 or self.prior.kind is PriorKind.INIT, "alpha", "in (0, 1)"),
            (len(self.objectives) > 0 and all(o in OBJECTIVES for o in self.objectives),
             "objectives", f"from {OBJECTIVES}"),
            (not S.get_family(self.family).needs_data_prior or self.prior.kind is PriorKind.DATA, "prior",
             "'data' with family 'mask' (the masks keep the prior's trained weights; a data-free prior would mask "
             "the random initialisation)"),
            (S.get_family(self.family).learns_prior_scale or not self.learn_prior_scale,
             "learn_prior_scale",
             "False with family 'mask' (a mask prior has keep probabilities, not a scale)"),
            (0.0 < self.sparsity < 1.0, "sparsity", "in (0, 1)"),
            (0.0 < self.mask_flip < 0.5, "mask_flip", "in (0, 0.5)"),
            (self.delta + self.mc_delta < 1, "mc_delta", f"such that delta + mc_delta < 1 (delta = {self.delta})"),
            (isinstance(self.settings_looked_at, int) and self.settings_looked_at >= 1, "settings_looked_at",
             "a whole number >= 1"),
            (_whole_positive(self.batch), "batch", "a whole number >= 1"),
            (_whole_positive(self.prior_batch), "prior_batch", "a whole number >= 1"),
            # The bounded log-loss -ln(max(p, p_min)) / ln(1/p_min) lies in [0, 1] only for 0 < p_min < 1.
            (0.0 < self.p_min < 1.0, "p_min", "in (0, 1) (the bounded log-loss divides by ln(1/p_min))"),
        ]
        self._validate(checks)


#: The README's main job: 10-class digits, the defaults (CNN, prior with dropout 0.2 on half the data,
#: standardised inputs, f_quad). The settings were chosen by
#: :func:`genbounds.experiments.search.search_on_prior_data`, which sees the prior's data only.
#: Certificate (a) is opt-in (``mc_m = 0``; ``genbounds quickstart --mc-m 1000`` asks for it): on this
#: bound set it is always looser than (b) (0.081-0.083 against 0.057-0.059) and took a fifth of the run.
QUICKSTART = PacBayesConfig.flat(mc_m=0)

#: The MLP the quickstart used before the search's fourth round (three objectives side by side).
MLP_DIGITS = PacBayesConfig.flat(arch="mlp", prior_dropout=0.0, objectives=("quad", "seeger", "classic"))


# ---------------------------------------------------------------------------------------
# Checkpoints


def _save_pickle(path: Path, obj: Any) -> None:
    write_atomic(path, lambda f: pickle.dump(jax.device_get(obj), f), binary=True)


def _load_pickle(path: Path, log: Callable[[str], None]) -> Any | None:
    """A checkpoint, or None when there is none or it was written by another version."""
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as err:
        log(f"ignored checkpoint {path.name} (unreadable by this version: {type(err).__name__}); recomputing")
        return None


# ---------------------------------------------------------------------------------------
# Stages


class Setup(NamedTuple):
    """What every stage needs: the data, the network, the run's keys, the training examples that
    build the prior (empty for a data-free prior), the checkpoint folder, and the seconds of each
    phase run so far (:func:`phase_keys`; the stages add to it, the record stores it)."""

    cfg: PacBayesConfig
    data: TrainTest
    net: nets.Net
    keys: dict[str, jax.Array]
    prior_idx: np.ndarray
    out: Path
    ckpt: Path
    timings: dict[str, float]


#: Added to each pixel's standard deviation by :func:`standardize` (pixels constant on the prior
#: data, such as image borders, stay finite).
STD_FLOOR = 0.1


def standardize(data: TrainTest, idx: np.ndarray) -> TrainTest:
    """Inputs standardised per pixel, x -> (x - mean) / (std + :data:`STD_FLOOR`), with the mean and
    std of the training examples ``idx`` only (the prior's data: the bound set never shapes the
    network, the same rule as for the prior's weights)."""
    x = data.train.x[idx].astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + STD_FLOOR

    def apply(d):
        return dataclasses.replace(d, x=((d.x - mean) / std).astype(np.float32))
    return TrainTest(apply(data.train), apply(data.test))

class PriorResult(NamedTuple):
    """The prior, the weights the posterior starts from, the latter's test error, the prior
    mean's error on the bound set (held out from the prior: data it was not trained on), and for
    mask runs the prior net's magnitude mask at the configured sparsity (computed once: the mask
    prior, the posterior's start and the magnitude-pruning certificate all use it)."""

    prior: S.Prior
    start: Any
    test_error: float
    heldout_error: float
    seconds: float | None
    magnitude: Any = None


def prepare(cfg: PacBayesConfig, out: str | os.PathLike, log: Callable[[str], None] = print) -> Setup:
    """Load the data, build the network, split the keys, create the checkpoint folder."""
    t0 = time.perf_counter()
    out = Path(out)
    ckpt = out / "checkpoints" / cfg.digest()
    write_json_atomic(ckpt / "config.json", cfg.to_dict())
    data = load(cfg.dataset, cfg.data_dir, binary=cfg.binary, seed=cfg.seed)
    shape, k = data.train.x.shape[1:], data.train.num_classes
    net = nets.mlp(shape, cfg.widths, k) if cfg.arch is Arch.MLP else nets.cnn(shape, k)
    names = ("init", "split", "prior", "post", "cert", "test")
    keys = dict(zip(names, jax.random.split(jax.random.PRNGKey(cfg.seed), len(names))))
    idx = np.zeros(0, dtype=np.int64)
    if cfg.prior.kind is PriorKind.DATA:
        perm = np.asarray(jax.random.permutation(keys["split"], len(data.train)))
        idx = np.sort(perm[: prior_split_size(cfg.alpha, len(data.train))])
    if cfg.standardize:
        data = standardize(data, idx)
    log(f"{cfg.dataset}: {len(data.train)} training / {len(data.test)} test examples, {k} classes; "
        f"{net.name}; prior: {cfg.prior.kind}" + ("; inputs standardised with the prior data's statistics"
                                              if cfg.standardize else ""))
    return Setup(cfg, data, net, keys, idx, out, ckpt, {"setup_s": time.perf_counter() - t0})


def prior_split_size(alpha: float, n_train: int) -> int:
    """Training examples that build a data prior: round(alpha N) of the N, which must leave at
    least one example for the prior and one for the bound set (1 <= round(alpha N) <= N - 1)."""
    k = int(round(alpha * n_train))
    if not 1 <= k <= n_train - 1:
        raise ValueError(f"argument 'alpha' must leave at least one training example for the prior and one for the "
                         f"bound set: round(alpha N) = {k} with alpha = {alpha!r} and N = {n_train}")
    return k


def prior_stage(setup: Setup, *, progress: bool = True, log: Callable[[str], None] = print) -> PriorResult:
    """Stage 1: the prior (from its checkpoint when there is one).

    Data prior: the mean is trained on a random fraction ``alpha`` of the training set, whose
    indices the prior keeps (they leave the bound set). Init prior (Dziugaite & Roy 2017): the
    mean is the random initialisation, and the posterior starts from SGD on all the data. DP prior
    (Dziugaite & Roy 2018): the mean is drawn by SGLD from the Gibbs distribution of all the data
    at epsilon = ``dp_epsilon`` (:func:`genbounds.estimators.snn.dp_prior`; the privacy of SGLD is an
    approximation, recorded), nothing is held out, and the posterior starts at that draw.
    """
    cfg, net, keys, train = setup.cfg, setup.net, setup.keys, setup.data.train
    prior_file = setup.out / "checkpoints" / f"prior-{cfg.prior_digest()}.pkl"
    saved = _load_pickle(prior_file, log)
    seconds, idx = None, setup.prior_idx
    if saved is not None:
        mean, start, dp = saved["mean"], saved["sgd"], saved.get("dp")
        log("resumed: prior from checkpoint")
    else:
        t0 = time.perf_counter()
        init = net.init(keys["init"])
        dp = None
        if cfg.prior.kind is PriorKind.DP:
            # The mean is an (approximately) epsilon-DP draw from the Gibbs distribution of all the data;
            # the posterior starts there.
            private = S.dp_prior(net, init, train, key=keys["prior"], epsilon=cfg.dp_epsilon,
                                 prior_scale=cfg.prior_scale, base_scale=cfg.dp_base_scale, eta=cfg.dp_lr,
                                 epochs=cfg.dp_epochs, batch_size=cfg.prior_batch, p_min=cfg.p_min,
                                 family=cfg.family, progress=progress)
            mean = start = private.mean
            dp = private.dp
        else:
            fit_on = train.take(idx) if cfg.prior.kind is PriorKind.DATA else train
            steps = cfg.prior_epochs * steps_per_epoch(len(fit_on), cfg.prior_batch)
            opt = make_optimizer(cfg.prior_optimizer, cfg.prior_lr, cfg.prior_momentum, cfg.prior_schedule, steps)
            start = S.train_deterministic(net, init, fit_on, key=keys["prior"], epochs=cfg.prior_epochs,
                                          batch_size=cfg.prior_batch, optimizer=opt, dropout=cfg.prior_dropout,
                                          augment=get_augment(cfg.prior_augment),
                                          progress=progress,
                                          desc="prior" if cfg.prior.kind is PriorKind.DATA else "sgd")
            mean = start if cfg.prior.kind is PriorKind.DATA else init
        seconds = time.perf_counter() - t0
        _save_pickle(prior_file, {"mean": mean, "indices": idx, "sgd": start, "dp": dp})
    details = {"seed": cfg.seed, "alpha": cfg.alpha if cfg.prior.kind is PriorKind.DATA else 0.0,
               "dropout": cfg.prior_dropout, "standardize": cfg.standardize}
    if cfg.prior_augment is not AugmentName.NONE:
        details["augment"] = cfg.prior_augment.value
    scale: Any = cfg.prior_scale
    magnitude = None
    fam = S.get_family(cfg.family)
    if fam.masks_weights:
        # Bernoulli prior from the prior net's own magnitudes (prior data only), fixed before the bound set is seen.
        magnitude = S.magnitude_mask(mean, cfg.sparsity)
        if cfg.mask_prior is MaskPrior.UNIFORM:
            scale = 1.0 - cfg.sparsity        # data-free keep probability
            details.update(masks="uniform keep probability (data-free)", sparsity=cfg.sparsity)
        else:
            scale = S.mask_prior(magnitude, cfg.mask_flip)
            details.update(masks="global magnitude of the prior mean", sparsity=cfg.sparsity, mask_flip=cfg.mask_flip)
    prior = S.Prior(mean, scale, fam, idx, details, dp=dp)
    test_error = S.error_rate(net, start, setup.data.test)
    heldout = S.error_rate(net, prior.mean, S.bound_set(train, prior)[0])
    what = {PriorKind.DATA: "prior", PriorKind.INIT: "SGD", PriorKind.DP: "DP prior"}[cfg.prior.kind]
    log(f"{what} net test error {test_error:.4f}; prior mean's error on the "
        f"{len(train) - prior.n_data} bound-set examples {heldout:.4f} (prior data {prior.n_data})")
    return PriorResult(prior, start, test_error, heldout, seconds, magnitude)


def posterior_stage(setup: Setup, pr: PriorResult, objective: str, *, progress: bool = True,
                    log: Callable[[str], None] = print) -> tuple[S.PosteriorState, list[dict], float]:
    """Stage 2: train the posterior for one objective, checkpointing every epoch (resumes).
    Returns the final state, the per-epoch history and the training seconds."""
    cfg = setup.cfg
    t0 = time.perf_counter()
    state_file = setup.ckpt / f"{objective}.state.pkl"
    saved = _load_pickle(state_file, log)
    state, start, history = (None, 0, []) if saved is None else (saved["state"], saved["epoch"], saved["history"])
    steps = cfg.epochs * steps_per_epoch(len(setup.data.train), cfg.batch)
    if saved is not None:
        log(f"resumed: {objective} from epoch {start}")

    def on_epoch(epoch, st, rec):
        history.append(rec)
        _save_pickle(state_file, {"state": st, "epoch": epoch, "history": history})

    step = S.posterior_step(
        setup.net, pr.prior, optimizer=make_optimizer(cfg.optimizer, cfg.lr, cfg.momentum, cfg.schedule, steps),
        objective_name=objective, n_bound=len(setup.data.train) - pr.prior.n_data, delta=cfg.delta, p_min=cfg.p_min,
        learn_prior_scale=cfg.learn_prior_scale, independent=not cfg.shared_sample)
    state, _ = S.train_posterior(
        step, _posterior_start(cfg, pr), setup.data.train,
        key=jax.random.fold_in(setup.keys["post"], zlib.crc32(objective.encode())), epochs=cfg.epochs,
        batch_size=cfg.batch, progress=progress, state=state, start_epoch=start, on_epoch=on_epoch, desc=objective)
    return state, history, time.perf_counter() - t0


def _posterior_start(cfg: PacBayesConfig, pr: PriorResult) -> S.Posterior:
    """Where posterior training starts: the family's own start from the prior, except that masks
    always start at the prior net's magnitude mask softened by ``mask_flip`` (for the magnitude
    prior that is the prior itself, KL 0; under the uniform prior it costs what it costs)."""
    fam = pr.prior.family
    if fam.masks_weights:
        return fam.init(pr.start, dataclasses.replace(pr.prior, scale=S.mask_prior(pr.magnitude, cfg.mask_flip)))
    return fam.init(pr.start, pr.prior)


def certify_stage(setup: Setup, pr: PriorResult, objective: str, state: S.PosteriorState, history: list[dict],
                  train_seconds: float, *, progress: bool = False) -> PacBayesResult:
    """Stage 3: certificate (b) (and (a) when ``mc_m > 0``) on the bound set, test errors.
    Returns the objective's result. With ``progress`` the passes that run longer than a few seconds show it."""
    cfg, net, keys = setup.cfg, setup.net, setup.keys
    post = state.posterior
    grid = (cfg.grid_b, cfg.grid_c) if cfg.learn_prior_scale else None
    details = {"objective": objective, "dataset": cfg.dataset, "arch": net.name, "seed": cfg.seed,
               "config_digest": cfg.digest()}
    common = dict(delta=cfg.delta, mc_delta=cfg.mc_delta, prior_scale=state.prior_scale, prior_grid=grid,
                  details=details, progress=progress)
    started = time.perf_counter()
    excess: dict[str, Any] = {}
    if excess_applies(cfg, pr.prior):
        # one pass of per-example draws: certificate (b), and the same draws against the prior's own network
        (cert_b, mc_b), (cert_x, counts) = S.certify_with_excess(
            net, post, pr.prior, setup.data.train, key=keys["cert"], r=cfg.mc_r, delta=cfg.delta,
            mc_delta=cfg.mc_delta, details=details, progress=progress)
        excess = {"certificate_excess": paid_for_settings(cert_x, cfg),
                  "disagreement": Disagreement(counts.reference_errors, counts.plus_draws, counts.minus_draws,
                                               counts.draws)}
    else:
        cert_b, mc_b = S.certify(net, post, pr.prior, setup.data.train, key=keys["cert"],
                                 estimate=S.PerExampleDraws(cfg.mc_r), **common)
    started = _add_seconds(setup.timings, f"certificate_b_{objective}_s", started)
    weights: dict[str, Any] = {}
    if cfg.mc_m > 0:
        cert_a, mc_a = S.certify(net, post, pr.prior, setup.data.train, key=jax.random.fold_in(keys["cert"], 1),
                                 estimate=S.WeightDraws(cfg.mc_m), **common)
        started = _add_seconds(setup.timings, f"certificate_a_{objective}_s", started)
        cert_a = paid_for_settings(cert_a, cfg)
        weights = {"certificate_weights": cert_a, "mc_weights": MonteCarloRisk.from_dict(mc_a.to_dict())}
    cert_b = paid_for_settings(cert_b, cfg)
    masks = None
    if pr.prior.family.masks_weights:
        started = time.perf_counter()
        masks = mask_comparison(setup, pr, post)
        _add_seconds(setup.timings, f"masks_{objective}_s", started)
    Certificate.from_dict(cert_b.to_dict())  # re-validated before it is stored
    return PacBayesResult(
        objective=objective, certificate=cert_b, mc=MonteCarloRisk.from_dict(mc_b.to_dict()),
        test_error_stochastic=S.mc_independent(net, post, pr.prior.family, setup.data.test, r=10,
                                               key=keys["test"], progress=progress, desc="test error").zero_one,
        test_error_mean=S.error_rate(net, pr.prior.family.center(post), setup.data.test),
        prior_test_error=pr.test_error, prior_heldout_error=pr.heldout_error, kl_over_n=cert_b.kl / cert_b.n_bound,
        train_seconds=train_seconds, certify_seconds=mc_b.seconds, history=tuple(history), masks=masks, **weights,
        **excess)


def excess_applies(cfg: PacBayesConfig, prior: S.Prior) -> bool:
    """Whether a run also gets the combined certificate over the prior's own network
    (:func:`genbounds.estimators.snn.certify_excess`): a prior trained on held-out examples (not data-free, not
    DP) at a scale fixed with it (a scale learned on the bound set is not paid for by that certificate)."""
    return prior.n_data > 0 and prior.dp is None and not cfg.learn_prior_scale


def paid_for_settings(cert: Certificate, cfg: PacBayesConfig) -> Certificate:
    """``cert`` paid for the choice of ``cfg`` among the ``cfg.settings_looked_at`` settings whose
    certificates were looked at on this bound set (:func:`genbounds.bounds.pay_for_choice`)."""
    return pay_for_choice(cert, cfg.settings_looked_at, f"config {cfg.digest()}",
                          f"these settings kept among {cfg.settings_looked_at} looked at on this bound set")


def mask_comparison(setup: Setup, pr: PriorResult, post: S.Posterior) -> MaskComparison:
    """For a mask posterior: its expected sparsity, and two deterministic predictors certified on
    the same bound set with the Seeger bound and no Monte Carlo step (their bound-set errors are
    exact):

    * ``magnitude``: the prior's magnitude-pruned net at the configured sparsity. Its mask is a
      function of the prior's data alone, so it is a predictor fixed before the bound set is seen:
      KL = 0 (a point-mass posterior on a point-mass prior).
    * ``thresholded``: the posterior's mask thresholded at q > 1/2, certified as a point mass under
      the Bernoulli prior: KL = -sum_i ln P(m_i) (:func:`genbounds.bounds.kl_bernoulli_masks` at
      q in {0, 1}). A different predictor from the stochastic one.
    """
    cfg, net, train = setup.cfg, setup.net, setup.data.train
    bset = S.bound_set(train, pr.prior)[0]
    n = len(bset)
    q = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), S.mask_keep(post))
    thresholded = jax.tree_util.tree_map(lambda x: x > 0.5, q)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(q))

    def sparsity(keep: Any) -> float:           # 1 - the mean keep probability (or kept fraction) over all weights
        return 1.0 - sum(float(np.sum(x)) for x in jax.tree_util.tree_leaves(keep)) / n_params

    predictors = {}
    for name, mask, kl in (("magnitude", pr.magnitude, 0.0),
                           ("thresholded", thresholded,
                            float(bounds.kl_bernoulli_masks(jax.tree_util.tree_map(lambda m: m.astype(np.float64),
                                                                                   thresholded), pr.prior.scale)))):
        params = S.masked_weights(pr.prior.mean, mask)
        err = S.error_rate(net, params, bset)
        cert = paid_for_settings(bounds.pac_bayes_certificate(
            "seeger", err, kl, n, cfg.delta, n_prior=pr.prior.n_data,
            details={"predictor": f"{name} mask (deterministic)", "dataset": cfg.dataset, "arch": net.name,
                     "seed": cfg.seed, "config_digest": cfg.digest()}), cfg)
        predictors[name] = MaskPredictor(cert, S.error_rate(net, params, setup.data.test), sparsity(mask))
    return MaskComparison(cfg.sparsity, sparsity(q), n_params, **predictors)


def record_stage(setup: Setup, results: list[PacBayesResult], timings: dict) -> PacBayesRecord:
    """Stage 4: write ``OUT/record.json``; ``best`` is the minimum of the record's
    :meth:`~.results.PacBayesRecord.best_candidates` (the combined certificates when the run has them) paid for
    with a union bound (:func:`genbounds.bounds.union_minimum`), or the one combined certificate itself."""
    record = PacBayesRecord.new(setup.cfg.to_dict(), setup.cfg.seed, results, timings)
    candidates = record.best_candidates()
    if len(candidates) > 1 or candidates[0][0].endswith("(excess)"):
        record = dataclasses.replace(record, best=union_minimum([c for _, c in candidates],
                                                                [label for label, _ in candidates]))
    write_record(setup.out / "record.json", record.to_dict())
    return record


def run_pac_bayes(cfg: PacBayesConfig, out: str | os.PathLike, *, progress: bool = True,
                  log: Callable[[str], None] = print) -> PacBayesRecord:
    """Run ``cfg`` (prior -> posterior -> certify -> record), resuming from checkpoints in
    ``out``; returns the written record (``.to_dict()`` is its JSON)."""
    t_start = time.perf_counter()
    setup = prepare(cfg, out, log)
    pr = prior_stage(setup, progress=progress, log=log)
    timings = setup.timings
    if pr.seconds is not None:
        timings["prior_s"] = pr.seconds
    results = []
    for obj in cfg.objectives:
        done = setup.ckpt / f"{obj}.result.json"
        if done.exists():
            results.append(PacBayesResult.from_dict(json.loads(done.read_text())))
            log(f"resumed: {obj} already finished")
            continue
        state, history, seconds = posterior_stage(setup, pr, obj, progress=progress, log=log)
        timings[f"posterior_{obj}_s"] = seconds
        started = time.perf_counter()
        result = certify_stage(setup, pr, obj, state, history, seconds, progress=progress)
        _add_rest(timings, f"test_{obj}_s", started, phase_keys(obj)[1:-1])
        write_json_atomic(done, result.to_dict())
        results.append(result)
        log(f"{obj}: certificate {format_number(result.certificate.value, 4, upper=True)} (stochastic test "
            f"error {result.test_error_stochastic:.4f}), {seconds:.0f} s training")
    timings["total_s"] = time.perf_counter() - t_start
    log(phase_table(timings, cfg.objectives))
    return record_stage(setup, results, timings)


#: A run's phases per objective, in order: (key stem, name in :func:`phase_table`). Certificate (b) includes the
#: combined certificate, made from the same draws; records written before that have a separate combined phase.
PHASES = (("posterior", "posterior"), ("certificate_b", "certificate (b)"), ("certificate_a", "certificate (a)"),
          ("certificate_excess", "combined (excess)"), ("masks", "mask predictors"), ("test", "test errors"))


def phase_keys(objective: str) -> tuple[str, ...]:
    """The ``timings`` keys of one objective's phases, in :data:`PHASES` order (``posterior_quad_s``, ...)."""
    return tuple(f"{stem}_{objective}_s" for stem, _ in PHASES)


def phase_table(timings: Mapping[str, float], objectives: tuple[str, ...]) -> str:
    """One line of the seconds each phase took (those that ran): setup, prior, then per objective its
    :data:`PHASES`, then the total (a record's ``timings``; resumed phases are absent)."""
    def joined(pairs):
        return ", ".join(f"{name} {timings[key]:.1f}" for key, name in pairs if key in timings)

    parts = [joined((("setup_s", "setup"), ("prior_s", "prior")))]
    for obj in objectives:
        mine = joined(zip(phase_keys(obj), (name for _, name in PHASES)))
        if mine:
            parts.append(f"{obj}: {mine}")
    total = f"; total {timings['total_s']:.1f}" if "total_s" in timings else ""
    return "seconds: " + "; ".join(p for p in parts if p) + total


def _add_seconds(timings: dict[str, float], key: str, since: float) -> float:
    """Add the seconds since ``since`` (a ``time.perf_counter()`` reading) to ``timings[key]``; returns now."""
    now = time.perf_counter()
    timings[key] = timings.get(key, 0.0) + now - since
    return now


def _add_rest(timings: dict[str, float], key: str, since: float, parts: tuple[str, ...]) -> None:
    """``timings[key]``: the seconds since ``since`` less those of the ``parts`` already timed in that span
    (the test errors: what the certify stage does after its certificates)."""
    timings[key] = time.perf_counter() - since - sum(timings.get(p, 0.0) for p in parts)

