"""(a) The role of data: certificate and test error versus the fraction alpha of the training
set used to build the prior (PAC-Bayes records with a data-dependent prior), and, at alpha = 0,
priors drawn by a differentially private mechanism on all the data (Dziugaite & Roy 2018;
their SGLD privacy is an approximation, said in the legend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..estimators.snn import FamilyName, PriorKind
from .style import COLORS, cli, pac_bayes_records, save, style


def make(records: list[dict], out_dir: Path) -> list[Path]:
    pts: dict[tuple, list] = {}
    private: dict[tuple, list] = {}
    for s, rec in pac_bayes_records(records):
        if s.prior not in (PriorKind.DATA, PriorKind.DP) or s.family is not FamilyName.GAUSSIAN:
            continue
        for r in rec.results:
            key = (s.dataset, s.arch, r.objective)
            if s.prior is PriorKind.DP:
                private.setdefault(key, []).append((s.dp_epsilon, r.certificate.value, r.test_error_stochastic))
            else:
                pts.setdefault(key, []).append((s.alpha, r.certificate.value, r.test_error_stochastic))
    series = {k: sorted(v) for k, v in pts.items() if len({a for a, _, _ in v}) >= 2}
    if not series:
        return []
    with style():
        fig, ax = plt.subplots(figsize=(5.5, 5.0))
        for (dataset, arch, obj), v in series.items():
            a = [p[0] for p in v]
            ax.plot(a, [p[1] for p in v], "o-", color=COLORS["certificate"],
                    label=f"certificate ({dataset}, {arch}, {obj})")
            ax.plot(a, [p[2] for p in v], "s--", color=COLORS["test_error"],
                    label=f"test error, stochastic ({dataset})")
            for i, (eps, cert, err) in enumerate(sorted(private.get((dataset, arch, obj), []))):
                ax.plot([0.0], [cert], "D", color=f"C{4 + i}", ms=7,
                        label=f"DP prior, epsilon {eps:g}, all data (SGLD privacy approximate); x: test error")
                ax.plot([0.0], [err], "x", color=f"C{4 + i}", ms=7)
        ax.set_xlabel("fraction alpha of the training set used for the prior")
        ax.set_ylabel("0-1 risk")
        ax.set_title("The role of data in the prior")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1)     # below the axes, off the data
        return save(fig, out_dir, "role_of_data")


if __name__ == "__main__":
    cli(make)
