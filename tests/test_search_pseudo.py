"""The settings search scores a configuration on the prior's data only."""

import pytest

from genbounds.experiments import pac_bayes_runner as pbm
from genbounds.experiments.search import pseudo_certificate


@pytest.mark.integration
def test_pseudo_certificate_scores_on_the_prior_data_only(tmp_path):
    cfg = pbm.PacBayesConfig.flat(arch="mlp", prior_dropout=0.0, widths=(16,), prior_epochs=2, epochs=2, mc_r=2,
                                  mc_m=0, objectives=("quad", "seeger"))
    res = pseudo_certificate(cfg, tmp_path, log=lambda _: None)
    assert set(res["certificates"]) == {"quad", "seeger"}
    # the pseudo split halves the prior's 719 examples: never the real bound set's 719
    assert res["n_pseudo_bound"] + res["n_pseudo_prior"] == 719
    assert res["score"] >= min(res["certificates"].values())
