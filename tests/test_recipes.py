"""Named protocols (genbounds reproduce), prior-training options and the honest settings search."""

import dataclasses

import numpy as np
import pytest

import genbounds.experiments.pac_bayes_runner as pbm
from genbounds.cli import main
from genbounds.experiments import recipes, search
from genbounds.experiments.config import make_optimizer
from genbounds.experiments.records import load_record

TINY = pbm.PacBayesConfig.flat(arch="mlp", prior_dropout=0.0, widths=(16,), prior_epochs=2, epochs=2, mc_r=2, mc_m=0,
                               objectives=("quad",))


def test_every_recipe_is_a_valid_protocol_with_its_paper_settings():
    assert set(recipes.RECIPES) == {"dr17-fashion-binary", "pbb-fashion-fcn", "pbb-fashion-cnn", "pbb-fashion-cnn-aug",
                                    "role-of-data-digits", "fcmi-fashion", "masks-fashion",
                                    "matrix-normal-fashion", "dp-prior-fashion", "lt22-fashion",
                                    "lt22-fashion-transfer", "lt22-fashion-dd", "lt22-digits"}
    assert [c.prior.kind for _, c in recipes.RECIPES["dp-prior-fashion"].runs] == ["data", "dp", "init"]
    mn = dict(recipes.RECIPES["matrix-normal-fashion"].runs)
    assert mn["matrix_normal"].replace(family="gaussian") == mn["gaussian"]
    dp = [c for label, c in recipes.RECIPES["role-of-data-digits"].runs if c.prior.kind == "dp"]
    assert [c.dp_epsilon for c in dp] == list(recipes._DP_EPSILONS) and all(not c.standardize for c in dp)
    masks = [c for _, c in recipes.RECIPES["masks-fashion"].runs]
    assert [c.sparsity for c in masks] == [0.5, 0.7, 0.8, 0.9, 0.95, 0.9]
    assert {(c.family, c.prior.kind, c.mask_flip) for c in masks} == {("mask", "data", 0.01)}
    assert [c.mask_prior for c in masks] == ["magnitude"] * 5 + ["uniform"]
    assert masks[-1].replace(mask_prior="magnitude") == masks[3]
    fcn = recipes.RECIPES["pbb-fashion-fcn"].runs[0][1]
    assert (fcn.widths, fcn.prior_dropout, fcn.prior_lr, fcn.prior_momentum, fcn.lr, fcn.momentum) == \
        ((600, 600, 600), 0.2, 0.005, 0.99, 0.001, 0.95)
    assert (fcn.prior_scale, fcn.p_min, fcn.batch, fcn.delta, fcn.mc_delta, fcn.prior_epochs, fcn.epochs) == \
        (0.03, 1e-5, 250, 0.025, 0.01, 5, 5)
    assert recipes.RECIPES["pbb-fashion-cnn"].runs[0][1].arch == "cnn"
    aug = recipes.RECIPES["pbb-fashion-cnn-aug"].runs[0][1]     # PBB's CNN run, only the prior differs
    assert aug.replace(prior_scale=0.03, prior_epochs=5, prior_schedule="constant",
                       prior_augment="none") == recipes.RECIPES["pbb-fashion-cnn"].runs[0][1]
    assert [c.alpha for _, c in recipes.RECIPES["role-of-data-digits"].runs if c.prior.kind == "data"] == \
        [0.2, 0.3, 0.5, 0.7, 0.8]
    assert recipes.RECIPES["fcmi-fashion"].runs[0][1].n == (75, 250, 1000, 4000)
    dr17 = recipes.RECIPES["dr17-fashion-binary"].runs[0][1]
    assert dr17.prior.kind == "init" and dr17.learn_prior_scale and dr17.widths == (600,)


def test_epochs_scale_rounds_and_keeps_at_least_one_epoch():
    fcn = recipes.RECIPES["pbb-fashion-fcn"].runs[0][1]
    quick = recipes.scale_epochs(fcn, 0.1)
    assert (quick.prior_epochs, quick.epochs) == (1, 1)
    assert recipes.scale_epochs(fcn, 2.0).epochs == 10
    assert recipes.scale_epochs(recipes.RECIPES["fcmi-fashion"].runs[0][1], 0.25).epochs == 50
    with pytest.raises(ValueError, match="'epochs_scale'"):
        recipes.scale_epochs(fcn, 0.0)


@pytest.mark.integration
def test_run_recipe_writes_records_and_a_table(tmp_path):
    recipe = recipes.Recipe("tiny", "two alphas", "test", (("a0.3", TINY.replace(alpha=0.3)),
                                                          ("a0.5", TINY)), "a note")
    records = recipes.run_recipe(recipe, tmp_path, progress=False, log=lambda m: None)
    assert [label for label, _ in records] == ["a0.3", "a0.5"]
    assert load_record(tmp_path / "a0.3" / "record.json")["config"]["alpha"] == 0.3
    table = (tmp_path / "table.md").read_text()
    assert "| a0.3 " in table and "| a0.5 " in table and "certificate" in table and "a note" in table
    # The prior's held-out error (on the bound set it was not trained on) is in the record.
    r = records[1][1]["results"][0]
    assert 0.0 <= r["prior_heldout_error"] <= 1.0 and "prior_test_error" in r


def test_cli_reproduce_lists_and_refuses_bad_input(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in recipes.RECIPES)
    assert main(["reproduce", "nope"]) == 2
    assert "argument 'name' must be one of" in capsys.readouterr().err
    assert main(["reproduce", "pbb-fashion-fcn", "--epochs-scale", "-1"]) == 2
    assert "'--epochs-scale'" in capsys.readouterr().err


def test_standardization_uses_only_the_prior_data():
    setup = pbm.prepare(TINY.replace(standardize=True), "/tmp/genbounds-test-std", log=lambda m: None)
    plain = pbm.prepare(TINY.replace(standardize=False), "/tmp/genbounds-test-plain", log=lambda m: None)
    idx = setup.prior_idx
    np.testing.assert_array_equal(idx, plain.prior_idx)
    x_prior = setup.data.train.x[idx]
    assert np.abs(x_prior.mean(axis=0)).max() < 1e-5          # centred on the prior data
    # Changing bound-set examples does not change the transform.
    bound = np.setdiff1d(np.arange(len(plain.data.train)), idx)
    poisoned = plain.data._replace(train=dataclasses.replace(plain.data.train, x=plain.data.train.x.copy()))
    poisoned.train.x[bound] = 1e3
    again = pbm.standardize(poisoned, idx)
    np.testing.assert_allclose(again.train.x[idx], x_prior, rtol=1e-6)
    np.testing.assert_allclose(again.test.x, setup.data.test.x, rtol=1e-6)
    with pytest.raises(ValueError, match="'standardize'"):
        TINY.replace(prior="init", standardize=True)


def test_prior_options_dropout_momentum_schedule():
    cfg = TINY.replace(prior_dropout=0.2, prior_momentum=0.99, prior_schedule="cosine")
    assert cfg.prior_digest() != TINY.prior_digest()
    for bad in ({"prior_dropout": 1.0}, {"prior_momentum": 1.0}, {"schedule": "step"}):
        with pytest.raises(ValueError):
            TINY.replace(**bad)
    opt = make_optimizer("sgd", 0.1, 0.0, "cosine", steps=10)
    import jax.numpy as jnp
    state = opt.init(jnp.zeros(1))
    sizes = []
    for _ in range(10):
        upd, state = opt.update(jnp.ones(1), state)
        sizes.append(-float(upd[0]))
    assert sizes[0] == pytest.approx(0.1) and sizes[-1] < 0.01 and sizes == sorted(sizes, reverse=True)


def test_search_sees_only_the_prior_data():
    setup = pbm.prepare(TINY, "/tmp/genbounds-test-search", log=lambda m: None)
    pseudo = search.prior_data_setup(setup, setup.out / "pseudo")
    np.testing.assert_array_equal(pseudo.data.train.x, setup.data.train.x[setup.prior_idx])
    assert len(pseudo.prior_idx) == round(0.5 * len(setup.prior_idx))
    with pytest.raises(ValueError, match="data-dependent prior"):
        search.prior_data_setup(setup._replace(prior_idx=np.zeros(0, np.int64)), setup.out)
