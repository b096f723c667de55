"""Training loops: a deterministic net (prior mean, or DR17's stage 1) and a posterior
optimised against a PAC-Bayes objective. Pure JAX steps under ``jit``, optax optimisers,
explicit keys, a tqdm progress bar, and a per-epoch hook for checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from estimators.data import Dataset
from estimators.nets import Net
from estimators.objectives import bounded_cross_entropy, objective, objective_extras, zero_one
from estimators.snn import Posterior, Prior, kl_divergence, posterior_scale, sample_params

__all__ = ["make_optimizer", "train_deterministic", "PosteriorState", "train_posterior"]


def make_optimizer(name: str, lr: float, momentum: float = 0.9) -> optax.GradientTransformation:
    """``sgd`` (with momentum) or ``adam``."""
    if name == "sgd":
        return optax.sgd(lr, momentum=momentum)
    if name == "adam":
        return optax.adam(lr)
    raise ValueError(f"argument 'optimizer' must be 'sgd' or 'adam', got {name!r}")


def _epoch_batches(key: jax.Array, n: int, batch_size: int) -> np.ndarray:
    """Shuffled minibatch indices [steps, batch] (the last partial batch is dropped)."""
    perm = np.asarray(jax.random.permutation(key, n))
    steps = max(1, n // batch_size)
    return perm[: steps * min(batch_size, n)].reshape(steps, -1)


def train_deterministic(
    net: Net, params: Any, data: Dataset, *, key: jax.Array, epochs: int, batch_size: int = 128,
    optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.9, progress: bool = True,
    desc: str = "prior",
) -> Any:
    """Minimise softmax cross-entropy on ``data`` (e.g. the prior's share of the training set)."""
    opt = make_optimizer(optimizer, lr, momentum)
    x, y = jnp.asarray(data.x), jnp.asarray(data.y)

    @jax.jit
    def step(params, opt_state, idx):
        def loss(p):
            logits = net.apply(p, x[idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    opt_state = opt.init(params)
    steps = max(1, len(data) // batch_size)
    with tqdm(total=epochs * steps, desc=desc, disable=not progress, leave=False) as bar:
        for epoch in range(epochs):
            for idx in _epoch_batches(jax.random.fold_in(key, epoch), len(data), batch_size):
                params, opt_state, value = step(params, opt_state, idx)
                bar.update(1)
            bar.set_postfix(loss=f"{float(value):.4f}")
    return params


class PosteriorState(NamedTuple):
    """What a checkpoint holds: trainable parameters and optimiser state."""

    trainable: dict
    opt_state: Any


def train_posterior(
    net: Net, post: Posterior, prior: Prior, data: Dataset, *, key: jax.Array, n_bound: int,
    objective_name: str, delta: float = 0.025, epochs: int = 10, batch_size: int = 128,
    optimizer: str = "sgd", lr: float = 0.001, momentum: float = 0.95, p_min: float = 1e-4,
    learn_prior_scale: bool = False, independent: bool = True, progress: bool = True,
    state: PosteriorState | None = None, start_epoch: int = 0,
    on_epoch: Callable[[int, PosteriorState, dict], None] | None = None, desc: str = "posterior",
) -> tuple[PosteriorState, list[dict]]:
    """Optimise the posterior (and optionally the prior scale) against a PAC-Bayes objective.

    The posterior may train on all of ``data``; the objective's ``n`` is ``n_bound``, the
    size of the set the certificate will use. With ``independent`` (Gaussian posteriors of
    built-in nets) each example gets its own weight draw through the local
    reparameterisation, which lowers the gradient variance; otherwise one weight draw is
    shared by the minibatch. Returns the final state and per-epoch metrics.
    """
    opt = make_optimizer(optimizer, lr, momentum)
    x, y = jnp.asarray(data.x), jnp.asarray(data.y)
    prior_mean = jax.tree_util.tree_map(jnp.asarray, prior.mean)
    use_independent = independent and prior.family == "gaussian"

    def loss(trainable, k, idx):
        p = Posterior(trainable["mean"], trainable["rho"])
        scale_p = jnp.exp(trainable["log_prior_scale"]) if learn_prior_scale else prior.scale
        kl = kl_divergence(p, prior_mean, scale_p, prior.family)
        if use_independent:
            logits = net.apply_independent(k, p.mean, posterior_scale(p), x[idx])
        else:
            logits = net.apply(sample_params(k, p, prior.family), x[idx])
        emp = bounded_cross_entropy(logits, y[idx], p_min).mean()
        value = objective(objective_name, emp, kl, n_bound, delta, trainable["extras"])
        return value, {"objective": value, "kl": kl, "emp_ce": emp, "err": zero_one(logits, y[idx]).mean()}

    @jax.jit
    def step(state, k, idx):
        grads, metrics = jax.grad(loss, has_aux=True)(state.trainable, k, idx)
        updates, opt_state = opt.update(grads, state.opt_state, state.trainable)
        return PosteriorState(optax.apply_updates(state.trainable, updates), opt_state), metrics

    if state is None:
        trainable = {"mean": post.mean, "rho": post.rho, "extras": objective_extras(objective_name)}
        if learn_prior_scale:
            trainable["log_prior_scale"] = jnp.log(jnp.float32(prior.scale))
        state = PosteriorState(trainable, opt.init(trainable))
    history: list[dict] = []
    steps = max(1, len(data) // batch_size)
    with tqdm(total=(epochs - start_epoch) * steps, desc=desc, disable=not progress, leave=False) as bar:
        for epoch in range(start_epoch, epochs):
            ekey = jax.random.fold_in(key, epoch)
            sums: dict[str, Any] = {}
            batches = _epoch_batches(ekey, len(data), batch_size)
            for i, idx in enumerate(batches):
                state, metrics = step(state, jax.random.fold_in(ekey, 10_000 + i), idx)
                sums = {k_: sums.get(k_, 0.0) + v for k_, v in metrics.items()}
                bar.update(1)
            record = {"epoch": epoch + 1, **{k_: float(v) / len(batches) for k_, v in sums.items()}}
            if learn_prior_scale:
                record["prior_scale"] = float(jnp.exp(state.trainable["log_prior_scale"]))
            history.append(record)
            bar.set_postfix(obj=f"{record['objective']:.4f}", kl=f"{record['kl']:.1f}")
            if on_epoch is not None:
                on_epoch(epoch + 1, state, record)
    return state, history
