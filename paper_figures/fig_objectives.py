"""(b) PAC-Bayes training objectives side by side: certificate, test error and KL/n."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .style import COLORS, cli, pac_bayes_records, save, style


def make(records: list[dict], out_dir: Path) -> list[Path]:
    recs = [(s, r) for s, r in pac_bayes_records(records) if len(r.results) >= 2]
    if not recs:
        return []
    files = []
    for i, (s, rec) in enumerate(recs):
        res = rec.results
        x = np.arange(len(res))
        with style():
            fig, ax = plt.subplots(figsize=(5.5, 4.2))
            ax.bar(x - 0.2, [r.certificate.value for r in res], 0.4, color=COLORS["certificate"],
                   label="certificate (Seeger, per-example draws)")
            ax.bar(x + 0.2, [r.test_error_stochastic for r in res], 0.4, color=COLORS["test_error"],
                   label="test error (stochastic)")
            for xi, r in zip(x, res):
                ax.annotate(f"KL/n {r.kl_over_n:.1e}", (xi, r.certificate.value), ha="center",
                            va="bottom", fontsize=7)
            ax.set_xticks(x, [r.objective for r in res])
            ax.set_ylabel("0-1 risk")
            model = res[0].certificate.details.get("arch", s.arch)
            ax.set_title(f"Objectives: {s.task}, {model}, prior {s.prior_text}")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)     # below the axes, off the bars
            suffix = "" if len(recs) == 1 else f"_{i}"
            files += save(fig, out_dir, f"objectives{suffix}")
    return files


if __name__ == "__main__":
    cli(make)
