"""Compression bounds (Lotfi et al. 2022): the exact range coder, the description length and its prefix-free
code, and the certificate of a quantised network as a point-mass posterior under the code prior."""

from __future__ import annotations

import itertools
import json
import math
import time
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st

from genbounds.bounds import (
    Certificate,
    Certified,
    CodeLength,
    CompressionBound,
    Message,
    compression_certificate,
    description_length,
    elias_delta_bits,
    elias_gamma_bits,
    encode_message,
    format_upper,
    heldout_certificate,
    message_length,
    pac_bayes_certificate,
    pay_for_choice,
    range_decode,
    range_encode,
    union_minimum,
)
from genbounds.bounds.compression import LOTFI_ALPHA, code_length_bits
from genbounds.cli import main
from genbounds.experiments.records import load_records, save_certificate
from genbounds.experiments.report import report_rows

KL, CATONI = CompressionBound.KL_INVERSE, CompressionBound.CATONI


# ------------------------------------------------------------------------------------------ the range coder

def _ideal_bits(symbols, counts) -> float:
    """sum_i -log2(counts[s_i] / total): the ideal code length under the static model."""
    total = int(np.sum(counts))
    return float(sum(-math.log2(int(counts[s]) / total) for s in symbols))


@st.composite
def _messages(draw):
    """A symbol array over an alphabet of 1 to 30 levels, some of them skewed (one level most of the time),
    and the counts of the static model: the symbols' own counts, or those plus extra counts (any model that
    gives every present symbol a positive count)."""
    levels = draw(st.integers(1, 30))
    n = draw(st.integers(0, 300))
    skew = draw(st.floats(0.0, 0.999))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    symbols = np.where(rng.random(n) < skew, 0, rng.integers(0, levels, n)).astype(np.int64)
    counts = np.bincount(symbols, minlength=levels)
    if draw(st.booleans()):
        counts = counts + rng.integers(0, 5, levels)
    if counts.sum() == 0:
        counts[0] = 1
    return symbols, counts


@given(_messages())
def test_range_coder_round_trips_and_is_within_one_bit_of_the_ideal(message):
    symbols, counts = message
    code = range_encode(symbols, counts)
    assert isinstance(code, bytes)
    decoded = range_decode(code, counts, len(symbols))
    assert decoded.dtype == np.int64 and np.array_equal(decoded, symbols)
    bits = code_length_bits(code)
    ideal = _ideal_bits(symbols, counts)
    # proved in the module: bits <= ceil(ideal + loss) with loss < 2^-30 bits (the range register's precision)
    assert bits <= ideal + 1 + 1e-6
    assert bits <= ideal + 2                         # the "within 2 bits of the ideal"
    assert len(code) == (bits + 7) // 8              # no byte beyond the last 1 bit
    assert code == b"" or code[-1] != 0
    # the decoder needs only `bits` bits: anything after them is read as zeros
    assert np.array_equal(range_decode(code + b"\x00" * 3, counts, len(symbols)), symbols)


def test_range_coder_small_cases():
    # one symbol: the interval never shrinks, zero bits
    assert range_encode([0] * 50, [50]) == b""
    assert np.array_equal(range_decode(b"", [50], 50), np.zeros(50, np.int64))
    assert range_encode([], [3, 1]) == b"" and range_decode(b"", [3, 1], 0).shape == (0,)
    # two equiprobable symbols: the code is the message itself, bit for bit, up to its last 1
    bits = [1, 0, 1, 1, 0, 0, 1, 0]
    code = range_encode(bits, [4, 4])
    assert code_length_bits(code) == 7 and code == bytes([0b10110010])
    assert np.array_equal(range_decode(code, [4, 4], 8), bits)
    # a skewed model: 999 zeros and one 1 cost about log2(1000) + 999 log2(1000/999) = 11.4 bits
    symbols = np.zeros(1000, np.int64)
    symbols[700] = 1
    code = range_encode(symbols, [999, 1])
    assert code_length_bits(code) <= _ideal_bits(symbols, [999, 1]) + 1
    assert np.array_equal(range_decode(code, [999, 1], 1000), symbols)


def test_range_coder_speed_at_one_hundred_thousand_symbols():
    rng = np.random.default_rng(0)
    symbols = np.minimum(rng.geometric(0.15, 100_000) - 1, 49)
    counts = np.bincount(symbols, minlength=50)
    start = time.perf_counter()
    code = range_encode(symbols, counts)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = range_decode(code, counts, symbols.size)
    decode_s = time.perf_counter() - start
    assert np.array_equal(decoded, symbols)
    ideal = _ideal_bits(symbols, counts)
    assert ideal - 64 < code_length_bits(code) <= ideal + 1      # a typical message costs about its ideal
    assert encode_s < 4.0 and decode_s < 4.0, (encode_s, decode_s)   # ~0.2 s each unloaded


@pytest.mark.parametrize("call, name", [
    (lambda: range_encode([0, 2], [1, 0, 1, 0][:2]), "symbols"),      # 2 is outside an alphabet of 2
    (lambda: range_encode([0, 1], [2, 0]), "symbols"),                # symbol 1 has count 0
    (lambda: range_encode([0, -1], [2, 2]), "symbols"),
    (lambda: range_encode([0.5], [2]), "symbols"),
    (lambda: range_encode([[0]], [2]), "symbols"),
    (lambda: range_encode([0], [2, -1]), "counts"),
    (lambda: range_encode([0], [0, 0]), "counts"),
    (lambda: range_encode([0], []), "counts"),
    (lambda: range_encode([0], [1.5]), "counts"),
    (lambda: range_decode(b"", [1], -1), "n_symbols"),
    (lambda: range_decode("ab", [1], 1), "code"),
    (lambda: range_decode(b"\xff" * 10, [1, 1, 1], 3), "code"),       # beyond the symbols' intervals
])
def test_range_coder_refusals_name_the_argument(call, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        call()


# ------------------------------------------------------------------------------------------ the prefix-free code

def _gamma(n: int) -> str:
    b = bin(n)[2:]
    return "0" * (len(b) - 1) + b


def _delta(n: int) -> str:
    b = bin(n)[2:]
    return _gamma(len(b)) + b[1:]


def _read_delta(bits: str, pos: int) -> tuple[int, int]:
    zeros = 0
    while bits[pos + zeros] == "0":
        zeros += 1
    length = int(bits[pos + zeros: pos + 2 * zeros + 1], 2)
    pos += 2 * zeros + 1
    value = int("1" + bits[pos: pos + length - 1], 2)
    return value, pos + length - 1


def test_elias_codes_have_the_stated_lengths():
    for n in range(1, 3000):
        assert elias_gamma_bits(n) == len(_gamma(n)) == 2 * math.floor(math.log2(n)) + 1
        assert elias_delta_bits(n) == len(_delta(n))
        assert _read_delta(_delta(n) + "1", 0) == (n, len(_delta(n)))
    assert [elias_delta_bits(n) for n in (1, 2, 4, 10_000, 2**40)] == [1, 4, 5, 20, 51]
    assert elias_delta_bits(2**40) < elias_gamma_bits(2**40) == 81
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="'n'"):
            elias_gamma_bits(bad)
        with pytest.raises(ValueError, match="'n'"):
            elias_delta_bits(bad)


def _message(symbols: np.ndarray, levels: int) -> str:
    """The whole message of a quantised vector (without its fp16 codebook, whose 2^(16 L) values contribute a
    factor 1 to the Kraft sum): L counts of ceil(log2(d + 1)) bits, the Elias delta code of (code bits + 1), the
    range code's bits."""
    d = symbols.size
    width = math.ceil(math.log2(d + 1))
    counts = np.bincount(symbols, minlength=levels)
    code = range_encode(symbols, counts)
    k = code_length_bits(code)
    body = "".join(f"{byte:08b}" for byte in code)[:k]
    return "".join(f"{int(c):0{width}b}" for c in counts) + _delta(k + 1) + body


def _parse(message: str, d: int, levels: int) -> np.ndarray:
    width = math.ceil(math.log2(d + 1))
    counts = [int(message[i * width:(i + 1) * width], 2) for i in range(levels)]
    k_plus_1, pos = _read_delta(message + "0", levels * width)
    body = message[pos: pos + k_plus_1 - 1]
    assert pos + k_plus_1 - 1 == len(message)                   # self-delimiting: it ends where it says
    code = int(body + "0" * (-len(body) % 8), 2).to_bytes((len(body) + 7) // 8, "big") if body else b""
    return range_decode(code, counts, d)


SETTINGS = [(1, 1), (1, 3), (2, 2), (3, 2), (4, 3), (5, 2), (3, 4), (6, 2)]


def test_the_code_is_prefix_free_decodes_and_its_kraft_sum_is_at_most_one():
    """Every message of every tiny setting (d, L): the lengths description_length charges are those of an
    explicit message that decodes back to the symbols, the messages of a setting are prefix-free, and over the
    declared grid of settings (each paid log2(|grid|) bits) the Kraft sum of 2^-(total bits - codebook bits) is
    at most one, exactly."""
    kraft = Fraction(0)
    for d, levels in SETTINGS:
        messages = []
        for symbols in itertools.product(range(levels), repeat=d):
            symbols = np.array(symbols, np.int64)
            code = description_length(symbols, levels, searched=len(SETTINGS))
            message = _message(symbols, levels)
            assert len(message) == code.counts_bits + code.length_bits + code.symbols_bits
            assert code.total_bits == len(message) + code.codebook_bits + code.search_bits
            assert np.array_equal(_parse(message, d, levels), symbols)
            messages.append(message)
            kraft += Fraction(2) ** -len(message) / len(SETTINGS)
        assert len(set(messages)) == len(messages)
        ordered = sorted(messages)
        assert not any(b.startswith(a) for a, b in itertools.pairwise(ordered))   # prefix-free (sorted neighbours)
    assert 0 < kraft <= 1


def test_description_length_charges_every_part():
    rng = np.random.default_rng(3)
    symbols = rng.integers(0, 20, 5000)
    code = description_length(symbols, 20)
    counts = np.bincount(symbols, minlength=20)
    assert code.d == 5000 and code.levels == 20 and code.searched == 1 and code.search_bits == 0.0
    assert code.symbols_bits == code_length_bits(range_encode(symbols, counts))
    assert code.symbols_bits <= _ideal_bits(symbols, counts) + 1
    assert code.codebook_bits == 20 * 16 and code.counts_bits == 20 * 13          # ceil(log2 5001) = 13
    assert code.length_bits == elias_delta_bits(code.symbols_bits + 1)
    parts = (code.symbols_bits, code.codebook_bits, code.counts_bits, code.length_bits)
    assert code.total_bits == sum(parts)
    assert code.kl_nats >= float(mp.mpf(code.total_bits) * mp.log(2)) > code.kl_nats - 1e-9
    assert description_length(symbols, 20, codebook_bits_per_level=32).codebook_bits == 640
    assert description_length(symbols, 25).counts_bits == 25 * 13               # unused levels are still counted
    assert CodeLength.from_dict(json.loads(json.dumps(code.to_dict()))) == code
    assert code.to_dict()["total_bits"] == code.total_bits and code.to_dict()["kl_nats"] == code.kl_nats


@pytest.mark.parametrize("searched", [1, 2, 3, 10, 1024, 1280, 10**6])
def test_every_searched_setting_is_charged(searched):
    symbols = np.arange(100) % 7
    base = description_length(symbols, 7)
    code = description_length(symbols, 7, searched=searched)
    exact = mp.log(searched, 2)
    assert code.search_bits >= exact and code.search_bits - exact < 1e-12
    assert Fraction(code.total_bits) - Fraction(base.total_bits) >= Fraction(code.search_bits)   # rounded up
    assert code.total_bits - base.total_bits == pytest.approx(code.search_bits, abs=1e-12)
    more = description_length(symbols, 7, searched=searched + 1)
    assert more.search_bits > code.search_bits and more.total_bits > code.total_bits
    c1 = compression_certificate(20, 1000, code, 0.05)
    c2 = compression_certificate(20, 1000, more, 0.05)
    assert c2.value > c1.value and c2.kl > c1.kl


@pytest.mark.parametrize("kwargs, name", [
    ({"levels": 0}, "levels"),
    ({"symbols": np.array([0, 3])}, "symbols"),
    ({"symbols": np.array([0, -1])}, "symbols"),
    ({"symbols": np.array([], np.int64)}, "symbols"),
    ({"symbols": np.array([0.0, 1.5])}, "symbols"),
    ({"symbols": np.zeros((2, 2), np.int64)}, "symbols"),
    ({"searched": 0}, "searched"),
    ({"searched": 2.5}, "searched"),
    ({"codebook_bits_per_level": 0}, "codebook_bits_per_level"),
])
def test_description_length_refusals_name_the_argument(kwargs, name):
    args = {"symbols": np.array([0, 1, 2]), "levels": 3} | kwargs
    with pytest.raises(ValueError, match=f"'{name}'"):
        description_length(args.pop("symbols"), args.pop("levels"), **args)


def test_a_code_length_with_inconsistent_parts_is_refused():
    code = description_length(np.arange(30) % 4, 4, searched=8)
    for field, value in (("counts_bits", code.counts_bits - 1), ("length_bits", 1), ("search_bits", 0.0),
                         ("searched", 4), ("symbols_bits", -1), ("codebook_bits", 3)):
        with pytest.raises(ValueError, match=f"'code'.*{field}"):
            compression_certificate(1, 100, code._replace(**{field: value}), 0.05)
    with pytest.raises(ValueError, match="total_bits"):
        CodeLength.from_dict({**code.to_dict(), "total_bits": 3.0})
    with pytest.raises(ValueError, match="'code'"):
        compression_certificate(1, 100, code.to_dict(), 0.05)


# ------------------------------------------------------------------------------------------ the bound

def _catoni_mp(emp, bits, n, delta, g, a=LOTFI_ALPHA):
    """Lotfi et al.'s formula at log-gamma g, in mpmath."""
    with mp.workdps(50):
        emp = mp.mpf(emp.numerator) / emp.denominator
        kl = mp.mpf(bits) * mp.log(2)
        g = mp.mpf(g)
        q = emp + (1 + mp.mpf(a)) * mp.exp(-g) * (kl + mp.log(1 / mp.mpf(delta))
                                                  + 2 * mp.log(2 + g / mp.log1p(mp.mpf(a))))
        lam = mp.exp(g)
        return (1 - mp.exp(-lam * q / n)) / (1 - mp.exp(-lam / n))


def _catoni_grid_mp(emp, bits, n, delta, j, a=LOTFI_ALPHA):
    """The union-bound statement at grid point j: Catoni at lambda_j = (1+a)^j, delta_j = delta / (j+2)^2."""
    with mp.workdps(50):
        emp = mp.mpf(emp.numerator) / emp.denominator
        kl = mp.mpf(bits) * mp.log(2)
        lam = (1 + mp.mpf(a)) ** j
        q = emp + (kl + mp.log((j + 2) ** 2 / mp.mpf(delta))) / lam
        return (1 - mp.exp(-lam * q / n)) / (1 - mp.exp(-lam / n))


def _catoni_min_mp(emp, bits, n, delta):
    """min over g >= 0 of the formula, by golden section in mpmath."""
    lo, hi = mp.mpf(0), mp.mpf(math.log(n) + 8)
    phi = (mp.sqrt(5) - 1) / 2
    for _ in range(120):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if _catoni_mp(emp, bits, n, delta, a) < _catoni_mp(emp, bits, n, delta, b):
            hi = b
        else:
            lo = a
    return _catoni_mp(emp, bits, n, delta, (lo + hi) / 2)


#: The sheet's table (Lotfi et al.'s formula, delta = 0.05): KL bits, error rate, n, bound (4 decimals).
TABLE = [(3000, 0.01, 60000, 0.0619), (8000, 0.0, 30000, 0.1695), (20000, 0.05, 50000, 0.3609)]


@pytest.mark.parametrize("bits, err, n, expected", TABLE)
def test_the_catoni_form_reproduces_the_table_and_never_falls_below_mpmath(bits, err, n, expected):
    errors = round(err * n)
    cert = compression_certificate(errors, n, CodeLength.declared(bits), 0.05, method=CATONI)
    assert cert.bound == "compression_catoni" and round(cert.value, 4) == expected
    g = cert.details["log_gamma"]
    at_g = _catoni_mp(Fraction(errors, n), bits, n, 0.05, g)
    assert cert.value >= at_g and cert.value - at_g < 1e-12
    assert cert.value - _catoni_min_mp(Fraction(errors, n), bits, n, 0.05) < 1e-9        # optimised over g
    j = math.floor(g / math.log1p(LOTFI_ALPHA))                    # the grid statement it stands for
    assert _catoni_grid_mp(Fraction(errors, n), bits, n, 0.05, j) <= cert.value
    assert mp.zeta(2) - 1 < 0.65                   # the grid's delta shares delta / (j + 2)^2 sum below delta


@pytest.mark.parametrize("bits, err, n", [(3000, 0.01, 60000), (8000, 0.0, 30000), (20000, 0.05, 50000),
                                          (5000, 0.05, 60000), (200, 0.0, 100), (10**6, 0.2, 10**6)])
def test_the_kl_inverse_form_is_seeger_maurer_and_never_below_mpmath(bits, err, n):
    errors = round(err * n)
    cert = compression_certificate(errors, n, CodeLength.declared(bits), 0.05)
    assert cert.bound == "compression_kl"
    with mp.workdps(60):
        c = (mp.mpf(bits) * mp.log(2) + mp.log(2 * mp.sqrt(n) / mp.mpf(0.05))) / n
        q = mp.mpf(errors) / n
        exact = ref.kl_inv_upper(q, c)
    assert cert.value >= exact and cert.value - exact < 1e-10
    same = pac_bayes_certificate("seeger", errors / n, cert.kl, n, 0.05)
    assert abs(cert.value - same.value) < 1e-15


def test_the_two_forms_agree_to_three_decimals_where_the_sheet_says():
    """n = 60000, error 0.05, delta 0.05, the Catoni form rounded up to 3 decimals: 5000 bits -> 0.160 and
    20000 bits -> 0.326 (the kl form: 0.15898 -> 0.159 and 0.32510 -> 0.326)."""
    for bits, printed, kl_printed in ((5000, "0.160", "0.159"), (20000, "0.326", "0.326")):
        kl_form = compression_certificate(3000, 60000, CodeLength.declared(bits), 0.05)
        catoni = compression_certificate(3000, 60000, CodeLength.declared(bits), 0.05, method=CATONI)
        assert format_upper(catoni.value, 3) == printed and format_upper(kl_form.value, 3) == kl_printed
        assert 0 < catoni.value - kl_form.value < 1e-3


def test_the_certificate_records_everything_and_round_trips():
    rng = np.random.default_rng(1)
    code = description_length(rng.integers(0, 10, 2000), 10, searched=16)
    cert = compression_certificate(123, 10_000, code, 0.05, n_prior=5000, details={"seed": 7})
    assert cert.bound == KL.value and cert.delta == 0.05 and cert.delta_parts == {"pac_bayes": 0.05}
    assert cert.kl == code.kl_nats and cert.emp_risk == cert.emp_risk_bound == 123 / 10_000
    assert cert.mc_samples is None and cert.n_bound == 10_000 and cert.n_prior == 5000
    assert cert.certifies is Certified.POSTERIOR                     # the point mass: the quantised network
    d = cert.details
    assert d["code"] == code.to_dict() and d["errors"] == 123 and d["method"] == "compression_kl"
    assert d["seed"] == 7 and "quantised" in d["certified"]
    again = Certificate.from_json(cert.to_json())
    assert again == cert and union_minimum([again]).value == cert.value
    catoni = compression_certificate(123, 10_000, code, 0.05, method="compression_catoni")
    assert catoni.details["alpha"] == LOTFI_ALPHA and catoni.details["lambda"] == math.exp(catoni.details["log_gamma"])
    assert union_minimum([Certificate.from_dict(catoni.to_dict())]).value == catoni.value


def test_union_minimum_and_pay_for_choice_recompute_compression_certificates():
    code = CodeLength.declared(5000)
    kl_form = compression_certificate(3000, 60000, code, 0.05)
    catoni = compression_certificate(3000, 60000, code, 0.05, method=CATONI)
    best = union_minimum([kl_form, catoni], ["kl", "catoni"])
    assert best.value == compression_certificate(3000, 60000, code, 0.025).value
    assert best.details["selection"]["k"] == 2 and best.details["selection"]["chosen"] == "kl"
    assert best.delta == 0.05 and best.details["delta_effective"] == 0.025
    kept = pay_for_choice(catoni, 4, "d=1000", "subspace dimension kept among 4")
    assert kept.value == compression_certificate(3000, 60000, code, 0.0125, method=CATONI).value > catoni.value
    assert union_minimum([kept]).value == kept.value
    # with the other kinds: a held-out certificate of another network on the same bound set
    held = heldout_certificate(3100, 60000, 0.05)
    mixed = union_minimum([kept, held], ["compressed", "held-out"])
    assert mixed.details["selection"]["k"] == 5 and Certificate.from_dict(mixed.to_dict()) == mixed
    assert mixed.value == min(compression_certificate(3000, 60000, code, 0.01, method=CATONI).value,
                              heldout_certificate(3100, 60000, 0.01).value)


def _edited(cert: Certificate, top: dict | None = None, details: dict | None = None) -> dict:
    """``cert``'s record, edited."""
    data = cert.to_dict()
    data.update(top or {})
    data["details"] = {**data["details"], **(details or {})}
    return data


def _built(data: dict) -> Certificate:
    """The certificate of a record built without reading it back (the dataclass's own checks only), as a caller
    holding an edited certificate object would have it."""
    return Certificate(**{key: v for key, v in data.items() if key not in ("schema", "vacuous")})


def _honest() -> Certificate:
    return compression_certificate(300, 6000, description_length(np.arange(500) % 9, 9, searched=4), 0.05)


@pytest.mark.parametrize("top, details", [
    ({}, {"errors": 100}),
    ({"emp_risk": 0.01}, {}),
    ({"value": 0.05}, {}),
    ({"kl": 10.0}, {}),
    ({"n_bound": 60000}, {}),
    ({"bound": "compression_catoni"}, {}),
    ({}, {"method": "compression_catoni"}),
    ({}, {"code": {**_honest().details["code"], "symbols_bits": 3}}),
    ({}, {"code": {**_honest().details["code"], "searched": 1, "search_bits": 0.0}}),
])
def test_a_record_edited_by_hand_is_refused(top, details):
    honest = _honest()
    assert union_minimum([honest]).value == honest.value
    assert Certificate.from_dict(honest.to_dict()) == honest
    data = _edited(honest, top, details)
    with pytest.raises(ValueError, match="edited|reproduce|recomputed"):
        Certificate.from_dict(data)                     # refused when read back
    tampered = _built(data)
    for pay in (lambda c: union_minimum([c]), lambda c: pay_for_choice(c, 3, "setting", "kept among 3")):
        with pytest.raises(ValueError, match="edited|reproduce|recomputed"):
            pay(tampered)


@pytest.mark.parametrize("kwargs, name", [
    ({"errors": 101}, "errors"),
    ({"errors": -1}, "errors"),
    ({"errors": 2.5}, "errors"),
    ({"n": 0}, "n"),
    ({"n": 10.5}, "n"),
    ({"delta": 0.0}, "delta"),
    ({"delta": 1.0}, "delta"),
    ({"method": "seeger"}, "method"),
    ({"n_prior": -1}, "n_prior"),
    ({"details": {"selection": {"k": 2}}}, "details"),
    ({"details": {"certifies": "reference"}}, "details"),
])
def test_certificate_refusals_name_the_argument(kwargs, name):
    args = {"errors": 3, "n": 100, "code": CodeLength.declared(50), "delta": 0.05} | kwargs
    with pytest.raises(ValueError, match=f"'{name}'"):
        compression_certificate(args.pop("errors"), args.pop("n"), args.pop("code"), args.pop("delta"), **args)


def test_a_declared_length_is_marked_and_checked():
    code = CodeLength.declared(3000, searched=1024)
    assert code.total_bits == 3010 and code.d == 0 and code.levels == 0 and code.search_bits == 10.0
    with pytest.raises(ValueError, match="'bits'"):
        CodeLength.declared(-1)
    with pytest.raises(ValueError, match="'searched'"):
        CodeLength.declared(10, searched=0)


# ------------------------------------------------------------------------------------------ command line, records

def test_cli_bound_compression(capsys):
    args = ["bound", "compression", "--errors", "600", "--n", "60000", "--bits", "3000", "--delta", "0.05"]
    assert main(args + ["--method", "catoni"]) == 0
    out = capsys.readouterr().out
    cert = compression_certificate(600, 60000, CodeLength.declared(3000), 0.05, method=CATONI)
    assert "compression_catoni" in out and format_upper(cert.value, 4) in out and "0.0620" in out
    assert main(args + ["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert Certificate.from_dict(data) == compression_certificate(600, 60000, CodeLength.declared(3000), 0.05)
    assert main(args + ["--searched", "1024", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["details"]["code"]["search_bits"] == 10.0
    assert main(["bound", "compression", "--errors", "70000", "--n", "60000", "--bits", "3000"]) == 2
    assert "'errors'" in capsys.readouterr().err
    assert main(args + ["--method", "nope"]) == 2


def test_a_saved_compression_certificate_reports_generically(tmp_path):
    cert = compression_certificate(600, 60000, CodeLength.declared(3000), 0.05, method=CATONI)
    save_certificate(cert, tmp_path / "c.json", dataset="mnist", model="lenet5 d=1000 L=20", prior="init",
                     test_error=0.012)
    rows, errors = report_rows(load_records([tmp_path])[0])
    assert errors == [] and len(rows) == 1
    assert rows[0]["bound"] == "compression_catoni" and rows[0]["certificate"] == cert.value
    assert rows[0]["complexity"] == cert.kl / 60000 and rows[0]["kind"] == "certificate"


def test_unused_levels_change_no_bit_of_the_symbols_code_and_cost_no_memory():
    """description_length codes the used levels only (renumbered): levels of count 0 own empty intervals, so the
    range code under every level's count is the same bits; a huge number of levels is charged, not allocated."""
    rng = np.random.default_rng(5)
    for levels in (2, 9, 300):
        symbols = rng.choice(np.arange(0, levels, 2), size=700)             # every other level unused
        full = range_encode(symbols, np.bincount(symbols, minlength=levels))
        code = description_length(symbols, levels)
        assert code.symbols_bits == code_length_bits(full)
        assert code.counts_bits == levels * math.ceil(math.log2(700 + 1)) == levels * 10
    huge = description_length(np.array([0, 7, 7, 10**12]), 10**15, searched=3)
    assert (huge.counts_bits, huge.codebook_bits) == (3 * 10**15, 16 * 10**15)
    assert huge.total_bits >= 19 * 10**15 and huge.d == 4


def test_the_message_decodes_to_the_symbols_and_its_length_is_what_the_record_charges():
    rng = np.random.default_rng(11)
    symbols = rng.choice([0, 2, 3, 6], p=[0.5, 0.3, 0.15, 0.05], size=400)
    message = encode_message(symbols, 7)
    assert message.used == (0, 2, 3, 6) and message.d == 400 and message.levels == 7
    assert sum(message.counts) == 400 and message.counts == tuple(np.bincount(symbols)[[0, 2, 3, 6]])
    back = Message.from_dict(json.loads(json.dumps(message.to_dict())))
    assert back == message and np.array_equal(back.symbols(), symbols)
    code = message_length(message, searched=6)
    assert code == description_length(symbols, 7, searched=6)
    assert code.symbols_bits == code_length_bits(message.code)
    ideal = -np.sum(np.log2(np.asarray(message.counts) / 400) * np.asarray(message.counts))
    assert code.symbols_bits <= ideal + 2     # (a short code can fall below the ideal: the length field delimits it)
    cert = compression_certificate(21, 900, code, 0.05, message=message)
    assert Message.from_dict(cert.details["message"]) == message
    assert Certificate.from_dict(cert.to_dict()).value == cert.value


def _tampered(message: Message, **change) -> dict:
    return {**message.to_dict(), **change}


def test_a_record_whose_message_is_not_the_code_it_charges_is_refused():
    # the record proves its description length: a message edited by hand (a byte of the code, a count, a level),
    # or one of another length than symbols_bits, is refused when the certificate is read back
    message = encode_message(np.random.default_rng(3).integers(0, 5, 300), 5)
    code = message_length(message)
    record = compression_certificate(30, 1000, code, 0.05, message=message).to_dict()
    hexcode = message.code.hex()
    flipped = hexcode[:20] + format(int(hexcode[20], 16) ^ 0x8, "x") + hexcode[21:]
    edits = [_tampered(message, range_code_hex=flipped),
             _tampered(message, counts=[message.counts[0] + 1, message.counts[1] - 1, *message.counts[2:]]),
             _tampered(message, used=[0, 1, 2, 3, 5]),
             _tampered(message, range_code_hex=hexcode + "01"),
             _tampered(message, levels=6),
             _tampered(message, range_code_hex="zz")]
    for edit in edits:
        bad = json.loads(json.dumps(record))
        bad["details"]["message"] = edit
        with pytest.raises(ValueError, match="'message'"):
            Certificate.from_dict(bad)
    other = encode_message(np.random.default_rng(4).integers(0, 5, 300), 5)
    with pytest.raises(ValueError, match="argument 'message'"):
        compression_certificate(30, 1000, code, 0.05, message=other)
    with pytest.raises(ValueError, match="argument 'message' goes with a computed code length"):
        compression_certificate(30, 1000, CodeLength.declared(500), 0.05, message=message)
    old = json.loads(json.dumps(record))
    del old["details"]["message"]                     # records written before messages were stored still load
    assert Certificate.from_dict(old).value == record["value"]
