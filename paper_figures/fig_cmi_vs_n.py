"""(c) CMI bound estimates (plug-in MIs, not certificates) versus n, with the measured test error
and gap (CMI records)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..experiments.report import shown_bounds
from .style import COLORS, LABELS, cli, save, style, unique

#: f-, e- and ld-CMI coincide on binary tasks (the loss pair determines the prediction pair
#: given the labels), so their lines get distinct styles to stay visible.
STYLES = {"fcmi": "o-", "ecmi": "s--", "ldcmi": "^:"}


def make(records: list[dict], out_dir: Path) -> list[Path]:
    recs = [r for r in records if r["kind"] == "cmi" and len(r["results"]) >= 2]
    files: list[Path] = []
    seen: dict[str, int] = {}
    for rec in recs:
        cfg = rec["config"]
        res = sorted(rec["results"], key=lambda r: r["n"])
        ns = [r["n"] for r in res]
        with style():
            fig, ax = plt.subplots(figsize=(5.5, 3.8))
            for name in shown_bounds(rec):
                pts = [(r["n"], r["bounds"][name]) for r in res if r["bounds"][name].get("applicable")]
                if not pts:
                    continue
                x = [p[0] for p in pts]
                ax.plot(x, [p[1]["value"] for p in pts], STYLES.get(name, "o-"), color=COLORS[name],
                        label=LABELS[name], ms=4)
                ax.fill_between(x, [p[1]["interval"][0] for p in pts], [p[1]["interval"][1] for p in pts],
                                color=COLORS[name], alpha=0.12)
            ax.plot(ns, [r["summary"]["test_error"] for r in res], "k-", lw=2, label="test error (measured)")
            ax.plot(ns, [r["summary"]["gap"] for r in res], "k:", lw=1.5, label="gap (measured)")
            ax.set_xticks(ns)
            ax.set_xlabel("n (training examples)")
            ax.set_ylabel("estimated bound on E[test error]")
            runs = "leave-one-out" if cfg.get("loo") else f"k2={cfg['k2']}"
            ax.set_title(f"CMI bound estimates: {cfg['dataset']}, {cfg['arch']} (k1={cfg['k1']}, {runs})")
            ax.legend(ncol=2)
            stem = f"cmi_vs_n_{cfg['dataset']}_{cfg['arch']}" + ("_loo" if cfg.get("loo") else "")
            files += save(fig, out_dir, unique(stem, seen))
    return files


if __name__ == "__main__":
    cli(make)
