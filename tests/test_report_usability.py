"""The report, the summaries and the paper figures read records through typed views: each record
is parsed once at the boundary (closed sets of names are StrEnum members), old records still load
and round-trip to the same JSON."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from genbounds.bounds import Certificate, pac_bayes_certificate
from genbounds.cli import main
from genbounds.estimators.iterative.trajectories import Checkpoint, IterativeBound
from genbounds.estimators.snn import FamilyName, PriorKind
from genbounds.estimators.supersample.runs import LooSummary, SupersampleSummary
from genbounds.experiments.cmi_results import CMIRecord, LangevinRecord, PacBayesSettings
from genbounds.experiments.config import (
    OPTIMIZERS,
    SCHEDULES,
    Arch,
    MaskPrior,
    OptimizerName,
    ScheduleName,
    make_optimizer,
)
from genbounds.experiments.records import write_record
from genbounds.experiments.report import rows_from_record
from genbounds.experiments.results import CMIRunResult
from genbounds.experiments.summary import cmi_text, langevin_text

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "paper_figures" / "results"


def _load(name: str) -> dict:
    return json.loads((COMMITTED / name).read_text())


# ---------------------------------------------------------------------------------------
# 1. Typed reads at the record boundary


def test_closed_sets_of_config_names_are_str_enums():
    assert [m.value for m in Arch] == ["mlp", "cnn"]
    assert OPTIMIZERS == ("sgd", "adam") and tuple(OptimizerName) == (OptimizerName.SGD, OptimizerName.ADAM)
    assert SCHEDULES == ("constant", "cosine") and ScheduleName("cosine") is ScheduleName.COSINE
    assert [m.value for m in MaskPrior] == ["magnitude", "uniform"]
    assert make_optimizer(OptimizerName.ADAM, 1e-3) is not None
    with pytest.raises(ValueError, match=r"argument 'optimizer' must be one of \('sgd', 'adam'\), got 'rmsprop'"):
        make_optimizer("rmsprop", 1e-3)
    with pytest.raises(ValueError, match=r"argument 'schedule' must be one of \('constant', 'cosine'\)"):
        make_optimizer("sgd", 1e-3, schedule="linear")


def test_pac_bayes_settings_are_typed_and_old_records_get_the_old_defaults():
    masks = PacBayesSettings.from_dict(_load("masks/pac-bayes-fashion-mlp300-masks-uniform-s0.9.json")["config"])
    assert masks.family is FamilyName.MASK and masks.prior is PriorKind.DATA and masks.arch is Arch.MLP
    assert masks.mask_prior is MaskPrior.UNIFORM and masks.sparsity == 0.9 and masks.alpha == 0.5
    dp = PacBayesSettings.from_dict(_load("pac-bayes-digits-dp-eps1.0.json")["config"])
    assert dp.prior is PriorKind.DP and dp.dp_epsilon == 1.0 and dp.family is FamilyName.GAUSSIAN
    old = PacBayesSettings.from_dict({"dataset": "digits", "arch": "cnn", "prior": "init"})   # before families
    assert old.family is FamilyName.GAUSSIAN and old.mask_prior is MaskPrior.MAGNITUDE and not old.binary
    with pytest.raises(ValueError, match=r"argument 'family' must be one of .*got 'maskk'"):
        PacBayesSettings.from_dict({"dataset": "digits", "arch": "mlp", "prior": "data", "family": "maskk"})


def test_a_record_with_an_unknown_family_is_skipped_by_name_not_read_as_gaussian(tmp_path, capsys):
    record = _load("pac-bayes-quickstart-digits.json")
    record["config"]["family"] = "maskk"
    write_record(tmp_path / "typo.json", record)
    write_record(tmp_path / "good.json", _load("pac-bayes-quickstart-digits.json"))
    assert main(["report", str(tmp_path), "--format", "csv"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "typo.json" in err[0] and "'family'" in err[0] and "'maskk'" in err[0], err


@pytest.mark.parametrize("name,summary", [("cmi-synthetic.json", SupersampleSummary),
                                          ("cmi-synthetic-loo.json", LooSummary),
                                          ("reproduce/fcmi-fashion.json", SupersampleSummary)])
def test_cmi_records_load_typed_and_round_trip_to_the_same_json(name, summary):
    data = _load(name)
    rec = CMIRecord.from_dict(data)
    assert all(isinstance(r, CMIRunResult) and isinstance(r.result.summary, summary) for r in rec.results)
    assert [r.to_dict() for r in rec.results] == data["results"]          # schema unchanged
    assert rec.loo is (summary is LooSummary) and rec.dataset == data["config"]["dataset"]
    assert rec.seconds == data["timings"]["total_s"]


def test_langevin_records_load_typed_and_round_trip_to_the_same_json():
    data = _load("langevin/mnist-5k-4v9-n400.json")
    rec = LangevinRecord.from_dict(data)
    assert all(isinstance(c, Checkpoint) for c in rec.checkpoints)
    assert isinstance(rec.checkpoints[0]["negrea_loo"], IterativeBound)
    assert [c.to_dict() for c in rec.checkpoints] == data["results"]
    assert (rec.pool, rec.net, rec.n, rec.k1, rec.k2) == ("mnist-5k-4v9", "mlp-100", 400, 5, 8)


def test_summary_texts_name_a_malformed_entry_instead_of_a_traceback():
    cmi = _load("cmi-synthetic.json")
    cmi["results"][1]["bounds"] = [1]
    with pytest.raises(ValueError, match=r"result entry 1: 'bounds' must be an object"):
        cmi_text(cmi, Path("out"), "table")
    lang = _load("langevin/mnist-5k-4v9-n400.json")
    del lang["results"][0]["gap"]
    with pytest.raises(ValueError, match=r"result entry 0: missing key 'gap'"):
        langevin_text(lang, 5, "langevin", Path("out"), "table")


def test_summary_texts_of_committed_records_keep_their_numbers():
    text = cmi_text(_load("cmi-synthetic.json"), Path("out"), "csv").splitlines()
    assert text[0] == "n,train_error,test_error,gap,fcmi,ecmi,ldcmi,binary_kl,interpolating,fast_rate"
    assert text[1].startswith("5,0.0000,0.1093,0.1093,0.3191,")
    lang = langevin_text(_load("langevin/mnist-5k-4v9-n400.json"), 5, "langevin", Path("out"), "csv").splitlines()
    assert lang[0] == "step,beta,train_error,test_error,gap,haghifam_ld,negrea_loo"
    assert lang[1] == "50,1000,0.0474,0.0670,0.0196,0.2152,0.1804"     # negrea_loo pooled before the root


#: Reads of a record's config by key, or string comparisons of its names, in the modules that
#: take typed records (the boundary readers live in experiments/cmi_results.py and results.py).
_KEY_READS = re.compile(r"\bcfg\b|config\.get\(|config\[|\[\"(family|prior|arch|mask_prior|loo)\"\]")


@pytest.mark.parametrize("path", ["experiments/report.py", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "paper_figures").glob("fig_*.py"))])
def test_report_and_figures_read_typed_fields_not_config_keys(path):
    hits = [line.strip() for line in (ROOT / path).read_text().splitlines() if _KEY_READS.search(line)]
    assert not hits, hits


def test_report_rows_of_committed_records_are_unchanged_by_the_typed_reads():
    rows = rows_from_record(_load("masks/pac-bayes-fashion-mlp300-masks-uniform-s0.9.json"))
    assert rows[0]["prior"] == "data (alpha 0.5), Bernoulli masks (uniform keep 0.1, data-free)"
    assert [r["bound"] for r in rows] == ["quad, stochastic masks (E sparsity 0.898)",
                                          "prior network, held-out (test-set bound)",
                                          "magnitude mask, deterministic (sparsity 0.900)",
                                          "thresholded mask, deterministic (sparsity 0.999)"]
    (dp,) = rows_from_record(_load("pac-bayes-digits-dp-eps1.0.json"))
    assert dp["prior"] == "dp (epsilon 1.0, all data)" and dp["kind"].startswith("certificate if SGLD")
    lang = rows_from_record(_load("langevin/mnist-5k-4v9-n400.json"))
    assert (lang[0]["dataset"], lang[0]["model"], lang[0]["bound"], lang[0]["n"]) == (
        "mnist-5k-4v9", "mlp-100", "haghifam_ld (step 50)", 400)


# ---------------------------------------------------------------------------------------
# 2. genbounds report: filters, the source of each row, groups by n, lines that fit


def _csv(capsys, *args: str) -> list[dict]:
    import csv
    import io
    assert main(["report", *args, "--format", "csv"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


HELD_OUT = "prior network, held-out (test-set bound)"


def test_report_filters_are_anded_and_match_the_printed_cell(capsys):
    rows = _csv(capsys, str(COMMITTED), "--filter", "dataset=fashion-mnist", "--filter", f"bound={HELD_OUT}")
    assert len(rows) == 16 and {(r["dataset"], r["bound"], r["n"]) for r in rows} == {("fashion-mnist", HELD_OUT,
                                                                                         "30000")}
    assert sorted(r["certificate"] for r in rows)[:2] == ["0.0821", "0.0915"]        # rounded up
    every = _csv(capsys, str(COMMITTED))
    exact = [r for r in every if r["dataset"] == "fashion-mnist"]
    glob = [r for r in every if r["dataset"].startswith("fashion-mnist")]
    assert 0 < len(exact) < len(glob) < len(every)
    assert _csv(capsys, str(COMMITTED), "--filter", "dataset=fashion-mnist") == exact     # not -binary, -2v4
    assert _csv(capsys, str(COMMITTED), "--filter", "dataset=fashion-mnist*") == glob     # a glob


@pytest.mark.parametrize("flag,needle", [("colour=red", "unknown field 'colour'"), ("dataset", "KEY=VALUE"),
                                         ("kind=heldout", "no row has kind 'heldout'")])
def test_report_filter_errors_are_one_line_naming_the_flag(capsys, flag, needle):
    assert main(["report", str(COMMITTED), "--filter", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert "--filter" in err and needle in err and "\n" not in err and "Traceback" not in err, err
    if flag.startswith("kind"):
        assert ("'certificate', 'certificate if SGLD's privacy approximation holds', 'certificate if the algorithm "
                "always reaches training error 0', 'estimate'") in err      # the stored records' kinds, sorted


def test_every_report_row_names_its_record_file(tmp_path, capsys):
    rows = _csv(capsys, str(COMMITTED), "--filter", "source=masks/*")
    assert len(rows) == 24 and {r["source"] for r in rows} == {
        f"masks/pac-bayes-fashion-mlp300-masks-{s}.json" for s in ("s0.5", "s0.7", "s0.8", "s0.9", "s0.95",
                                                                      "uniform-s0.9")}
    one = _csv(capsys, str(COMMITTED / "pac-bayes-digits-dp-eps1.0.json"))
    assert [r["source"] for r in one] == ["pac-bayes-digits-dp-eps1.0.json"]


def _at_n(recorded: dict, n: int) -> dict:
    """A record's DP-prior certificate recomputed at another bound-set size (a record whose n alone was edited is
    refused when read)."""
    c = Certificate.from_dict(recorded)
    dp = c.details["dp_prior"]
    return pac_bayes_certificate(c.bound, c.emp_risk, c.kl, n, c.delta_parts["pac_bayes"], mc_samples=c.mc_samples,
                                 mc_delta=c.delta_parts["monte_carlo"], dp_epsilon=dp["epsilon"], dp_mechanism=dp,
                                 details={k: v for k, v in c.details.items()
                                          if k not in ("dp_prior", "delta_effective")}).to_dict()


def test_grouping_never_averages_rows_of_different_n(tmp_path, capsys):
    for name, n in (("a", 1000), ("b", 2000), ("c", 2000)):
        record = _load("pac-bayes-digits-dp-eps1.0.json")
        record["results"][0]["certificate"] = _at_n(record["results"][0]["certificate"], n)
        write_record(tmp_path / f"{name}.json", record)
    rows = _csv(capsys, str(tmp_path), "--group-by", "bound")
    assert [(r["n"], r["runs"]) for r in rows] == [("1000", "1"), ("2000", "2")]      # was one row, n 1666.6667


def test_default_report_fits_160_columns_and_shows_the_heldout_row_unchanged(capsys):
    assert main(["report", str(COMMITTED)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 160, max(lines, key=len)
    held = [line for line in lines if HELD_OUT in line]
    assert len(held) == 25      # every data-dependent PAC-Bayes record's baseline, on one line each
    first = _csv(capsys, str(COMMITTED), "--filter", f"bound={HELD_OUT}",
                 "--filter", "source=pac-bayes-quickstart-digits.json")
    assert [(r["n"], r["certificate"], r["kind"]) for r in first] == [("719", "0.0349", "certificate")]
    assert "masks/pac-bayes-fashion-mlp300-masks-s0.5.json" in out     # each row's record, stated above it
    assert main(["report", str(COMMITTED), "--format", "table", "--group-by", "dataset", "model", "prior",
                 "bound"]) == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) <= 160


# ---------------------------------------------------------------------------------------
# 3. Paper figures: legends beside the data, titles that say which run


def _drawn_figures(monkeypatch, module, inspect, layout: bool = True) -> int:
    """Draw every figure ``module.make`` makes from the committed records, laid out as ``save`` lays
    them out (``layout=False``: not laid out nor rendered, for what the figure holds rather than where),
    and hand each to ``inspect`` instead of writing it; returns how many there were."""
    import matplotlib.pyplot as plt

    from genbounds.experiments.records import load_records
    count = []

    def keep(fig, out_dir, name):
        if layout:
            fig.tight_layout()
            fig.canvas.draw()
        inspect(fig)
        plt.close(fig)
        count.append(name)
        return [Path(out_dir) / f"{name}.png"]

    monkeypatch.setattr(module, "save", keep)
    module.make([r for _, r in load_records([COMMITTED])[0]], Path("unused"))
    return len(count)


def _data_extents(ax) -> list:
    """Display-space boxes of everything drawn from data in ``ax``: each line's markers and points
    along its segments, each bar, each label."""
    from matplotlib.transforms import Bbox
    boxes = []
    for line in ax.lines:
        pts = ax.transData.transform(line.get_xydata())
        half = max(2.0, line.get_markersize() * ax.figure.dpi / 72 / 2)
        along = [a + t * (b - a) for a, b in zip(pts[:-1], pts[1:]) for t in np.linspace(0, 1, 20)]
        boxes += [Bbox([[x - half, y - half], [x + half, y + half]]) for x, y in [*pts, *along]]
    return boxes + [p.get_window_extent() for p in ax.patches] + [t.get_window_extent() for t in ax.texts]


@pytest.mark.parametrize("name", ["fig_role_of_data", "fig_objectives"])
def test_legends_cover_no_data_and_stay_in_the_figure(monkeypatch, name):
    import importlib
    module = importlib.import_module(f"genbounds.paper_figures.{name}")

    def check(fig):
        legends = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
        assert legends
        for ax, legend in legends:
            box = legend.get_window_extent()
            assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1), name  # not cut off
            clear = box.padded(0.1 * fig.dpi)                  # a tenth of an inch from any data
            covered = [b for b in _data_extents(ax) if b.overlaps(clear)]
            assert not covered, (name, len(covered))

    assert _drawn_figures(monkeypatch, module, check) >= 1


def test_training_curve_titles_name_dataset_model_prior_and_objectives(monkeypatch):
    from genbounds.paper_figures import fig_training_curves
    titles = []
    assert _drawn_figures(monkeypatch, fig_training_curves, lambda fig: titles.append(fig.get_suptitle()),
                          layout=False) == 30
    assert "digits, mlp-256-256, prior data (alpha 0.5), objectives quad, seeger, classic" in titles
    assert "fashion-mnist, mlp-300, prior dp (epsilon 0.1, all data), objective quad" in titles
    assert any(t.startswith("fashion-mnist, mlp-300, prior data (alpha 0.5), Bernoulli masks (magnitude, sparsity 0.9,")
               for t in titles)
    assert len(set(titles)) == 24             # was 7 distinct titles for these figures
