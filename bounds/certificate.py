"""The :class:`Certificate` record returned by every final bound in the library.

A certificate carries the bound's value and every input it was computed from: the
empirical risk (and, when it is a Monte Carlo estimate, its certified upper bound), KL,
the number of examples in the bound set, the number used to build the prior, and the
confidence budget split into named parts. It refuses to exist when the parts sum (exactly) above
the stated ``delta``, when a value is NaN, or when a term is out of range.

:func:`pac_bayes_certificate` computes any PAC-Bayes bound of :mod:`bounds.pac_bayes` in
float64, certifying a Monte Carlo empirical risk first when asked, and rounds the value
upward so that float rounding can never make the printed bound too low.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np

from . import pac_bayes as pb
from ._array import (
    check_budget,
    check_choice,
    check_count,
    check_delta,
    check_nonnegative,
    check_probability,
    check_range,
    check_scalar,
    check_share_total,
    divide_down,
    float_at_least,
    float_at_most,
    recomputes_to,
    round_up,
)
from .excess import (
    MAX_N,
    SplitKLExcess,
    UnexpectedBernsteinBound,
    check_ternary_counts,
    excess_certificate,
    split_kl_excess,
    ternary_rates,
    test_set_bound,
    unexpected_bernstein_excess,
)

__all__ = ["Certificate", "Certified", "Selection", "HELDOUT", "heldout_certificate", "ExcessMethod", "EXCESS_BOUNDS",
           "excess_loss_certificate", "split_excess_delta",
           "PacBayesBound", "PAC_BAYES_BOUNDS", "pac_bayes_certificate", "round_up", "union_minimum",
           "pay_for_choice", "format_delta", "format_upper", "register_recomputation"]

SCHEMA = "genbounds.certificate/1"


class PacBayesBound(StrEnum):
    """The PAC-Bayes bounds a certificate can use, by the names certificates, records, training
    objectives (:mod:`genbounds.estimators.snn.objectives`) and the command line use, tightest
    first (the order the calculator prints them)."""

    SEEGER = "seeger"
    CATONI = "catoni"
    QUAD = "quad"
    LAMBDA = "lambda"
    MCALLESTER = "mcallester"


#: Each bound as a function of (emp_risk, kl, n, delta), evaluated in float64 for certificates.
PAC_BAYES_BOUNDS: dict[PacBayesBound, Callable[..., Any]] = {
    PacBayesBound.SEEGER: pb.seeger,
    PacBayesBound.CATONI: pb.catoni_grid,
    PacBayesBound.QUAD: pb.quad,
    PacBayesBound.LAMBDA: pb.lambda_bound_opt,
    PacBayesBound.MCALLESTER: pb.mcallester,
}


class Certified(StrEnum):
    """Which predictor a certificate bounds: the posterior (stochastic, or a point mass) or a reference network
    fixed before the bound set (the prior's own network)."""

    POSTERIOR = "posterior"
    REFERENCE = "reference"
    #: A training algorithm's expected risk at sample size n (certified CMI bounds and their held-out baseline).
    ALGORITHM = "algorithm"


#: Bound names of certificates on a training algorithm's expected risk
#: (:mod:`genbounds.estimators.supersample.certified`).
ALGORITHM_BOUNDS = ("cmi_certified", "cmi_certified_interpolating", "held_out_mean")


@dataclass(frozen=True)
class Selection:
    """A paid choice among ``k`` candidate statements (the union bound of :func:`union_minimum` and
    :func:`pay_for_choice`): the typed view of what a certificate records in ``details["selection"]``.

    Fields:
        k: number of candidate statements paid for (every part of delta divided by k, rounded down).
        labels: the names of the certificates given (one for :func:`pay_for_choice`).
        chosen: the label of the one kept.
        union_bound: the payment, in words.
        candidates: how many candidates each given certificate stood for (None in records written before it was).
        values_given: the values of the given certificates before the payment (records written before this
            field call it ``values_at_full_delta``).
        delta_parts_each: the per-candidate share of each delta part (None in records written before it was).
        nested: the selections the given certificates already were, by label.
        unrecorded_candidates: candidates looked at whose certificates were not kept (:func:`pay_for_choice`).
        reason: what was chosen, in words (:func:`pay_for_choice`).
    """

    k: int
    labels: tuple[str, ...]
    chosen: str
    union_bound: str = ""
    candidates: tuple[int, ...] | None = None
    values_given: tuple[float, ...] = ()
    delta_parts_each: Mapping[str, float] | None = None
    nested: Mapping[str, Selection] = field(default_factory=dict)
    unrecorded_candidates: int | None = None
    reason: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selection:
        """The selection a record holds (``details["selection"]``); a ValueError naming what is missing."""
        if not isinstance(data, Mapping):
            raise ValueError(f"details['selection'] must be a mapping, got {type(data).__name__}")
        missing = [key for key in ("k", "labels", "chosen") if key not in data]
        if missing:
            raise ValueError(f"details['selection'] lacks {', '.join(missing)}")
        check_count("details['selection']['k']", data["k"])
        values = data.get("values_given", data.get("values_at_full_delta", ()))
        each = data.get("delta_parts_each")
        if each is not None and not isinstance(each, Mapping):
            raise ValueError(f"argument 'details': selection['delta_parts_each'] must give a share of each delta "
                             f"part, got {each!r}")
        counts = data.get("candidates")
        if counts is not None:
            if len(counts) != len(data["labels"]) or sum(int(c) for c in counts) != data["k"]:
                raise ValueError(f"details['selection']: k = {data['k']!r} is not the sum of the candidates "
                                 f"{list(counts)!r} of its {len(data['labels'])} labels: the record was edited")
        return cls(k=int(data["k"]), labels=tuple(data["labels"]), chosen=str(data["chosen"]),
                   union_bound=str(data.get("union_bound", "")),
                   candidates=None if data.get("candidates") is None else tuple(int(c) for c in data["candidates"]),
                   values_given=tuple(float(v) for v in values),
                   delta_parts_each=None if each is None else dict(each),
                   nested={label: cls.from_dict(inner) for label, inner in data.get("nested", {}).items()},
                   unrecorded_candidates=data.get("unrecorded_candidates"), reason=data.get("reason"))

    def to_dict(self) -> dict[str, Any]:
        """The record's form (``details["selection"]``): fields that are None or empty are left out."""
        out: dict[str, Any] = {"k": self.k, "labels": list(self.labels), "candidates": self.candidates,
                               "chosen": self.chosen, "union_bound": self.union_bound,
                               "values_given": list(self.values_given), "delta_parts_each": self.delta_parts_each,
                               "nested": {label: inner.to_dict() for label, inner in self.nested.items()},
                               "unrecorded_candidates": self.unrecorded_candidates, "reason": self.reason}
        if out["candidates"] is not None:
            out["candidates"] = list(self.candidates)
        return {key: value for key, value in out.items() if value not in (None, {}, "")}


@dataclass(frozen=True)
class Certificate:
    """A certified upper bound on a risk, with every input recorded.

    Fields:
        bound: name of the bound ("seeger", "quad", ...).
        value: the certified upper bound on the expected loss (rounded upward).
        delta: total failure probability; the statement holds with prob. >= 1 - delta.
        delta_parts: how ``delta`` is split (e.g. ``{"pac_bayes": 0.025, "monte_carlo": 0.01}``);
            must sum to at most ``delta``.
        emp_risk: empirical risk on the bound set (a Monte Carlo estimate if ``mc_samples``).
        kl: KL(Q||P) in nats (0 for bounds that have none).
        n_bound: number of examples in the bound set (never including prior data).
        n_prior: number of examples used to build the prior (0 for a data-free prior).
        emp_risk_bound: certified upper bound on the empirical risk that entered the bound
            (equal to ``emp_risk`` when that is exact).
        mc_samples: number of Monte Carlo losses behind ``emp_risk`` (None if exact).
        details: anything else the bound depends on (union bounds, lambda, C, seeds, ...).
        guess_risk: the error of the best constant predictor (always the most frequent class) on the bound
            set, when known: a certificate at or above it says no more than guessing (:attr:`vacuous`).
    """

    bound: str
    value: float
    delta: float
    delta_parts: Mapping[str, float]
    emp_risk: float
    kl: float
    n_bound: int
    n_prior: int = 0
    emp_risk_bound: float | None = None
    mc_samples: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    guess_risk: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or math.isnan(self.value):
            raise ValueError(f"argument 'value' must be a number, got {self.value!r}")
        if self.value < 0:
            raise ValueError(f"argument 'value' must be >= 0 (a bound on a [0, 1] loss), got {self.value!r}")
        if not isinstance(self.details, Mapping):
            raise ValueError(f"argument 'details' must be a mapping of names to values, got "
                             f"{type(self.details).__name__}")
        check_delta("delta", self.delta)
        if not self.delta_parts:
            raise ValueError("argument 'delta_parts' must name at least one part")
        for name, part in self.delta_parts.items():
            check_delta(f"delta_parts[{name!r}]", part)
        exact = sum(map(Fraction, self.delta_parts.values()))
        if exact > Fraction(self.delta):
            raise ValueError(f"argument 'delta_parts' sums to {float_at_least(exact)!r} (exactly), above the stated "
                             f"delta {self.delta!r}")
        check_probability("emp_risk", self.emp_risk)
        if self.emp_risk_bound is not None:
            check_probability("emp_risk_bound", self.emp_risk_bound)
        check_nonnegative("kl", self.kl)
        check_count("n_bound", self.n_bound)
        check_count("n_prior", self.n_prior, minimum=0)
        if self.mc_samples is not None:
            check_count("mc_samples", self.mc_samples)
        if self.guess_risk is not None:
            check_probability("guess_risk", self.guess_risk)
        if self.selection is not None:
            _check_shares_each(self.selection, self.delta_parts)
        if self.bound in _EXCESS_METHOD and self.details.get("certifies") not in tuple(Certified):
            raise ValueError(f"argument 'details' of a {self.bound!r} certificate must say which predictor it "
                             f"certifies (details['certifies'] one of {tuple(c.value for c in Certified)}), got "
                             f"{self.details.get('certifies')!r}")
        object.__setattr__(self, "delta_parts", dict(self.delta_parts))
        object.__setattr__(self, "details", dict(self.details))

    @property
    def candidates(self) -> int:
        """How many candidate statements this certificate's union bound already pays for: K for a
        paid selection (:func:`union_minimum`, :func:`pay_for_choice`), 1 otherwise."""
        selection = self.selection
        return 1 if selection is None else selection.k

    @functools.cached_property
    def selection(self) -> Selection | None:
        """The paid choice this certificate is the winner of (``details["selection"]``, read once), or None."""
        recorded = self.details.get("selection")
        return None if recorded is None else Selection.from_dict(recorded)

    @property
    def certifies(self) -> Certified:
        """The predictor the value bounds, by the kind of bound: the reference network for a held-out certificate;
        for a combined one (:func:`excess_loss_certificate`) the predictor its derived ``details["certifies"]``
        names (the reference when its excess bound was not negative); the posterior for every other certificate."""
        if self.bound == HELDOUT:
            return Certified.REFERENCE
        if self.bound in _EXCESS_METHOD:
            return Certified(self.details["certifies"])
        if self.bound in ALGORITHM_BOUNDS:
            return Certified.ALGORITHM
        return Certified.POSTERIOR

    @property
    def vacuous(self) -> bool:
        """True when the bound says nothing: value >= 1 for a [0, 1] loss, or, when :attr:`guess_risk` is known,
        value >= the error of always guessing the most frequent class (0.9 on ten balanced classes)."""
        return self.value >= (1.0 if self.guess_risk is None else min(1.0, self.guess_risk))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (includes ``vacuous`` and the schema tag; ``guess_risk`` only when known)."""
        fields = asdict(self)
        if fields["guess_risk"] is None:            # records from before the field read and write as they were
            del fields["guess_risk"]
        out = {"schema": SCHEMA, **fields, "vacuous": self.vacuous}
        return json.loads(json.dumps(out, default=_json_default))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Certificate:
        """Inverse of :meth:`to_dict`; re-validates every field. A certificate of a kind this module can recompute
        (the PAC-Bayes bounds, the held-out and combined certificates, and the registered kinds,
        :func:`register_recomputation`: the compression certificates) must also reproduce itself from its recorded
        inputs (:func:`_reproduced`), so an edited record is refused when read."""
        data = dict(data)
        schema = data.pop("schema", SCHEMA)
        if schema != SCHEMA:
            raise ValueError(f"unknown certificate schema {schema!r} (this library reads {SCHEMA!r})")
        vacuous = data.pop("vacuous", None)
        cert = cls(**data)
        if vacuous is not None and bool(vacuous) != cert.vacuous:
            raise ValueError("field 'vacuous' contradicts 'value'")
        if _recomputable(cert.bound):
            _reproduced(cert)
        return cert

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> Certificate:
        return cls.from_dict(json.loads(text))


def _check_shares_each(selection: Selection, parts: Mapping[str, float]) -> None:
    """A paid selection's per-candidate shares (``delta_parts_each``, when recorded): one per delta
    part, each the part / K rounded down (K = ``selection.k``), as :func:`union_minimum` and :func:`pay_for_choice`
    record them. A share merely below part / K would let an edited K pay for fewer candidates than were looked at."""
    each = selection.delta_parts_each
    if each is None:
        return
    if set(each) != set(parts):
        raise ValueError(f"argument 'details': selection['delta_parts_each'] must give a share of each delta part "
                         f"{sorted(parts)}, got {each!r}")
    k = selection.k
    for name, share in each.items():
        check_delta(f"details['selection']['delta_parts_each'][{name!r}]", share)
        if share != divide_down(parts[name], k):
            raise ValueError(f"argument 'details': selection['delta_parts_each'][{name!r}] = {share!r} is not the "
                             f"delta part {parts[name]!r} / K = {k}, rounded down ({divide_down(parts[name], k)!r}): "
                             "the record was edited")


def user_details(details: Mapping[str, Any] | None, derived: Iterable[str] = ()) -> dict[str, Any]:
    """The caller's ``details`` as a dict; refused (one ValueError naming the key) when not a mapping, or holding
    an entry only the library derives: ``selection`` (:func:`union_minimum`, :func:`pay_for_choice`), ``certifies``
    (the kind of bound decides it, :attr:`Certificate.certifies`), or one of ``derived`` (what the caller's own
    certificate derives from the run: its Monte Carlo method, data split, prior, delta shares, ...). A record must
    say what was run, not what the caller wrote over it."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise ValueError(f"argument 'details' must be a mapping of names to values, got {type(details).__name__}")
    for key, who in (("selection", "only union_minimum and pay_for_choice record a paid selection"),
                     ("certifies", "the kind of bound decides which predictor a certificate certifies")):
        if key in details:
            raise ValueError(f"argument 'details' must not hold {key!r}: {who}")
    for key in derived:
        if key in details:
            raise ValueError(f"argument 'details' must not hold {key!r}: the certificate derives it from the run "
                             "(choose another name for your entry)")
    return dict(details)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def pac_bayes_certificate(
    bound: PacBayesBound | str,
    emp_risk: float,
    kl: float,
    n_bound: int,
    delta: float,
    *,
    mc_samples: int | None = None,
    mc_delta: float | None = None,
    n_prior: int = 0,
    n_priors: int = 1,
    prior_grid_j: int | None = None,
    prior_grid: tuple[float, float] = (100.0, 0.1),
    dp_epsilon: float | None = None,
    dp_mechanism: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> Certificate:
    """Certify the risk of a posterior with the named PAC-Bayes bound, in float64.

    Args:
        bound: a :class:`PacBayesBound` or its name ("seeger", "catoni", "quad", "lambda",
            "mcallester").
        emp_risk: empirical risk on the bound set; with ``mc_samples`` a Monte Carlo
            estimate, first certified by :func:`bounds.sample_convergence` at ``mc_delta``.
        kl: KL(Q||P) in nats.
        n_bound: examples in the bound set (excluding any used for the prior).
        delta: the PAC-Bayes part of the confidence budget.
        mc_samples, mc_delta: Monte Carlo sample count and its share of the budget.
        n_prior: examples used to build the prior (recorded; not counted in ``n_bound``).
        n_priors: number of priors fixed in advance among which this one was chosen
            (union bound, ``delta / n_priors``).
        prior_grid_j: index of the prior scale on the grid ``c exp(-j / b)`` with
            ``prior_grid = (b, c)`` (Dziugaite & Roy 2017), paid for with
            :func:`bounds.prior_grid_delta`.
        dp_epsilon: the prior was drawn by an epsilon-DP mechanism on the bound set itself
            (Dziugaite & Roy 2018): :func:`bounds.dp_prior_kl_adjustment` nats are added to the KL
            (recorded separately in ``details["dp_prior"]``, with ``dp_mechanism``: what drew the
            prior and whether its privacy is exact or an approximation).
        details: extra entries recorded in the certificate (seeds, data split, ...).

    The total delta is ``delta + mc_delta``; both parts are recorded in ``delta_parts``.
    """
    bound = check_choice("bound", bound, PacBayesBound)
    for name, x in (("emp_risk", emp_risk), ("kl", kl), ("n_bound", n_bound), ("delta", delta), ("n_prior", n_prior),
                    ("n_priors", n_priors)):
        check_scalar(name, x)
    check_delta("delta", delta)
    check_nonnegative("kl", kl)
    check_count("n_prior", n_prior, minimum=0)
    check_count("n_priors", n_priors)
    if prior_grid_j is not None:
        check_scalar("prior_grid_j", prior_grid_j)
        check_count("prior_grid_j", prior_grid_j, minimum=0)
        pb.prior_grid_parameters(prior_grid)
    if dp_epsilon is not None:
        check_scalar("dp_epsilon", dp_epsilon)
        check_nonnegative("dp_epsilon", dp_epsilon)
    if (mc_samples is None) != (mc_delta is None):
        raise ValueError("arguments 'mc_samples' and 'mc_delta' must be given together")
    if mc_delta is not None:
        check_budget(delta, mc_delta)
    info = user_details(details)
    delta_eff = float(delta)
    if n_priors != 1:
        delta_eff = pb.union_delta(delta_eff, n_priors)
        info["n_priors"] = int(n_priors)
    if prior_grid_j is not None:
        delta_eff = pb.prior_grid_delta(delta_eff, prior_grid_j)
        b, c = prior_grid
        info["prior_grid"] = {"j": int(prior_grid_j), "b": b, "c": c,
                              "value": float(pb.prior_grid_scale(prior_grid_j, b, c))}
    info["delta_effective"] = delta_eff
    kl_used = float(kl)
    if dp_epsilon is not None:
        adjustment = pb.dp_prior_kl_adjustment(float(dp_epsilon), int(n_bound), delta_eff)
        k = adjustment - math.log(2.0)
        # delta_effective splits into beta = delta/2 for the max-information transfer and
        # delta' = (delta/2) e^-k for the fixed-prior bound (recorded as its log: e^-k underflows).
        # The derived entries come last: a mechanism description never overrides them.
        info["dp_prior"] = {**dict(dp_mechanism or {}), "epsilon": float(dp_epsilon), "adjustment_nats": adjustment,
                            "max_information_nats": k, "beta": delta_eff / 2,
                            "ln_delta_fixed_prior": math.log(delta_eff / 2) - k}
        kl_used += adjustment

    parts = {"pac_bayes": float(delta)}
    # Python numbers from here on: a JAX input (a float32 mean) would put the inversions in float32, and the
    # record, read back in float64, would not reproduce its value.
    check_probability("emp_risk", emp_risk)
    check_count("n", n_bound)               # the name the bounds give it
    emp, n_bound = float(emp_risk), int(n_bound)
    if mc_samples is not None:
        emp_bound = float(pb.sample_convergence(emp, int(mc_samples), float(mc_delta)))
        parts["monte_carlo"] = float(mc_delta)
    else:
        emp_bound = emp
    value = float(PAC_BAYES_BOUNDS[bound](emp_bound, kl_used, n_bound, delta_eff))
    if bound is PacBayesBound.LAMBDA:
        info["lambda"] = float(pb.lambda_opt(emp_bound, kl_used, n_bound, delta_eff))
    elif bound is PacBayesBound.CATONI:
        grid = np.asarray(pb.DEFAULT_CATONI_GRID)
        per_c = pb.catoni(emp_bound, kl_used, n_bound, delta_eff / grid.size, grid)
        info["C"] = float(grid[int(np.argmin(per_c))])
        info["C_grid"] = {"size": int(grid.size), "min": float(grid[0]), "max": float(grid[-1])}
    return Certificate(
        bound=bound.value,
        value=round_up(value),
        delta=float_at_least(sum(map(Fraction, parts.values()))),
        delta_parts=parts,
        emp_risk=emp,
        kl=float(kl),
        n_bound=n_bound,
        n_prior=int(n_prior),
        emp_risk_bound=emp_bound,
        mc_samples=None if mc_samples is None else int(mc_samples),
        details=info,
    )


#: The bound name of a held-out (test-set) certificate: one predictor fixed before the bound set was drawn.
HELDOUT = "test_set"
#: Detail entries :func:`heldout_certificate` derives itself (recomputed, never copied).
_HELDOUT_DERIVED = ("k_errors", "delta_effective", "selection")


def _check_bound_size(n_bound: int) -> None:
    """``n_bound``: a whole number of examples in [1, 2**53] (float64 counts every example exactly up to there)."""
    check_count("n_bound", n_bound)
    check_range("n_bound", n_bound, 1.0, float(MAX_N))


def heldout_certificate(k_errors: int, n_bound: int, delta: float, *, n_prior: int = 0,
                        details: Mapping[str, Any] | None = None) -> Certificate:
    """The held-out (test-set) certificate of one deterministic predictor on ``n_bound`` examples it never saw.

    With probability >= 1 - ``delta`` over the bound set, a predictor fixed before it was drawn (the prior's
    own network, trained on the prior's examples only) has risk at most the exact binomial tail inversion
    :func:`bounds.excess.test_set_bound` of its ``k_errors`` errors (Langford 2005, JMLR 6, Section 3). This is
    the baseline every data-dependent PAC-Bayes certificate stands beside: it pays ln(1/delta), not
    KL + ln(2 sqrt(n)/delta), and needs no Monte Carlo step.

    The certificate records ``k_errors`` and ``delta_effective`` (the test-set bound's delta) in ``details``,
    ``kl = 0`` and one delta part, ``"test_set"``.
    """
    info = user_details(details)
    for name, x in (("k_errors", k_errors), ("n_bound", n_bound), ("n_prior", n_prior)):
        check_scalar(name, x)
    _check_bound_size(n_bound)
    check_count("n_prior", n_prior, minimum=0)
    value = test_set_bound(k_errors, n_bound, delta)
    k, n = int(k_errors), int(n_bound)
    info.update(k_errors=k, delta_effective=float(delta))
    return Certificate(bound=HELDOUT, value=value, delta=float(delta), delta_parts={"test_set": float(delta)},
                       emp_risk=k / n, kl=0.0, n_bound=n, n_prior=int(n_prior), details=info)


class ExcessMethod(StrEnum):
    """The bounds on a posterior's excess loss over a reference network (:mod:`bounds.excess`)."""

    UNEXPECTED_BERNSTEIN = "unexpected_bernstein"
    SPLIT_KL = "split_kl"


#: The certificate ``bound`` name of the combined (held-out + excess-loss) certificate, by excess method.
EXCESS_BOUNDS: dict[ExcessMethod, str] = {m: f"excess_{m.value}" for m in ExcessMethod}
_EXCESS_METHOD = {name: m for m, name in EXCESS_BOUNDS.items()}
_EXCESS_FUNCTIONS: dict[ExcessMethod, Callable[..., SplitKLExcess | UnexpectedBernsteinBound]] = {
    ExcessMethod.UNEXPECTED_BERNSTEIN: unexpected_bernstein_excess, ExcessMethod.SPLIT_KL: split_kl_excess}
#: Detail entries :func:`excess_loss_certificate` derives itself (recomputed, never copied).
EXCESS_DERIVED = ("k_errors", "plus_draws", "minus_draws", "draws", "certifies", "reference_bound", "excess_bound",
                   "d_plus_upper", "d_minus_lower", "eta", "selection", "delta_effective")


#: The default shares of the combined certificate's delta (:func:`split_excess_delta`): the test-set bound's and the
#: excess bound's; the Monte Carlo step takes the rest (0.03).
REFERENCE_SHARE, EXCESS_SHARE = 0.9, 0.07


def split_excess_delta(delta: float, reference: float = REFERENCE_SHARE, excess: float = EXCESS_SHARE, *,
                       names: tuple[str, str, str] = ("delta", "reference", "excess")) -> tuple[float, float, float]:
    """``delta`` split into the combined certificate's three shares (test set, excess bound, Monte Carlo):
    ``delta * reference``, ``delta * excess`` and the exact rest ``delta - d_ref - d_ex`` rounded down, so the
    three never sum above ``delta`` (exactly). Refused when a share is not in (0, 1): the fractions must be
    positive and sum below 1, and no share may underflow to 0. ``names`` are the caller's names for the three
    arguments (refusals name them). The default 0.9 for the test-set share costs TS(0.9 delta) - TS(delta) =
    0.000075 over the plain test-set bound at n = 30000, k = 2343, delta = 0.035, and 0.00034 at n = 719, k = 16."""
    delta_name, reference_name, excess_name = names
    check_delta(delta_name, delta)
    check_probability(reference_name, reference)
    check_probability(excess_name, excess)
    if not 0.0 < reference + excess < 1.0 or reference == 0.0 or excess == 0.0:
        raise ValueError(f"arguments {reference_name!r} ({reference!r}) and {excess_name!r} ({excess!r}) must be "
                         "positive shares summing below 1 (the Monte Carlo step takes the rest)")
    d_ref, d_ex = float(delta) * reference, float(delta) * excess
    rest = Fraction(float(delta)) - Fraction(d_ref) - Fraction(d_ex)
    d_mc = float_at_most(rest) if rest > 0 else 0.0
    for share, what in ((d_ref, "the test-set share delta * " + reference_name),
                        (d_ex, "the excess share delta * " + excess_name),
                        (d_mc, "the Monte Carlo share (the rest)")):
        if not share > 0.0:
            raise ValueError(f"arguments {delta_name!r} ({delta!r}), {reference_name!r} ({reference!r}) and "
                             f"{excess_name!r} ({excess!r}) leave {what} at {share!r}: every share must be positive")
    return d_ref, d_ex, d_mc


def excess_loss_certificate(
    k_errors: int, plus_draws: int, minus_draws: int, draws: int, kl: float, n_bound: int, *,
    delta_reference: float, delta_excess: float, delta_monte_carlo: float,
    method: ExcessMethod = ExcessMethod.UNEXPECTED_BERNSTEIN, n_prior: int, delta: float | None = None,
    details: Mapping[str, Any] | None = None,
) -> Certificate:
    r"""The combined certificate :math:`C = \mathrm{TS}(h_\mathrm{ref}; \delta_\mathrm{ref}) + \min(0,
    \mathrm{EX}(Q; \delta_\mathrm{ex}))` as a :class:`Certificate`, from per-example posterior draws.

    ``h_ref`` is the prior's own deterministic network (fixed with the prior, before the bound set was drawn); it
    makes ``k_errors`` errors on the ``n_bound`` bound examples. ``draws = n_bound R`` posterior draws, one fresh
    draw per example and repetition, of which ``plus_draws`` err where h_ref is right and ``minus_draws`` are right
    where h_ref errs. The Monte Carlo step certifies the two rates (:func:`bounds.excess.ternary_rates`, at
    ``delta_monte_carlo``), the excess bound (``method``: Unexpected Bernstein, Mhammedi, Grünwald & Guedj 2019,
    or split-kl, Wu & Seldin 2022, at ``delta_excess``, with ``kl`` = KL(Q||P)) bounds
    :math:`\mathbb{E}_Q L(h) - L(h_\mathrm{ref})`, and the exact binomial test-set bound (at ``delta_reference``)
    bounds :math:`L(h_\mathrm{ref})`: :func:`bounds.excess.excess_certificate`. It holds with probability at least
    ``1 - delta_reference - delta_excess - delta_monte_carlo`` and certifies Q (``details["certifies"] ==
    "posterior"``) when the excess bound is negative, the prior's network (``"reference"``, then C = TS) otherwise.

    Records: ``emp_risk`` is the posterior's Monte Carlo empirical risk ``(R k + plus - minus) / draws``,
    ``emp_risk_bound`` its certified upper bound ``k/n + d+_up - d-_lo``, ``mc_samples = draws``; ``details``
    the counts, ``method``, ``certifies``, the test-set and excess bounds, and ``delta_effective`` (the three
    shares it was computed at, by part name). Recomputable from these (:func:`union_minimum`,
    :func:`pay_for_choice`). Every argument is checked here, and a refusal names it: counts are whole numbers
    (``plus_draws`` at most (n - k) R, ``minus_draws`` at most k R, R = draws / n), the shares in (0, 1) summing
    below 1 (and to at most ``delta``, exactly, when given).
    """
    method = ExcessMethod(check_choice("method", method, ExcessMethod))
    info = user_details(details)
    shares = {"delta_reference": delta_reference, "delta_excess": delta_excess,
              "delta_monte_carlo": delta_monte_carlo}
    counts = {"k_errors": k_errors, "plus_draws": plus_draws, "minus_draws": minus_draws, "n_prior": n_prior}
    for name, x in {**counts, **shares, "draws": draws, "kl": kl, "n_bound": n_bound}.items():
        check_scalar(name, x)
    _check_bound_size(n_bound)
    check_count("draws", draws)
    for name, x in counts.items():
        check_count(name, x, minimum=0)
    check_range("k_errors", k_errors, 0.0, float(n_bound))
    check_nonnegative("kl", kl)
    for name, x in shares.items():
        check_delta(name, x)
    check_share_total(shares, delta)
    if int(draws) % int(n_bound):
        raise ValueError(f"argument 'draws' ({draws}) must be a multiple of 'n_bound' ({n_bound}): per-example draws, "
                         "the same number for every bound example")
    check_ternary_counts(plus_draws, minus_draws, draws, k_errors, n_bound)
    n, m, k = int(n_bound), int(draws), int(k_errors)
    rates = ternary_rates(plus_draws, minus_draws, m, delta_monte_carlo, examples=n)
    excess = _EXCESS_FUNCTIONS[method](rates.d_plus_upper, rates.d_minus_lower, kl, n, delta_excess)
    combined = excess_certificate(k, n, excess, delta_reference, rates=rates, delta=delta)
    reps = m // n
    emp = (reps * k + rates.plus_draws - rates.minus_draws) / m
    info.update(k_errors=k, plus_draws=rates.plus_draws, minus_draws=rates.minus_draws, draws=m, method=method.value,
                certifies=combined.certifies, reference_bound=combined.reference_bound,
                excess_bound=combined.excess_bound, d_plus_upper=rates.d_plus_upper,
                d_minus_lower=rates.d_minus_lower,
                delta_effective={"test_set": float(delta_reference), "excess": excess.delta,
                                 "monte_carlo": rates.delta})
    if isinstance(excess, UnexpectedBernsteinBound):
        info["eta"] = excess.eta
    return Certificate(bound=EXCESS_BOUNDS[method], value=combined.value,
                       delta=combined.delta if delta is None else float(delta),
                       delta_parts={"test_set": float(delta_reference), "excess": excess.delta,
                                    "monte_carlo": rates.delta},
                       emp_risk=min(max(emp, 0.0), 1.0), kl=float(kl), n_bound=n, n_prior=int(n_prior),
                       emp_risk_bound=rates.risk_upper(k, n), mc_samples=m, details=info)


def format_upper(x: float, digits: int = 4) -> str:
    """A bound as fixed-point text with ``digits`` decimals, rounded toward +inf, so the printed
    number is never below the computed one (scientific notation, also rounded up, from 1e6)."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and abs(x) >= 10**6:
        exp = math.floor(math.log10(abs(x)))
        return f"{Decimal(x).quantize(Decimal(1).scaleb(exp - digits + 1), rounding=ROUND_CEILING):.{digits - 1}E}"
    return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_CEILING))


def format_delta(x: float) -> str:
    """A confidence parameter as text, never rounded (``repr`` of the float: 0.035, 1e-06):
    a header printing "1 - delta" must not round delta to 0 or 1."""
    return repr(float(x))


def union_minimum(certs: Sequence[Certificate], labels: Sequence[str] | None = None) -> Certificate:
    """The smallest of K certificates, paid for: each is recomputed with every part of its delta
    divided by the number of candidates ever looked at (rounded down, so that the K shares of a part sum
    to at most the part, exactly), and the smallest recomputed value is returned.

    Each certificate holds with probability >= 1 - delta on its own. Whoever reads several and
    keeps the best has made a choice after seeing the data. By the union bound, all K statements
    computed at delta/K hold together with probability >= 1 - delta, and so does any one of them
    chosen after seeing all (Langford 2005, Section 4.2, the "union bound over a countable set").

    A certificate that is itself a paid selection (``cert.candidates > 1``: a minimum over c of
    them, or one setting kept among c looked at, :func:`pay_for_choice`) counts as all its c
    candidates, so K is the sum of ``candidates`` over the inputs: a nested choice pays for every
    candidate ever looked at. Recomputing only the earlier winner at delta/K is sound (its statement
    is one of the K) and never below the flat minimum over all K at delta/K.

    Every input is read back from the certificates (empirical risk, Monte Carlo sample count, KL,
    n, prior grid index, number of priors, DP adjustment; for a held-out or combined certificate the
    counts), so the recomputation is exact. Each input must first reproduce itself (value, predictor,
    empirical risk and its bound, KL, n) from those inputs at the shares it was computed at (its delta
    parts, or for a paid selection the per-candidate shares it records): a record edited by hand is
    refused with a ValueError. The result carries the full budget in ``delta_parts`` (the minimum's statement spends
    all of it), the per-candidate share in ``details["delta_effective"]`` (the delta each bound was
    evaluated at) and ``details["selection"]``: K, the labels, the candidates each input stood for,
    which one won and ``delta_parts_each`` (each part / K, rounded down).

    Args:
        certs: certificates from :func:`pac_bayes_certificate`, :func:`heldout_certificate`,
            :func:`excess_loss_certificate` or a registered kind (:func:`register_recomputation`: the compression
            certificates), all with the same total ``delta``.
        labels: a name for each (default ``bound`` names).
    """
    certs = list(certs)
    if not certs:
        raise ValueError("argument 'certs' must hold at least one certificate")
    labels = [c.bound for c in certs] if labels is None else list(labels)
    if len(labels) != len(certs):
        raise ValueError(f"argument 'labels' has {len(labels)} names for {len(certs)} certificates")
    if any(c.delta != certs[0].delta for c in certs):
        raise ValueError("argument 'certs' must share one total delta to be compared (each is recomputed with "
                         "every part of its delta divided by the number of candidates)")
    counts = [c.candidates for c in certs]
    k = sum(counts)
    redone = [_at_delta_share(c, k) for c in certs]
    best = min(range(len(certs)), key=lambda i: redone[i].value)
    selection = {"k": k, "labels": labels, "candidates": counts, "chosen": labels[best],
                 "union_bound": f"each part of delta / {k}, rounded down", "values_given": [c.value for c in certs]}
    nested = {label: c.details["selection"] for label, c in zip(labels, certs, strict=True) if c.candidates > 1}
    if nested:
        selection["nested"] = nested
    return _selected(redone[best], certs[best], selection)


def pay_for_choice(cert: Certificate, looked_at: int, label: str, reason: str) -> Certificate:
    """``cert`` paid for having been kept among ``looked_at`` alternatives compared on its bound set.

    A setting (preprocessing, a hyperparameter, a variant of the method) chosen after seeing the
    certificates of ``looked_at`` variants is one of ``looked_at`` statements; the union bound
    makes the kept one hold w.p. >= 1 - delta when each is computed at delta / ``looked_at``. Only
    the kept certificate's inputs are known, so it alone is recomputed; the others count in
    ``selection["k"]`` (as ``looked_at - 1`` unrecorded candidates for each candidate ``cert``
    already stands for), so any later :func:`union_minimum` pays for them too. As there, ``cert`` must
    reproduce its recorded value from its recorded inputs, and each share is rounded down.

    Args:
        cert: the certificate of the setting that was kept.
        looked_at: number of settings whose certificates were looked at (the kept one included), >= 1.
        label: a name for the kept setting.
        reason: what was chosen, in words (recorded).
    """
    check_count("looked_at", looked_at)
    if looked_at == 1:
        return cert
    k = looked_at * cert.candidates
    selection = {"k": k, "labels": [label], "candidates": [k], "chosen": label,
                 "union_bound": f"each part of delta / {k}, rounded down", "values_given": [cert.value],
                 "unrecorded_candidates": k - cert.candidates, "reason": reason}
    return _selected(_at_delta_share(cert, k), cert, selection)


def _selected(chosen: Certificate, like: Certificate, selection: Mapping[str, Any]) -> Certificate:
    """The recomputed winner of a selection, stating the whole budget (K statements at delta/K) and the
    per-candidate shares it was recomputed at (:func:`_shares`)."""
    each = _shares(like.delta_parts, selection["k"])
    return dataclasses.replace(chosen, delta=like.delta, delta_parts=dict(like.delta_parts),
                               details={**chosen.details, "selection": {**selection, "delta_parts_each": each}})


def _shares(parts: Mapping[str, float], k: int) -> dict[str, float]:
    """Every delta part divided by ``k``, rounded down: K statements at these shares spend at most each part."""
    return {name: divide_down(part, k) for name, part in parts.items()}


def _own_shares(cert: Certificate) -> dict[str, float]:
    """The delta shares ``cert``'s value was computed at: its delta parts; for a paid selection of K
    candidates (:attr:`Certificate.candidates`, nested ones included: the winner of a selection is always
    recomputed at the outermost K) the per-candidate shares it records in
    ``details["selection"]["delta_parts_each"]``. A selection recorded without them (written before they
    were) was computed at the nearest float to each part / K."""
    k = cert.candidates
    if k == 1:
        return dict(cert.delta_parts)
    each = cert.selection.delta_parts_each
    if each is None:
        return {name: part / k for name, part in cert.delta_parts.items()}
    return dict(each)


def _at_delta_share(cert: Certificate, k: int) -> Certificate:
    """``cert`` recomputed from its recorded inputs with every delta part divided by ``k`` (rounded down).

    Refused (one ValueError) unless those inputs reproduce the certificate itself: recomputed at its own shares
    (:func:`_own_shares`) they must give its recorded value (to its last bits), predictor, empirical risk and its
    bound, KL, n and Monte Carlo count (:data:`_REPRODUCED`). A record whose counts, n, KL, bound name or value were
    edited by hand would otherwise be paid for from the edited inputs (a lower value, or a value that never held)."""
    shares = _shares(cert.delta_parts, k)
    redone = _recomputed_at(cert, shares)
    _reproduced(cert, redone if _own_shares(cert) == shares else None)
    return dataclasses.replace(redone, guess_risk=cert.guess_risk)


def _reproduced(cert: Certificate, own: Certificate | None = None) -> None:
    """One ValueError unless ``cert`` recomputed from its recorded inputs at its own shares (:func:`_own_shares`;
    ``own``, when already computed) gives exactly its recorded :data:`_REPRODUCED` fields."""
    own_shares = _own_shares(cert)
    if own is None:
        own = _recomputed_at(cert, own_shares)
    differ = [f"{name} {getattr(cert, name)!r} (recomputed {getattr(own, name)!r})" for name in _REPRODUCED
              if not _same(getattr(cert, name), getattr(own, name))]
    if differ:
        raise ValueError(f"certificate {cert.bound!r} does not reproduce itself from its recorded inputs at its delta "
                         f"shares {own_shares}: recorded {', '.join(differ)}; was the record edited?")


#: What a certificate's recomputation at its own shares must give as recorded (:func:`_at_delta_share`): exactly,
#: numbers to the last bits a CPU's log and exp may change (:func:`genbounds.bounds._array.recomputes_to`).
_REPRODUCED = ("value", "certifies", "emp_risk", "emp_risk_bound", "kl", "n_bound", "n_prior", "mc_samples")


def _same(recorded: Any, recomputed: Any) -> bool:
    if isinstance(recorded, float) and isinstance(recomputed, float):
        return recomputes_to(recorded, recomputed)
    return recorded == recomputed


def _recomputed_at(cert: Certificate, shares: Mapping[str, float]) -> Certificate:
    """``cert`` recomputed from its recorded inputs at the delta ``shares`` (by part name); a ValueError naming
    what its record lacks or holds wrong otherwise."""
    try:
        return _recomputed(cert, shares)
    except ValueError as err:
        raise ValueError(f"certificate {cert.bound!r} cannot be recomputed from its record: {err}") from err


def _recorded(cert: Certificate, key: str) -> Any:
    """``cert.details[key]``, an input its recomputation needs."""
    if key not in cert.details:
        raise ValueError(f"details[{key!r}] is missing (a {cert.bound!r} certificate records it)")
    return cert.details[key]


#: Recomputations of the certificate kinds defined in other modules of this package (bound name -> function of the
#: certificate and the delta shares by part name), which they register when imported (:func:`register_recomputation`).
_RECOMPUTE: dict[str, Callable[[Certificate, Mapping[str, float]], Certificate]] = {}


def register_recomputation(bound: str, recompute: Callable[[Certificate, Mapping[str, float]], Certificate]) -> None:
    """Make certificates named ``bound`` recomputable (:func:`union_minimum`, :func:`pay_for_choice`) by
    ``recompute(cert, shares)``, the certificate from its record at the delta ``shares`` (by part name). For a
    module that builds on this one (e.g. :mod:`bounds.compression`), so that this one need not import it."""
    old = _RECOMPUTE.get(bound)
    if old is not None and (old.__module__, old.__qualname__) != (recompute.__module__, recompute.__qualname__):
        raise ValueError(f"argument 'bound': {bound!r} already has a recomputation")
    if _recomputed_here(bound):
        raise ValueError(f"argument 'bound': {bound!r} is a kind this module recomputes itself")
    _RECOMPUTE[bound] = recompute


def _recomputed_here(bound: str) -> bool:
    """``bound`` is a kind :func:`_recomputed` rebuilds itself: a PAC-Bayes bound, held-out or combined."""
    return bound in PAC_BAYES_BOUNDS or bound == HELDOUT or bound in _EXCESS_METHOD


def _recomputable(bound: str) -> bool:
    """Certificates named ``bound`` can be recomputed from their records (here or by a registered function)."""
    return _recomputed_here(bound) or bound in _RECOMPUTE


def _recomputed(cert: Certificate, shares: Mapping[str, float]) -> Certificate:
    if cert.bound in _RECOMPUTE:
        return _RECOMPUTE[cert.bound](cert, shares)
    if cert.bound == HELDOUT:
        if set(cert.delta_parts) != {"test_set"}:
            raise ValueError(f"certificate has delta parts {sorted(cert.delta_parts)} this function cannot rescale")
        d = cert.details
        return heldout_certificate(_recorded(cert, "k_errors"), cert.n_bound, shares["test_set"],
                                   n_prior=cert.n_prior,
                                   details={key: v for key, v in d.items() if key not in _HELDOUT_DERIVED})
    if cert.bound in _EXCESS_METHOD:
        parts, d = cert.delta_parts, cert.details
        if set(parts) != {"test_set", "excess", "monte_carlo"}:
            raise ValueError(f"certificate has delta parts {sorted(parts)} this function cannot rescale")
        method = _EXCESS_METHOD[cert.bound]
        if d.get("method") != method.value:
            raise ValueError(f"its bound name {cert.bound!r} and details['method'] {d.get('method')!r} disagree")
        return excess_loss_certificate(
            *(_recorded(cert, key) for key in ("k_errors", "plus_draws", "minus_draws", "draws")), cert.kl,
            cert.n_bound, delta_reference=shares["test_set"], delta_excess=shares["excess"],
            delta_monte_carlo=shares["monte_carlo"], method=method, n_prior=cert.n_prior,
            details={key: v for key, v in d.items() if key not in EXCESS_DERIVED + ("method",)})
    if cert.bound not in PAC_BAYES_BOUNDS:
        raise ValueError(f"certificate bound {cert.bound!r} cannot be recomputed (not a PAC-Bayes bound here)")
    parts = dict(cert.delta_parts)
    extra = set(parts) - {"pac_bayes", "monte_carlo"}
    if extra:
        raise ValueError(f"certificate has delta parts {sorted(extra)} this function cannot rescale")
    d = dict(cert.details)
    grid = d.get("prior_grid")
    mc = "monte_carlo" in parts
    return pac_bayes_certificate(
        cert.bound, cert.emp_risk, cert.kl, cert.n_bound, shares["pac_bayes"],
        mc_samples=cert.mc_samples if mc else None, mc_delta=shares["monte_carlo"] if mc else None,
        n_prior=cert.n_prior, n_priors=int(d.get("n_priors", 1)),
        prior_grid_j=None if grid is None else grid["j"],
        prior_grid=(100.0, 0.1) if grid is None else (grid["b"], grid["c"]),
        dp_epsilon=d["dp_prior"]["epsilon"] if "dp_prior" in d else None,
        dp_mechanism=d.get("dp_prior"),           # its derived entries are recomputed over it
        details={key: v for key, v in d.items() if key not in PAC_BAYES_DERIVED})


#: Detail entries :func:`pac_bayes_certificate` derives itself (recomputed, never copied).
PAC_BAYES_DERIVED = ("n_priors", "prior_grid", "delta_effective", "lambda", "C", "C_grid", "selection", "dp_prior")
