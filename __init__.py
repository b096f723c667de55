"""genbounds: certified generalization bounds in JAX.

PAC-Bayes certificates for stochastic neural networks, and conditional-mutual-information
bounds estimated from populations of training runs.

* :mod:`genbounds.bounds`: the mathematics (pure, jit-able functions; float64 certificates).
* :mod:`genbounds.estimators`: data, networks and training steps, then two pipelines:
  :mod:`genbounds.estimators.snn` (PAC-Bayes: stochastic networks, objectives, certification)
  and :mod:`genbounds.estimators.supersample` (CMI: designs, populations, MI, run-level bounds).
* :mod:`genbounds.experiments`: the ``genbounds`` command line, runners, records, reports.
* :mod:`genbounds.paper_figures`: one script per figure, from stored records.

Subpackages are imported on first use, so ``import genbounds`` is cheap.
"""

from __future__ import annotations

import importlib
from importlib import metadata

try:
    __version__ = metadata.version("genbounds")
except metadata.PackageNotFoundError:      # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__", "bounds", "estimators", "experiments", "paper_figures"]


def __getattr__(name: str):
    if name in ("bounds", "estimators", "experiments", "paper_figures"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
