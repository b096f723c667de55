"""Data loaders, the PAC-Bayes runner (records, resume) and its command line."""

import gzip
import json
import struct

import numpy as np
import pytest

import genbounds.experiments.pac_bayes_runner as pbm
from genbounds.bounds import Certificate
from genbounds.cli import main
from genbounds.estimators import data as D
from genbounds.experiments.records import load_record, load_records, new_record, write_record

TINY = pbm.PacBayesConfig.flat(arch="mlp", prior_dropout=0.0, widths=(16,), prior_epochs=2, epochs=3, mc_r=2, mc_m=4,
                               objectives=("quad",))


def _write_idx(path, arr):
    assert arr.dtype == np.uint8
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def test_idx_and_npz_loaders_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 12, dtype=np.uint8)
    for stem, arr in (("train-images-idx3-ubyte", imgs), ("train-labels-idx1-ubyte", labels),
                      ("t10k-images-idx3-ubyte", imgs[:4]), ("t10k-labels-idx1-ubyte", labels[:4])):
        _write_idx(tmp_path / f"{stem}.gz", arr)
    tt = D.load("mnist", str(tmp_path))
    assert tt.train.x.shape == (12, 28, 28, 1) and tt.test.x.shape == (4, 28, 28, 1)
    np.testing.assert_allclose(tt.train.x[..., 0], imgs / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(tt.train.y, labels)
    np.savez(tmp_path / "m.npz", x_train=imgs, y_train=labels, x_test=imgs[:4], y_test=labels[:4])
    tt2 = D.load("mnist", str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(tt2.train.x, tt.train.x)
    binary = D.relabel_binary(tt, [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(binary.train.y, (labels >= 5).astype(np.int32))
    assert binary.train.num_classes == 2


def test_loader_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        D.load("fashion-mnist", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        D.load("mnist")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        D.load("mnist", str(tmp_path))
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04rubbish"))
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(tmp_path / "bad.gz")
    with pytest.raises(ValueError, match="'dataset'"):
        D.load("cifar")


def test_bundled_datasets():
    digits = D.load("digits")
    assert digits.train.x.shape[1:] == (8, 8, 1) and len(digits.train) + len(digits.test) == 1797
    assert 0.0 <= digits.train.x.min() and digits.train.x.max() <= 1.0
    mnist = D.load("mnist-5k")
    assert len(mnist.train) + len(mnist.test) == 5000 and mnist.train.x.shape[1:] == (28, 28, 1)
    assert set(np.unique(mnist.train.y)) == set(range(10))


@pytest.mark.integration
def test_interrupted_run_resumes_to_the_same_certificate(tmp_path, monkeypatch):
    full = pbm.run_pac_bayes(TINY, tmp_path / "a", progress=False, log=lambda s: None).to_dict()
    cert = Certificate.from_dict(full["results"][0]["certificate"])
    assert cert.n_bound + cert.n_prior == 1438 and cert.n_prior == 719
    assert load_record(tmp_path / "a" / "record.json")["results"][0]["objective"] == "quad"

    original = pbm._save_pickle

    def interrupt_after_epoch_2(path, obj):
        original(path, obj)
        if path.name == "quad.state.pkl" and obj["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(pbm, "_save_pickle", interrupt_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        pbm.run_pac_bayes(TINY, tmp_path / "b", progress=False, log=lambda s: None)
    assert not (tmp_path / "b" / "record.json").exists()
    monkeypatch.setattr(pbm, "_save_pickle", original)
    logs = []
    resumed = pbm.run_pac_bayes(TINY, tmp_path / "b", progress=False, log=logs.append).to_dict()
    assert any("resumed: prior" in s for s in logs) and any("quad from epoch 2" in s for s in logs)
    # A run that changes only posterior settings reuses the trained prior.
    logs.clear()
    pbm.run_pac_bayes(TINY.replace(epochs=1), tmp_path / "b", progress=False, log=logs.append)
    assert any("resumed: prior" in s for s in logs)
    a, b = full["results"][0], resumed["results"][0]
    assert b["certificate"]["value"] == a["certificate"]["value"]
    assert [h["epoch"] for h in b["history"]] == [1, 2, 3]


def test_records_validate_and_report_malformed_files(tmp_path):
    write_record(tmp_path / "good.json", new_record("calculator", {"x": 1}, 0, [{"v": 1}]))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "old.json").write_text(json.dumps({"schema": "genbounds.record/0", "kind": "cmi",
                                                   "config": {}, "results": []}))
    (tmp_path / "partial.json").write_text(json.dumps({"schema": "genbounds.record/1", "kind": "cmi"}))
    good, errors = load_records([tmp_path])
    assert [p.name for p, _ in good] == ["good.json"]
    assert len(errors) == 3
    assert any("broken.json: not valid JSON" in e for e in errors)
    assert any("old.json" in e and "genbounds.record/0" in e for e in errors)
    assert any("partial.json: missing field(s) config, results" in e for e in errors)


def test_record_of_old_cmi_schema_is_refused_with_the_fix(tmp_path):
    old = {"schema": "genbounds.record/1", "kind": "cmi", "config": {}, "results": []}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "pb.json").write_text(json.dumps(dict(old, kind="pac-bayes")))
    good, errors = load_records([tmp_path])
    assert [p.name for p, _ in good] == ["pb.json"]
    assert len(errors) == 1 and "re-run the same 'genbounds cmi' command" in errors[0]


@pytest.mark.integration
def test_cli_pac_bayes_writes_record_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["pac-bayes", "--arch", "mlp", "--widths", "16", "--prior-epochs", "1", "--epochs", "1", "--mc-r", "2",
               "--mc-m", "2", "--objective", "quad", "classic", "--out", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "quad" in text and "classic" in text and "certificate (b)" in text
    assert (out / "record.json").exists() and (out / "certificates.png").stat().st_size > 10_000
    record = load_record(out / "record.json")
    assert [r["objective"] for r in record["results"]] == ["quad", "classic"]
    assert record["config"]["widths"] == [16] and "jax" in record["versions"]


@pytest.mark.parametrize("argv,needle", [
    (["pac-bayes", "--dataset", "mnist"], "--data-dir"),
    (["pac-bayes", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"], "apt-get install"),
    (["pac-bayes", "--objective", "nope"], "'objectives'"),
    (["pac-bayes", "--alpha", "1.5"], "'alpha'"),
])
def test_cli_pac_bayes_bad_input(tmp_path, capsys, argv, needle):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("genbounds: error:") and needle in err[-1]
