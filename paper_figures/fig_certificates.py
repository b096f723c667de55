"""A PAC-Bayes run at a glance: certificates next to test errors per objective, and the training
objective per epoch (the ``certificates.png`` that ``genbounds quickstart`` and ``genbounds
pac-bayes`` write next to their record)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..experiments.report import summary_rows
from .style import style

__all__ = ["make_run_figure"]

BARS = (("certificate", "certificate (b): per-example draws"),
        ("certificate_weights", "certificate (a): weight draws"),
        ("test_error", "test error (stochastic)"),
        ("test_error_mean", "test error (posterior mean)"))


def make_run_figure(record: dict, path: str | os.PathLike) -> Path:
    """Draw one PAC-Bayes record into ``path`` (PNG); returns the path."""
    rows = summary_rows(record)
    with style():
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
        x = np.arange(len(rows))
        width = 0.8 / len(BARS)
        for i, (key, label) in enumerate(BARS):
            vals = [r[key] if r[key] is not None else np.nan for r in rows]
            ax1.bar(x + (i - (len(BARS) - 1) / 2) * width, vals, width, label=label)
        ax1.set_xticks(x, [r["objective"] for r in rows])
        ax1.set_ylabel("0-1 risk")
        cfg = record["config"]
        ax1.set_title(f"{cfg['dataset']}, {cfg['arch']}, {cfg['prior']} prior")
        ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
        for r in record["results"]:
            h = r.get("history") or []
            if h:
                ax2.plot([e["epoch"] for e in h], [e["objective"] for e in h], label=r["objective"])
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
