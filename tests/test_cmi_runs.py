"""Supersample and leave-one-out run sets: the designs the CMI theorems cover are accepted and
every other one is refused by name, by the API and by ``genbounds bound cmi`` alike (exit 2, one
line); the library's own designs are valid by construction."""

import inspect
import math

import jax
import numpy as np
import pytest
from cmi_cases import CMI_BOUNDS, memorising

from genbounds.cli import main
from genbounds.estimators import supersample as S
from genbounds.estimators.supersample import bounds_from_runs, check_supersample_runs, loo_bounds_from_runs


def test_masks_constant_across_runs_are_refused_naming_the_pair(tmp_path, capsys):
    """Identical masks in every run: MI 0, every 'bound' = training error 0 with test error 1."""
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 30, 20), dtype=int)
    labels = rng.integers(0, 2, (2, 20, 2))
    preds = memorising(masks, labels)
    with pytest.raises(ValueError, match=r"array 'masks': pair 0 of draw 0 has U = 0 in all 30 runs"):
        bounds_from_runs(masks, preds, labels)
    # One pair one-sided among balanced ones is named too.
    masks = rng.integers(0, 2, (2, 30, 20))
    masks[1, :, 7] = 1
    with pytest.raises(ValueError, match=r"pair 7 of draw 1 has U = 1 in all 30 runs \(1 of 40 pairs"):
        bounds_from_runs(masks, memorising(masks, labels), labels)
    # The command line refuses the same input, one line, exit 2.
    np.savez(tmp_path / "runs.npz", masks=masks, predictions=memorising(masks, labels), labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "runs.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "array 'masks'" in err and "pair 7 of draw 1" in err


def test_loo_run_set_must_enumerate_every_held_out_index():
    """n = 100, every held-out point wrong, one run: the MI over U is 0 and loo_sqrt printed 0."""
    n = 100
    losses = np.zeros((1, 1, n + 1), dtype=int)
    losses[0, 0, 0] = 1
    with pytest.raises(ValueError, match=r"array 'held_out': draw 0 has 1 runs for n\+1 = 101 points"):
        loo_bounds_from_runs(np.array([[0]]), losses)
    # A repeated index (n+1 runs, index 3 twice, 4 missing) is named.
    held = np.arange(n + 1)[None].copy()
    held[0, 4] = 3
    with pytest.raises(ValueError, match=r"missing indices \[4\], repeated \[3\]"):
        loo_bounds_from_runs(held, np.zeros((1, n + 1, n + 1), dtype=int))
    # The library's own design is the full enumeration and nothing else.
    assert list(inspect.signature(S.loo_held_out).parameters) == ["n"]
    np.testing.assert_array_equal(S.loo_held_out(n), np.arange(n + 1))


def test_loo_cli_refuses_the_same_run_set(tmp_path, capsys):
    labels = np.zeros((1, 6), dtype=int)
    np.savez(tmp_path / "loo.npz", held_out=np.array([[0, 1, 2]]), predictions=np.ones((1, 3, 6), dtype=int),
             labels=labels)
    assert main(["bound", "cmi", "--runs", str(tmp_path / "loo.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "array 'held_out': draw 0" in err


def test_huge_class_ids_are_remapped_not_allocated():
    """Ids near 1e7 made K^2 cells (an 8 PiB allocation); the result must equal small ids'."""
    rng = np.random.default_rng(5)
    masks = rng.integers(0, 2, (2, 20, 15))
    labels = rng.integers(0, 3, (2, 15, 2))
    preds = np.where(rng.random((2, 20, 15, 2)) < 0.7, labels[:, None], rng.integers(0, 3, (2, 20, 15, 2)))
    small = bounds_from_runs(masks, preds, labels)
    ids = np.array([10_000_019, 3, 99_999_989])
    big = bounds_from_runs(masks, ids[preds], ids[labels])
    for name in CMI_BOUNDS:       # relabelling permutes codes: equal up to summation order
        assert big[name].applicable == small[name].applicable, name
        assert big[name].per_draw == pytest.approx(small[name].per_draw, rel=1e-12), name
    many = bounds_from_runs(masks, preds + 3000 * rng.integers(0, 2, preds.shape), labels)   # ~3000 ids
    assert many["fcmi"].value >= small["fcmi"].value - 1e-12


def test_empty_and_foreign_run_files_are_named(tmp_path, capsys):
    np.savez(tmp_path / "empty.npz", masks=np.zeros((1, 30, 0)), predictions=np.zeros((1, 30, 0, 2)),
             labels=np.zeros((1, 0, 2)))
    (tmp_path / "text.npz").write_text("masks,predictions\n1,2\n")
    np.save(tmp_path / "one.npy", np.zeros(3))
    for name, needle in (("empty.npz", "n = 0 pairs"), ("text.npz", "not a readable .npz"),
                         ("one.npy", "single array, not an .npz")):
        assert main(["bound", "cmi", "--runs", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err and "Traceback" not in err, (name, err)
    with pytest.raises(ValueError, match="k1 = 0 draws"):
        check_supersample_runs(np.zeros((0, 30, 5)), np.zeros((0, 30, 5, 2)), np.zeros((0, 5, 2)))


def test_cli_and_api_refuse_the_same_designs(tmp_path, capsys):
    """Every refused design: the API raises ValueError, the CLI exits 2 with the same one line."""
    rng = np.random.default_rng(6)
    masks = rng.integers(0, 2, (2, 10, 6))
    masks[:, 0], masks[:, 1] = 0, 1
    labels = rng.integers(0, 2, (2, 6, 2))
    preds = memorising(masks, labels)
    one_sided = masks.copy()
    one_sided[0, :, 3] = 0
    bad = [(one_sided, preds, labels), (masks, preds[:, :1], labels), (masks[:, :1], preds[:, :1], labels),
           (masks * 2, preds, labels), (masks, preds + 0.5, labels)]
    for i, (m, p, y) in enumerate(bad):
        with pytest.raises(ValueError) as info:
            bounds_from_runs(m, p, y)
        np.savez(tmp_path / f"bad{i}.npz", masks=m, predictions=p, labels=y)
        assert main(["bound", "cmi", "--runs", str(tmp_path / f"bad{i}.npz")]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"genbounds: error: {info.value}", (i, err)


def test_library_masks_are_never_one_sided():
    """The library's own design: antithetic pairs, so every pair has both values (exactly k2/2 of
    each for even k2) while every single mask stays uniform on {0,1}^n."""
    for k2 in (2, 3, 4, 30):
        masks = S.draw_masks(jax.random.PRNGKey(k2), k2, 500)
        ones = masks.sum(axis=0)
        assert masks.shape == (k2, 500) and ones.min() >= 1 and ones.max() <= k2 - 1, k2
        if k2 % 2 == 0:
            assert (ones == k2 // 2).all()
    first = S.draw_masks(jax.random.PRNGKey(0), 30, 4000)[0]
    assert abs(first.mean() - 0.5) < 4 * 0.5 / math.sqrt(4000)        # a single mask: fair bits
    with pytest.raises(ValueError, match="'k2' must be >= 2"):
        S.draw_masks(jax.random.PRNGKey(0), 1, 5)
