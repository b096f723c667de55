r"""Differentially private data-dependent priors (Dziugaite & Roy 2018, "Data-dependent PAC-Bayes
priors via differential privacy", NeurIPS).

The prior's mean is drawn from the Gibbs distribution of the *whole* training set S,

.. math::  \pi_S(w) \propto P_0(w)\, \exp(-\tau \hat R_S(w)),  \qquad P_0 = N(w_0, \sigma_0^2 I),

with :math:`\hat R_S` the bounded cross-entropy (in [0, 1], range :math:`L_{max} = 1`) and
:math:`w_0, \sigma_0` fixed without data. This is the exponential mechanism (McSherry & Talwar
2007) with utility :math:`-\tau\hat R_S`, whose sensitivity to replacing one example is
:math:`\tau L_{max}/n`, hence :math:`\varepsilon = 2\tau L_{max}/n`-differentially private
(:func:`gibbs_epsilon`). The prior is :math:`N(w_S, s^2 I)` around the draw :math:`w_S`, and the
certificate pays :func:`genbounds.bounds.dp_prior_kl_adjustment` instead of holding data out.

**The privacy of the draw is an approximation.** :func:`sgld_gibbs_sample` runs SGLD towards
:math:`\pi_S` (:func:`genbounds.estimators.steps.langevin_step` with inverse temperature
:math:`\tau`): after finitely many minibatch steps its output is not an exact sample, so the
mechanism actually run is not exactly epsilon-DP. DR18 handle this with a Wasserstein bound on
SGLD's error, which needs constants not computed here; their ICML'18 precursor *assumes* SGLD has
the privacy of its stationary law. We do the latter and say so: the prior records
``privacy = "approximate: ..."``, and every certificate from it carries that label (it is
conditional on the approximation).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ...bounds._array import check_positive, whole_count
from ..data import Dataset
from ..nets import Net
from ..progress import Progress
from ..steps import compile_epoch, constant_schedule, langevin_step, owned, steps_per_epoch
from .objectives import bounded_cross_entropy
from .posterior import Prior

__all__ = ["gibbs_epsilon", "gibbs_tau", "sgld_gibbs_sample", "dp_prior", "APPROXIMATE"]

#: What the prior records about its privacy (the certificate is conditional on it).
APPROXIMATE = ("approximate: SGLD is assumed to sample the Gibbs distribution exactly (the 'privacy "
               "approximation' of Dziugaite & Roy 2018); the certificate is conditional on it")


def _check_mechanism(name: str, x: Any, n: Any, loss_range: Any) -> None:
    """The exponential mechanism's arguments: ``name`` (tau or epsilon) and ``loss_range`` finite > 0, ``n`` a
    whole number >= 1 (a sample size: n = 0 gave tau 0, n = -5 a negative tau)."""
    check_positive(name, x)
    whole_count("n", n)
    check_positive("loss_range", loss_range)


def gibbs_epsilon(tau: float, n: int, loss_range: float = 1.0) -> float:
    """Epsilon of an exact draw from the Gibbs distribution exp(-tau R_S) on n examples with a loss of
    range ``loss_range``: 2 tau loss_range / n (exponential mechanism)."""
    _check_mechanism("tau", tau, n, loss_range)
    return 2.0 * float(tau) * float(loss_range) / int(n)


def gibbs_tau(epsilon: float, n: int, loss_range: float = 1.0) -> float:
    """The inverse temperature whose exact Gibbs draw is ``epsilon``-DP: epsilon n / (2 loss_range)."""
    _check_mechanism("epsilon", epsilon, n, loss_range)
    return float(epsilon) * int(n) / (2.0 * float(loss_range))


def sgld_gibbs_sample(net: Net, w0: Any, data: Dataset, *, key: jax.Array, tau: float, base_scale: float,
                      eta: float, epochs: int, batch_size: int = 128, p_min: float = 1e-4,
                      progress: bool = True) -> Any:
    """SGLD towards pi_S(w) ~ N(w; w0, base_scale^2 I) exp(-tau R_S(w)), R_S the bounded cross-entropy.

    The step is :func:`~genbounds.estimators.steps.langevin_step` on the per-example potential
    R_i(w) + ||w - w0||^2 / (2 tau base_scale^2) at inverse temperature tau (stationary density
    exp(-tau R_S(w) - ||w - w0||^2 / (2 base_scale^2))), step size ``eta``, minibatches of
    ``batch_size`` (every example once per epoch), started at ``w0``."""
    w0 = owned(w0)

    def loss(params, xb, yb):
        sq = sum(jnp.sum((p - q) ** 2)
                 for p, q in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(w0)))
        return bounded_cross_entropy(net.apply(params, xb), yb, p_min) + sq / (2.0 * tau * base_scale**2)

    step = langevin_step(loss, constant_schedule(eta, tau))
    epoch_fn = compile_epoch(step.step, m=len(data), batch_size=batch_size)
    state = step.init(owned(w0))
    x, y = jnp.asarray(data.x), jnp.asarray(data.y)
    with Progress(epochs, "dp prior (SGLD)", unit="epoch", enabled=progress) as bar:
        for epoch in range(epochs):
            state, metrics = epoch_fn(state, jax.random.fold_in(key, epoch), x, y)
            bar.update(1, loss=f"{float(metrics.loss[-1]):.4f}")
    return state.params


def dp_prior(net: Net, w0: Any, data: Dataset, *, key: jax.Array, epsilon: float, prior_scale: float,
             base_scale: float, eta: float, epochs: int, batch_size: int = 128, p_min: float = 1e-4,
             family: str = "gaussian", progress: bool = True) -> Prior:
    """A prior N(w_S, prior_scale^2 I) whose mean w_S is drawn (by SGLD, approximately) from the
    epsilon-DP Gibbs distribution of all of ``data`` (tau = :func:`gibbs_tau`); its ``dp`` entry
    records epsilon, tau, the mechanism and that the privacy is an approximation (:data:`APPROXIMATE`).
    ``w0`` and ``base_scale`` must be fixed without data (e.g. the random initialisation)."""
    tau = gibbs_tau(epsilon, len(data))
    mean = sgld_gibbs_sample(net, w0, data, key=key, tau=tau, base_scale=base_scale, eta=eta, epochs=epochs,
                             batch_size=batch_size, p_min=p_min, progress=progress)
    dp = {"epsilon": float(epsilon), "tau": tau, "loss_range": 1.0,
          "mechanism": f"Gibbs distribution exp(-tau R_S) x N(w0, {base_scale}^2 I), bounded cross-entropy "
                       f"(p_min {p_min}); sampled by SGLD: eta {eta}, {epochs} epochs of batch {batch_size}, "
                       f"{epochs * steps_per_epoch(len(data), batch_size)} steps",
          "privacy": APPROXIMATE}
    return Prior(mean, prior_scale, family, details={"source": "dp"}, dp=dp)
