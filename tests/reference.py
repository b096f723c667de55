"""High-precision (mpmath) references used by the tests.

The kl inverses are found on the gap g = |p - q|: bisection, geometric while the bracket
spans more than a factor 4 (so roots near 1e-300 are resolved to full relative precision), then
Newton steps from the bracket's upper end (f(g) = kl(q||q +- g) - c is increasing and convex in g,
so each step stays above the root), each root bracketed by two points a relative TOL apart at which f has
opposite signs. Working precision grows with -log10(c), because kl(q||q+g) ~ g^2/(2q(1-q)) is
computed from terms of size g and the cancellation costs about half of c's digits.
"""

import math

import mpmath as mp

BASE_DPS = 60
ITERS = 280
#: Relative width of the final bracket: 12 digits short of BASE_DPS, the digits f keeps after cancellation.
TOL = "1e-48"


def _dps(c) -> int:
    c = float(c)
    extra = 0 if c <= 0 or c >= 1 else int(-math.log10(c) / 2) + 10
    return BASE_DPS + extra


def kl(q, p):
    q, p = mp.mpf(q), mp.mpf(p)
    if q > 0 and p <= 0:
        return mp.inf
    a = q * mp.log(q / p) if q > 0 else mp.mpf(0)
    if q < 1:
        b = (1 - q) * (mp.log1p(-q) - mp.log1p(-p)) if p < 1 else mp.inf
    else:
        b = mp.mpf(0)
    return a + b


def _solve_gap(f, slope, hi):
    """Largest gap g in (0, hi] with f(g) <= 0, for f increasing and convex in g, to relative
    precision TOL: the returned g has f(g) <= 0, and f > 0 was evaluated at a point at most g (1 + 2 TOL)."""
    if f(hi) <= 0:
        return hi
    lo = mp.mpf("1e-1000")
    if not f(lo) <= 0:
        return mp.mpf(0)
    tol = mp.mpf(TOL)
    f_hi = f(hi)
    for _ in range(ITERS):
        if hi - lo <= 2 * tol * lo:
            break
        newton = hi - f_hi / slope(hi) if mp.isfinite(f_hi) else None
        if hi > 4 * lo:
            x = mp.sqrt(lo * hi)
        elif newton is not None and lo < newton < hi:
            x = newton
        else:
            x = (lo + hi) / 2
        if x in (lo, hi):           # no number between lo and hi: the remaining steps would change nothing
            break
        fx = f(x)
        if fx <= 0:
            lo = x
            continue
        hi, f_hi = x, fx
        probe = hi * (1 - tol)      # Newton approaches from above: test just below it
        if probe > lo and f(probe) <= 0:
            lo = probe
    return lo


def kl_inv_upper(q, c):
    """sup{p in [q, 1] : kl(q||p) <= c}, to about 1e-45 relative precision."""
    if q == 1 or c == math.inf:
        return mp.mpf(1)
    if c == 0:
        return mp.mpf(q)
    with mp.workdps(_dps(c)):
        q_, c_ = mp.mpf(q), mp.mpf(c)
        gap = _solve_gap(lambda g: kl(q_, q_ + g) - c_, lambda g: g / ((q_ + g) * (1 - q_ - g)), 1 - q_)
        return +(q_ + gap)


def kl_inv_lower(q, c):
    """inf{p in [0, q] : kl(q||p) <= c}, to about 1e-45 relative precision."""
    if q == 0 or c == math.inf:
        return mp.mpf(0)
    if c == 0:
        return mp.mpf(q)
    with mp.workdps(_dps(c)):
        q_, c_ = mp.mpf(q), mp.mpf(c)
        gap = _solve_gap(lambda g: kl(q_, q_ - g) - c_, lambda g: g / ((q_ - g) * (1 - q_ + g)), q_)
        return +(q_ - gap)
