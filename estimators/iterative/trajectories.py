r"""Bounds for noisy iterative algorithms from trajectory statistics: the entry point for
populations of runs trained with any code.

:func:`bounds_from_trajectories` takes what a population of Langevin / SGLD runs recorded along
its trajectories (:class:`~genbounds.estimators.iterative.PairStats`, stacked over k1 outer
draws: ``[k1, k2, T]`` per-step statistics of k2 runs each) and evaluates at every checkpoint the
bounds of :mod:`genbounds.bounds.iterative`:

* ``negrea_loo``: Negrea, Haghifam, Dziugaite, Khisti & Roy (2019), leave-one-out
  (:func:`genbounds.bounds.negrea_bound`, ``n_heldout`` = 1);
* ``haghifam_ld``: Haghifam, Negrea, Khisti, Roy & Dziugaite (2020), the Bayes hypothesis-test
  prior (:func:`genbounds.bounds.haghifam_ld_bound` with :func:`genbounds.bounds.wrong_member_weight`
  of :func:`genbounds.bounds.hypothesis_llr`); full-batch Langevin dynamics only.

Both theorems are :math:`\mathbb{E}_C\sqrt{\mathbb{E}^C[\cdot]}`. For ``haghifam_ld`` the
conditioning C is the outer draw (the n - 1 shared points and the pair): each draw's k2 runs are
averaged inside the square root, and the value is the mean of the per-draw roots, with a bootstrap
interval over draws. For ``negrea_loo`` C is the n - 1 shared points alone and the held-out point
:math:`z_j \sim D` belongs inside the root; a draw's runs see only its pair's two members, so a
per-draw root would put part of z_j's law outside (Jensen: lower than the theorem, 0.67 against
0.74 on a Gaussian toy, whatever k2). Its statistics are therefore pooled over every run of every
draw before the root, :math:`\sqrt{\mathbb{E}_{S_J}\mathbb{E}^{S_J}[\cdot]} \ge
\mathbb{E}_{S_J}\sqrt{\mathbb{E}^{S_J}[\cdot]}`: the estimate of a (looser) bound that is itself
valid, with the interval bootstrapping draws of the pooled value.

:func:`sgd_bounds_from_trajectories` does the same for plain SGD populations
(:class:`~genbounds.estimators.iterative.SGDStats`): Neu, Dziugaite, Haghifam & Roy (2021),
Theorem 1 (:func:`genbounds.bounds.neu_sgd_bound`) at the last step for each perturbation scale.
That theorem has no conditioning, so the statistics of every run of every draw are pooled
*before* the square root (and before the absolute value of the value-sensitivity term); the
interval bootstraps draws of the pooled bound.

All values bound the expected gap E[test error - training error] and are *estimates*: the
expectations come from finitely many runs. Both functions return an :class:`IterativeResult`, one
:class:`Checkpoint` per checkpoint; ``to_dict()`` gives the JSON the records hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...bounds import (
    haghifam_ld_bound,
    hypothesis_llr,
    negrea_bound,
    neu_information,
    neu_sgd_bound,
    wrong_member_weight,
)
from ...bounds._array import ArrayLike, check_count, check_probability, check_range
from ..supersample.mi import bootstrap_interval

__all__ = ["BOUND_NAMES", "IterativeBound", "SGDBound", "Checkpoint", "IterativeResult", "bounds_from_trajectories",
           "sgd_bounds_from_trajectories"]

#: The bounds :func:`bounds_from_trajectories` evaluates, by name.
BOUND_NAMES = ("haghifam_ld", "negrea_loo")


@dataclass(frozen=True)
class IterativeBound:
    """One bound of a Langevin / SGLD population at one checkpoint (an *estimate*).

    Attributes:
        value: the bound on E[test error - training error]: the mean over outer draws of the per-draw
            bound, or (``pooled``) the bound from every run of every draw pooled inside the root.
        interval: 95% percentile-bootstrap interval over draws of that value.
        per_draw: ``[k1]`` the bound of each outer draw (its runs averaged inside the root); empty when
            ``pooled`` (the theorem's conditioning is coarser than a draw: per-draw roots would be low).
        target: what the theorem bounds, always "gap".
        kind: always "estimate".
        pooled: whether the value pools every run of every draw before the root.
    """

    value: float
    interval: tuple[float, float]
    per_draw: tuple[float, ...]
    target: str = "gap"
    kind: str = "estimate"
    pooled: bool = False

    @property
    def vacuous(self) -> bool:
        return self.value >= 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "interval": list(self.interval), "per_draw": list(self.per_draw),
                "target": self.target, "kind": self.kind, "vacuous": self.vacuous, "pooled": self.pooled}


@dataclass(frozen=True)
class SGDBound:
    """Neu et al. (2021)'s Theorem 1 at one perturbation scale (an *estimate*).

    Attributes:
        sigma: the perturbation scale (fixed before the runs).
        value: the bound from the statistics of every run of every draw, pooled before the root.
        interval: 95% percentile-bootstrap interval over draws of the pooled bound.
        per_draw_information: ``[k1]`` each draw's information sum (:func:`genbounds.bounds.
            neu_information`), the pooled inputs, not per-draw bounds.
        per_draw_value_gap: ``[k1]`` each draw's mean signed value-sensitivity gap.
        target: always "gap". kind: always "estimate".
    """

    sigma: float
    value: float
    interval: tuple[float, float]
    per_draw_information: tuple[float, ...]
    per_draw_value_gap: tuple[float, ...]
    target: str = "gap"
    kind: str = "estimate"

    @property
    def vacuous(self) -> bool:
        return self.value >= 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "interval": list(self.interval),
                "per_draw_information": list(self.per_draw_information),
                "per_draw_value_gap": list(self.per_draw_value_gap), "target": self.target, "kind": self.kind,
                "vacuous": self.vacuous, "sigma": self.sigma}


@dataclass(frozen=True)
class Checkpoint:
    """The bounds and the measured errors after ``step`` steps (means over outer draws of each
    draw's mean over its runs); ``beta`` is None for SGD (no injected noise)."""

    step: int
    eta: float
    beta: float | None
    train_error: float
    test_error: float
    gap: float
    gap_interval: tuple[float, float]
    bounds: Mapping[str, IterativeBound | SGDBound]

    def __getitem__(self, name: str) -> IterativeBound | SGDBound:
        return self.bounds[name]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "eta": self.eta, "beta": self.beta, "train_error": self.train_error,
                "test_error": self.test_error, "gap": self.gap, "gap_interval": list(self.gap_interval),
                "bounds": {k: b.to_dict() for k, b in self.bounds.items()}}


@dataclass(frozen=True)
class IterativeResult:
    """Every checkpoint of one population experiment, in step order."""

    checkpoints: tuple[Checkpoint, ...]

    def __getitem__(self, i: int) -> Checkpoint:
        return self.checkpoints[i]

    def __len__(self) -> int:
        return len(self.checkpoints)

    def to_dict(self) -> dict[str, Any]:
        """``{"checkpoints": [checkpoint.to_dict(), ...]}``."""
        return {"checkpoints": [c.to_dict() for c in self.checkpoints]}

    def __str__(self) -> str:
        lines = ["bound estimates (not certificates) on E[test error - training error]:"]
        for c in self.checkpoints:
            values = ", ".join(f"{k} {b.value:.4f}" for k, b in c.bounds.items())
            lines.append(f"  step {c.step}: train {c.train_error:.4f}, test {c.test_error:.4f}, {values}")
        return "\n".join(lines)


def _shaped(name: str, x: ArrayLike, shape: tuple[int, ...], dims: str, *, lo: float = -math.inf) -> np.ndarray:
    """``x`` as a float64 array of ``shape`` with finite entries >= ``lo``, else ValueError naming ``name``."""
    a = np.asarray(x)
    if a.shape != shape:
        raise ValueError(f"argument {name!r} must be {dims} = {list(shape)}, got shape {list(a.shape)}")
    check_range(name, a, lo, math.inf, lo_open=math.isinf(lo), hi_open=True)     # also refuses text, NaN, inf
    return a.astype(np.float64)


def _errors(name: str, x: ArrayLike, shape: tuple[int, ...], dims: str) -> np.ndarray:
    """Measured 0-1 errors: ``shape`` and every entry in [0, 1]."""
    a = _shaped(name, x, shape, dims)
    check_probability(name, a)
    return a


def _gap(train: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    """The measured errors of one checkpoint from the per-draw means ``[k1]``."""
    return {"train_error": float(train.mean()), "test_error": float(test.mean()),
            "gap": float((test - train).mean()), "gap_interval": bootstrap_interval(test - train)}


def _per_draw(values: np.ndarray) -> IterativeBound:
    """A bound whose value is the mean of its per-draw values ``[k1]``."""
    return IterativeBound(float(values.mean()), bootstrap_interval(values), tuple(float(x) for x in values))


def bounds_from_trajectories(xi_sq: ArrayLike, noise_dot: ArrayLike, loo_sq: ArrayLike, eta: ArrayLike,
                             beta: ArrayLike, train_error: ArrayLike, test_error: ArrayLike, *, n: int,
                             batch: int = 0) -> IterativeResult:
    """The Langevin / SGLD bounds at every checkpoint of a population (estimates, not certificates).

    Args (the fields of :class:`~genbounds.estimators.iterative.PairStats`, stacked over draws):
        xi_sq: ``[k1, k2, T]`` ||xi_t||^2, the two pair members' gradient difference at W_{t-1}.
        noise_dot: ``[k1, k2, T]`` <nu_t, xi_t^{other - true}> with the realized noise nu_t.
        loo_sq: ``[k1, k2, T]`` Negrea et al.'s leave-one-out forecast error E_B ||G_t - Xi_t||^2.
        eta, beta: ``[T]`` the schedule (step sizes, inverse temperatures).
        train_error, test_error: ``[k1, k2, C]`` 0-1 errors at C checkpoints, every T / C steps.
        n: training-set size. batch: 0 (or n) for full-batch Langevin dynamics, else SGLD's batch
            size b, for which Haghifam et al.'s bound (full batch only) is left out.

    Outer draw d is the conditioning (the n - 1 shared points and the pair); its k2 runs differ in
    the trained member U_J, initialisation, noise and batches, and are averaged inside the root.

    Returns:
        An :class:`IterativeResult` with a :class:`Checkpoint` after every T / C steps holding an
        :class:`IterativeBound` per name (``negrea_loo``, and ``haghifam_ld`` for full batch), each
        the statistics up to that step, and the mean measured errors and gap.
    """
    shape = np.shape(xi_sq)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"argument 'xi_sq' must be [k1, k2, T] with k1, k2, T >= 1, got shape {list(shape)}")
    k1, k2, T = shape
    if k2 < 2:
        raise ValueError(f"argument 'xi_sq' must hold k2 >= 2 runs per outer draw (both values of U_J; the "
                         f"inner expectation sits inside the root), got k2 = {k2}")
    xi = _shaped("xi_sq", xi_sq, shape, "[k1, k2, T]", lo=0.0)
    dot = _shaped("noise_dot", noise_dot, shape, "[k1, k2, T]")
    loo = _shaped("loo_sq", loo_sq, shape, "[k1, k2, T]", lo=0.0)
    eta = _shaped("eta", eta, (T,), "[T]", lo=0.0)
    beta = _shaped("beta", beta, (T,), "[T]", lo=0.0)
    train = np.asarray(train_error)
    if train.ndim != 3 or train.shape[:2] != (k1, k2) or train.shape[2] == 0 or T % train.shape[2]:
        raise ValueError(f"argument 'train_error' must be [k1, k2, C] = [{k1}, {k2}, C] with C dividing T = {T}, "
                         f"got shape {list(train.shape)}")
    train = _errors("train_error", train, train.shape, "[k1, k2, C]")
    test = _errors("test_error", test_error, train.shape, "[k1, k2, C]")
    check_count("n", n)
    check_count("batch", batch, minimum=0)
    check_range("batch", batch, 0.0, float(n))
    every = T // train.shape[2]
    theta = wrong_member_weight(hypothesis_llr(beta, eta, n, xi, dot))
    # Negrea, pooled: every draw has k2 runs, so the mean over all runs is the mean of the draws' means, and a
    # bootstrap resample of draws is a weighting of them by their counts (one matrix product for all resamples)
    loo_draw = loo.mean(axis=1)                                         # [k1, T]
    weights = np.ones((1, k1)) / k1 if k1 == 1 else \
        np.apply_along_axis(np.bincount, 1, _resamples(k1), minlength=k1) / k1          # [resamples, k1]
    pooled_loo, resampled_loo = loo_draw.mean(axis=0), weights @ loo_draw
    checkpoints = []
    for c in range(train.shape[2]):
        s = (c + 1) * every
        be = eta[:s] * beta[:s]
        value = float(negrea_bound(be, pooled_loo[None, None, :s], n_heldout=1)[0])
        lo, hi = np.quantile(negrea_bound(be, resampled_loo[:, None, :s], n_heldout=1), [0.025, 0.975])
        bounds = {}
        if batch in (0, n):
            bounds["haghifam_ld"] = _per_draw(haghifam_ld_bound(be, theta[..., :s], xi[..., :s], n))
        bounds["negrea_loo"] = IterativeBound(value, (float(lo), float(hi)), (), pooled=True)
        errors = _gap(np.array([t[:, c].mean() for t in train]), np.array([t[:, c].mean() for t in test]))
        checkpoints.append(Checkpoint(s, float(eta[s - 1]), float(beta[s - 1]), **errors,
                                      bounds=bounds))
    return IterativeResult(tuple(checkpoints))


def _resamples(k1: int, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """``[resamples, k1]`` bootstrap draws of the outer-draw indices, with replacement (the resampling of
    :func:`genbounds.estimators.supersample.bootstrap_interval`)."""
    return np.random.default_rng(seed).integers(0, k1, (resamples, k1))


def _bootstrap_pooled(statistic: Callable[[np.ndarray], float], k1: int) -> tuple[float, float]:
    """95% percentile bootstrap interval over ``k1`` outer draws of ``statistic(draws)``, a statistic of
    the pooled draws at the indices ``draws: [k1]`` (for a statistic that is not a mean)."""
    if k1 == 1:
        value = statistic(np.arange(1))
        return value, value
    lo, hi = np.quantile([statistic(idx) for idx in _resamples(k1)], [0.025, 0.975])
    return float(lo), float(hi)


def sgd_bounds_from_trajectories(variance: ArrayLike, sensitivity: ArrayLike, value_train: ArrayLike,
                                 value_test: ArrayLike, train_error: ArrayLike, test_error: ArrayLike, *,
                                 eta: ArrayLike, sigmas: Sequence[float], n: int) -> IterativeResult:
    """Neu et al. (2021)'s Theorem 1 at the last step of an SGD population, per perturbation scale
    (estimates, not certificates).

    Args (the fields of :class:`~genbounds.estimators.iterative.SGDStats`, stacked over draws):
        variance: ``[k1, k2, T]`` V_t, the batch gradient's deviation from the population gradient.
        sensitivity: ``[k1, k2, T, G]`` Gamma_t for each of the G scales of ``sigmas``.
        value_train, value_test: ``[k1, k2, G]`` Delta on the training set and on a test set.
        train_error, test_error: ``[k1, k2]`` 0-1 errors at W_T.
        eta: ``[T]`` the step sizes. sigmas: ``[G]`` the perturbation scales (fixed before the runs).
        n: training-set size.

    The expectations of the theorem are over the training set and SGD's randomness together, so
    each bound takes the statistics of every run of every draw, pooled before the square root and
    before the absolute value (:func:`genbounds.bounds.neu_sgd_bound`); a mean of per-draw roots
    would be smaller (Jensen). Choosing the smallest over ``sigmas`` afterwards is a choice made
    after seeing the estimates; every scale is returned.

    Returns:
        An :class:`IterativeResult` with one :class:`Checkpoint` at step T holding an
        :class:`SGDBound` per scale, named ``neu_sgd_sigma<sigma:g>``.
    """
    var = np.asarray(variance)
    if var.ndim != 3:
        raise ValueError(f"argument 'variance' must be [k1, k2, T], got shape {list(var.shape)}")
    k1, k2, T = var.shape
    sigmas = tuple(sigmas)
    G = len(sigmas)
    sens = _shaped("sensitivity", sensitivity, (k1, k2, T, G), "[k1, k2, T, G]")
    v_train = _shaped("value_train", value_train, (k1, k2, G), "[k1, k2, G]")
    v_test = _shaped("value_test", value_test, (k1, k2, G), "[k1, k2, G]")
    train = _errors("train_error", train_error, (k1, k2), "[k1, k2]")
    test = _errors("test_error", test_error, (k1, k2), "[k1, k2]")
    eta = _shaped("eta", eta, (T,), "[T]")

    def pooled(draws: np.ndarray, g: int) -> float:
        return neu_sgd_bound(eta, np.full(T, sigmas[g]), sens[draws][..., g], var[draws], n,
                             value_sensitivity_gap=v_test[draws][..., g] - v_train[draws][..., g])

    everything = np.arange(k1)
    bounds = {}
    for g, sigma in enumerate(sigmas):
        info = tuple(neu_information(eta, np.full(T, sigma), sens[d, :, :, g], var[d]) for d in range(k1))
        gaps = tuple(float(np.mean(v_test[d, :, g] - v_train[d, :, g])) for d in range(k1))
        bounds[f"neu_sgd_sigma{sigma:g}"] = SGDBound(
            sigma, pooled(everything, g), _bootstrap_pooled(lambda draws, g=g: pooled(draws, g), k1), info, gaps)
    errors = _gap(np.array([t.mean() for t in train]), np.array([t.mean() for t in test]))
    return IterativeResult((Checkpoint(T, float(eta[-1]), None, **errors, bounds=bounds),))
