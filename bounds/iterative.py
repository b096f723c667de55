r"""Information-theoretic bounds for noisy iterative algorithms (Langevin dynamics, SGLD, SGD).

Every bound here is an instance of one chain rule. For a trajectory :math:`W_{0:T}` and any prior
kernel :math:`Q_t(\cdot \mid W_{<t}, C)` that may depend on conditioning variables C but not on
the information X being charged,

.. math:: I(W_T; X \mid C) \le \sum_t \mathbb{E}\, \mathrm{KL}\big(P(W_t \mid W_{<t}, X, C)
          \,\|\, Q_t(\cdot \mid W_{<t}, C)\big).

A (stochastic-gradient) Langevin step is :math:`W_t = W_{t-1} - \eta_t G_t + \sqrt{2\eta_t/\beta_t}
\,\varepsilon_t` with :math:`\varepsilon_t \sim N(0, I)`. A prior with the same noise whose drift
differs from the true one by :math:`\eta_t \Delta_t` costs
:func:`gaussian_step_kl` :math:`= \beta_t \eta_t \lVert\Delta_t\rVert^2 / 4` nats per step
(:math:`\mathrm{KL}(N(a, s^2 I)\|N(b, s^2 I)) = \lVert a-b\rVert^2/(2 s^2)`, :math:`s^2 = 2\eta/\beta`).

Estimates, not certificates: the bounds are on the *expected* generalization gap, and the
expectations are estimated from runs. Only the conditioning variables sit outside the square
root; everything else (held-out draw, Langevin noise, batches, the hidden bit) is averaged
*inside*. The functions take ``[k_outer, k_inner, T]`` arrays and average the inner runs
before the square root (one inner run per outer draw averages square roots instead, which is
biased low: Jensen). Statements implemented (derived here from the chain rule above, constants
matched against the authors' public code; the theorem numbers were not checked against the
papers' text):

* :func:`negrea_bound`: Negrea, Haghifam, Dziugaite, Khisti & Roy (NeurIPS 2019), data-dependent
  prior forecasting the gradient from a subset :math:`S_J`, :math:`|J^c| = n - m` held out:
  :math:`\mathbb{E}\,\mathrm{gen} \le \mathbb{E}_{J,S_J}\sqrt{\frac{2\sigma^2}{n-m}\sum_t
  \frac{\beta_t\eta_t}{4}\,\mathbb{E}^{J,S_J}\lVert G_t - \Xi_t\rVert^2}` for a
  :math:`\sigma`-subGaussian loss (:math:`\sigma = 1/2` for [0, 1] losses). The leave-one-out,
  full-batch instance (m = n - 1) has :math:`G_t - \Xi_t = \frac1n(\nabla\ell(W, Z_j) -
  \nabla\hat R_{S_{-j}}(W))`.
* :func:`haghifam_ld_bound`: Haghifam, Negrea, Khisti, Roy & Dziugaite (NeurIPS 2020), full-batch
  Langevin dynamics, supersample with one hidden pair (m = 1) and a hypothesis-test prior that
  puts weight :math:`\theta_t` on the wrong member:
  :math:`\mathbb{E}\,\mathrm{gen} \le \mathbb{E}\sqrt{\frac{1}{2n^2}\sum_t \beta_t\eta_t\,
  \mathbb{E}[\theta_t^2 \lVert\xi_t\rVert^2]}` with :math:`\xi_t = \nabla\ell(W_{t-1}, Z_{J,1}) -
  \nabla\ell(W_{t-1}, Z_{J,2})` (the square root of 2 I for a [0, 1] loss, m = 1).
  :func:`hypothesis_llr` and :func:`wrong_member_weight` give the Bayes test.
* :func:`neu_sgd_bound`: Neu, Dziugaite, Haghifam & Roy (COLT 2021), Theorem 1, vanilla SGD
  through a perturbed auxiliary process.

Every public function checks its input by one rule (:func:`_checked`, :func:`check_count`):
statistics are finite and >= 0, step sizes, inverse temperatures, perturbation scales and the
subGaussian constant finite and > 0, signed quantities finite, sample sizes whole numbers >= 1;
anything else is a ``ValueError`` naming the argument (never a NaN or silently dropped term).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from ._array import ArrayLike, check_count, check_probability, check_range

__all__ = ["langevin_noise_variance", "gaussian_step_kl", "negrea_bound", "haghifam_ld_bound",
           "hypothesis_llr", "wrong_member_weight", "neu_information", "neu_sgd_bound"]


_RANGES = {"statistic": (0.0, False), "positive": (0.0, True), "real": (-math.inf, True)}


def _checked(name: str, x: ArrayLike, kind: str = "statistic") -> np.ndarray:
    """The module's input rule: ``x`` as float64 if it is finite and >= 0 (``"statistic"``), > 0
    (``"positive"``: step sizes, inverse temperatures, scales, the subGaussian constant) or any
    real (``"real"``); else ``ValueError`` naming ``name``."""
    lo, lo_open = _RANGES[kind]
    check_range(name, x, lo, math.inf, lo_open=lo_open, hi_open=True)
    return np.asarray(x, np.float64)


def langevin_noise_variance(eta: ArrayLike, beta: ArrayLike) -> np.ndarray:
    """Per-coordinate variance of the injected noise of a Langevin step: 2 eta / beta."""
    return 2.0 * _checked("eta", eta, "positive") / _checked("beta", beta, "positive")


def gaussian_step_kl(beta_eta: ArrayLike, drift_sq: ArrayLike) -> np.ndarray:
    """KL between two Langevin steps whose drifts differ by eta Delta: beta eta ||Delta||^2 / 4.

    ``beta_eta``: beta_t eta_t; ``drift_sq``: ||Delta_t||^2 in gradient units (broadcast)."""
    return _checked("beta_eta", beta_eta, "positive") * _checked("drift_sq", drift_sq) / 4.0


def _runs(name: str, stat: ArrayLike) -> np.ndarray:
    """A ``[k_outer, k_inner, T]`` statistic, checked."""
    a = _checked(name, stat)
    if a.ndim != 3:
        raise ValueError(f"argument '{name}' must be [k_outer, k_inner, T], got shape {a.shape}")
    return a


def _steps(beta_eta: ArrayLike, T: int) -> np.ndarray:
    b = _checked("beta_eta", beta_eta, "positive")
    if b.shape != (T,):
        raise ValueError(f"argument 'beta_eta' must be [T] = [{T}] positive numbers, got shape {b.shape}")
    return b


def negrea_bound(beta_eta: ArrayLike, forecast_error_sq: ArrayLike, n_heldout: int,
                 subgaussian: float = 0.5) -> np.ndarray:
    r"""Negrea et al. (2019) bound per outer draw (J, S_J), ``[k_outer]``.

    .. math:: \sqrt{\frac{2\sigma^2}{n-m}\sum_t \frac{\beta_t\eta_t}{4}\,\overline{\lVert G_t - \Xi_t\rVert^2}}

    Args:
        beta_eta: ``[T]`` beta_t eta_t of each step.
        forecast_error_sq: ``[k_outer, k_inner, T]`` ||G_t - Xi_t||^2: the squared distance between
            the batch gradient and its forecast from (W_{t-1}, J, S_J, batch indices), for inner runs
            that share (J, S_J) (averaged over them: held-out data, noise, batches).
        n_heldout: n - m, the number of held-out points (1 for leave-one-out).
        subgaussian: sigma of the loss (1/2 for a [0, 1] loss).
    The mean over the outer draws estimates the bound on E gen.
    """
    inner = _runs("forecast_error_sq", forecast_error_sq).mean(axis=1)
    b = _steps(beta_eta, inner.shape[1])
    check_count("n_heldout", n_heldout)
    sub = float(_checked("subgaussian", subgaussian, "positive"))
    kl = gaussian_step_kl(b, inner).sum(axis=1)
    return np.sqrt(2.0 * sub**2 * kl / n_heldout)


def haghifam_ld_bound(beta_eta: ArrayLike, theta: ArrayLike, two_sample_sq: ArrayLike, n: int) -> np.ndarray:
    r"""Haghifam et al. (2020) Langevin-dynamics CMI bound per outer draw, ``[k_outer]``.

    .. math:: \sqrt{2 \sum_t \frac{\beta_t\eta_t}{4 n^2}\,\overline{\theta_t^2 \lVert\xi_t\rVert^2}}

    Args:
        beta_eta: ``[T]``.
        theta: ``[k_outer, k_inner, T]`` the prior's weight on the wrong member at step t, a
            function of (supersample, J, U_{-J}, W_{<t}) only (never U_J, never W_t): e.g.
            :func:`wrong_member_weight` of the cumulated log-likelihood ratio up to step t - 1.
            theta = 1/2 is the test that ignores the trajectory.
        two_sample_sq: ``[k_outer, k_inner, T]`` ||xi_t||^2, xi_t = grad l(W_{t-1}, Z_{J,1}) -
            grad l(W_{t-1}, Z_{J,2}), for inner runs sharing (supersample, J, U_{-J}) and differing
            in U_J (use both values, antithetic) and in the noise.
        n: training-set size (the objective is the mean over n points).
    """
    check_probability("theta", theta)
    xi_sq = _runs("two_sample_sq", two_sample_sq)
    th = np.asarray(theta, np.float64)
    if th.shape != xi_sq.shape:
        raise ValueError(f"argument 'theta' must have the shape of 'two_sample_sq' {xi_sq.shape}, got {th.shape}")
    inner = (th**2 * xi_sq).mean(axis=1)
    b = _steps(beta_eta, inner.shape[1])
    check_count("n", n)
    kl = gaussian_step_kl(b, inner).sum(axis=1) / float(n) ** 2
    return np.sqrt(2.0 * kl)


def hypothesis_llr(beta: ArrayLike, eta: ArrayLike, n: int, xi_other_true: ArrayLike,
                              noise_dot: ArrayLike) -> np.ndarray:
    r"""Log-likelihood ratio of one Langevin step, "other member trained" against "true member".

    With the realized parameter noise :math:`\nu_t = W_t - W_{t-1} + \eta_t G_t` and
    :math:`\xi_t = \nabla\ell(W_{t-1}, z_{other}) - \nabla\ell(W_{t-1}, z_{true})`:

    .. math:: \ell_t = -\frac{\beta_t\eta_t\lVert\xi_t\rVert^2}{4n^2} - \frac{\beta_t}{2n}\langle\nu_t, \xi_t\rangle

    (the two hypotheses' drifts differ by :math:`\eta_t\xi_t/n`; derived from the Gaussian
    densities with variance 2 eta/beta). Args are broadcast: ``xi_other_true`` is ||xi||^2 and
    ``noise_dot`` the inner product <nu_t, xi_t> (compute nu from (W_t, W_{t-1}), not from the
    gradient-side draw, whose sign is opposite)."""
    beta, eta = _checked("beta", beta, "positive"), _checked("eta", eta, "positive")
    check_count("n", n)
    xi_sq, dot = _checked("xi_other_true", xi_other_true), _checked("noise_dot", noise_dot, "real")
    return -beta * eta * xi_sq / (4.0 * float(n) ** 2) - beta * dot / (2.0 * float(n))


def wrong_member_weight(llr: ArrayLike) -> np.ndarray:
    """Bayes test: theta_t = sigmoid(sum_{s<t} llr_s), from ``llr: [..., T]`` of
    :func:`hypothesis_llr` (step t sees only steps before it; theta_1 = 1/2).

    The prior never sees U_J: it weights member 1 by P(member 1 | W_{<t}), the posterior of a
    uniform prior over the two members. Written from the true member's side, the weight it puts
    on the wrong one is this sigmoid of the cumulated "other vs true" log-likelihood ratio.
    Evaluated in float64 with a stable logistic function (no saturation at large beta)."""
    a = _checked("llr", llr, "real")
    cum = np.concatenate([np.zeros((*a.shape[:-1], 1)), np.cumsum(a, axis=-1)[..., :-1]], axis=-1)
    return expit(cum)


def neu_information(eta: ArrayLike, sigma: ArrayLike, sensitivity: ArrayLike, variance: ArrayLike) -> float:
    r"""Neu et al. (2021)'s information sum :math:`\sum_t \frac{\eta_t^2}{\sigma_t^2}\,
    \mathbb{E}[\Gamma_{\sigma_{1:t}}(W_t) + V_t(W_t)]` (half the Theorem-5 bound on
    :math:`I(\tilde W_T; S)`), the expectation estimated by the mean over every leading axis.

    Args:
        eta, sigma: ``[T]`` step sizes and perturbation scales.
        sensitivity, variance: ``[T]`` or ``[..., T]``: Gamma_t and V_t per run, any leading axes
            (training-set draws, runs on each), all pooled: the expectation is over the training
            set and the algorithm's randomness together.
    """
    eta, sigma = _checked("eta", eta, "positive"), _checked("sigma", sigma, "positive")
    if eta.ndim != 1:
        raise ValueError(f"argument 'eta' must be [T], got shape {eta.shape}")
    if sigma.shape != eta.shape:
        raise ValueError(f"argument 'sigma' must be [T] = {list(eta.shape)} like 'eta', got shape {list(sigma.shape)}")
    pooled = []
    for name, x in (("sensitivity", sensitivity), ("variance", variance)):
        a = _checked(name, x)
        if a.ndim < 1 or a.shape[-1] != eta.shape[0]:
            raise ValueError(f"argument {name!r} must be [..., T] with T = {eta.shape[0]}, got shape {list(a.shape)}")
        pooled.append(a.reshape(-1, eta.shape[0]).mean(axis=0))
    return float(np.sum(eta**2 / sigma**2 * (pooled[0] + pooled[1])))


def neu_sgd_bound(eta: ArrayLike, sigma: ArrayLike, sensitivity: ArrayLike, variance: ArrayLike, n: int,
                  subgaussian: float = 0.5, value_sensitivity_gap: ArrayLike = 0.0) -> float:
    r"""Neu, Dziugaite, Haghifam & Roy (2021), Theorem 1 (vanilla SGD):

    .. math:: |\mathrm{gen}| \le \sqrt{\frac{4R^2}{n}\sum_t \frac{\eta_t^2}{\sigma_t^2}\,
              \mathbb{E}[\Gamma_{\sigma_{1:t}}(W_t) + V_t(W_t)]} + |\mathbb{E}[\Delta(W_T, S') - \Delta(W_T, S)]|

    Every expectation is over the training set S and the algorithm's randomness together (an MI
    bound: no conditioning), so it sits *inside* the square root and inside the absolute value.
    Statistics of several training sets are pooled before either (the mean over every leading
    axis); a mean of per-draw bounds would be smaller (Jensen: 1/sqrt(2) of the bound on two
    draws one of which carries all the information).

    Args:
        eta, sigma: ``[T]`` step sizes and the perturbation scales (fixed before the run).
        sensitivity: ``[T]`` or ``[..., T]`` Gamma_{sigma_{1:t}}(W_t) per run, gradient sensitivity
            to the accumulated perturbation (0 at t = 1); variance: ``[T]`` or ``[..., T]`` V_t(W_t),
            deviation of the batch gradient from the *population* gradient (estimate it with
            held-out data, never S). Leading axes (draws, runs) are pooled (:func:`neu_information`).
        n: training-set size. subgaussian: R of the evaluated loss (1/2 for a [0, 1] loss).
        value_sensitivity_gap: Delta(W_T, S') - Delta(W_T, S), signed, a number or one per run
            (averaged before the absolute value is taken).
    """
    total = neu_information(eta, sigma, sensitivity, variance)
    check_count("n", n)
    sub = float(_checked("subgaussian", subgaussian, "positive"))
    gap = float(np.mean(_checked("value_sensitivity_gap", value_sensitivity_gap, "real")))
    return float(np.sqrt(4.0 * sub**2 / float(n) * total) + abs(gap))
