"""(d) Training curves of a PAC-Bayes posterior: the objective (a bound on the surrogate),
KL(Q||P) and the empirical surrogate risk, per epoch."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..estimators.snn import FamilyName, PriorKind
from ..experiments.cmi_results import PacBayesSettings
from ..experiments.results import PacBayesRecord
from .style import cli, pac_bayes_records, save, style, unique


def run_title(s: PacBayesSettings, rec: PacBayesRecord) -> str:
    """What the run was: data set, network, prior, a non-Gaussian posterior family, the objectives."""
    model = rec.results[0].certificate.details.get("arch", s.arch)
    family = "" if s.family in (FamilyName.GAUSSIAN, FamilyName.MASK) else f", {s.family} posterior"
    objectives = [r.objective for r in rec.results]
    return (f"{s.task}, {model}, prior {s.prior_text}{family}, objective{'s' if len(objectives) > 1 else ''} "
            + ", ".join(objectives))


def make(records: list[dict], out_dir: Path) -> list[Path]:
    recs = [(s, r) for s, r in pac_bayes_records(records) if any(x.history for x in r.results)]
    files: list[Path] = []
    seen: dict[str, int] = {}
    for s, rec in recs:
        with style():
            fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
            for r in rec.results:
                ep = [e["epoch"] for e in r.history]
                for ax, key in zip(axes, ("objective", "kl", "emp_ce")):
                    ax.plot(ep, [e[key] for e in r.history], label=r.objective)
            for ax, title in zip(axes, ("training objective (bound)", "KL(Q||P) [nats]",
                                        "empirical bounded cross-entropy")):
                ax.set_title(title)
                ax.set_xlabel("epoch")
            axes[0].legend()
            fig.suptitle(run_title(s, rec), fontsize=10)
            name = f"training_curves_{s.dataset}_{s.arch}_{s.prior}"
            if s.prior is PriorKind.DATA:
                name += f"_alpha{s.alpha}"
            name += "_" + "-".join(r.objective for r in rec.results)
            files += save(fig, out_dir, unique(name, seen))
    return files


if __name__ == "__main__":
    cli(make)
