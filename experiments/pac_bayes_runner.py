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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from .. import bounds
from ..bounds import Certificate, pay_for_choice, union_minimum
from ..estimators import nets
from ..estimators import snn as S
from ..estimators.augment import AUGMENTATIONS, get_augment
from ..estimators.data import DATASETS, TrainTest, load
from ..estimators.snn import FAMILIES, OBJECTIVES
from ..estimators.steps import steps_per_epoch
from .config import OPTIMIZERS, SCHEDULES, RunConfig, make_optimizer
from .records import new_record, write_atomic, write_json_atomic, write_record
from .report import format_number

__all__ = ["PacBayesConfig", "QUICKSTART", "MLP_DIGITS", "Setup", "PriorResult", "run_pac_bayes", "prepare",
           "prior_stage", "posterior_stage", "certify_stage", "mask_comparison", "record_stage", "all_certificates",
           "prior_split_size"]


def _whole_positive(x: Any) -> bool:
    """Whether ``x`` is a whole number >= 1 (an int, not a bool or a float)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= 1


@dataclass(frozen=True)
class PacBayesConfig(RunConfig):
    """Every setting of a PAC-Bayes run (recorded verbatim in the result record)."""

    dataset: str = "digits"
    data_dir: str | None = None
    binary: tuple[int, ...] | None = None     # classes relabelled 1 (e.g. 5 6 7 8 9)
    arch: str = "cnn"                          # mlp | cnn (the CNN won the settings search on digits)
    widths: tuple[int, ...] = (256, 256)       # MLP hidden widths
    prior: str = "data"                        # data | init | dp (mean drawn by an epsilon-DP mechanism on all data)
    alpha: float = 0.5                         # fraction of the training set for the prior
    standardize: bool | None = None            # inputs standardised per pixel with the prior data's statistics
                                               # (None: yes for a data prior, no for a data-free one)
    objectives: tuple[str, ...] = ("quad",)
    family: str = "gaussian"                   # gaussian | laplace | mask (Bernoulli masks over the prior's weights)
    sparsity: float = 0.9                      # mask: fraction pruned by the prior's magnitude mask
    mask_flip: float = 0.01                    # mask: prior keep probability of a pruned weight (1 - it: of a kept one)
    mask_prior: str = "magnitude"              # mask: magnitude (keep 1 - flip / flip from the prior net's magnitudes)
                                               # or uniform (data-free: keep probability 1 - sparsity for every weight)
    prior_scale: float = 0.02                  # prior std (fixed), or initial value if learned
    learn_prior_scale: bool = False            # learn it, then round to the DR17 grid (union bound)
    grid_b: float = 100.0
    grid_c: float = 0.1
    prior_epochs: int = 100                    # deterministic training (prior mean / DR17 stage 1)
    prior_lr: float = 0.05
    prior_batch: int = 64
    prior_optimizer: str = "sgd"               # sgd | adam
    prior_momentum: float = 0.9                # SGD momentum of the prior (0: plain SGD)
    prior_dropout: float = 0.2                 # dropout on hidden activations while training the prior
    prior_schedule: str = "constant"           # constant | cosine (decay to 0 over the prior's steps)
    prior_augment: str = "none"                # none | shift | shift-flip (images; prior training only)
    dp_epsilon: float = 0.1                    # dp prior: epsilon of the Gibbs mechanism (tau = epsilon n / 2)
    dp_base_scale: float = 0.1                 # dp prior: std of the data-free base measure around the init
    dp_lr: float = 0.05                        # dp prior: SGLD step size (batch prior_batch)
    dp_epochs: int = 10                        # dp prior: SGLD epochs
    epochs: int = 50                           # posterior training
    lr: float = 0.01
    batch: int = 64
    optimizer: str = "sgd"
    momentum: float = 0.95
    schedule: str = "constant"
    shared_sample: bool = False                # one weight draw per minibatch (faster CNN training)
    p_min: float = 1e-4
    delta: float = 0.025
    mc_delta: float = 0.01
    mc_r: int = 100                            # method (b): repetitions per example
    mc_m: int = 1000                           # method (a): weight draws (0 = skip)
    settings_looked_at: int = 1                # settings (this one included) whose certificates were looked at on
                                               # this bound set before this one was kept: each certificate pays
                                               # for the choice with a union bound (delta / settings_looked_at)
    seed: int = 0

    #: Settings the prior depends on: runs that share them share one trained prior.
    PRIOR_FIELDS = ("dataset", "data_dir", "binary", "arch", "widths", "prior", "alpha", "standardize", "prior_epochs",
                    "prior_lr", "prior_batch", "prior_optimizer", "prior_momentum", "prior_dropout",
                    "prior_schedule", "prior_augment", "dp_epsilon", "dp_base_scale", "dp_lr", "dp_epochs", "seed")

    def prior_digest(self) -> str:
        return self.digest(self.PRIOR_FIELDS)

    def __post_init__(self) -> None:
        if self.standardize is None:
            object.__setattr__(self, "standardize", self.prior == "data")
        checks = [
            (self.dataset in DATASETS, "dataset", f"one of {DATASETS}"),
            (self.arch in ("mlp", "cnn"), "arch", "'mlp' or 'cnn'"),
            (self.prior in ("data", "init", "dp"), "prior", "'data', 'init' or 'dp'"),
            (self.prior != "dp" or (self.dp_epsilon > 0 and self.dp_base_scale > 0 and self.dp_lr > 0
                                    and self.dp_epochs >= 1), "dp_epsilon",
             "> 0 with dp_base_scale > 0, dp_lr > 0 and dp_epochs >= 1 for a dp prior"),
            (self.optimizer in OPTIMIZERS and self.prior_optimizer in OPTIMIZERS, "optimizer", f"one of {OPTIMIZERS}"),
            (self.schedule in SCHEDULES and self.prior_schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}"),
            (0.0 <= self.momentum < 1.0 and 0.0 <= self.prior_momentum < 1.0, "momentum", "in [0, 1)"),
            (0.0 <= self.prior_dropout < 1.0, "prior_dropout", "in [0, 1)"),
            (self.prior_augment in AUGMENTATIONS, "prior_augment", f"one of {sorted(AUGMENTATIONS)}"),
            (self.prior_augment == "none" or self.prior == "data", "prior_augment",
             "'none' unless the prior is 'data' (only a prior trained on its own data may be augmented)"),
            (not self.standardize or self.prior == "data", "standardize",
             "False unless the prior is 'data' (with a data-free or DP prior its statistics would come from the "
             "bound set)"),
            (0.0 < self.alpha < 1.0 or self.prior == "init", "alpha", "in (0, 1)"),
            (len(self.objectives) > 0 and all(o in OBJECTIVES for o in self.objectives),
             "objectives", f"from {OBJECTIVES}"),
            (self.family in FAMILIES, "family", f"one of {FAMILIES}"),
            (self.family not in FAMILIES or not S.get_family(self.family).needs_data_prior
             or self.prior == "data", "prior",
             "'data' with family 'mask' (the masks keep the prior's trained weights; a data-free prior would mask "
             "the random initialisation)"),
            (self.family not in FAMILIES or S.get_family(self.family).learns_prior_scale or not self.learn_prior_scale,
             "learn_prior_scale",
             "False with family 'mask' (a mask prior has keep probabilities, not a scale)"),
            (0.0 < self.sparsity < 1.0, "sparsity", "in (0, 1)"),
            (0.0 < self.mask_flip < 0.5, "mask_flip", "in (0, 0.5)"),
            (self.mask_prior in ("magnitude", "uniform"), "mask_prior", "'magnitude' or 'uniform'"),
            (self.prior_scale > 0, "prior_scale", "> 0"),
            (0 < self.delta < 1 and 0 < self.mc_delta < 1, "delta", "in (0, 1)"),
            (self.delta + self.mc_delta < 1, "mc_delta", f"such that delta + mc_delta < 1 (delta = {self.delta})"),
            (self.mc_r >= 1 and self.mc_m >= 0, "mc_r", ">= 1 (and mc_m >= 0)"),
            (isinstance(self.settings_looked_at, int) and self.settings_looked_at >= 1, "settings_looked_at",
             "a whole number >= 1"),
            (self.epochs >= 0 and self.prior_epochs >= 0, "epochs", ">= 0"),
            (_whole_positive(self.batch), "batch", "a whole number >= 1"),
            (_whole_positive(self.prior_batch), "prior_batch", "a whole number >= 1"),
            # The bounded log-loss -ln(max(p, p_min)) / ln(1/p_min) lies in [0, 1] only for 0 < p_min < 1.
            (0.0 < self.p_min < 1.0, "p_min", "in (0, 1) (the bounded log-loss divides by ln(1/p_min))"),
        ]
        self._validate(checks)


#: The README's main job: 10-class digits, the defaults (CNN, prior with dropout 0.2 on half the data,
#: standardised inputs, f_quad). The settings were chosen by
#: :func:`genbounds.experiments.search.search_on_prior_data`, which sees the prior's data only.
QUICKSTART = PacBayesConfig()

#: The MLP the quickstart used before the search's fourth round (three objectives side by side).
MLP_DIGITS = PacBayesConfig(arch="mlp", prior_dropout=0.0, objectives=("quad", "seeger", "classic"))


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
    build the prior (empty for a data-free prior) and the checkpoint folder."""

    cfg: PacBayesConfig
    data: TrainTest
    net: nets.Net
    keys: dict[str, jax.Array]
    prior_idx: np.ndarray
    out: Path
    ckpt: Path


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
    out = Path(out)
    ckpt = out / "checkpoints" / cfg.digest()
    write_json_atomic(ckpt / "config.json", cfg.to_dict())
    data = load(cfg.dataset, cfg.data_dir, binary=cfg.binary, seed=cfg.seed)
    shape, k = data.train.x.shape[1:], data.train.num_classes
    net = nets.mlp(shape, cfg.widths, k) if cfg.arch == "mlp" else nets.cnn(shape, k)
    names = ("init", "split", "prior", "post", "cert", "test")
    keys = dict(zip(names, jax.random.split(jax.random.PRNGKey(cfg.seed), len(names))))
    idx = np.zeros(0, dtype=np.int64)
    if cfg.prior == "data":
        perm = np.asarray(jax.random.permutation(keys["split"], len(data.train)))
        idx = np.sort(perm[: prior_split_size(cfg.alpha, len(data.train))])
    if cfg.standardize:
        data = standardize(data, idx)
    log(f"{cfg.dataset}: {len(data.train)} training / {len(data.test)} test examples, {k} classes; "
        f"{net.name}; prior: {cfg.prior}" + ("; inputs standardised with the prior data's statistics"
                                              if cfg.standardize else ""))
    return Setup(cfg, data, net, keys, idx, out, ckpt)


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
        if cfg.prior == "dp":
            # The mean is an (approximately) epsilon-DP draw from the Gibbs distribution of all the data;
            # the posterior starts there.
            private = S.dp_prior(net, init, train, key=keys["prior"], epsilon=cfg.dp_epsilon,
                                 prior_scale=cfg.prior_scale, base_scale=cfg.dp_base_scale, eta=cfg.dp_lr,
                                 epochs=cfg.dp_epochs, batch_size=cfg.prior_batch, p_min=cfg.p_min,
                                 family=cfg.family, progress=progress)
            mean = start = private.mean
            dp = private.dp
        else:
            fit_on = train.take(idx) if cfg.prior == "data" else train
            steps = cfg.prior_epochs * steps_per_epoch(len(fit_on), cfg.prior_batch)
            opt = make_optimizer(cfg.prior_optimizer, cfg.prior_lr, cfg.prior_momentum, cfg.prior_schedule, steps)
            start = S.train_deterministic(net, init, fit_on, key=keys["prior"], epochs=cfg.prior_epochs,
                                          batch_size=cfg.prior_batch, optimizer=opt, dropout=cfg.prior_dropout,
                                          augment=get_augment(cfg.prior_augment),
                                          progress=progress, desc="prior" if cfg.prior == "data" else "sgd")
            mean = start if cfg.prior == "data" else init
        seconds = time.perf_counter() - t0
        _save_pickle(prior_file, {"mean": mean, "indices": idx, "sgd": start, "dp": dp})
    details = {"seed": cfg.seed, "alpha": cfg.alpha if cfg.prior == "data" else 0.0,
               "dropout": cfg.prior_dropout, "standardize": cfg.standardize}
    if cfg.prior_augment != "none":
        details["augment"] = cfg.prior_augment
    scale: Any = cfg.prior_scale
    magnitude = None
    fam = S.get_family(cfg.family)
    if fam.masks_weights:
        # Bernoulli prior from the prior net's own magnitudes (prior data only), fixed before the bound set is seen.
        magnitude = S.magnitude_mask(mean, cfg.sparsity)
        if cfg.mask_prior == "uniform":
            scale = 1.0 - cfg.sparsity        # data-free keep probability
            details.update(masks="uniform keep probability (data-free)", sparsity=cfg.sparsity)
        else:
            scale = S.mask_prior(magnitude, cfg.mask_flip)
            details.update(masks="global magnitude of the prior mean", sparsity=cfg.sparsity, mask_flip=cfg.mask_flip)
    prior = S.Prior(mean, scale, fam, idx, details, dp=dp)
    test_error = S.error_rate(net, start, setup.data.test)
    heldout = S.error_rate(net, prior.mean, S.bound_set(train, prior)[0])
    what = {"data": "prior", "init": "SGD", "dp": "DP prior"}[cfg.prior]
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

    state, _ = S.train_posterior(
        setup.net, _posterior_start(cfg, pr), pr.prior, setup.data.train,
        key=jax.random.fold_in(setup.keys["post"], zlib.crc32(objective.encode())),
        n_bound=len(setup.data.train) - pr.prior.n_data, objective_name=objective,
        optimizer=make_optimizer(cfg.optimizer, cfg.lr, cfg.momentum, cfg.schedule, steps), delta=cfg.delta,
        epochs=cfg.epochs,
        batch_size=cfg.batch, p_min=cfg.p_min, learn_prior_scale=cfg.learn_prior_scale,
        independent=not cfg.shared_sample, progress=progress, state=state, start_epoch=start, on_epoch=on_epoch,
        desc=objective)
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
                  train_seconds: float) -> dict:
    """Stage 3: certificate (b) (and (a) when ``mc_m > 0``) on the bound set, test errors.
    Returns the objective's result entry (JSON-ready)."""
    cfg, net, keys = setup.cfg, setup.net, setup.keys
    post = state.posterior
    grid = (cfg.grid_b, cfg.grid_c) if cfg.learn_prior_scale else None
    details = {"objective": objective, "dataset": cfg.dataset, "arch": net.name, "seed": cfg.seed,
               "config_digest": cfg.digest()}
    common = dict(delta=cfg.delta, mc_delta=cfg.mc_delta, prior_scale=state.prior_scale, prior_grid=grid,
                  details=details)
    cert_b, mc_b = S.certify(net, post, pr.prior, setup.data.train, key=keys["cert"],
                             estimate=S.PerExampleDraws(cfg.mc_r), **common)
    cert_b = paid_for_settings(cert_b, cfg)
    entry: dict[str, Any] = {"objective": objective, "certificate": cert_b.to_dict(), "mc": mc_b.to_dict()}
    if cfg.mc_m > 0:
        cert_a, mc_a = S.certify(net, post, pr.prior, setup.data.train, key=jax.random.fold_in(keys["cert"], 1),
                                 estimate=S.WeightDraws(cfg.mc_m), **common)
        cert_a = paid_for_settings(cert_a, cfg)
        entry["certificate_weights"] = cert_a.to_dict()
        entry["mc_weights"] = mc_a.to_dict()
    entry.update({
        "test_error_stochastic": S.mc_independent(net, post, pr.prior.family, setup.data.test, r=10,
                                                  key=keys["test"]).zero_one,
        "test_error_mean": S.error_rate(net, pr.prior.family.center(post), setup.data.test),
        "prior_test_error": pr.test_error,
        "prior_heldout_error": pr.heldout_error,
        "kl_over_n": cert_b.kl / cert_b.n_bound,
        "train_seconds": train_seconds,
        "certify_seconds": mc_b.seconds,
        "history": history,
    })
    if pr.prior.family.masks_weights:
        entry["masks"] = mask_comparison(setup, pr, post)
    Certificate.from_dict(entry["certificate"])  # re-validated before it is stored
    return entry


def paid_for_settings(cert: Certificate, cfg: PacBayesConfig) -> Certificate:
    """``cert`` paid for the choice of ``cfg`` among the ``cfg.settings_looked_at`` settings whose
    certificates were looked at on this bound set (:func:`genbounds.bounds.pay_for_choice`)."""
    return pay_for_choice(cert, cfg.settings_looked_at, f"config {cfg.digest()}",
                          f"these settings kept among {cfg.settings_looked_at} looked at on this bound set")


def mask_comparison(setup: Setup, pr: PriorResult, post: S.Posterior) -> dict:
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

    out: dict[str, Any] = {"sparsity_target": cfg.sparsity, "expected_sparsity": sparsity(q), "n_params": n_params}
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
        out[name] = {"certificate": cert.to_dict(), "test_error": S.error_rate(net, params, setup.data.test),
                     "sparsity": sparsity(mask)}
    return out


def record_stage(setup: Setup, results: list[dict], timings: dict) -> dict:
    """Stage 4: write ``OUT/record.json``; with several certificates, ``best`` is their minimum
    paid for with a union bound (:func:`genbounds.bounds.union_minimum`)."""
    record = new_record("pac-bayes", setup.cfg.to_dict(), setup.cfg.seed, results, timings)
    candidates = all_certificates(record)
    if len(candidates) > 1:
        record["best"] = union_minimum([c for _, c in candidates], [label for label, _ in candidates]).to_dict()
    write_record(setup.out / "record.json", record)
    return record


def run_pac_bayes(cfg: PacBayesConfig, out: str | os.PathLike, *, progress: bool = True,
                  log: Callable[[str], None] = print) -> dict:
    """Run ``cfg`` (prior -> posterior -> certify -> record), resuming from checkpoints in
    ``out``; returns the written record."""
    t_start = time.perf_counter()
    setup = prepare(cfg, out, log)
    pr = prior_stage(setup, progress=progress, log=log)
    timings: dict[str, float] = {} if pr.seconds is None else {"prior_s": pr.seconds}
    results = []
    for obj in cfg.objectives:
        done = setup.ckpt / f"{obj}.result.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            log(f"resumed: {obj} already finished")
            continue
        state, history, seconds = posterior_stage(setup, pr, obj, progress=progress, log=log)
        entry = certify_stage(setup, pr, obj, state, history, seconds)
        write_json_atomic(done, entry)
        results.append(entry)
        log(f"{obj}: certificate {format_number(entry['certificate']['value'], 4, upper=True)} (stochastic test "
            f"error {entry['test_error_stochastic']:.4f}), {seconds:.0f} s training")
    timings["total_s"] = time.perf_counter() - t_start
    return record_stage(setup, results, timings)


def all_certificates(record: dict) -> list[tuple[str, Certificate]]:
    """Every certificate of a PAC-Bayes record with a label: "quad (b)", "quad (a)", ... (a mask run's
    deterministic certificates are separate statements, at delta without a Monte Carlo part)."""
    out = []
    for r in record["results"]:
        out.append((f"{r['objective']} (b)", Certificate.from_dict(r["certificate"])))
        if r.get("certificate_weights"):
            out.append((f"{r['objective']} (a)", Certificate.from_dict(r["certificate_weights"])))
    return out
