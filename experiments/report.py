"""Render rows of results as text, Markdown, LaTeX (booktabs), CSV or JSON tables.

Bound values are rounded *up* when printed with fewer digits (a printed bound is never
below the computed one); other numbers are rounded to nearest.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import itertools
import json
import math
import os
import reprlib
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from ..bounds import Certificate, Certified, format_upper, round_up
from ..estimators.iterative.trajectories import Checkpoint
from ..estimators.supersample.certified import KINDS
from ..estimators.supersample.runs import SupersampleSummary
from .cmi_results import (
    MALFORMED,
    CMIRecord,
    LangevinRecord,
    PacBayesSettings,
    certificate_from_entry,
    pac_bayes_result,
    read_entries,
    record_object,
    what_is_wrong,
)
from .records import CertificateEntry, certificate_config
from .results import CMIRunResult, MaskComparison, PacBayesRecord, PacBayesResult, heldout_baseline

__all__ = ["Column", "format_number", "render", "render_sections", "FORMATS", "REPORT_COLUMNS", "REPORT_NOTE",
           "GROUP_NOTE", "SOURCE", "REPORT_FIELDS", "REPORT_WIDTH", "RowFilter", "row_filter", "select_rows",
           "source_names", "report_table", "rows_from_record", "report_rows", "group_rows", "summary_rows",
           "summary_columns", "cmi_rows", "cmi_columns", "shown_bounds", "cmi_certified_rows", "cmi_certified_columns"]

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
    width: int | None = None,
) -> str:
    """Render ``rows`` in format ``fmt`` (one of :data:`FORMATS`).

    ``json`` dumps the rows themselves (full precision); with ``json_key`` it is an object
    keyed by that field of each row, else a list. With ``width``, the text columns of a Markdown
    or plain-text table wrap onto continuation lines so that its lines fit ``width`` characters
    (:func:`_fit`).
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
    if fmt in ("markdown", "table"):
        widths = _fit(titles, cells, numeric, fmt, width)
        return "\n".join(_text_lines(titles, cells, numeric, widths, fmt))
    raise ValueError(f"argument 'fmt' must be one of {FORMATS}, got {fmt!r}")


#: The narrowest a text column is wrapped to (or its title's width, if wider).
MIN_WRAP = 12


def _widths(titles: Sequence[str], cells: Sequence[Sequence[str]]) -> list[int]:
    """Each column's natural width: its widest cell or title."""
    return [max(len(t), *(len(row[i]) for row in cells)) if cells else len(t) for i, t in enumerate(titles)]


def _line_width(widths: Sequence[int], fmt: str) -> int:
    """The length of a line of a ``fmt`` table with these column widths."""
    return sum(widths) + (3 * len(widths) + 1 if fmt == "markdown" else 2 * (len(widths) - 1))


def _fit(titles: Sequence[str], cells: Sequence[Sequence[str]], numeric: Sequence[bool], fmt: str,
         width: int | None) -> list[int]:
    """Column widths whose lines fit ``width`` characters where they can: one character at a time,
    the text column is narrowed whose narrowing wraps the fewest cells (the widest of those), never
    below its title nor :data:`MIN_WRAP`; numbers never wrap."""
    out = _widths(titles, cells)
    floor = [w if num else min(w, max(len(t), MIN_WRAP)) for w, t, num in zip(out, titles, numeric)]
    while width is not None and _line_width(out, fmt) > width:
        narrowable = [i for i in range(len(out)) if out[i] > floor[i]]
        if not narrowable:
            break
        wrapped = {i: sum(len(row[i]) >= out[i] for row in cells) for i in narrowable}
        out[min(narrowable, key=lambda i: (wrapped[i], -out[i]))] -= 1
    return out


def _text_lines(titles: Sequence[str], cells: Sequence[Sequence[str]], numeric: Sequence[bool],
                widths: Sequence[int], fmt: str) -> list[str]:
    """A Markdown or plain-text table: head, rule, and each row on as many lines as its widest
    wrapped cell takes (the others blank on the continuation lines)."""
    def line(parts: Sequence[str]) -> str:
        text = [_just(x, w, num) for x, w, num in zip(parts, widths, numeric)]
        return "| " + " | ".join(text) + " |" if fmt == "markdown" else "  ".join(text).rstrip()

    body = []
    for row in cells:
        wrapped = [[x] if len(x) <= w else textwrap.wrap(x, w, break_on_hyphens=False) or [""]
                   for x, w in zip(row, widths)]
        body += [line(parts) for parts in itertools.zip_longest(*wrapped, fillvalue="")]
    head = line(titles)
    if fmt == "markdown":
        rule = "|" + "|".join("-" * (w + 1) + ":" if num else "-" * (w + 2) for num, w in zip(numeric, widths)) + "|"
    else:
        rule = "-" * max(len(x) for x in [head, *body])
    return [head, rule, *body]


def render_sections(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], fmt: str,
                    shared: Sequence[Column], width: int | None = None) -> str:
    """``rows`` as :func:`render`, but as Markdown or text the ``shared`` columns are stated once
    above each run of consecutive rows they are equal for ("source: ...; dataset: ..."), and the
    tables below hold the other columns, aligned across sections and wrapped to ``width``."""
    if fmt not in ("markdown", "table"):
        return render([*columns, *shared], rows, fmt)
    titles = [c.title for c in columns]
    cells = _cells(columns, rows)
    numeric = [all(isinstance(r.get(c.key), (int, float, type(None))) for r in rows) for c in columns]
    widths = _fit(titles, cells, numeric, fmt, width)
    heads = ["; ".join(f"{c.title}: {text}" for c, text in zip(shared, row)) for row in _cells(shared, rows)]
    out: list[str] = []
    for head, members in itertools.groupby(zip(heads, cells), key=lambda hc: hc[0]):
        out += [*(textwrap.wrap(head, width, subsequent_indent="  ") if width else [head]), "",
                *_text_lines(titles, [c for _, c in members], numeric, widths, fmt), ""]
    return "\n".join(out).rstrip("\n")


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

#: The record file a report row came from, relative to the folder the records were read from.
SOURCE = Column("source", "source")

#: The fields of a report row, which ``--filter`` and ``--group-by`` name.
REPORT_FIELDS = (*(c.key for c in REPORT_COLUMNS), SOURCE.key)

#: The fields a report row shares with the other rows of its record; a human-readable report
#: states them once above those rows (:func:`render_sections`).
SHARED_FIELDS = ("source", "dataset", "model", "prior")

#: The widest line of a human-readable report: longer cells wrap.
REPORT_WIDTH = 160


#: What the rows of a report are, printed under every human-readable report table.
REPORT_NOTE = (
    "kind: 'certificate' = holds w.p. >= 1 - delta (delta in the record) on its own; 'estimate' = a CMI or "
    "Langevin bound from plug-in estimates, no probability guarantee (a Langevin row's bound is the training error "
    "plus the gap bound); 'certificate if SGLD's privacy approximation holds' = a DP-prior certificate whose prior "
    "was drawn by SGLD, assumed (not proven) to be as private as its Gibbs target, and whose KL/n includes the DP "
    "adjustment (ln 2 + max-information). Each certificate row is a separate statement: the smallest of several "
    "holds only with a union bound (a PAC-Bayes record's 'best' entry has it paid)."
)

#: Printed under a grouped report table (:func:`group_rows`).
GROUP_NOTE = (
    "grouped: each number is the mean over the rows of its group ('runs' counts them), so a row's kind says 'mean "
    "of N ...': a mean of certificates of different predictors is itself no certificate. 'vacuous' = some row of "
    "the group is. Rows of different n are never averaged (n is always a group field). Groups mixing different "
    "bounds are refused."
)


def _num(x: Any, name: str, *, optional: bool = False) -> float | int | None:
    """``x``, which must be a real number, not NaN (or None when ``optional``)."""
    if x is None and optional:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        raise ValueError(f"{name!r} must be a number, got {reprlib.repr(x)}")
    return x


def _count(x: Any, name: str) -> int:
    """``x``, which must be a sample size: a whole number >= 1."""
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise ValueError(f"{name!r} must be a whole number >= 1, got {reprlib.repr(x)}")
    return x


def _flag(x: Any, name: str) -> bool:
    """``x``, which must be true or false."""
    if not isinstance(x, bool):
        raise ValueError(f"{name!r} must be true or false, got {reprlib.repr(x)}")
    return x


def _dp_prior(c: Certificate) -> Mapping:
    """The DP prior's entry of a certificate's details (``{}`` when its prior is not DP)."""
    return record_object(c.details.get("dp_prior", {}), "dp_prior")


def _certificate_cells(c: Certificate) -> dict:
    """A certificate's report cells. KL/n is (KL + A)/n with A the DP adjustment ln 2 + max-information
    when the prior was drawn by a DP mechanism (Dziugaite & Roy 2018, Theorem 4.2: the bound uses
    KL + A), else KL/n."""
    dp = _dp_prior(c)
    kl = c.kl + (_num(dp["adjustment_nats"], "adjustment_nats") if dp else 0.0)
    return {"n": c.n_bound, "emp_risk": c.emp_risk, "complexity": kl / c.n_bound, "certificate": c.value,
            "vacuous": c.vacuous}


def _certificate_kind(c: Certificate) -> str:
    """'certificate', or the conditional kind of a DP-prior certificate: plain only when its recorded privacy is
    exactly "exact" and its mechanism was not SGLD (whose privacy is an approximation,
    :mod:`genbounds.estimators.snn.dp_prior`); a record claiming exact privacy for an SGLD draw was edited."""
    dp = _dp_prior(c)
    if not dp:
        return "certificate"
    privacy, mechanism = str(dp.get("privacy", "")), str(dp.get("mechanism", ""))
    if privacy == "exact" and "SGLD" not in mechanism:
        return "certificate"
    if privacy == "exact":
        raise ValueError(f"details['dp_prior'] claims exact privacy for a prior sampled by SGLD ({mechanism!r}), "
                         "whose privacy is an approximation; was the record edited?")
    if privacy.startswith("approximate") and "SGLD" in privacy + mechanism:
        return "certificate if SGLD's privacy approximation holds"
    return f"certificate if the DP prior's privacy holds ({privacy or 'not recorded'})"


def _pac_bayes_rows(s: PacBayesSettings, r: PacBayesResult) -> list[dict]:
    """Rows of one PAC-Bayes result: the stochastic predictor, the prior's own network on the
    bound set (held-out baseline), the combined certificate over that network (with the test error of
    the predictor it certifies), then any deterministic masks."""
    c = r.certificate
    base = {"dataset": s.task, "model": c.details.get("arch", str(s.arch)), "prior": s.prior_text, "alpha": s.alpha}
    masks = r.masks
    # (row label, test error and bound-set empirical risk of the predictor certified, certificate)
    entries = [(r.objective + ("" if masks is None else
                               f", stochastic masks (E sparsity {masks.expected_sparsity:.3f})"),
                r.test_error_stochastic, c.emp_risk, c)]
    held = heldout_baseline(c, _num(r.prior_heldout_error, "prior_heldout_error", optional=True))
    if held is not None:
        entries.append(("prior network, held-out (test-set bound)", r.prior_test_error, held.emp_risk, held))
    x = r.certificate_excess
    if x is not None:
        posterior = x.certifies is Certified.POSTERIOR
        entries.append((f"{r.objective}, combined over the prior network (certifies "
                        f"{'the posterior' if posterior else 'the prior network'})",
                        r.test_error_stochastic if posterior else r.prior_test_error,
                        x.emp_risk if posterior else r.prior_heldout_error, x))
    if masks is not None:
        for name in MaskComparison.PREDICTORS:
            m = getattr(masks, name)
            entries.append((f"{name} mask, deterministic (sparsity {m.sparsity:.3f})", m.test_error,
                            m.certificate.emp_risk, m.certificate))
    return [{**base, "bound": bound, "test_error": _num(err, "test_error", optional=True),
             **_certificate_cells(cert), "emp_risk": emp, "kind": _certificate_kind(cert)}
            for bound, err, emp, cert in entries]


#: The mean-MI entry of a supersample record each CMI bound uses.
_MI_KEYS = {"prediction pair": "prediction_pair", "loss pair": "loss_pair", "loss difference": "loss_difference"}


def _cmi_rows(rec: CMIRecord, r: CMIRunResult) -> list[dict]:
    """Rows of one CMI result (one per applicable bound estimate)."""
    s, rows = r.result.summary, []
    for name, b in r.result.bounds.items():
        if not b.applicable:
            continue
        mi = s.mean_mi
        if isinstance(s, SupersampleSummary):        # one mean MI per kind
            mi = record_object(mi, "mean_mi")[_MI_KEYS.get(b.mi, "single_loss")]
        rows.append({"dataset": rec.dataset, "model": rec.arch, "prior": "-", "bound": name,
                     "n": _count(r.n, "n"), "emp_risk": _num(s.train_error, "train_error"),
                     "test_error": _num(s.test_error, "test_error"), "complexity": _num(mi, "mean_mi"),
                     "certificate": _num(b.value, "value"), "vacuous": b.vacuous, "kind": b.kind})
    cert = r.result.certified
    if cert is not None:                        # a certified experiment: its certificate and held-out baseline
        target = cert.certificate.details["target"]
        entries = [(f"certified CMI, {cert.certificate.details['form']} ({target})", cert.certificate),
                   (f"held-out mean, baseline ({target})", cert.held_out)]
        if cert.interpolating is not None:
            entries.insert(1, (f"certified CMI, interpolating ({target})", cert.interpolating))
        for label, c in entries:
            rows.append({"dataset": rec.dataset, "model": rec.arch, "prior": "-", "bound": label,
                         "n": _count(r.n, "n"), "emp_risk": _num(s.train_error, "train_error"),
                         "test_error": _num(s.test_error, "test_error"), "complexity": c.kl / c.n_bound,
                         "certificate": c.value, "vacuous": c.vacuous,
                         "kind": KINDS[c.bound]})
    return rows


def _langevin_rows(rec: LangevinRecord, c: Checkpoint) -> list[dict]:
    """Rows of one Langevin checkpoint. The theorems bound the gap, so the bound column is the
    training error plus the gap bound (rounded up), vacuous when that reaches 1."""
    train, rows = _num(c.train_error, "train_error"), []
    for name, b in c.bounds.items():
        total = round_up(train + _num(b.value, "value"))
        rows.append({"dataset": rec.pool, "model": rec.net, "prior": "-", "bound": f"{name} (step {c.step})",
                     "n": rec.n, "emp_risk": train, "test_error": _num(c.test_error, "test_error"),
                     "complexity": None, "certificate": total, "vacuous": total >= 1.0 or b.vacuous,
                     "kind": "estimate"})
    return rows


def _calculator_rows(record: Mapping, c: Certificate) -> list[dict]:
    """The row of one calculator certificate."""
    return [{"dataset": "-", "model": "-", "prior": "-", "bound": c.bound, "test_error": None,
             **_certificate_cells(c), "kind": _certificate_kind(c)}]


def _saved_certificate_rows(config: Mapping, e: CertificateEntry) -> list[dict]:
    """The row of a certificate saved from Python (:func:`.records.save_certificate`)."""
    c = e.certificate
    return [{**config, "bound": e.label, "test_error": e.test_error, **_certificate_cells(c),
             "kind": _certificate_kind(c)}]


def _saved_certificates(record: Mapping) -> tuple[Mapping, tuple[CertificateEntry, ...]]:
    """A ``certificate`` record's data set, model and prior, and its entries, typed."""
    try:
        config = certificate_config(record.get("config"))
    except MALFORMED as err:
        raise ValueError(f"config: {what_is_wrong(err)}") from err
    return config, read_entries(record["results"], CertificateEntry.from_dict)


def _pac_bayes(record: Mapping) -> tuple[PacBayesSettings, tuple[PacBayesResult, ...]]:
    """A PAC-Bayes record's settings and results, typed."""
    try:
        settings = PacBayesSettings.from_dict(record.get("config", {}))
    except MALFORMED as err:
        raise ValueError(f"config: {what_is_wrong(err)}") from err
    return settings, read_entries(record["results"], pac_bayes_result)


def _cmi(record: Mapping) -> tuple[CMIRecord, tuple[CMIRunResult, ...]]:
    rec = CMIRecord.from_dict(record)
    return rec, rec.results


def _langevin(record: Mapping) -> tuple[LangevinRecord, tuple[Checkpoint, ...]]:
    rec = LangevinRecord.from_dict(record)
    return rec, rec.checkpoints


def _calculator(record: Mapping) -> tuple[Mapping, tuple[Certificate, ...]]:
    return record, read_entries(record["results"], certificate_from_entry)


#: Per record kind: how it is read (once, into its typed form: what every row shares, and the
#: entries) and the rows of one typed entry.
_READERS: dict[str, tuple[Callable[[Mapping], tuple[Any, Sequence]], Callable[[Any, Any], list[dict]]]] = {
    "pac-bayes": (_pac_bayes, _pac_bayes_rows), "cmi": (_cmi, _cmi_rows), "langevin": (_langevin, _langevin_rows),
    "calculator": (_calculator, _calculator_rows), "certificate": (_saved_certificates, _saved_certificate_rows),
}


def rows_from_record(record: dict) -> list[dict]:
    """Flatten one result record into report rows (none for a search record), the record read
    once into its typed form (:mod:`.cmi_results`, :mod:`.results`).

    A malformed result entry (a missing key, a wrong type, None, a sample size below 1, a name
    outside its closed set) raises ``ValueError`` saying which entry and what is wrong.
    """
    reader = _READERS.get(record["kind"])
    if reader is None:
        return []
    read, make = reader
    shared, entries = read(record)
    rows: list[dict] = []
    for i, entry in enumerate(entries):
        try:
            rows += make(shared, entry)
        except MALFORMED as err:
            raise ValueError(f"result entry {i}: {what_is_wrong(err)}") from err
    return rows


def source_names(paths: Sequence[Any]) -> list[str]:
    """Each record file's name relative to the deepest folder holding all of them
    (``masks/pac-bayes-fashion-mlp300-masks-s0.5.json`` under ``paper_figures/results``)."""
    if not paths:
        return []
    full = [Path(p).resolve() for p in paths]
    root = Path(os.path.commonpath([p.parent for p in full]))
    return [p.relative_to(root).as_posix() for p in full]


def report_rows(records: Sequence[tuple[Any, dict]]) -> tuple[list[dict], list[str]]:
    """The rows of every (path, record) pair, each with its ``source`` (:func:`source_names`), and
    one message per malformed record naming its file and what is wrong (such a record gives no
    rows; the others are reported)."""
    rows, errors = [], []
    for (path, record), source in zip(records, source_names([p for p, _ in records])):
        try:
            rows += [{**row, "source": source} for row in rows_from_record(record)]
        except ValueError as err:
            errors.append(f"{path}: {err}")
    return rows, errors


@dataclass(frozen=True)
class RowFilter:
    """``--filter KEY=PATTERN``: keep the rows whose ``key`` cell, as the report prints it, matches
    the shell-style ``pattern`` (``fashion-mnist`` exactly, ``fashion-mnist*`` any of its tasks)."""

    key: str
    pattern: str

    def matches(self, row: Mapping[str, Any]) -> bool:
        return fnmatch.fnmatchcase(_printed(row, self.key), self.pattern)


def _printed(row: Mapping[str, Any], key: str) -> str:
    """The cell of ``row`` in report field ``key`` as the report prints it (4 digits, bounds rounded up)."""
    col = next((c for c in REPORT_COLUMNS if c.key == key), SOURCE)
    return format_number(row.get(key), col.digits, upper=col.upper)


def row_filter(text: str) -> RowFilter:
    """argparse type of ``--filter``: ``KEY=PATTERN`` with KEY one of :data:`REPORT_FIELDS`."""
    key, sep, pattern = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. dataset=fashion-mnist), got {text!r}")
    if key not in REPORT_FIELDS:
        raise argparse.ArgumentTypeError(f"unknown field {key!r} (fields: {', '.join(REPORT_FIELDS)})")
    return RowFilter(key, pattern)


def select_rows(rows: list[dict], filters: Sequence[RowFilter]) -> list[dict]:
    """The rows every filter matches. A filter that leaves no row is refused (``ValueError``
    naming '--filter' and the values its field has among the rows before it)."""
    for f in filters:
        kept = [r for r in rows if f.matches(r)]
        if not kept:
            values = sorted({_printed(r, f.key) for r in rows})
            shown = ", ".join(f"'{v}'" for v in values[:10]) + (", ..." if len(values) > 10 else "")
            raise ValueError(f"argument '--filter': no row has {f.key} {f.pattern!r} (its values: {shown})")
        rows = kept
    return rows


def _mean_kind(kinds: Sequence[str]) -> str:
    """The kind of a group's row: 'mean of N certificates' (a mean, never a certificate itself),
    or 'mean of N rows of different kinds (...)'."""
    n, distinct = len(kinds), sorted(set(kinds))
    if len(distinct) > 1:
        return f"mean of {n} rows of different kinds ({', '.join(distinct)})"
    first, _, rest = distinct[0].partition(" ")
    return f"mean of {n} {first}{'' if n == 1 else 's'}{' ' + rest if rest else ''}"


def group_rows(rows: list[dict], keys: list[str]) -> list[dict]:
    """One row per distinct value of ``keys``: numbers averaged (the bound's mean over the group),
    ``runs`` counts the members, ``vacuous`` is true if any member is, and ``kind`` says the row is
    a mean (:func:`_mean_kind`). ``n`` is always among the keys: rows of different sample sizes are
    never averaged. A group whose rows are of different bounds is refused: a mean of different
    formulas' values is no bound (``ValueError`` naming the group; group by 'bound' too)."""
    keys = [*keys, *([] if "n" in keys else ["n"])]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    out = []
    for key, members in groups.items():
        row = dict(zip(keys, key))
        bounds = sorted({str(m.get("bound")) for m in members})
        if len(bounds) > 1:
            where = ", ".join(f"{k} {v}" for k, v in row.items())
            raise ValueError(f"argument '--group-by': the group {where} mixes different bounds "
                             f"({', '.join(map(repr, bounds))}), whose mean is no bound; add 'bound' to the fields")
        for col in ("n", "emp_risk", "test_error", "complexity", "certificate"):
            vals = [m[col] for m in members if isinstance(m.get(col), (int, float))]
            if vals and col not in keys:
                row[col] = sum(vals) / len(vals)
        row["vacuous"] = any(m.get("vacuous") for m in members)
        for col in ("dataset", "model", "prior", "bound"):
            if col not in row:
                distinct = {m.get(col) for m in members}
                row[col] = distinct.pop() if len(distinct) == 1 else "*"
        sources = sorted({str(m.get("source")) for m in members if "source" in m})
        if sources and "source" not in row:
            row["source"] = sources[0] if len(sources) == 1 else f"{len(sources)} files"
        row["kind"] = _mean_kind([str(m.get("kind")) for m in members])
        row["runs"] = len(members)
        out.append(row)
    return out


def report_table(rows: list[dict], group_by: Sequence[str] | None, fmt: str, digits: int,
                 filters: Sequence[RowFilter] = ()) -> str:
    """``genbounds report``: the rows ``filters`` keep (:func:`select_rows`), one per result or per
    group of ``group_by`` (:func:`group_rows`), bounds and errors to ``digits`` digits. As text or
    Markdown each record's source, data set, model and prior head its rows (:func:`render_sections`)
    and lines fit :data:`REPORT_WIDTH`; other formats have a ``source`` column. With the note on
    what the rows are."""
    cols = [replace(c, digits=digits) if c.key in ("emp_risk", "test_error", "certificate") else c
            for c in REPORT_COLUMNS]
    rows = select_rows(rows, filters)
    if group_by:
        bad = [k for k in group_by if k not in REPORT_FIELDS]
        if bad:
            raise ValueError(f"argument '--group-by' has unknown field(s) {bad} (fields: {', '.join(REPORT_FIELDS)})")
        rows = group_rows(rows, list(group_by))
        cols.append(Column("runs", "runs"))
    shared = [c for key in SHARED_FIELDS for c in [*cols, SOURCE] if c.key == key]
    table = render_sections([c for c in cols if c not in shared], rows, fmt, shared, REPORT_WIDTH)
    note = f"{REPORT_NOTE} {GROUP_NOTE}" if group_by else REPORT_NOTE
    if fmt in ("table", "markdown"):
        return f"{table}\n\n" + "\n".join(textwrap.wrap(note, REPORT_WIDTH))
    if fmt == "latex":
        return f"{table}\n% {note}"
    return table


# ---------------------------------------------------------------------------------------
# The tables the runners print


def summary_rows(record: PacBayesRecord) -> list[dict]:
    """One row per objective of a PAC-Bayes record: certificates, test errors, KL/n."""
    return [{
        "objective": r.objective,
        "certificate": r.certificate.value,
        "mc_risk": r.certificate.emp_risk,
        "certificate_weights": None if r.certificate_weights is None else r.certificate_weights.value,
        "certificate_excess": None if r.certificate_excess is None else r.certificate_excess.value,
        "disagreement": None if r.disagreement is None else r.disagreement.rate,
        "test_error": r.test_error_stochastic,
        "test_error_mean": r.test_error_mean,
        "kl_over_n": r.kl_over_n,
        "n_bound": r.certificate.n_bound,
        "n_prior": r.certificate.n_prior,
        "vacuous": r.certificate.vacuous,
    } for r in record.results]


def summary_columns() -> list[Column]:
    """Columns of the PAC-Bayes summary table (:func:`summary_rows`)."""
    return [
        Column("objective", "objective"),
        Column("certificate", "certificate (b)", upper=True),
        Column("certificate_weights", "certificate (a)", upper=True),
        Column("certificate_excess", "combined (excess)", upper=True),
        Column("disagreement", "disagree (b)"),
        Column("mc_risk", "MC risk (b)"),
        Column("test_error", "test err (stoch.)"),
        Column("test_error_mean", "test err (mean)"),
        Column("kl_over_n", "KL/n", digits=5),
        Column("n_bound", "n bound"),
        Column("n_prior", "n prior"),
    ]


SHOWN = ("fcmi", "ecmi", "ldcmi", "binary_kl", "interpolating", "fast_rate")
LOO_SHOWN = ("loo_sqrt", "loo_interpolating")


def shown_bounds(record: CMIRecord) -> tuple[str, ...]:
    """The bounds a table or figure shows for a CMI record (supersample or leave-one-out)."""
    return LOO_SHOWN if record.loo else SHOWN


def cmi_rows(record: CMIRecord) -> list[dict]:
    """One row per n of a CMI record: measured errors and the shown bound estimates."""
    rows = []
    for r in record.results:
        s = r.result.summary
        row = {"n": r.n, "train_error": s.train_error, "test_error": s.test_error, "gap": s.gap}
        rows.append({**row, **{name: r.result[name].value for name in shown_bounds(record)}})
    return rows


def cmi_columns(record: CMIRecord) -> list[Column]:
    """Columns of the CMI table of a record (:func:`cmi_rows`)."""
    cols = [Column("n", "n"), Column("train_error", "train err"), Column("test_error", "test err"),
            Column("gap", "gap")]
    return cols + [Column(name, name, upper=True) for name in shown_bounds(record)]


def cmi_certified_rows(record: CMIRecord) -> list[dict]:
    """One row per certified n of a CMI record: the certificate (and the interpolating one, when every run
    interpolated), the plug-in estimate of the same form, the held-out baseline and the measured test error."""
    rows = []
    for r in record.results:
        cert = r.result.certified
        if cert is None:
            continue
        c = cert.certificate
        rows.append({"n": r.n, "runs": c.details["runs"], "k1": c.details["k1"], "k2": c.details["k2"],
                     "form": c.details["form"], "certificate": c.value,
                     "interpolating": None if cert.interpolating is None else cert.interpolating.value,
                     "estimate": r.result[c.details["form"]].value, "held_out": cert.held_out.value,
                     "test_error": r.result.summary.test_error, "seconds": r.seconds})
    return rows


def cmi_certified_columns() -> list[Column]:
    """Columns of :func:`cmi_certified_rows`."""
    return [Column("n", "n"), Column("runs", "runs"), Column("k1", "k1"), Column("k2", "k2"), Column("form", "form"),
            Column("certificate", "certificate", upper=True),
            Column("interpolating", "interp. (if always 0 train err)", upper=True),
            Column("estimate", "plug-in estimate", upper=True), Column("held_out", "held-out cert.", upper=True),
            Column("test_error", "test err"), Column("seconds", "seconds", digits=0)]
