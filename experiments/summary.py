"""The text each ``genbounds`` command prints: its table and, as text, the lines around it that
say what the numbers are (which bound, which delta, what is and is not a certificate).

Each function takes the command's typed results and returns the whole text; the command line
(:mod:`genbounds.cli`) only parses, dispatches and prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..bounds import EXCESS_BOUNDS, Certificate, CodeLength, format_delta, format_upper, union_minimum
from ..estimators.supersample import CMIResult
from ..estimators.supersample.certified import TARGET as CERTIFIED_TARGET
from .cmi_results import CMIRecord, LangevinRecord
from .config import LangevinAlgorithm
from .pac_bayes_runner import PacBayesConfig
from .recipes import recipe_table
from .report import (
    REPORT_NOTE,
    Column,
    RowFilter,
    cmi_certified_columns,
    cmi_certified_rows,
    cmi_columns,
    cmi_rows,
    format_number,
    render,
    report_table,
    summary_columns,
    summary_rows,
)
from .results import PacBayesRecord, certified_predictor, heldout_baseline

__all__ = ["calculator_text", "compression_calculator_text", "pac_bayes_text", "bound_cmi_text", "cmi_text",
           "langevin_text", "estimates_text", "report_text", "reproduce_text"]


def _note(c: Certificate) -> str:
    if c.bound == "catoni":
        g = c.details["C_grid"]
        return f"C = {c.details['C']:.3g} from a grid of {g['size']} (union bound)"
    if c.bound == "lambda":
        return f"lambda = {c.details['lambda']:.3g} (optimal; uniform in lambda)"
    return ""


def compression_calculator_text(cert: Certificate, digits: int) -> str:
    """``genbounds bound compression``: the certificate of a quantised network and what it was charged."""
    code = CodeLength.from_dict(cert.details["code"])
    return (f"{cert.bound}: {format_upper(cert.value, digits)} (rounded up), a certificate on the risk of the "
            f"quantised network, w.p. >= 1 - {format_delta(cert.delta)}\n"
            f"errors {cert.details['errors']} / n {cert.n_bound}, description length {_charged(code.total_bits)} "
            f"bits (search {_charged(code.search_bits)}), KL = {_charged(cert.kl)} nats")


def _charged(x: float) -> str:
    """Bits or nats charged to a bound, as text never below them: a whole number as an integer, else rounded up."""
    return str(int(x)) if float(x).is_integer() else format_upper(x, 4)


def calculator_text(certs: Sequence[Certificate], fmt: str, digits: int) -> str:
    """``genbounds bound pac-bayes``: every bound side by side; as text, with the confidence it
    holds at and the honest minimum of seeger and catoni."""
    rows = [{"bound": c.bound, "value": c.value, "vacuous": c.vacuous, "note": _note(c)} for c in certs]
    cols = [Column("bound", "bound"), Column("value", "value", upper=True, digits=digits),
            Column("vacuous", "vacuous"), Column("note", "note")]
    table = render(cols, rows, fmt)
    if fmt != "table":
        return table
    c = certs[0]
    parts = " + ".join(f"{k} {format_delta(v)}" for k, v in c.delta_parts.items())
    head = [
        f"PAC-Bayes certificates on the risk of Q (loss in [0,1]); each holds on its own w.p. >= "
        f"1 - {format_delta(c.delta)} (delta = {parts})",
        f"n = {c.n_bound} (prior data: {c.n_prior}), KL = {c.kl:g}, "
        f"KL/n = {c.kl / c.n_bound:.4g}, PAC-Bayes delta used = {format_delta(c.details['delta_effective'])}",
    ]
    if c.mc_samples is not None:
        head.append(
            f"empirical risk {c.emp_risk:g} from {c.mc_samples} Monte Carlo samples, certified <= "
            f"{format_upper(c.emp_risk_bound, 6)} (Langford & Caruana 2002)"
        )
    # quad, lambda and mcallester are relaxations of the kl bound (they hold whenever it does and
    # are never smaller); catoni is a different inequality, so keeping the better of the two pays.
    by_name = {cert.bound: cert for cert in certs}
    best = union_minimum([by_name["seeger"], by_name["catoni"]])
    foot = [
        "quad, lambda and mcallester relax seeger (they hold whenever it does and are never smaller). "
        "Taking the smaller of",
        f"seeger and catoni is a choice after seeing them: with a union bound (each at delta/2) the "
        f"honest minimum is {format_number(best.value, digits, upper=True)} "
        f"({best.selection.chosen}).",
    ]
    return "\n".join(head + ["", table, "", *foot])


def pac_bayes_text(record: PacBayesRecord, cfg: PacBayesConfig, out: Path, fig: Path, fmt: str) -> str:
    """``genbounds quickstart`` / ``pac-bayes``: one row per objective; as text, what the
    certificates are, their confidence, the DP prior's and the masks' statements, the paid
    minimum, and where the record and figure are."""
    table = render(summary_columns(), summary_rows(record), fmt, json_key="objective")
    if fmt != "table":
        return table
    first = record.results[0]
    res = first.certificate
    dp = res.details.get("dp_prior")
    foot = [
        "",
        f"certificate (b): Seeger bound, empirical risk certified from {res.mc_samples} per-example "
        f"weight draws; " + (f"(a): from {cfg.mc_m} full weight draws (Langford & Caruana)." if cfg.mc_m else
                             "(a): not computed (--mc-m 1000 adds it)."),
        f"each certificate holds on its own w.p. >= 1 - {format_delta(res.delta)} (pac_bayes "
        f"{format_delta(res.delta_parts['pac_bayes'])} + monte_carlo "
        f"{format_delta(res.delta_parts['monte_carlo'])}); "
        + ("the DP prior used every example: none is held out." if dp else "bound set excludes the prior's data."),
    ]
    held = heldout_baseline(first.certificate, first.prior_heldout_error)
    if held is not None:
        beaten = [label for label, c in record.certificates() if c.value < held.value]
        foot.append(f"held-out baseline (certificate): the prior's own network has {held.details['k_errors']} errors "
                    f"on these {held.n_bound} bound-set examples; the test-set bound at delta "
                    f"{format_delta(held.delta)} certifies it at {format_number(held.value, 4, upper=True)}. "
                    + (f"Below it: {', '.join(beaten)}." if beaten else
                       "No certificate above is below it: the stochastic posterior certifies nothing better than the "
                       "network it started from."))
    excess = [(r.objective, r.certificate_excess, r.disagreement) for r in record.results
              if r.certificate_excess is not None and r.disagreement is not None]
    if excess:
        first_x = excess[0][1]
        share = {name: f"{part / first_x.delta:.2g} delta" for name, part in first_x.delta_parts.items()}
        foot.append(f"combined certificate (excess), w.p. >= 1 - {format_delta(first_x.delta)}: the prior network's "
                    f"test-set bound at {share['test_set']} plus min(0, the posterior's certified excess loss over "
                    f"it at {share['excess']}, {first_x.details['method'].replace('_', ' ')}), the Monte Carlo step "
                    f"at {share['monte_carlo']} on the same draws as (b):")
        for objective, cert, dis in excess:
            who = certified_predictor(cert)
            foot.append(f"  {objective}: {format_number(cert.value, 4, upper=True)} certifies {who}; the posterior's "
                        f"draws disagree with the prior network on {dis.rate:.2%} (fix {dis.minus / dis.draws:.2%}, "
                        f"break {dis.plus / dis.draws:.2%}), certified excess "
                        f"{format_number(cert.details['excess_bound'], 4, upper=True)}")
    if dp:
        foot.append(f"prior mean drawn by an epsilon-DP mechanism on all {res.n_bound} examples (nothing held out): "
                    f"epsilon {dp['epsilon']:g} adds {dp['adjustment_nats']:.1f} nats (ln 2 + max-information) to "
                    f"the KL. Privacy: {dp['privacy']}.")
    masks = first.masks
    if masks:
        foot.append(f"masks: expected sparsity {masks.expected_sparsity:.3f}. Deterministic predictors on the same "
                    f"bound set (Seeger, delta {format_delta(masks.magnitude.certificate.delta)}, separate "
                    "statements):")
        for m, what in ((masks.magnitude, "magnitude-pruned prior net, KL 0"),
                        (masks.thresholded, "posterior mask thresholded at 1/2, point mass")):
            foot.append(f"  {what}: certificate {format_number(m.certificate.value, 4, upper=True)}, "
                        f"test error {m.test_error:.4f}, sparsity {m.sparsity:.3f}, "
                        f"KL {m.certificate.kl:.1f}")
    if record.best is not None:
        sel = record.best.selection
        best = format_number(record.best.value, 4, upper=True)
        among = (f"these {len(sel.labels)} certificates" if sel.k == len(sel.labels) else
                 f"these {len(sel.labels)} certificates (standing for {sel.k} candidates looked at)")
        if len(sel.labels) > 1:
            foot.append(f"keeping the smallest of {among} ({', '.join(sel.labels)}) is a choice after seeing "
                        f"them: paid with a union bound (each at delta/{sel.k}) it is {best} ({sel.chosen}).")
        foot.append(f"best certified predictor: {certified_predictor(record.best)}, risk <= {best} "
                    f"w.p. >= 1 - {format_delta(record.best.delta)} ({sel.chosen}"
                    + ("; the combined certificate is the one quoted, a rule fixed before any certificate is seen"
                       if record.best.bound in EXCESS_BOUNDS.values() else "") + ").")
    if cfg.settings_looked_at > 1:
        foot.append(f"every certificate above pays for keeping these settings among {cfg.settings_looked_at} looked "
                    f"at on this bound set (each at delta/{cfg.settings_looked_at}).")
    foot.append(f"record: {out / 'record.json'}   figure: {fig}   ({record.timings['total_s']:.0f} s)")
    vac = [(label, c) for label, c in record.certificates() if c.vacuous]
    if vac:
        guess = vac[0][1].guess_risk
        level = "1" if guess is None else f"{guess:.4f}, the error of always guessing the most frequent class"
        foot.append(f"VACUOUS (at or above {level}: says nothing): {', '.join(label for label, _ in vac)}")
    return "\n".join([table, *foot])


def bound_cmi_text(res: CMIResult, loo: bool, fmt: str, digits: int) -> str:
    """``genbounds bound cmi``: every CMI bound estimate from the runs; as text, headed by what
    they are (estimates, not certificates) and the measured errors."""
    s = res.summary
    rows = [{"bound": k, "value": b.value, "low": b.interval[0] if b.applicable else None,
             "high": b.interval[1] if b.applicable else None, "mi": b.mi,
             "note": "" if b.applicable else "not applicable: " + b.reason}
            for k, b in res.bounds.items()]
    cols = [Column("bound", "bound (estimate)"),
            Column("value", "estimated bound on E[test error]", upper=True, digits=digits),
            Column("low", "95% low", digits=digits), Column("high", "95% high", upper=True, digits=digits),
            Column("mi", "uses MI of"), Column("note", "note")]
    table = render(cols, rows, fmt)
    if fmt != "table":
        return table
    runs = f"{s.runs} leave-one-out runs" if loo else f"{s.k2} masks"
    head = (f"ESTIMATES, not certificates: {s.note}.\n"
            f"{s.k1} supersamples x {runs}, n = {s.n}: train error {s.train_error:.4f}, "
            f"test error (held-out points) {s.test_error:.4f}, gap {s.gap:.4f}; "
            f"intervals: bootstrap over supersamples\n")
    return head + "\n" + table


def estimates_text(table: str, fmt: str, what: str, out: Path, total_s: float) -> str:
    """A table of estimates; as text, followed by the line saying they are not certificates."""
    if fmt != "table":
        return table
    return "\n".join([table, "", f"ESTIMATES, not certificates: {what}; intervals and per-draw values in "
                      f"{out / 'record.json'} ({total_s:.0f} s)"])


def cmi_text(record: dict, out: Path, fmt: str) -> str:
    """``genbounds cmi``: one row per n, measured errors and the shown bound estimates (the record
    read once into its typed form, :class:`.cmi_results.CMIRecord`)."""
    rec = CMIRecord.from_dict(record)
    text = estimates_text(render(cmi_columns(rec), cmi_rows(rec), fmt), fmt,
                          "bounds on E[test error] from plug-in MIs", out, rec.seconds)
    certified = cmi_certified_rows(rec)
    if not certified or fmt != "table":
        return text
    return "\n".join([text, "", render(cmi_certified_columns(), certified, fmt), "", CMI_CERTIFIED_NOTE])


#: Printed under the certified rows of ``genbounds cmi --certify``.
CMI_CERTIFIED_NOTE = (f"CERTIFICATES of the {CERTIFIED_TARGET} (each w.p. >= 1 - delta, delta in the record): the "
                      "CMI certificate, and beside it the held-out baseline (a separate statement); the interpolating "
                      "column holds only if the algorithm always reaches training error 0")


def langevin_text(record: dict, k1: int, algorithm: LangevinAlgorithm, out: Path, fmt: str) -> str:
    """``genbounds langevin``: one row per checkpoint, the measured errors and every bound estimate."""
    algorithm = LangevinAlgorithm(algorithm)
    cols = [Column("step", "step"), Column("beta", "beta", digits=0) if algorithm is LangevinAlgorithm.LANGEVIN else
            Column("eta", "eta"), Column("train_error", "train err"),
            Column("test_error", "test err"), Column("gap", "gap")]
    rec = LangevinRecord.from_dict(record)
    shown = list(rec.checkpoints[0].bounds)
    cols += [Column(b, b, upper=True) for b in shown]
    rows = [{"step": c.step, "beta": c.beta, "eta": c.eta, "train_error": c.train_error, "test_error": c.test_error,
             "gap": c.gap, **{b: c[b].value for b in shown}} for c in rec.checkpoints]
    ways = {"haghifam_ld": "haghifam_ld averages each draw's runs inside its root (the draw is its conditioning)",
            "negrea_loo": "negrea_loo pools every run of every draw before the root (its conditioning is the shared "
                          "points alone)"}
    how = (f"every run of the {k1} draws pooled before the square root" if algorithm is LangevinAlgorithm.SGD else
           f"{k1} draws: " + ", ".join(ways[b] for b in shown if b in ways))
    return estimates_text(render(cols, rows, fmt), fmt,
                          f"bounds on E[test error - training error] (0-1 loss) from {how}", out, rec.seconds)


def report_text(rows: list[dict], group_by: Sequence[str] | None, fmt: str, digits: int,
                filters: Sequence[RowFilter] = ()) -> str:
    """``genbounds report``: the rows ``filters`` keep, one per result (or per group of ``group_by``),
    bounds and errors to ``digits`` digits; as text, Markdown or LaTeX, with the note on what the
    rows are (:func:`.report.report_table`)."""
    return report_table(rows, group_by, fmt, digits, filters)


def reproduce_text(records: list[tuple[str, dict]], notes: str, out: Path, fmt: str) -> str:
    """``genbounds reproduce NAME``: the recipe's table; as text, with what its rows are, the
    recipe's notes and where the records are."""
    table = recipe_table(records, fmt)
    if fmt != "table":
        return table
    return "\n".join([table, "", REPORT_NOTE, notes, f"records and table.md in {out}"])
