"""Experiment runners, records and the reporting layer (the ``genbounds`` command line, on top of
them, is :mod:`genbounds.cli`).

* :mod:`.config`: the config base (settings in sections, flat names, command-line flags generated
  from the settings' metadata) and the names of optimisers (the only place strings become optax
  transformations);
* :mod:`.pac_bayes_runner` / :mod:`.cmi_runner` / :mod:`.langevin_runner`: ``genbounds pac-bayes``
  / ``quickstart``, ``genbounds cmi`` and ``genbounds langevin`` as named, resumable stages;
  :mod:`.results`: the PAC-Bayes runner's typed results and the typed view of its record;
* :mod:`.records`: versioned JSON records, written atomically; :mod:`.report`: tables;
  :mod:`.summary`: the text each command prints around its table;
* :mod:`.benchmarks`: speed measurements (``python -m genbounds.experiments.benchmarks.bench_*``).

Runners are imported on first use (they load JAX and the datasets' dependencies).
"""

from __future__ import annotations

import importlib

from .config import OPTIMIZERS, RunConfig, make_optimizer
from .records import load_record, load_records, new_record, write_record
from .report import FORMATS, REPORT_COLUMNS, Column, format_number, render, rows_from_record

__all__ = [
    "OPTIMIZERS",
    "RunConfig",
    "make_optimizer",
    "load_record",
    "load_records",
    "new_record",
    "write_record",
    "FORMATS",
    "REPORT_COLUMNS",
    "Column",
    "format_number",
    "render",
    "rows_from_record",
    "CMIConfig",
    "PacBayesConfig",
    "QUICKSTART",
    "run_cmi",
    "run_pac_bayes",
]

_LAZY = {"CMIConfig": "cmi_runner", "run_cmi": "cmi_runner", "PacBayesConfig": "pac_bayes_runner",
         "QUICKSTART": "pac_bayes_runner", "run_pac_bayes": "pac_bayes_runner"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
