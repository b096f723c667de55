"""Your model as the library sees it: ``apply(params, x) -> logits`` over the trainable weights, with
the rest of the model (BatchNorm statistics, RNG counters, activation functions, integer leaves) held
fixed.

:func:`as_model` reads what people write today, by duck typing (Flax and Equinox stay optional):

* **Flax linen**: the module (or its bound ``model.apply``) and its variables dict. The ``params``
  collection is trainable; every other collection (``batch_stats``, ...) is fixed. The module is
  called in evaluation mode: a ``__call__`` argument named in :data:`EVAL_FLAGS` (``train``,
  ``deterministic``, ...) gets its evaluation value unless a ``functools.partial`` already sets it.
* **Flax NNX**: the module alone. Its ``nnx.Param`` variables are trainable; other variables
  (``nnx.BatchStat``) are fixed; its RNG state is set aside (a copy in evaluation mode, ``.eval()``:
  dropout off, batch norm on its running statistics, draws no random numbers). Your module is not
  changed.
* **Equinox**: the module alone, in inference mode (``eqx.nn.inference_mode``), split by
  ``eqx.partition(model, eqx.is_inexact_array)``; an Equinox module acts on one example, so it is
  vmapped over the batch. (Modules that thread an ``eqx.nn.State`` are not read.)
* **A function** ``apply(params, x)`` (plain JAX, Haiku's ``without_apply_rng(...).apply``, a
  wrapped Equinox call) and its pytree: floating-point leaves are trainable, the others (integer
  counters, keys) fixed; in the state of a plain ``nnx.split(model)`` only ``nnx.Param`` variables
  are trainable (``nnx.BatchStat`` and RNG state are fixed; the function runs as you wrote it).

In a PAC-Bayes certificate only the trainable weights are random; the fixed state is a point of
both the prior and the posterior, so it must be the prior model's own. A posterior whose fixed
state differs from the prior's (BatchNorm statistics recomputed on the bound set) has infinite KL:
:func:`check_same_state` refuses it by leaf.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ModelKind", "Model", "EVAL_FLAGS", "as_model", "model_kind", "is_module", "check_same_state"]


class ModelKind(StrEnum):
    """What :func:`as_model` read: a Flax linen module, a Flax NNX module, an Equinox module, or an
    ``apply(params, x)`` function."""

    LINEN = "flax.linen"
    NNX = "flax.nnx"
    EQUINOX = "equinox"
    APPLY = "apply"


#: Arguments of a Flax linen ``__call__`` that select training behaviour, and their evaluation values.
EVAL_FLAGS: dict[str, bool] = {"train": False, "training": False, "is_training": False, "deterministic": True,
                               "use_running_average": True}


@dataclass(frozen=True, eq=False)
class Model:
    """A model split into trainable weights and fixed state.

    Attributes:
        kind: what was read.
        forward: ``forward(params, state, x) -> logits [batch, classes]``.
        params: the trainable weights (floating-point arrays; ``None`` where a leaf is fixed).
        state: the fixed part (``None`` where a leaf is trainable; for NNX the non-``Param``
            variables, for Equinox the module's non-array leaves).
        structure: what else fixes the function (the NNX graph definition, the Equinox tree
            structure), compared by :func:`check_same_state`; None when it comes with ``forward``.
    """

    kind: ModelKind
    forward: Callable[[Any, Any, jax.Array], jax.Array]
    params: Any
    state: Any
    structure: Any = None

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        """Logits of weights ``params`` with this model's own fixed state."""
        return self.forward(params, self.state, x)


def _from(obj: Any, package: str) -> bool:
    """Whether a class in ``type(obj)``'s MRO is defined in ``package`` (a dotted module prefix)."""
    return any(c.__module__ == package or c.__module__.startswith(package + ".") for c in type(obj).__mro__)


def _linen_apply(model: Any) -> tuple[Any, dict] | None:
    """``(module, keyword arguments)`` when ``model`` is a linen module, its bound ``apply`` or a
    ``functools.partial`` of that apply with keywords only; None otherwise."""
    kwargs: dict = {}
    if isinstance(model, functools.partial) and not model.args:
        model, kwargs = model.func, dict(model.keywords)
    owner = getattr(model, "__self__", None)
    if owner is not None and getattr(model, "__name__", None) == "apply" and _from(owner, "flax.linen"):
        return owner, kwargs
    return (model, kwargs) if _from(model, "flax.linen") else None


def model_kind(model: Any) -> ModelKind:
    """The kind of ``model`` (duck-typed: the defining package of its class, nothing imported)."""
    if _from(model, "flax.nnx"):
        return ModelKind.NNX
    if _linen_apply(model) is not None:
        return ModelKind.LINEN
    if _from(model, "equinox"):
        return ModelKind.EQUINOX
    if callable(model):
        return ModelKind.APPLY
    raise ValueError(f"argument 'model' must be a Flax linen or NNX module, an Equinox module or a function "
                     f"apply(params, x) -> logits, got {type(model).__name__}")


def is_module(model: Any) -> bool:
    """Whether ``model`` holds its own weights (a Flax NNX or Equinox module)."""
    return _from(model, "flax.nnx") or (_from(model, "equinox") and _linen_apply(model) is None)


def _inexact(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array | np.ndarray) and jnp.issubdtype(leaf.dtype, jnp.inexact)


def _partition(tree: Any, keep: Callable[[tuple, Any], bool],
               is_leaf: Callable[[Any], bool] | None = None) -> tuple[Any, Any]:
    """Two trees like ``tree``: the leaves ``keep(path, leaf)`` selects (None elsewhere) and the others;
    ``is_leaf`` marks nodes taken whole (NNX variables)."""
    kept = jax.tree_util.tree_map_with_path(lambda p, a: a if keep(p, a) else None, tree, is_leaf=is_leaf)
    rest = jax.tree_util.tree_map_with_path(lambda p, a: None if keep(p, a) else a, tree, is_leaf=is_leaf)
    return kept, rest


def _combine(a: Any, b: Any, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """The inverse of :func:`_partition`: ``a``'s leaves, ``b``'s where ``a`` holds None."""
    return jax.tree_util.tree_map(lambda x, y: y if x is None else x, a, b,
                                  is_leaf=lambda x: x is None or (is_leaf is not None and is_leaf(x)))


def _plain(apply: Callable, params: Any) -> Model:
    keep, node = (lambda _, a: _inexact(a)), None
    if _from(params, "flax.nnx"):                      # the state of nnx.split(model): its nnx.Param variables
        from flax import nnx  # noqa: PLC0415 - optional dependency, imported only for an NNX state

        def node(v):
            return isinstance(v, nnx.Variable)

        def keep(_, v):
            return isinstance(v, nnx.Param) and _inexact(v.get_value() if hasattr(v, "get_value") else v.value)
    trainable, fixed = _partition(params, keep, node)
    return Model(ModelKind.APPLY, lambda p, s, x: apply(_combine(p, s, node), x), trainable, fixed)


def _linen(module: Any, kwargs: dict, variables: Any) -> Model:
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise ValueError("argument 'params': a Flax linen module needs its variables, a dict with a 'params' "
                         "collection (what model.init returns)")
    call = inspect.signature(type(module).__call__).parameters
    kwargs = {**{k: v for k, v in EVAL_FLAGS.items() if k in call}, **kwargs}
    trainable, fixed = _partition(variables["params"], lambda _, a: _inexact(a))
    state = {k: v for k, v in variables.items() if k != "params"}
    if jax.tree_util.tree_leaves(fixed):                # integer leaves in 'params' stay fixed too
        state["params"] = fixed

    def forward(p, s, x):
        weights = _combine(p["params"], s["params"]) if "params" in s else p["params"]
        return module.apply({**s, "params": weights}, x, **kwargs)
    return Model(ModelKind.LINEN, forward, {"params": trainable}, state)


def _nnx(module: Any) -> Model:
    from flax import nnx  # noqa: PLC0415 - optional dependency, imported only for an NNX module

    copy = nnx.clone(module)
    copy.eval()
    graphdef, params, rngs, state = nnx.split(copy, nnx.Param, nnx.RngState, ...)
    return Model(ModelKind.NNX, lambda p, s, x: nnx.merge(graphdef, p, rngs, s)(x), params, state, graphdef)


def _equinox(module: Any) -> Model:
    import equinox as eqx  # noqa: PLC0415 - optional dependency, imported only for an Equinox module

    params, static = eqx.partition(eqx.nn.inference_mode(module), eqx.is_inexact_array)
    return Model(ModelKind.EQUINOX, lambda p, s, x: jax.vmap(eqx.combine(p, s))(x), params, static,
                 jax.tree_util.tree_structure(static))


def as_model(model: Any, params: Any = None) -> Model:
    """Read ``model`` (and, for a linen module or a function, its ``params``) as a :class:`Model`.

    Raises ValueError naming the argument when ``params`` is given for a module that holds its own
    weights (NNX, Equinox), is missing for a linen module or a function, or ``model`` is none of
    the kinds of :class:`ModelKind`.
    """
    kind = model_kind(model)
    if kind in (ModelKind.NNX, ModelKind.EQUINOX):
        if params is not None:
            raise ValueError(f"argument 'params': a {kind.value} module holds its own weights; pass the module "
                             "alone")
        return _nnx(model) if kind is ModelKind.NNX else _equinox(model)
    if params is None:
        raise ValueError("argument 'params' is required with a Flax linen module (its variables) or an apply "
                         "function (its weights)")
    if kind is ModelKind.LINEN:
        return _linen(*_linen_apply(model), params)
    return _plain(model, params)


def _same_leaf(a: Any, b: Any) -> bool:
    """Arrays: equal shape and values; numbers, strings and flags: equal; functions are not compared
    (an Equinox module's activation is architecture, fixed by the prior's module)."""
    if isinstance(a, jax.Array | np.ndarray) or isinstance(b, jax.Array | np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) or jnp.issubdtype(b.dtype, jax.dtypes.prng_key):
            a, b = np.asarray(jax.random.key_data(a)), np.asarray(jax.random.key_data(b))
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    if isinstance(a, bool | int | float | complex | str | type(None)):
        return a == b
    return True


def check_same_state(name: str, model: Model, prior: Model) -> None:
    """Refuse ``model`` (argument ``name``) unless its fixed state is the prior model's, leaf by leaf.

    The certified posterior uses the prior's fixed state (BatchNorm statistics computed on the
    prior's examples, or the initial ones for a data-free prior): it is a point of the prior, so a
    different value has no prior mass and the KL is infinite. Raises one ValueError line naming the
    first leaf of ``model`` that differs.
    """
    if model.kind is not prior.kind:
        raise ValueError(f"argument 'prior_mean' must be a model of the kind of {name!r} ({model.kind.value}), "
                         f"got {prior.kind.value}")
    if model.structure != prior.structure or (jax.tree_util.tree_structure(model.state)
                                              != jax.tree_util.tree_structure(prior.state)):
        raise ValueError(f"arguments {name!r} and 'prior_mean' differ in their fixed structure (layers, "
                         "their settings or their non-trainable variables): the posterior is the prior's "
                         "network with stochastic weights, so both must be the same network")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(model.state), jax.tree_util.tree_leaves(prior.state)):
        if not _same_leaf(a, b):
            raise ValueError(
                f"argument {name!r} has fixed state {jax.tree_util.keystr(path)} that differs from the prior "
                "model's: the certified network uses the prior's state (statistics computed on the prior's "
                "examples, or the initial ones for a data-free prior), and state computed on the bound set "
                "would make the predictor depend on the bound data (a point the prior gives no mass: "
                "infinite KL); give your model the prior model's statistics or leave them out of training")
