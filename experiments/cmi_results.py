"""Typed views of the records :mod:`.results` does not type: a CMI record (one
:class:`~.results.CMIRunResult` per n), a Langevin record (one
:class:`~genbounds.estimators.iterative.trajectories.Checkpoint` per step), and the settings of a
PAC-Bayes record that the tables and figures read (:class:`PacBayesSettings`, its closed sets of
names as StrEnum members).

Readers parse a record once, here, and then read typed fields only. The JSON is the record schema's
(:mod:`.records`, unchanged): each ``to_dict`` of what is read back gives the entry it came from. A
malformed entry raises one ``ValueError`` naming the entry and what is wrong
(:func:`read_entries`).
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from ..bounds import Certificate
from ..bounds._array import check_choice
from ..estimators.iterative.trajectories import Checkpoint, IterativeBound, SGDBound
from ..estimators.snn import FamilyName, PriorKind
from ..estimators.supersample import CertifiedCMI, CMIResult
from ..estimators.supersample.runs import CMIBound, LooSummary, SupersampleSummary
from .config import Arch, MaskPrior
from .results import CMIRunResult, PacBayesResult

__all__ = ["MALFORMED", "record_object", "what_is_wrong", "read_entries", "certificate_from_entry",
           "pac_bayes_result", "PacBayesSettings", "cmi_bound", "cmi_summary", "cmi_run_result", "CMIRecord",
           "iterative_bound", "checkpoint", "LangevinRecord"]

T = TypeVar("T")

#: Errors a malformed entry raises while it is read (each becomes one line naming the entry).
MALFORMED = (KeyError, IndexError, TypeError, AttributeError, ValueError, ZeroDivisionError)


def record_object(x: Any, name: str) -> Mapping[str, Any]:
    """``x``, which must be a JSON object (``name`` says which entry, for the error)."""
    if not isinstance(x, Mapping):
        raise ValueError(f"{name!r} must be an object, got {reprlib.repr(x)}")
    return x


def what_is_wrong(err: Exception) -> str:
    """One line for an error raised while reading an entry."""
    if isinstance(err, KeyError):
        return f"missing key {err.args[0]!r}"
    return str(err) or type(err).__name__


def read_entries(entries: Any, read: Callable[[Mapping[str, Any]], T]) -> tuple[T, ...]:
    """Each result entry of a record read by ``read``; a malformed one raises ``ValueError``
    'result entry i: what is wrong'."""
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ValueError(f"'results' must be a list, got {reprlib.repr(entries)}")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValueError(f"result entry {i} must be an object, got {reprlib.repr(entry)}")
        try:
            out.append(read(entry))
        except MALFORMED as err:
            raise ValueError(f"result entry {i}: {what_is_wrong(err)}") from err
    return tuple(out)


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls`` (lists as tuples)."""
    return {f.name: tuple(data[f.name]) if isinstance(data[f.name], list) else data[f.name]
            for f in dataclasses.fields(cls) if f.name in data}


# ---------------------------------------------------------------------------------------
# PAC-Bayes records


def certificate_from_entry(data: Any, name: str = "certificate") -> Certificate:
    """A certificate entry (:meth:`Certificate.from_dict`), its ``details`` checked to be an object."""
    cert = record_object(data, name)
    record_object(cert.get("details", {}), "details")
    return Certificate.from_dict(cert)


def pac_bayes_result(data: Mapping[str, Any]) -> PacBayesResult:
    """One result entry of a PAC-Bayes record (:meth:`PacBayesResult.from_dict`), its certificate
    checked first so that a malformed one is named."""
    certificate_from_entry(data.get("certificate"))
    return PacBayesResult.from_dict(data)


@dataclass(frozen=True)
class PacBayesSettings:
    """The settings of a PAC-Bayes record that say what was certified: the data, the network, the
    prior and the posterior family. Records older than a setting get the behaviour they were run
    with (Gaussian posteriors, magnitude mask priors); settings of other families are None."""

    dataset: str
    binary: bool
    arch: Arch
    prior: PriorKind
    family: FamilyName = FamilyName.GAUSSIAN
    alpha: float | None = None
    dp_epsilon: float | None = None
    mask_prior: MaskPrior = MaskPrior.MAGNITUDE
    sparsity: float | None = None
    mask_flip: float | None = None

    @property
    def task(self) -> str:
        """The data set, with '-binary' when its classes were merged into two."""
        return f"{self.dataset}{'-binary' if self.binary else ''}"

    @property
    def prior_text(self) -> str:
        """The prior in words: its kind with alpha or epsilon, and a mask family's Bernoulli prior."""
        prior = {PriorKind.DATA: f"{self.prior} (alpha {self.alpha})",
                 PriorKind.DP: f"{self.prior} (epsilon {self.dp_epsilon}, all data)"}.get(self.prior, str(self.prior))
        if self.family is FamilyName.MASK:
            prior += (f", Bernoulli masks (uniform keep {1 - self.sparsity:.3g}, data-free)"
                      if self.mask_prior is MaskPrior.UNIFORM else
                      f", Bernoulli masks (magnitude, sparsity {self.sparsity}, flip {self.mask_flip})")
        return prior

    @classmethod
    def from_dict(cls, config: Any) -> Self:
        """From a record's flat ``config``; a name outside its closed set is refused by name."""
        c = record_object(config, "config")
        return cls(dataset=str(c["dataset"]), binary=bool(c.get("binary")), arch=check_choice("arch", c["arch"], Arch),
                   prior=check_choice("prior", c["prior"], PriorKind),
                   family=check_choice("family", c.get("family", FamilyName.GAUSSIAN), FamilyName),
                   alpha=c.get("alpha"), dp_epsilon=c.get("dp_epsilon"),
                   mask_prior=check_choice("mask_prior", c.get("mask_prior", MaskPrior.MAGNITUDE), MaskPrior),
                   sparsity=c.get("sparsity"), mask_flip=c.get("mask_flip"))


# ---------------------------------------------------------------------------------------
# CMI records


def cmi_bound(data: Mapping[str, Any]) -> CMIBound:
    """One CMI bound entry (inverse of :meth:`CMIBound.to_dict`); ``value`` is None when it does not apply. Its kind
    is always "estimate": an entry that says otherwise was edited and is refused."""
    if data.get("kind", CMIBound.kind) != CMIBound.kind:
        raise ValueError(f"a CMI bound entry of kind {data['kind']!r}: these bounds are estimates (kind "
                         f"{CMIBound.kind!r}), never certificates; was the record edited?")
    applicable = data.get("applicable", data["value"] is not None)
    kw = _fields(CMIBound, data)
    return CMIBound(**{**kw, "value": kw.get("value") if applicable else None})


def cmi_summary(data: Any) -> SupersampleSummary | LooSummary:
    """A CMI entry's summary: leave-one-out runs (it counts ``runs``) or supersample runs."""
    s = record_object(data, "summary")
    cls = LooSummary if "runs" in s else SupersampleSummary
    return cls(**_fields(cls, s))


def cmi_run_result(data: Mapping[str, Any]) -> CMIRunResult:
    """One n of a CMI record (inverse of :meth:`CMIRunResult.to_dict`)."""
    bounds = record_object(data["bounds"], "bounds")
    certified = data.get("certified")
    result = CMIResult({name: cmi_bound(record_object(b, name)) for name, b in bounds.items()},
                       cmi_summary(data["summary"]),
                       None if certified is None else CertifiedCMI.from_dict(record_object(certified, "certified")))
    return CMIRunResult(n=data["n"], result=result, runs_trained=data["runs_trained"], seconds=data["seconds"])


@dataclass(frozen=True)
class CMIRecord:
    """A CMI record: its data set and network, its design (``k1`` supersamples and ``k2`` masks, or
    leave-one-out runs), one result per n and its wall time (None when not recorded)."""

    dataset: str
    arch: str
    loo: bool
    results: tuple[CMIRunResult, ...]
    k1: int | None = None
    k2: int | None = None
    seconds: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        c = record_object(data.get("config", {}), "config")
        timings = record_object(data.get("timings", {}), "timings")
        return cls(dataset=c.get("dataset"), arch=c.get("arch"), loo=bool(c.get("loo")),
                   results=read_entries(data["results"], cmi_run_result), k1=c.get("k1"), k2=c.get("k2"),
                   seconds=timings.get("total_s"))


# ---------------------------------------------------------------------------------------
# Langevin records


def iterative_bound(data: Mapping[str, Any]) -> IterativeBound | SGDBound:
    """One bound of a checkpoint: Neu et al.'s SGD bound (it has a ``sigma``) or a Langevin bound."""
    cls = SGDBound if "sigma" in data else IterativeBound
    return cls(**_fields(cls, data))


def checkpoint(data: Mapping[str, Any]) -> Checkpoint:
    """One checkpoint entry of a Langevin record (inverse of :meth:`Checkpoint.to_dict`)."""
    bounds = record_object(data["bounds"], "bounds")
    loo = bounds.get("negrea_loo")
    if isinstance(loo, Mapping) and not loo.get("pooled", False):
        raise ValueError("this Langevin record's negrea_loo was computed per outer draw, which is biased low (the "
                         "held-out point's law belongs inside the root): rerun the same `genbounds langevin` "
                         "command into the same --out (finished draws resume) to rewrite it")
    return Checkpoint(step=data["step"], eta=data["eta"], beta=data.get("beta"), train_error=data["train_error"],
                      test_error=data["test_error"], gap=data["gap"], gap_interval=tuple(data["gap_interval"]),
                      bounds={name: iterative_bound(record_object(b, name)) for name, b in bounds.items()})


@dataclass(frozen=True)
class LangevinRecord:
    """A Langevin record: the binary task's pool and the network (from its environment; the config's
    data set and "mlp" when it has none), n, the design (``k1`` draws x ``k2`` runs), the checkpoints
    and the wall time (None when not recorded)."""

    pool: str
    net: str
    n: int | None
    checkpoints: tuple[Checkpoint, ...]
    k1: int | None = None
    k2: int | None = None
    seconds: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        c = record_object(data.get("config", {}), "config")
        env = record_object(data.get("environment", {}), "environment")
        timings = record_object(data.get("timings", {}), "timings")
        return cls(pool=env.get("pool", c.get("dataset")), net=env.get("net", Arch.MLP.value), n=c.get("n"),
                   checkpoints=read_entries(data["results"], checkpoint), k1=c.get("k1"), k2=c.get("k2"),
                   seconds=timings.get("total_s"))
