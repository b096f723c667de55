"""The binary task of the CMI and Langevin experiments (estimators.data.binary_task): every example
of the two classes, train and test splits pooled, relabelled 0 / 1; the synthetic task."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from genbounds.estimators.data import BINARY_CLASSES, Dataset, binary_task


def test_digits_task_pools_both_splits_of_the_two_classes():
    pool = binary_task("digits")
    assert isinstance(pool, Dataset) and pool.name == "digits-4v9" and pool.num_classes == 2
    target = load_digits().target
    assert len(pool) == int(np.isin(target, (4, 9)).sum()) == 361
    assert int(pool.y.sum()) == int((target == 9).sum())              # label 1 is the second class
    assert pool.x.shape == (361, 8, 8, 1) and pool.x.dtype == np.float32
    other = binary_task("digits", classes=(1, 7))
    assert other.name == "digits-1v7" and int(other.y.sum()) == int((target == 7).sum())
    assert BINARY_CLASSES["fashion-mnist"] == (2, 4) and BINARY_CLASSES["mnist-5k"] == (4, 9)


def test_synthetic_task_depends_on_its_seed_and_features():
    a = binary_task("synthetic", seed=0, synthetic_features=3)
    assert a.name == "synthetic" and a.x.shape == (20000, 3, 1, 1) and set(np.unique(a.y)) == {0, 1}
    np.testing.assert_array_equal(a.x, binary_task("synthetic", seed=0, synthetic_features=3).x)
    assert not np.array_equal(a.x, binary_task("synthetic", seed=1, synthetic_features=3).x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="cifar"), "'dataset'"),
    (dict(dataset="digits", classes=(4, 4)), "'classes'"),
    (dict(dataset="digits", classes=(4,)), "'classes'"),
    (dict(dataset="synthetic", synthetic_features=0), "'synthetic_features'"),
])
def test_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        binary_task(**kwargs)
