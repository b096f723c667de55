"""A certificate's prior must be paid for: a prior scale chosen after seeing the bound set needs the
prior-grid union bound, and certify_network needs to be told which data the prior saw (its indices,
or data_free) before it splits the data; a prior's kind follows from the indices it holds."""

import jax
import numpy as np
import pytest

from genbounds.estimators import nets, snn
from genbounds.estimators.data import Dataset


def _tiny():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3, 1, 1)).astype(np.float32)
    y = (x[:, 0, 0, 0] > 0).astype(np.int32)
    net = nets.mlp((3, 1, 1), (), 2)
    return Dataset(x, y, 2, "tiny"), net, net.init(jax.random.PRNGKey(0))


def test_certify_refuses_an_unpaid_prior_scale():
    data, net, params = _tiny()
    prior = snn.Prior(params, 0.1)
    post = snn.init_posterior(params, 0.05)
    with pytest.raises(ValueError, match="'prior_scale'.*prior_grid"):
        snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0),
                    estimate=snn.PerExampleDraws(1), prior_scale=0.01)
    # Paid for on the grid it is accepted and records the grid point.
    cert, _ = snn.certify(net, post, prior, data, key=jax.random.PRNGKey(0),
                          estimate=snn.PerExampleDraws(1), prior_scale=0.01, prior_grid=(100.0, 0.1))
    assert "prior_grid" in cert.details


def test_certify_network_needs_the_prior_provenance():
    data, net, params = _tiny()
    kwargs = dict(key=jax.random.PRNGKey(0), prior_mean=params, epochs=1, r=1, progress=False)
    with pytest.raises(ValueError, match="'prior_indices' and 'data_free'"):
        snn.certify_network(net, params, data, **kwargs)
    with pytest.raises(ValueError, match="'prior_indices' and 'data_free'"):
        snn.certify_network(net, params, data, prior_indices=np.arange(10), data_free=True, **kwargs)
    cert, _ = snn.certify_network(net, params, data, prior_indices=np.arange(20), **kwargs)
    assert cert.n_prior == 20 and cert.n_bound == 40
    # A prior's kind is derived from its indices: it cannot claim 'init' while holding data.
    assert snn.Prior(params, 0.1, data_indices=np.arange(3)).kind == "data"
    assert snn.Prior(params, 0.1).kind == "init"
