"""Compression bounds' models (Lotfi et al. 2022): subspace networks :math:`\\theta_0 + P w` with seeded projections
(:mod:`.subspace`), quantisation to a learned codebook (:mod:`.quantize`), training with the library's steps
(:mod:`.train`) and :func:`certify_compressed` for any ``apply(params, x)`` model (:mod:`.certify`)."""

from .certify import (
    CompressedResult,
    certify_compressed,
    certify_quantized,
    fit_w,
    quantize_w,
    quantized_predictions,
    search_size,
    split_indices,
)
from .quantize import as_stored, assign, kmeans_codebook, quantize_ste, uniform_codebook
from .subspace import Projection, ProjectionKind, Subspace, factor_pair, subspace

__all__ = ["CompressedResult", "certify_compressed", "certify_quantized", "fit_w", "quantize_w",
           "quantized_predictions", "search_size", "split_indices", "as_stored", "assign", "kmeans_codebook",
           "quantize_ste", "uniform_codebook", "Projection", "ProjectionKind", "Subspace", "factor_pair",
           "subspace"]
