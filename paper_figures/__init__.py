"""Scripts that regenerate each figure from stored result records (never by retraining).

Each ``fig_*`` module has ``make(records, out_dir) -> list[Path]`` and a command line
``python -m genbounds.paper_figures.fig_NAME RESULTS_DIR OUT_DIR``; :func:`make_all` runs them all
(``genbounds figures RESULTS_DIR OUT_DIR``). A run's own figure (the ``certificates.png`` the
``genbounds`` commands write beside their record) is runner output:
:func:`genbounds.experiments.plots.make_run_figure`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..experiments.records import load_records

__all__ = ["FIGURES", "make_all"]

FIGURES = ("fig_role_of_data", "fig_objectives", "fig_cmi_vs_n", "fig_training_curves", "fig_langevin",
           "fig_masks")


def make_all(results_dir, out_dir) -> tuple[list[Path], list[str]]:
    """Every figure from the records under ``results_dir``; returns written files and messages."""
    good, errors = load_records([results_dir])
    records = [r for _, r in good]
    written, notes = [], list(errors)
    for name in FIGURES:
        mod = importlib.import_module(f"{__name__}.{name}")
        files = mod.make(records, Path(out_dir))
        if not files:
            notes.append(f"{name}: no suitable records under {results_dir}")
        written += files
    return written, notes
