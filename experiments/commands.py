"""The commands that have no runner of their own, as configs whose settings are their flags, and
the functions that run them: the bound calculators (``genbounds bound pac-bayes``, ``genbounds
bound compression``), ``genbounds reproduce``, ``genbounds bench``, and the multi-host start of
``genbounds cmi``; and ``genbounds report``'s choice of records and rows.

The calculators certify numbers computed elsewhere (an empirical risk and a KL; a network's errors
and the length of its description): nothing is trained. A calculator's required inputs default to
None, "not given"; their flags must be given (:func:`~genbounds.experiments.config.setting`'s
``required``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..bounds import (
    Certificate,
    CodeLength,
    CompressionBound,
    PacBayesBound,
    compression_certificate,
    pac_bayes_certificate,
)
from ..bounds._array import check_choice
from ..estimators.devices import initialize_distributed
from .benchmarks.suite import run_bench
from .config import Check, RunConfig, nonneg_int, positive_int, setting
from .recipes import RECIPES, recipe_list, run_recipe
from .records import load_records, new_record, record_path, write_record
from .report import REPORT_FIELDS, RowFilter, report_rows, row_filter
from .summary import report_text, reproduce_text

__all__ = ["PAC_BAYES_ORDER", "MC_DELTA", "PacBayesCalculatorConfig", "run_pac_bayes_calculator", "CompressionMethod",
           "COMPRESSION_BOUNDS", "CompressionCalculatorConfig", "run_compression_calculator", "BoundCMIConfig",
           "ReproduceConfig", "reproduce", "BenchConfig", "bench", "PROCESSES_TITLE", "ProcessesConfig",
           "start_processes", "ReportConfig", "report", "output_folder"]

#: Order in which the calculator prints PAC-Bayes bounds (tightest family first).
PAC_BAYES_ORDER = tuple(PacBayesBound)
#: The Monte Carlo step's confidence part when samples are given without one.
MC_DELTA = 0.01


def _require(cfg: RunConfig, *keys: str) -> None:
    """Refuse a calculator config whose required inputs (``keys``) were not given."""
    missing = [k for k in keys if getattr(cfg, k) is None]
    if missing:
        raise ValueError(f"argument {missing[0]!r} is required")


@dataclass(frozen=True)
class PacBayesCalculatorConfig(RunConfig):
    """``genbounds bound pac-bayes``: the numbers every PAC-Bayes bound of a posterior Q is computed from."""

    emp_risk: float | None = setting(None, "empirical risk on the bound set (a Monte Carlo estimate with "
                                     "--mc-samples)", required=True)
    kl: float | None = setting(None, "KL(Q||P) in nats", required=True)
    n: int | None = setting(None, "examples in the bound set (excluding prior data)", parse=positive_int,
                            required=True)
    delta: float = setting(0.025, "PAC-Bayes confidence part")
    mc_samples: int | None = setting(None, "Monte Carlo samples behind --emp-risk, certified by sample convergence",
                                     parse=positive_int, default_text="none, an exact empirical risk")
    mc_delta: float | None = setting(None, "confidence part for the Monte Carlo step",
                                     default_text=f"{MC_DELTA} with --mc-samples")
    n_prior: int = setting(0, "examples used to build the prior, recorded", parse=nonneg_int)
    n_priors: int = setting(1, "number of priors the prior was chosen from (union bound, delta / k)",
                            parse=positive_int)
    prior_grid_j: int | None = setting(None, "index j of the prior scale c*exp(-j/b) on the Dziugaite & Roy grid",
                                       parse=nonneg_int, default_text="none, a prior scale fixed in advance")

    def __post_init__(self) -> None:
        if self.mc_samples is None and self.mc_delta is not None:
            raise ValueError("argument '--mc-delta' needs '--mc-samples'")


def run_pac_bayes_calculator(cfg: PacBayesCalculatorConfig, save: str | os.PathLike | None = None
                             ) -> list[Certificate]:
    """Every PAC-Bayes bound for ``cfg``'s numbers, in :data:`PAC_BAYES_ORDER` (the Monte Carlo step
    at :data:`MC_DELTA` when ``cfg`` has samples and no ``mc_delta``); with ``save``, also a
    ``calculator`` record there, its config the settings as given (``save`` is checked first:
    :func:`~genbounds.experiments.records.record_path`, so a record of another kind is never replaced)."""
    _require(cfg, "emp_risk", "kl", "n")
    path = None if save is None else record_path(save, "calculator", "--save")
    mc_delta = MC_DELTA if cfg.mc_samples is not None and cfg.mc_delta is None else cfg.mc_delta
    certs = [pac_bayes_certificate(name, cfg.emp_risk, cfg.kl, cfg.n, cfg.delta, mc_samples=cfg.mc_samples,
                                   mc_delta=mc_delta, n_prior=cfg.n_prior, n_priors=cfg.n_priors,
                                   prior_grid_j=cfg.prior_grid_j) for name in PAC_BAYES_ORDER]
    if path is not None:
        config = {"command": "bound", "kind": "pac-bayes", **cfg.to_dict()}
        try:
            write_record(path, new_record("calculator", config, None, [c.to_dict() for c in certs]))
        except OSError as err:
            raise ValueError(f"argument --save: cannot write {path} ({err.strerror or err})") from None
    return certs


@dataclass(frozen=True)
class BoundCMIConfig(RunConfig):
    """``genbounds bound cmi``: the .npz file of supersample (or leave-one-out) runs trained elsewhere."""

    runs: str | None = setting(None, "the .npz file", required=True)
    miller_madow: bool = setting(False, "bias-correct the plug-in MIs", switch=True)


class CompressionMethod(StrEnum):
    """The calculator's names of the compression bounds: the kl-inverse, or Lotfi et al.'s Catoni form."""

    KL = "kl"
    CATONI = "catoni"


#: The certificate's bound behind each :class:`CompressionMethod`.
COMPRESSION_BOUNDS = {CompressionMethod.KL: CompressionBound.KL_INVERSE,
                      CompressionMethod.CATONI: CompressionBound.CATONI}


@dataclass(frozen=True)
class CompressionCalculatorConfig(RunConfig):
    """``genbounds bound compression``: a deterministic (quantised) network's errors and description length."""

    errors: int | None = setting(None, "errors of the network on the bound set", parse=nonneg_int, required=True)
    n: int | None = setting(None, "examples in the bound set (excluding prior data)", parse=positive_int,
                            required=True)
    bits: int | None = setting(None, "length of the prefix-free description, in bits", parse=nonneg_int,
                               required=True)
    searched: int = setting(1, "settings in the declared search grid the network was chosen from (log2 of it is "
                            "added to --bits)", parse=positive_int)
    delta: float = setting(0.05, "confidence parameter")
    method: CompressionMethod = setting(CompressionMethod.KL, "kl: the kl-inverse (Seeger/Maurer) bound; catoni: "
                                        "Lotfi et al.'s Catoni form", choices=[m.value for m in CompressionMethod])
    n_prior: int = setting(0, "examples used to build the prior, recorded", parse=nonneg_int)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", check_choice("method", self.method, CompressionMethod))


def run_compression_calculator(cfg: CompressionCalculatorConfig) -> Certificate:
    """The compression certificate of ``cfg``'s network: ``bits`` declared, plus log2 of ``searched``."""
    _require(cfg, "errors", "n", "bits")
    return compression_certificate(cfg.errors, cfg.n, CodeLength.declared(cfg.bits, searched=cfg.searched),
                                   cfg.delta, method=COMPRESSION_BOUNDS[cfg.method], n_prior=cfg.n_prior)


@dataclass(frozen=True)
class ReproduceConfig(RunConfig):
    """``genbounds reproduce``: a protocol by name (or the list of them) and a scale of its epochs."""

    name: str | None = setting(None, "the protocol (see --list)", positional=True)
    list_only: bool = setting(False, "list the protocols and exit", key="list", switch=True)
    epochs_scale: float = setting(1.0, "multiply every epoch count (e.g. 0.2 for a quick version; at least 1 epoch)",
                                  default_text="1")


def reproduce(cfg: ReproduceConfig, out: str | os.PathLike | None, fmt: str, *, progress: bool = True,
              log: Callable[[str], None] = print) -> str:
    """The list of protocols, or the protocol ``cfg.name`` run into ``out`` (default
    ``results/reproduce/<name>``) and its table in ``fmt``."""
    if cfg.list_only or cfg.name is None:
        if not cfg.list_only:
            raise ValueError("argument 'name' is required (genbounds reproduce --list shows the protocols)")
        return recipe_list()
    if cfg.name not in RECIPES:
        raise ValueError(f"argument 'name' must be one of {sorted(RECIPES)}, got {cfg.name!r}")
    if not cfg.epochs_scale > 0:
        raise ValueError(f"argument '--epochs-scale' must be > 0, got {cfg.epochs_scale!r}")
    recipe = RECIPES[cfg.name]
    out = Path(out or f"results/reproduce/{recipe.name}")
    records = run_recipe(recipe, out, epochs_scale=cfg.epochs_scale, progress=progress, log=log)
    return reproduce_text(records, recipe.notes, out, fmt)


@dataclass(frozen=True)
class BenchConfig(RunConfig):
    """``genbounds bench``: the speed suite's time budget and sizes."""

    budget_s: float = setting(420.0, "seconds for the whole suite", default_text="420")
    smoke: bool = setting(False, "every item at tiny sizes (a CPU check of the suite)", switch=True)
    force: bool = setting(False, "run every item again, also those already done in --out", switch=True)
    data_dir: str | None = setting(None, "Fashion-MNIST IDX files or .npz", default_text="the library's location")

    def __post_init__(self) -> None:
        if not self.budget_s > 0:
            raise ValueError(f"argument '--budget-s' must be > 0, got {self.budget_s!r}")


def output_folder(out: str | os.PathLike, name: str = "--out") -> Path:
    """``out``, made and writable, or a ValueError naming ``name``: checked before a command runs anything."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"argument {name}: {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"argument {name}: cannot make the folder {path} ({err.strerror or err})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"argument {name}: the folder {path} is not writable")
    return path


def bench(cfg: BenchConfig, out: str | os.PathLike | None, *, progress: bool = True,
          log: Callable[[str], None] = print) -> str:
    """The speed suite into ``out`` (default ``results/bench``, checked first: no item runs into a folder
    that cannot be written); returns bench.md's text."""
    folder = output_folder(out or "results/bench")
    return run_bench(folder, smoke=cfg.smoke, budget_s=cfg.budget_s, force=cfg.force,
                     data_dir=cfg.data_dir, progress=progress, log=log)


#: What the multi-host flags are for (the title of their group in ``genbounds cmi --help``).
PROCESSES_TITLE = ("multi-host (JAX's own runtime, jax.distributed): run the same command on every process; the runs "
                   "spread over all of their devices and process 0 writes the files")


@dataclass(frozen=True)
class ProcessesConfig(RunConfig):
    """The processes of a multi-host run (JAX's own runtime, jax.distributed)."""

    coordinator: str | None = setting(None, "address of process 0", metavar="HOST:PORT",
                                      default_text="none, one process")
    num_processes: int = setting(1, "processes in all", parse=positive_int)
    process_id: int = setting(0, "this process's index", parse=nonneg_int)


def start_processes(cfg: ProcessesConfig) -> None:
    """Join the multi-host runtime when a coordinator or more than one process is given."""
    if cfg.coordinator is not None or cfg.num_processes > 1:
        if cfg.coordinator is None:
            raise ValueError("argument '--num-processes' needs '--coordinator HOST:PORT' (the address of process 0)")
        initialize_distributed(cfg.coordinator, cfg.num_processes, cfg.process_id)


@dataclass(frozen=True)
class ReportConfig(RunConfig):
    """``genbounds report``: which records, which of their rows, grouped how."""

    results: tuple[str, ...] | None = setting(None, "folders or record files", positional=True, check=Check(
        lambda p: isinstance(p, str) and bool(p.strip()), "a folder or record file, not an empty path"))
    filters: tuple[RowFilter, ...] = setting(
        (), f"keep only the rows whose FIELD ({' '.join(REPORT_FIELDS)}) prints as PATTERN, shell wildcards allowed "
        "(e.g. dataset=fashion-mnist, source='masks/*'); repeat to keep rows matching all", key="filter",
        parse=row_filter, append=True, metavar="FIELD=PATTERN", default_text="every row")
    group_by: tuple[str, ...] | None = setting(
        None, "group rows by these fields (dataset model prior bound source) and always by n: numbers are averaged, "
        "so a group's row is a mean, not a certificate; groups mixing different bounds are refused", metavar="FIELD",
        default_text="none, one row per result")


def report(cfg: ReportConfig, fmt: str, digits: int, *, log: Callable[[str], None] = print) -> str:
    """``genbounds report``: the table of every record under ``cfg.results`` (files or folders);
    each unreadable or malformed record is skipped with one ``log`` line, and none readable is refused."""
    _require(cfg, "results")
    good, errors = load_records(cfg.results)
    rows, malformed = report_rows(good)
    for e in errors + malformed:
        log(f"skipped {e}")
    if len(malformed) == len(good):
        raise ValueError(f"no readable records under {' '.join(cfg.results)}")
    if not rows:
        kinds = sorted({str(record.get("kind")) for _, record in good})
        raise ValueError(f"no rows to report under {' '.join(cfg.results)}: no record there holds a bound (kinds "
                         f"read: {', '.join(kinds)}; a search record ranks settings, it certifies nothing)")
    return report_text(rows, cfg.group_by, fmt, digits, cfg.filters)
