"""High-precision (mpmath) references used by the tests.

The kl inverses are found by bisection on the gap g = |p - q|, geometric while the bracket
spans more than a factor 4 (so roots near 1e-300 are resolved to full relative precision),
then arithmetic. Working precision grows with -log10(c), because kl(q||q+g) ~ g^2/(2q(1-q))
is computed from terms of size g and the cancellation costs about half of c's digits.
"""

import math

import mpmath as mp

BASE_DPS = 60
ITERS = 280


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


def _bisect_gap(ok, hi):
    """Largest gap g in (0, hi] with ok(g), assuming ok is true below the root, false above."""
    if ok(hi):
        return hi
    lo = mp.mpf("1e-1000")
    if not ok(lo):
        return mp.mpf(0)
    for _ in range(ITERS):
        mid = mp.sqrt(lo * hi) if hi > 4 * lo else (lo + hi) / 2
        if mid in (lo, hi):         # no number between lo and hi: the remaining steps would change nothing
            break
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def kl_inv_upper(q, c):
    """sup{p in [q, 1] : kl(q||p) <= c}, to about 1e-45 relative precision."""
    if q == 1 or c == math.inf:
        return mp.mpf(1)
    if c == 0:
        return mp.mpf(q)
    with mp.workdps(_dps(c)):
        q_, c_ = mp.mpf(q), mp.mpf(c)
        gap = _bisect_gap(lambda g: kl(q_, q_ + g) <= c_, 1 - q_)
        return +(q_ + gap)


def kl_inv_lower(q, c):
    """inf{p in [0, q] : kl(q||p) <= c}, to about 1e-45 relative precision."""
    if q == 0 or c == math.inf:
        return mp.mpf(0)
    if c == 0:
        return mp.mpf(q)
    with mp.workdps(_dps(c)):
        q_, c_ = mp.mpf(q), mp.mpf(c)
        gap = _bisect_gap(lambda g: kl(q_, q_ - g) <= c_, q_)
        return +(q_ - gap)
