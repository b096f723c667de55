"""CMI bounds from training runs: the one entry point for runs trained with any code.

:func:`bounds_from_runs` takes the masks, the predicted classes on both members of every
pair and the labels of a supersample experiment (k1 supersample draws x k2 masks each),
estimates every per-pair mutual information with the plug-in estimator
(:mod:`genbounds.estimators.supersample.mi`) and evaluates every applicable bound of
:mod:`genbounds.bounds.cmi`, with its per-draw values and a bootstrap interval over draws. All
values are bounds on the expected *risk* E L_D (a gap bound plus the mean training error where
the bound is on the gap) and are *estimates*: the MIs come from finitely many runs.

:func:`loo_bounds_from_runs` does the same for leave-one-out supersamples (n+1 points, the
held-out index U). Both return a :class:`CMIResult`: a :class:`CMIBound` per bound name and a
summary; ``to_dict()`` gives the JSON that records and ``genbounds bound cmi --format json`` hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from ...bounds import cmi as B
from ...bounds import format_upper
from ..data import class_ids
from .mi import bootstrap_interval, encode_pairs, plugin_mi

__all__ = ["CMIBound", "CMIResult", "SupersampleSummary", "LooSummary", "bounds_from_runs",
           "check_supersample_runs", "check_loo_runs", "loo_bounds_from_runs", "loo_losses", "BOUND_NAMES"]

BOUND_NAMES = ("fcmi", "ecmi", "ldcmi", "single_loss", "binary_kl", "interpolating", "fast_rate",
               "fast_rate_closed_form", "fast_rate_variance", "fast_rate_sharpness")

#: What every CMI number is: plug-in MIs from finitely many runs make it an estimate.
ESTIMATE_NOTE = "MIs are plug-in estimates from finitely many runs: the bounds are estimates, not certificates"


#: Predictions may be any int64 id: a negative one ("no class") equals no label.
_ANY_ID = int(np.iinfo(np.int64).min)


def check_supersample_runs(masks, predictions, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a supersample run set against the CMI theorems' assumptions.

    The theorems take U_i ~ Bernoulli(1/2) independent of the data. Each (draw, pair) must
    therefore hold runs with both values of U_i, or the pair says nothing about how U_i shapes
    the model: with masks identical across runs every MI is 0 and every "bound" equals the
    training error, whatever the test error. Such designs are refused, naming the pair.
    Unbalanced but complete designs are accepted, and every expectation over U is taken with
    its known uniform marginal (:func:`genbounds.estimators.supersample.mi.plugin_mi`).

    Args:
        masks: ``[k1, k2, n]`` 0/1, member of pair i used for training by run (draw, mask).
        predictions: ``[k1, k2, n, 2]`` predicted class ids on both members of every pair. A
            prediction equal to no label (e.g. -1 for a model with non-finite logits) is an error.
        labels: ``[k1, n, 2]`` true class ids, whole numbers >= 0 (so that no label equals a
            "no class" prediction) that int64 holds; others are refused, never cast onto another id.
    Returns:
        int64 ``masks``, and ``predictions``, ``labels`` with class ids remapped to ``[0, K)``
        (K = number of distinct ids), so that pair codes stay small whatever the ids.
    """
    masks, predictions, labels = np.asarray(masks), np.asarray(predictions), np.asarray(labels)
    if masks.ndim != 3:
        raise ValueError(f"array 'masks' must have shape [k1, k2, n], got {masks.shape}")
    k1, k2, n = masks.shape
    if predictions.shape != (k1, k2, n, 2):
        raise ValueError(f"array 'predictions' must have shape [k1, k2, n, 2] = {(k1, k2, n, 2)}, "
                         f"got {predictions.shape}")
    if labels.shape != (k1, n, 2):
        raise ValueError(f"array 'labels' must have shape [k1, n, 2] = {(k1, n, 2)}, got {labels.shape}")
    if k1 == 0 or n == 0:
        raise ValueError(f"array 'masks' holds no runs to estimate from (k1 = {k1} draws, n = {n} pairs)")
    if k2 < 2:
        raise ValueError("array 'masks' needs k2 >= 2 masks per supersample to estimate a mutual information")
    if not np.isin(masks, (0, 1)).all():
        raise ValueError("array 'masks' must hold only 0 and 1")
    masks = masks.astype(np.int64)
    ones = masks.sum(axis=1)                                            # [k1, n]
    one_sided = (ones == 0) | (ones == k2)
    if one_sided.any():
        d, i = map(int, np.argwhere(one_sided)[0])
        raise ValueError(
            f"array 'masks': pair {i} of draw {d} has U = {int(masks[d, 0, i])} in all {k2} runs "
            f"({int(one_sided.sum())} of {k1 * n} pairs are one-sided); the CMI theorems take U_i ~ "
            "Bernoulli(1/2), so every pair needs runs with both values (draw masks as fair coin flips)")
    predictions = class_ids("array 'predictions'", predictions, minimum=_ANY_ID)
    labels = class_ids("array 'labels'", labels)
    _, dense = np.unique(np.concatenate([predictions.ravel(), labels.ravel()]), return_inverse=True)
    dense = dense.reshape(-1)
    return masks, dense[: predictions.size].reshape(predictions.shape), dense[predictions.size:].reshape(labels.shape)


@dataclass(frozen=True)
class CMIBound:
    """One CMI bound estimated from runs (an *estimate*, never a certificate).

    Attributes:
        mi: which mutual information it uses ("prediction pair", "loss pair", ...).
        value: mean over draws of the bound on E[test error], or None when not applicable.
        target: what the theorem bounds, "gap" (value = training error + gap bound) or "risk".
        gap_bound: ``value`` minus the mean training error.
        per_draw: ``[k1]`` the bound for each supersample draw.
        interval: 95% percentile-bootstrap interval of the mean over draws.
        reason: why the bound does not apply (when ``value`` is None).
        kind: always "estimate" (a class constant: no record or caller sets it).
    """

    mi: str
    value: float | None = None
    target: str | None = None
    gap_bound: float | None = None
    per_draw: tuple[float, ...] = ()
    interval: tuple[float, float] | None = None
    reason: str | None = None
    kind: ClassVar[str] = "estimate"

    @property
    def applicable(self) -> bool:
        return self.value is not None

    @property
    def vacuous(self) -> bool:
        return self.applicable and self.value >= 1.0

    def to_dict(self) -> dict[str, Any]:
        if not self.applicable:
            return {"value": None, "applicable": False, "reason": self.reason, "mi": self.mi, "kind": self.kind}
        return {"value": self.value, "gap_bound": self.gap_bound, "per_draw": list(self.per_draw),
                "interval": list(self.interval), "applicable": True, "mi": self.mi, "target": self.target,
                "kind": self.kind, "vacuous": self.vacuous}

    def __str__(self) -> str:
        if not self.applicable:
            return f"not applicable ({self.reason})"
        lo, hi = self.interval
        return f"{format_upper(self.value)} [{lo:.4f}, {format_upper(hi)}] (estimate, bounds the {self.target})"


@dataclass(frozen=True)
class SupersampleSummary:
    """What was measured on supersample runs: errors with the uniform design weight of U, mean MIs."""

    k1: int
    k2: int
    n: int
    num_classes: int
    train_error: float
    test_error: float
    gap: float
    test_error_interval: tuple[float, float]
    mean_mi: Mapping[str, float]
    miller_madow: bool
    kind: str = "estimate"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["test_error_interval"] = list(self.test_error_interval)
        d["mean_mi"] = dict(self.mean_mi)
        return d


@dataclass(frozen=True)
class LooSummary:
    """What was measured on leave-one-out runs ("test error" is the error on the held-out point)."""

    k1: int
    runs: int
    n: int
    train_error: float
    test_error: float
    gap: float
    mean_mi: float
    kind: str = "estimate"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CMIResult:
    """Every bound of one run set (``bounds`` keyed by name) and its summary."""

    bounds: Mapping[str, CMIBound]
    summary: SupersampleSummary | LooSummary = field(repr=False)
    #: The certified bound and its held-out baseline (:class:`.certified.CertifiedCMI`), when asked for
    #: (:func:`genbounds.estimators.supersample.bounds_from_runs` with ``certify=True``).
    certified: Any = field(default=None, repr=False)

    def __getitem__(self, name: str) -> CMIBound:
        return self.bounds[name]

    def to_dict(self) -> dict[str, Any]:
        """``{name: bound.to_dict(), ..., "summary": summary.to_dict()}`` (and ``"certified"`` when certified)."""
        out = {**{k: b.to_dict() for k, b in self.bounds.items()}, "summary": self.summary.to_dict()}
        if self.certified is not None:
            out["certified"] = self.certified.to_dict()
        return out

    def __str__(self) -> str:
        s = self.summary
        width = max(map(len, self.bounds))
        head = (f"CMI bound estimates (not certificates), n = {s.n}: train error {s.train_error:.4f}, "
                f"test error {s.test_error:.4f}")
        lines = [head, *(f"  {k:<{width}}  {b}" for k, b in self.bounds.items())]
        if self.certified is not None:
            lines.append(f"  {self.certified}")
        return "\n".join(lines)


def _bound(per_draw: np.ndarray, train_per_draw: np.ndarray, mi_used: str, target: str) -> CMIBound:
    per_draw = np.asarray(per_draw, dtype=np.float64)
    value = float(per_draw.mean())
    return CMIBound(mi_used, value, target, value - float(train_per_draw.mean()), tuple(per_draw.tolist()),
                    bootstrap_interval(per_draw))


def bounds_from_runs(masks, predictions, labels, *, miller_madow: bool = False) -> CMIResult:
    """Every applicable CMI bound from supersample runs (estimates, not certificates).

    Args:
        masks: ``[k1, k2, n]`` 0/1, member of pair i used for training in run (draw, mask).
        predictions: ``[k1, k2, n, 2]`` predicted class on both members of every pair.
        labels: ``[k1, n, 2]`` true classes of the supersample of each draw.
        miller_madow: bias-correct the plug-in MIs.

    Every expectation over U uses its uniform design marginal: per pair, the runs with
    U_i = 0 and those with U_i = 1 get weight 1/2 each, in the MIs, the training and test
    errors and the second moments of the variance/sharpness forms alike (for balanced masks
    this is the plain mean over runs). Refused designs: see :func:`check_supersample_runs`.

    Returns:
        A :class:`CMIResult`: a :class:`CMIBound` per name (``fcmi``, ``ecmi``, ``ldcmi``,
        ``single_loss``, ``binary_kl``, ``interpolating``, ``fast_rate``,
        ``fast_rate_closed_form``, ``fast_rate_variance``, ``fast_rate_sharpness``) and a
        :class:`SupersampleSummary` with the measured train/test error and gap and the mean
        per-pair MIs.
    """
    masks, preds, labels = check_supersample_runs(masks, predictions, labels)
    k1, k2, n = masks.shape
    num_classes = int(max(preds.max(), labels.max())) + 1
    loss = (preds != labels[:, None]).astype(np.int64)                 # [k1, k2, n, 2]
    m = masks[..., None]
    train_loss = np.take_along_axis(loss, m, axis=-1)[..., 0]           # [k1, k2, n]
    test_loss = np.take_along_axis(loss, 1 - m, axis=-1)[..., 0]
    ones = masks.sum(axis=1, keepdims=True)                             # [k1, 1, n]
    weight = 1.0 / (2.0 * np.where(masks == 1, ones, k2 - ones))        # sums to 1 over runs, per pair
    train_pair = (weight * train_loss).sum(axis=1)                      # [k1, n]: E_U L_{i, U_i}
    train_draw = train_pair.mean(-1)                                    # [k1]
    test_draw = (weight * test_loss).sum(axis=1).mean(-1)
    train_run = train_loss.mean(-1)                                     # [k1, k2]

    u = np.moveaxis(masks, 1, -1)                                       # [k1, n, k2]

    def mi(codes):
        return plugin_mi(u, np.moveaxis(codes, 1, -1), miller_madow=miller_madow)   # [k1, n]

    mi_f = mi(encode_pairs(preds[..., 0], preds[..., 1], num_classes))
    mi_e = mi(encode_pairs(loss[..., 0], loss[..., 1], 2))
    mi_ld = mi(loss[..., 1] - loss[..., 0])
    mi_l0, mi_l1 = mi(loss[..., 0]), mi(loss[..., 1])
    i_single = ((mi_l0 + mi_l1) / 2).mean(-1)                           # [k1]

    out: dict[str, CMIBound] = {}
    out["fcmi"] = _bound(train_draw + B.samplewise_sqrt(mi_f), train_draw, "prediction pair", "gap")
    out["ecmi"] = _bound(train_draw + B.samplewise_sqrt(mi_e), train_draw, "loss pair", "gap")
    out["ldcmi"] = _bound(train_draw + B.samplewise_sqrt(mi_ld), train_draw, "loss difference", "gap")
    out["single_loss"] = _bound(train_draw + B.single_loss(mi_l0, mi_l1), train_draw, "single loss", "gap")
    out["binary_kl"] = _bound(B.binary_kl(train_draw, mi_e), train_draw, "loss pair", "risk")
    try:
        out["interpolating"] = _bound(B.interpolating(mi_ld, train_run), train_draw, "loss difference", "risk")
    except ValueError as err:
        out["interpolating"] = CMIBound("loss difference", reason=str(err))
    out["fast_rate"] = _bound(B.fast_rate(train_draw, i_single), train_draw, "single loss (mean)", "gap")
    out["fast_rate_closed_form"] = _bound(B.fast_rate_closed_form(train_draw, i_single), train_draw,
                                          "single loss (mean)", "gap")
    # Second moments for the variance / sharpness forms (clamped to <= L_hat in bounds.cmi).
    v_var = (train_run**2).mean(-1)                                     # run's squared training error
    cond0 = (np.where(masks == 0, loss[..., 0], 0).sum(1) / (k2 - ones[:, 0]))   # E[L_i0 | U_i = 0]
    cond1 = (np.where(masks == 1, loss[..., 1], 0).sum(1) / ones[:, 0])          # E[L_i1 | U_i = 1]
    v_sharp = ((cond0**2 + cond1**2) / 2).mean(-1)                      # same uniform weight as train_pair
    out["fast_rate_variance"] = _bound(B.fast_rate_variance(train_draw, i_single, v_var), train_draw,
                                       "single loss (mean)", "gap")
    out["fast_rate_sharpness"] = _bound(B.fast_rate_variance(train_draw, i_single, v_sharp), train_draw,
                                        "single loss (mean)", "gap")
    train, test = float(train_draw.mean()), float(test_draw.mean())
    summary = SupersampleSummary(
        k1=k1, k2=k2, n=n, num_classes=num_classes, train_error=train, test_error=test, gap=test - train,
        test_error_interval=bootstrap_interval(test_draw),
        mean_mi={"prediction_pair": float(mi_f.mean()), "loss_pair": float(mi_e.mean()),
                 "loss_difference": float(mi_ld.mean()), "single_loss": float(i_single.mean())},
        miller_madow=miller_madow, note=ESTIMATE_NOTE)
    return CMIResult(out, summary)


def loo_losses(predictions, labels) -> np.ndarray:
    """0-1 losses ``[k1, R, n+1]`` of leave-one-out runs from ``predictions: [k1, R, n+1]`` (their
    predicted classes on every point of the draw) and ``labels: [k1, n+1]`` (ids as in
    :func:`check_supersample_runs`)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if labels.ndim != 2 or predictions.ndim != 3 or predictions.shape[::2] != labels.shape:
        raise ValueError(f"arrays 'predictions' [k1, R, n+1] and 'labels' [k1, n+1] disagree: "
                         f"{predictions.shape} vs {labels.shape}")
    predictions = class_ids("array 'predictions'", predictions, minimum=_ANY_ID)
    return (predictions != class_ids("array 'labels'", labels)[:, None]).astype(np.int8)


def check_loo_runs(held_out, losses) -> tuple[np.ndarray, np.ndarray]:
    """Validate a leave-one-out run set: every draw must enumerate each held-out index 0..n once.

    The bound's MI is over U uniform on the n+1 indices. With fewer than n+1 runs, or a repeated
    index, the MI over U is at most ln R (0 for a single run), whatever the runs did, so such
    run sets are refused, naming the draw and the missing or repeated indices.

    Args:
        held_out: ``[k1, R]`` index in ``[0, n]`` of the point left out by run r.
        losses: ``[k1, R, n+1]`` 0-1 loss of run r on every point of its supersample.
    """
    held_out, losses = np.asarray(held_out), np.asarray(losses)
    if held_out.ndim != 2 or losses.ndim != 3 or losses.shape[:2] != held_out.shape:
        raise ValueError(f"arrays 'held_out' [k1, R] and 'losses' [k1, R, n+1] disagree: "
                         f"{held_out.shape} vs {losses.shape}")
    k1, runs, n1 = losses.shape
    if k1 == 0 or n1 < 2:
        raise ValueError(f"array 'held_out' holds no runs to estimate from (k1 = {k1} draws, n+1 = {n1} points)")
    held_out = class_ids("array 'held_out'", held_out, minimum=_ANY_ID)
    if held_out.min() < 0 or held_out.max() > n1 - 1:
        raise ValueError(f"array 'held_out' must hold indices in [0, {n1 - 1}], "
                         f"got [{held_out.min()}, {held_out.max()}]")
    counts = np.stack([np.bincount(h, minlength=n1) for h in held_out])          # [k1, n+1]
    bad = np.nonzero((counts != 1).any(axis=1))[0]
    if bad.size:
        d = int(bad[0])
        missing, repeated = np.nonzero(counts[d] == 0)[0], np.nonzero(counts[d] > 1)[0]
        raise ValueError(
            f"array 'held_out': draw {d} has {runs} runs for n+1 = {n1} points (missing indices "
            f"{_short(missing)}, repeated {_short(repeated)}); the leave-one-out bound needs every "
            f"held-out index 0..n exactly once per draw ({bad.size} of {k1} draws are incomplete)")
    if not np.isin(losses, (0, 1)).all():
        raise ValueError("array 'losses' must hold 0-1 losses (0 or 1)")
    return held_out, losses.astype(np.int8)


def _short(idx: np.ndarray, k: int = 5) -> str:
    items = ", ".join(str(int(i)) for i in idx[:k])
    return f"[{items}{', ...' if idx.size > k else ''}]"


def loo_bounds_from_runs(held_out, losses) -> CMIResult:
    """Leave-one-out CMI bounds from runs on supersamples of n+1 points (estimates).

    Args:
        held_out: ``[k1, n+1]`` index in ``[0, n]`` of the point left out by run r; each row a
            permutation of 0..n (:func:`check_loo_runs`).
        losses: ``[k1, n+1, n+1]`` 0-1 loss of run r on every point of its supersample.
    """
    held_out, losses = check_loo_runs(held_out, losses)
    k1, runs, n1 = losses.shape
    n = n1 - 1
    vec_codes = np.stack([np.unique(losses[d], axis=0, return_inverse=True)[1].ravel() for d in range(k1)])
    mis = plugin_mi(held_out, vec_codes, u_values=n1)                                 # [k1]
    held = np.take_along_axis(losses, held_out[..., None], axis=-1)[..., 0]           # [k1, R]
    train = (losses.sum(-1) - held) / n                                               # [k1, R]
    train_draw = train.mean(-1)
    out = {"loo_sqrt": _bound(train_draw + B.loo_sqrt(mis), train_draw, "loss vector", "gap")}
    if float(train.max()) == 0.0:
        out["loo_interpolating"] = _bound(B.loo_interpolating(mis, n), train_draw, "loss vector", "risk")
    else:
        out["loo_interpolating"] = CMIBound("loss vector", reason="needs training error exactly 0 in every run")
    summary = LooSummary(
        k1=k1, runs=runs, n=n, train_error=float(train.mean()), test_error=float(held.mean()),
        gap=float(held.mean() - train.mean()), mean_mi=float(mis.mean()),
        note="the MI over the n+1 enumerated held-out indices is exact given each draw and its seed; the mean "
             "over k1 draws estimates the expectation over supersamples: the bounds are estimates, not certificates")
    return CMIResult(out, summary)
