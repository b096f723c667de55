"""One look for every figure: colours and labels per quantity, saving as PNG and PDF, and the
figure scripts' command line; sizes and fonts are :func:`genbounds.experiments.plots.style`, which
a run's own figure shares."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt

from ..experiments.cmi_results import CMIRecord, LangevinRecord, PacBayesSettings
from ..experiments.plots import style
from ..experiments.records import load_records
from ..experiments.results import PacBayesRecord

__all__ = ["COLORS", "LABELS", "style", "save", "cli", "pac_bayes_records", "cmi_records", "langevin_records"]

#: Colour per quantity, shared by every figure.
COLORS = {
    "certificate": "#1f4e79", "test_error": "#c55a11", "train_error": "#7f7f7f", "gap": "#000000",
    "fcmi": "#1f77b4", "ecmi": "#2ca02c", "ldcmi": "#d62728", "binary_kl": "#9467bd",
    "interpolating": "#8c564b", "fast_rate": "#e377c2", "kl": "#17becf", "emp_ce": "#bcbd22",
    "objective": "#1f4e79", "loo_sqrt": "#1f77b4", "loo_interpolating": "#8c564b",
    "haghifam_ld": "#1f77b4", "negrea_loo": "#d62728",
}
LABELS = {
    "fcmi": "f-CMI", "ecmi": "e-CMI", "ldcmi": "ld-CMI", "binary_kl": "binary kl (e-CMI)",
    "interpolating": "interpolating (ld-CMI)", "fast_rate": "fast rate",
    "loo_sqrt": "LOO-CMI (square root)", "loo_interpolating": "LOO-CMI interpolating",
    "haghifam_ld": "CMI, hypothesis test (Haghifam et al. 2020)", "negrea_loo": "leave-one-out (Negrea et al. 2019)",
}


def pac_bayes_records(records: list[dict]) -> list[tuple[PacBayesSettings, PacBayesRecord]]:
    """The PAC-Bayes records among ``records``, each read once into its typed view with its settings."""
    return [(PacBayesSettings.from_dict(r["config"]), PacBayesRecord.from_dict(r))
            for r in records if r["kind"] == "pac-bayes"]


def cmi_records(records: list[dict]) -> list[CMIRecord]:
    """The CMI records among ``records``, read into their typed view."""
    return [CMIRecord.from_dict(r) for r in records if r["kind"] == "cmi"]


def langevin_records(records: list[dict]) -> list[LangevinRecord]:
    """The Langevin records among ``records``, read into their typed view."""
    return [LangevinRecord.from_dict(r) for r in records if r["kind"] == "langevin"]


def unique(name: str, seen: dict[str, int]) -> str:
    """``name`` the first time, then ``name_2``, ``name_3``, ...: two records of the same task
    (e.g. a README run and a protocol's run) get two figures, named in the records' order."""
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name}_{seen[name]}"


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """Write ``name``.png and ``name``.pdf into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.tight_layout()
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths


def cli(make) -> None:
    """``python -m genbounds.paper_figures.fig_X RESULTS_DIR OUT_DIR``."""
    if len(sys.argv) != 3:
        sys.exit(f"usage: python -m {make.__module__} RESULTS_DIR OUT_DIR")
    good, errors = load_records([sys.argv[1]])
    for e in errors:
        print(f"skipped: {e}", file=sys.stderr)
    files = make([r for _, r in good], Path(sys.argv[2]))
    print("\n".join(map(str, files)) if files else "no suitable records")
