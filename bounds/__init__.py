"""Generalization bounds: binary kl and its inverses, PAC-Bayes bounds, certificates, compression bounds, CMI bounds.

Every function accepts Python numbers / NumPy arrays (evaluated in float64: the path of
final certificates) or JAX arrays (evaluated in their dtype, jit-able and differentiable,
for training objectives). The CMI bounds (:mod:`genbounds.bounds.cmi`) take per-pair mutual
informations ``mi: [..., n]`` and return one value per leading index (per supersample draw); the
bounds for noisy iterative algorithms (:mod:`genbounds.bounds.iterative`) take statistics
recorded along training trajectories, ``[k_outer, k_inner, T]``.

>>> from genbounds.bounds import seeger, kl_inv_upper
>>> round(float(seeger(0.03, 5000.0, 55000, 0.025)), 4)
0.1618
"""

from . import cmi, cmi_certified, iterative
from .certificate import (
    EXCESS_BOUNDS,
    HELDOUT,
    PAC_BAYES_BOUNDS,
    Certificate,
    Certified,
    ExcessMethod,
    PacBayesBound,
    excess_loss_certificate,
    format_delta,
    format_upper,
    heldout_certificate,
    pac_bayes_certificate,
    pay_for_choice,
    round_up,
    split_excess_delta,
    union_minimum,
)
from .cmi import (
    binary_kl,
    fast_rate,
    fast_rate_closed_form,
    fast_rate_variance,
    interpolating,
    loo_interpolating,
    loo_sqrt,
    samplewise_sqrt,
    single_loss,
    sqrt_cmi,
)
from .compression import (
    LOTFI_ALPHA,
    CodeLength,
    CompressionBound,
    code_length_bits,
    compression_certificate,
    description_length,
    elias_delta_bits,
    elias_gamma_bits,
    lotfi_catoni,
    range_decode,
    range_encode,
)
from .excess import (
    ExcessCertificate,
    SplitKLExcess,
    TernaryRates,
    UnexpectedBernsteinBound,
    certify_ternary_draws,
    excess_certificate,
    split_kl_excess,
    ternary_rates,
    test_set_bound,
    unexpected_bernstein,
    unexpected_bernstein_excess,
    unexpected_bernstein_grid,
)
from .iterative import (
    gaussian_step_kl,
    haghifam_ld_bound,
    hypothesis_llr,
    langevin_noise_variance,
    negrea_bound,
    neu_information,
    neu_sgd_bound,
    wrong_member_weight,
)
from .kl import kl_bernoulli, kl_inv_lower, kl_inv_upper
from .pac_bayes import (
    DEFAULT_CATONI_GRID,
    catoni,
    catoni_grid,
    complexity,
    dp_max_information,
    dp_prior_kl_adjustment,
    lambda_bound,
    lambda_bound_opt,
    lambda_opt,
    mcallester,
    prior_grid_delta,
    prior_grid_index,
    prior_grid_scale,
    quad,
    sample_convergence,
    seeger,
    union_delta,
)
from .weight_kl import kl_bernoulli_masks, kl_diag_gaussian, kl_diag_laplace, kl_matrix_normal, to_float64

__all__ = [
    # binary kl
    "kl_bernoulli",
    "kl_inv_lower",
    "kl_inv_upper",
    # PAC-Bayes bounds and union-bound shares
    "DEFAULT_CATONI_GRID",
    "catoni",
    "catoni_grid",
    "complexity",
    "dp_max_information",
    "dp_prior_kl_adjustment",
    "lambda_bound",
    "lambda_bound_opt",
    "lambda_opt",
    "mcallester",
    "prior_grid_delta",
    "prior_grid_index",
    "prior_grid_scale",
    "quad",
    "sample_convergence",
    "seeger",
    "union_delta",
    # certificates
    "Certificate",
    "PAC_BAYES_BOUNDS",
    "PacBayesBound",
    "format_delta",
    "format_upper",
    "pac_bayes_certificate",
    "round_up",
    "pay_for_choice",
    "union_minimum",
    "HELDOUT",
    "heldout_certificate",
    # compression bounds: a quantised network as a point mass under a prefix-free code prior
    "CodeLength",
    "CompressionBound",
    "LOTFI_ALPHA",
    "code_length_bits",
    "compression_certificate",
    "description_length",
    "elias_delta_bits",
    "elias_gamma_bits",
    "lotfi_catoni",
    "range_decode",
    "range_encode",
    # held-out (test-set) bound of a reference network; excess-loss certificates over it
    "test_set_bound",
    "split_kl_excess",
    "unexpected_bernstein",
    "unexpected_bernstein_excess",
    "unexpected_bernstein_grid",
    "ternary_rates",
    "certify_ternary_draws",
    "excess_certificate",
    "excess_loss_certificate",
    "Certified",
    "split_excess_delta",
    "ExcessMethod",
    "EXCESS_BOUNDS",
    "ExcessCertificate",
    "SplitKLExcess",
    "TernaryRates",
    "UnexpectedBernsteinBound",
    # KL between factorised weight distributions
    "kl_diag_gaussian",
    "kl_diag_laplace",
    "kl_bernoulli_masks",
    "kl_matrix_normal",
    "to_float64",
    # CMI bounds (from per-pair mutual informations)
    "cmi",
    "cmi_certified",
    "binary_kl",
    "fast_rate",
    "fast_rate_closed_form",
    "fast_rate_variance",
    "interpolating",
    "loo_interpolating",
    "loo_sqrt",
    "samplewise_sqrt",
    "single_loss",
    "sqrt_cmi",
    # noisy iterative algorithms (Langevin dynamics, SGLD, SGD): from trajectory statistics
    "iterative",
    "gaussian_step_kl",
    "haghifam_ld_bound",
    "hypothesis_llr",
    "langevin_noise_variance",
    "negrea_bound",
    "neu_information",
    "neu_sgd_bound",
    "wrong_member_weight",
]
