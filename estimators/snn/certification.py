r"""Certificates for stochastic networks: the empirical risk under Q, then the PAC-Bayes bound.

The bound set is *derived* here from the prior: it is the training set minus
``prior.data_indices``, so data used to build the prior can never enter the bound's sample
or its n (PBB's public code counts all 60000 training examples for a 30000-example bound set).

Two ways to certify the stochastic predictor's empirical risk
:math:`\hat L_S(Q) = \frac1n \sum_i \mathbb{E}_{W\sim Q}\,\ell(W, z_i)` on the n bound examples:

(a) :class:`WeightDraws` (``m``; :func:`mc_weight_samples`; Langford & Caruana 2002; DR17; PBB): draw m
    weight vectors, evaluate each on the whole bound set; the m per-draw risks are i.i.d. in [0,1] with
    mean :math:`\hat L_S(Q)`, so :math:`\hat L_S(Q) \le \mathrm{kl}^{-1}(\hat Q_m, \ln(2/\delta')/m)`.
    Cost: m passes over the bound set.

(b) :class:`PerExampleDraws` (``r``; :func:`mc_independent`; ours): draw an independent weight vector
    :math:`W_{ij}` for every example i and repetition j = 1..r and record :math:`L_{ij} = \ell(W_{ij}, z_i)`.

    *Theorem.* Conditionally on S, the N = n r variables :math:`L_{ij}` are independent,
    [0,1]-valued, with :math:`\mathbb{E} L_{ij} = \mathbb{E}_{W\sim Q}\ell(W, z_i)`, so their
    mean :math:`\bar L` has expectation :math:`\hat L_S(Q)`. For independent, non-identical
    [0,1] variables the Chernoff-kl bound holds with the average mean (Hoeffding 1963,
    Thm 1: each MGF is at most that of a Bernoulli with the same mean, and by concavity of
    :math:`\mu \mapsto \ln(1 - \mu + \mu e^s)` the product is at most the i.i.d. Bernoulli
    product at the average mean), hence with probability at least :math:`1-\delta'`,
    :math:`\hat L_S(Q) \le \mathrm{kl}^{-1}(\bar L, \ln(2/\delta')/N)`. (ln(1/delta') would
    suffice one-sidedly; ln(2/delta') matches :func:`genbounds.bounds.sample_convergence`.)

    Cost: r passes with per-example draws; for dense layers the local reparameterisation
    makes a per-example draw as cheap as a deterministic pass (:mod:`genbounds.estimators.nets`), and
    N = n r is far larger than m, so the Monte Carlo slack nearly vanishes.

Both then feed :func:`genbounds.bounds.pac_bayes_certificate` with the Seeger (kl) bound, in float64,
delta split into named parts (default PAC-Bayes 0.025 + Monte Carlo 0.01). :func:`certify` takes the
estimate as an object, ``estimate=PerExampleDraws(r)`` or ``estimate=WeightDraws(m)``; each carries
the label tables print ("(b)", "(a)") and the name certificates record in ``details["mc_method"]``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...bounds import (
    Certificate,
    Certified,
    ExcessMethod,
    excess_loss_certificate,
    heldout_certificate,
    pac_bayes_certificate,
    prior_grid_index,
    prior_grid_parameters,
    split_excess_delta,
)
from ...bounds._array import (
    check_budget,
    check_choice,
    check_positive,
    whole_count,
)
from ...bounds.certificate import EXCESS_DERIVED, EXCESS_SHARE, PAC_BAYES_DERIVED, REFERENCE_SHARE, user_details
from ..data import Dataset
from ..devices import batch_sharding, data_mesh, replicated
from ..models import Model, as_model, check_same_state, is_module, model_kind
from ..nets import Net, custom, predict
from ..progress import pass_progress
from ..steps import steps_per_epoch
from .families import GAUSSIAN, Family, get_family
from .objectives import Objective, ObjectiveName, bounded_cross_entropy, get_objective, zero_one
from .posterior import Posterior, Prior, PriorKind, init_posterior, kl_float64
from .train import posterior_step, train_posterior

__all__ = ["MCEstimate", "PerExampleDraws", "WeightDraws", "Estimate", "bound_set", "mc_weight_samples",
           "mc_independent", "error_rate", "certify", "certify_network", "CertifiedPredictor", "MIN_STEPS",
           "TernaryDraws", "independent_draws", "ternary_draws", "certify_excess", "certify_with_excess"]


class MCEstimate(NamedTuple):
    """A Monte Carlo estimate of the stochastic network's empirical risk.

    Attributes:
        zero_one: mean 0-1 loss over the ``n_samples`` draws.
        cross_entropy: mean bounded cross-entropy.
        n_samples: number of independent [0, 1] losses behind ``zero_one`` (n r for (b), m for (a)).
        per_group: ``[r]`` per-repetition means (b) or ``[m]`` per-weight-draw risks (a).
        seconds: wall time of the estimate.
    """

    zero_one: float
    cross_entropy: float
    n_samples: int
    per_group: np.ndarray
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """The scalar fields (what records store)."""
        return {"zero_one": self.zero_one, "cross_entropy": self.cross_entropy, "n_samples": self.n_samples,
                "seconds": self.seconds}


class TernaryDraws(NamedTuple):
    """Per-example posterior draws against the prior's network on the bound set (:func:`ternary_draws`).

    Attributes:
        reference_errors: errors of the reference network on the n bound examples (k; exact, deterministic).
        plus_draws: draws that err where the reference is right (Z = +1).
        minus_draws: draws that are right where the reference errs (Z = -1).
        draws: all draws, n r.
        seconds: wall time.
    """

    reference_errors: int
    plus_draws: int
    minus_draws: int
    draws: int
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return self._asdict()


#: ``details`` entries a certificate (b)/(a) derives: here, and in :func:`genbounds.bounds.pac_bayes_certificate`.
_SEEGER_DERIVED = ("mc_method", "mc_method_param", "split", "prior", "prior_scale", *PAC_BAYES_DERIVED)
#: ``details`` entries the combined certificate derives: here, and in :func:`genbounds.bounds.excess_loss_certificate`.
_EXCESS_DERIVED = ("mc_method", "mc_method_param", "split", "prior", "reference", "shares", "method", *EXCESS_DERIVED)


def _check_train_and_prior(train: Any, prior: Any) -> None:
    """Refuse a ``train`` that is not a :class:`~genbounds.estimators.data.Dataset` or a ``prior`` that is not a
    :class:`Prior`, naming the argument (before any draw)."""
    if not isinstance(prior, Prior):
        raise ValueError(f"argument 'prior' must be a genbounds.estimators.snn.Prior, got {type(prior).__name__}")
    if not isinstance(train, Dataset):
        raise ValueError(f"argument 'train' must be a genbounds.estimators.Dataset (Dataset(x, y, num_classes) "
                         f"wraps arrays), got {type(train).__name__}")


def bound_set(train: Dataset, prior: Prior) -> tuple[Dataset, np.ndarray]:
    """The training examples not used by the prior, and their indices."""
    _check_train_and_prior(train, prior)
    idx = prior.data_indices
    if idx.size and (idx.min() < 0 or idx.max() >= len(train)):
        raise ValueError("the prior's data_indices do not index this training set")
    mask = np.ones(len(train), dtype=bool)
    mask[idx] = False
    keep = np.nonzero(mask)[0]
    if keep.size == 0:
        raise ValueError("the prior used every training example: no data is left for the bound")
    return train.take(keep), keep


class _Batches(NamedTuple):
    """A dataset cut into ``nb`` padded batches of ``size`` on the devices: ``x: [nb, size, ...]``,
    ``y: [nb, size]``, ``valid: [nb, size]`` (False on padding), and the batch sharding."""

    x: jax.Array
    y: jax.Array
    valid: jax.Array
    size: int
    mesh: Any
    sharding: Any


def _batches(data: Dataset, batch_size: int, devices) -> _Batches:
    mesh = data_mesh(devices)
    n = len(data)
    size = min(batch_size, n)
    nb = -(-n // size)
    pad = nb * size - n
    x = np.concatenate([data.x, np.zeros((pad, *data.x.shape[1:]), data.x.dtype)]).reshape(nb, size, *data.x.shape[1:])
    y = np.concatenate([data.y, np.zeros(pad, data.y.dtype)]).reshape(nb, size)
    valid = (np.arange(nb * size) < n).reshape(nb, size)
    return _Batches(*(replicated(mesh, a) for a in (x, y, valid)), size, mesh, batch_sharding(mesh, size))


def _sum_batches(per_batch: Callable, sharding, x, y, valid):
    """``sum_i per_batch(i, x[i], y[i], valid[i])`` over the batches, as one ``lax.scan`` (each batch
    split over the devices when ``sharding`` is set). ``per_batch`` returns a pytree of sums."""
    def body(acc, inp):
        i, xb, yb, vb = inp
        if sharding is not None:
            xb, yb, vb = (jax.lax.with_sharding_constraint(a, sharding) for a in (xb, yb, vb))
        return jax.tree_util.tree_map(jnp.add, acc, per_batch(i, xb, yb, vb)), None

    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                   jax.eval_shape(per_batch, 0, x[0], y[0], valid[0]))
    return jax.lax.scan(body, zeros, (jnp.arange(x.shape[0]), x, y, valid))[0]


def _masked_sums(logits: jax.Array, y: jax.Array, valid: jax.Array, p_min: float) -> tuple[jax.Array, jax.Array]:
    """(number of errors, sum of bounded cross-entropies) over the valid examples of a batch."""
    errors = jnp.sum(jnp.where(valid, zero_one(logits, y), 0.0)).astype(jnp.int32)
    return errors, jnp.sum(jnp.where(valid, bounded_cross_entropy(logits, y, p_min), 0.0))


# The passes are module-level programs with the network and settings as static arguments, so that
# every posterior of a run (one per objective) and every repetition reuse one compilation.


@functools.partial(jax.jit, static_argnames=("net", "family", "size", "p_min", "sharding"))
def _independent_pass(rep_key, post, ref_wrong, x, y, valid, *, net: Net, family: Family, size: int, p_min: float,
                      sharding):
    """One repetition of method (b): (errors, bounded cross-entropy) of a fresh draw per example and, when
    ``ref_wrong`` (``[nb, size]``: where a deterministic reference network errs, :func:`_wrong_pass`) is given, also
    (plus, minus, reference errors): the draws that err where the reference is right, that are right where it errs,
    and its own errors."""
    apply = family.independent_logits

    def per_batch(i, xb, yb, vb):
        logits = apply(net, jax.random.fold_in(rep_key, i * size), post, xb)
        sums = _masked_sums(logits, yb, vb, p_min)
        if ref_wrong is None:
            return sums
        wrong, ref = zero_one(logits, yb) > 0.5, ref_wrong[i]
        count = functools.partial(jnp.sum, dtype=jnp.int32)
        return (*sums, count(vb & wrong & ~ref), count(vb & ~wrong & ref), count(vb & ref))
    return _sum_batches(per_batch, sharding, x, y, valid)


@functools.partial(jax.jit, static_argnames=("net", "family", "p_min", "sharding"))
def _weights_pass(keys, post, x, y, valid, *, net: Net, family: Family, p_min: float, sharding):
    def per_batch(i, xb, yb, vb):
        return jax.vmap(lambda k: _masked_sums(net.apply(family.sample(k, post), xb), yb, vb, p_min))(keys)
    return _sum_batches(per_batch, sharding, x, y, valid)


@functools.partial(jax.jit, static_argnames=("net", "sharding"))
def _wrong_pass(params, x, y, valid, *, net: Net, sharding):
    """Where the deterministic network ``params`` errs, per batch: ``[nb, size]`` (computed once, read by every
    repetition of :func:`_independent_pass`)."""
    def per_batch(inp):
        xb, yb, vb = inp
        if sharding is not None:
            xb, yb, vb = (jax.lax.with_sharding_constraint(a, sharding) for a in (xb, yb, vb))
        return vb & (zero_one(net.apply(params, xb), yb) > 0.5)
    return jax.lax.map(per_batch, (x, y, valid))


@functools.partial(jax.jit, static_argnames=("net", "sharding"))
def _errors_pass(params, x, y, valid, *, net: Net, sharding):
    return _sum_batches(lambda i, xb, yb, vb: _masked_sums(net.apply(params, xb), yb, vb, 1e-4)[0], sharding,
                        x, y, valid)


def _each_pass(run: Callable[[int], Any], items: range, *, progress: bool, desc: str, unit: str,
               size: Callable[[int], int] = lambda _: 1) -> list:
    """``run(item)`` for each item (one compiled pass each), the outputs brought to the host one pass at a time
    while the next pass is already queued on the device, so that the progress (shown once the passes run
    longer than a few seconds: :func:`genbounds.estimators.progress.pass_progress`) moves as the device works
    and the device never waits for the host; ``size(item)`` is the item's share of the total, counted in
    ``unit``."""
    out: list = []
    queued: tuple[int, Any] | None = None
    with pass_progress(sum(map(size, items)), desc, unit=unit, enabled=progress) as bar:
        for item in [*items, None]:
            started = None if item is None else (item, run(item))
            if queued is not None:
                out.append(jax.device_get(queued[1]))
                bar.update(size(queued[0]))
            queued = started
    return out


def mc_independent(net: Net, post: Posterior, family: Family | str, data: Dataset, *, r: int, key: jax.Array,
                   batch_size: int = 1000, p_min: float = 1e-4, devices: list | None = None, progress: bool = False,
                   desc: str = "certificate (b)") -> MCEstimate:
    """Method (b): an independent weight draw per (example, repetition). Returns the mean
    0-1 loss and bounded cross-entropy over the N = n r draws, and the per-repetition 0-1 means
    (``per_group: [r]``: r independent estimates, each from n draws).

    Each repetition is one compiled pass over the device-resident bound set (a ``lax.scan`` over
    batches of ``batch_size``, each split over ``devices``, default all local devices). The draw
    for batch i of repetition j uses key ``fold_in(fold_in(key, j), i * batch_size)`` and is
    independent of the padding and of the sharding (JAX's threefry is partitionable), so the
    error counts are the same on one device or many. With ``progress`` the repetitions show their
    progress as ``desc`` when they run longer than a few seconds."""
    return independent_draws(net, post, family, data, r=r, key=key, batch_size=batch_size, p_min=p_min,
                             devices=devices, progress=progress, desc=desc)[0]


def independent_draws(net: Net, post: Posterior, family: Family | str, data: Dataset, *, r: int, key: jax.Array,
                      reference: Any = None, batch_size: int = 1000, p_min: float = 1e-4, devices: list | None = None,
                      progress: bool = False, desc: str = "certificate (b)") -> tuple[MCEstimate, TernaryDraws | None]:
    """The draws of method (b) (:func:`mc_independent`) and, with ``reference`` (a deterministic network's
    parameters), in the same pass, where each draw and the reference disagree (:func:`ternary_draws`): one set of
    n r draws serves certificate (b) and the combined certificate, and the posterior's error count is
    ``r k + plus - minus`` exactly. Returns the estimate and the counts (None without ``reference``)."""
    r = whole_count("r", r)
    family = get_family(family)
    t0 = time.perf_counter()
    b = _batches(data, min(batch_size, family.eval_batch), devices)
    post = replicated(b.mesh, post)
    ref_wrong = None if reference is None else _wrong_pass(replicated(b.mesh, reference), b.x, b.y, b.valid, net=net,
                                                           sharding=b.sharding)
    static = dict(net=net, family=family, size=b.size, p_min=p_min, sharding=b.sharding)
    sums = _each_pass(lambda rep: _independent_pass(jax.random.fold_in(key, rep), post, ref_wrong, b.x, b.y, b.valid,
                                                    **static),
                      range(r), progress=progress, desc=desc, unit="repetition")
    errors = np.asarray([int(s[0]) for s in sums], dtype=np.float64)
    n_total = len(data) * r
    seconds = time.perf_counter() - t0
    mc = MCEstimate(float(errors.sum() / n_total), float(sum(float(s[1]) for s in sums)) / n_total, n_total,
                    errors / len(data), seconds)
    if reference is None:
        return mc, None
    counts = TernaryDraws(int(sums[0][4]), sum(int(s[2]) for s in sums), sum(int(s[3]) for s in sums), n_total,
                          seconds)
    return mc, counts


def mc_weight_samples(net: Net, post: Posterior, family: Family | str, data: Dataset, *, m: int, key: jax.Array,
                      chunk: int = 8, batch_size: int = 2000, p_min: float = 1e-4,
                      devices: list | None = None, progress: bool = False,
                      desc: str = "certificate (a)") -> MCEstimate:
    """Method (a): m weight draws, each evaluated on the whole set (vmapped over a chunk of
    draws, one compiled pass over the device-resident data per chunk). Returns the mean 0-1 loss
    and bounded CE over draws, and the per-draw risks (``per_group: [m]``). With ``progress`` the
    draws show their progress as ``desc`` when they run longer than a few seconds."""
    m = whole_count("m", m)
    family = get_family(family)
    b = _batches(data, batch_size, devices)
    post = replicated(b.mesh, post)
    keys = jax.random.split(key, m)
    sums = _each_pass(lambda s: _weights_pass(keys[s:s + chunk], post, b.x, b.y, b.valid, net=net, family=family,
                                              p_min=p_min, sharding=b.sharding),
                      range(0, m, chunk), progress=progress, desc=desc, unit="draw", size=lambda s: min(chunk, m - s))
    per_draw = np.concatenate([np.asarray(e, dtype=np.float64) for e, _ in sums]) / len(data)
    ce = np.concatenate([np.asarray(c, dtype=np.float64) for _, c in sums]) / len(data)
    return MCEstimate(float(per_draw.mean()), float(ce.mean()), m, per_draw)


@dataclass(frozen=True)
class PerExampleDraws:
    """Monte Carlo estimate (b): an independent weight draw for every bound-set example and each of
    ``r`` repetitions (N = n r losses; :func:`mc_independent`)."""

    r: int = 10
    #: The estimate's label in tables and record summaries.
    label: ClassVar[str] = "(b)"
    #: Its name in a certificate's ``details["mc_method"]``.
    record_name: ClassVar[str] = "independent"

    def __post_init__(self) -> None:
        object.__setattr__(self, "r", whole_count("r", self.r))      # a whole float (2.0) is the int 2

    @property
    def param(self) -> dict:
        """The estimate's size, as certificates record it (``details["mc_method_param"]``)."""
        return {"r": self.r}

    def __call__(self, net: Net, post: Posterior, family: Family | str, data: Dataset, *,
                 key: jax.Array, progress: bool = False) -> MCEstimate:
        return mc_independent(net, post, family, data, r=self.r, key=key, progress=progress)


@dataclass(frozen=True)
class WeightDraws:
    """Monte Carlo estimate (a): ``m`` weight draws, each evaluated on the whole bound set
    (m i.i.d. risks; :func:`mc_weight_samples`)."""

    m: int = 1000
    #: The estimate's label in tables and record summaries.
    label: ClassVar[str] = "(a)"
    #: Its name in a certificate's ``details["mc_method"]``.
    record_name: ClassVar[str] = "weights"

    def __post_init__(self) -> None:
        object.__setattr__(self, "m", whole_count("m", self.m))      # a whole float (3.0) is the int 3

    @property
    def param(self) -> dict:
        """The estimate's size, as certificates record it (``details["mc_method_param"]``)."""
        return {"m": self.m}

    def __call__(self, net: Net, post: Posterior, family: Family | str, data: Dataset, *,
                 key: jax.Array, progress: bool = False) -> MCEstimate:
        return mc_weight_samples(net, post, family, data, m=self.m, key=key, progress=progress)


#: A Monte Carlo estimate of the stochastic network's empirical risk, for :func:`certify`.
Estimate = PerExampleDraws | WeightDraws


def error_rate(net: Net, params: Any, data: Dataset, batch_size: int = 2000, devices: list | None = None) -> float:
    """0-1 error of a deterministic network (e.g. the posterior mean), one compiled pass."""
    b = _batches(data, batch_size, devices)
    return int(_errors_pass(replicated(b.mesh, params), b.x, b.y, b.valid, net=net, sharding=b.sharding)) / len(data)


def certify(
    net: Net, post: Posterior, prior: Prior, train: Dataset, *, key: jax.Array,
    estimate: Estimate = PerExampleDraws(), delta: float = 0.025,
    mc_delta: float = 0.01, prior_scale: float | None = None, prior_grid: tuple[float, float] | None = None,
    details: dict | None = None, progress: bool = False,
) -> tuple[Certificate, MCEstimate]:
    """Certify the posterior's 0-1 risk with the Seeger bound on the prior-free bound set.

    ``estimate`` is :class:`PerExampleDraws` ``(r)`` (certificate (b), the default with r = 10)
    or :class:`WeightDraws` ``(m)`` (certificate (a)).
    ``prior_scale``: the prior scale (std) actually used (default ``prior.scale``); a value other
    than ``prior.scale`` is refused unless ``prior_grid`` pays for it. With
    ``prior_grid = (b, c)`` the scale was learned: its variance is rounded to the
    neighbouring points c exp(-j/b) of DR17's variance grid and the better certificate is
    kept (every grid point is covered by the union bound, paid through
    :func:`genbounds.bounds.prior_grid_delta`). Returns the certificate and the Monte Carlo
    estimate (with its timing). With ``progress`` the Monte Carlo pass shows its progress when it runs
    longer than a few seconds. ``details`` are extra entries for the record; an entry the certificate derives
    (``mc_method``, ``split``, ``prior``, ...) is refused rather than written over. Every argument is checked
    before the draws.
    """
    if not isinstance(estimate, PerExampleDraws | WeightDraws):
        raise ValueError(f"argument 'estimate' must be PerExampleDraws(r) or WeightDraws(m), got {estimate!r}")
    _check_train_and_prior(train, prior)
    check_budget(delta, mc_delta)
    details = user_details(details, _SEEGER_DERIVED)
    candidates = _scale_candidates(prior, prior_scale, prior_grid)      # every argument checked before the draws
    data, keep = bound_set(train, prior)
    t0 = time.perf_counter()
    mc = estimate(net, post, prior.family, data, key=key, progress=progress)
    mc = mc._replace(seconds=time.perf_counter() - t0)
    return _seeger_certificate(mc, estimate, post, prior, train, (data, keep), candidates, delta=delta,
                               mc_delta=mc_delta, prior_grid=prior_grid, details=details), mc


def _scale_candidates(prior: Prior, prior_scale: float | None,
                      prior_grid: tuple[float, float] | None) -> list[tuple[Any, int | None]]:
    """The prior scales to certify at, with their DR17 grid index (None: the prior's own scale, nothing paid);
    refuses a scale that differs from the prior's own without a grid that pays for it."""
    fam = prior.family
    if not fam.learns_prior_scale and (prior_scale is not None or prior_grid is not None):
        raise ValueError(f"arguments 'prior_scale' and 'prior_grid' do not apply to a {fam.name.value} prior (its "
                         f"{fam.scale_means} are fixed with the prior)")
    if prior_scale is not None:                  # one finite number > 0 (text, arrays, -1.0 refused by name)
        check_positive("prior_scale", prior_scale)
    scale = prior.scale if prior_scale is None else float(prior_scale)
    if prior_grid is None and fam.learns_prior_scale and scale != prior.scale:
        raise ValueError(
            f"argument 'prior_scale' = {scale!r} differs from the prior's own scale {prior.scale!r}, and "
            "nothing records how it was chosen. A scale learned or chosen on the bound set must be paid "
            "for: pass prior_grid=(b, c) to round it to the Dziugaite & Roy variance grid, paid by a "
            "union bound over the grid (certify_network and PacBayesConfig do this with "
            "learn_prior_scale=True). Only a scale fixed before seeing the bound set (without data, or "
            "on the prior's data_indices alone) may be the Prior's own scale, given when it is built")
    if prior_grid is None:
        return [(scale, None)]
    # As in DR17 the grid c exp(-j/b) is over the prior *variance* (scale^2).
    b, c = prior_grid_parameters(prior_grid)
    variance = scale * scale
    if not (math.isfinite(variance) and variance >= sys.float_info.min):
        who = "argument 'prior_scale'" if prior_scale is not None else "argument 'prior': its scale"
        raise ValueError(f"{who} {scale!r} has variance {variance!r}, outside the normal float64 range "
                         f"[{sys.float_info.min:g}, {sys.float_info.max:g}]: the Dziugaite & Roy grid c exp(-j/b) is "
                         "over the variance, so it has no index for this scale")
    j_real = float(prior_grid_index(variance, b, c))
    js = sorted({max(0, math.floor(j_real)), max(0, math.ceil(j_real))})
    return [(math.sqrt(c * math.exp(-j / b)), j) for j in js]


def _seeger_certificate(mc: MCEstimate, estimate: Estimate, post: Posterior, prior: Prior, train: Dataset,
                        bound: tuple[Dataset, np.ndarray], candidates: list[tuple[Any, int | None]], *, delta: float,
                        mc_delta: float, prior_grid: tuple[float, float] | None, details: dict | None) -> Certificate:
    """The Seeger certificate of ``mc`` (the estimate made on the bound set ``bound = bound_set(train, prior)``),
    the best over the scale ``candidates`` (all paid by the grid's union bound)."""
    data, keep = bound
    # the caller's entries never override the derived ones (user_details refuses the names)
    info = {"mc_method": estimate.record_name, **_provenance(train, prior, keep),
            **user_details(details, _SEEGER_DERIVED), "mc_method_param": estimate.param}
    best = None
    for s, j in candidates:
        kl = kl_float64(post, prior, s)
        cert = pac_bayes_certificate(
            "seeger", mc.zero_one, kl, int(keep.size), delta, mc_samples=mc.n_samples,
            mc_delta=mc_delta, n_prior=prior.n_data, prior_grid_j=j,
            dp_epsilon=None if prior.dp is None else prior.dp["epsilon"],
            dp_mechanism=None if prior.dp is None else {k: v for k, v in prior.dp.items() if k != "epsilon"},
            prior_grid=prior_grid or (100.0, 0.1),
            details=dict(info, prior_scale=s if np.isscalar(s) else "per-weight keep probabilities"))
        if best is None or cert.value < best.value:
            best = cert
    assert best is not None
    return dataclasses.replace(best, guess_risk=guess_risk(data))


def _provenance(train: Dataset, prior: Prior, keep: np.ndarray) -> dict:
    """What every certificate of a posterior records of its data split and its prior."""
    derived = {"kind": prior.kind.value, "family": prior.family.name.value}
    described = {**derived, **prior.details}
    described.update(derived)               # Prior refuses these keys in its details; the derived ones win regardless
    return {"split": {"n_train": len(train), "n_prior": prior.n_data, "n_bound": int(keep.size)},
            "prior": described}


def guess_risk(data: Dataset) -> float:
    """The error of always predicting the most frequent label of ``data``: a certificate at or above it says no
    more than guessing (:attr:`genbounds.bounds.Certificate.vacuous`)."""
    return 1.0 - float(np.bincount(np.asarray(data.y)).max()) / len(data)


#: Optimiser steps :func:`certify_network` takes at least (when ``epochs`` is not given).
MIN_STEPS = 1000


#: What a :func:`certify_network` certificate covers, by default and with ``train_mean=True``.
AROUND_YOUR_WEIGHTS = "stochastic posterior around your weights"
MEAN_MOVED = "stochastic posterior trained from your weights (its mean moved: see distance_to_weights)"


@dataclass(frozen=True)
class CertifiedPredictor:
    """Which predictor a :func:`certify_network` certificate covers, and how it relates to your network
    (stored in the certificate's ``details["predictor"]`` as :meth:`to_dict`).

    The certificate bounds the risk of the *stochastic* predictor: a Gaussian over the weights
    with mean ``mu_Q``, a fresh draw per prediction. Distances are relative,
    ``||mu_Q - w|| / ||w||`` over all trainable leaves.

    Attributes:
        predictor: :data:`AROUND_YOUR_WEIGHTS` (``mu_Q`` = your weights; the default) or
            :data:`MEAN_MOVED` (``train_mean=True``).
        model: what was read (a :class:`genbounds.estimators.models.ModelKind` value).
        train_mean: whether the posterior mean was trained.
        distance_to_weights: ``||mu_Q - your weights|| / ||your weights||``.
        distance_to_prior: ``||mu_Q - prior mean|| / ||prior mean||``.
        bound_set_agreement: fraction of bound-set examples on which the network at ``mu_Q`` predicts
            the class your network predicts.
        stochastic_test_error: the stochastic predictor's error on ``test_set`` (per-example draws,
            ``r`` per example); None without a test set. So are the next three:
        mean_test_error: the network at ``mu_Q``.
        network_test_error: your network.
        prior_test_error: the prior's network.
    """

    predictor: str
    model: str
    train_mean: bool
    distance_to_weights: float
    distance_to_prior: float
    bound_set_agreement: float
    stochastic_test_error: float | None = None
    mean_test_error: float | None = None
    network_test_error: float | None = None
    prior_test_error: float | None = None

    def to_dict(self) -> dict:
        """The fields, as the certificate's details hold them."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CertifiedPredictor:
        """The inverse of :meth:`to_dict`."""
        return cls(**d)


def certify_network(
    model: Any, params: Any = None, train: Dataset | None = None, *, key: jax.Array, prior_mean: Any,
    prior_indices: np.ndarray | None = None, data_free: bool = False, prior_scale: float = 0.03,
    learn_prior_scale: bool = False, train_mean: bool = False, objective: Objective | str = "quad",
    optimizer: optax.GradientTransformation | None = None, epochs: int | None = None,
    batch_size: int = 100, r: int = 10, delta: float = 0.025, mc_delta: float = 0.01,
    test_set: Dataset | None = None, progress: bool = True,
) -> tuple[Certificate, Posterior]:
    """Certify a network you trained yourself, in one call (Dziugaite & Roy 2017, stage 2).

    ``certify_network(model, train, ...)`` for a module that holds its weights (Flax NNX, Equinox);
    ``certify_network(model, params, train, ...)`` for a Flax linen module and its variables, or an
    ``apply(params, x)`` function and its weights (:func:`genbounds.estimators.models.as_model`
    reads each kind; only floating-point weights are stochastic, BatchNorm statistics and other
    fixed state are not).

    Builds a Gaussian posterior centred at your weights with scale ``prior_scale`` and trains it
    against the ``objective`` bound on ``train``: by default its scales only, so the certified
    predictor stays the *stochastic posterior around your weights*; with ``train_mean=True`` the
    mean is trained too and may move (towards the prior: the certificate then covers that
    posterior, not your weights). It is certified with the Seeger bound from per-example draws
    (method (b)), the tightest of the library's bounds.

    The posterior network is the prior model's: its fixed state (BatchNorm statistics computed on
    the prior's examples, or the initial ones for a data-free prior) is a point of the prior, so
    your model's must be the same; a model whose state differs (statistics recomputed on the bound
    set: infinite KL) is refused before training, naming the leaf. So are weights that are not
    finite.

    The default objective, ``quad`` (Pérez-Ortiz et al. 2021), is not clipped: a posterior that
    starts vacuous still gets a gradient that trades KL against empirical risk. ``seeger`` is kl^-1
    clipped at 1, whose gradient is exactly zero there.

    ``details["predictor"]`` says what is certified (:class:`CertifiedPredictor`: the predictor,
    its distances to your weights and to the prior mean, its agreement with your network on the
    bound set and, with ``test_set``, the test errors of the stochastic predictor, its mean, your
    network and the prior's). ``details["training"]`` says what was done: objective, epochs and
    steps, the KL and the bound's training value before and after, your network's own error on the
    bound set. When the certificate is nearer to guessing uniformly among the K classes than to
    that error (value >= (error + 1 - 1/K) / 2), a ``UserWarning`` and ``details["diagnosis"]`` say
    why (KL/n, empirical risk) and what to try. With a data-dependent prior the details also hold the
    honest comparison (warned about when it is lower): ``"heldout_baseline"``, the test-set
    certificate of the prior's own network on the same bound set, and ``"combined"``, the posterior's
    certificate through its excess loss over that network (:func:`certify_excess`), both
    :meth:`Certificate.to_dict` forms.

    Args:
        model: a Flax linen module (or its ``.apply``), a Flax NNX module, an Equinox module, an
            ``apply(params, x) -> logits`` function, or a built-in
            :class:`genbounds.estimators.nets.Net`.
        params: your trained weights for a linen module (its variables dict) or a function (any
            pytree); omitted for an NNX or Equinox module (``train`` may then come second).
        train: the training set; the bound set is its examples outside ``prior_indices``.
        prior_mean: the prior, fixed before seeing the bound set, given like your model: a module
            of the same kind (NNX, Equinox) or variables / weights like ``params``. Your network's
            random initialisation (data-independent), or a network trained on
            ``train.take(prior_indices)`` only.
        prior_indices: the training examples used to build ``prior_mean`` (excluded from the
            bound set).
        data_free: say ``True`` when ``prior_mean`` was fixed without looking at any training
            data (e.g. your random initialisation). Exactly one of ``prior_indices`` and
            ``data_free=True`` is required: a prior trained on data but passed without its indices
            would silently count its own data in the bound set.
        prior_scale: the prior's std (and the posterior's initial std).
        learn_prior_scale: learn the prior scale too and pay for it on DR17's grid (about
            2 ln(j + 1) nats more in the bound for grid index j: worth it for large n or when
            ``prior_scale`` is a guess).
        train_mean: train the posterior mean as well as its scales (see above).
        objective: the training objective, an :class:`~genbounds.estimators.snn.objectives.Objective` or its
            name (:data:`genbounds.estimators.snn.OBJECTIVES`).
        optimizer: an optax transformation for the posterior (default ``optax.adam(1e-3)``).
        epochs: passes over ``train``; default: enough for :data:`MIN_STEPS` steps, at least 10.
        test_set: held-out examples for the test errors of ``details["predictor"]`` (never used by
            the bound).
        progress: show the training's progress and, once they run longer than a few seconds, the
            certification passes' and the test evaluation's: a bar on a terminal, a line every 10 % or
            10 s in a log file (:mod:`genbounds.estimators.progress`); False shows nothing.
    """
    # every argument is checked before any work (training, draws): tests/test_certify_inputs.py
    params, train = _params_and_train(params, train)
    if (prior_indices is None) == (not data_free):
        raise ValueError(
            "arguments 'prior_indices' and 'data_free': say where prior_mean came from, either "
            "prior_indices=<the training examples it was trained on> or data_free=True (not both)")
    idx = np.zeros(0, dtype=np.int64) if prior_indices is None else _check_prior_indices(prior_indices, len(train))
    r = whole_count("r", r)
    batch_size = whole_count("batch_size", batch_size)
    if epochs is not None:
        epochs = whole_count("epochs", epochs, minimum=0)
    check_budget(delta, mc_delta)
    check_positive("prior_scale", prior_scale)
    objective = get_objective(objective)
    if test_set is not None and not isinstance(test_set, Dataset):
        raise ValueError(f"argument 'test_set' must be a Dataset, got {type(test_set).__name__}")
    _check_finite_inputs("train", train)
    if test_set is not None:
        if len(test_set) == 0:
            raise ValueError("argument 'test_set' holds no examples (pass None for no test errors)")
        _check_finite_inputs("test_set", test_set)
    yours, prior_model = _user_and_prior_models(model, params, prior_mean)
    _check_like_params("prior_mean", prior_model.params, yours.params)
    check_same_state("model", yours, prior_model)
    _check_finite("params" if params is not None else "model", yours.params)
    _check_finite("prior_mean", prior_model.params)
    net = _posterior_net(model, prior_model)
    your_net = model if isinstance(model, Net) else custom("your network", None, yours.apply)
    _check_labels_fit_logits(net, yours.params, train)
    _check_finite_logits(net, yours.params, train)
    prior = Prior(prior_model.params, prior_scale, GAUSSIAN, idx)
    if prior.n_data > 0 and not learn_prior_scale:       # the combined certificate's split of delta + mc_delta
        _excess_shares(prior, ExcessMethod.UNEXPECTED_BERNSTEIN, delta + mc_delta, REFERENCE_SHARE, EXCESS_SHARE)
    n_bound = len(train) - prior.n_data
    per_epoch = steps_per_epoch(len(train), batch_size)
    epochs = max(10, -(-MIN_STEPS // per_epoch)) if epochs is None else epochs
    start = init_posterior(yours.params, prior_scale)
    kl_start = kl_float64(start, prior)
    k_train, k_cert, k_test = jax.random.split(key, 3)
    opt = optimizer or optax.adam(1e-3)
    step = posterior_step(net, prior, optimizer=opt if train_mean else _means_fixed(opt), objective_name=objective,
                          n_bound=n_bound, delta=delta, learn_prior_scale=learn_prior_scale, independent=False)
    state, history = train_posterior(step, start, train, key=k_train, epochs=epochs, batch_size=batch_size,
                                     progress=progress)
    post = state.posterior
    _check_finite("optimizer", post.rho, what="the trained posterior scale")
    training = {
        "objective": objective.name.value, "epochs": epochs, "steps": epochs * per_epoch, "batch_size": batch_size,
        "optimizer": "adam(1e-3)" if optimizer is None else "user-supplied",
        "kl_start": kl_start, "kl_end_training": history[-1]["kl"] if history else None,
        "objective_first_epoch": history[0]["objective"] if history else None,
        "objective_last_epoch": history[-1]["objective"] if history else None,
        "mean_shift": _relative_distance(post.mean, yours.params),
    }
    bound_data = bound_set(train, prior)[0]
    your_classes = _predicted(your_net, yours.params, bound_data)
    agreement = float(np.mean(_predicted(net, post.mean, bound_data) == your_classes))
    certified = _certified_predictor(net, your_net, post, yours, prior, agreement, test_set, train_mean=train_mean,
                                     r=r, key=k_test, progress=progress)
    info = {"objective": objective.name.value, "source": "certify_network", "training": training,
            "predictor": certified.to_dict()}
    combined = None
    if prior.n_data > 0 and not learn_prior_scale:
        # one pass of draws: the certificate and the combined certificate over the prior's network
        (cert, _), (combined, _) = certify_with_excess(net, post, prior, train, key=k_cert, r=r, delta=delta,
                                                       mc_delta=mc_delta, details=info, progress=progress)
        # the combined certificate may certify the prior's network: it does not carry the posterior's description
        combined = dataclasses.replace(combined, details={k: v for k, v in combined.details.items()
                                                          if k not in info or k == "source"})
    else:
        cert, _ = certify(net, post, prior, train, key=k_cert, estimate=PerExampleDraws(r), delta=delta,
                          mc_delta=mc_delta, prior_scale=state.prior_scale,
                          prior_grid=(100.0, 0.1) if learn_prior_scale else None, progress=progress, details=info)
    if prior.n_data > 0:
        cert = _beside_the_prior_network(cert, combined, net, prior, bound_data)
    chance = 1.0 - 1.0 / max(train.num_classes, 2)
    own = float(np.mean(your_classes != bound_data.y))
    training["network_bound_set_error"] = own
    if cert.value >= (own + chance) / 2:
        diagnosis = _vacuity_diagnosis(cert, training, own, chance, prior, train_mean)
        cert = dataclasses.replace(cert, details={**cert.details, "diagnosis": diagnosis})
        warnings.warn(diagnosis, UserWarning, stacklevel=2)
    return cert, post


def _beside_the_prior_network(cert: Certificate, combined: Certificate | None, net: Net, prior: Prior,
                              bound_data: Dataset) -> Certificate:
    """``cert`` with the honest comparison in its details: the held-out (test-set) certificate of the prior's own
    network on the same bound set (``details["heldout_baseline"]``, at the same total delta) and, when the prior
    scale was fixed, the ``combined`` certificate of the posterior over that network (``details["combined"]``,
    from method (b)'s draws: :func:`certify_with_excess`). Both are :meth:`Certificate.to_dict` forms (read them
    back with :meth:`Certificate.from_dict`). A warning says when the prior's network certifies lower than
    ``cert``."""
    k = int(np.sum(_predicted(net, prior.mean, bound_data) != np.asarray(bound_data.y)))
    held = heldout_certificate(k, len(bound_data), cert.delta, n_prior=prior.n_data,
                               details={"predictor": "the prior's own network (deterministic), on the bound set"})
    extra = {"heldout_baseline": dataclasses.replace(held, guess_risk=cert.guess_risk).to_dict()}
    if combined is not None:
        extra["combined"] = combined.to_dict()
    if held.value < cert.value:
        tail = ("" if combined is None else
                f"; the combined certificate (details['combined']) certifies "
                f"{'the posterior' if combined.certifies is Certified.POSTERIOR else 'the prior network'} at "
                f"{combined.value:.4f}")
        warnings.warn(f"on the same {len(bound_data)} bound examples the prior's own network certifies at "
                      f"{held.value:.4f} (test-set bound, details['heldout_baseline']), below this certificate "
                      f"{cert.value:.4f}{tail}", UserWarning, stacklevel=3)
    return dataclasses.replace(cert, details={**cert.details, **extra})


def _check_prior_indices(prior_indices: Any, n_train: int) -> np.ndarray:
    """``prior_indices`` as int64 indices into a training set of ``n_train`` examples: a 1-d array of distinct
    whole numbers in [0, n_train), leaving at least one example for the bound; refused naming the argument."""
    raw = np.asarray(prior_indices)
    if raw.ndim != 1 or (raw.size and raw.dtype.kind not in "iu"):
        raise ValueError(f"argument 'prior_indices' must be a 1-d array of integer indices into 'train', got "
                         f"shape {raw.shape} of {raw.dtype}")
    if raw.size and (raw.min() < 0 or raw.max() >= n_train):
        bad = raw[(raw < 0) | (raw >= n_train)][0]
        raise ValueError(f"argument 'prior_indices' holds index {bad}, outside the {n_train} examples of 'train'")
    idx = raw.astype(np.int64)
    if len(np.unique(idx)) != idx.size:
        raise ValueError("argument 'prior_indices' holds an index twice: give each prior example once")
    if idx.size == n_train:
        raise ValueError(f"argument 'prior_indices' covers all {n_train} examples of 'train': no data is left for "
                         "the bound (hold some out of the prior's training)")
    return idx


def _check_finite_inputs(name: str, data: Dataset) -> None:
    """Refuse a dataset with a NaN or infinite input, naming argument ``name`` and the first such example (it
    would train the posterior to NaN)."""
    bad = ~np.isfinite(data.x).all(axis=tuple(range(1, data.x.ndim)))
    if bad.any():
        raise ValueError(f"argument {name!r} holds a non-finite input (NaN or inf) in example "
                         f"{int(np.argmax(bad))} ({int(bad.sum())} examples in all)")


def _check_finite_logits(net: Net, params: Any, train: Dataset, batch_size: int = 2000) -> None:
    """Refuse a model whose logits at your weights are not finite on a training example (its posterior would
    train to NaN), naming argument 'model': one deterministic pass over ``train``."""
    fn = jax.jit(lambda p, x: jnp.isfinite(net.apply(p, x)).all(axis=-1))
    for s in range(0, len(train), batch_size):
        ok = np.asarray(fn(params, train.x[s:s + batch_size]))
        if not ok.all():
            raise ValueError(f"argument 'model' returns non-finite logits (NaN or inf) at your weights on "
                             f"training example {s + int(np.argmin(ok))}: fix the model before certifying it")


def _params_and_train(params: Any, train: Dataset | None) -> tuple[Any, Dataset]:
    """``certify_network(module, train)`` puts the training set second: read it as ``train``."""
    if train is None and isinstance(params, Dataset):
        params, train = None, params
    if not isinstance(train, Dataset):
        raise ValueError(f"argument 'train' must be a Dataset, got {type(train).__name__}")
    if len(train) == 0:
        raise ValueError("argument 'train' holds no examples")
    return params, train


def _user_and_prior_models(model: Any, params: Any, prior_mean: Any) -> tuple[Model, Model]:
    """Your model and the prior's, read by :func:`~genbounds.estimators.models.as_model`: a module's
    prior is a module of its kind; a linen module's or a function's prior is weights like ``params``."""
    reads = model.apply if isinstance(model, Net) else model
    yours = as_model(reads, params)
    if is_module(model):
        if not is_module(prior_mean) or model_kind(prior_mean) is not yours.kind:
            raise ValueError(f"argument 'prior_mean' must be a {yours.kind.value} module like 'model' (the prior "
                             f"network itself, its weights and its fixed state), got {type(prior_mean).__name__}")
        return yours, as_model(prior_mean)
    return yours, as_model(reads, prior_mean)


def _posterior_net(model: Any, prior_model: Model) -> Net:
    """The network the posterior's weights run in: a built-in :class:`Net` as it is (its per-example
    draws are specialised), else the prior model with its fixed state."""
    if isinstance(model, Net) and not jax.tree_util.tree_leaves(prior_model.state):
        return model
    return custom("custom", None, prior_model.apply)


def _means_fixed(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """``optimizer`` on everything posterior training optimises except the posterior means, whose
    updates are zero (they stay at your weights)."""
    def labels(p):
        return jax.tree_util.tree_map(lambda _: "train", p)._replace(
            mean=jax.tree_util.tree_map(lambda _: "fixed", p.mean))
    return optax.multi_transform({"train": optimizer, "fixed": optax.set_to_zero()}, labels)


def _check_finite(name: str, tree: Any, what: str = "weight") -> None:
    """Refuse a pytree with a NaN or infinite leaf, naming argument ``name`` and the leaf's path
    (a non-finite weight makes the KL infinite)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not np.all(np.isfinite(np.asarray(leaf, dtype=np.float64))):
            raise ValueError(f"argument {name!r}: {what} {jax.tree_util.keystr(path)} is not finite (NaN or inf), "
                             "so the KL to the prior would be infinite")


def _predicted(net: Net, params: Any, data: Dataset, batch_size: int = 2000) -> np.ndarray:
    """Predicted classes (-1 where a logit is not finite) of a deterministic network on ``data``."""
    fn = jax.jit(lambda p, x: predict(net.apply(p, x)))
    return np.concatenate([np.asarray(fn(params, data.x[s:s + batch_size])) for s in range(0, len(data), batch_size)])


def _certified_predictor(net: Net, your_net: Net, post: Posterior, yours: Model, prior: Prior, agreement: float,
                         test_set: Dataset | None, *, train_mean: bool, r: int, key: jax.Array,
                         progress: bool = False) -> CertifiedPredictor:
    """What the certificate covers and how it compares with your network (see :class:`CertifiedPredictor`);
    ``agreement`` is measured on the bound set by the caller."""
    errors: dict[str, float] = {}
    if test_set is not None:
        errors = {"stochastic_test_error": mc_independent(net, post, GAUSSIAN, test_set, r=r, key=key,
                                                          progress=progress, desc="test error").zero_one,
                  "mean_test_error": error_rate(net, post.mean, test_set),
                  "network_test_error": error_rate(your_net, yours.params, test_set),
                  "prior_test_error": error_rate(net, prior.mean, test_set)}
    return CertifiedPredictor(MEAN_MOVED if train_mean else AROUND_YOUR_WEIGHTS, yours.kind.value, train_mean,
                              _relative_distance(post.mean, yours.params),
                              _relative_distance(post.mean, prior.mean), agreement, **errors)


def _check_like_params(name: str, tree: Any, params: Any) -> None:
    """Refuse ``tree`` (argument ``name``) unless it has the tree structure and leaf shapes of the
    user's ``params``, naming the first leaf that differs by its path."""
    if jax.tree_util.tree_structure(tree) != jax.tree_util.tree_structure(params):
        raise ValueError(f"argument {name!r} must have the tree structure of 'params' (the same keys and "
                         f"nesting): got {jax.tree_util.tree_structure(tree)}, 'params' has "
                         f"{jax.tree_util.tree_structure(params)}")
    for (path, leaf), ref in zip(jax.tree_util.tree_leaves_with_path(tree), jax.tree_util.tree_leaves(params)):
        if np.shape(leaf) != np.shape(ref):
            raise ValueError(f"argument {name!r} has leaf {jax.tree_util.keystr(path)} of shape "
                             f"{np.shape(leaf)}, but 'params' has {np.shape(ref)} there")


def _check_labels_fit_logits(net: Net, params: Any, train: Dataset) -> None:
    """Refuse labels of ``train`` the network cannot output: its logits on one example (shapes only,
    nothing is computed) must be ``[1, K]`` with every label < K."""
    if len(train) == 0:
        raise ValueError("argument 'train' holds no examples")
    logits = jax.eval_shape(net.apply, params, jnp.asarray(train.x[:1]))
    if len(logits.shape) != 2 or logits.shape[0] != 1:
        raise ValueError(f"argument 'model' must return logits [batch, classes]: on a batch of 1 it "
                         f"returned shape {tuple(logits.shape)}")
    top, k = int(train.y.max()), int(logits.shape[1])
    if top >= k:
        raise ValueError(f"argument 'train' holds label {top}, but the model returns {k} logits per example "
                         f"(classes 0..{k - 1}): relabel the data or give the model more outputs")


def _relative_distance(a: Any, b: Any) -> float:
    """||a - b|| / ||b|| over all leaves of two pytrees of the same structure."""
    diff = sum(float(np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
    norm = sum(float(np.sum(np.asarray(y, np.float64) ** 2)) for y in jax.tree_util.tree_leaves(b))
    return math.sqrt(diff / max(norm, 1e-300))


def _vacuity_diagnosis(cert: Certificate, training: dict, own: float, chance: float, prior: Prior,
                       train_mean: bool = True) -> str:
    """Why a certificate says little about the network, and what to try (one paragraph)."""
    n = cert.n_bound
    if own >= chance:
        return (f"certificate {cert.value:.4f}: your network's own error on the bound set, {own:.4f}, is no better "
                f"than guessing uniformly ({chance:.4f}); train it first, then certify it.")
    verdict = "is vacuous" if cert.vacuous else "says little about your network"
    why = (f"certificate {cert.value:.4f} {verdict} (your network's error on the bound set: {own:.4f}; "
           f"guessing uniformly: {chance:.4f}): around your "
           f"weights the posterior started at KL/n = {training['kl_start'] / n:.4g} (KL {training['kl_start']:.1f} "
           f"nats, n = {n}), and a bound needs KL/n well below the risk it certifies; training against "
           f"'{training['objective']}' ended at KL/n = {cert.kl / n:.4g} with empirical risk {cert.emp_risk:.4f}.")
    tries = []
    if prior.kind is PriorKind.INIT:
        tries.append("a data-dependent prior (train prior_mean on part of the data and pass prior_indices=)")
    elif not train_mean:
        tries.append("train_mean=True (the certificate then covers a posterior whose mean moved from your weights "
                     "towards the prior: see details['predictor'])")
    tries += ["more data", "another prior_scale",
              "more epochs or a larger learning rate if the objective was still falling"]
    if training["objective"] == ObjectiveName.SEEGER:
        tries.insert(0, "objective='quad' (the Seeger objective is clipped at 1: no gradient while vacuous)")
    return why + " Try: " + "; ".join(tries) + "."


# ---------------------------------------------------------------------------------------------- excess over the prior


def ternary_draws(net: Net, post: Posterior, family: Family | str, data: Dataset, reference: Any, *, r: int,
                  key: jax.Array, batch_size: int = 1000, devices: list | None = None, progress: bool = False,
                  desc: str = "combined") -> TernaryDraws:
    """Count, over an independent posterior draw per (example, repetition), where the draw and the deterministic
    ``reference`` network disagree: ``Z = l(h) - l(h_ref)`` in {-1, 0, 1} per draw. The draws are those of
    :func:`mc_independent` with the same ``key`` (same folding per repetition and batch), so the posterior's
    errors are ``r k + plus - minus`` exactly as method (b) counts them. With ``progress`` the repetitions show
    their progress as ``desc`` when they run longer than a few seconds."""
    return independent_draws(net, post, family, data, r=r, key=key, reference=reference, batch_size=batch_size,
                             devices=devices, progress=progress, desc=desc)[1]


def certify_excess(
    net: Net, post: Posterior, prior: Prior, train: Dataset, *, key: jax.Array, r: int = 10, delta: float = 0.035,
    method: ExcessMethod = ExcessMethod.UNEXPECTED_BERNSTEIN, reference_share: float = REFERENCE_SHARE,
    excess_share: float = EXCESS_SHARE, details: dict | None = None, progress: bool = False,
) -> tuple[Certificate, TernaryDraws]:
    r"""Certify the posterior through its excess loss over the prior's own network, never worse than that
    network's held-out bound (up to the test-set share): :math:`C = \mathrm{TS}(h_\mathrm{ref}; \delta_\mathrm{ref})
    + \min(0, \mathrm{EX}(Q; \delta_\mathrm{ex}))` (:func:`genbounds.bounds.excess_loss_certificate`).

    ``h_ref`` is the network at the prior's mean, trained on ``prior.data_indices`` only, so it is fixed before the
    bound set is drawn. ``delta`` is the statement's total (give the run's other certificates' total so that
    :func:`genbounds.bounds.union_minimum` can compare them), split by :func:`genbounds.bounds.split_excess_delta`
    into test-set, excess and Monte Carlo shares; ``r`` per-example draws per bound example
    (:func:`ternary_draws`). The certificate says in ``details["certifies"]`` which predictor it covers: the
    stochastic posterior (``"posterior"``, when the certified excess is negative) or the prior's network
    (``"reference"``).

    The KL is at the prior's own scale: a prior scale learned on the bound set (DR17's grid) is not paid for here,
    so runs that learn it do not ask for this certificate. Refused for a differentially private prior (its mean was
    drawn using every training example, the bound set included).
    """
    r = whole_count("r", r)
    _check_train_and_prior(train, prior)
    details = user_details(details, _EXCESS_DERIVED)
    shares = _excess_shares(prior, method, delta, reference_share, excess_share)   # checked before the draws
    data, keep = bound_set(train, prior)
    counts = ternary_draws(net, post, prior.family, data, prior.mean, r=r, key=key, progress=progress)
    return _excess_certificate(counts, post, prior, train, (data, keep), shares, delta=delta, details=details), counts


def certify_with_excess(
    net: Net, post: Posterior, prior: Prior, train: Dataset, *, key: jax.Array, r: int = 10, delta: float = 0.025,
    mc_delta: float = 0.01, method: ExcessMethod = ExcessMethod.UNEXPECTED_BERNSTEIN, details: dict | None = None,
    progress: bool = False,
) -> tuple[tuple[Certificate, MCEstimate], tuple[Certificate, TernaryDraws]]:
    """Certificate (b) (:func:`certify` with ``PerExampleDraws(r)``) and the combined certificate over the prior's
    network (:func:`certify_excess` at the same total delta, ``delta + mc_delta``) from one pass of per-example
    draws (:func:`independent_draws`): the certificates, estimate and counts are those the two functions give
    with the same ``key``, at the cost of one. The prior's scale is its own (a learned scale is not paid for by
    the combined certificate). Returns ``((certificate (b), estimate), (combined certificate, counts))``."""
    estimate = PerExampleDraws(r)
    r = estimate.r
    _check_train_and_prior(train, prior)
    check_budget(delta, mc_delta)
    details = user_details(details, tuple(dict.fromkeys(_SEEGER_DERIVED + _EXCESS_DERIVED)))
    candidates = _scale_candidates(prior, None, None)
    _excess_shares(prior, method, delta + mc_delta, REFERENCE_SHARE, EXCESS_SHARE)   # checked before the draws
    data, keep = bound_set(train, prior)
    mc, counts = independent_draws(net, post, prior.family, data, r=r, key=key, reference=prior.mean,
                                   progress=progress, desc="certificate (b) + combined")
    assert counts is not None
    cert = _seeger_certificate(mc, estimate, post, prior, train, (data, keep), candidates, delta=delta,
                               mc_delta=mc_delta, prior_grid=None, details=details)
    shares = _excess_shares(prior, method, cert.delta, REFERENCE_SHARE, EXCESS_SHARE)   # the statement's total
    combined = _excess_certificate(counts, post, prior, train, (data, keep), shares, delta=cert.delta,
                                   details=details)
    return (cert, mc), (combined, counts)


class _ExcessShares(NamedTuple):
    method: ExcessMethod
    reference: float            # the fractions of delta (recorded)
    excess: float
    deltas: tuple[float, float, float]    # test-set, excess and Monte Carlo parts of delta


def _excess_shares(prior: Prior, method: ExcessMethod, delta: float, reference_share: float,
                   excess_share: float) -> _ExcessShares:
    """The combined certificate's method and delta split, refusing a differentially private prior."""
    if prior.dp is not None:
        raise ValueError("argument 'prior': a differentially private prior's mean was drawn from all the training "
                         "data, so its network is not independent of the bound set; the excess certificate needs a "
                         "reference fixed without the bound set")
    method = check_choice("method", method, ExcessMethod)
    deltas = split_excess_delta(delta, reference_share, excess_share, names=("delta", "reference_share",
                                                                            "excess_share"))
    return _ExcessShares(method, reference_share, excess_share, deltas)


def _excess_certificate(counts: TernaryDraws, post: Posterior, prior: Prior, train: Dataset,
                        bound: tuple[Dataset, np.ndarray], shares: _ExcessShares, *, delta: float,
                        details: dict | None) -> Certificate:
    """The combined certificate from the draws ``counts`` made on ``bound = bound_set(train, prior)``."""
    data, keep = bound
    d_ref, d_ex, d_mc = shares.deltas
    info = {"mc_method": PerExampleDraws.record_name, "mc_method_param": {"r": counts.draws // len(data)},
            **_provenance(train, prior, keep),
            "reference": "the prior's own network (deterministic, at the prior mean)",
            "shares": {"reference": shares.reference, "excess": shares.excess},
            **user_details(details, _EXCESS_DERIVED)}      # refused when it names a derived entry
    cert = excess_loss_certificate(
        counts.reference_errors, counts.plus_draws, counts.minus_draws, counts.draws, kl_float64(post, prior),
        int(keep.size), delta_reference=d_ref, delta_excess=d_ex, delta_monte_carlo=d_mc, method=shares.method,
        n_prior=prior.n_data, delta=delta, details=info)
    return dataclasses.replace(cert, guess_risk=guess_risk(data))
