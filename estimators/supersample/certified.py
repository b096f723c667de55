r"""Certified CMI from supersample runs: a :class:`~genbounds.bounds.Certificate` of the algorithm's expected risk.

:func:`certify_runs` turns the run arrays of a supersample experiment (k1 supersamples x k2 masks) into

* the CMI certificate (:mod:`genbounds.bounds.cmi_certified`): per-pair MI upper confidence bounds from the
  runs' loss-pair counts by U_i, their means concentrated over the k1 independent supersamples, fed to the
  forms linear in the MI (fast-rate, binary kl; the interpolating form is reported beside, conditional on an
  assumption finite runs cannot check). With probability >= 1 - delta over the supersamples and the runs,
  the expected test error of the training algorithm at sample size n is at most the value;
* its held-out baseline: the same target bounded directly by the test errors on the unused half of each
  supersample, concentrated over the k1 supersamples (kl-Chernoff / empirical Bernstein), at its own delta.

:func:`bounds_from_runs` is :func:`genbounds.estimators.supersample.runs.bounds_from_runs` (the plug-in
estimates) with ``certify=True`` adding both certificates to the result. :func:`certified_floor` and
:func:`runs_needed` size a design before any run: the value a design certifies in the best case (no errors,
no information) and the smallest population whose best case reaches a target.

Designs that break the assumptions are refused: one-sided masks
(:func:`genbounds.estimators.supersample.runs.check_supersample_runs`), supersamples that reuse examples
(unless declared as draws with replacement from a pool, which changes the target to the pool's uniform
distribution), and populations too small for any nonvacuous value (the message gives the count needed).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np

from ...bounds import Certificate, format_upper
from ...bounds import cmi_certified as C
from ...bounds._array import check_count, check_delta, check_range, divide_down, recomputes_to, round_up
from .runs import CMIResult, check_supersample_runs
from .runs import bounds_from_runs as plugin_bounds_from_runs

__all__ = ["Sampling", "CertifiedCMI", "certify_runs", "bounds_from_runs", "certified_floor", "runs_needed",
           "RunsNeeded", "require_nonvacuous_design", "loss_pair_counts", "JENSEN_K2", "CMI_BOUND", "HELD_OUT_MEAN",
           "TARGET", "CMI_INTERPOLATING", "INTERPOLATING_KIND",
           "PAIR_SLACKS"]

#: The certificate ``bound`` names: the certified CMI bound, and the held-out baseline of the same target.
CMI_BOUND = "cmi_certified"
HELD_OUT_MEAN = "held_out_mean"
#: The interpolating form's certificate, conditional on an assumption (:data:`INTERPOLATING_KIND`).
CMI_INTERPOLATING = "cmi_certified_interpolating"
INTERPOLATING_KIND = "certificate if the algorithm always reaches training error 0"
#: What each certificate of a certified CMI entry is, by its bound (the report's kind column shows it).
KINDS = {CMI_BOUND: "certificate", HELD_OUT_MEAN: "certificate", CMI_INTERPOLATING: INTERPOLATING_KIND}
#: What both certificates bound.
TARGET = "expected risk of the algorithm at n"
#: The per-supersample failure levels of the pair boxes the design may use (chosen from the design alone,
#: before any run: :func:`_pair_slack`).
PAIR_SLACKS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)


class Sampling(StrEnum):
    """How the supersamples were drawn.

    * ``fresh``: 2n examples per supersample, no example in two supersamples (checked on the indices): the
      examples are i.i.d. draws of the data distribution when the pool is an i.i.d. sample of it (disjoint
      blocks of a uniformly random permutation of an i.i.d. sample are i.i.d.), and the certificate bounds the
      risk under it. A pool that is not an i.i.d. sample (a class-stratified one, say) breaks that premise,
      which cannot be checked here.
    * ``pool``: each supersample drawn i.i.d. with replacement from a pool of ``pool_size`` examples (declared,
      not checkable): the certificate bounds the risk under the uniform distribution on the pool.
    """

    FRESH = "fresh"
    POOL = "pool"


def _statement(n: int, sampling: Sampling, pool_size: int | None) -> str:
    data = ("the data distribution, provided the pool is an i.i.d. sample of it (each supersample 2n fresh "
            "examples: disjoint blocks of a uniformly random permutation of the pool, so then i.i.d. draws of it)"
            if sampling is Sampling.FRESH else
            f"the uniform distribution on the pool of {pool_size} examples (supersamples drawn with replacement)")
    return (f"expected test error of the training algorithm at sample size n = {n}: E over training sets of n "
            f"i.i.d. examples from {data} and over the training randomness; not the risk of one trained network")


def loss_pair_counts(masks: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Counts ``[k1, n, 2, 4]`` of the runs of each pair by U_i and loss-pair cell (code 2 L0 + L1), from
    ``masks: [k1, k2, n]`` and 0-1 ``loss: [k1, k2, n, 2]``."""
    k1, k2, n = masks.shape
    code = 2 * loss[..., 0] + loss[..., 1]                                  # [k1, k2, n]
    key = (np.arange(k1)[:, None, None] * n + np.arange(n)[None, None, :]) * 8 + masks * 4 + code
    return np.bincount(key.ravel(), minlength=k1 * n * 8).reshape(k1, n, 2, 4)


# ---------------------------------------------------------------------------------------
# Sizing a design before it runs


def _pair_mi(counts: np.ndarray, slack: float, method: C.ConfidenceSet) -> dict[str, np.ndarray]:
    """Per pair and statistic, what step 1 gives: the box upper bound at the supersample's ``slack``
    (:func:`~genbounds.bounds.cmi_certified.pair_mi_upper`), or the plug-in JS for ``jensen``
    (:func:`~genbounds.bounds.cmi_certified.pair_mi_plugin`, no slack)."""
    if method is C.ConfidenceSet.JENSEN:
        return C.pair_mi_plugin(counts)
    return C.pair_mi_upper(counts, slack, method)


def _mean_mi(per_draw: np.ndarray, slack: float, delta: float, method: C.ConfidenceSet) -> C.MeanBound:
    """Step 2 for the per-supersample means of :func:`_pair_mi`'s values: with the pair slack's ln 2 x ``slack``
    (:func:`~genbounds.bounds.cmi_certified.mean_mi_upper`), or without it for ``jensen``
    (:func:`~genbounds.bounds.cmi_certified.mean_mi_plugin_upper`)."""
    if method is C.ConfidenceSet.JENSEN:
        return C.mean_mi_plugin_upper(per_draw, delta)
    return C.mean_mi_upper(per_draw, slack, delta)


@functools.lru_cache(maxsize=4096)
def _best_case_pair(m: int, level: float, method: C.ConfidenceSet) -> tuple[float, float]:
    """Step 1 for one pair whose m runs per U value are all in cell 00, at the box level ``level`` (ignored by
    ``jensen``): its single-loss MI (the mean of the two members') and its loss-pair MI. Memoised: it depends on
    neither k1 nor delta, so a planner's designs share it."""
    one = np.zeros((1, 1, 2, 4), np.int64)
    one[..., 0] = m
    up = _pair_mi(one, level, method)
    single = (up["loss_member0"] + up["loss_member1"]) / 2
    return float(single[0, 0]), float(up["loss_pair"][0, 0])


@functools.lru_cache(maxsize=4096)
def _train_floor(k1: int, delta: float) -> float:
    """Step 2 for the training errors of error-free runs (k1 zeros) at their share of ``delta``: it depends on
    neither the pair slack nor n, so :func:`_pair_slack`'s grid and a planner's designs share it. Memoised."""
    return C.mean_upper(np.zeros(k1), C.split_delta(delta).parts["mean_train_error"]).value


def _floor_at(n: int, k1: int, m: int, delta: float, slack: float, method: C.ConfidenceSet) -> float:
    """The certificate of a design whose runs have no errors: every pair m runs per U value, all in cell 00."""
    # Every pair's values are the same: compute one pair's at the per-conditional level slack / (2n).
    single, pair = _best_case_pair(m, divide_down(slack, n), method)     # its 2 conditionals get slack / (2n) each
    split = C.split_delta(delta)
    mi = {"single_loss": _mean_mi(np.full(k1, single), slack, split.parts["mean_mi_single_loss"], method).value,
          "loss_pair": _mean_mi(np.full(k1, pair), slack, split.parts["mean_mi_loss_pair"], method).value,
          "loss_difference": 0.0}
    train = _train_floor(k1, delta)
    forms = C.certified_forms(train, mi, interpolates=False)
    return min(forms.fast_rate, forms.binary_kl)


@functools.lru_cache(maxsize=4096)
def _pair_slack(n: int, k1: int, m: int, delta: float, method: C.ConfidenceSet) -> tuple[float, float]:
    """The pair slack of :data:`PAIR_SLACKS` with the lowest floor for this design, and that floor (a function
    of the design only: n, k1, m, delta); 0 for ``jensen`` (no per-pair boxes). Memoised: a pure function of its
    arguments, evaluated for the same designs again and again by :func:`runs_needed`, the refusals and
    :func:`certify_runs`."""
    if method is C.ConfidenceSet.JENSEN:
        return 0.0, _floor_at(n, k1, m, delta, 0.0, method)
    floors = {s: _floor_at(n, k1, m, delta, s, method) for s in PAIR_SLACKS}
    best = min(floors, key=floors.get)
    return best, floors[best]


def require_nonvacuous_design(n: int, k1: int, k2: int, delta: float,
                              method: C.ConfidenceSet | str = C.ConfidenceSet.CELLS) -> tuple[float, float]:
    """The pair slack and best-case value of a design (:func:`certified_floor`); ``ValueError`` with the run count
    a nonvacuous value needs when even the best case is vacuous (>= 1)."""
    method = C.ConfidenceSet(method)
    slack, floor = _pair_slack(int(n), int(k1), int(k2) // 2, float(delta), method)
    if floor < 1.0:
        return slack, floor
    try:
        need = runs_needed(n, delta, 0.5, method)
        hint = (f"a nonvacuous value needs at least k1 = {need.k1} supersamples x k2 = {need.k2} masks "
                f"({need.runs} runs; best case {format_upper(need.floor)})")
    except ValueError:
        hint = "no design up to 2 x 10^9 runs reaches a best case of 0.5"
    raise ValueError(
        f"arguments 'k1', 'k2': k1 = {k1} supersamples x k2 = {k2} masks ({int(k2) // 2} runs per U value) are too "
        f"few for a certified CMI bound at n = {n}, delta = {delta!r}: even runs with no errors certify only "
        f"{format_upper(floor)}; {hint}")


def certified_floor(n: int, k1: int, k2: int, delta: float,
                    method: C.ConfidenceSet | str = C.ConfidenceSet.CELLS) -> float:
    """The best case of a design of k1 supersamples x k2 masks (k2 // 2 runs per U value) at sample size n: the
    value it certifies for runs with no errors at all (every pair's runs in one cell: plug-in MI 0, training
    error 0, no spread over supersamples). Errors, information or spread only add to the per-pair boxes' JS,
    the means and the forms, so a design whose best case is >= 1 is refused: it cannot be expected to certify
    anything."""
    for name, x in (("n", n), ("k1", k1)):
        check_count(name, x)
    check_count("k2", k2, minimum=2)
    check_delta("delta", delta)
    return _pair_slack(int(n), int(k1), int(k2) // 2, float(delta), C.ConfidenceSet(method))[1]


class RunsNeeded(NamedTuple):
    """The smallest design found whose floor reaches a target: k1 supersamples x k2 masks, runs = k1 k2."""

    k1: int
    k2: int
    runs: int
    floor: float


_K1_GRID = (10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000, 20000)
_K2_GRID = (20, 50, 100, 200, 400, 600, 1000, 2000, 4000, 6000, 10000, 20000, 50000, 100000)
#: With ``jensen`` the best case does not depend on k2 (every plug-in MI of error-free runs is 0); k2 sets the
#: plug-in's upward bias instead, about (A - 1) / (2 k2) nats for A cells (1/400 for a single loss at k2 = 200),
#: so its designs keep k2 at this value.
JENSEN_K2 = 200


def runs_needed(n: int, delta: float, target: float,
                method: C.ConfidenceSet | str = C.ConfidenceSet.CELLS) -> RunsNeeded:
    """The design of the grids k1 in 10..20000, k2 in 20..100000 (``jensen``: k2 = :data:`JENSEN_K2`) with the fewest
    runs whose :func:`certified_floor` is at most ``target`` (ties: the smaller k1). Raises ``ValueError`` when none
    is."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"argument 'target' must be in (0, 1], got {target!r}")
    best: RunsNeeded | None = None
    k2_grid = (JENSEN_K2,) if C.ConfidenceSet(method) is C.ConfidenceSet.JENSEN else _K2_GRID
    for k1 in _K1_GRID:
        for k2 in k2_grid:
            if best is not None and k1 * k2 >= best.runs:
                break
            f = certified_floor(n, k1, k2, delta, method)
            if f <= target and f < 1.0:
                best = RunsNeeded(k1, k2, k1 * k2, f)
                break
    if best is None:
        raise ValueError(f"argument 'target' = {target!r}: no design up to k1 = {_K1_GRID[-1]}, k2 = {_K2_GRID[-1]} "
                         f"certifies that at n = {n}, delta = {delta!r}")
    return best


# ---------------------------------------------------------------------------------------
# The certificate


@dataclass(frozen=True)
class CertifiedCMI:
    """A certified CMI bound and its held-out baseline (both certificates of :data:`TARGET`).

    Attributes:
        certificate: the CMI certificate (``bound`` :data:`CMI_BOUND`): the smaller of the certified fast-rate
            and binary-kl forms, which hold on one event (no union bound).
        held_out: the held-out baseline (``bound`` :data:`HELD_OUT_MEAN`), a separate statement at its own delta.
        forms: every certified form's value (``interpolating`` only when every run had training error 0, and
            then valid only if the algorithm always interpolates: not part of the certificate).
        mean_mi: the certified mean per-pair MIs (:class:`~genbounds.bounds.cmi_certified.MeanBound`).
        train: the certified mean training error.
        interpolating: the interpolating form's certificate (``bound`` :data:`CMI_INTERPOLATING`), only when every
            run had training error 0; its kind says it holds only if the algorithm always interpolates.
    """

    certificate: Certificate
    held_out: Certificate
    forms: Mapping[str, float | None]
    mean_mi: Mapping[str, C.MeanBound]
    train: C.MeanBound
    interpolating: Certificate | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": "certificate", "target": TARGET, "certificate": self.certificate.to_dict(),
               "held_out": self.held_out.to_dict(), "forms": dict(self.forms),
               "mean_mi": {k: v.to_dict() for k, v in self.mean_mi.items()}, "train_error": self.train.to_dict()}
        if self.interpolating is not None:
            out["interpolating"] = self.interpolating.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CertifiedCMI:
        """Inverse of :meth:`to_dict`, re-validated: every key present, the certificates valid, and every value
        recomputed from the entry's own inputs (:func:`_recheck`); an entry whose values they do not give is
        refused with a ``ValueError``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a certified CMI entry must be an object, got {type(data).__name__}")
        if data.get("kind") != "certificate" or data.get("target") != TARGET:
            raise ValueError(f"a certified CMI entry must have kind 'certificate' and target {TARGET!r}")
        _require_keys("certified CMI entry", data, ("certificate", "held_out", "forms", "mean_mi", "train_error"))
        _require_keys("certified CMI entry 'mean_mi'", data["mean_mi"], ("single_loss", "loss_pair",
                                                                         "loss_difference"))
        out = cls(Certificate.from_dict(data["certificate"]), Certificate.from_dict(data["held_out"]),
                  dict(data["forms"]), {k: _mean_from_dict(f"mean_mi.{k}", v) for k, v in data["mean_mi"].items()},
                  _mean_from_dict("train_error", data["train_error"]),
                  None if data.get("interpolating") is None else Certificate.from_dict(data["interpolating"]))
        _recheck(out)
        return out

    def __str__(self) -> str:
        c, h = self.certificate, self.held_out
        return (f"certificate ({TARGET}, w.p. >= 1 - {c.delta!r}): {format_upper(c.value)} ({c.details['form']}); "
                f"held-out baseline (w.p. >= 1 - {h.delta!r}): {format_upper(h.value)}")


#: A recorded form may differ from its recomputed value by this relative amount: the fast-rate grid's C1 was
#: raised by a relative 1e-10 (every grid point feasible in exact arithmetic), which moves the fast-rate form up
#: by ~1e-11 for records written before; the certificate must still be exactly the smaller recorded form.
_FORM_RTOL = 1e-9

_MEAN_KEYS = ("value", "mean", "k", "delta", "range", "kl_chernoff", "empirical_bernstein")


def _require_keys(what: str, data: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be an object, got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{what} lacks the key(s) {missing}")


def _mean_from_dict(name: str, d: Any) -> C.MeanBound:
    _require_keys(f"certified CMI entry {name!r}", d, _MEAN_KEYS)
    return C.MeanBound(value=d["value"], mean=d["mean"], k=d["k"], delta=d["delta"], scale=d["range"],
                       kl_chernoff=d["kl_chernoff"], bernstein=d["empirical_bernstein"])


def _recheck_mean(name: str, b: C.MeanBound, pair_slack: float = 0.0) -> None:
    """A recorded mean bound is the smaller of its two bounds (plus ln 2 x ``pair_slack`` for the MIs); its
    kl-Chernoff bound is recomputed from its mean, k, delta and range
    (:func:`genbounds.bounds.cmi_certified.kl_chernoff_from_mean`: to the last bits a CPU's log may change on the
    [0, 1] scale, within 1e-9 relative
    on another range, where mean / range rounds), and its empirical Bernstein bound is at least what any sample
    variance gives, ``mean + range * 7 ln(2 / delta') / (3 (k - 1))`` (the variance itself is not recorded)."""
    best = min(b.kl_chernoff, b.bernstein)
    want = best if pair_slack == 0.0 else round_up(best + C.LN2_UP * pair_slack)
    if b.value != want:
        raise ValueError(f"certified CMI entry {name!r}: value {b.value!r} is not what its bounds give ({want!r})")
    check_range(f"certified CMI entry {name!r}: mean", b.mean, 0.0, b.scale)
    half = divide_down(b.delta, 2)
    if b.scale == 1.0:
        klc = round_up(C.kl_chernoff_from_mean(b.mean, b.k, half))
        if not recomputes_to(b.kl_chernoff, klc):
            raise ValueError(f"certified CMI entry {name!r}: kl_chernoff {b.kl_chernoff!r} does not recompute from "
                             f"its mean, k and delta ({klc!r})")
    else:
        klc = C.kl_chernoff_from_mean(min(1.0, b.mean / b.scale), b.k, half) * b.scale
        if not b.kl_chernoff >= klc * (1.0 - 1e-9):
            raise ValueError(f"certified CMI entry {name!r}: kl_chernoff {b.kl_chernoff!r} is below what its mean, k, "
                             f"delta and range give ({klc!r})")
    floor = b.scale if b.k < 2 else min(b.scale, b.mean + b.scale * 7.0 * math.log(2.0 / half) / (3.0 * (b.k - 1)))
    if not b.bernstein >= floor * (1.0 - 1e-12):
        raise ValueError(f"certified CMI entry {name!r}: empirical_bernstein {b.bernstein!r} is below what any sample "
                         f"variance gives for its mean, k and delta ({floor!r})")


def _recheck(cert: CertifiedCMI) -> None:
    """The entry's values recomputed from its recorded inputs: the mean bounds (:func:`_recheck_mean`), the forms
    from the mean bounds and the training error, the certificate as their smaller unconditional form, the
    held-out value as its recorded mean test error bound."""
    c, h = cert.certificate, cert.held_out
    for role, entry, bound in (("certificate", c, CMI_BOUND), ("held_out", h, HELD_OUT_MEAN),
                               ("interpolating", cert.interpolating, CMI_INTERPOLATING)):
        if entry is not None and (entry.bound != bound or entry.details.get("kind") != KINDS[bound]):
            raise ValueError(f"certified CMI entry {role!r}: bound {entry.bound!r} of kind "
                             f"{entry.details.get('kind')!r}, where this entry holds {bound!r} of kind "
                             f"{KINDS[bound]!r}; was the record edited?")
    for key in ("pair_slack", "form"):
        if key not in c.details:
            raise ValueError(f"certified CMI entry 'certificate': details lack the key {key!r}")
    if "mean_test_error" not in h.details:
        raise ValueError("certified CMI entry 'held_out': details lack the key 'mean_test_error'")
    jensen = c.details.get("confidence_set") == C.ConfidenceSet.JENSEN.value
    if (c.details["pair_slack"] != 0.0) if jensen else (c.details["pair_slack"] not in PAIR_SLACKS):
        raise ValueError(f"certified CMI entry 'certificate': pair_slack {c.details['pair_slack']!r} is not one its "
                         f"confidence set {c.details.get('confidence_set')!r} uses "
                         f"({'0 for jensen' if jensen else list(PAIR_SLACKS)})")
    _recheck_mean("train_error", cert.train)
    for k, v in cert.mean_mi.items():
        _recheck_mean(f"mean_mi.{k}", v, float(c.details["pair_slack"]))
    forms = C.certified_forms(cert.train.value, {k: v.value for k, v in cert.mean_mi.items()},
                              interpolates=cert.forms.get("interpolating") is not None)
    want = forms.to_dict()
    got = dict(cert.forms)
    if set(got) != set(want) or any((got[k] is None) != (want[k] is None) or (
            want[k] is not None and not abs(float(got[k]) - want[k]) <= _FORM_RTOL * want[k]) for k in want):
        raise ValueError(f"certified CMI entry 'forms': {got} is not what the recorded mean bounds give ({want})")
    recorded = C.CertifiedForms(got["fast_rate"], got["binary_kl"], got["interpolating"])
    form, value = recorded.best(with_interpolating=False)
    if c.value != value or c.details["form"] != form:
        raise ValueError(f"certified CMI entry 'certificate': value {c.value!r} ({c.details['form']}) is not what "
                         f"the recorded mean bounds give ({value!r}, {form})")
    if c.emp_risk_bound != cert.train.value:
        raise ValueError("certified CMI entry 'certificate': emp_risk_bound is not the recorded training error bound")
    held = _mean_from_dict("held_out.mean_test_error", h.details["mean_test_error"])
    _recheck_mean("held_out.mean_test_error", held)
    if h.value != held.value or held.delta != h.delta:
        raise ValueError(f"certified CMI entry 'held_out': value {h.value!r} at delta {h.delta!r} is not its "
                         f"recorded mean test error bound ({held.value!r} at delta {held.delta!r})")
    if cert.interpolating is not None and cert.interpolating.value != got["interpolating"]:
        raise ValueError("certified CMI entry 'interpolating': value is not what the recorded mean bound gives")


def _check_indices(indices, k1: int, n: int, sampling: Sampling, pool_size: int | None) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.shape != (k1, n, 2):
        raise ValueError(f"array 'indices' must have shape [k1, n, 2] = {(k1, n, 2)}, got {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"array 'indices' must hold integer example ids, got dtype {idx.dtype}")
    if sampling is Sampling.FRESH:
        if pool_size is not None:
            raise ValueError("argument 'pool_size' is only for sampling='pool' (draws with replacement from a pool); "
                             "with sampling='fresh' leave it None")
        values, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            dup = int(values[counts > 1][0])
            where = [tuple(map(int, w)) for w in np.argwhere(idx == dup)[:2]]
            raise ValueError(
                f"array 'indices': the supersamples reuse examples (example {dup} at [draw, pair, member] {where}; "
                f"{int((counts > 1).sum())} examples appear more than once); the certificate needs k1 supersamples of "
                "2n fresh examples each. Draws with replacement from a pool certify the risk under the pool's uniform "
                "distribution instead: declare them with sampling='pool' and pool_size")
    else:
        if pool_size is None:
            raise ValueError("argument 'pool_size' is needed with sampling='pool' (the target is the uniform "
                             "distribution on the pool)")
        check_count("pool_size", pool_size)
        if idx.min() < 0 or idx.max() >= pool_size:
            raise ValueError(f"array 'indices' must hold ids in [0, {pool_size}) with sampling='pool'")
    return idx


#: Supersamples sharing one mask set are refused when independent fair masks would give such a group with
#: probability below 2^-SHARED_MASKS_BITS.
SHARED_MASKS_BITS = 30


def _check_independent_masks(masks: np.ndarray) -> None:
    """Refuse supersamples that share their mask set ``[k2, n]`` more often than chance plausibly allows.

    The concentration over supersamples needs their per-supersample values i.i.d., and the plug-in (``jensen``)
    and box statements need each supersample's masks drawn independently of the others (one mask set broadcast
    to every supersample breaks both). Under independent fair masks (antithetic or not) a given set of c
    supersamples has one mask set with probability at most 2^-(b (c - 1)), b = floor(k2 / 2) n free bits, so the
    largest group of c equal mask sets has probability at most C(k1, c) 2^-(b (c - 1)); a group is refused when
    that is below 2^-:data:`SHARED_MASKS_BITS`. Correlated but different mask sets cannot be detected:
    independence stays a premise of :func:`certify_runs`."""
    k1, k2, n = masks.shape
    if k1 < 2:
        return
    rows = np.ascontiguousarray(masks.reshape(k1, k2 * n).astype(np.uint8))
    _, first, counts = np.unique(rows, axis=0, return_index=True, return_counts=True)
    c = int(counts.max())
    if c < 2:
        return
    log2_comb = (math.lgamma(k1 + 1) - math.lgamma(c + 1) - math.lgamma(k1 - c + 1)) / math.log(2.0)
    if log2_comb - (k2 // 2) * n * (c - 1) >= -SHARED_MASKS_BITS:
        return
    row = rows[first[int(np.argmax(counts))]]
    same = [int(j) for j in np.flatnonzero((rows == row).all(axis=1))[:3]]
    raise ValueError(
        f"array 'masks': {c} of the k1 = {k1} supersamples (e.g. {same}) have the same k2 x n = {k2} x {n} masks; "
        "the certificate needs masks drawn independently for every supersample (independent fair masks give such a "
        f"group with probability below 2^-{SHARED_MASKS_BITS})")


def certify_runs(masks, predictions, labels, indices, *, delta: float, sampling: Sampling | str = Sampling.FRESH,
                 pool_size: int | None = None, method: C.ConfidenceSet | str = C.ConfidenceSet.CELLS,
                 details: Mapping[str, Any] | None = None) -> CertifiedCMI:
    """The certified CMI bound and its held-out baseline from supersample runs (see the module docstring).

    Args:
        masks: ``[k1, k2, n]`` 0/1, the training member of each pair by run; U_i must be uniform by design,
            drawn independently for every supersample (a shared mask set is refused), and every pair needs runs
            with both values (antithetic masks give k2/2 each).
        predictions: ``[k1, k2, n, 2]`` predicted classes on both members; labels: ``[k1, n, 2]``.
        indices: ``[k1, n, 2]`` example ids of the supersamples (checked for reuse with ``fresh`` sampling).
        delta: the CMI certificate's confidence budget (split by :func:`genbounds.bounds.cmi_certified.split_delta`);
            the held-out baseline is a separate statement at the same delta.
        sampling: :class:`Sampling`; ``pool_size`` with ``pool``.
        method: the per-pair confidence set (:class:`genbounds.bounds.cmi_certified.ConfidenceSet`).
        details: extra entries recorded in both certificates (seeds, data set, ...).
    """
    check_delta("delta", delta)
    sampling = Sampling(sampling)
    method = C.ConfidenceSet(method)
    masks, preds, labels = check_supersample_runs(masks, predictions, labels)
    k1, k2, n = masks.shape
    _check_indices(indices, k1, n, sampling, pool_size)
    _check_independent_masks(masks)
    ones = masks.sum(axis=1)                                                # [k1, n]
    m_min = int(min(ones.min(), (k2 - ones).min()))
    # The pair slack depends on the design's nominal size (n, k1, k2, delta) only, so that each X'_j is a function
    # of supersample j alone (i.i.d. over supersamples); the refusal looks at the fewest runs any pair has.
    require_nonvacuous_design(n, k1, k2, delta, method)
    if m_min < k2 // 2:
        try:
            require_nonvacuous_design(n, k1, 2 * m_min, delta, method)
        except ValueError:
            j, i = map(int, np.argwhere(np.minimum(ones, k2 - ones) == m_min)[0])
            raise ValueError(
                f"array 'masks': pair {i} of draw {j} has {int(k2 - ones[j, i])} runs with U = 0 and "
                f"{int(ones[j, i])} with U = 1 of the k2 = {k2} masks: with {m_min} runs for one U value even runs "
                f"with no errors certify nothing (k1 = {k1}, n = {n}, delta = {delta!r}); the masks' balance, not "
                f"their number, is the problem: balanced masks (antithetic: k2 / 2 = {k2 // 2} runs per U value) "
                "would do") from None
    slack, floor = _pair_slack(n, k1, k2 // 2, float(delta), method)
    loss = (preds != labels[:, None]).astype(np.int64)                      # [k1, k2, n, 2]
    counts = loss_pair_counts(masks, loss)
    jensen = method is C.ConfidenceSet.JENSEN
    up = _pair_mi(counts, slack, method)                                    # {statistic: [k1, n]}
    per_draw = {"loss_pair": up["loss_pair"].mean(-1), "loss_difference": up["loss_difference"].mean(-1),
                "single_loss": ((up["loss_member0"] + up["loss_member1"]) / 2).mean(-1)}
    # Errors with U's uniform design weight (as in bounds_from_runs): per pair, each U value weighs 1/2.
    m = masks[..., None]
    train_loss = np.take_along_axis(loss, m, axis=-1)[..., 0]
    test_loss = np.take_along_axis(loss, 1 - m, axis=-1)[..., 0]
    weight = 1.0 / (2.0 * np.where(masks == 1, ones[:, None], k2 - ones[:, None]))
    train_draw = np.clip((weight * train_loss).sum(axis=1).mean(-1), 0.0, 1.0)
    test_draw = np.clip((weight * test_loss).sum(axis=1).mean(-1), 0.0, 1.0)

    split = C.split_delta(delta)
    train = C.mean_upper(train_draw, split.parts["mean_train_error"])
    mean_mi = {name: _mean_mi(per_draw[name], slack, split.parts[f"mean_mi_{name}"], method) for name in per_draw}
    interpolates = bool(train_loss.max() == 0)
    forms = C.certified_forms(train.value, {k: v.value for k, v in mean_mi.items()}, interpolates=interpolates)
    form, value = forms.best(with_interpolating=False)
    mi_used = mean_mi["single_loss" if form == "fast_rate" else "loss_pair"]
    statement = _statement(n, sampling, pool_size)
    design = {"k1": k1, "k2": k2, "n": n, "runs": k1 * k2, "runs_per_u_min": m_min, "sampling": sampling.value,
              "pool_size": pool_size, **dict(details or {})}
    info = {
        "kind": "certificate", "target": TARGET, "statement": statement, "form": form, "forms": forms.to_dict(),
        "interpolating_note": "valid only if the algorithm reaches training error 0 almost surely (finite runs "
                              "cannot certify that): reported, not part of the certificate",
        "confidence_set": method.value, "pair_slack": slack, "pair_slack_grid": [] if jensen else list(PAIR_SLACKS),
        "pair_slack_rule": ("none: per pair the plug-in JS, whose expectation is at least the pair's MI (Jensen), "
                            "concentrated over the supersamples" if jensen else
                            "the grid value with the lowest best-case value for this design (chosen before the runs)"),
        "best_case": floor, "mean_mi": {k: v.to_dict() for k, v in mean_mi.items()}, "train_error": train.to_dict(),
        "kl_field": "n times the certified mean per-pair MI of the chosen form (nats)", **design}
    cert = Certificate(bound=CMI_BOUND, value=value, delta=float(delta), delta_parts=split.to_dict(),
                       emp_risk=float(train_draw.mean()), kl=n * mi_used.value, n_bound=n,
                       emp_risk_bound=train.value, details=info)
    held = C.mean_upper(test_draw, delta)
    held_out = Certificate(
        bound=HELD_OUT_MEAN, value=held.value, delta=float(delta), delta_parts={"mean_test_error": float(delta)},
        emp_risk=float(test_draw.mean()), kl=0.0, n_bound=n,
        details={"kind": "certificate", "target": TARGET, "statement": statement,
                 "method": "mean over the k1 supersamples of the test error on each supersample's unused half (U's "
                           "uniform design weight); kl-Chernoff and empirical Bernstein at delta/2 each, the smaller",
                 "mean_test_error": held.to_dict(), **design})
    interp = None
    if forms.interpolating is not None:
        interp = Certificate(
            bound=CMI_INTERPOLATING, value=forms.interpolating, delta=float(delta),
            delta_parts={"mean_mi_loss_difference": split.parts["mean_mi_loss_difference"]},
            emp_risk=0.0, kl=n * mean_mi["loss_difference"].value, n_bound=n,
            details={**info, "kind": INTERPOLATING_KIND, "form": "interpolating",
                     "observed": f"training error 0 in all {k1 * k2} runs"})
    return CertifiedCMI(cert, held_out, forms.to_dict(), mean_mi, train, interp)


def bounds_from_runs(masks, predictions, labels, *, miller_madow: bool = False, certify: bool = False,
                     delta: float | None = None, indices=None, sampling: Sampling | str = Sampling.FRESH,
                     pool_size: int | None = None, method: C.ConfidenceSet | str = C.ConfidenceSet.CELLS,
                     details: Mapping[str, Any] | None = None) -> CMIResult:
    """Every plug-in CMI bound estimate (:func:`genbounds.estimators.supersample.runs.bounds_from_runs`), and with
    ``certify=True`` the certified bound and its held-out baseline (:func:`certify_runs`, needs ``delta`` and
    the supersamples' ``indices``) in ``result.certified``."""
    res = plugin_bounds_from_runs(masks, predictions, labels, miller_madow=miller_madow)
    if not certify:
        return res
    if delta is None:
        raise ValueError("argument 'delta' is needed with certify=True (the certificate's confidence budget)")
    if indices is None:
        raise ValueError("argument 'indices' ([k1, n, 2] example ids) is needed with certify=True: the certificate "
                         "needs supersamples that reuse no example (or a declared pool)")
    cert = certify_runs(masks, predictions, labels, indices, delta=delta, sampling=sampling, pool_size=pool_size,
                        method=method, details=details)
    return dataclasses.replace(res, certified=cert)

