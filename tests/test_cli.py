"""The genbounds command line: bound calculator output and error handling."""

import json
import subprocess
import sys

import pytest

import genbounds.bounds as B
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


@pytest.mark.integration
def test_module_entry_point_exit_status():
    ok = subprocess.run([sys.executable, "-m", "genbounds", *ARGS, "--format", "json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["seeger"]["value"] > 0.16
    bad = subprocess.run([sys.executable, "-m", "genbounds", *ARGS, "--n", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--n" in bad.stderr
