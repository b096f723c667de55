"""A run's own figure, written beside its record by the runners' commands, and the one look every
figure shares (:func:`style`; :mod:`genbounds.paper_figures` draws with it too).

:func:`make_run_figure` draws one PAC-Bayes record at a glance: certificates next to test errors
per objective, and the training objective per epoch (the ``certificates.png`` that ``genbounds
quickstart`` and ``genbounds pac-bayes`` write next to their record).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .report import summary_rows  # noqa: E402
from .results import PacBayesRecord  # noqa: E402

__all__ = ["RUN_FIGURE_BARS", "make_run_figure", "style"]

#: The bars of :func:`make_run_figure`: (summary row key, legend label).
RUN_FIGURE_BARS = (("certificate", "certificate (b): per-example draws"),
                   ("certificate_weights", "certificate (a): weight draws"),
                   ("test_error", "test error (stochastic)"),
                   ("test_error_mean", "test error (posterior mean)"))


@contextmanager
def style():
    """Sizes, fonts and grid of every figure (a ``matplotlib.rc_context``)."""
    with plt.rc_context({
        "figure.dpi": 110, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 11,
        "axes.labelsize": 10, "legend.fontsize": 8, "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    }):
        yield


def make_run_figure(record: PacBayesRecord, path: str | os.PathLike) -> Path:
    """Draw one PAC-Bayes record into ``path`` (PNG); returns the path."""
    rows = summary_rows(record)
    bars = RUN_FIGURE_BARS
    with style():
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
        x = np.arange(len(rows))
        width = 0.8 / len(bars)
        for i, (key, label) in enumerate(bars):
            vals = [r[key] if r[key] is not None else np.nan for r in rows]
            ax1.bar(x + (i - (len(bars) - 1) / 2) * width, vals, width, label=label)
        ax1.set_xticks(x, [r["objective"] for r in rows])
        ax1.set_ylabel("0-1 risk")
        cfg = record.config
        ax1.set_title(f"{cfg['dataset']}, {cfg['arch']}, {cfg['prior']} prior")
        ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
        for r in record.results:
            if r.history:
                ax2.plot([e["epoch"] for e in r.history], [e["objective"] for e in r.history], label=r.objective)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("training objective (bound on surrogate)")
        ax2.set_title("posterior training")
        ax2.legend(fontsize=8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return path
