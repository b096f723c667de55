"""The binary task of the CMI and Langevin experiments (estimators.data.binary_task): every example
of the two classes, train and test splits pooled, relabelled 0 / 1; the synthetic tasks (the gaussian task an
i.i.d. sample of its stated distribution, with an exact risk for linear classifiers; make_classification's
stratified pool)."""

import numpy as np
import pytest
from scipy.special import ndtr

from genbounds.estimators.data import (
    BINARY_CLASSES,
    GAUSSIAN_POOL,
    STRATIFIED_TASKS,
    Dataset,
    binary_task,
    gaussian_linear_risk,
    gaussian_mean,
    gaussian_task,
)


def test_digits_task_pools_both_splits_of_the_two_classes():
    pool = binary_task("digits")
    assert isinstance(pool, Dataset) and pool.name == "digits-4v9" and pool.num_classes == 2
    from sklearn.datasets import load_digits  # here, not at the top: 0.4 s of every worker's collection

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
    (dict(dataset="gaussian", synthetic_features=0), "'synthetic_features'"),
    (dict(dataset="gaussian", gaussian_margin=-1.0), "'margin'"),
])
def test_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        binary_task(**kwargs)


def test_gaussian_labels_are_iid_bernoulli_not_stratified():
    """The gaussian task's label count is Binomial(size, 1/2): over 3000 pools of 20 examples its mean is 10 and
    its variance 5 (a class-stratified pool would always hold 10, variance 0); the big pool is not split evenly."""
    counts = np.array([int(gaussian_task(20, 3, 1.0, seed=s).y.sum()) for s in range(3000)])
    assert abs(counts.mean() - 10.0) < 4 * np.sqrt(5.0 / 3000)
    assert 4.5 < counts.var(ddof=1) < 5.5
    pool = binary_task("gaussian")
    k = int(pool.y.sum())
    assert len(pool) == GAUSSIAN_POOL and k != len(pool) // 2 and abs(k - len(pool) / 2) < 5 * np.sqrt(len(pool)) / 2
    synthetic = binary_task("synthetic")
    assert int(synthetic.y.sum()) == len(synthetic) // 2 and "synthetic" in STRATIFIED_TASKS
    assert "gaussian" not in STRATIFIED_TASKS


def test_gaussian_task_is_its_stated_distribution_and_depends_on_its_seed():
    pool = gaussian_task(200_000, 4, 1.5, seed=3)
    assert pool.name == "gaussian" and pool.x.shape == (200_000, 4, 1, 1) and pool.x.dtype == np.float32
    x, y = pool.x.reshape(len(pool), -1).astype(np.float64), pool.y
    mu = gaussian_mean(4, 1.5)
    assert np.linalg.norm(mu) == pytest.approx(1.5)
    for label, sign in ((1, 1.0), (0, -1.0)):
        xc = x[y == label]
        np.testing.assert_allclose(xc.mean(0), sign * mu, atol=5 / np.sqrt(len(xc)))
        np.testing.assert_allclose(np.cov(xc.T), np.eye(4), atol=0.02)
    np.testing.assert_array_equal(gaussian_task(100, seed=3).x, gaussian_task(100, seed=3).x)
    assert not np.array_equal(gaussian_task(100, seed=3).x, gaussian_task(100, seed=4).x)


def test_gaussian_linear_risk_is_exact():
    """The closed form against the Monte Carlo error on 200,000 fresh examples (within 4 standard errors) for random
    classifiers; the Bayes classifier (w = mu, b = 0) has risk Phi(-margin); w = 0 has risk 1/2."""
    f, margin = 5, 1.2
    pool = gaussian_task(200_000, f, margin, seed=9)
    x, y = pool.x.reshape(len(pool), -1).astype(np.float64), pool.y
    rng = np.random.default_rng(0)
    for _ in range(5):
        w, b = rng.normal(size=f), rng.normal()
        mc = float(((x @ w + b > 0).astype(int) != y).mean())
        exact = float(gaussian_linear_risk(w, b, f, margin))
        assert abs(mc - exact) < 4 * np.sqrt(exact * (1 - exact) / len(y)), (mc, exact)
    assert float(gaussian_linear_risk(gaussian_mean(f, margin), 0.0, f, margin)) == pytest.approx(float(ndtr(-margin)))
    assert float(gaussian_linear_risk(np.zeros(f), 0.3, f, margin)) == 0.5
    with pytest.raises(ValueError, match="'w'"):
        gaussian_linear_risk(np.zeros(3), 0.0, f, margin)


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=0), "'size'"), (dict(size=10, features=0), "'features'"), (dict(size=10, margin=0.0), "'margin'"),
    (dict(size=10, margin=float("nan")), "'margin'")])
def test_gaussian_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gaussian_task(**kwargs)
