"""Result records: one versioned JSON schema for every run of the library.

A record is a JSON object::

    {"schema": "genbounds.record/2", "kind": "pac-bayes" | "calculator" | "cmi" | "search" | "langevin",
     "created": ISO time, "config": {...}, "seed": int, "versions": {...},
     "timings": {...}, "results": [...], "best": {...} (optional)}

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
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import IO, Any

__all__ = ["SCHEMA", "KINDS", "new_record", "write_atomic", "write_json_atomic", "write_record",
           "load_record", "load_records", "versions"]

SCHEMA = "genbounds.record/2"
#: Older schemas still read, per record kind.
READABLE = {"genbounds.record/1": ("pac-bayes", "calculator")}
KINDS = ("pac-bayes", "calculator", "cmi", "search", "langevin")
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
