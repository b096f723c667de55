"""Bounded per-example losses, each with values in [0, 1] so that a certificate can bound it.

* :func:`zero_one`: the 0-1 loss of the argmax prediction (the loss the certificates bound);
* :func:`bounded_cross_entropy`: the cross-entropy with the predicted probability clamped at
  ``p_min`` and divided by ln(1/p_min) (Pérez-Ortiz et al. 2021, Section 4; Dziugaite & Roy 2017
  train on a bounded loss too), the PAC-Bayes training surrogate.

Both take ``logits: [N, K]`` and integer labels ``y: [N]`` and return ``[N]``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .nets import predict

__all__ = ["bounded_cross_entropy", "zero_one"]


def bounded_cross_entropy(logits: jax.Array, y: jax.Array, p_min: float = 1e-4) -> jax.Array:
    """Per-example -ln(max(p_y, p_min)) / ln(1/p_min), in [0, 1] (``logits: [N, K]``, ``y: [N]``)."""
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]
    return -jnp.maximum(logp, math.log(p_min)) / math.log(1.0 / p_min)


def zero_one(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example 0-1 loss of the argmax prediction (``logits: [N, K]``, ``y: [N]``); an example
    whose logits are not all finite counts as an error (:func:`genbounds.estimators.nets.predict`)."""
    return (predict(logits) != y).astype(jnp.float32)
