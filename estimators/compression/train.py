"""Training the subspace coordinates w (and, quantisation-aware, the codebook) with the library's steps.

The model trained is a :class:`~genbounds.estimators.nets.Net` over a small parameter tree (``{"w": w}`` or
``{"w": w, "codebook": c}``) whose ``apply`` maps it to the network's logits, so training is
:func:`genbounds.estimators.steps.supervised_step` (softmax cross-entropy) and every epoch one compiled
:func:`genbounds.estimators.steps.compile_epoch` loop, as for every other deterministic network in the library.
The host acts between epochs only: progress, and ``on_epoch`` (checkpoints, so a run resumes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ..data import Dataset
from ..nets import custom
from ..progress import Progress
from ..steps import SupervisedState, compile_epoch, owned, supervised_step
from .quantize import quantize_ste
from .subspace import Subspace

__all__ = ["train_tree", "subspace_forward", "quantized_forward"]


def subspace_forward(sub: Subspace, operands: tuple[jax.Array, ...]) -> Callable[[Any, jax.Array], jax.Array]:
    """``forward({"w": w}, x)``: the logits of :math:`\\theta_0 + P w`."""
    return lambda p, x: sub.logits(p["w"], x, operands)


def quantized_forward(sub: Subspace, operands: tuple[jax.Array, ...]) -> Callable[[Any, jax.Array], jax.Array]:
    """``forward({"w": w, "codebook": c}, x)``: the logits of :math:`\\theta_0 + P c_{s(w)}`, straight-through in w
    (:func:`genbounds.estimators.compression.quantize.quantize_ste`)."""
    return lambda p, x: sub.logits(quantize_ste(p["w"], p["codebook"]), x, operands)


def train_tree(forward: Callable[[Any, jax.Array], jax.Array], params: Any, data: Dataset, *, key: jax.Array,
               epochs: int, batch_size: int, optimizer: optax.GradientTransformation, progress: bool = True,
               desc: str = "subspace", start_epoch: int = 0, state: SupervisedState | None = None,
               on_epoch: Callable[[int, SupervisedState, dict], None] | None = None,
               ) -> tuple[SupervisedState, list[dict]]:
    """Minimise softmax cross-entropy of ``forward(params, x)`` on ``data`` for ``epochs`` epochs (epoch e uses
    key ``fold_in(key, e)``), resuming from ``state`` at ``start_epoch`` when given. Returns the final state and
    per-epoch mean losses; ``on_epoch(epoch, state, record)`` runs after every epoch."""
    net = custom(desc, lambda _: params, forward)
    train = supervised_step(net, optimizer)
    x, y = jnp.asarray(data.x), jnp.asarray(data.y)
    epoch_fn = compile_epoch(train.step, m=len(data), batch_size=batch_size)
    state = train.init(params) if state is None else SupervisedState(owned(state.params), owned(state.opt_state))
    history: list[dict] = []
    with Progress(max(epochs - start_epoch, 0), desc, unit="epoch", enabled=progress) as bar:
        for epoch in range(start_epoch, epochs):
            state, losses = epoch_fn(state, jax.random.fold_in(key, epoch), x, y)
            record = {"epoch": epoch + 1, "loss": float(jnp.mean(losses))}
            history.append(record)
            bar.update(1, loss=f"{record['loss']:.4f}")
            if on_epoch is not None:
                on_epoch(epoch + 1, state, record)
    return state, history
