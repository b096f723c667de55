"""End-to-end ``genbounds compress`` on the bundled digits at a small size (trains: integration lane)."""

import json
import pickle

import jax
import numpy as np
import pytest

from genbounds.bounds import Certificate
from genbounds.bounds.compression import CodeLength, compression_certificate
from genbounds.cli import main
from genbounds.estimators import nets
from genbounds.experiments.compress_runner import prior_indices
from genbounds.experiments.records import load_record
from genbounds.experiments.report import rows_from_record

pytestmark = pytest.mark.integration

SMALL = ["--dataset", "digits", "--d", "40", "80", "--levels", "5", "9", "--epochs", "4", "--finetune-epochs", "1",
         "--no-progress"]


def test_compress_cli_digits_certifies_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["compress", *SMALL, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "best: compressed d=" in text and "every setting of the grid of 4 paid for" in text
    record = load_record(out / "record.json")
    assert record["kind"] == "certificate"
    s = record["compression"]
    assert s["search"] == {"d": 2, "levels": 2, "settings_looked_at": 1} and s["searched"] == 4
    assert len(record["results"]) == 4
    values = [r["certificate"]["value"] for r in record["results"]]
    assert values == sorted(values)                       # best first
    for r in record["results"]:
        cert = Certificate.from_dict(r["certificate"])
        code = CodeLength.from_dict(cert.details["code"])
        assert code.searched == 4
        assert cert.n_bound == 1438 and cert.n_prior == 0     # data-free: the whole training set
        again = compression_certificate(cert.details["errors"], cert.n_bound, code, cert.delta)
        assert again.value == cert.value
        assert 0.0 <= r["test_error"] <= 1.0
    rows = rows_from_record(record)
    assert len(rows) == 4 and all(row["kind"] == "certificate" for row in rows)
    # the same command resumes from its checkpoints and writes the same certificates
    assert main(["compress", *SMALL, "--out", str(out)]) == 0
    again = load_record(out / "record.json")
    assert [r["certificate"]["value"] for r in again["results"]] == values


def test_compress_cli_data_dependent_has_the_heldout_baseline(tmp_path, capsys):
    out = tmp_path / "dd"
    assert main(["compress", "--dataset", "digits", "--theta0", "data", "--alpha", "0.5", "--theta0-epochs", "5",
                 "--d", "20", "--levels", "5", "--epochs", "3", "--train-on", "bound", "--no-progress",
                 "--out", str(out), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    s = record["compression"]
    prior = prior_indices(record)
    assert prior.size == np.unique(prior).size and prior.max() < 1438
    cert = Certificate.from_dict(record["results"][0]["certificate"])
    assert cert.n_prior == prior.size == 719 and cert.n_bound == 1438 - 719
    held = [r for r in record["results"] if r["certificate"]["bound"] == "test_set"]
    assert len(held) == 1 and held[0]["certificate"]["n_bound"] == cert.n_bound
    assert s["heldout_baseline"]["beaten"] == (s["best"]["certificate"] < s["heldout_baseline"]["certificate"])


def test_compress_cli_reinit_head_keeps_theta0s_features_and_resets_its_classifier(tmp_path, capsys):
    out = tmp_path / "head"
    assert main(["compress", "--dataset", "digits", "--theta0", "data", "--alpha", "0.5", "--theta0-epochs", "2",
                 "--theta0-reinit-head", "--d", "20", "--levels", "5", "--epochs", "1", "--no-progress",
                 "--out", str(out), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["config"]["theta0_reinit_head"] is True
    assert record["results"][0]["certificate"]["details"]["theta0"]["reinit_head"] is True
    (path,) = (out / "checkpoints").glob("theta0-*.pkl")
    with open(path, "rb") as f:
        params = pickle.load(f)["params"]
    init = nets.cnn((8, 8, 1), 10, channels=(8, 16), dense=(32,)).init(jax.random.fold_in(jax.random.key(0), 0))
    for name in ("w", "b"):
        np.testing.assert_array_equal(params["dense"][-1][name], init["dense"][-1][name])
    assert not np.array_equal(params["dense"][0]["w"], init["dense"][0]["w"])     # the features were trained


def test_compress_cli_refuses_bad_flags(capsys):
    assert main(["compress", "--dataset", "digits", "--levels", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --levels: 'levels' must be one or more numbers >= 2" in err
