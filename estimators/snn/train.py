"""Training a stochastic network: the posterior step builder and the two training loops.

:func:`posterior_step` is the one step of posterior training (used by :func:`train_posterior`,
:func:`genbounds.estimators.snn.certification.certify_network` and the benchmark);
:func:`train_deterministic` trains a prior's mean or DR17's SGD stage with
:func:`genbounds.estimators.steps.supervised_step`. Optimisers are ``optax`` transformations
(schedules included); minibatches follow :func:`genbounds.estimators.steps.epoch_batches`.
Each epoch is one compiled loop over device-resident data, split over the local devices when
there are several; the host only updates the progress bar and calls the per-epoch hook
(checkpoints) between epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...bounds import dp_prior_kl_adjustment
from ..augment import Augment
from ..data import Dataset
from ..devices import batch_sharding, data_mesh, replicated
from ..nets import Net
from ..progress import Progress
from ..steps import Step, compile_epoch, owned, supervised_step
from .objectives import Objective, bounded_cross_entropy, get_objective, objective_extras, zero_one
from .posterior import Posterior, Prior

__all__ = ["PosteriorParams", "PosteriorState", "PosteriorMetrics", "posterior_step", "train_deterministic",
           "train_posterior"]


class PosteriorParams(NamedTuple):
    """What posterior training optimises.

    Attributes:
        mean, rho: pytrees of the posterior's means and softplus-scales.
        log_prior_scale: log of the learned prior scale (DR17), or None when it is fixed.
        extras: the objective's own scalars (lambda's ``lam``, Catoni's ``C``), possibly empty.
    """

    mean: Any
    rho: Any
    log_prior_scale: jax.Array | None
    extras: dict


class PosteriorState(NamedTuple):
    """Parameters and optimiser state: what a checkpoint holds."""

    params: PosteriorParams
    opt_state: optax.OptState

    @property
    def posterior(self) -> Posterior:
        return Posterior(self.params.mean, self.params.rho)

    @property
    def prior_scale(self) -> float | None:
        """The learned prior scale, or None when the prior scale was fixed."""
        lps = self.params.log_prior_scale
        return None if lps is None else float(np.exp(np.asarray(lps)))


class PosteriorMetrics(NamedTuple):
    """Per-step metrics: the objective, KL(Q||P), the bounded cross-entropy and the 0-1 error."""

    objective: jax.Array
    kl: jax.Array
    emp_ce: jax.Array
    err: jax.Array


def posterior_step(
    net: Net, prior: Prior, *, optimizer: optax.GradientTransformation, objective_name: Objective | str, n_bound: int,
    delta: float = 0.025, p_min: float = 1e-4, learn_prior_scale: bool = False, independent: bool = True,
) -> Step:
    """One step of posterior training against a PAC-Bayes objective.

    ``init(post: Posterior) -> PosteriorState``; ``step(state, key, xb, yb) -> (state,
    PosteriorMetrics)`` with ``xb: [b, ...]``, ``yb: [b]``. The objective's ``n`` is ``n_bound``,
    the size of the set the certificate will use. With ``independent`` each example gets its own
    draw through the family's ``train_logits`` (the local reparameterisation for Gaussian weights,
    which lowers the gradient variance; the moment-matched surrogate for masks: see
    :mod:`genbounds.estimators.snn.families`); otherwise one draw is shared by the minibatch.
    With ``learn_prior_scale`` the prior scale is trained too (to be rounded to DR17's grid, union
    bound paid, when certifying). A family whose weights are fixed (masks) trains ``rho`` only.
    """
    fam = prior.family
    obj = get_objective(objective_name)
    if learn_prior_scale and not fam.learns_prior_scale:
        raise ValueError(f"argument 'learn_prior_scale': a {fam.name.value} prior has {fam.scale_means}, not a scale "
                         "to learn")
    prior_mean = owned(prior.mean)                  # never shares buffers with a donated state
    prior_scale = prior.scale if np.isscalar(prior.scale) else owned(prior.scale)   # a pytree of keep probabilities
    # A differentially private prior: the bound's KL gains a constant (the objective is the bound paid).
    kl_offset = 0.0 if prior.dp is None else dp_prior_kl_adjustment(prior.dp["epsilon"], n_bound, delta)

    def loss(params: PosteriorParams, key, xb, yb):
        mean = params.mean if fam.trains_mean else jax.lax.stop_gradient(params.mean)
        post = Posterior(mean, params.rho)
        scale_p = jnp.exp(params.log_prior_scale) if learn_prior_scale else prior_scale
        kl = fam.kl(post, prior_mean, scale_p) + kl_offset
        if independent:
            logits = fam.train_logits(net, key, post, xb)
        else:
            logits = net.apply(fam.sample(key, post), xb)
        per_example = bounded_cross_entropy(logits, yb, p_min)
        emp = per_example.mean()
        if obj.relative:        # surrogate rates of the excess loss over the prior's own network
            ref_wrong = jax.lax.stop_gradient(zero_one(net.apply(prior_mean, xb), yb))
            rates = jnp.stack([jnp.mean((1.0 - ref_wrong) * per_example), jnp.mean(ref_wrong * (1.0 - per_example))])
            value = obj(rates, kl, n_bound, delta, params.extras)
        else:
            value = obj(emp, kl, n_bound, delta, params.extras)
        return value, PosteriorMetrics(value, kl, emp, zero_one(logits, yb).mean())

    def init(post: Posterior) -> PosteriorState:
        lps = jnp.log(jnp.float32(prior.scale)) if learn_prior_scale else None
        params = PosteriorParams(*owned((post.mean, post.rho)), lps, objective_extras(obj))
        return PosteriorState(params, optimizer.init(params))

    def step(state: PosteriorState, key, xb, yb) -> tuple[PosteriorState, PosteriorMetrics]:
        grads, metrics = jax.grad(loss, has_aux=True)(state.params, key, xb, yb)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return PosteriorState(optax.apply_updates(state.params, updates), opt_state), metrics

    return Step(init, step)


def _on_devices(data: Dataset, batch_size: int, devices) -> tuple[Any, Any, jax.Array, jax.Array]:
    """The data mesh, the minibatch sharding, and ``x``, ``y`` resident on every device."""
    mesh = data_mesh(devices)
    x, y = replicated(mesh, jnp.asarray(data.x)), replicated(mesh, jnp.asarray(data.y))
    return mesh, batch_sharding(mesh, min(batch_size, len(data))), x, y


def train_deterministic(
    net: Net, params: Any, data: Dataset, *, key: jax.Array, epochs: int, batch_size: int = 128,
    optimizer: optax.GradientTransformation, dropout: float = 0.0, augment: Augment | None = None,
    progress: bool = True, desc: str = "prior", devices: list | None = None,
) -> Any:
    """Minimise softmax cross-entropy on ``data`` (e.g. the prior's share of the training set),
    with ``dropout`` on the hidden activations when > 0 and each minibatch transformed by ``augment``
    when given (:func:`genbounds.estimators.steps.supervised_step`).

    Each epoch is one compiled loop over device-resident data (:func:`genbounds.estimators.steps.
    compile_epoch`); with several ``devices`` (default: all local devices) each minibatch is split
    over them (data parallelism, gradients all-reduced by XLA)."""
    train = supervised_step(net, optimizer, dropout, augment)
    mesh, sharding, x, y = _on_devices(data, batch_size, devices)
    epoch_fn = compile_epoch(train.step, m=len(data), batch_size=batch_size, sharding=sharding)
    state = replicated(mesh, train.init(params))
    with Progress(epochs, desc, unit="epoch", enabled=progress) as bar:
        for epoch in range(epochs):
            state, losses = epoch_fn(state, jax.random.fold_in(key, epoch), x, y)
            bar.update(1, loss=f"{float(losses[-1]):.4f}")
    return state.params


def train_posterior(
    train: Step, post: Posterior, data: Dataset, *, key: jax.Array, epochs: int = 10, batch_size: int = 128,
    progress: bool = True, state: PosteriorState | None = None, start_epoch: int = 0,
    on_epoch: Callable[[int, PosteriorState, dict], None] | None = None, desc: str = "posterior",
    devices: list | None = None,
) -> tuple[PosteriorState, list[dict]]:
    """Optimise the posterior (and the prior scale when the step learns it) with ``train``, a
    :func:`posterior_step`: ``train_posterior(posterior_step(net, prior, ...), post, data, key=key)``.

    The posterior may train on all of ``data``; the objective's ``n`` is the step's ``n_bound``. Each
    epoch is one compiled loop over device-resident data; with several ``devices`` (default: all
    local devices) each minibatch is split over them. The host acts only between epochs: resumes from
    ``state`` at ``start_epoch``, and ``on_epoch(epoch, state, record)`` runs after each epoch
    (checkpoints). Returns the final state and per-epoch mean metrics (with ``prior_scale`` when learned).
    """
    mesh, sharding, x, y = _on_devices(data, batch_size, devices)
    epoch_fn = compile_epoch(train.step, m=len(data), batch_size=batch_size, sharding=sharding)
    state = replicated(mesh, train.init(post) if state is None else owned(state))
    history: list[dict] = []
    with Progress(epochs - start_epoch, desc, unit="epoch", enabled=progress) as bar:
        for epoch in range(start_epoch, epochs):
            state, metrics = epoch_fn(state, jax.random.fold_in(key, epoch), x, y)
            record = {"epoch": epoch + 1, **{k: float(jnp.mean(v)) for k, v in metrics._asdict().items()}}
            if state.params.log_prior_scale is not None:
                record["prior_scale"] = state.prior_scale
            history.append(record)
            bar.update(1, obj=f"{record['objective']:.4f}", kl=f"{record['kl']:.1f}")
            if on_epoch is not None:
                on_epoch(epoch + 1, state, record)
    return state, history
