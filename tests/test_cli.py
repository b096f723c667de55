"""The genbounds command line: bound calculator output and error handling."""

import json
import math
import subprocess
import sys

import pytest

import genbounds.bounds as B
from genbounds.bounds import pac_bayes_certificate, union_minimum
from genbounds.cli import main

ARGS = ["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5000", "--n", "55000", "--delta", "0.025"]


def test_table_lists_every_bound(capsys):
    assert main(ARGS + ["--mc-samples", "1000", "--mc-delta", "0.01"]) == 0
    out = capsys.readouterr().out
    for name in ("seeger", "catoni", "quad", "lambda", "mcallester"):
        assert name in out
    assert "1 - 0.035" in out and "certified <= 0.050969" in out


def test_json_is_keyed_by_bound_with_values_rounded_up(capsys):
    assert main(ARGS + ["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"seeger", "catoni", "quad", "lambda", "mcallester"}
    for name, rec in data.items():
        assert rec["vacuous"] is False
        raw = float(B.PAC_BAYES_BOUNDS[name](0.03, 5000, 55000, 0.025))
        assert raw < rec["value"] <= raw * (1 + 1e-14)
        B.Certificate.from_dict(rec)


@pytest.mark.parametrize("fmt,marker", [("csv", "bound,value"), ("latex", r"\toprule"), ("markdown", "|---")])
def test_other_formats(capsys, fmt, marker):
    assert main(ARGS + ["--format", fmt]) == 0
    out = capsys.readouterr().out
    assert marker in out
    # Seeger 0.16178430... printed rounded up to 4 digits.
    assert "0.1618" in out


@pytest.mark.parametrize(
    "extra,needle",
    [(["--emp-risk", "1.5"], "'emp_risk'"), (["--kl", "-1"], "'kl'"), (["--delta", "1"], "'delta'"),
     (["--emp-risk", "nan"], "'emp_risk'"), (["--mc-delta", "0.01"], "--mc-samples")],
)
def test_bad_input_is_one_line_exit_2(capsys, extra, needle):
    assert main(ARGS + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genbounds: error:") and needle in err and "\n" not in err


@pytest.mark.parametrize("argv,needle", [
    (["--delta", "0.6", "--mc-samples", "100", "--mc-delta", "0.6"], "'delta' + 'mc_delta' sum to 1.2"),
    (["--digits", "-2"], "--digits"),
])
def test_calculator_input_errors_are_one_line(capsys, argv, needle):
    base = ["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5000", "--n", "55000"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and err.startswith("genbounds")


def test_calculator_says_the_best_row_needs_a_union_bound(capsys):
    assert main(["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5000", "--n", "55000"]) == 0
    out = capsys.readouterr().out
    assert "each holds on its own" in out and "union bound" in out
    honest = union_minimum([pac_bayes_certificate(b, 0.03, 5000.0, 55000, 0.025) for b in ("seeger", "catoni")])
    assert f"honest minimum is {math.ceil(honest.value * 1e4) / 1e4:.4f}" in out


def test_headers_never_round_delta(capsys):
    assert main(["bound", "pac-bayes", "--emp-risk", "0.03", "--kl", "5", "--n", "55", "--delta", "0.99999999"]) == 0
    out = capsys.readouterr().out
    assert "1 - 0.99999999" in out and "1 - 1 " not in out


@pytest.mark.integration
def test_module_entry_point_exit_status():
    ok = subprocess.run([sys.executable, "-m", "genbounds", *ARGS, "--format", "json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["seeger"]["value"] > 0.16
    bad = subprocess.run([sys.executable, "-m", "genbounds", *ARGS, "--n", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--n" in bad.stderr
