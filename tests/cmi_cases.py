"""Supersample run sets built by hand for the CMI tests, and the names of every CMI bound."""

import itertools

import numpy as np

#: Every bound of a supersample run set, listed here (not read from the library) so that a
#: bound the library stopped computing fails the tests that loop over them.
CMI_BOUNDS = ("fcmi", "ecmi", "ldcmi", "single_loss", "binary_kl", "interpolating", "fast_rate",
              "fast_rate_closed_form", "fast_rate_variance", "fast_rate_sharpness")


def memorising(masks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predictions [k1, k2, n, 2] of a learner that is right on its training member and wrong on the
    other, for masks [k1, k2, n] and binary labels [k1, n, 2]."""
    return np.where(masks[..., None] == np.arange(2), labels[:, None], 1 - labels[:, None])


def bernoulli_learner_runs(k1: int, k2: int, n: int, test_err: float, train_err: float, seed: int,
                           antithetic: bool = True):
    """A fake learner: the training member wrong w.p. train_err, the held-out member w.p. test_err (exact risk)."""
    rng = np.random.default_rng(seed)
    half = rng.integers(0, 2, (k1, k2 // 2, n))
    masks = np.concatenate([half, 1 - half], axis=1) if antithetic else rng.integers(0, 2, (k1, k2, n))
    labels = rng.integers(0, 2, (k1, n, 2))
    wrong_test = rng.random((k1, k2, n)) < test_err
    wrong_train = rng.random((k1, k2, n)) < train_err
    wrong = np.where(masks[..., None] == np.arange(2), wrong_train[..., None], wrong_test[..., None])
    preds = np.where(wrong, 1 - labels[:, None], labels[:, None])
    return masks, preds, labels, np.arange(k1 * n * 2).reshape(k1, n, 2)


def compositions(m: int, a: int) -> np.ndarray:
    """Every count vector of m draws into a cells."""
    out = []
    for cut in itertools.combinations(range(m + a - 1), a - 1):
        b = [-1, *cut, m + a - 1]
        out.append([b[i + 1] - b[i] - 1 for i in range(a)])
    return np.array(out)
