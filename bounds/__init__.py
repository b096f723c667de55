"""Generalization bounds: binary kl and its inverses, PAC-Bayes bounds, certificates.

Every function accepts Python numbers / NumPy arrays (evaluated in float64: the path of
final certificates) or JAX arrays (evaluated in their dtype, jit-able and differentiable,
for training objectives).

>>> from bounds import seeger, kl_inv_upper
>>> round(float(seeger(0.03, 5000.0, 55000, 0.025)), 4)
0.1618
"""

from bounds.certificate import (
    PAC_BAYES_BOUNDS,
    Certificate,
    format_delta,
    pac_bayes_certificate,
    round_up,
    union_minimum,
)
from bounds.gaussian import kl_diag_gaussian, kl_diag_laplace, to_float64
from bounds.kl import kl_bernoulli, kl_inv_lower, kl_inv_upper
from bounds.pac_bayes import (
    DEFAULT_CATONI_GRID,
    catoni,
    catoni_grid,
    complexity,
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

__all__ = [
    "Certificate",
    "DEFAULT_CATONI_GRID",
    "PAC_BAYES_BOUNDS",
    "catoni",
    "catoni_grid",
    "complexity",
    "format_delta",
    "kl_bernoulli",
    "kl_diag_gaussian",
    "kl_diag_laplace",
    "kl_inv_lower",
    "kl_inv_upper",
    "lambda_bound",
    "lambda_bound_opt",
    "lambda_opt",
    "mcallester",
    "pac_bayes_certificate",
    "prior_grid_delta",
    "prior_grid_index",
    "prior_grid_scale",
    "quad",
    "round_up",
    "sample_convergence",
    "seeger",
    "to_float64",
    "union_delta",
    "union_minimum",
]
