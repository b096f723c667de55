"""(c) CMI bound estimates (plug-in MIs, not certificates) versus n, with the measured test error
and gap (CMI records)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..experiments.report import shown_bounds
from .style import COLORS, LABELS, cli, cmi_records, save, style, unique

#: f-, e- and ld-CMI coincide on binary tasks (the loss pair determines the prediction pair
#: given the labels), so their lines get distinct styles to stay visible.
STYLES = {"fcmi": "o-", "ecmi": "s--", "ldcmi": "^:"}


def make(records: list[dict], out_dir: Path) -> list[Path]:
    recs = [r for r in cmi_records(records) if len(r.results) >= 2]
    files: list[Path] = []
    seen: dict[str, int] = {}
    for rec in recs:
        res = sorted(rec.results, key=lambda r: r.n)
        ns = [r.n for r in res]
        with style():
            fig, ax = plt.subplots(figsize=(5.5, 3.8))
            for name in shown_bounds(rec):
                pts = [(r.n, r.result[name]) for r in res if r.result[name].applicable]
                if not pts:
                    continue
                x = [n for n, _ in pts]
                ax.plot(x, [b.value for _, b in pts], STYLES.get(name, "o-"), color=COLORS[name],
                        label=LABELS[name], ms=4)
                ax.fill_between(x, [b.interval[0] for _, b in pts], [b.interval[1] for _, b in pts],
                                color=COLORS[name], alpha=0.12)
            ax.plot(ns, [r.result.summary.test_error for r in res], "k-", lw=2, label="test error (measured)")
            ax.plot(ns, [r.result.summary.gap for r in res], "k:", lw=1.5, label="gap (measured)")
            ax.set_xticks(ns)
            ax.set_xlabel("n (training examples)")
            ax.set_ylabel("estimated bound on E[test error]")
            runs = "leave-one-out" if rec.loo else f"k2={rec.k2}"
            ax.set_title(f"CMI bound estimates: {rec.dataset}, {rec.arch} (k1={rec.k1}, {runs})")
            ax.legend(ncol=2)
            stem = f"cmi_vs_n_{rec.dataset}_{rec.arch}" + ("_loo" if rec.loo else "")
            files += save(fig, out_dir, unique(stem, seen))
    return files


if __name__ == "__main__":
    cli(make)
