r"""Posterior families: how a :class:`~genbounds.estimators.snn.base.Posterior` is sampled,
trained and charged for, one :class:`Family` per kind, looked up by name with :func:`get_family`.
What differs between families (the meaning of the prior's ``scale``, whether it can be learned,
whether the family needs a data prior or admits a private one) are fields of the :class:`Family`,
so callers hold a family and never compare names.

A posterior is always ``Posterior(mean, rho)`` (so optimisers, checkpoints and device placement
treat every family alike); the family says what the two pytrees mean:

* ``gaussian`` / ``laplace``: ``mean`` and softplus-scale ``rho`` of independent weights;
  KL :func:`genbounds.bounds.kl_diag_gaussian` / :func:`genbounds.bounds.kl_diag_laplace`.
* ``mask`` (Hayou, He & Dziugaite 2021, "Probabilistic fine-tuning of pruning masks and
  PAC-Bayes self-bounded learning"): the weights ``mean`` are fixed (they must be the prior's,
  bitwise, or the KL is infinite) and every weight is kept independently with probability
  ``q = sigmoid(rho)``: W = mean * m, m_i ~ Bernoulli(q_i). The prior is Bernoulli(p_i) masks
  over the same weights (``Prior.scale`` holds the keep probabilities p: a pytree like the
  weights, or one number). KL = :func:`genbounds.bounds.kl_bernoulli_masks`.
* ``matrix_normal`` (Kronecker-factored Gaussian; Huang et al. 2020, "Stochastic neural network
  with Kronecker flow", AISTATS, its linear case): every dense weight matrix W ~ MN(M, A A^T,
  B B^T), i.e. W = M + A E B^T, with ``rho`` holding unconstrained squares whose lower triangle
  (softplus diagonal) gives A and B (:func:`matrix_normal_factors`); biases and convolution
  kernels stay factorised Gaussians (a product of independent parts: the KLs add). The prior is
  the isotropic N(M0, s^2 I); KL = :func:`genbounds.bounds.kl_matrix_normal`. Per-example draws
  are exact for dense layers (``h W = h M + ||h A|| z B^T``); a convolution draws its factorised
  kernel per example as for ``gaussian``, so certificate (b) stays exact. Kronecker *flows*
  (nonlinear) are not offered: their KL can only be estimated by Monte Carlo, which a
  certificate cannot use.

Each family gives two per-example logit functions. ``independent_logits`` is exact: every
example gets its own draw of all weights, as certificate (b) requires. ``train_logits`` is what
the training objective differentiates:

* Gaussian, matrix-normal: the local reparameterisation (exact, :mod:`genbounds.estimators.nets`); a
  built-in CNN's Gaussian convolutions train with flipout where :func:`genbounds.estimators.nets.conv_train_draw`
  finds it cheaper (``Net.apply_train``: every example's kernel exactly the posterior's, correlated across the
  minibatch; Wen et al. 2018), else with the exact per-example draw;
* Laplace: one draw shared by the minibatch (reparameterised);
* mask: the *moment-matched Gaussian* surrogate ("fast dropout", Wang & Manning 2013; the
  local reparameterisation of Kingma, Salimans & Welling 2015): the masked weight has mean
  q w and variance q (1 - q) w^2, and a pre-activation sums many independent such terms, so it
  is replaced by the Gaussian with those two moments, whose gradient in q is the pathwise one.
  It is biased (higher moments differ) but has low variance and no score-function term; it
  only steers training. The certificate never uses it: it evaluates true Bernoulli masks drawn
  per example, so the bound holds whatever the estimator.

Exactness of the mask sampler: a mask bit is ``uniform(float32) < q``, and JAX's float32 uniform
takes the values k / 2^23, k = 0 .. 2^23 - 1 (tested), so the keep probability actually sampled
is ceil(q 2^23) / 2^23, not q: a weight with q = 1e-12 is kept with probability 1.2e-7. The
certificate's KL (:func:`mask_kl_float64`) uses those sampled probabilities, widened by a few
float32 ulps of q (the jitted sampler and the host may round the sigmoid differently) and taking
the larger KL at the two ends (the binary kl is convex in q), so it never undercounts.

Precision of the location-scale draws: the noise of every Gaussian, Laplace and matrix-normal draw is
drawn and added in at least float32 (:func:`genbounds.estimators.nets.noise_dtype`), whatever the
weights' dtype. JAX's bfloat16 normal takes 128 values in [-2.89, 2.52], so a draw in the weights'
half precision would sample a discrete, truncated law while the certificate charges the Gaussian's KL
(a bfloat16 one-weight net erring only beyond 2.6 sigma: true risk 0.00466, certified 0.00197 before
this rule). A float32 sample rounded afterwards is a deterministic map of a draw of Q: sound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ...bounds import (
    kl_bernoulli,
    kl_bernoulli_masks,
    kl_diag_gaussian,
    kl_diag_laplace,
    kl_matrix_normal,
    to_float64,
)
from ...bounds._array import check_choice
from ...bounds.weight_kl import aligned_leaves
from ..nets import Net, location_scale_draw, noise_dtype, per_example_apply
from .base import Params, Posterior, init_posterior, posterior_scale, softplus_inv

__all__ = ["Family", "FamilyName", "FAMILIES", "GAUSSIAN", "LAPLACE", "MASK", "MATRIX_NORMAL", "get_family",
           "posterior_scale", "magnitude_mask", "mask_prior", "mask_keep", "masked_weights", "mask_kl_float64",
           "sampled_keep_interval", "UNIFORM_GRID", "matrix_normal_factors"]


class FamilyName(StrEnum):
    """The posterior families, by the names configs, records and the command line use."""

    GAUSSIAN = "gaussian"
    LAPLACE = "laplace"
    MASK = "mask"
    MATRIX_NORMAL = "matrix_normal"


@dataclass(frozen=True, eq=False)
class Family:
    """How one kind of posterior is sampled, trained and charged for (see the module docstring).

    Attributes:
        name: the family's name (what records and ``--family`` say).
        init: ``(start_params, prior) -> Posterior``: where training starts.
        sample: ``(key, post) -> params``: one draw of every weight.
        train_logits: ``(net, key, post, x) -> logits``: the per-example surrogate the objective
            differentiates.
        independent_logits: ``(net, key, post, x) -> logits``: an exact independent draw per example.
        kl: ``(post, prior_mean, prior_scale) -> scalar``: KL(Q||P) on JAX arrays (training).
        kl_float64: ``(post, prior_mean, prior_scale) -> float``: KL(Q||P) for the certificate,
            never below the KL of what ``sample`` draws.
        center: ``post -> params``: the family's deterministic predictor (posterior mean; the
            thresholded mask).
        distributions: ``post -> pytree of numpyro distributions`` (for users who want them).
        check_prior_scale: ``(scale, prior_mean) -> None``: raises ValueError unless ``scale`` is
            a valid ``Prior.scale`` for this family.
        scale_means: what ``Prior.scale`` holds, in words ("std", "keep probabilities", ...).
        trains_mean: False when ``post.mean`` must stay the prior's (masks).
        learns_prior_scale: whether the prior scale may be learned and paid for on the
            Dziugaite & Roy grid (not for keep probabilities).
        needs_data_prior: whether the prior mean must be trained on data (masks keep the
            prior's weights: a data-free prior would mask the random initialisation).
        private_mean: whether the prior mean may be drawn by a differentially private mechanism
            (a location family).
        masks_weights: the posterior is a Bernoulli mask over the prior's fixed weights: the
            prior's keep probabilities come from a mask of the prior net, and a run also certifies
            the deterministic masks (magnitude-pruned, thresholded) on the same bound set.
        eval_batch: largest batch for ``independent_logits`` (memory: a mask per example is as
            large as the network).
    """

    name: FamilyName
    init: Callable[[Params, Any], Any]
    sample: Callable[[jax.Array, Any], Params]
    train_logits: Callable[[Net, jax.Array, Any, jax.Array], jax.Array]
    independent_logits: Callable[[Net, jax.Array, Any, jax.Array], jax.Array]
    kl: Callable[[Any, Params, Any], jax.Array]
    kl_float64: Callable[[Any, Params, Any], float]
    center: Callable[[Any], Params]
    distributions: Callable[[Any], Params]
    check_prior_scale: Callable[[Any, Params], None]
    scale_means: str = "std"
    trains_mean: bool = True
    learns_prior_scale: bool = True
    needs_data_prior: bool = False
    private_mean: bool = True
    masks_weights: bool = False
    eval_batch: int = 1000

    def __reduce__(self) -> tuple:
        """A registered family pickles as its name (its functions are looked up again when loaded)."""
        if _REGISTRY.get(self.name) is not self:
            raise TypeError(f"family {self.name.value!r} is not the registered one: only registered families pickle")
        return get_family, (self.name.value,)


def _check_positive_scale(scale: Any, prior_mean: Params) -> None:
    """A location-scale prior's scale: one finite number > 0 (not text, not a boolean)."""
    if (not np.isscalar(scale) or isinstance(scale, str | bytes | bool | np.bool_)
            or not np.isreal(scale) or not (math.isfinite(scale) and scale > 0)):
        raise ValueError(f"argument 'scale' must be a number > 0 (finite, not text), got {scale!r}")


def _location_scale(name: FamilyName, noise: Callable, kl_fn: Callable, local: bool, distribution: type,
                    scale_means: str) -> Family:
    def init(start, prior):
        return init_posterior(start, prior.scale)

    def sample(key, post):
        return location_scale_draw(post.mean, posterior_scale(post), noise)(key)

    def independent(net, key, post, x):
        if local:
            return net.apply_independent(key, post.mean, posterior_scale(post), x)
        return per_example_apply(net.apply, key, lambda k: sample(k, post), x)

    def shared(net, key, post, x):
        return net.apply(sample(key, post), x)

    def train(net, key, post, x):       # the net's training law (apply_train) if set, else the exact draw
        return (net.apply_train or net.apply_independent)(key, post.mean, posterior_scale(post), x)

    return Family(
        name, init, sample, train if local else shared, independent,
        kl=lambda post, mean_p, scale_p: kl_fn(post.mean, posterior_scale(post), mean_p, scale_p),
        kl_float64=lambda post, mean_p, scale_p: float(kl_fn(to_float64(post.mean), to_float64(posterior_scale(post)),
                                                             to_float64(mean_p), to_float64(scale_p))),
        center=lambda post: post.mean,
        distributions=lambda post: jax.tree_util.tree_map(distribution, post.mean, posterior_scale(post)),
        check_prior_scale=_check_positive_scale, scale_means=scale_means)


# --------------------------------------------------------------------------------------------
# Bernoulli masks

#: JAX's float32 uniform returns k / UNIFORM_GRID, k = 0 .. UNIFORM_GRID - 1 (23 mantissa bits).
UNIFORM_GRID = 2.0 ** 23
#: Relative slack on a float32 keep probability between the host and the jitted sampler (ulps).
_Q_SLACK = 16 * 2.0 ** -24


def mask_keep(post) -> Params:
    """Keep probabilities q = sigmoid(rho) of a mask posterior (a pytree like the weights)."""
    return jax.tree_util.tree_map(jax.nn.sigmoid, post.rho)


def sampled_keep_interval(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The keep probabilities ``uniform(float32) < q`` can have for float32 ``q`` computed on the
    host, allowing the device a few ulps of difference: P(u < q) = ceil(q 2^23) / 2^23, evaluated
    at q (1 -+ slack) (and at the smallest positive float for q = 0). Returns float64 ``(lo, hi)``."""
    q = np.asarray(q, np.float64)
    lo = np.ceil(np.clip(q * (1.0 - _Q_SLACK), 0.0, 1.0) * UNIFORM_GRID) / UNIFORM_GRID
    hi = np.ceil(np.clip(q * (1.0 + _Q_SLACK) + 1e-45, 0.0, 1.0) * UNIFORM_GRID) / UNIFORM_GRID
    return lo, hi


def mask_kl_float64(post, prior_mean: Params, prior_keep: Params) -> float:
    """KL of the masks the sampler actually draws to the Bernoulli prior, in float64, rounded up:
    per weight the larger binary kl at the two ends of :func:`sampled_keep_interval` (the kl is
    convex in q, so that is its maximum over the interval). Refuses weights that differ from the
    prior's (the KL would be infinite)."""
    for a, b in zip(jax.tree_util.tree_leaves(post.mean), jax.tree_util.tree_leaves(prior_mean)):
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            raise ValueError("a mask posterior must keep the prior's weights exactly (its KL to the prior is "
                             "infinite otherwise); train only the keep logits")
    q_leaves = [np.asarray(jax.device_get(leaf)) for leaf in jax.tree_util.tree_leaves(mask_keep(post))]
    p_leaves = [np.asarray(leaf, np.float64) for leaf in aligned_leaves("prior_keep", prior_keep, post.mean)]
    total = 0.0
    for q, p in zip(q_leaves, p_leaves):
        lo, hi = sampled_keep_interval(q)
        p = np.broadcast_to(p, q.shape)
        total += float(np.sum(np.maximum(kl_bernoulli(lo, p), kl_bernoulli(hi, p))))
    if not np.isfinite(total):
        raise ValueError("KL is infinite: a prior keep probability in {0, 1} differs from the posterior's")
    return total


def masked_weights(weights: Params, keep: Params) -> Params:
    """The weights with every weight whose ``keep`` entry is False set to 0 (a deterministic mask:
    the thresholded posterior, a magnitude-pruned net)."""
    return jax.tree_util.tree_map(lambda w, k: jnp.where(k, w, 0.0), weights, keep)


def _mask_sample(key, post):
    leaves, treedef = jax.tree_util.tree_flatten(post.mean)
    keys = jax.random.split(key, len(leaves))
    keep = jax.tree_util.tree_leaves(mask_keep(post))
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.where(jax.random.uniform(k, w.shape, jnp.float32) < q, w, 0.0)
                  for k, w, q in zip(keys, leaves, keep)])


def _mask_moments(post) -> tuple[Params, Params]:
    """Mean q w and std |w| sqrt(q (1 - q)) of every masked weight (the training surrogate)."""
    q = mask_keep(post)
    mean = jax.tree_util.tree_map(lambda w, qq: qq * w, post.mean, q)
    std = jax.tree_util.tree_map(lambda w, qq: jnp.abs(w) * jnp.sqrt(qq * (1.0 - qq) + 1e-12), post.mean, q)
    return mean, std


def _check_keep_probabilities(keep: Any, prior_mean: Params) -> None:
    """A mask prior's keep probabilities: one number or a pytree like the weights, in [0, 1]."""
    if not (np.isscalar(keep) or jax.tree_util.tree_structure(keep) == jax.tree_util.tree_structure(prior_mean)):
        raise ValueError("argument 'scale' of a mask prior must be one keep probability or a pytree like 'mean'")
    if not all(np.all((np.asarray(x) >= 0) & (np.asarray(x) <= 1)) for x in jax.tree_util.tree_leaves(keep)):
        raise ValueError("argument 'scale' of a mask prior holds keep probabilities: they must lie in [0, 1]")


def _mask_init(start, prior):
    """Start at the prior (KL 0): the prior's weights, logits of its keep probabilities."""
    leaves, treedef = jax.tree_util.tree_flatten(prior.mean)
    keep = aligned_leaves("scale", prior.scale, prior.mean)
    rho = [jnp.full(jnp.shape(w), np.log(p) - np.log1p(-np.asarray(p, np.float64)), jnp.float32)
           for w, p in zip(leaves, keep)]
    return Posterior(jax.tree_util.tree_map(jnp.asarray, prior.mean), jax.tree_util.tree_unflatten(treedef, rho))


def magnitude_mask(params: Params, sparsity: float) -> Params:
    """Global magnitude pruning: keep the ``1 - sparsity`` fraction of all parameters with the
    largest |w| (ties kept), as a pytree of bools like ``params``."""
    flat = np.concatenate([np.abs(np.asarray(x, np.float64)).ravel() for x in jax.tree_util.tree_leaves(params)])
    n_keep = int(round((1.0 - sparsity) * flat.size))
    threshold = np.inf if n_keep == 0 else np.sort(flat)[::-1][n_keep - 1]
    return jax.tree_util.tree_map(lambda x: np.abs(np.asarray(x, np.float64)) >= threshold, params)


def mask_prior(mask: Params, flip: float) -> Params:
    """Bernoulli prior keep probabilities from a mask chosen before the bound set is seen:
    1 - ``flip`` where the mask keeps a weight, ``flip`` where it prunes it."""
    return jax.tree_util.tree_map(lambda m: np.where(m, 1.0 - flip, flip).astype(np.float32), mask)


MASK = Family(
    FamilyName.MASK, _mask_init, _mask_sample,
    train_logits=lambda net, key, post, x: net.apply_independent(key, *_mask_moments(post), x),
    independent_logits=lambda net, key, post, x: per_example_apply(net.apply, key, lambda k: _mask_sample(k, post),
                                                                  x),
    kl=lambda post, mean_p, keep_p: kl_bernoulli_masks(mask_keep(post), keep_p),
    kl_float64=mask_kl_float64,
    center=lambda post: masked_weights(post.mean, jax.tree_util.tree_map(lambda q: q > 0.5, mask_keep(post))),
    distributions=lambda post: jax.tree_util.tree_map(lambda q: dist.Bernoulli(probs=q), mask_keep(post)),
    check_prior_scale=_check_keep_probabilities, scale_means="keep probabilities", trains_mean=False,
    learns_prior_scale=False, needs_data_prior=True, private_mean=False, masks_weights=True, eval_batch=100)

# --------------------------------------------------------------------------------------------
# Matrix-normal (Kronecker-factored) Gaussian weights


def _tril_positive(raw: jax.Array) -> jax.Array:
    """Lower-triangular factor with a softplus (positive) diagonal from an unconstrained square."""
    return jnp.tril(raw, -1) + jnp.diag(jax.nn.softplus(jnp.diagonal(raw)))


def matrix_normal_factors(post) -> Params:
    """The scales of a matrix-normal posterior, a pytree like ``post.mean``: ``{"a": A, "b": B}``
    (Cholesky factors, W = M + A E B^T) for every dense weight matrix, softplus std elsewhere
    (biases, convolution kernels: factorised Gaussian)."""
    return jax.tree_util.tree_map(
        lambda m, r: {"a": _tril_positive(r["a"]), "b": _tril_positive(r["b"])} if isinstance(r, dict)
        else jax.nn.softplus(r), post.mean, post.rho)


def _mn_kl_of(mean: Params, factors: Params, prior_mean: Params, prior_scale) -> Any:
    """Sum over leaves: :func:`kl_matrix_normal` for dense matrices (prior N(M0, s^2 I): factors s and
    1), :func:`kl_diag_gaussian` elsewhere. JAX leaves give a JAX scalar, NumPy leaves float64."""
    kls = jax.tree_util.tree_map(
        lambda m, f, m0: kl_matrix_normal(m, f["a"], f["b"], m0, prior_scale, 1.0) if isinstance(f, dict)
        else kl_diag_gaussian(m, f, m0, prior_scale), mean, factors, prior_mean)
    return sum(jax.tree_util.tree_leaves(kls))


def _mn_init(start, prior):
    """Isotropic start: A = B = sqrt(s) I for dense matrices (U kron V = s^2 I), std s elsewhere."""
    def rho(w):
        w = jnp.asarray(w)
        if w.ndim == 2:
            return {k: jnp.diag(jnp.full((d,), softplus_inv(jnp.float32(math.sqrt(prior.scale)))))
                    for k, d in (("a", w.shape[0]), ("b", w.shape[1]))}
        return jnp.full(w.shape, softplus_inv(jnp.float32(prior.scale)))
    return Posterior(jax.tree_util.tree_map(jnp.asarray, start), jax.tree_util.tree_map(rho, start))


def _mn_sample(key, post):
    leaves, treedef = jax.tree_util.tree_flatten(post.mean)
    factors = treedef.flatten_up_to(matrix_normal_factors(post))
    keys = jax.random.split(key, len(leaves))
    out = []
    for k, m, f in zip(keys, leaves, factors):
        # drawn and added in at least float32, then the weights' promoted dtype (nets.noise_dtype: a half-precision
        # normal takes 128 values in [-2.89, 2.52], not the Gaussian whose KL is charged)
        fs = jax.tree_util.tree_leaves(f)
        out_dtype = jnp.result_type(m, *fs)
        wide = noise_dtype(out_dtype)
        eps = jax.random.normal(k, m.shape, wide)
        shift = f["a"].astype(wide) @ eps @ f["b"].astype(wide).T if isinstance(f, dict) else f.astype(wide) * eps
        out.append((m.astype(wide) + shift).astype(out_dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


def _mn_logits(net, key, post, x):
    if net.apply_dropout is None:
        raise ValueError("family 'matrix_normal' needs a built-in network (genbounds.estimators.nets.mlp or cnn): "
                         "its per-example draws go through the dense layers' local reparameterisation")
    return net.apply_independent(key, post.mean, matrix_normal_factors(post), x)


MATRIX_NORMAL = Family(
    FamilyName.MATRIX_NORMAL, _mn_init, _mn_sample, train_logits=_mn_logits, independent_logits=_mn_logits,
    kl=lambda post, mean_p, scale_p: _mn_kl_of(post.mean, matrix_normal_factors(post), mean_p, scale_p),
    kl_float64=lambda post, mean_p, scale_p: float(_mn_kl_of(to_float64(post.mean), to_float64(matrix_normal_factors(
        post)), to_float64(mean_p), float(scale_p))),
    center=lambda post: post.mean,
    distributions=lambda post: jax.tree_util.tree_map(
        lambda m, f: dist.MatrixNormal(m, f["a"], f["b"]) if isinstance(f, dict) else dist.Normal(m, f),
        post.mean, matrix_normal_factors(post)),
    check_prior_scale=_check_positive_scale)

GAUSSIAN = _location_scale(FamilyName.GAUSSIAN, jax.random.normal, kl_diag_gaussian, local=True,
                           distribution=dist.Normal, scale_means="std")
LAPLACE = _location_scale(FamilyName.LAPLACE, jax.random.laplace, kl_diag_laplace, local=False,
                          distribution=dist.Laplace, scale_means="scale b")

_REGISTRY: dict[FamilyName, Family] = {f.name: f for f in (GAUSSIAN, LAPLACE, MASK, MATRIX_NORMAL)}
#: The posterior families' names.
FAMILIES = tuple(name.value for name in _REGISTRY)


def get_family(family: Family | str) -> Family:
    """The :class:`Family` called ``family`` (one of :data:`FAMILIES`); a :class:`Family` is
    returned as it is. Names are read here once, where they enter the library."""
    if isinstance(family, Family):
        return family
    return _REGISTRY[check_choice("family", family, FamilyName)]
