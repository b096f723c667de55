"""Random input augmentations for training a prior (pure functions of a key and a batch).

An augmentation is a function ``(key, xb) -> xb`` on image batches ``xb: [b, h, w, c]``; it is passed
to :func:`genbounds.estimators.steps.supervised_step` (and so to ``train_deterministic``), which
applies it to each minibatch before the loss. It belongs to how a *prior* is trained: the prior may
be any function of its own share of the data, so an augmented prior keeps every certificate valid.
The bound's empirical risk is always taken on the unaugmented bound set.

:data:`AUGMENTATIONS` names the ones a run config can ask for (``PacBayesConfig.prior_augment``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["Augment", "shift_flip", "AUGMENTATIONS", "get_augment"]

#: ``(key, xb: [b, h, w, c]) -> [b, h, w, c]``.
Augment = Callable[[jax.Array, jax.Array], jax.Array]


def shift_flip(max_shift: int = 2, flip: bool = True) -> Augment:
    """Random translation by up to ``max_shift`` pixels in each direction (edge padding, then a
    random ``h x w`` crop per image) and, when ``flip``, a left-right mirror with probability 1/2.

    The standard augmentation of small-image classifiers (e.g. He, Zhang, Ren & Sun 2016, Sec. 4.2:
    4-pixel padding, random crops and horizontal flips on CIFAR-10). ``xb: [b, h, w, c]``.
    """
    if max_shift < 0:
        raise ValueError(f"argument 'max_shift' must be >= 0, got {max_shift!r}")

    def augment(key: jax.Array, xb: jax.Array) -> jax.Array:
        if xb.ndim != 4:
            raise ValueError(f"augmentation needs image batches [b, h, w, c], got shape {xb.shape}")
        b, h, w, c = xb.shape
        k_flip, k_dy, k_dx = jax.random.split(key, 3)
        if flip:
            mirror = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
            xb = jnp.where(mirror, xb[:, :, ::-1, :], xb)
        if max_shift == 0:
            return xb
        s = max_shift
        padded = jnp.pad(xb, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
        dy = jax.random.randint(k_dy, (b,), 0, 2 * s + 1)
        dx = jax.random.randint(k_dx, (b,), 0, 2 * s + 1)
        return jax.vmap(lambda im, i, j: jax.lax.dynamic_slice(im, (i, j, 0), (h, w, c)))(padded, dy, dx)

    return augment


#: Augmentations by name (config files and the command line): ``none``, ``shift`` (2 pixels),
#: ``shift-flip`` (2 pixels and mirror images).
AUGMENTATIONS: dict[str, Augment | None] = {
    "none": None,
    "shift": shift_flip(2, flip=False),
    "shift-flip": shift_flip(2, flip=True),
}


def get_augment(name: str) -> Augment | None:
    """The augmentation called ``name`` in :data:`AUGMENTATIONS` (``None`` for ``"none"``)."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"argument 'prior_augment' must be one of {sorted(AUGMENTATIONS)}, got {name!r}")
    return AUGMENTATIONS[name]
