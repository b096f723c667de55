r"""Binary kl divergence and its inverses.

.. math::

    \mathrm{kl}(q \,\|\, p) = q \ln\frac{q}{p} + (1-q) \ln\frac{1-q}{1-p}, \qquad 0 \ln 0 = 0,

    \mathrm{kl}^{-1}_{\uparrow}(q, c) = \sup\{p \in [q, 1] : \mathrm{kl}(q\|p) \le c\}, \qquad
    \mathrm{kl}^{-1}_{\downarrow}(q, c) = \inf\{p \in [0, q] : \mathrm{kl}(q\|p) \le c\}.

The inverses are the workhorses of the Seeger/Maurer PAC-Bayes bound (Seeger 2002;
Maurer 2004) and of the Langford & Caruana (2002) sample-convergence bound.

Soundness: with NumPy (float64) inputs the upper inverse is never below the exact value
and the lower inverse never above it; both are within 1e-12 of it (tested against mpmath).
The upper inverse is computed by Newton's method in :math:`t = \ln(1 - p)`: the function
:math:`g(t) = \mathrm{kl}(q\|1 - e^t) - c` is decreasing and convex on :math:`p \ge q`
(:math:`g'(t) = (q - p)/p`, :math:`g''(t) = q e^t / (1 - e^t)^2 > 0`), so Newton iterates
started where :math:`g \ge 0` increase monotonically to the root and never pass it, i.e. every
iterate's :math:`p` is an upper bound on the inverse. A relative margin of a few ulps then
covers floating-point rounding. Starting points (both provably at or above the root):

* :math:`\mathrm{kl}(q\|p) = \int_q^p \frac{x - q}{x(1-x)} dx \ge \frac{(p-q)^2}{2v}` for
  :math:`p \ge q` and any :math:`v \ge \max_{[q,p]} x(1-x)`: with :math:`v = p` this gives
  :math:`p \le q + c + \sqrt{c^2 + 2qc}`, with :math:`v = 1 - q` it gives
  :math:`p \le q + \sqrt{2(1-q)c}`, and with :math:`v = 1/4` (Pinsker) :math:`p \le q + \sqrt{c/2}`;
* :math:`\mathrm{kl}(q\|p) \ge -H(q) - (1-q)\ln(1-p)`, giving
  :math:`\ln(1-p) \ge -(c + H(q))/(1-q)` (tight when the root is close to 1).

Both inverses are differentiable in ``q`` and ``c`` on the JAX path through
``jax.custom_jvp`` with the implicit-function derivative
:math:`dp = (dc - \partial_q \mathrm{kl}\, dq) / \partial_p \mathrm{kl}`,
:math:`\partial_p \mathrm{kl} = (p - q)/(p(1-p))`,
:math:`\partial_q \mathrm{kl} = \ln\frac{q(1-p)}{p(1-q)}`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._array import ArrayLike, as_float, check_nonnegative, check_probability, errstate, namespace

__all__ = ["kl_bernoulli", "kl_inv_upper", "kl_inv_lower"]

#: Newton steps of the upper inverse. On 10^6 random log-uniform (q, c) pairs, 6 steps
#: agree with 30 to within 2 ulps; tests/test_kl.py checks accuracy against mpmath.
NEWTON_STEPS = 7
#: Relative safety margin, in units of the dtype's machine epsilon, added to the upper
#: inverse (the lower one inherits it through symmetry) to cover rounding.
MARGIN_ULPS = 8


def _log_ratio(xp, a, b, diff):
    """ln(a / b) given ``diff = a - b``, for a, b in [0, 1].

    log1p(diff / b) when a is near b; else log(a / b), which is exact to an ulp (unlike
    log(a) - log(b), which loses 13 digits near 1e-300); log(a) - log(b) only where the
    ratio overflows or underflows.
    """
    near = xp.abs(diff) < 0.5 * b
    safe_b = xp.where(b > 0, b, 1.0)
    ratio = a / b
    ratio_ok = xp.isfinite(ratio) & (ratio > xp.finfo(ratio.dtype).tiny)
    far = xp.where(ratio_ok, xp.log(xp.where(ratio_ok, ratio, 1.0)), xp.log(a) - xp.log(b))
    return xp.where(near, xp.log1p(diff / safe_b), far)


def _kl(xp, q, p, one_minus_p):
    """kl(q||p) with 1 - p passed separately (exact in the inverse's t-parametrisation)."""
    one_minus_q = 1.0 - q
    d = q - p
    t1 = xp.where(q > 0, q * _log_ratio(xp, q, p, d), 0.0)
    t2 = xp.where(one_minus_q > 0, one_minus_q * _log_ratio(xp, one_minus_q, one_minus_p, -d), 0.0)
    return xp.maximum(t1 + t2, 0.0)


def _kl_above(xp, q, p, one_minus_p):
    """kl(q||p) for p >= q only (the upper inverse's side), with fewer transcendentals.

    There (1-q)/(1-p) >= 1, so its log is always an accurate log1p. For q/p near 1 the first
    log is log1p(-(p-q)/p); for q/p < 1/2 it is log1p(q/p - 1), whose absolute error
    eps/(q/p) is multiplied by q, so kl is off by about eps * p: one ulp of the root, well
    inside the inverse's margin. One transcendental per term.
    """
    d = p - q
    safe_p = xp.where(p > 0, p, 1.0)
    ratio = q / safe_p
    # Below eps, q/p - 1 would round to -1 (log1p = -inf); clamping q/p at eps changes
    # q ln(q/p) by at most max_x p x ln(eps/x) = p eps / e.
    eps = xp.finfo(ratio.dtype).eps
    t1 = q * xp.log1p(xp.where(ratio > 0.5, -d / safe_p, xp.maximum(ratio, eps) - 1.0))
    t1 = xp.where(q > 0, t1, 0.0)
    t2 = (1.0 - q) * xp.log1p(d / one_minus_p)
    return xp.maximum(t1 + t2, 0.0)


def _entropy(xp, q):
    """Binary entropy H(q) in nats."""
    omq = 1.0 - q
    return -(xp.where(q > 0, q * xp.log(xp.where(q > 0, q, 1.0)), 0.0)
             + xp.where(omq > 0, omq * xp.log(xp.where(omq > 0, omq, 1.0)), 0.0))


def _inv_upper(xp, q, c):
    """Upper inverse (see module docstring); ``q``, ``c`` broadcast arrays of one dtype."""
    finfo = xp.finfo(q.dtype)
    log_tiny = float(np.log(finfo.tiny))
    omq = 1.0 - q
    # Two starting points at or above the root, in t = ln(1 - p); take the tighter.
    # (Products of square roots, not roots of products: c * q underflows near 1e-300.)
    sqrt_c = xp.sqrt(c)
    p_a = q + xp.minimum(c + sqrt_c * xp.sqrt(c + 2.0 * q),
                         sqrt_c * xp.sqrt(xp.minimum(2.0 * omq, 0.5)))
    t_a = xp.log1p(-xp.minimum(p_a, 1.0))
    t_b = -(c + _entropy(xp, q)) / xp.where(omq > 0, omq, 1.0)
    t_free = xp.maximum(t_a, t_b)
    # Below log(tiny), 1 - p underflows; start there and, if the root lies even lower
    # (g < 0 at the clamped start), the answer is 1 to working precision.
    t = xp.maximum(t_free, log_tiny)
    clamped = t_free < log_tiny
    root_below_tiny = clamped & (_kl_above(xp, q, -xp.expm1(t), xp.exp(t)) < c)
    for _ in range(NEWTON_STEPS):
        p = -xp.expm1(t)
        g = _kl_above(xp, q, p, xp.exp(t)) - c
        gap = p - q
        step = xp.where(gap > 0, g * (p / xp.where(gap > 0, gap, 1.0)), 0.0)
        t = t + xp.where(xp.isfinite(step), step, 0.0)
    p = -xp.expm1(t)
    # Relative margin for rounding, plus an absolute one (tiny / eps: 1e-292 in float64) that
    # dominates the lost precision of subnormal intermediates when p is near underflow.
    p = p + MARGIN_ULPS * finfo.eps * p + float(finfo.tiny / finfo.eps)
    p = xp.minimum(xp.maximum(p, q), 1.0)
    done = (q >= 1.0) | xp.isinf(c) | root_below_tiny
    p = xp.where(done, 1.0, p)
    return xp.where(c == 0, q, p)


def _inv_lower(xp, q, c):
    """Lower inverse through kl(q||p) = kl(1-q||1-p), rounded down one ulp."""
    r = 1.0 - _inv_upper(xp, 1.0 - q, c)
    r = xp.nextafter(r, xp.zeros_like(r))
    r = xp.minimum(xp.maximum(r, 0.0), q)
    return xp.where(c == 0, q, r)


# ---------------------------------------------------------------------------------------
# JAX path: custom JVPs so that the inverses and kl can sit inside training objectives.


def _partials(q, p):
    """(d kl/dq, d kl/dp) at interior points, with q, p clipped away from {0, 1}."""
    finfo = jnp.finfo(q.dtype)
    qc = jnp.clip(q, finfo.tiny, 1.0 - finfo.eps)
    pc = jnp.clip(p, finfo.tiny, 1.0 - finfo.eps)
    d = qc - pc
    dkdq = _log_ratio(jnp, qc, pc, d) - _log_ratio(jnp, 1.0 - qc, 1.0 - pc, -d)
    dkdp = (pc - qc) / (pc * (1.0 - pc))
    return dkdq, dkdp


@jax.custom_jvp
def _kl_jax(q, p):
    return _kl(jnp, q, p, 1.0 - p)


@_kl_jax.defjvp
def _kl_jax_jvp(primals, tangents):
    q, p = primals
    dq, dp = tangents
    dkdq, dkdp = _partials(q, p)
    return _kl_jax(q, p), dkdq * dq + dkdp * dp


def _implicit_tangent(q, c, p, dq, dc, bound_value):
    """dp from kl(q||p) = c; where p sits at a constraint boundary use its own slope."""
    dkdq, dkdp = _partials(q, p)
    interior = (p != q) & (p != bound_value) & (c > 0)
    safe = jnp.where(interior, dkdp, 1.0)
    return jnp.where(interior, (dc - dkdq * dq) / safe, jnp.where(p == q, dq, 0.0))


def _with_implicit_jvp(impl, boundary: float):
    """``impl`` on JAX arrays with the implicit-function JVP; ``boundary`` is the end of the
    search interval (1 for the upper inverse, 0 for the lower one)."""
    fn = jax.custom_jvp(lambda q, c: impl(jnp, q, c))

    @fn.defjvp
    def _jvp(primals, tangents):
        q, c = primals
        dq, dc = tangents
        p = fn(q, c)
        return p, _implicit_tangent(q, c, p, dq, dc, boundary)

    return fn


_inv_upper_jax = _with_implicit_jvp(_inv_upper, 1.0)
_inv_lower_jax = _with_implicit_jvp(_inv_lower, 0.0)


# ---------------------------------------------------------------------------------------
# Public API


def _prepare(q, c, c_name="c"):
    check_probability("q", q)
    check_nonnegative(c_name, c, allow_inf=True)
    xp = namespace(q, c)
    q, c = as_float(xp, q, c)
    return xp, *xp.broadcast_arrays(q, c)


def kl_bernoulli(q: ArrayLike, p: ArrayLike) -> ArrayLike:
    r"""Binary kl divergence :math:`\mathrm{kl}(q\|p)` in nats, elementwise.

    ``0 ln 0 = 0``; ``p`` in {0, 1} gives ``inf`` unless ``q`` equals ``p``. Accurate near
    ``p = q`` (``log1p`` form). Reference: Langford (2005), "Tutorial on practical
    prediction theory for classification", JMLR 6.
    """
    check_probability("q", q)
    check_probability("p", p)
    xp = namespace(q, p)
    q, p = as_float(xp, q, p)
    q, p = xp.broadcast_arrays(q, p)
    if xp is np:
        with errstate():
            return _kl(np, q, p, 1.0 - p)[()]
    return _kl_jax(q, p)


def kl_inv_upper(q: ArrayLike, c: ArrayLike) -> ArrayLike:
    r"""Upper kl inverse :math:`\sup\{p \in [q,1] : \mathrm{kl}(q\|p) \le c\}`, elementwise.

    Never below the exact value on the float64 (NumPy) path, and within 1e-12 of it.
    ``c = 0`` gives ``q``; ``c = inf`` or ``q = 1`` gives 1. Differentiable in ``q`` and
    ``c`` on the JAX path (implicit-function JVP); the derivative in ``c`` at ``c = 0`` is
    infinite and reported as 0, and at ``q = 0`` the (infinite) derivative in ``q`` is
    evaluated at the smallest normal number instead.
    Reference: Seeger (2002), JMLR 3; Langford (2005), JMLR 6.
    """
    xp, q, c = _prepare(q, c)
    if xp is np:
        with errstate():
            return _inv_upper(np, q, c)[()]
    return _inv_upper_jax(q, c)


def kl_inv_lower(q: ArrayLike, c: ArrayLike) -> ArrayLike:
    r"""Lower kl inverse :math:`\inf\{p \in [0,q] : \mathrm{kl}(q\|p) \le c\}`, elementwise.

    Computed as :math:`1 - \mathrm{kl}^{-1}_{\uparrow}(1-q, c)` rounded down one ulp, so never
    above the exact value on the float64 path. ``c = 0`` gives ``q``; ``c = inf`` or
    ``q = 0`` gives 0.
    """
    xp, q, c = _prepare(q, c)
    if xp is np:
        with errstate():
            return _inv_lower(np, q, c)[()]
    return _inv_lower_jax(q, c)
