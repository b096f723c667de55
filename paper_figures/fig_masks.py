"""(f) Stochastic pruning masks: certificate and test error versus sparsity, for Bernoulli masks
trained on the PAC-Bayes objective (certificate (b)), the magnitude-pruned prior net (a fixed
predictor, KL = 0) and the posterior's thresholded mask (a point mass under the Bernoulli prior),
as in Hayou, He & Dziugaite (2021); a star for runs with the uniform (data-free) mask prior."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt

from ..bounds import Certificate
from ..estimators.snn import FamilyName
from ..experiments.cmi_results import PacBayesSettings
from ..experiments.config import MaskPrior
from ..experiments.results import PacBayesRecord, PacBayesResult
from .style import cli, pac_bayes_records, save, style, unique

#: (label, how to read the certificate and the test error from a result, colour, marker)
_SERIES: tuple[tuple[str, Callable[[PacBayesResult], tuple[Certificate, float]], str, str], ...] = (
    ("stochastic masks (b)", lambda r: (r.certificate, r.test_error_stochastic), "C0", "o"),
    ("magnitude pruning (KL = 0)", lambda r: (r.masks.magnitude.certificate, r.masks.magnitude.test_error), "C3", "s"),
    ("thresholded posterior mask (point mass)", lambda r: (r.masks.thresholded.certificate,
                                                           r.masks.thresholded.test_error), "C2", "^"),
)


def make(records: list[dict], out_dir: Path) -> list[Path]:
    groups: dict[tuple, list[tuple[PacBayesSettings, PacBayesRecord]]] = {}
    for s, rec in pac_bayes_records(records):
        if s.family is FamilyName.MASK:
            arch = rec.results[0].certificate.details.get("arch", "")
            groups.setdefault((s.dataset, arch), []).append((s, rec))
    files: list[Path] = []
    seen: dict[str, int] = {}
    for (dataset, arch), recs in groups.items():
        uniform = [(s, r) for s, r in recs if s.mask_prior is MaskPrior.UNIFORM]
        recs = sorted(((s, r) for s, r in recs if s.mask_prior is MaskPrior.MAGNITUDE), key=lambda sr: sr[0].sparsity)
        sparsity = [s.sparsity for s, _ in recs]
        with style():
            fig, (ax_c, ax_e) = plt.subplots(1, 2, figsize=(9, 3.6))
            for label, read, color, marker in _SERIES:
                pairs = [read(r.results[0]) for _, r in recs]
                ax_c.plot(sparsity, [c.value for c, _ in pairs], marker + "-", color=color, label=label)
                ax_e.plot(sparsity, [e for _, e in pairs], marker + "--", color=color, label=label)
            for i, (s, r) in enumerate(uniform):
                res = r.results[0]
                label = "stochastic masks, uniform (data-free) prior" if i == 0 else None
                for ax, y in ((ax_c, res.certificate.value), (ax_e, res.test_error_stochastic)):
                    ax.plot([s.sparsity], [y], "*", ms=11, color="C1", label=label)
            ax_c.set_ylabel("certificate (risk bound)")
            ax_e.set_ylabel("test error")
            for ax in (ax_c, ax_e):
                ax.set_xlabel("sparsity (fraction of weights pruned)")
            ax_c.set_title(f"certificates: {dataset}, {arch}")
            ax_e.set_title("test errors")
            ax_c.legend(fontsize=7)
            files += save(fig, out_dir, unique(f"masks_{dataset}", seen))
    return files


if __name__ == "__main__":
    cli(make)
