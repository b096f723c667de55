"""Render rows of results as text, Markdown, LaTeX (booktabs), CSV or JSON tables.

Bound values are rounded *up* when printed with fewer digits (a printed bound is never
below the computed one); other numbers are rounded to nearest.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..bounds import format_upper

__all__ = ["Column", "format_number", "render", "FORMATS", "REPORT_COLUMNS", "REPORT_NOTE", "rows_from_record",
           "group_rows", "summary_rows", "summary_columns", "cmi_rows", "cmi_columns", "shown_bounds"]

FORMATS = ("table", "markdown", "latex", "csv", "json")


@dataclass(frozen=True)
class Column:
    """A table column: ``key`` into each row, ``title`` to print, ``upper`` if it holds a bound."""

    key: str
    title: str
    upper: bool = False
    digits: int = 4


def format_number(x: Any, digits: int = 4, *, upper: bool = False) -> str:
    """Fixed-point text for ``x``; ``upper=True`` rounds toward +inf (for bounds)."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if upper:
            return format_upper(x, digits)
        if x != 0 and abs(x) >= 10 ** 6:
            return f"{x:.{digits}g}"
        return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN))
    return str(x)


def _cells(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    return [[format_number(r.get(c.key), c.digits, upper=c.upper) for c in columns] for r in rows]


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(a, b)
    return text


def _just(text: str, width: int, numeric: bool) -> str:
    return text.rjust(width) if numeric else text.ljust(width)


def render(
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
    fmt: str = "table",
    *,
    json_key: str | None = None,
) -> str:
    """Render ``rows`` in format ``fmt`` (one of :data:`FORMATS`).

    ``json`` dumps the rows themselves (full precision); with ``json_key`` it is an object
    keyed by that field of each row, else a list.
    """
    if fmt == "json":
        if json_key is None:
            return json.dumps(list(rows), indent=2)
        return json.dumps({r[json_key]: r for r in rows}, indent=2)
    titles = [c.title for c in columns]
    cells = _cells(columns, rows)
    numeric = [all(isinstance(r.get(c.key), (int, float, type(None))) for r in rows) for c in columns]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        writer.writerows(cells)
        return buf.getvalue().rstrip("\n")
    if fmt == "latex":
        align = "l" + "r" * (len(columns) - 1)
        lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
                 " & ".join(_latex_escape(t) for t in titles) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex_escape(x) for x in row) + r" \\" for row in cells]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)
    widths = [max(len(t), *(len(row[i]) for row in cells)) if cells else len(t)
              for i, t in enumerate(titles)]
    if fmt == "markdown":
        head = "| " + " | ".join(_just(t, w, num) for t, w, num in zip(titles, widths, numeric)) + " |"
        rule = "|" + "|".join("-" * (w + 1) + ":" if num else "-" * (w + 2)
                              for num, w in zip(numeric, widths)) + "|"
        body = ["| " + " | ".join(_just(x, w, num) for x, w, num in zip(row, widths, numeric)) + " |"
                for row in cells]
        return "\n".join([head, rule, *body])
    if fmt == "table":
        head = "  ".join(_just(t, w, num) for t, w, num in zip(titles, widths, numeric)).rstrip()
        body = ["  ".join(_just(x, w, num) for x, w, num in zip(row, widths, numeric)).rstrip()
                for row in cells]
        return "\n".join([head, "-" * max(len(line) for line in [head, *body]), *body])
    raise ValueError(f"argument 'fmt' must be one of {FORMATS}, got {fmt!r}")


# ---------------------------------------------------------------------------------------
# Records -> rows


#: Columns of ``genbounds report`` (a row per run result, or per group).
REPORT_COLUMNS = [
    Column("dataset", "dataset"),
    Column("model", "model"),
    Column("prior", "prior"),
    Column("bound", "objective / bound"),
    Column("n", "n"),
    Column("emp_risk", "emp. risk"),
    Column("test_error", "test error"),
    Column("complexity", "KL/n or MI"),
    Column("certificate", "bound", upper=True),
    Column("kind", "kind"),
    Column("vacuous", "vacuous"),
]


#: What the rows of a report are, printed under every human-readable report table.
REPORT_NOTE = (
    "kind: 'certificate' = holds w.p. >= 1 - delta (delta in the record) on its own; 'estimate' = a CMI bound "
    "from plug-in MIs, no probability guarantee; 'certificate if SGLD's privacy approximation holds' = a DP-prior "
    "certificate whose prior was drawn by SGLD, assumed (not proven) to be as private as its Gibbs target. Each "
    "certificate row is a separate statement: the smallest of several holds only with a union bound (a PAC-Bayes "
    "record's 'best' entry has it paid)."
)


def rows_from_record(record: dict) -> list[dict]:
    """Flatten one result record into report rows."""
    kind, cfg = record["kind"], record.get("config", {})
    rows: list[dict] = []
    if kind == "pac-bayes":
        prior = f"{cfg.get('prior')} (alpha {cfg.get('alpha')})" if cfg.get("prior") == "data" else cfg.get("prior")
        kind = "certificate"
        if cfg.get("prior") == "dp":
            prior = f"dp (epsilon {cfg.get('dp_epsilon')}, all data)"
            dp = record["results"][0]["certificate"]["details"].get("dp_prior", {})
            if str(dp.get("privacy", "")).startswith("approximate"):
                kind = "certificate if SGLD's privacy approximation holds"
        if cfg.get("family") == "mask":
            prior += (f", Bernoulli masks (uniform keep {1 - cfg.get('sparsity'):.3g}, data-free)"
                      if cfg.get("mask_prior") == "uniform" else
                      f", Bernoulli masks (magnitude, sparsity {cfg.get('sparsity')}, flip {cfg.get('mask_flip')})")
        for r in record["results"]:
            c = r["certificate"]
            base = {"dataset": cfg.get("dataset") + ("-binary" if cfg.get("binary") else ""),
                    "model": c.get("details", {}).get("arch", cfg.get("arch")), "prior": prior,
                    "alpha": cfg.get("alpha"), "kind": kind}
            stochastic = {"bound": r["objective"], "test_error": r.get("test_error_stochastic"), "certificate": c}
            masks = r.get("masks", {})
            if masks:
                stochastic["bound"] += f", stochastic masks (E sparsity {masks['expected_sparsity']:.3f})"
            entries = [stochastic] + [
                {"bound": f"{name} mask, deterministic (sparsity {masks[name]['sparsity']:.3f})",
                 "test_error": masks[name]["test_error"], "certificate": masks[name]["certificate"]}
                for name in ("magnitude", "thresholded") if name in masks]
            for e in entries:
                c = e["certificate"]
                rows.append({**base, "bound": e["bound"], "n": c["n_bound"], "emp_risk": c["emp_risk"],
                             "test_error": e["test_error"], "complexity": c["kl"] / c["n_bound"],
                             "certificate": c["value"], "vacuous": c["vacuous"]})
    elif kind == "cmi":
        for r in record["results"]:
            s = r["summary"]
            for name, b in r["bounds"].items():
                if not b.get("applicable"):
                    continue
                mi = s["mean_mi"]
                if isinstance(mi, dict):        # supersample records: one mean MI per kind
                    mi = mi[{"prediction pair": "prediction_pair", "loss pair": "loss_pair",
                             "loss difference": "loss_difference"}.get(b["mi"], "single_loss")]
                rows.append({
                    "dataset": cfg.get("dataset"), "model": cfg.get("arch"), "prior": "-", "bound": name,
                    "n": r["n"], "emp_risk": s["train_error"], "test_error": s["test_error"],
                    "complexity": mi, "certificate": b["value"], "vacuous": b["vacuous"],
                    "kind": b.get("kind", "estimate"),
                })
    elif kind == "langevin":
        for r in record["results"]:
            for name, b in r["bounds"].items():
                rows.append({
                    "dataset": record.get("environment", {}).get("pool", cfg.get("dataset")),
                    "model": record.get("environment", {}).get("net", "mlp"), "prior": "-",
                    "bound": f"{name} (step {r['step']})", "n": cfg.get("n"), "emp_risk": r["train_error"],
                    "test_error": r["test_error"], "complexity": None,
                    "certificate": r["train_error"] + b["value"], "vacuous": b["vacuous"], "kind": "estimate",
                })
    elif kind == "calculator":
        for c in record["results"]:
            rows.append({
                "dataset": "-", "model": "-", "prior": "-", "bound": c["bound"], "n": c["n_bound"],
                "emp_risk": c["emp_risk"], "test_error": None, "complexity": c["kl"] / c["n_bound"],
                "certificate": c["value"], "vacuous": c["vacuous"], "kind": "certificate",
            })
    return rows


def group_rows(rows: list[dict], keys: list[str]) -> list[dict]:
    """One row per distinct value of ``keys``: numbers averaged (the bound's mean over the group),
    ``runs`` counts the members, ``vacuous`` is true if any member is."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    out = []
    for key, members in groups.items():
        row = dict(zip(keys, key))
        for col in ("n", "emp_risk", "test_error", "complexity", "certificate"):
            vals = [m[col] for m in members if isinstance(m.get(col), (int, float))]
            if vals and col not in keys:
                row[col] = sum(vals) / len(vals)
        row["vacuous"] = any(m.get("vacuous") for m in members)
        for col in ("dataset", "model", "prior", "bound", "kind"):
            if col not in row:
                distinct = {m.get(col) for m in members}
                row[col] = distinct.pop() if len(distinct) == 1 else "*"
        row["runs"] = len(members)
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------
# The tables the runners print


def summary_rows(record: dict) -> list[dict]:
    """One row per objective: certificates, test errors, KL/n."""
    rows = []
    for r in record["results"]:
        c = r["certificate"]
        row = {
            "objective": r["objective"],
            "certificate": c["value"],
            "mc_risk": c["emp_risk"],
            "certificate_weights": r.get("certificate_weights", {}).get("value"),
            "test_error": r["test_error_stochastic"],
            "test_error_mean": r["test_error_mean"],
            "kl_over_n": r["kl_over_n"],
            "n_bound": c["n_bound"],
            "n_prior": c["n_prior"],
            "vacuous": c["vacuous"],
        }
        rows.append(row)
    return rows


def summary_columns() -> list[Column]:
    """Columns of the PAC-Bayes summary table (:func:`summary_rows`)."""
    return [
        Column("objective", "objective"),
        Column("certificate", "certificate (b)", upper=True),
        Column("certificate_weights", "certificate (a)", upper=True),
        Column("mc_risk", "MC risk (b)"),
        Column("test_error", "test err (stoch.)"),
        Column("test_error_mean", "test err (mean)"),
        Column("kl_over_n", "KL/n", digits=5),
        Column("n_bound", "n bound"),
        Column("n_prior", "n prior"),
    ]


SHOWN = ("fcmi", "ecmi", "ldcmi", "binary_kl", "interpolating", "fast_rate")
LOO_SHOWN = ("loo_sqrt", "loo_interpolating")


def shown_bounds(record: dict) -> tuple[str, ...]:
    """The bounds a table or figure shows for a CMI record (supersample or leave-one-out)."""
    return LOO_SHOWN if record.get("config", {}).get("loo") else SHOWN


def cmi_rows(record: dict) -> list[dict]:
    """One row per n of a CMI record: measured errors and the shown bound estimates."""
    rows = []
    for r in record["results"]:
        s = r["summary"]
        row = {"n": r["n"], "train_error": s["train_error"], "test_error": s["test_error"], "gap": s["gap"]}
        for name in shown_bounds(record):
            row[name] = r["bounds"][name]["value"] if r["bounds"][name].get("applicable") else None
        rows.append(row)
    return rows


def cmi_columns(record: dict) -> list[Column]:
    """Columns of the CMI table of a record (:func:`cmi_rows`)."""
    cols = [Column("n", "n"), Column("train_error", "train err"), Column("test_error", "test err"),
            Column("gap", "gap")]
    return cols + [Column(name, name, upper=True) for name in shown_bounds(record)]
