"""Reporting layer: tables from records (formats, rounding up, vacuous marks, grouping),
malformed records, every figure from the committed records, and the notebook."""

import json
import re
import shutil
from pathlib import Path

import pytest

from genbounds.experiments.cli import main
from genbounds.experiments.records import new_record, write_record
from genbounds.experiments.report import REPORT_COLUMNS, format_number, group_rows, render, rows_from_record

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "paper_figures" / "results"


def _pb_record(values=(0.123401, 1.5), alpha=0.5):
    results = []
    for obj, v in zip(("quad", "classic"), values):
        results.append({"objective": obj, "test_error_stochastic": 0.05, "kl_over_n": 0.001, "history": [],
                        "certificate": {"value": v, "vacuous": v >= 1, "emp_risk": 0.04, "kl": 1.0,
                                        "n_bound": 1000, "n_prior": 1000, "details": {"arch": "mlp-8"}}})
    return new_record("pac-bayes", {"dataset": "digits", "arch": "mlp", "prior": "data", "alpha": alpha}, 0, results)


def test_format_number_rounds_bounds_up():
    assert format_number(0.123401, 4, upper=True) == "0.1235"
    assert format_number(0.123401, 4) == "0.1234"
    assert format_number(0.12, 4, upper=True) == "0.1200"
    assert format_number(True) == "yes" and format_number(None) == ""
    assert format_number(12345678.9, 4, upper=True) == "1.235E+7"


def test_cmi_bound_text_rounds_the_bound_up():
    from genbounds.estimators.supersample import CMIBound
    text = str(CMIBound("loss pair", 0.123401, "gap", 0.1, (0.123401,), (0.11, 0.130001)))
    assert text.startswith("0.1235 [0.1100, 0.1301]")


@pytest.mark.parametrize("fmt,needles", [
    ("markdown", ["| digits", "0.1235", " yes |"]),
    ("latex", [r"\toprule", r"\bottomrule", "0.1235", "mlp-8"]),
    ("csv", ["dataset,model,prior,bound,n", "0.1235", "yes"]),
    ("table", ["0.1235", "1.5000"]),
])
def test_tables_from_records(fmt, needles):
    rows = rows_from_record(_pb_record())
    assert rows[0]["certificate"] == 0.123401 and rows[1]["vacuous"] is True
    text = render(REPORT_COLUMNS, rows, fmt)
    for needle in needles:
        assert needle in text, (fmt, needle)
    assert "0.1234 " not in text       # never rounded down


def test_json_keeps_full_precision_and_grouping_averages():
    rows = rows_from_record(_pb_record()) + rows_from_record(_pb_record(values=(0.2, 0.3)))
    data = json.loads(render(REPORT_COLUMNS, rows, "json"))
    assert data[0]["certificate"] == 0.123401
    g = group_rows(rows, ["bound"])
    quad = next(r for r in g if r["bound"] == "quad")
    assert quad["runs"] == 2 and quad["certificate"] == pytest.approx((0.123401 + 0.2) / 2)
    classic = next(r for r in g if r["bound"] == "classic")
    assert classic["vacuous"] is True


def test_cli_report_skips_malformed_with_one_line_each(tmp_path, capsys):
    write_record(tmp_path / "a.json", _pb_record())
    (tmp_path / "b.json").write_text("{broken")
    (tmp_path / "c.json").write_text(json.dumps({"schema": "genbounds.record/1", "kind": "pac-bayes"}))
    assert main(["report", str(tmp_path), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 3 and "0.1235" in captured.out   # header + 2 rows
    err = [line for line in captured.err.splitlines() if line]
    assert len(err) == 2 and all(line.startswith("genbounds: skipped") for line in err)
    assert main(["report", str(tmp_path / "b.json")]) == 2
    assert main(["report", str(tmp_path), "--group-by", "nonsense"]) == 2


def test_calculator_record_round_trip(tmp_path, capsys):
    path = tmp_path / "calc.json"
    assert main(["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5000", "--n", "55000", "--save", str(path)]) == 0
    capsys.readouterr()
    assert main(["report", str(path), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "seeger" in out and "0.1618" in out


def test_every_figure_from_committed_records(tmp_path):
    from genbounds.paper_figures import FIGURES, make_all
    files, notes = make_all(COMMITTED, tmp_path)
    assert not [n for n in notes if "no suitable records" in n], notes
    pngs = [f for f in files if f.suffix == ".png"]
    assert {f.stem.split("_")[0] for f in pngs} >= {"role", "objectives", "cmi", "training", "langevin", "masks"}
    assert len({f.suffix for f in files}) == 2 and len(FIGURES) == 6
    for f in files:
        assert f.stat().st_size > 5000, f


def test_figures_cli_and_a_single_script(tmp_path, capsys):
    assert main(["figures", str(COMMITTED), str(tmp_path / "all")]) == 0
    assert (tmp_path / "all" / "role_of_data.png").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["figures", str(empty), str(tmp_path / "none")]) == 2


def _run_notebook(name, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    src = ROOT / "experiments" / "notebooks" / name
    nb = nbformat.read(shutil.copy(src, tmp_path / name), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


def test_notebook_runs_top_to_bottom(tmp_path):
    outputs = _run_notebook("explore.ipynb", tmp_path)
    assert [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]


def test_certify_your_model_notebook(tmp_path):
    """The Flax and plain-JAX examples: data-free prior warned about, data-dependent nonvacuous."""
    text = "".join(o.get("text", "") for o in _run_notebook("certify_your_model.ipynb", tmp_path))
    assert "warning: certificate" in text and "KL/n" in text
    values = [float(v) for v in re.findall(r"certificate (0\.\d+)", text)]
    assert len(values) >= 3 and values[0] > 0.5 and max(values[-2:]) < 0.2   # data-free; Flax and JAX with data
