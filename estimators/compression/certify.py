r"""Compression certificates of a network: :func:`certify_compressed` for any ``apply(params, x)`` model.

The certified predictor is the *quantised deterministic* network :math:`h = \theta_0 + P c_s` (Lotfi et al.
2022, "PAC-Bayes compression bounds so tight that they can explain generalization", NeurIPS): its description is
the projection's seed, d, the symbols s (arithmetic-coded), the float16 codebook c and the symbol counts, plus
the bits that pay for every setting searched. The prior :math:`P(h) \propto 2^{-\ell(h)}` over prefix-free
descriptions is fixed before the bound set (Kraft), the posterior is a point mass on h, so
:math:`\mathrm{KL} = \ell(h) \ln 2` and the kl^-1 (or Catoni) bound applies to h's errors on the bound set
(:func:`genbounds.bounds.compression.compression_certificate`).

:math:`\theta_0` must not depend on the bound set: the seeded initialisation (data-free), a network trained on
another data set (transfer), or a network trained on ``prior_indices`` of ``data`` (data-dependent: the bound
set is then the complement, or ``bound_indices`` when given, which must not overlap). The coordinates w may be
trained on any data, the bound set included (the prior is over descriptions, not over w).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...bounds import Certificate
from ...bounds._array import check_choice, check_count, check_delta
from ...bounds.compression import CodeLength, CompressionBound, compression_certificate, encode_message, message_length
from ..data import Dataset
from ..models import as_model
from ..nets import predict
from ..progress import pass_progress
from .quantize import as_stored, assign, kmeans_codebook, uniform_codebook
from .subspace import Projection, ProjectionKind, Subspace, subspace
from .train import quantized_forward, subspace_forward, train_tree

__all__ = ["CompressedResult", "split_indices", "search_size", "fit_w", "quantize_w", "quantized_predictions",
           "certify_quantized", "certify_compressed"]


@dataclass(frozen=True)
class CompressedResult:
    """A compression certificate and what it was computed from.

    Attributes:
        certificate: the certificate of the quantised network (bound ``compression_kl`` / ``compression_catoni``).
        bound_error: the quantised network's error on the bound set (errors / n; the certificate's emp_risk).
        test_error: its error on the test set (an estimate, not certified), None without a test set.
        float_error: the unquantised subspace network's bound-set error (for reference; not certified).
        code: the description length, bit by bit.
        projection: the seeded projection (regenerated from it).
        codebook: the float16 levels, as float values.
        seconds: wall time per phase.
        search: the declared grid, knob -> number of values (its product is ``code.searched``).
    """

    certificate: Certificate
    bound_error: float
    test_error: float | None
    float_error: float
    code: CodeLength
    projection: Projection
    codebook: tuple[float, ...]
    seconds: Mapping[str, float]
    search: Mapping[str, int] = field(default_factory=dict)

    @property
    def d(self) -> int:
        return self.projection.d

    @property
    def levels(self) -> int:
        return len(self.codebook)

    def to_dict(self) -> dict:
        return {"certificate": self.certificate.to_dict(), "bound_error": self.bound_error,
                "test_error": self.test_error, "float_error": self.float_error, "code": self.code.to_dict(),
                "bits": self.code.total_bits, "d": self.d, "levels": self.levels,
                "projection": self.projection.to_dict(), "codebook": list(self.codebook),
                "seconds": dict(self.seconds), "search": dict(self.search)}


def _index_array(name: str, idx: Any, n: int) -> np.ndarray:
    """``idx`` as a 1-d int64 array of distinct indices in [0, n), or one ValueError naming argument ``name``
    (floats and bools are refused, not cast: a cast could merge or move examples)."""
    arr = np.asarray(idx)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"argument {name!r} must be an array of integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64).ravel()
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"argument {name!r} holds indices outside [0, {n})")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"argument {name!r} repeats an index")
    return arr


def split_indices(n: int, prior_indices: np.ndarray | None = None,
                  bound_indices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(prior, bound)`` index sets of a training set of ``n`` examples: the bound set is ``bound_indices`` or
    the complement of ``prior_indices``. Refuses indices that are not integers, out of range or repeated, or a
    bound set that overlaps the prior's examples (data that built :math:`\\theta_0` never enters the bound's
    sample)."""
    check_count("n", n)
    prior = np.zeros(0, np.int64) if prior_indices is None else _index_array("prior_indices", prior_indices, n)
    if bound_indices is None:
        mask = np.ones(n, bool)
        mask[prior] = False
        bound = np.nonzero(mask)[0]
    else:
        bound = np.sort(_index_array("bound_indices", bound_indices, n))
        if np.intersect1d(bound, prior).size:
            raise ValueError("argument 'bound_indices' overlaps 'prior_indices': the examples that built theta_0 "
                             "must not enter the bound set")
    if bound.size == 0:
        raise ValueError("argument 'prior_indices' leaves no example for the bound set")
    return np.sort(prior), bound


def search_size(search: Mapping[str, int]) -> int:
    """The number of settings of the declared grid: the product of every knob's number of values."""
    total = 1
    for name, k in search.items():
        check_count(f"search[{name!r}]", k)
        total *= int(k)
    return total


def fit_w(sub: Subspace, data: Dataset, *, key: jax.Array, epochs: int, lr: float, batch_size: int = 128,
          progress: bool = True, w0: jax.Array | None = None, **train: Any) -> np.ndarray:
    """The subspace coordinates w trained by Adam on softmax cross-entropy, from ``w0`` (default 0, i.e.
    :math:`\\theta_0`)."""
    ops = sub.projection.operands()
    w = jnp.zeros(sub.d, jnp.float32) if w0 is None else jnp.asarray(w0, jnp.float32)
    state, _ = train_tree(subspace_forward(sub, ops), {"w": w}, data, key=key, epochs=epochs, batch_size=batch_size,
                          optimizer=optax.adam(lr), progress=progress, desc=f"subspace d={sub.d}", **train)
    return np.asarray(state.params["w"])


def quantize_w(sub: Subspace, w: np.ndarray, levels: int, data: Dataset, *, key: jax.Array, kmeans: bool = True,
               finetune_epochs: int = 0, lr: float = 1e-3, batch_size: int = 128,
               progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(symbols, codebook)``: w quantised to ``levels`` levels (k-means or uniform start), then, for
    ``finetune_epochs`` > 0, w and the codebook trained together with the straight-through quantised forward.
    The codebook is returned as stored (float16 values) and the symbols are the nearest stored levels."""
    start = kmeans_codebook(w, levels) if kmeans else uniform_codebook(w, levels)
    if finetune_epochs > 0:
        ops = sub.projection.operands()
        params = {"w": jnp.asarray(w, jnp.float32), "codebook": jnp.asarray(start, jnp.float32)}
        state, _ = train_tree(quantized_forward(sub, ops), params, data, key=key, epochs=finetune_epochs,
                              batch_size=batch_size, optimizer=optax.adam(lr), progress=progress,
                              desc=f"quantised L={levels}")
        w, start = np.asarray(state.params["w"]), np.asarray(state.params["codebook"])
    codebook = as_stored(start)
    return np.asarray(assign(np.asarray(w, np.float64), codebook.astype(np.float64))), codebook


def quantized_predictions(sub: Subspace, w: np.ndarray, data: Dataset, *, batch_size: int = 2000,
                          progress: bool = False, desc: str = "errors") -> np.ndarray:
    """Predicted classes of the subspace network at coordinates ``w`` (e.g. ``codebook[symbols]``) on ``data``
    (-1 where a logit is not finite: always wrong)."""
    ops = sub.projection.operands()
    params = jax.jit(lambda w: sub.params(w, ops))(jnp.asarray(w, jnp.float32))
    run = jax.jit(lambda p, x: predict(sub.apply_fn(p, x)))
    out = []
    with pass_progress(len(data), desc, unit="example", enabled=progress) as bar:
        for i in range(0, len(data), batch_size):
            out.append(np.asarray(run(params, jnp.asarray(data.x[i:i + batch_size]))))
            bar.update(min(batch_size, len(data) - i))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _errors(sub: Subspace, w: np.ndarray, data: Dataset, progress: bool = False, desc: str = "errors") -> int:
    return int(np.sum(quantized_predictions(sub, w, data, progress=progress, desc=desc) != data.y))


def certify_quantized(sub: Subspace, symbols: np.ndarray, codebook: np.ndarray, bound: Dataset, *, delta: float,
                      search: Mapping[str, int], method: CompressionBound = CompressionBound.KL_INVERSE,
                      n_prior: int = 0, details: Mapping[str, Any] | None = None,
                      progress: bool = False) -> tuple[Certificate, CodeLength, int]:
    """The certificate of the network :math:`\\theta_0 + P c_s` on ``bound``: its errors there, the description
    length of ``symbols`` (levels = ``len(codebook)``, 16 bits a level) with every setting of ``search`` paid for.
    Returns the certificate, the code length and the error count.

    The codebook must be float16-exact (as :func:`~.quantize.as_stored` returns it): the 16 bits a level
    describe exactly those values, so the network evaluated is the one the message describes; any other codebook
    is refused."""
    raw = np.asarray(codebook)
    if raw.ndim != 1 or raw.dtype == bool or not np.issubdtype(raw.dtype, np.number):
        raise ValueError("argument 'codebook' must be a 1-d array of levels")
    stored = as_stored(raw)
    if not np.array_equal(stored.astype(np.float64), raw.astype(np.float64)):
        raise ValueError("argument 'codebook' is not float16-exact: the 16 bits a level would describe other "
                         "levels than those evaluated; pass quantize.as_stored(codebook) and symbols assigned to it")
    levels = len(stored)
    message = encode_message(symbols, levels)
    code = message_length(message, codebook_bits_per_level=16, searched=search_size(search))
    syms = np.asarray(symbols, np.int64).reshape(-1)    # what the message decodes to (encode_message checked)
    if syms.size != sub.d:
        raise ValueError(f"argument 'symbols' must hold one symbol per subspace coordinate ({sub.d}), "
                         f"got {syms.size}")
    k = _errors(sub, stored[syms], bound, progress, "bound-set errors")
    info = {"search": dict(search), "projection": sub.projection.to_dict(), "code": code.to_dict(),
            "codebook": [float(c) for c in stored], **dict(details or {})}
    guess = 1.0 - np.bincount(bound.y).max() / len(bound)
    cert = compression_certificate(k, len(bound), code, delta, method=method, n_prior=n_prior,
                                   guess_risk=float(guess), message=message, details=info)
    return cert, code, k


def certify_compressed(apply: Any, params_0: Any, data: Dataset, *, d: int, levels: int | Sequence[int],
                       seed: int = 0, test: Dataset | None = None, prior_indices: np.ndarray | None = None,
                       bound_indices: np.ndarray | None = None, train_on: str = "all", epochs: int = 10,
                       lr: float = 1e-2, batch_size: int = 128, kmeans: bool = True, finetune_epochs: int = 0,
                       finetune_lr: float = 1e-3, projection: ProjectionKind | str = ProjectionKind.KRONECKER,
                       orthogonal: bool = False, delta: float = 0.025,
                       method: CompressionBound | str = CompressionBound.KL_INVERSE,
                       search: Mapping[str, int] | None = None, progress: bool = True) -> CompressedResult:
    """Train a d-dimensional subspace model through ``params_0``, quantise it, and certify the quantised network.

    Args:
        apply, params_0: your model, ``apply(params, x) -> logits`` with any pytree ``params_0`` (a Flax linen
            module with its variables also works: :func:`genbounds.estimators.models.as_model`); ``params_0`` is
            :math:`\\theta_0` and must not depend on the bound set.
        data: the training set; the bound set is ``bound_indices`` or the complement of ``prior_indices``.
        d, levels: subspace dimension; number of quantisation levels (a sequence: each is tried and the best
            certificate kept, paid for in ``search``).
        seed: seeds the projection (``seed``), training and fine-tuning (``seed + 1``, ``seed + 2``).
        prior_indices: examples of ``data`` that built ``params_0`` (data-dependent mode; recorded as n_prior).
        train_on: ``"all"`` (w trains on all of ``data``) or ``"bound"`` (on the bound set only).
        search: the declared grid, knob -> number of values, beyond ``levels`` (e.g. ``{"d": 3}`` when you try
            three d); the grid (these knobs and ``levels``) costs :math:`\\log_2` of the product of their numbers
            of values, exact for a power of two and otherwise rounded up by one ulp
            (:mod:`genbounds.bounds.compression`). A ``"levels"`` key other than ``len(levels)`` is refused
            (declare levels looked at before under another knob, e.g. ``"settings_looked_at"``).
        method: kl^-1 (``compression_kl``) or Catoni on a paid-for grid (``compression_catoni``).

    Returns:
        A :class:`CompressedResult` (``to_dict()`` for records).
    """
    method = check_choice("method", method, CompressionBound)
    check_delta("delta", delta)
    if train_on not in ("all", "bound"):
        raise ValueError(f"argument 'train_on' must be 'all' or 'bound', got {train_on!r}")
    levels_grid = (int(levels),) if isinstance(levels, int | np.integer) else tuple(int(v) for v in levels)
    if not levels_grid:
        raise ValueError("argument 'levels' must name at least one number of levels")
    declared = dict(search or {})
    if "levels" in declared and declared["levels"] != len(levels_grid):
        raise ValueError(f"argument 'search' declares {declared['levels']!r} values of 'levels' but this call tries "
                         f"{len(levels_grid)}: declare levels looked at before under another knob "
                         "(e.g. 'settings_looked_at'), never fewer bits than declared")
    grid = {**declared, "levels": len(levels_grid)}
    search_size(grid)
    prior, bound_idx = split_indices(len(data), prior_indices, bound_indices)
    bound = data.take(bound_idx)
    model = as_model(apply, params_0)
    sub = subspace(model.apply, model.params, d, seed=seed, kind=projection, orthogonal=orthogonal)
    t0 = time.perf_counter()
    w = fit_w(sub, data if train_on == "all" else bound, key=jax.random.key(seed + 1), epochs=epochs, lr=lr,
              batch_size=batch_size, progress=progress)
    t_train = time.perf_counter() - t0
    float_error = _errors(sub, w, bound) / len(bound)
    best = None
    t1 = time.perf_counter()
    for L in levels_grid:
        symbols, codebook = quantize_w(sub, w, L, data if train_on == "all" else bound, key=jax.random.key(seed + 2),
                                       kmeans=kmeans, finetune_epochs=finetune_epochs, lr=finetune_lr,
                                       batch_size=batch_size, progress=progress)
        details = {"mode": "data-dependent" if prior.size else "given theta_0", "seed": int(seed),
                   "train_on": train_on, "epochs": int(epochs), "lr": float(lr), "batch_size": int(batch_size),
                   "kmeans": bool(kmeans), "finetune_epochs": int(finetune_epochs), "levels_grid": list(levels_grid)}
        cert, code, k = certify_quantized(sub, symbols, codebook, bound, delta=delta, search=grid, method=method,
                                          n_prior=int(prior.size), details=details)
        if best is None or cert.value < best[0].value:
            best = (cert, code, k, symbols, codebook)
    t_quant = time.perf_counter() - t1
    cert, code, k, symbols, codebook = best
    test_error = None
    if test is not None:
        test_error = _errors(sub, codebook[symbols], test) / len(test)
    return CompressedResult(cert, k / len(bound), test_error, float_error, code, sub.projection,
                            tuple(float(c) for c in codebook),
                            {"train": t_train, "quantize_certify": t_quant,
                             "total": time.perf_counter() - t0}, grid)
