r"""Compression bounds: a quantised network as a point-mass posterior under a prefix-free code prior.

Lotfi, Finzi, Kapoor, Potapczynski, Goldblum & Wilson (2022), "PAC-Bayes compression bounds so tight that they
can explain generalization", NeurIPS. A hypothesis h (a network whose weights are decoded from a message: a
vector of d symbols, each the index of one of L codebook levels) gets the prior

.. math::  P(h) = 2^{-\ell(h)} / |\mathcal{G}|,

with :math:`\ell(h)` the length in bits of a prefix-free message from which h is decoded and
:math:`\mathcal{G}` the declared grid of settings (subspace dimension, number of levels, ...) searched over. By
the Kraft inequality (Kraft 1949; McMillan 1956) :math:`\sum_h 2^{-\ell(h)} \le 1` over any prefix-free code, so
P is a (sub-)probability fixed before the bound set is seen. The posterior is the point mass on the quantised
network, so :math:`\mathrm{KL}(\delta_h \| P) = \ln(1/P(h)) = (\ell(h) + \log_2|\mathcal{G}|) \ln 2` nats, and its
empirical risk is the exact error count of that one deterministic network: no Monte Carlo step.

**The message** (:func:`description_length`; every part in bits, the decoder knowing the setting, hence d and L):

* the codebook, :math:`L \cdot b` bits (b = 16 for fp16 levels; the network must use those rounded values);
* the symbol counts, :math:`L \lceil \log_2(d + 1) \rceil` bits (each count in [0, d], fixed width: the bit
  length of d);
* the length :math:`k` of the range code, as the Elias delta code of :math:`k + 1` (Elias 1975):
  :math:`\lfloor\log_2 m\rfloor + 2\lfloor\log_2(\lfloor\log_2 m\rfloor + 1)\rfloor + 1` bits for :math:`m = k+1`;
* the range code of the symbols under the static model of their counts (:func:`range_encode`), :math:`k` bits.

Reading the parts in order decodes the message and finds its end, so the code is prefix-free and Kraft applies.
The range code is exact integer arithmetic: :math:`k \le \lceil I + \epsilon\rceil < I + 1 + \epsilon` with
:math:`I = \sum_i -\log_2(c_{s_i} / d)` the ideal length and :math:`\epsilon < 2^{-30}` bits (see
:func:`range_encode`).

**The bounds** (:func:`compression_certificate`), for the quantised network's error rate
:math:`\hat L = k_\mathrm{err} / n` on the n bound examples and :math:`\mathrm{KL} = \ell' \ln 2`:

* ``compression_kl``: the PAC-Bayes-kl bound, Seeger (2002) in Maurer's (2004) form, the library's
  :func:`bounds.seeger`: :math:`L(h) \le \mathrm{kl}^{-1}(\hat L, (\mathrm{KL} + \ln(2\sqrt n/\delta))/n)`;
* ``compression_catoni``: Lotfi et al.'s form of Catoni's bound (Catoni 2007, Theorem 1.2.6) optimised over
  :math:`\lambda = e^g`, :math:`g \ge 0`:

  .. math::  q = \hat L + (1+a) e^{-g}\big[\mathrm{KL} + \ln\tfrac1\delta + 2\ln\big(2 + \tfrac{g}{\ln(1+a)}\big)\big],
             \qquad L(h) \le \frac{1 - e^{-\lambda q / n}}{1 - e^{-\lambda / n}}, \quad a = 10^{-4}.

  Proof that every :math:`g \ge 0` gives a valid bound: Catoni's bound at the grid point
  :math:`\lambda_j = (1+a)^j`, :math:`j = 0, 1, \dots`, with :math:`\delta_j = \delta / (j+2)^2`
  (:math:`\sum_j \delta_j = (\pi^2/6 - 1)\delta < \delta`) reads :math:`L \le f(\lambda_j, q_j)`,
  :math:`f(\lambda, q) = (1 - e^{-\lambda q/n})/(1 - e^{-\lambda/n})`,
  :math:`q_j = \hat L + \lambda_j^{-1}[\mathrm{KL} + \ln\frac1\delta + 2\ln(2+j)]`. For
  :math:`j = \lfloor g/\ln(1+a)\rfloor`: :math:`(1+a)e^{-g} \ge 1/\lambda_j` and :math:`g/\ln(1+a) \ge j`, so
  :math:`q \ge q_j`; f increases in q, and in :math:`\lambda` when :math:`q \le 1`
  (:math:`\partial_\lambda \ln f = [u(\lambda q/n) - u(\lambda/n)]/\lambda \ge 0` with :math:`u(t) = t/(e^t - 1)`
  decreasing), and :math:`\lambda_j \le e^g`; so :math:`f(e^g, q) \ge f(\lambda_j, q_j)` (and f > 1 when q > 1).

Both are evaluated in float64 and rounded upward; the KL in nats is rounded upward from the exact bit count.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from . import pac_bayes as pb
from ._array import check_choice, check_count, check_delta, check_range, check_scalar, float_at_least, round_up
from .certificate import Certificate, register_recomputation, user_details
from .excess import MAX_N

__all__ = ["range_encode", "range_decode", "code_length_bits", "elias_gamma_bits", "elias_delta_bits", "CodeLength",
           "Message", "encode_message", "check_message", "message_length", "description_length", "CompressionBound",
           "compression_certificate", "lotfi_catoni", "LOTFI_ALPHA"]

#: Lotfi et al.'s grid step: lambda on the geometric grid (1 + a)^j.
LOTFI_ALPHA = 1e-4
#: An upper bound on ln 2 (the float64 nearest to ln 2 is below it): bits -> nats never rounds down.
_LN2_UP = Fraction(float(np.nextafter(math.log(2.0), math.inf)))
assert _LN2_UP > Fraction(6931471805599453094172321214581765680756, 10**40)      # ln 2 rounded up at 40 digits
#: Relative margin (in ulps) added to the Catoni form's float64 value: it is a dozen operations, each within an
#: ulp, all with condition number at most about 1 (mpmath agrees to 2e-16 on the reference table).
_CATONI_ULPS = 32
#: The most symbols :func:`range_decode` decodes (2^32: beyond, its output alone is 32 GiB and the pure-Python
#: decoder runs for hours).
MAX_SYMBOLS = 2**32


# ------------------------------------------------------------------------------------------ the range coder

def _whole_numbers(name: str, x: Any) -> np.ndarray:
    """``x`` as a 1-d int64 array of whole numbers, or a ValueError naming ``name``."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"argument {name!r} must be a 1-d sequence of integers, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"argument {name!r} must hold integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise ValueError(f"argument {name!r} must hold whole numbers, got {arr[arr != np.floor(arr)][:1]}")
    if np.any(np.abs(arr) > 2**62):
        raise ValueError(f"argument {name!r} holds integers beyond 2^62")
    return arr.astype(np.int64)


def _model(counts: Sequence[int] | np.ndarray) -> tuple[list[int], list[int], int]:
    """(frequencies, cumulative starts, total) of the static model, as Python ints."""
    c = _whole_numbers("counts", counts)
    if c.size == 0:
        raise ValueError("argument 'counts' must give a count for at least one symbol")
    if np.any(c < 0):
        raise ValueError(f"argument 'counts' must be >= 0, got {int(c[c < 0][0])}")
    freq = [int(v) for v in c]
    total = sum(freq)
    if total < 1:
        raise ValueError("argument 'counts' must have a positive total")
    starts = [0] * len(freq)
    for s in range(1, len(freq)):
        starts[s] = starts[s - 1] + freq[s - 1]
    return freq, starts, total


def _precision(total: int) -> int:
    r"""P, the bits of the coder's range register: a multiple of 8, at least 64, with
    :math:`2^{P-8} \ge 2^{32}\, 2^{2b}` for :math:`b` the bit length of ``total``. The renormalised range is at least
    :math:`2^{P-8}`, so each symbol loses at most :math:`-\log_2(1 - t/2^{P-8}) < 1.5\, t\, 2^{-(P-8)}` bits to
    rounding (t = total), and t symbols lose below :math:`1.5 \cdot 2^{-32}` bits."""
    b = int(total).bit_length()
    return max(64, 8 * math.ceil((2 * b + 40) / 8))


def range_encode(symbols: Sequence[int] | np.ndarray, counts: Sequence[int] | np.ndarray) -> bytes:
    r"""The exact range (arithmetic) code of ``symbols`` under the static model ``counts``.

    Symbol s owns the fraction ``counts[s] / total`` of the current interval (``total = sum(counts)``); the
    interval starts as [0, 1) and after the message is :math:`[x_0, x_0 + W)`. The code is the shortest binary
    fraction :math:`x = B 2^{-k}` in it (B odd, or k = 0): ``k`` bits, packed into bytes and padded with zeros, so
    the last byte is never 0 and :func:`code_length_bits` reads ``k`` back. A decoder reads any bits past ``k`` as
    zeros (the value x itself lies in the interval).

    Exact integer arithmetic (Witten, Neal & Cleary 1987; Martin 1979's range coder with byte renormalisation
    and carry propagation), Python integers throughout: the interval is kept as integers with a P-bit range
    register (:func:`_precision`), each step ``r = range // total``, ``low += r * start[s]``,
    ``range = r * counts[s]``, so the subintervals are disjoint and nested, and the width shrinks by at most
    the factor :math:`(c_s/t)(1 - t/2^{P-8})` per symbol. As any interval of width :math:`W \ge 2^{-k}` holds a
    multiple of :math:`2^{-k}`,

    .. math::  k \le \lceil -\log_2 W \rceil < \sum_i -\log_2\frac{c_{s_i}}{t} + 1 + \epsilon,
               \qquad \epsilon < 1.5 \cdot 2^{-32} \frac{n}{t} \text{ bits}

    (n = number of symbols; :math:`\epsilon < 2^{-30}` bits when the counts are the symbols' own). Zero symbols,
    or a model with one symbol, give zero bits.

    Args:
        symbols: [n] integers in [0, len(counts)), each with a positive count.
        counts: [L] whole numbers >= 0 with a positive total (the symbols' own counts, for the compression code).
    """
    freq, starts, total = _model(counts)
    syms = _whole_numbers("symbols", symbols)
    if syms.size:
        lo, hi = int(syms.min()), int(syms.max())
        if lo < 0 or hi >= len(freq):
            raise ValueError(f"argument 'symbols' must be in [0, {len(freq)}) (one count per symbol), got "
                             f"{lo if lo < 0 else hi}")
        absent = np.asarray(freq, np.int64)[syms] == 0
        if absent.any():
            raise ValueError(f"argument 'symbols' holds {int(syms[absent][0])}, whose count is 0")
    p = _precision(total)
    top, bottom = 1 << p, 1 << (p - 8)
    mask, shift = bottom - 1, p - 8
    low, width = 0, top
    out = bytearray()
    for s in syms.tolist():
        r = width // total
        low += r * starts[s]
        width = r * freq[s]
        if low >= top:                      # carry into the bytes already written (never past the first)
            low -= top
            i = len(out) - 1
            while out[i] == 255:
                out[i] = 0
                i -= 1
            if i < 0:
                raise RuntimeError("range coder carry past the first byte (an interval left [0, 1))")
            out[i] += 1
        while width < bottom:
            out.append(low >> shift)
            low = (low & mask) << 8
            width <<= 8
    # The interval is [L, L + width) / 2^S; find the smallest k with a multiple of 2^-k inside (monotone in k).
    scale = 8 * len(out) + p
    low_all = (int.from_bytes(bytes(out), "big") << p) + low
    high_all = low_all + width

    def fits(k: int) -> bool:
        b = -((-low_all) >> (scale - k))    # ceil(low_all / 2^(scale - k))
        return (b << (scale - k)) < high_all

    lo_k, hi_k = 0, scale                   # fits(scale) holds: B = low_all
    while lo_k < hi_k:
        mid = (lo_k + hi_k) // 2
        if fits(mid):
            hi_k = mid
        else:
            lo_k = mid + 1
    k = lo_k
    if k == 0:
        return b""
    b = -((-low_all) >> (scale - k))
    n_bytes = (k + 7) // 8
    return (b << (8 * n_bytes - k)).to_bytes(n_bytes, "big")


def code_length_bits(code: bytes) -> int:
    """The bits of a code from :func:`range_encode`: up to and including its last 1 bit (the rest of its last
    byte is padding the decoder reads as zeros anyway); 0 for ``b""``."""
    if not isinstance(code, (bytes, bytearray)):
        raise ValueError(f"argument 'code' must be bytes, got {type(code).__name__}")
    stripped = bytes(code).rstrip(b"\x00")
    if not stripped:
        return 0
    last = stripped[-1]
    return 8 * len(stripped) - ((last & -last).bit_length() - 1)


def range_decode(code: bytes, counts: Sequence[int] | np.ndarray, n_symbols: int) -> np.ndarray:
    """The ``n_symbols`` symbols :func:`range_encode` encoded into ``code`` with the same ``counts`` (int64).

    The decoder mirrors the encoder: it keeps ``D = floor(x 2^S) - low`` (x the code's value, bits past its end
    read as zeros) in [0, range); the symbol is the s with ``start[s] <= D // r < start[s] + counts[s]``. A code
    whose value falls outside every symbol's interval (not made by the encoder) is refused, and so is
    ``n_symbols`` above :data:`MAX_SYMBOLS`."""
    if not isinstance(code, (bytes, bytearray)):
        raise ValueError(f"argument 'code' must be bytes, got {type(code).__name__}")
    check_scalar("n_symbols", n_symbols)
    _not_bool("n_symbols", n_symbols)
    check_count("n_symbols", n_symbols, minimum=0)
    if n_symbols > MAX_SYMBOLS:
        raise ValueError(f"argument 'n_symbols' must be at most {MAX_SYMBOLS} (MAX_SYMBOLS), got {n_symbols!r}")
    freq, starts, total = _model(counts)
    n = int(n_symbols)
    p = _precision(total)
    bottom = 1 << (p - 8)
    data = bytes(code)
    pos = p // 8
    value = int.from_bytes(data[:pos].ljust(pos, b"\x00"), "big")
    width = 1 << p
    out = np.empty(n, np.int64)
    for i in range(n):
        r = width // total
        v = value // r
        if v >= total:
            raise ValueError("argument 'code' is not a range code of this model (its value leaves the intervals)")
        s = bisect.bisect_right(starts, v) - 1
        out[i] = s
        value -= r * starts[s]
        width = r * freq[s]
        while width < bottom:
            value = (value << 8) | (data[pos] if pos < len(data) else 0)
            pos += 1
            width <<= 8
    return out


# ------------------------------------------------------------------------------------------ prefix-free lengths

def _positive_int(name: str, n: Any) -> int:
    check_scalar(name, n)
    check_count(name, n)
    return int(n)


def elias_gamma_bits(n: int) -> int:
    r"""Bits of the Elias gamma code of an integer :math:`n \ge 1`: :math:`2\lfloor\log_2 n\rfloor + 1`
    (Elias 1975, "Universal codeword sets and representations of the integers", IEEE Trans. Inf. Theory 21)."""
    n = _positive_int("n", n)
    return 2 * (n.bit_length() - 1) + 1


def elias_delta_bits(n: int) -> int:
    r"""Bits of the Elias delta code of :math:`n \ge 1`: the gamma code of the bit length
    :math:`N = \lfloor\log_2 n\rfloor + 1`, then the N - 1 bits of n below its leading 1:
    :math:`\lfloor\log_2 n\rfloor + 2\lfloor\log_2 N\rfloor + 1` (Elias 1975). At most one bit longer than gamma,
    and shorter from n = 32 on; the compression code's length field uses it."""
    n = _positive_int("n", n)
    return (n.bit_length() - 1) + elias_gamma_bits(n.bit_length())


# ------------------------------------------------------------------------------------------ the description length

def _search_bits(searched: int) -> float:
    """log2(searched), never below the exact value (exact for powers of two)."""
    if searched & (searched - 1) == 0:
        return float(searched.bit_length() - 1)
    return float(np.nextafter(math.log2(searched), math.inf))


#: The largest float64, exactly: a description length beyond it has no float64 KL.
_FLOAT_MAX = Fraction(np.finfo(np.float64).max)


def _count_width(d: int) -> int:
    """Bits of a fixed-width count in [0, d]: :math:`\\lceil\\log_2(d + 1)\\rceil`, the bit length of d (exact
    integers; float64 log2 rounds it down from d ~ 2^48)."""
    return int(d).bit_length()


def _elias_delta(n: int) -> int:
    """:func:`elias_delta_bits` of a Python integer n >= 1, unchecked."""
    return (n.bit_length() - 1) + 2 * (n.bit_length().bit_length() - 1) + 1


class CodeLength(NamedTuple):
    """The length, in bits, of the message that describes a quantised network (see the module's docstring).

    Fields:
        symbols_bits: bits of :func:`range_encode`'s output up to its last 1 bit (:func:`code_length_bits`): what
            the decoder reads after the length field (it reads any further bits as zeros).
        codebook_bits: L levels times the bits of each (16 for fp16).
        counts_bits: :math:`L \\lceil\\log_2(d + 1)\\rceil`, the symbol counts of the static model.
        length_bits: the Elias delta code of ``symbols_bits + 1`` (:func:`elias_delta_bits`): the message is
            self-delimiting.
        search_bits: :math:`\\log_2` of the number of settings in the declared search grid (rounded up): the
            union bound over the grid, a uniform prior over its settings.
        d: number of symbols (quantised coordinates); 0 for a length the caller declared (:meth:`declared`).
        levels: number of codebook levels L; 0 for a declared length.
        searched: number of settings in the declared search grid (1: nothing searched).
    """

    symbols_bits: int
    codebook_bits: int
    counts_bits: int
    length_bits: int
    search_bits: float
    d: int
    levels: int
    searched: int

    @property
    def total_bits(self) -> float:
        """All the parts: :math:`\\ell' = \\ell + \\log_2|\\mathcal G|` (rounded up when not a whole number)."""
        whole = sum(int(x) for x in (self.symbols_bits, self.codebook_bits, self.counts_bits, self.length_bits))
        return float_at_least(Fraction(whole) + Fraction(self.search_bits))

    @property
    def kl_nats(self) -> float:
        """KL of the point mass under the code prior :math:`P(h) = 2^{-\\ell'}` (Kraft: :math:`\\sum P \\le 1`):
        :math:`\\ell' \\ln 2` nats, rounded up."""
        return float_at_least(Fraction(self.total_bits) * _LN2_UP)

    @property
    def is_declared(self) -> bool:
        """True for a length the caller declared (:meth:`declared`), not computed by :func:`description_length`."""
        return self.d == 0 and self.levels == 0

    def to_dict(self) -> dict[str, Any]:
        """The fields, ``total_bits`` and ``kl_nats`` (JSON-ready)."""
        return {**self._asdict(), "total_bits": self.total_bits, "kl_nats": self.kl_nats}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodeLength:
        """Inverse of :meth:`to_dict`; the parts must be consistent (:func:`check_code_length`) and the derived
        ``total_bits`` / ``kl_nats``, when present, what they give."""
        if not isinstance(data, Mapping):
            raise ValueError(f"argument 'code' must be a mapping, got {type(data).__name__}")
        missing = set(cls._fields) - set(data)
        if missing:
            raise ValueError(f"argument 'code' lacks {sorted(missing)}")
        code = check_code_length(cls(**{f: data[f] for f in cls._fields}))
        for key in ("total_bits", "kl_nats"):
            if key in data and data[key] != getattr(code, key):
                raise ValueError(f"argument 'code': {key} {data[key]!r} is not what its parts give "
                                 f"({getattr(code, key)!r})")
        return code

    @classmethod
    def declared(cls, bits: int, *, searched: int = 1) -> CodeLength:
        """A prefix-free description length of ``bits`` bits computed elsewhere (e.g. a published one), charged as
        is, plus ``log2(searched)``: ``d = levels = 0`` mark it as not computed here."""
        check_scalar("bits", bits)
        check_count("bits", bits, minimum=0)
        searched = _positive_int("searched", searched)
        return cls(int(bits), 0, 0, 0, _search_bits(searched), 0, 0, searched)


def check_code_length(code: Any) -> CodeLength:
    """``code`` if it is a :class:`CodeLength` whose derived parts are what its fields give (counts, length field,
    search bits; whole, non-negative bit counts, in all at most the float64 range), else one ValueError naming
    argument 'code' and the part. Returned with its whole-number fields as Python integers (numpy integers
    would wrap around when added)."""
    if not isinstance(code, CodeLength):
        raise ValueError(f"argument 'code' must be a CodeLength (description_length or CodeLength.declared), got "
                         f"{type(code).__name__}")
    whole = {}
    for field in ("symbols_bits", "codebook_bits", "counts_bits", "length_bits", "d", "levels", "searched"):
        x = getattr(code, field)
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or int(x) < (1 if field == "searched" else 0):
            raise ValueError(f"argument 'code': {field} must be a whole number >= "
                             f"{1 if field == 'searched' else 0}, got {x!r}")
        whole[field] = int(x)
    if (isinstance(code.search_bits, bool) or not isinstance(code.search_bits, (int, float, np.floating))
            or not math.isfinite(code.search_bits)):
        raise ValueError(f"argument 'code': search_bits must be a finite number, got {code.search_bits!r}")
    if code.search_bits != _search_bits(whole["searched"]):
        raise ValueError(f"argument 'code': search_bits {code.search_bits!r} is not log2(searched = "
                         f"{whole['searched']}) = {_search_bits(whole['searched'])!r}")
    bits = sum(whole[f] for f in ("symbols_bits", "codebook_bits", "counts_bits", "length_bits"))
    if Fraction(bits) + Fraction(float(code.search_bits)) > _FLOAT_MAX:
        raise ValueError(f"argument 'code': its bits (about 2^{bits.bit_length()}) are beyond the float64 range "
                         "(the KL must be a finite float64; the bound would be vacuous)")
    code = code._replace(**whole, search_bits=float(code.search_bits))     # a float32 is no Fraction input
    if code.is_declared:
        if code.codebook_bits or code.counts_bits or code.length_bits:
            raise ValueError("argument 'code': a declared length (d = levels = 0) holds all its bits in symbols_bits "
                             "(codebook_bits, counts_bits, length_bits must be 0)")
        return code
    if code.d < 1 or code.levels < 1:
        raise ValueError(f"argument 'code': d ({code.d}) and levels ({code.levels}) must be >= 1 (or both 0 for a "
                         "declared length)")
    want = {"counts_bits": code.levels * _count_width(code.d),
            "length_bits": _elias_delta(code.symbols_bits + 1)}
    for field, value in want.items():
        if getattr(code, field) != value:
            raise ValueError(f"argument 'code': {field} {getattr(code, field)!r} is not the {value} bits the message "
                             f"needs (d = {code.d}, levels = {code.levels}, symbols_bits = {code.symbols_bits})")
    if code.codebook_bits % code.levels or code.codebook_bits == 0:
        raise ValueError(f"argument 'code': codebook_bits {code.codebook_bits} must be levels ({code.levels}) times "
                         "a positive number of bits per level")
    return code


class Message(NamedTuple):
    """The decodable parts of a quantised network's message: the static model (the counts of the used levels; the
    other levels count 0) and the range code of the symbols under it (:func:`range_encode` over the used levels,
    renumbered in order). With the codebook and the setting they give the network back, so a record that stores
    its message proves its description length (:func:`check_message`).

    Fields:
        levels: L, the codebook's number of levels.
        used: the levels with a positive count, increasing, in [0, L).
        counts: [len(used)] their counts, each >= 1, summing to d.
        code: the range code (:func:`code_length_bits` of it is the code length's ``symbols_bits``).
    """

    levels: int
    used: tuple[int, ...]
    counts: tuple[int, ...]
    code: bytes

    @property
    def d(self) -> int:
        return sum(self.counts)

    def symbols(self) -> np.ndarray:
        """[d] the decoded symbols (int64, in [0, L)); a code that is not one of this model is refused."""
        return np.asarray(self.used, np.int64)[range_decode(self.code, self.counts, self.d)]

    def to_dict(self) -> dict[str, Any]:
        """The fields, the code as hex (JSON-ready)."""
        return {"levels": int(self.levels), "used": [int(u) for u in self.used],
                "counts": [int(c) for c in self.counts], "range_code_hex": bytes(self.code).hex()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Inverse of :meth:`to_dict`; one ValueError naming argument 'message' for anything else."""
        try:
            levels = _positive_int("levels", data["levels"])
            used = tuple(int(u) for u in _whole_numbers("used", data["used"]).reshape(-1))
            counts = tuple(int(c) for c in _whole_numbers("counts", data["counts"]).reshape(-1))
            code = bytes.fromhex(data["range_code_hex"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"argument 'message' must hold 'levels', 'used', 'counts' (whole numbers) and "
                             f"'range_code_hex': {err}") from None
        return cls(levels, used, counts, code)


def encode_message(symbols: np.ndarray, levels: int) -> Message:
    """The :class:`Message` of ``symbols`` ([d] integers in [0, levels), d >= 1): the used levels, their counts and
    the range code under them (dropping levels of count 0 leaves every used symbol's start and count, hence the
    code, unchanged, and allocates nothing per level), decoded back and checked to give ``symbols``."""
    check_scalar("levels", levels)
    check_count("levels", levels)
    levels = int(levels)
    syms = _whole_numbers("symbols", symbols)
    if syms.size == 0:
        raise ValueError("argument 'symbols' must hold at least one symbol (d >= 1)")
    lo, hi = int(syms.min()), int(syms.max())
    if lo < 0 or hi >= levels:
        raise ValueError(f"argument 'symbols' must be in [0, levels = {levels}), got {lo if lo < 0 else hi}")
    used, ranks, counts = np.unique(syms, return_inverse=True, return_counts=True)
    message = Message(levels, tuple(int(u) for u in used), tuple(int(c) for c in counts),
                      range_encode(ranks.reshape(-1).astype(np.int64), counts))
    if not np.array_equal(message.symbols(), syms.reshape(-1)):
        raise RuntimeError("the range code does not decode to the symbols")
    return message


def check_message(code: CodeLength, message: Any) -> Message:
    """``message`` if it is the message ``code`` measures: L = ``code.levels``, used levels increasing in [0, L)
    with counts >= 1 summing to d = ``code.d``, a range code of ``code.symbols_bits`` bits that decodes to d
    symbols with exactly those counts; else one ValueError naming argument 'message'."""
    code = check_code_length(code)
    if not isinstance(message, Message):
        raise ValueError(f"argument 'message' must be a Message (encode_message), got {type(message).__name__}")
    if code.is_declared:
        raise ValueError("argument 'message' goes with a computed code length (description_length), not a "
                         "declared one")
    used = np.asarray(message.used, np.int64)
    if (len(message.used) != len(message.counts) or not message.used or min(message.counts) < 1
            or np.any(np.diff(used) <= 0) or used[0] < 0 or used[-1] >= message.levels):
        raise ValueError("argument 'message': 'used' must be increasing levels in [0, L) with one count >= 1 each")
    if message.levels != code.levels or message.d != code.d:
        raise ValueError(f"argument 'message': {message.levels} levels and counts summing to {message.d} do not "
                         f"describe levels = {code.levels}, d = {code.d}")
    bits = code_length_bits(message.code)
    if bits != code.symbols_bits:
        raise ValueError(f"argument 'message': its range code has {bits} bits, the code length charges "
                         f"symbols_bits = {code.symbols_bits}")
    try:
        decoded = message.symbols()
    except ValueError as err:
        raise ValueError(f"argument 'message': {err}") from None
    found, counts = np.unique(decoded, return_counts=True)
    if not (np.array_equal(found, used) and np.array_equal(counts, np.asarray(message.counts))):
        raise ValueError("argument 'message': its range code decodes to other counts than it states")
    return message


def message_length(message: Message, *, codebook_bits_per_level: int = 16, searched: int = 1) -> CodeLength:
    r"""The prefix-free description length of ``message`` (the module's message), every part in bits.

    .. math::  \ell' = \underbrace{k}_{\text{range code}} + \underbrace{L b}_{\text{codebook}}
               + \underbrace{L\lceil\log_2(d+1)\rceil}_{\text{counts}}
               + \underbrace{|\mathrm{delta}(k + 1)|}_{\text{length}} + \log_2|\mathcal G|.

    Lotfi et al. (2022) charge the same parts but :math:`2\log_2 \ell` for the length (about a bit short of a
    prefix-free integer code) and :math:`\lceil d H\rceil + 1` instead of the actual code above :math:`10^4`
    symbols; here the range code is always computed, and decoded back (:func:`encode_message`).

    Args:
        message: from :func:`encode_message` (any other message is checked against its length where it is
            recorded: ``compression_certificate(..., message=)``, :func:`check_message`).
        codebook_bits_per_level: bits of each level's value (16: fp16, the network must use the rounded values).
        searched: number of settings in the declared search grid the kept one was chosen from (every knob chosen
            after looking at the bound set: dimension, levels, k-means, fine-tuning, checkpoint), >= 1.
    """
    check_scalar("codebook_bits_per_level", codebook_bits_per_level)
    check_count("codebook_bits_per_level", codebook_bits_per_level)
    searched = _positive_int("searched", searched)
    k = code_length_bits(message.code)
    d, levels = message.d, int(message.levels)
    return check_code_length(CodeLength(
        symbols_bits=k, codebook_bits=levels * int(codebook_bits_per_level),
        counts_bits=levels * _count_width(d), length_bits=elias_delta_bits(k + 1),
        search_bits=_search_bits(searched), d=d, levels=levels, searched=searched))


def description_length(symbols: np.ndarray, levels: int, *, codebook_bits_per_level: int = 16,
                       searched: int = 1) -> CodeLength:
    """The description length of ``symbols`` ([d] integers in [0, levels), d >= 1; ``levels`` >= 1 codebook
    levels, unused ones still charged a count): :func:`message_length` of :func:`encode_message`."""
    return message_length(encode_message(symbols, levels), codebook_bits_per_level=codebook_bits_per_level,
                          searched=searched)


# ------------------------------------------------------------------------------------------ the bound

class CompressionBound(StrEnum):
    """The bounds of :func:`compression_certificate`, by the certificate ``bound`` name."""

    KL_INVERSE = "compression_kl"
    CATONI = "compression_catoni"


def _catoni_at(emp: float, kl: float, n: int, delta: float, g: np.ndarray, a: float) -> np.ndarray:
    """Lotfi et al.'s Catoni form at log-gamma ``g`` (float64, not rounded)."""
    q = emp + (1.0 + a) * np.exp(-g) * (kl - math.log(delta) + 2.0 * np.log(2.0 + g / math.log1p(a)))
    lam = np.exp(g)
    return np.expm1(-lam * q / n) / np.expm1(-lam / n)


def lotfi_catoni(emp_risk: float, kl: float, n: int, delta: float, alpha: float = LOTFI_ALPHA
                 ) -> tuple[float, float]:
    r"""Lotfi et al.'s (2022) gamma-grid Catoni bound (module docstring) minimised over :math:`g \ge 0`:
    (the value, rounded up and at most 1, and the g it was evaluated at).

    Any g is a valid bound (module docstring), so the search need not be exact: 4097 points on
    [0, ln n + 8] (beyond, :math:`\lambda/n > e^8` and the denominator is 1 to 3e-4), then golden-section
    refinement, deterministic (a record recomputes to the same value).
    """
    check_range("emp_risk", emp_risk, 0.0, 1.0)
    check_range("kl", kl, 0.0, math.inf, hi_open=True)
    check_count("n", n)
    check_delta("delta", delta)
    check_range("alpha", alpha, 0.0, 1.0, lo_open=True)
    emp, kl, n, delta, a = float(emp_risk), float(kl), int(n), float(delta), float(alpha)
    hi = math.log(n) + 8.0
    grid = np.linspace(0.0, hi, 4097)
    with np.errstate(over="ignore", invalid="ignore"):
        values = _catoni_at(emp, kl, n, delta, grid, a)
    values[np.isnan(values)] = np.inf                   # never the minimum (no valid bound is NaN)
    i = int(np.argmin(values))
    lo_g, hi_g = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, grid.size - 1)])
    best_g, best = float(grid[i]), float(values[i])
    phi = (math.sqrt(5.0) - 1.0) / 2.0
    with np.errstate(over="ignore", invalid="ignore"):  # as on the grid: g / ln(1 + a) may overflow to inf
        for _ in range(60):
            x1, x2 = hi_g - phi * (hi_g - lo_g), lo_g + phi * (hi_g - lo_g)
            f1, f2 = (float(_catoni_at(emp, kl, n, delta, np.float64(x), a)) for x in (x1, x2))
            if f1 < f2:
                hi_g = x2
            else:
                lo_g = x1
            for x, f in ((x1, f1), (x2, f2)):
                if f < best:
                    best, best_g = f, x
    return min(round_up(best, _CATONI_ULPS), 1.0), best_g


def _not_bool(name: str, x: Any) -> None:
    """A count given as True / False is a mistake, not 1 / 0: one ValueError naming ``name``."""
    if isinstance(x, (bool, np.bool_)):
        raise ValueError(f"argument {name!r} must be a whole number, got a bool ({x!r})")


def _error_count(errors: Any, n: Any) -> tuple[int, int]:
    _not_bool("n", n)
    check_scalar("n", n)
    check_count("n", n)
    check_range("n", n, 1.0, float(MAX_N))
    _not_bool("errors", errors)
    check_scalar("errors", errors)
    check_count("errors", errors, minimum=0)
    check_range("errors", errors, 0.0, float(n))
    return int(errors), int(n)


def compression_certificate(errors: int, n: int, code: CodeLength, delta: float, *,
                            method: CompressionBound | str = CompressionBound.KL_INVERSE, n_prior: int = 0,
                            alpha: float = LOTFI_ALPHA, guess_risk: float | None = None,
                            message: Message | None = None, details: Mapping[str, Any] | None = None
                            ) -> Certificate:
    r"""The certificate of a quantised network: a point-mass posterior under the code prior
    :math:`P(h) = 2^{-\ell'(h)}` (module docstring), :math:`\mathrm{KL} = \ell' \ln 2` = ``code.kl_nats``.

    With probability at least ``1 - delta`` over the n bound examples (drawn independently of everything that
    fixed the prior: the code, the grid, the projection and its initial point, any prior data), the risk of
    the quantised deterministic network is at most

    * ``compression_kl``: :math:`\mathrm{kl}^{-1}(k/n, (\mathrm{KL} + \ln(2\sqrt n/\delta))/n)` (Seeger 2002;
      Maurer 2004; :func:`bounds.seeger`);
    * ``compression_catoni``: Lotfi et al.'s Catoni form (:func:`lotfi_catoni`, Catoni 2007), a = ``alpha``.

    Args:
        errors: 0-1 errors of the quantised network on the n bound examples (a whole number in [0, n]).
        n: bound examples (never examples that built the prior).
        code: its description length (:func:`description_length`, or :meth:`CodeLength.declared`).
        delta: the confidence parameter, in (0, 1).
        method: a :class:`CompressionBound` or its value.
        n_prior: examples used to build the prior (initial point, recorded).
        alpha: the Catoni grid step a (recorded; fixed before the data).
        guess_risk: the most frequent class's error on the bound set, when known (:attr:`Certificate.vacuous`).
        message: the message ``code`` measures (:func:`encode_message`), when known: checked against ``code``
            (:func:`check_message`) and recorded, so the record proves its description length.
        details: extra entries to record (seeds, data split, ...).

    The certificate: ``bound`` = the method's value, one delta part ``pac_bayes``, ``emp_risk = emp_risk_bound``
    = errors / n (rounded up), ``kl = code.kl_nats``, no Monte Carlo samples; ``details`` record the code
    (``code.to_dict()``), ``errors``, ``method``, ``delta_effective``, what is ``certified`` (the quantised
    network; :attr:`Certificate.certifies` is the posterior, its point mass) and for Catoni ``alpha``,
    ``log_gamma`` and ``lambda``. :func:`union_minimum` and :func:`pay_for_choice` recompute it from those.
    """
    method = CompressionBound(check_choice("method", method, CompressionBound))
    k, n = _error_count(errors, n)
    check_scalar("delta", delta)
    check_delta("delta", delta)
    _not_bool("n_prior", n_prior)
    check_scalar("n_prior", n_prior)
    check_count("n_prior", n_prior, minimum=0)
    code = check_code_length(code)
    info = user_details(details)
    if message is not None:
        info["message"] = check_message(code, message).to_dict()
    emp = float_at_least(Fraction(k, n))
    kl = code.kl_nats
    info.update(code=code.to_dict(), errors=k, method=method.value, delta_effective=float(delta),
                certified="the quantised network (a point-mass posterior under the code prior)")
    if method is CompressionBound.KL_INVERSE:
        value = round_up(float(pb.seeger(emp, kl, n, float(delta))))
    else:
        value, g = lotfi_catoni(emp, kl, n, float(delta), alpha)
        info.update(alpha=float(alpha), log_gamma=g, **{"lambda": math.exp(g)})
    return Certificate(bound=method.value, value=value, delta=float(delta), delta_parts={"pac_bayes": float(delta)},
                       emp_risk=emp, kl=kl, n_bound=n, n_prior=int(n_prior), emp_risk_bound=emp,
                       details=info, guess_risk=guess_risk)


#: Detail entries :func:`compression_certificate` derives itself (recomputed, never copied).
_DERIVED = ("code", "message", "errors", "method", "delta_effective", "certified", "alpha", "log_gamma", "lambda",
            "selection")


def _recompute(cert: Certificate, shares: Mapping[str, float]) -> Certificate:
    """``cert`` recomputed from its record at the delta ``shares`` (for :func:`union_minimum`)."""
    if set(cert.delta_parts) != {"pac_bayes"}:
        raise ValueError(f"certificate has delta parts {sorted(cert.delta_parts)} this function cannot rescale")
    d = cert.details
    method = CompressionBound(cert.bound)
    if d.get("method") != method.value:
        raise ValueError(f"its bound name {cert.bound!r} and details['method'] {d.get('method')!r} disagree")
    for key in ("code", "errors"):
        if key not in d:
            raise ValueError(f"details[{key!r}] is missing (a {cert.bound!r} certificate records it)")
    extra = {} if method is CompressionBound.KL_INVERSE else {"alpha": d.get("alpha", LOTFI_ALPHA)}
    if "message" in d:
        extra["message"] = Message.from_dict(d["message"])
    return compression_certificate(d["errors"], cert.n_bound, CodeLength.from_dict(d["code"]), shares["pac_bayes"],
                                   method=method, n_prior=cert.n_prior, **extra,
                                   details={key: v for key, v in d.items() if key not in _DERIVED})


for _kind in CompressionBound:
    register_recomputation(_kind.value, _recompute)
