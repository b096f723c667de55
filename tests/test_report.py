"""Reporting layer: tables from records (formats, rounding up, vacuous marks, grouping),
malformed records, every figure from the committed records, and the notebook."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from cmi_cases import memorising

from genbounds.bounds import format_upper, pac_bayes_certificate
from genbounds.cli import main
from genbounds.estimators.supersample import bounds_from_runs
from genbounds.experiments.records import new_record, write_record
from genbounds.experiments.report import REPORT_COLUMNS, format_number, group_rows, render, rows_from_record

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "paper_figures" / "results"


#: (empirical risk, KL) of the two objectives' certificates in :func:`_pb_record`: 0.0742305... (printed 0.0743
#: rounded up, where rounding to nearest would give 0.0742) and 1.0 (vacuous); the second pair, 0.2087 and 0.2643.
FIRST, SECOND = ((0.04, 1.0), (0.9, 1e5)), ((0.15, 2.0), (0.2, 2.0))


def _seeger(emp_risk: float, kl: float) -> dict:
    """A real certificate (records are recomputed when read): n 1000, delta 0.025 + 0.01 Monte Carlo."""
    return pac_bayes_certificate("seeger", emp_risk, kl, 1000, 0.025, mc_samples=100000, mc_delta=0.01, n_prior=1000,
                                 details={"arch": "mlp-8"}).to_dict()


def _pb_record(inputs=FIRST, alpha=0.5):
    results = []
    for obj, (emp_risk, kl) in zip(("quad", "classic"), inputs):
        results.append({"objective": obj, "test_error_stochastic": 0.05, "kl_over_n": 0.001, "history": [],
                        "mc": {"zero_one": 0.04, "cross_entropy": 0.1, "n_samples": 1000}, "test_error_mean": 0.05,
                        "prior_test_error": 0.06, "train_seconds": 0.0, "certify_seconds": 0.0,
                        "certificate": _seeger(emp_risk, kl)})
    return new_record("pac-bayes", {"dataset": "digits", "arch": "mlp", "prior": "data", "alpha": alpha}, 0, results)


def _value(inputs=FIRST, i=0) -> float:
    return _seeger(*inputs[i])["value"]


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
    ("markdown", ["| digits", "0.0743", " yes |"]),
    ("latex", [r"\toprule", r"\bottomrule", "0.0743", "mlp-8"]),
    ("csv", ["dataset,model,prior,bound,n", "0.0743", "yes"]),
    ("table", ["0.0743", "1.0000"]),
])
def test_tables_from_records(fmt, needles):
    rows = rows_from_record(_pb_record())
    assert 0.07423 < rows[0]["certificate"] == _value() < 0.07425 and rows[1]["vacuous"] is True
    text = render(REPORT_COLUMNS, rows, fmt)
    for needle in needles:
        assert needle in text, (fmt, needle)
    assert "0.0742" not in text       # never rounded down


def test_report_has_a_kind_column():
    rng = np.random.default_rng(4)
    masks = rng.integers(0, 2, (2, 20, 10))
    labels = rng.integers(0, 2, (2, 10, 2))
    res = bounds_from_runs(masks, memorising(masks, labels), labels).to_dict()
    summary = res.pop("summary")
    cmi = new_record("cmi", {"dataset": "synthetic", "arch": "linear"}, 0,
                     [{"n": 10, "summary": summary, "bounds": res, "runs_trained": 0, "seconds": 0.0}])
    calc = new_record("calculator", {}, None, [pac_bayes_certificate("seeger", 0.03, 50.0, 1000, 0.025).to_dict()])
    rows = rows_from_record(cmi) + rows_from_record(calc)
    assert {r["kind"] for r in rows[:-1]} == {"estimate"} and rows[-1]["kind"] == "certificate"
    text = render(REPORT_COLUMNS, rows, "markdown")
    assert "| kind" in text and "estimate" in text and "certificate" in text


def test_json_keeps_full_precision_and_grouping_averages():
    rows = rows_from_record(_pb_record()) + rows_from_record(_pb_record(SECOND))
    data = json.loads(render(REPORT_COLUMNS, rows, "json"))
    assert data[0]["certificate"] == _value()
    g = group_rows(rows, ["bound"])
    quad = next(r for r in g if r["bound"] == "quad")
    assert quad["runs"] == 2 and quad["certificate"] == pytest.approx((_value() + _value(SECOND)) / 2)
    classic = next(r for r in g if r["bound"] == "classic")
    assert classic["vacuous"] is True


def test_cli_report_skips_malformed_with_one_line_each(tmp_path, capsys):
    write_record(tmp_path / "a.json", _pb_record())
    (tmp_path / "b.json").write_text("{broken")
    (tmp_path / "c.json").write_text(json.dumps({"schema": "genbounds.record/1", "kind": "pac-bayes"}))
    assert main(["report", str(tmp_path), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 3 and "0.0743" in captured.out   # header + 2 rows
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


@pytest.mark.integration
def test_every_figure_from_committed_records(tmp_path):
    from genbounds.paper_figures import FIGURES, make_all
    files, notes = make_all(COMMITTED, tmp_path)
    assert not [n for n in notes if "no suitable records" in n], notes
    pngs = [f for f in files if f.suffix == ".png"]
    assert {f.stem.split("_")[0] for f in pngs} >= {"role", "objectives", "cmi", "training", "langevin", "masks"}
    assert len({f.suffix for f in files}) == 2 and len(FIGURES) == 6
    for f in files:
        assert f.stat().st_size > 5000, f


@pytest.mark.integration
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


@pytest.mark.integration
def test_notebook_runs_top_to_bottom(tmp_path):
    outputs = _run_notebook("explore.ipynb", tmp_path)
    assert [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]


@pytest.mark.integration
def test_certify_your_model_notebook(tmp_path):
    """The Flax and plain-JAX examples: data-free prior warned about, data-dependent nonvacuous."""
    text = "".join(o.get("text", "") for o in _run_notebook("certify_your_model.ipynb", tmp_path))
    assert "warning: certificate" in text and "KL/n" in text
    values = [float(v) for v in re.findall(r"certificate ([01]\.\d+)", text)]
    assert len(values) >= 3 and values[0] > 0.5 and max(values[-2:]) < 0.2   # data-free; Flax and JAX with data


# ---------------------------------------------------------------------------------------
# What a row is: grouped means, Langevin rows, DP rows


def _langevin_record(train_error=0.6, gap=0.5):
    bound = {"value": gap, "interval": [gap, gap], "per_draw": [], "target": "gap", "kind": "estimate",
             "vacuous": gap >= 1, "pooled": True}
    return new_record("langevin", {"dataset": "mnist-5k", "n": 400}, 0,
                      [{"step": 50, "eta": 0.05, "beta": 1000.0, "train_error": train_error, "test_error": 0.3,
                        "gap": 0.2, "gap_interval": [0.1, 0.3], "bounds": {"negrea_loo": bound}}])


def test_grouped_rows_say_they_are_means_never_certificates(tmp_path, capsys):
    rows = rows_from_record(_pb_record()) + rows_from_record(_pb_record(SECOND))
    g = group_rows(rows, ["bound"])
    assert [r["kind"] for r in g] == ["mean of 2 certificates", "mean of 2 certificates"]
    assert group_rows(rows[:1], ["bound"])[0]["kind"] == "mean of 1 certificate"
    write_record(tmp_path / "a.json", _pb_record())
    write_record(tmp_path / "b.json", _pb_record(SECOND))
    assert main(["report", str(tmp_path), "--group-by", "bound", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(",mean of 2 certificates," in line for line in out[1:]), out
    assert main(["report", str(tmp_path), "--group-by", "bound"]) == 0
    assert "mean over the rows of its group" in capsys.readouterr().out     # the note under the table


def test_groups_mixing_bounds_are_refused(tmp_path, capsys):
    rows = rows_from_record(_pb_record())                 # objectives quad and classic, one dataset
    with pytest.raises(ValueError, match=r"'--group-by'.*'classic', 'quad'.*add 'bound'"):
        group_rows(rows, ["dataset"])
    write_record(tmp_path / "a.json", _pb_record())
    assert main(["report", str(tmp_path), "--group-by", "dataset"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genbounds: error:") and "'--group-by'" in err and "\n" not in err


def test_groups_mixing_kinds_say_so():
    dp = _pb_record()
    dp["config"].update(prior="dp", dp_epsilon=1.0)
    for r, (emp_risk, kl) in zip(dp["results"], FIRST, strict=True):
        r["certificate"] = pac_bayes_certificate(
            "seeger", emp_risk, kl, 1000, 0.025, mc_samples=100000, mc_delta=0.01, dp_epsilon=1.0,
            dp_mechanism={"mechanism": "Gibbs distribution sampled by SGLD", "privacy": "approximate: SGLD"}).to_dict()
    rows = rows_from_record(_pb_record()) + rows_from_record(dp)
    quad = next(r for r in group_rows(rows, ["bound"]) if r["bound"] == "quad")
    assert quad["kind"] == ("mean of 2 rows of different kinds (certificate, "
                            "certificate if SGLD's privacy approximation holds)")


def test_langevin_row_is_vacuous_when_train_error_plus_gap_bound_reaches_one():
    (row,) = rows_from_record(_langevin_record(0.6, 0.5))
    assert row["certificate"] >= 1.1 and row["vacuous"] is True
    (row,) = rows_from_record(_langevin_record(0.1, 0.5))
    assert 0.6 <= row["certificate"] <= 0.6 + 1e-15 and row["vacuous"] is False


def test_dp_rows_kl_over_n_includes_the_dp_adjustment():
    record = json.loads((COMMITTED / "pac-bayes-digits-dp-eps1.0.json").read_text())
    c = record["results"][0]["certificate"]
    (row,) = rows_from_record(record)
    assert c["details"]["dp_prior"]["adjustment_nats"] == pytest.approx(780.1005, abs=1e-4)
    assert row["complexity"] == pytest.approx((8.258958 + 780.100514) / 1438, rel=1e-6)     # 0.54822, not 0.00574
    plain = json.loads((COMMITTED / "pac-bayes-digits-alpha0.5.json").read_text())
    c = plain["results"][0]["certificate"]
    assert rows_from_record(plain)[0]["complexity"] == c["kl"] / c["n_bound"]          # no DP prior: KL/n


# ---------------------------------------------------------------------------------------
# Malformed result entries: one line per record, the others reported


def _cmi_record():
    bound = {"value": 0.2, "applicable": True, "mi": "loss pair", "target": "gap", "kind": "estimate",
             "vacuous": False}
    return new_record("cmi", {"dataset": "digits", "arch": "mlp"}, 0, [{
        "n": 75, "bounds": {"ecmi": bound}, "runs_trained": 0, "seconds": 0.0,
        "summary": {"k1": 1, "k2": 1, "n": 75, "num_classes": 2, "train_error": 0.0, "test_error": 0.05, "gap": 0.05,
                    "test_error_interval": [0.04, 0.06], "mean_mi": {"loss_pair": 0.01}, "miller_madow": False}}])


def _broken(make, path, value):
    """A record from ``make()`` with the entry at ``path`` (keys into the record) replaced by
    ``value``, or deleted when ``value`` is ``KeyError``."""
    record = make()
    *head, last = path
    node = record
    for key in head:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return record


MALFORMED = {
    "missing_n_bound": (_pb_record, ("results", 0, "certificate", "n_bound"), KeyError, "'n_bound'"),
    "missing_certificate": (_pb_record, ("results", 1, "certificate"), KeyError, "'certificate'"),
    "string_value": (_pb_record, ("results", 0, "certificate", "value"), "0.1", "'value'"),
    "none_emp_risk": (_pb_record, ("results", 0, "certificate", "emp_risk"), None, "'emp_risk'"),
    "zero_n": (_pb_record, ("results", 0, "certificate", "n_bound"), 0, "'n_bound'"),
    "none_certificate": (_pb_record, ("results", 0, "certificate"), None, "certificate"),
    "entry_not_object": (_pb_record, ("results", 0), 3, "result entry 0"),
    "none_details": (_pb_record, ("results", 0, "certificate", "details"), None, "details"),
    "cmi_missing_summary": (_cmi_record, ("results", 0, "summary"), KeyError, "'summary'"),
    "cmi_none_mi": (_cmi_record, ("results", 0, "summary", "mean_mi"), None, "mean_mi"),
    "langevin_none_train_error": (_langevin_record, ("results", 0, "train_error"), None, "'train_error'"),
    "langevin_bounds_list": (_langevin_record, ("results", 0, "bounds"), [1], "bounds"),
    "calculator_zero_n": (lambda: new_record("calculator", {}, None, [{
        "bound": "seeger", "n_bound": 1000, "emp_risk": 0.03, "kl": 5.0, "value": 0.1, "vacuous": False,
        "delta": 0.025, "delta_parts": {"pac_bayes": 0.025}}]),
        ("results", 0, "n_bound"), 0, "'n_bound'"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_report_names_each_malformed_record_and_reports_the_rest(tmp_path, capsys, name):
    make, path, value, needle = MALFORMED[name]
    write_record(tmp_path / "good.json", _pb_record())
    write_record(tmp_path / f"{name}.json", _broken(make, path, value))
    assert main(["report", str(tmp_path), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 3 and "0.0743" in captured.out     # header + the good record's 2 rows
    err = [line for line in captured.err.splitlines() if line]
    assert len(err) == 1, err
    assert err[0].startswith("genbounds: skipped") and f"{name}.json" in err[0] and needle in err[0], err[0]
    assert "Traceback" not in captured.err


def test_report_of_only_malformed_records_is_one_error_line(tmp_path, capsys):
    write_record(tmp_path / "bad.json", _broken(_pb_record, ("results", 0, "certificate", "n_bound"), 0))
    assert main(["report", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 2 and "bad.json" in err[0] and err[1].startswith("genbounds: error:")


@pytest.mark.parametrize("digits", ["40", "-1", "x"])
def test_report_digits_out_of_range_is_one_line_exit_2(tmp_path, capsys, digits):
    write_record(tmp_path / "a.json", _pb_record())
    assert main(["report", str(tmp_path), "--digits", digits]) == 2
    err = capsys.readouterr().err.strip()
    assert "--digits" in err and "\n" not in err and "Traceback" not in err
    assert main(["report", str(tmp_path), "--digits", "12", "--format", "csv"]) == 0
    assert format_upper(_value(), 12) in capsys.readouterr().out       # 12 digits, the last rounded up
