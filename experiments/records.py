"""Result records: one versioned JSON schema for every run of the library.

A record is a JSON object::

    {"schema": "genbounds.record/2",
     "kind": "pac-bayes" | "calculator" | "cmi" | "search" | "langevin" | "certificate",
     "created": ISO time, "config": {...}, "seed": int, "versions": {...},
     "timings": {...}, "results": [...], "best": {...} (optional)}

A ``certificate`` record holds certificates computed in Python (e.g. by
:func:`genbounds.estimators.snn.certify_network`), written by :func:`save_certificate`: its config
names the data set, model and prior, each result is a :class:`CertificateEntry`. The kind is newer
than the schema's other kinds; records of those are unchanged.

Every number in a record says what it is: PAC-Bayes results hold certificates (``best``, when
present, is the smallest of them paid for with a union bound); each CMI bound entry has
``"kind": "estimate"`` and ``"target": "gap" | "risk"``. Version 1 differed only there. Version-1
PAC-Bayes and calculator records are read as they are. Version-1 CMI records are refused: their
MIs came from a plug-in estimator biased low on unbalanced masks. Re-running the same
``genbounds cmi`` command recomputes them from the saved runs without retraining.

Records are written atomically (temporary file in the same folder, then rename) so that an
interrupted run never leaves a half-written file; :func:`load_records` validates each file
and reports the malformed ones instead of crashing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from ..bounds import Certificate
from ..bounds._array import check_probability, check_scalar

__all__ = ["SCHEMA", "KINDS", "new_record", "write_atomic", "write_json_atomic", "write_record",
           "load_record", "load_records", "record_path", "versions", "CertificateEntry", "CERTIFICATE_FIELDS",
           "certificate_config", "save_certificate"]

SCHEMA = "genbounds.record/2"
#: Older schemas still read, per record kind.
READABLE = {"genbounds.record/1": ("pac-bayes", "calculator")}
KINDS = ("pac-bayes", "calculator", "cmi", "search", "langevin", "certificate")
_REQUIRED = ("schema", "kind", "config", "results")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    out = {"python": platform.python_version()}
    for pkg in ("genbounds", "jax", "jaxlib", "numpy", "numpyro", "optax", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def new_record(kind: str, config: dict, seed: int | None, results: list | None = None,
               timings: dict | None = None) -> dict:
    """A record with provenance filled in."""
    if kind not in KINDS:
        raise ValueError(f"argument 'kind' must be one of {KINDS}, got {kind!r}")
    return {
        "schema": SCHEMA,
        "kind": kind,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config": config,
        "seed": seed,
        "versions": versions(),
        "timings": timings or {},
        "results": results or [],
    }


def write_atomic(path: str | os.PathLike, write: Callable[[IO], Any], *, binary: bool = False) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary file in the same folder, which is
    then renamed over ``path``, so an interruption never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON to ``path`` atomically."""
    def dump(f):
        json.dump(obj, f, indent=2, allow_nan=False)
        f.write("\n")
    return write_atomic(path, dump)


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Validate and write a record atomically."""
    _validate(record, str(path))
    return write_json_atomic(path, record)


def _validate(record: Any, where: str) -> dict:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be a JSON object")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    schema = record["schema"]
    if not isinstance(schema, str) or not schema.startswith("genbounds.record/"):
        raise ValueError(f"{where}: not a genbounds record (schema {schema!r})")
    if record["kind"] not in KINDS:
        raise ValueError(f"{where}: unknown kind {record['kind']!r}")
    if schema != SCHEMA and record["kind"] not in READABLE.get(schema, ()):
        if schema == "genbounds.record/1" and record["kind"] == "cmi":
            raise ValueError(f"{where}: CMI record of schema {schema!r} holds MIs from a plug-in estimator biased "
                             "low on unbalanced masks; re-run the same 'genbounds cmi' command (it recomputes "
                             "from the saved runs without retraining)")
        raise ValueError(f"{where}: record schema {schema!r} is newer or older than this library's "
                         f"{SCHEMA!r}; upgrade genbounds or re-run the experiment")
    if not isinstance(record["results"], list):
        raise ValueError(f"{where}: 'results' must be a list")
    return record


def load_record(path: str | os.PathLike) -> dict:
    """Load and validate one record; ``ValueError`` says which file is wrong and why."""
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from err
    return _validate(data, str(path))


def record_path(path: str | os.PathLike, kind: str, name: str = "--save") -> Path:
    """Where a record of ``kind`` may be written, checked before anything is computed (a ValueError
    naming the argument ``name``): not an empty path (``Path('')`` is the current folder), not a
    folder, not under a file, and never over a file that is not already a record of ``kind`` (re-running
    the same command replaces its own record; an experiment's record or any other file is kept)."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"argument {name}: must be a file path, got {text!r}")
    p = Path(text)
    if p.is_dir():
        raise ValueError(f"argument {name}: {p} is a folder, not a file (e.g. {p / 'record.json'})")
    parent = next((q for q in p.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"argument {name}: {parent} is a file, not a folder, so {p} cannot be written")
    if p.exists():
        try:
            held = load_record(p)["kind"]
        except ValueError:
            held = None
        if held != kind:
            what = "a file that is not a genbounds record" if held is None else f"a {held!r} record"
            raise ValueError(f"argument {name}: {p} holds {what}; it is not replaced by a {kind!r} record "
                             "(give another file)")
    return p


def load_records(paths: Iterable[str | os.PathLike]) -> tuple[list[tuple[Path, dict]], list[str]]:
    """Load every record under the given files/folders (``*.json``, recursively).

    Returns the good records with their paths, and one message per malformed file.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.json") if not q.name.startswith("."))
        else:
            files.append(p)
    good, errors = [], []
    for f in files:
        try:
            good.append((f, load_record(f)))
        except ValueError as err:
            errors.append(str(err))
    return good, errors


# ---------------------------------------------------------------------------------------
# Certificates computed in Python


def _text(name: str, x: Any) -> str:
    """``x``, which must be a non-empty string (argument ``name``)."""
    if not isinstance(x, str) or not x.strip():
        raise ValueError(f"argument {name!r} must be a non-empty string, got {x!r}")
    return x


def _test_error(x: Any) -> float | None:
    """``x``: None, or an error rate in [0, 1]."""
    if x is None:
        return None
    if isinstance(x, bool):
        raise ValueError(f"argument 'test_error' must be a number in [0, 1] or None, got {x!r}")
    check_scalar("test_error", x)
    check_probability("test_error", x)
    return float(x)


@dataclass(frozen=True)
class CertificateEntry:
    """One result of a ``certificate`` record: the certificate, its row label in reports, and the test
    error of the predictor it certifies (None when not measured; never used by the bound)."""

    label: str
    certificate: Certificate
    test_error: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.certificate, Certificate):
            raise ValueError(f"argument 'cert' must be a Certificate (genbounds.bounds.Certificate, e.g. the first "
                             f"value certify_network returns), got {type(self.certificate).__name__}")
        _text("label", self.label)
        object.__setattr__(self, "test_error", _test_error(self.test_error))

    def to_dict(self) -> dict:
        """The entry as a record stores it."""
        return {"label": self.label, "certificate": self.certificate.to_dict(), "test_error": self.test_error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CertificateEntry:
        """The inverse of :meth:`to_dict` (``ValueError`` or ``KeyError`` on a malformed entry)."""
        if not isinstance(d.get("certificate"), Mapping):
            raise ValueError(f"'certificate' must be an object, got {d.get('certificate')!r}")
        return cls(d["label"], Certificate.from_dict(d["certificate"]), d.get("test_error"))


#: The config fields of a ``certificate`` record, as :func:`save_certificate` takes them.
CERTIFICATE_FIELDS = ("dataset", "model", "prior")


def certificate_config(config: Any) -> dict[str, str]:
    """The data set, model and prior of a ``certificate`` record's config (``ValueError`` or ``KeyError``
    when one is missing or not a non-empty string)."""
    if not isinstance(config, Mapping):
        raise ValueError(f"'config' must be an object, got {config!r}")
    return {name: _text(name, config[name]) for name in CERTIFICATE_FIELDS}


def save_certificate(cert: Certificate, path: str | os.PathLike, *, dataset: str, model: str, prior: str,
                     test_error: float | None = None, label: str | None = None) -> Path:
    """Write ``cert`` as a ``certificate`` record at ``path`` (atomically), which ``genbounds report`` shows
    as one row (label, n, empirical risk, KL/n, bound, kind 'certificate', source) and ``genbounds
    figures`` reads along with the other records. Returns the path.

    Args:
        cert: the certificate (e.g. the first value :func:`genbounds.estimators.snn.certify_network` returns).
        path: the record's file (``.json``; its folders are created).
        dataset, model, prior: what the report's row says was certified, e.g. ``"digits"``,
            ``"my mlp 64-32-10"``, ``"data (700 examples)"``.
        test_error: the certified predictor's error on a test set, or None.
        label: the row's label (default: the training objective in ``cert.details["objective"]``, else the
            bound's name).
    """
    config = certificate_config({"dataset": dataset, "model": model, "prior": prior})
    if label is None and isinstance(cert, Certificate):
        label = str(cert.details.get("objective", cert.bound))
    entry = CertificateEntry(label, cert, test_error)       # type: ignore[arg-type]
    return write_record(path, new_record("certificate", config, None, [entry.to_dict()]))
