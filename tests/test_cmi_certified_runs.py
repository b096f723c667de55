"""``genbounds cmi --certify`` end to end at a small size: the record holds the certificate (kind, target, delta
parts), the held-out baseline, the plug-in estimates beside it; the report marks the certificate rows; a resume
recomputes the same record; designs that break the assumptions are refused in one line (exit 2)."""

import json
from fractions import Fraction

import numpy as np
import pytest

from genbounds.cli import build_parser, main
from genbounds.estimators.supersample import certified as E
from genbounds.experiments.cmi_results import CMIRecord
from genbounds.experiments.cmi_runner import CMIConfig
from genbounds.experiments.config import from_args
from genbounds.experiments.report import rows_from_record

pytestmark = pytest.mark.integration

SMALL = ["cmi", "--certify", "--delta", "0.05", "--dataset", "gaussian", "--arch", "linear", "--n", "4",
         "--k1", "100", "--k2", "200", "--epochs", "20", "--no-progress"]


def test_certified_cmi_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SMALL, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    log, printed = captured.err, captured.out
    assert "best case of this design" in log and "needs about k1 =" in log      # said before it starts
    assert "certificate of the expected risk of the algorithm at n" in log
    assert "CERTIFICATES" in printed and E.TARGET in printed
    record = json.loads((out / "record.json").read_text())
    entry = record["results"][0]
    cert = entry["certified"]
    assert cert["kind"] == "certificate" and cert["target"] == E.TARGET
    c = cert["certificate"]
    assert c["bound"] == E.CMI_BOUND and c["delta"] == 0.05
    assert sum(map(Fraction, c["delta_parts"].values())) <= Fraction(0.05)
    assert c["details"]["k1"] == 100 and c["details"]["k2"] == 200 and c["details"]["sampling"] == "fresh"
    # Never below the plug-in estimate of the same form, nor the measured test error (a certificate of it).
    form = c["details"]["form"]
    assert c["value"] >= entry["bounds"][form]["value"]
    assert cert["held_out"]["value"] >= entry["summary"]["test_error"]
    # Typed read and write give the record's entry back.
    rec = CMIRecord.from_dict(record)
    assert rec.results[0].to_dict() == entry
    rows = [r for r in rows_from_record(record) if r["kind"] == "certificate"]
    assert {r["bound"].split(",")[0] for r in rows} == {"certified CMI", "held-out mean"}
    assert all(E.TARGET in r["bound"] for r in rows)
    # The runs file carries the supersamples' indices: the certificate can be recomputed from it.
    z = np.load(out / "runs_n4.npz")
    again = E.certify_runs(z["masks"], z["predictions"], z["labels"], z["indices"], delta=0.05,
                           details={"seed": 0, "epochs": 20})
    assert again.certificate.value == c["value"]
    # A resume trains nothing and writes the same certificate.
    assert main([*SMALL, "--out", str(out)]) == 0
    assert json.loads((out / "record.json").read_text())["results"][0]["certified"] == cert


def test_certify_refuses_too_few_runs_before_training(tmp_path, capsys):
    assert main([*SMALL[:-5], "--k1", "5", "--k2", "30", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]        # the error: one line, after the data set's
    assert err.startswith("genbounds: error:") and "too few" in err and "needs at least k1 =" in err
    assert not (tmp_path / "x" / "record.json").exists()


def test_certify_refuses_more_fresh_supersamples_than_the_pool_holds(tmp_path, capsys):
    assert main(["cmi", "--certify", "--dataset", "digits", "--arch", "linear", "--n", "20", "--k1", "300",
                 "--k2", "600", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genbounds: error:") and "fresh supersamples" in err and "--sampling pool" in err


def test_certify_refuses_the_stratified_pool_with_fresh_supersamples(tmp_path, capsys):
    assert main(["cmi", "--certify", "--dataset", "synthetic", "--arch", "linear", "--n", "4", "--k1", "100",
                 "--k2", "200", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genbounds: error: argument 'dataset'") and "--dataset gaussian" in err, err
    assert "--sampling pool" in err and not (tmp_path / "x" / "record.json").exists()


def test_certified_cmi_command_with_jensen_per_pair(tmp_path, capsys):
    """--per-pair jensen: the record's certificate uses no boxes (pair slack 0), recomputes from the runs file, and
    is at most the boxes' certificate of the same runs."""
    out = tmp_path / "run"
    assert main([*SMALL, "--per-pair", "jensen", "--out", str(out)]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["per_pair"] == "jensen" and record["config"]["dataset"] == "gaussian"
    c = record["results"][0]["certified"]["certificate"]
    assert c["details"]["confidence_set"] == "jensen" and c["details"]["pair_slack"] == 0.0
    z = np.load(out / "runs_n4.npz")
    again = E.certify_runs(z["masks"], z["predictions"], z["labels"], z["indices"], delta=0.05, method="jensen",
                           details={"seed": 0, "epochs": 20})
    assert again.certificate.value == c["value"]
    boxes = E.certify_runs(z["masks"], z["predictions"], z["labels"], z["indices"], delta=0.05)
    assert c["value"] <= boxes.certificate.value
    assert CMIRecord.from_dict(record).results[0].to_dict() == record["results"][0]


def test_certify_defaults_size_the_design():
    cfg = CMIConfig(certify=True, n=(20,))
    assert E.certified_floor(20, cfg.k1, cfg.k2, cfg.delta) <= cfg.target_width
    parser = build_parser()
    flags = from_args(CMIConfig(), parser.parse_args(["cmi", "--certify", "--n", "20"]))
    assert (flags.k1, flags.k2) == (cfg.k1, cfg.k2)
    assert (from_args(CMIConfig(), parser.parse_args(["cmi"])).k1, CMIConfig().k2) == (5, 30)
    assert (CMIConfig().k1, CMIConfig().k2) == (5, 30)
    assert "certify" not in CMIConfig().to_dict()            # uncertified records are the bytes they were
    assert "per_pair" not in CMIConfig(certify=True, n=(20,)).to_dict()
    assert "gaussian_margin" not in CMIConfig().to_dict()
    assert "gaussian_margin" in CMIConfig(dataset="gaussian").to_dict()
    jensen = CMIConfig(certify=True, n=(20,), per_pair="jensen")
    assert jensen.k2 == E.JENSEN_K2 and E.certified_floor(20, jensen.k1, jensen.k2, 0.05, "jensen") <= 0.2
