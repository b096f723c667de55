"""(e) Noisy iterative algorithms: bound estimates versus Langevin iteration, one curve per bound
with its 95% interval over outer draws, and the measured gap (as in Haghifam et al. 2020)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .style import COLORS, LABELS, cli, save, style, unique


def make(records: list[dict], out_dir: Path) -> list[Path]:
    files: list[Path] = []
    seen: dict[str, int] = {}
    for rec in (r for r in records if r["kind"] == "langevin"):
        cfg, res = rec["config"], rec["results"]
        steps = [r["step"] for r in res]
        with style():
            fig, ax = plt.subplots(figsize=(5.5, 3.8))
            for name in res[0]["bounds"]:
                ax.plot(steps, [r["bounds"][name]["value"] for r in res], "o-", ms=3, color=COLORS[name],
                        label=LABELS[name])
                ax.fill_between(steps, [r["bounds"][name]["interval"][0] for r in res],
                                [r["bounds"][name]["interval"][1] for r in res], color=COLORS[name], alpha=0.15)
            ax.plot(steps, [r["gap"] for r in res], "k-", lw=2, label="gap (measured)")
            ax.fill_between(steps, [r["gap_interval"][0] for r in res], [r["gap_interval"][1] for r in res],
                            color="k", alpha=0.12)
            ax.set_xlabel("Langevin iteration")
            ax.set_ylabel("estimated bound on E[gap]")
            pool = rec.get("environment", {}).get("pool", cfg["dataset"])
            ax.set_title(f"Langevin dynamics: {pool}, n = {cfg['n']} (k1={cfg['k1']}, k2={cfg['k2']})")
            ax.legend()
            files += save(fig, out_dir, unique(f"langevin_{pool}_n{cfg['n']}", seen))
    return files


if __name__ == "__main__":
    cli(make)
