"""Posteriors of the non-Gaussian families set by hand, shared by the family tests, and a tiny task to certify."""

import jax
import jax.numpy as jnp
import numpy as np

from genbounds.estimators import Dataset, nets, snn


def mask_posterior(weights, q) -> snn.Posterior:
    """The mask posterior over fixed ``weights`` keeping each weight with probability ``q`` (a tree
    like the weights): rho = logit(q)."""
    rho = jax.tree_util.tree_map(lambda p: jnp.asarray(np.log(p) - np.log1p(-p), jnp.float32), q)
    return snn.Posterior(weights, rho)


def matrix_normal_posterior(net, key, prior_scale: float = 0.3) -> tuple[snn.Posterior, snn.Prior]:
    """A matrix-normal posterior away from its isotropic prior N(init, prior_scale^2 I): every mean
    shifted by 0.2 and the unconstrained factors perturbed by 0.3 N(0, 1) (seed 0)."""
    mean = net.init(key)
    prior = snn.Prior(mean, prior_scale, "matrix_normal")
    post = snn.get_family("matrix_normal").init(mean, prior)
    rng = np.random.default_rng(0)
    rho = jax.tree_util.tree_map(lambda r: jnp.asarray(np.asarray(r) + 0.3 * rng.normal(size=np.shape(r)),
                                                       jnp.float32), post.rho)
    shifted = jax.tree_util.tree_map(lambda m: m + 0.2, mean)
    return snn.Posterior(shifted, rho), prior


def tiny_task(n: int = 60):
    """A separable two-class task of ``n`` 3-pixel inputs (seed 0), a linear net on it and its initial weights."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3, 1, 1)).astype(np.float32)
    y = (x[:, 0, 0, 0] > 0).astype(np.int32)
    net = nets.mlp((3, 1, 1), (), 2)
    return Dataset(x, y, 2, "tiny"), net, net.init(jax.random.PRNGKey(0))
