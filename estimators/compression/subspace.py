r"""Subspace models: :math:`\theta(w) = \theta_0 + P w`, :math:`w \in \mathbb R^d`, over any parameter pytree.

Li, Farkhoor, Liu & Yosinski 2018 ("Measuring the intrinsic dimension of objective landscapes") train only the
d coordinates w of a random affine subspace through :math:`\theta_0`; Lotfi et al. 2022 ("PAC-Bayes compression
bounds so tight that they can explain generalization", NeurIPS) then code w in few bits. The projection P is
never stored: it is a function of a seed, regenerated bit for bit from its key (:meth:`Projection.operands`), so
the description of a network is its seed, d, and the code of w.

Two projections (:class:`ProjectionKind`):

* ``dense``: :math:`P_{ij} \sim N(0, 1/D)` i.i.d., so columns have norm about 1. Rows are drawn in chunks of
  ``chunk`` rows, chunk k from ``fold_in(key, k)``: :func:`dense_apply` generates one chunk at a time, multiplies
  and discards it (memory ``chunk * d``), and equals the product with the whole matrix (:meth:`Projection.matrix`).
* ``kronecker``: :math:`P = (A \otimes B)` restricted to its first D rows, :math:`A \in \mathbb R^{D_1\times d_1}`,
  :math:`B \in \mathbb R^{D_2\times d_2}`, :math:`D_1 D_2 \ge D`, :math:`d_1 d_2 = d`, entries N(0, 1/D_1) and
  N(0, 1/D_2) (so P's entries have variance 1/(D_1 D_2)); with ``orthogonal`` A and B are replaced by the Q
  factors of their QR decompositions (orthonormal columns; Lotfi et al.'s "rdkronqr"). Then
  :math:`P w = \mathrm{vec}(A W B^\top)` with W = w reshaped to d_1 x d_2, at :math:`O(D_1 d_1 d_2 + D d_2)` cost
  instead of :math:`O(D d)`, and two small factors in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ...bounds._array import check_choice, check_count

__all__ = ["ProjectionKind", "Projection", "dense_chunk", "dense_scale", "dense_apply", "kronecker_apply",
           "factor_pair", "Subspace", "subspace"]


class ProjectionKind(StrEnum):
    """The random projection P: i.i.d. Gaussian (dense, generated in chunks) or a Kronecker product."""

    DENSE = "dense"
    KRONECKER = "kronecker"


def factor_pair(d: int) -> tuple[int, int]:
    """``(d1, d2)`` with ``d1 * d2 = d`` and ``d1 <= d2`` as close to sqrt(d) as d allows (the Kronecker shape of w)."""
    check_count("d", d)
    d1 = math.isqrt(int(d))
    while d % d1:
        d1 -= 1
    return d1, int(d) // d1


def _row_split(n_rows: int) -> tuple[int, int]:
    r1 = math.isqrt(int(n_rows))
    r1 = r1 if r1 * r1 >= n_rows else r1 + 1
    return r1, -(-int(n_rows) // r1)


@dataclass(frozen=True)
class Projection:
    """A seeded D x d projection, regenerated from ``seed`` whenever it is needed (never stored).

    Attributes:
        kind: dense or Kronecker.
        n_params: D, the number of network weights.
        d: the subspace dimension.
        seed: the integer seed of the key (``jax.random.key(seed)``).
        chunk: dense only, rows per generated chunk (part of P's definition: chunk k comes from
            ``fold_in(key, k)``).
        orthogonal: Kronecker only, whether A and B are orthonormalised by QR.
    """

    kind: ProjectionKind
    n_params: int
    d: int
    seed: int
    chunk: int = 4096
    orthogonal: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", check_choice("kind", self.kind, ProjectionKind))
        check_count("n_params", self.n_params)
        check_count("d", self.d)
        check_count("chunk", self.chunk)
        if not isinstance(self.seed, int | np.integer) or not 0 <= int(self.seed) < 2 ** 32:
            raise ValueError(f"argument 'seed' must be an integer in [0, 2**32), got {self.seed!r}")

    @property
    def key(self) -> jax.Array:
        return jax.random.key(int(self.seed))

    def operands(self) -> tuple[jax.Array, ...]:
        """The arrays :meth:`apply` needs, regenerated from the seed: ``()`` for dense (chunks are drawn inside
        :func:`dense_apply`), ``(A, B)`` for Kronecker."""
        if self.kind is ProjectionKind.DENSE:
            return ()
        (r1, r2), (d1, d2) = _row_split(self.n_params), factor_pair(self.d)
        ka, kb = jax.random.split(self.key)
        a = jax.random.normal(ka, (r1, d1), jnp.float32) / math.sqrt(r1)
        b = jax.random.normal(kb, (r2, d2), jnp.float32) / math.sqrt(r2)
        if self.orthogonal:
            a, b = jnp.linalg.qr(a)[0], jnp.linalg.qr(b)[0]
        return a, b

    def apply(self, w: jax.Array, operands: tuple[jax.Array, ...] | None = None) -> jax.Array:
        """:math:`P w` (``[D]``) for ``w: [d]``; pass :meth:`operands` computed once (outside a training loop)."""
        ops = self.operands() if operands is None else operands
        if self.kind is ProjectionKind.DENSE:
            return dense_apply(self.key, w, self.n_params, self.chunk)
        return kronecker_apply(*ops, w, self.n_params)

    def matrix(self) -> np.ndarray:
        """The whole D x d matrix (for tests and small nets): column j is :math:`P e_j`."""
        eye = jnp.eye(self.d, dtype=jnp.float32)
        return np.asarray(jax.vmap(lambda e: self.apply(e), out_axes=1)(eye))

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "n_params": int(self.n_params), "d": int(self.d), "seed": int(self.seed),
                "chunk": int(self.chunk), "orthogonal": bool(self.orthogonal)}


def dense_chunk(key: jax.Array, k: int | jax.Array, rows: int, d: int) -> jax.Array:
    """Rows ``[k * rows, (k + 1) * rows)`` of the dense projection: N(0, 1) from ``fold_in(key, k)`` (the 1/sqrt(D)
    scale is applied by :func:`dense_apply`)."""
    return jax.random.normal(jax.random.fold_in(key, k), (rows, d), jnp.float32)


def dense_scale(n_params: int) -> np.float32:
    """The dense projection's scale, the float32 nearest 1/sqrt(D) (multiplied, so that every backend rounds alike)."""
    return np.float32(1.0 / math.sqrt(int(n_params)))


def dense_apply(key: jax.Array, w: jax.Array, n_params: int, chunk: int) -> jax.Array:
    r""":math:`P w` for the dense projection, :math:`P_{ij} = Z_{ij} / \sqrt D`, generated one chunk of rows at a
    time inside a ``lax.map`` (memory ``chunk * d``)."""
    n_chunks = -(-int(n_params) // int(chunk))
    d = w.shape[0]
    out = jax.lax.map(lambda k: dense_chunk(key, k, chunk, d) @ w, jnp.arange(n_chunks))
    return out.reshape(-1)[:n_params] * dense_scale(n_params)


def kronecker_apply(a: jax.Array, b: jax.Array, w: jax.Array, n_params: int) -> jax.Array:
    r""":math:`(A \otimes B) w = \mathrm{vec}(A W B^\top)` (row-major vec, W = w as ``[d1, d2]``), first D entries."""
    return (a @ w.reshape(a.shape[1], b.shape[1]) @ b.T).reshape(-1)[:n_params]


@dataclass(frozen=True, eq=False)
class Subspace:
    r"""The subspace model :math:`\theta(w) = \theta_0 + P w` of a network ``apply(params, x)``.

    ``theta0`` is the flat float32 vector of the trainable weights at :math:`\theta_0`, ``unravel`` turns a flat
    vector back into the pytree ``apply`` takes. :meth:`params` and :meth:`logits` are pure (jit them, pass
    ``operands`` as arguments in a compiled loop so that large factors are not baked in as constants).
    """

    apply_fn: Any
    unravel: Any
    theta0: jax.Array
    projection: Projection

    @property
    def d(self) -> int:
        return self.projection.d

    def params(self, w: jax.Array, operands: tuple[jax.Array, ...] | None = None,
               theta0: jax.Array | None = None) -> Any:
        base = self.theta0 if theta0 is None else theta0
        return self.unravel(base + self.projection.apply(w, operands).astype(base.dtype))

    def logits(self, w: jax.Array, x: jax.Array, operands: tuple[jax.Array, ...] | None = None,
               theta0: jax.Array | None = None) -> jax.Array:
        return self.apply_fn(self.params(w, operands, theta0), x)


def subspace(apply: Any, params0: Any, d: int, *, seed: int, kind: ProjectionKind | str = ProjectionKind.KRONECKER,
             chunk: int = 4096, orthogonal: bool = False) -> Subspace:
    """The d-dimensional subspace model through ``params0`` (any pytree of float arrays) of ``apply(params, x)``."""
    flat, unravel = ravel_pytree(params0)
    if flat.size == 0:
        raise ValueError("argument 'params0' has no floating-point weights to train")
    flat = jnp.asarray(flat, jnp.float32)
    proj = Projection(check_choice("kind", kind, ProjectionKind), int(flat.size), int(d), int(seed), int(chunk),
                      bool(orthogonal))
    return Subspace(apply, unravel, flat, proj)
