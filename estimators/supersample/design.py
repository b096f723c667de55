"""Supersample designs: which examples form a supersample and which member each run trains on.

A supersample is n pairs drawn without replacement from a dataset (``x: [n, 2, ...]``); a mask
U in {0,1}^n picks the training member of each pair (Steinke & Zakynthinou 2020). The
leave-one-out variant draws n+1 points and a held-out index U in [0, n] (Haghifam et al.
2022); the library enumerates all n+1 held-out choices. Every design here satisfies what the
bounds check (:mod:`genbounds.estimators.supersample.runs`): both values of every U_i, every
held-out index once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from ..data import Dataset

__all__ = ["Supersample", "draw_supersample", "draw_masks", "draw_loo_supersample", "loo_held_out",
           "supersample_runs", "loo_runs"]


class Supersample(NamedTuple):
    """A supersample: ``x: [n, 2, ...]``, ``y: [n, 2]`` and the source ``indices: [n, 2]``."""

    x: np.ndarray
    y: np.ndarray
    indices: np.ndarray


def draw_supersample(key: jax.Array, data: Dataset, n: int) -> Supersample:
    """n pairs of distinct examples drawn without replacement."""
    if 2 * n > len(data):
        raise ValueError(f"argument 'n' = {n} needs {2 * n} examples, the dataset has {len(data)}")
    idx = np.asarray(jax.random.choice(key, len(data), (2 * n,), replace=False)).reshape(n, 2)
    return Supersample(data.x[idx], data.y[idx], idx)


def draw_masks(key: jax.Array, k2: int, n: int) -> np.ndarray:
    """Masks ``[k2, n]`` in antithetic pairs: k2 // 2 masks of independent fair bits, then their
    complements (and, for odd k2, one more independent mask).

    Every mask is uniform on {0,1}^n, as the CMI theorems require of U. Every pair i has both
    values of U_i among the k2 runs (exactly k2/2 each when k2 is even), so the design can never
    be one-sided (:func:`genbounds.estimators.supersample.runs.check_supersample_runs`). Independent bits left a pair
    one-sided with probability 2^(1-k2): 1/8 at k2 = 4. The runs with U_i = u are then i.i.d.
    draws of the model given U_i = u (the other bits are independent and uniform), which is
    what the plug-in MI with U's known marginal (:func:`genbounds.estimators.supersample.mi.plugin_mi`) estimates from.
    """
    if k2 < 2:
        raise ValueError(f"argument 'k2' must be >= 2 (both values of every U_i), got {k2}")
    half = np.asarray(jax.random.bernoulli(key, 0.5, (k2 // 2, n))).astype(np.int64)
    extra = np.asarray(jax.random.bernoulli(jax.random.fold_in(key, 1), 0.5, (k2 % 2, n))).astype(np.int64)
    return np.concatenate([half, 1 - half, extra])


def draw_loo_supersample(key: jax.Array, data: Dataset, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n+1 distinct examples ``(x [n+1, ...], y [n+1], indices [n+1])`` for leave-one-out CMI."""
    idx = np.asarray(jax.random.choice(key, len(data), (n + 1,), replace=False))
    return data.x[idx], data.y[idx], idx


def loo_held_out(n: int) -> np.ndarray:
    """Held-out indices of one leave-one-out draw: all n+1 of them, each once (run r leaves out r).

    The leave-one-out bound needs exactly this design (:func:`genbounds.estimators.supersample.runs.check_loo_runs`);
    sampling a subset of held-out indices would cap the MI at ln R, so it is not offered.
    """
    return np.arange(n + 1)


def supersample_runs(sup: Supersample, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pool (the 2n points, pair-major) and each mask's training indices into it.

    Point j of pair i sits at pool index ``2 i + j``; run r trains on ``2 i + masks[r, i]``.
    """
    n = sup.y.shape[0]
    pool_x = sup.x.reshape(2 * n, *sup.x.shape[2:])
    pool_y = sup.y.reshape(2 * n)
    train_idx = 2 * np.arange(n)[None, :] + np.asarray(masks)
    return pool_x, pool_y, train_idx


def loo_runs(held_out: np.ndarray) -> np.ndarray:
    """Training indices ``[R, n]`` into a pool of n+1 points from ``held_out: [R]``: run r trains on
    all but ``held_out[r]``."""
    held_out = np.asarray(held_out)
    n1 = int(held_out.max()) + 1 if held_out.size else 0
    n1 = max(n1, held_out.shape[0])
    everyone = np.arange(n1)
    return np.stack([everyone[everyone != h] for h in held_out])


