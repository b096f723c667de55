"""(e) Noisy iterative algorithms: bound estimates versus Langevin iteration, one curve per bound
with its 95% interval over outer draws, and the measured gap (as in Haghifam et al. 2020)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .style import COLORS, LABELS, cli, langevin_records, save, style, unique


def make(records: list[dict], out_dir: Path) -> list[Path]:
    files: list[Path] = []
    seen: dict[str, int] = {}
    for rec in langevin_records(records):
        res = rec.checkpoints
        steps = [c.step for c in res]
        with style():
            fig, ax = plt.subplots(figsize=(5.5, 3.8))
            for name in res[0].bounds:
                ax.plot(steps, [c[name].value for c in res], "o-", ms=3, color=COLORS[name], label=LABELS[name])
                ax.fill_between(steps, [c[name].interval[0] for c in res], [c[name].interval[1] for c in res],
                                color=COLORS[name], alpha=0.15)
            ax.plot(steps, [c.gap for c in res], "k-", lw=2, label="gap (measured)")
            ax.fill_between(steps, [c.gap_interval[0] for c in res], [c.gap_interval[1] for c in res],
                            color="k", alpha=0.12)
            ax.set_xlabel("Langevin iteration")
            ax.set_ylabel("estimated bound on E[gap]")
            ax.set_title(f"Langevin dynamics: {rec.pool}, n = {rec.n} (k1={rec.k1}, k2={rec.k2})")
            ax.legend()
            files += save(fig, out_dir, unique(f"langevin_{rec.pool}_n{rec.n}", seen))
    return files


if __name__ == "__main__":
    cli(make)
