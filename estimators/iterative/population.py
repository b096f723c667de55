"""Populations of noisy iterative training runs (Langevin dynamics, SGLD, SGD) as one program,
recording along each trajectory the statistics the bounds of :mod:`genbounds.bounds.iterative`
need.

* :func:`pair_population`: full-batch Langevin dynamics or SGLD (the step
  :func:`genbounds.estimators.steps.langevin_step`) on n - 1 shared points plus one member of a
  pair, vmapped over runs, recording :class:`PairStats` per step (the two members' gradient
  difference, its inner product with the injected noise, the leave-one-out forecast error) and
  the 0-1 errors at checkpoints;
* :func:`sgd_population`: plain minibatch SGD, recording :class:`SGDStats` (gradient variance
  against held-out data, sensitivity to Gaussian perturbations) for Neu et al. (2021).

Their statistics, stacked over outer draws, go to
:func:`genbounds.estimators.iterative.bounds_from_trajectories` and
:func:`genbounds.estimators.iterative.sgd_bounds_from_trajectories`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..losses import zero_one
from ..steps import Schedule, gaussian_noise, langevin_step

__all__ = ["net_losses", "PairStats", "pair_population", "SGDStats", "sgd_population"]


def net_losses(net) -> tuple[Callable, Callable]:
    """Per-example softmax cross-entropy (the training loss) and 0-1 loss (the evaluated, bounded
    loss) of a :class:`~genbounds.estimators.nets.Net`, as ``loss(params, x, y) -> [b]``."""
    def cross_entropy(params, x, y):
        logp = jax.nn.log_softmax(net.apply(params, x))
        return -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]

    return cross_entropy, lambda params, x, y: zero_one(net.apply(params, x), y)


class PairStats(NamedTuple):
    """What the bounds need from a population of full-batch Langevin runs that share n - 1
    training points and one pair (Z_{J,1}, Z_{J,2}), run ``r`` training on member ``u[r]``.

    Attributes:
        xi_sq: ``[runs, T]`` ||xi_t||^2, xi_t = grad l(W_{t-1}, Z_{J,1}) - grad l(W_{t-1}, Z_{J,2}).
        noise_dot: ``[runs, T]`` <nu_t, xi_t^{other - true}> with the realized noise nu_t.
        loo_sq: ``[runs, T]`` E_B ||G_t - Xi_t||^2 = ||grad l(W_{t-1}, z_j) - grad R_{S_{-j}}(W_{t-1})||^2 / (n b)
            with z_j the trained member: Negrea et al.'s leave-one-out forecast error, in expectation
            over a batch of b drawn without replacement (j is in it with probability b / n, and then
            G - Xi = (g_j - gbar_{-j}) / b); b = n for full batch.
        eta, beta: ``[T]`` the schedule.
        train_error, test_error: ``[runs, C]`` 0-1 errors at the C checkpoints (every ``every`` steps).
    """

    xi_sq: jax.Array
    noise_dot: jax.Array
    loo_sq: jax.Array
    eta: jax.Array
    beta: jax.Array
    train_error: jax.Array
    test_error: jax.Array


def pair_population(net, shared_x: jax.Array, shared_y: jax.Array, pair_x: jax.Array, pair_y: jax.Array,
                    u: jax.Array, keys: jax.Array, test_x: jax.Array, test_y: jax.Array, *, schedule: Schedule,
                    steps: int, every: int, batch: int = 0) -> PairStats:
    """Langevin dynamics on softmax cross-entropy for ``len(u)`` runs (vmapped), each on the n - 1
    shared points plus pair member ``u[r]`` (0 or 1), from its own random initialisation and noise
    (``keys: [runs]``), recording :class:`PairStats` (``shared_x: [n-1, ...]``, ``pair_x: [2, ...]``,
    ``test_x: [m, ...]``). ``steps`` must be a multiple of ``every``. ``batch`` = 0: full batch;
    b > 0: SGLD on b examples drawn without replacement at every step (the statistics then also
    compute the full gradient at W_{t-1})."""
    if steps % every:
        raise ValueError(f"argument 'steps' ({steps}) must be a multiple of 'every' ({every})")
    n = shared_x.shape[0] + 1
    if not 0 <= batch <= n:
        raise ValueError(f"argument 'batch' must be in [0, n = {n}], got {batch}")
    b = batch or n

    per_example_loss, zero_one = net_losses(net)

    def one_run(key, u_r):
        k_init, k_noise = jax.random.split(key)
        x = jnp.concatenate([shared_x, pair_x[u_r][None]])
        y = jnp.concatenate([shared_y, pair_y[u_r][None]])

        def statistics(params, grads, noise, xb, yb, eta, beta):
            g_pair = jax.vmap(lambda xx, yy: ravel_pytree(jax.grad(
                lambda p: per_example_loss(p, xx[None], yy[None])[0])(params))[0])(pair_x, pair_y)
            xi = g_pair[0] - g_pair[1]
            xi_other_true = jnp.where(u_r == 0, -xi, xi)
            g_j = g_pair[u_r]
            full = grads if b == n else jax.grad(lambda p: jnp.mean(per_example_loss(p, x, y)))(params)
            mean_others = (n * ravel_pytree(full)[0] - g_j) / (n - 1)
            loo_sq = jnp.sum((g_j - mean_others) ** 2) / (n * b)
            return jnp.sum(xi**2), jnp.vdot(ravel_pytree(noise)[0], xi_other_true), loo_sq

        step = langevin_step(per_example_loss, schedule, statistics)

        def errors(params):
            return jnp.mean(zero_one(params, x, y)), jnp.mean(zero_one(params, test_x, test_y))

        def one_step(s, k):
            if b == n:
                return step.step(s, k, x, y)
            k_batch, k_step = jax.random.split(k)
            idx = jax.random.permutation(k_batch, n)[:b]
            return step.step(s, k_step, x[idx], y[idx])

        def checkpoint(state, ks):
            state, m = jax.lax.scan(one_step, state, ks)
            return state, (m.stats, m.eta, m.beta, errors(state.params))

        ks = jax.random.split(k_noise, steps).reshape(steps // every, every, -1)
        _, (stats, eta, beta, errs) = jax.lax.scan(checkpoint, step.init(net.init(k_init)), ks)
        return tuple(s.reshape(-1) for s in stats), eta.reshape(-1), beta.reshape(-1), errs

    (xi_sq, dot, loo), eta, beta, (tr, te) = jax.vmap(one_run)(keys, u)
    return PairStats(xi_sq, dot, loo, eta[0], beta[0], tr, te)


class SGDStats(NamedTuple):
    """What Neu et al. (2021)'s SGD bound needs from a population of plain SGD runs.

    Attributes:
        variance: ``[runs, T]`` V_t = ||g(W_t, B_t) - gbar(W_t)||^2, gbar the gradient on held-out data
            (the population gradient; never the training set).
        sensitivity: ``[runs, T, G]`` Gamma_t = E_xi ||gbar(W_t) - gbar(W_t + xi)||^2 with
            xi ~ N(0, sigma_{1:t}^2 I), sigma_{1:t}^2 = t sigma^2 (the previous steps), for each sigma of
            the grid; the same held-out data for both terms (common random numbers).
        value_train, value_test: ``[runs, G]`` Delta = E_xi [L(W_T, s) - L(W_T + xi, s)] with
            xi ~ N(0, T sigma^2 I) on the training set and on a test set.
        train_error, test_error: ``[runs]`` the evaluated loss at W_T.
    """

    variance: jax.Array
    sensitivity: jax.Array
    value_train: jax.Array
    value_test: jax.Array
    train_error: jax.Array
    test_error: jax.Array


def sgd_population(init: Callable[[jax.Array], Any], loss: Callable[[Any, jax.Array, jax.Array], jax.Array],
                   evaluate: Callable[[Any, jax.Array, jax.Array], jax.Array], train: tuple, heldout: tuple,
                   test: tuple, keys: jax.Array, *, eta: Callable[[jax.Array], jax.Array], sigmas: tuple[float, ...],
                   steps: int, batch: int, mc: int = 4) -> SGDStats:
    r"""Plain SGD, W_{t+1} = W_t - eta_t g(W_t, B_t) (batches of ``batch`` drawn without replacement),
    for ``len(keys)`` runs (vmapped), recording :class:`SGDStats` for the perturbation scales
    ``sigmas`` (fixed before the runs). ``loss(params, x, y) -> [b]`` is the training loss (its
    gradients drive SGD and the statistics); ``evaluate(params, x, y) -> [b]`` the bounded loss the
    bound is about (e.g. 0-1). ``train``, ``heldout``, ``test``: (x, y) pairs. Expectations over
    the perturbation use ``mc`` Gaussian draws. Neu, Dziugaite, Haghifam & Roy (2021), Theorem 1."""
    sig2 = jnp.asarray(sigmas, jnp.float32) ** 2
    train, heldout, test = (tuple(jnp.asarray(a) for a in pair) for pair in (train, heldout, test))
    xs, ys = train
    n = xs.shape[0]

    def mean_grad(params, x, y):
        return jax.grad(lambda p: jnp.mean(loss(p, x, y)))(params)

    def perturb(key, params, var):
        return jax.tree_util.tree_map(jnp.add, params, gaussian_noise(key, params, jnp.sqrt(var)))

    def one_run(key):
        k_init, k_run = jax.random.split(key)

        def step(params, inp):
            t, k = inp
            k_batch, k_xi = jax.random.split(k)
            idx = jax.random.permutation(k_batch, n)[:batch]
            g = mean_grad(params, xs[idx], ys[idx])
            gbar = ravel_pytree(mean_grad(params, *heldout))[0]
            variance = jnp.sum((ravel_pytree(g)[0] - gbar) ** 2)

            def gamma(var, kk):
                def one(k1):
                    return jnp.sum((gbar - ravel_pytree(mean_grad(perturb(k1, params, var), *heldout))[0]) ** 2)
                return jnp.mean(jax.vmap(one)(jax.random.split(kk, mc)))

            sens = jax.vmap(gamma)(t * sig2, jax.random.split(k_xi, sig2.shape[0]))
            new = jax.tree_util.tree_map(lambda p, gg: p - eta(t) * gg, params, g)
            return new, (variance, sens)

        params, (variance, sens) = jax.lax.scan(step, init(k_init), (jnp.arange(steps), jax.random.split(k_run, steps)))

        def value(var, kk, x, y):
            base = jnp.mean(evaluate(params, x, y))
            pert = jax.vmap(lambda k1: jnp.mean(evaluate(perturb(k1, params, var), x, y)))(jax.random.split(kk, mc))
            return base - jnp.mean(pert)

        k_val = jax.random.fold_in(k_run, steps)
        vt = jax.vmap(lambda v, kk: value(v, kk, *train))(steps * sig2, jax.random.split(k_val, sig2.shape[0]))
        vs = jax.vmap(lambda v, kk: value(v, kk, *test))(steps * sig2, jax.random.split(k_val, sig2.shape[0]))
        return variance, sens, vt, vs, jnp.mean(evaluate(params, *train)), jnp.mean(evaluate(params, *test))

    return SGDStats(*jax.vmap(one_run)(keys))
