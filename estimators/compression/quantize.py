r"""Quantising the subspace coordinates w to L levels of a learned codebook (Lotfi et al. 2022, Section 4).

Every coordinate :math:`w_j` is replaced by the nearest level :math:`c_{s_j}` of a codebook
:math:`c \in \mathbb R^L`; the network certified is :math:`\theta_0 + P c_s`, described by the symbols s and the
codebook. The codebook starts :func:`uniform_codebook` (evenly spaced over [min w, max w]) or
:func:`kmeans_codebook` (Lloyd's algorithm in one dimension, float64 NumPy, from the quantiles), and is then
fine-tuned with w by quantisation-aware training: the forward pass uses :math:`c_{s(w)}`, the backward pass a
straight-through gradient (Bengio, Léonard & Courville 2013) for w and the exact gradient for c
(:func:`quantize_ste`). Levels are stored in float16 (:func:`as_stored`), so the certified network is the one
the code describes, bit for bit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...bounds._array import check_count

__all__ = ["uniform_codebook", "kmeans_codebook", "assign", "quantize", "quantize_ste", "as_stored"]


def _levels(levels: int) -> int:
    check_count("levels", levels, minimum=2)
    return int(levels)


def uniform_codebook(w: np.ndarray, levels: int) -> np.ndarray:
    """``levels`` evenly spaced values from min(w) to max(w) (float64)."""
    w = np.asarray(w, np.float64)
    return np.linspace(w.min(), w.max(), _levels(levels))


def kmeans_codebook(w: np.ndarray, levels: int, iters: int = 100) -> np.ndarray:
    """One-dimensional k-means (Lloyd) of ``w`` into ``levels`` centres, started at the quantiles (float64, sorted).

    An empty cluster keeps its centre. Stops when no centre moves (or after ``iters`` rounds)."""
    w = np.sort(np.asarray(w, np.float64).ravel())
    c = np.quantile(w, (np.arange(_levels(levels)) + 0.5) / levels)
    for _ in range(int(iters)):
        s = assign(w, c)
        sums = np.bincount(s, weights=w, minlength=levels)
        counts = np.bincount(s, minlength=levels)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        new = np.sort(new)
        if np.array_equal(new, c):
            break
        c = new
    return c


def assign(w: np.ndarray | jax.Array, codebook: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
    """Index of the nearest level for every coordinate (ties to the lower index); NumPy in, NumPy out."""
    xp = jnp if isinstance(w, jax.Array) or isinstance(codebook, jax.Array) else np
    return xp.argmin(xp.abs(xp.asarray(w)[..., None] - xp.asarray(codebook)), axis=-1)


def quantize(w: jax.Array, codebook: jax.Array) -> jax.Array:
    """:math:`c_{s(w)}`, every coordinate replaced by its nearest level."""
    return codebook[assign(w, codebook)]


def quantize_ste(w: jax.Array, codebook: jax.Array) -> jax.Array:
    r"""Quantised forward, straight-through backward: value :math:`c_{s(w)}`; gradient identity in w
    (:math:`\partial/\partial w = I`) and the exact gather gradient in c."""
    s = jax.lax.stop_gradient(assign(w, codebook))
    return codebook[s] + (w - jax.lax.stop_gradient(w))      # exactly c[s] forward: w - w is 0


def as_stored(codebook: np.ndarray | jax.Array) -> np.ndarray:
    """The codebook as the description stores it: float16 values (16 bits a level), returned as float32."""
    c = np.asarray(codebook, np.float64)
    if not np.isfinite(c).all():
        raise ValueError("argument 'codebook' has non-finite levels")
    return c.astype(np.float16).astype(np.float32)
