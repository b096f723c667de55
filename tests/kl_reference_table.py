"""The mpmath reference values of the kl inverses on tests/test_kl.py's grid, stored in tests/data/kl_reference.json.

Recomputing them (:func:`compute`, tests/reference.py at 60+ digits) takes about 8 s; the table holds them exactly:
each value is its mpmath binary mantissa and exponent (``[man, exp]``: man * 2^exp), each grid point its two
float64 coordinates as ``float.hex``. tests/test_kl.py recomputes a random part of the table live on every run, so
the table cannot drift from tests/reference.py unnoticed. Regenerate after changing the grid or the reference::

    python tests/kl_reference_table.py
"""

import json
import math
from pathlib import Path

import mpmath as mp
import reference as ref
from mpmath.libmp import from_man_exp

QS = [0.0, 1e-300, 1e-12, 1e-6, 1e-3, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99,
      1 - 1e-6, 1 - 1e-12, 1.0]
CS = [0.0, 1e-300, 1e-20, 1e-15, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 1.0, 3.0,
      10.0, 50.0, 100.0, 700.0, 1e5, 1e300, math.inf]
GRID = [(q, c) for q in QS for c in CS]
PATH = Path(__file__).resolve().parent / "data" / "kl_reference.json"


def compute(q: float, c: float) -> tuple[mp.mpf, mp.mpf]:
    """(upper inverse, lower inverse) at (q, c), live from tests/reference.py."""
    return ref.kl_inv_upper(q, c), ref.kl_inv_lower(q, c)


def _encode(x: mp.mpf) -> list[int]:
    sign, man, exp, _ = x._mpf_          # exact (mp.mpf(x) would round to the working precision); zero: 0s
    return [-int(man) if sign else int(man), int(exp)]


def _decode(pair: list[int]) -> mp.mpf:
    return mp.make_mpf(from_man_exp(int(pair[0]), int(pair[1])))


def load() -> dict[tuple[float, float], tuple[mp.mpf, mp.mpf]]:
    """``{(q, c): (upper, lower)}`` from the stored table, every value exactly as :func:`compute` gave it."""
    rows = json.loads(PATH.read_text())["values"]
    return {(float.fromhex(r["q"]), float.fromhex(r["c"])): (_decode(r["upper"]), _decode(r["lower"])) for r in rows}


def main() -> None:
    rows = []
    for q, c in GRID:
        up, lo = compute(q, c)
        rows.append({"q": float(q).hex(), "c": float(c).hex(), "upper": _encode(up), "lower": _encode(lo)})
    about = ("exact mpmath values (man * 2^exp) of tests/reference.py's kl inverses on tests/kl_reference_table.py's "
             "grid; regenerate with python tests/kl_reference_table.py")
    body = ",\n".join(json.dumps(r) for r in rows)
    PATH.write_text(f'{{"about": {json.dumps(about)},\n"values": [\n{body}\n]}}\n')


if __name__ == "__main__":
    main()
