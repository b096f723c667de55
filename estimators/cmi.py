"""CMI bounds from training runs: the one entry point for runs trained with any code.

:func:`bounds_from_runs` takes the masks, the predicted classes on both members of every
pair and the labels of a supersample experiment (k1 supersample draws x k2 masks each),
estimates every per-pair mutual information with the plug-in estimator
(:mod:`estimators.mi`) and evaluates every applicable bound of :mod:`bounds.cmi`, with its
per-draw values and a bootstrap interval over draws. All values are bounds on the expected
*risk* E L_D (a gap bound plus the mean training error where the bound is on the gap) and
are *estimates*: the MIs come from finitely many runs.

:func:`loo_bounds_from_runs` does the same for leave-one-out supersamples (n+1 points, the
held-out index U).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bounds import cmi as B
from estimators.mi import bootstrap_interval, encode_pairs, plugin_mi

__all__ = ["bounds_from_runs", "loo_bounds_from_runs", "loo_losses", "BOUND_NAMES"]

BOUND_NAMES = ("fcmi", "ecmi", "ldcmi", "single_loss", "binary_kl", "interpolating", "fast_rate",
               "fast_rate_closed_form", "fast_rate_variance", "fast_rate_sharpness")


def _check_runs(masks, predictions, labels):
    masks = np.asarray(masks)
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if masks.ndim != 3:
        raise ValueError(f"array 'masks' must have shape [k1, k2, n], got {masks.shape}")
    k1, k2, n = masks.shape
    if predictions.shape != (k1, k2, n, 2):
        raise ValueError(f"array 'predictions' must have shape [k1, k2, n, 2] = {(k1, k2, n, 2)}, "
                         f"got {predictions.shape}")
    if labels.shape != (k1, n, 2):
        raise ValueError(f"array 'labels' must have shape [k1, n, 2] = {(k1, n, 2)}, got {labels.shape}")
    if not np.isin(masks, (0, 1)).all():
        raise ValueError("array 'masks' must hold only 0 and 1")
    for name, arr in (("predictions", predictions), ("labels", labels)):
        if not np.issubdtype(arr.dtype, np.integer) and not np.all(np.mod(arr, 1) == 0):
            raise ValueError(f"array '{name}' must hold integer class labels")
        if arr.size and arr.min() < 0:
            raise ValueError(f"array '{name}' must hold non-negative class labels")
    if k2 < 2:
        raise ValueError("array 'masks' needs k2 >= 2 masks per supersample to estimate a mutual information")
    return masks.astype(np.int64), predictions.astype(np.int64), labels.astype(np.int64)


def _entry(per_draw: np.ndarray, train_per_draw: np.ndarray, mi_used: str, kind: str) -> dict:
    per_draw = np.asarray(per_draw, dtype=np.float64)
    lo, hi = bootstrap_interval(per_draw)
    value = float(per_draw.mean())
    return {"value": value, "gap_bound": value - float(train_per_draw.mean()),
            "per_draw": per_draw.tolist(), "interval": [lo, hi], "applicable": True,
            "mi": mi_used, "kind": kind, "vacuous": value >= 1.0}


def bounds_from_runs(masks, predictions, labels, *, miller_madow: bool = False) -> dict[str, Any]:
    """Every applicable CMI bound from supersample runs.

    Args:
        masks: ``[k1, k2, n]`` 0/1, member of pair i used for training in run (draw, mask).
        predictions: ``[k1, k2, n, 2]`` predicted class on both members of every pair.
        labels: ``[k1, n, 2]`` true classes of the supersample of each draw.
        miller_madow: bias-correct the plug-in MIs.

    Returns:
        A dict keyed by bound name (``fcmi``, ``ecmi``, ``ldcmi``, ``single_loss``,
        ``binary_kl``, ``interpolating``, ``fast_rate``, ``fast_rate_closed_form``,
        ``fast_rate_variance``, ``fast_rate_sharpness``), each with ``value`` (mean over
        draws of the bound on E L_D), ``gap_bound``, ``per_draw``, ``interval`` (95%
        bootstrap over draws), ``mi`` (which MI it uses) and ``applicable``; plus
        ``summary`` with the measured train/test error and gap and the mean per-pair MIs.
    """
    masks, preds, labels = _check_runs(masks, predictions, labels)
    k1, k2, n = masks.shape
    num_classes = int(max(preds.max(), labels.max())) + 1
    loss = (preds != labels[:, None]).astype(np.int64)                 # [k1, k2, n, 2]
    m = masks[..., None]
    train_loss = np.take_along_axis(loss, m, axis=-1)[..., 0]           # [k1, k2, n]
    test_loss = np.take_along_axis(loss, 1 - m, axis=-1)[..., 0]
    train_run = train_loss.mean(-1)                                     # [k1, k2]
    train_draw = train_run.mean(-1)                                     # [k1]

    u = np.moveaxis(masks, 1, -1)                                       # [k1, n, k2]

    def mi(codes, k):
        return plugin_mi(u, np.moveaxis(codes, 1, -1), k, miller_madow=miller_madow)   # [k1, n]

    mi_f = mi(encode_pairs(preds[..., 0], preds[..., 1], num_classes), num_classes**2)
    mi_e = mi(encode_pairs(loss[..., 0], loss[..., 1], 2), 4)
    mi_ld = mi(loss[..., 1] - loss[..., 0] + 1, 3)
    mi_l0, mi_l1 = mi(loss[..., 0], 2), mi(loss[..., 1], 2)
    i_single = ((mi_l0 + mi_l1) / 2).mean(-1)                           # [k1]

    out: dict[str, Any] = {}
    out["fcmi"] = _entry(train_draw + B.samplewise_sqrt(mi_f), train_draw, "prediction pair", "gap")
    out["ecmi"] = _entry(train_draw + B.samplewise_sqrt(mi_e), train_draw, "loss pair", "gap")
    out["ldcmi"] = _entry(train_draw + B.samplewise_sqrt(mi_ld), train_draw, "loss difference", "gap")
    out["single_loss"] = _entry(train_draw + B.single_loss(mi_l0, mi_l1), train_draw, "single loss", "gap")
    out["binary_kl"] = _entry(B.binary_kl(train_draw, mi_e), train_draw, "loss pair", "risk")
    try:
        out["interpolating"] = _entry(B.interpolating(mi_ld, train_run), train_draw, "loss difference", "risk")
    except ValueError as err:
        out["interpolating"] = {"value": None, "applicable": False, "reason": str(err), "mi": "loss difference"}
    out["fast_rate"] = _entry(B.fast_rate(train_draw, i_single), train_draw, "single loss (mean)", "gap")
    out["fast_rate_closed_form"] = _entry(B.fast_rate_closed_form(train_draw, i_single), train_draw,
                                          "single loss (mean)", "gap")
    v_var = (train_run**2).mean(-1)                                     # mean squared training error
    tr0 = np.where(masks == 0, loss[..., 0], 0).sum(1) / np.maximum((masks == 0).sum(1), 1)
    tr1 = np.where(masks == 1, loss[..., 1], 0).sum(1) / np.maximum((masks == 1).sum(1), 1)
    v_sharp = (tr0**2 + tr1**2).sum(-1) / (2 * n)                       # per-example squared training loss
    out["fast_rate_variance"] = _entry(B.fast_rate_variance(train_draw, i_single, v_var), train_draw,
                                       "single loss (mean)", "gap")
    out["fast_rate_sharpness"] = _entry(B.fast_rate_variance(train_draw, i_single, v_sharp), train_draw,
                                        "single loss (mean)", "gap")
    test = float(test_loss.mean())
    train = float(train_loss.mean())
    out["summary"] = {
        "k1": k1, "k2": k2, "n": n, "num_classes": num_classes,
        "train_error": train, "test_error": test, "gap": test - train,
        "test_error_interval": list(bootstrap_interval(test_loss.mean(axis=(1, 2)))),
        "mean_mi": {"prediction_pair": float(mi_f.mean()), "loss_pair": float(mi_e.mean()),
                    "loss_difference": float(mi_ld.mean()), "single_loss": float(i_single.mean())},
        "miller_madow": miller_madow,
        "note": "MIs are plug-in estimates from k2 masks: the bounds are estimates, not certificates",
    }
    return out


def loo_losses(predictions, labels) -> np.ndarray:
    """0-1 losses ``[k1, R, n+1]`` of leave-one-out runs from their predicted classes
    ``[k1, R, n+1]`` on every point of the draw and the draw's labels ``[k1, n+1]``."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if labels.ndim != 2 or predictions.ndim != 3 or predictions.shape[::2] != labels.shape:
        raise ValueError(f"arrays 'predictions' [k1, R, n+1] and 'labels' [k1, n+1] disagree: "
                         f"{predictions.shape} vs {labels.shape}")
    return (predictions != labels[:, None]).astype(np.int8)


def loo_bounds_from_runs(held_out, losses) -> dict[str, Any]:
    """Leave-one-out CMI bounds from runs on supersamples of n+1 points.

    Args:
        held_out: ``[k1, R]`` index in ``[0, n]`` of the point left out by run r.
        losses: ``[k1, R, n+1]`` 0-1 loss of run r on every point of its supersample.
    """
    held_out = np.asarray(held_out, dtype=np.int64)
    losses = np.asarray(losses)
    if held_out.ndim != 2 or losses.ndim != 3 or losses.shape[:2] != held_out.shape:
        raise ValueError(f"arrays 'held_out' [k1, R] and 'losses' [k1, R, n+1] disagree: "
                         f"{held_out.shape} vs {losses.shape}")
    k1, runs, n1 = losses.shape
    n = n1 - 1
    if held_out.size and (held_out.min() < 0 or held_out.max() > n):
        raise ValueError(f"array 'held_out' must hold indices in [0, {n}], got [{held_out.min()}, {held_out.max()}]")
    if not np.isin(losses, (0, 1)).all():
        raise ValueError("array 'losses' must hold 0-1 losses (0 or 1)")
    mis = np.empty(k1)
    for d in range(k1):
        _, vec_code = np.unique(losses[d].astype(np.int8), axis=0, return_inverse=True)
        mis[d] = plugin_mi(held_out[d], vec_code.ravel(), int(vec_code.max()) + 1, u_values=n1)
    held = np.take_along_axis(losses, held_out[..., None], axis=-1)[..., 0]           # [k1, R]
    train = (losses.sum(-1) - held) / n                                               # [k1, R]
    train_draw = train.mean(-1)
    out = {"loo_sqrt": _entry(train_draw + B.loo_sqrt(mis), train_draw, "loss vector", "gap")}
    if float(train.max()) == 0.0:
        out["loo_interpolating"] = _entry(B.loo_interpolating(mis, n), train_draw, "loss vector", "risk")
    else:
        out["loo_interpolating"] = {"value": None, "applicable": False, "mi": "loss vector",
                                    "reason": "needs training error exactly 0 in every run"}
    out["summary"] = {"k1": k1, "runs": runs, "n": n, "train_error": float(train.mean()),
                      "test_error": float(held.mean()), "gap": float(held.mean() - train.mean()),
                      "mean_mi": float(mis.mean())}
    return out
