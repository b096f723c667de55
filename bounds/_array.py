"""Array-namespace dispatch and argument validation shared by every bound.

Each bound in this package is written once against an array namespace ``xp``:

* given JAX arrays (or tracers inside ``jit``/``grad``) it computes with ``jax.numpy``
  in the inputs' dtype, so it can sit inside a training objective;
* given Python numbers or NumPy arrays it computes with NumPy in float64, which is the
  path every final certificate takes (no global ``jax_enable_x64`` switch involved).

Validation runs on concrete values only (it cannot inspect a tracer) and raises
``ValueError`` naming the offending argument.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from enum import StrEnum
from fractions import Fraction
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = Any
#: A closed set of names (:class:`enum.StrEnum`).
Choice = TypeVar("Choice", bound=StrEnum)


def namespace(*xs: ArrayLike):
    """``jax.numpy`` if any argument is a JAX array or tracer, else ``numpy``."""
    return jnp if any(isinstance(x, jax.Array) for x in xs) else np


def as_float(xp, *xs: ArrayLike):
    """Convert to a common floating array type (float64 for NumPy)."""
    if xp is np:
        return tuple(np.asarray(x, dtype=np.float64) for x in xs)
    arrays = [jnp.asarray(x) for x in xs]
    dtype = jnp.result_type(*arrays, float)
    return tuple(a.astype(dtype) for a in arrays)


def _is_text(x: Any) -> bool:
    """Whether ``x`` is a string, bytes, or an array (or nested sequence) of them."""
    if isinstance(x, str | bytes):
        return True
    if isinstance(x, int | float | jax.Array):
        return False
    try:
        return np.asarray(x).dtype.kind in "USV"
    except (TypeError, ValueError, OverflowError):
        return False


def _concrete(x: ArrayLike, name: str | None = None) -> np.ndarray | None:
    if isinstance(x, jax.core.Tracer):
        return None
    what = "numbers" if name is None else f"argument {name!r} to hold numbers"
    if x is None:                           # NumPy would read it as NaN
        raise ValueError(f"expected {what}, got None")
    if _is_text(x):                         # NumPy would parse '3' as 3.0
        raise ValueError(f"expected {what}, got text {reprlib.repr(x)}")
    try:
        return np.asarray(x, dtype=np.float64)
    except OverflowError as err:            # a Python int beyond the float range
        raise ValueError(f"expected {what} within the float range, got {reprlib.repr(x)}") from err
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected {what}, got {type(x).__name__}") from err


def check_range(
    name: str,
    x: ArrayLike,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Raise ``ValueError`` naming ``name`` unless every entry of ``x`` lies in the range."""
    if type(x) is float or type(x) is int:    # a Python number in range: the same comparisons without NumPy
        try:
            v = float(x)
        except OverflowError:
            v = math.nan
        if (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi):
            return
    arr = _concrete(x, name)
    if arr is None:
        return
    if np.isnan(arr).any():
        raise ValueError(f"argument {name!r} must not be NaN")
    ok_lo = arr > lo if lo_open else arr >= lo
    ok_hi = arr < hi if hi_open else arr <= hi
    if not (ok_lo & ok_hi).all():
        bad = float(arr[~(ok_lo & ok_hi)].flat[0])
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"argument {name!r} must be in {left}{lo:g}, {hi:g}{right}, got {bad:g}")


def check_probability(name: str, x: ArrayLike) -> None:
    """Entries in [0, 1]."""
    check_range(name, x, 0.0, 1.0)


def check_delta(name: str, x: ArrayLike) -> None:
    """A confidence parameter in the open interval (0, 1)."""
    check_range(name, x, 0.0, 1.0, lo_open=True, hi_open=True)


def check_nonnegative(name: str, x: ArrayLike, *, allow_inf: bool = False) -> None:
    """Entries >= 0 (and finite unless ``allow_inf``)."""
    check_range(name, x, 0.0, math.inf, hi_open=not allow_inf)


def check_count(name: str, x: ArrayLike, minimum: int = 1) -> None:
    """A sample size: a whole number, finite, >= ``minimum``; never a boolean (JSON's ``true`` is not a count)."""
    check_range(name, x, float(minimum), math.inf, hi_open=True)
    if type(x) is int:                         # in range (checked), and whole
        return
    if isinstance(x, bool | np.bool_) or (isinstance(x, np.ndarray | list | tuple) and np.asarray(x).dtype == bool):
        raise ValueError(f"argument {name!r} must be a whole number, got a boolean {reprlib.repr(x)}")
    arr = _concrete(x)
    if arr is not None and (arr != np.floor(arr)).any():
        bad = float(arr[arr != np.floor(arr)].flat[0])
        raise ValueError(f"argument {name!r} must be a whole number, got {bad:g}")


def check_positive(name: str, x: ArrayLike) -> None:
    """One finite number > 0 (a scale, a temperature, a loss range), else one ValueError naming ``name``."""
    check_scalar(name, x)
    check_range(name, x, 0.0, math.inf, lo_open=True, hi_open=True)


def whole_count(name: str, x: ArrayLike, minimum: int = 1) -> int:
    """One whole number >= ``minimum`` (:func:`check_count`, which accepts a whole float such as 2.0) as a Python
    int, for ``range``, ``jax.random.split`` and records."""
    check_scalar(name, x)
    check_count(name, x, minimum)
    return int(x)


def check_budget(delta: ArrayLike, mc_delta: ArrayLike) -> None:
    """A certificate's two confidence parts, the PAC-Bayes ``delta`` and the Monte Carlo ``mc_delta``: each one number
    in (0, 1), and their exact sum (rounded up) below 1; one ValueError naming the argument otherwise."""
    for name, x in (("delta", delta), ("mc_delta", mc_delta)):
        check_scalar(name, x)
        check_delta(name, x)
    total = float_at_least(Fraction(float(delta)) + Fraction(float(mc_delta)))
    if total >= 1.0:
        raise ValueError(f"arguments 'delta' + 'mc_delta' sum to {total!r}: the total confidence budget must be "
                         "below 1")


def check_scalar(name: str, x: ArrayLike) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``x`` is a single number (not a sequence or an array with
    entries)."""
    if np.ndim(x):
        raise ValueError(f"argument {name!r} must be a single number, got shape {np.shape(x)}")


def check_choice(name: str, x: Any, choices: type[Choice]) -> Choice:
    """``x`` as a member of the closed set ``choices`` (a :class:`~enum.StrEnum`; a member or its
    value is accepted), or one ValueError naming argument ``name`` and every allowed value."""
    try:
        return choices(x)
    except ValueError:
        allowed = tuple(c.value for c in choices)
        raise ValueError(f"argument {name!r} must be one of {allowed}, got {x!r}") from None


def errstate():
    """NumPy floating-point warnings off: infinities are handled explicitly."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


def round_up(x: ArrayLike, ulps: int = 4) -> Any:
    """``x`` moved up by ``ulps`` units in the last place (covers float64 rounding), elementwise: a float for a
    number, a float64 array for an array; non-finite entries unchanged.

    A value below 1 is never pushed above 1: for a [0, 1] loss, 1 is always a valid bound.
    """
    a = np.asarray(x, np.float64)
    up = a + ulps * np.spacing(np.abs(a))
    out = np.where(np.isfinite(a), np.where(a <= 1.0, np.minimum(up, 1.0), up), a)
    return float(out) if out.ndim == 0 else out


#: How far a value recomputed from a record's inputs may differ from the recorded one (relative) and still be the
#: same value: the last bits of NumPy's vectorised log and exp differ between CPUs' instruction sets (AVX2 against
#: AVX-512), so a record written on one machine recomputes one or two units in the last place apart on another.
RECOMPUTED_RTOL = 1e-12


def recomputes_to(recorded: float, recomputed: float) -> bool:
    """``recorded`` is ``recomputed`` up to :data:`RECOMPUTED_RTOL` (relative): the check that a record's number is
    what its recorded inputs give, on any CPU. An edited number differs by far more."""
    a, b = float(recorded), float(recomputed)
    return a == b or abs(a - b) <= RECOMPUTED_RTOL * max(abs(a), abs(b))


def float_at_most(q: Fraction) -> float:
    """The largest float64 at most the exact rational ``q`` (``q`` rounded toward -inf): a share of a confidence
    budget computed this way never spends more than the exact quotient it stands for. ``float(q)`` is correctly
    rounded (CPython's integer true division), so at most one step down is needed."""
    x = float(q)
    return x if Fraction(x) <= q else float(np.nextafter(x, -math.inf))


def float_at_least(q: Fraction) -> float:
    """The smallest float64 at least the exact rational ``q`` (``q`` rounded toward +inf): a recorded total of
    confidence shares is then never below their exact sum."""
    x = float(q)
    return x if Fraction(x) >= q else float(np.nextafter(x, math.inf))


def divide_down(x: float, k: int) -> float:
    """``x / k`` rounded down: ``k`` copies of the result sum to at most ``x`` exactly (a union bound's share of
    a delta part; round-to-nearest can give ``k * fl(x / k) > x``, e.g. ``x = 0.035, k = 5``)."""
    return float_at_most(Fraction(float(x)) / int(k))


def check_share_total(shares: Mapping[str, float], delta: float | None) -> Fraction:
    """The shares, by argument name, sum (exactly) below 1, and to at most ``delta`` when it is given; returns the
    exact sum."""
    exact = sum(Fraction(float(x)) for x in shares.values())
    named = " + ".join(repr(name) for name in shares)
    if exact >= 1:
        raise ValueError(f"arguments {named} sum to {float_at_least(exact)!r}: the total confidence budget must be "
                         "below 1")
    if delta is not None:
        check_delta("delta", delta)
        if exact > Fraction(float(delta)):
            raise ValueError(f"arguments {named} sum to {float_at_least(exact)!r} (exactly), above argument 'delta' "
                             f"{delta!r}")
    return exact
