"""PAC-Bayes side: stochastic neural networks, their training objectives and certificates.

* :mod:`.base`: the ``Posterior`` pair every family shares and its softplus scale;
* :mod:`.posterior`: posteriors and priors (a prior knows the training examples that built it);
* :mod:`.families`: what each posterior family is (factorised Gaussian / Laplace weights,
  Bernoulli pruning masks, matrix-normal weights): sampling, training surrogate, KL;
* :mod:`.dp_prior`: priors drawn by a differentially private mechanism on all the data;
* :mod:`.objectives`: bounded losses and differentiable PAC-Bayes objectives;
* :mod:`.train`: :func:`posterior_step` (the one posterior training step) and the loops;
* :mod:`.certification`: the bound set, the two Monte Carlo estimates (:class:`PerExampleDraws`,
  :class:`WeightDraws`), :func:`certify` and
  :func:`certify_network` for a model you trained yourself.
"""

from .certification import (
    CertifiedPredictor,
    Estimate,
    MCEstimate,
    PerExampleDraws,
    TernaryDraws,
    WeightDraws,
    bound_set,
    certify,
    certify_excess,
    certify_network,
    certify_with_excess,
    error_rate,
    independent_draws,
    mc_independent,
    mc_weight_samples,
    ternary_draws,
)
from .dp_prior import APPROXIMATE, dp_prior, gibbs_epsilon, gibbs_tau, sgld_gibbs_sample
from .families import (
    GAUSSIAN,
    LAPLACE,
    MASK,
    MATRIX_NORMAL,
    Family,
    FamilyName,
    get_family,
    magnitude_mask,
    mask_keep,
    mask_kl_float64,
    mask_prior,
    masked_weights,
    matrix_normal_factors,
    sampled_keep_interval,
)
from .objectives import (
    OBJECTIVE_REGISTRY,
    OBJECTIVES,
    Objective,
    ObjectiveName,
    bounded_cross_entropy,
    get_objective,
    objective,
    objective_extras,
    zero_one,
)
from .posterior import (
    FAMILIES,
    Posterior,
    Prior,
    PriorKind,
    distributions,
    init_posterior,
    kl_divergence,
    kl_float64,
    posterior_scale,
    sample_params,
)
from .train import (
    PosteriorMetrics,
    PosteriorParams,
    PosteriorState,
    posterior_step,
    train_deterministic,
    train_posterior,
)

__all__ = [
    # posteriors and priors
    "FAMILIES",
    "Posterior",
    "Prior",
    "PriorKind",
    "distributions",
    "init_posterior",
    "kl_divergence",
    "kl_float64",
    "posterior_scale",
    "sample_params",
    # differentially private priors
    "APPROXIMATE",
    "dp_prior",
    "gibbs_epsilon",
    "gibbs_tau",
    "sgld_gibbs_sample",
    # families
    "Family",
    "FamilyName",
    "GAUSSIAN",
    "LAPLACE",
    "MASK",
    "MATRIX_NORMAL",
    "get_family",
    "magnitude_mask",
    "mask_keep",
    "mask_kl_float64",
    "mask_prior",
    "masked_weights",
    "matrix_normal_factors",
    "sampled_keep_interval",
    # objectives
    "OBJECTIVES",
    "OBJECTIVE_REGISTRY",
    "Objective",
    "ObjectiveName",
    "bounded_cross_entropy",
    "get_objective",
    "objective",
    "objective_extras",
    "zero_one",
    # training
    "PosteriorMetrics",
    "PosteriorParams",
    "PosteriorState",
    "posterior_step",
    "train_deterministic",
    "train_posterior",
    # certification
    "Estimate",
    "MCEstimate",
    "PerExampleDraws",
    "WeightDraws",
    "bound_set",
    "certify",
    "certify_network",
    "CertifiedPredictor",
    "error_rate",
    "mc_independent",
    "mc_weight_samples",
    "TernaryDraws",
    "ternary_draws",
    "independent_draws",
    "certify_excess",
    "certify_with_excess",
]
