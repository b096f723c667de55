"""Typed results of the runners, and the typed view of a PAC-Bayes record.

The runner builds these objects; the record file holds their ``to_dict()`` forms, and readers
(the command line's tables, the run figure, the paper figures) get them back with ``from_dict``
at the record boundary, so no code reads its own results by string key. The JSON is the record
schema's (:mod:`.records`): ``to_dict`` writes the same keys in the same order as every record
written so far, and ``from_dict`` reads older records, whose entries lack the fields added since
(``prior_heldout_error``), as None.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from ..bounds import Certificate, Certified, heldout_certificate, pay_for_choice
from ..bounds._array import check_count
from ..bounds.excess import ternary_count_limits
from ..estimators.supersample import CMIResult
from .records import new_record

__all__ = ["MonteCarloRisk", "Disagreement", "MaskPredictor", "MaskComparison", "PacBayesResult", "PacBayesRecord",
           "CMIRunResult", "certified_predictor"]


def _without_none(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without the optional entries that are None (a record leaves them out)."""
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class MonteCarloRisk:
    """What a record keeps of a Monte Carlo estimate of the stochastic network's empirical risk
    (:class:`genbounds.estimators.snn.MCEstimate` without its per-group array)."""

    zero_one: float
    cross_entropy: float
    n_samples: int
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)


def _divisors(m: int) -> list[int]:
    """Every positive divisor of ``m >= 1``."""
    small = [d for d in range(1, math.isqrt(m) + 1) if m % d == 0]
    return small + [m // d for d in reversed(small) if d * d != m]


@dataclass(frozen=True)
class Disagreement:
    """How the posterior's per-example draws on the bound set compare with the prior's own network: of the
    ``draws`` draws (n r), ``plus`` err where the prior's network is right and ``minus`` are right where it errs;
    ``reference_errors`` is that network's error count on the n examples. Refused (ValueError) unless the counts
    could come from one bound set: whole numbers, ``draws >= 1``, the others >= 0, and some bound-set size n
    (not recorded: a divisor of ``draws``, at least ``reference_errors``) for which ``minus <= k r`` and
    ``plus <= (n - k) r``, r = draws / n (:func:`genbounds.bounds.excess.ternary_count_limits`; so also
    ``plus + minus <= draws``)."""

    reference_errors: int
    plus: int
    minus: int
    draws: int

    def __post_init__(self) -> None:
        check_count("draws", self.draws)
        for name in ("reference_errors", "plus", "minus"):
            check_count(name, getattr(self, name), minimum=0)
        k = int(self.reference_errors)
        limits = [ternary_count_limits(self.draws, k, n) for n in _divisors(int(self.draws)) if n >= k]
        if not any(self.plus <= most_plus and self.minus <= most_minus for most_plus, most_minus in limits):
            raise ValueError(f"arguments 'plus' ({self.plus}) and 'minus' ({self.minus}) cannot come from {self.draws} "
                             f"per-example draws against {k} reference errors: no bound-set size n dividing 'draws' "
                             "allows plus <= (n - k) r and minus <= k r, r = draws / n")

    @property
    def rate(self) -> float:
        """The fraction of draws that disagree with the prior's network (in the 0-1 loss)."""
        return (self.plus + self.minus) / self.draws

    @property
    def advantage(self) -> float:
        """Fixed minus broken, per draw: the posterior's empirical edge over the prior's network."""
        return (self.minus - self.plus) / self.draws

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)


@dataclass(frozen=True)
class MaskPredictor:
    """A deterministic mask predictor of a mask run, certified on the bound set (Seeger, no Monte
    Carlo step): its certificate, test error and fraction of weights pruned."""

    certificate: Certificate
    test_error: float
    sparsity: float

    def to_dict(self) -> dict[str, Any]:
        return {"certificate": self.certificate.to_dict(), "test_error": self.test_error, "sparsity": self.sparsity}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(Certificate.from_dict(data["certificate"]), data["test_error"], data["sparsity"])


@dataclass(frozen=True)
class MaskComparison:
    """A mask posterior's expected sparsity beside two deterministic predictors on the same bound
    set: the prior's magnitude-pruned net (KL 0) and the posterior mask thresholded at 1/2."""

    sparsity_target: float
    expected_sparsity: float
    n_params: int
    magnitude: MaskPredictor
    thresholded: MaskPredictor

    #: The predictors, in the order tables list them.
    PREDICTORS = ("magnitude", "thresholded")

    def to_dict(self) -> dict[str, Any]:
        return {"sparsity_target": self.sparsity_target, "expected_sparsity": self.expected_sparsity,
                "n_params": self.n_params, **{name: getattr(self, name).to_dict() for name in self.PREDICTORS}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(data["sparsity_target"], data["expected_sparsity"], data["n_params"],
                   *(MaskPredictor.from_dict(data[name]) for name in cls.PREDICTORS))


@dataclass(frozen=True)
class PacBayesResult:
    """One objective's result: certificate (b) from per-example draws with its Monte Carlo
    estimate, certificate (a) from weight draws when the run asked for it, test errors of the
    stochastic network, of the posterior mean and of the prior's net, the per-epoch training
    history and, for a mask run, the deterministic masks."""

    objective: str
    certificate: Certificate
    mc: MonteCarloRisk
    test_error_stochastic: float
    test_error_mean: float
    prior_test_error: float
    kl_over_n: float
    train_seconds: float
    certify_seconds: float
    history: tuple[Mapping[str, Any], ...]
    certificate_weights: Certificate | None = None
    mc_weights: MonteCarloRisk | None = None
    prior_heldout_error: float | None = None     # None in records older than the field
    masks: MaskComparison | None = None
    certificate_excess: Certificate | None = None
    disagreement: Disagreement | None = None

    def certificates(self) -> list[tuple[str, Certificate]]:
        """The result's certificates of the stochastic network (or, for the combined certificate, of the
        prior's network when the posterior's excess is not certified negative), labelled "quad (b)",
        "quad (a)", "quad (excess)"."""
        out = [(f"{self.objective} (b)", self.certificate)]
        if self.certificate_weights is not None:
            out.append((f"{self.objective} (a)", self.certificate_weights))
        if self.certificate_excess is not None:
            out.append((f"{self.objective} (excess)", self.certificate_excess))
        return out

    def to_dict(self) -> dict[str, Any]:
        return _without_none({
            "objective": self.objective, "certificate": self.certificate.to_dict(), "mc": self.mc.to_dict(),
            "certificate_weights": None if self.certificate_weights is None else self.certificate_weights.to_dict(),
            "mc_weights": None if self.mc_weights is None else self.mc_weights.to_dict(),
            "test_error_stochastic": self.test_error_stochastic, "test_error_mean": self.test_error_mean,
            "prior_test_error": self.prior_test_error, "prior_heldout_error": self.prior_heldout_error,
            "kl_over_n": self.kl_over_n, "train_seconds": self.train_seconds, "certify_seconds": self.certify_seconds,
            "history": [dict(h) for h in self.history],
            "masks": None if self.masks is None else self.masks.to_dict(),
            "certificate_excess": None if self.certificate_excess is None else self.certificate_excess.to_dict(),
            "disagreement": None if self.disagreement is None else self.disagreement.to_dict(),
        })

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        weights, mc_weights, masks = data.get("certificate_weights"), data.get("mc_weights"), data.get("masks")
        excess, disagreement = data.get("certificate_excess"), data.get("disagreement")
        return cls(
            objective=data["objective"], certificate=Certificate.from_dict(data["certificate"]),
            mc=MonteCarloRisk.from_dict(data["mc"]), test_error_stochastic=data["test_error_stochastic"],
            test_error_mean=data["test_error_mean"], prior_test_error=data["prior_test_error"],
            kl_over_n=data["kl_over_n"], train_seconds=data["train_seconds"],
            certify_seconds=data["certify_seconds"], history=tuple(data["history"]),
            certificate_weights=None if weights is None else Certificate.from_dict(weights),
            mc_weights=None if mc_weights is None else MonteCarloRisk.from_dict(mc_weights),
            prior_heldout_error=data.get("prior_heldout_error"),
            masks=None if masks is None else MaskComparison.from_dict(masks),
            certificate_excess=None if excess is None else Certificate.from_dict(excess),
            disagreement=None if disagreement is None else Disagreement.from_dict(disagreement))


def certified_predictor(cert: Certificate) -> str:
    """In words, the predictor a run's certificate ``cert`` covers: the stochastic posterior (trained with the
    objective its details record), or the prior's own deterministic network when a combined certificate found no
    certified excess advantage for the posterior."""
    if cert.certifies is Certified.REFERENCE:
        return "the prior's own network (deterministic)"
    objective = cert.details.get("objective")
    return "the stochastic posterior" + ("" if objective is None else f" trained with {objective}")


def heldout_baseline(cert: Certificate, prior_heldout_error: float | None) -> Certificate | None:
    """The held-out (test-set) certificate of the prior's own network on the bound set of ``cert``.

    The prior's deterministic network never saw the bound set, so its recorded error count there
    (``prior_heldout_error * n_bound``) certifies it by the exact binomial bound
    (:func:`genbounds.bounds.heldout_certificate`, Langford 2005), at the same total delta as ``cert`` (the
    run's certificate (b)) and paying for the same choice of settings (``candidates``): the baseline every
    data-dependent certificate stands beside. None when no example was held out of the bound set for the
    prior (a data-free or DP prior) or the record predates the error count.
    """
    if prior_heldout_error is None or cert.n_prior == 0 or "dp_prior" in cert.details:
        return None
    k = round(prior_heldout_error * cert.n_bound)
    held = heldout_certificate(k, cert.n_bound, cert.delta, n_prior=cert.n_prior,
                               details={"predictor": "the prior's own network (deterministic), on the bound set",
                                        "dataset": cert.details.get("dataset"), "arch": cert.details.get("arch")})
    held = dataclasses.replace(held, guess_risk=cert.guess_risk)
    chosen = cert.details.get("selection", {}).get("chosen", "these settings")
    return pay_for_choice(held, cert.candidates, chosen, "the same settings choice as the run's certificates")


@dataclass(frozen=True)
class PacBayesRecord:
    """The typed view of a PAC-Bayes record: the provenance (:func:`.records.new_record`), the
    flat ``config`` as recorded (a Mapping: older records lack settings added since, and their
    defaults were not in effect), the results and, with several certificates, ``best``: their
    minimum paid for with a union bound."""

    config: Mapping[str, Any]
    results: tuple[PacBayesResult, ...]
    seed: int | None
    created: str
    versions: Mapping[str, str]
    timings: Mapping[str, float]
    schema: str
    best: Certificate | None = None
    kind: str = "pac-bayes"

    def certificates(self) -> list[tuple[str, Certificate]]:
        """Every certificate of the stochastic networks, labelled (:meth:`PacBayesResult.certificates`);
        a mask run's deterministic certificates are separate statements and are not among them."""
        return [c for r in self.results for c in r.certificates()]

    def best_candidates(self) -> list[tuple[str, Certificate]]:
        """The certificates ``best`` is the paid minimum of, a rule fixed before any is seen: the combined
        certificates over the prior's own network when the run has them (each is never above that network's
        test-set bound at 0.9 delta, and below it when the posterior certifies an advantage), else every
        certificate of :meth:`certificates`."""
        every = self.certificates()
        combined = [(label, c) for label, c in every if label.endswith("(excess)")]
        return combined or every

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": self.schema, "kind": self.kind, "created": self.created, "config": dict(self.config),
               "seed": self.seed, "versions": dict(self.versions), "timings": dict(self.timings),
               "results": [r.to_dict() for r in self.results]}
        if self.best is not None:
            out["best"] = self.best.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if data.get("kind") != "pac-bayes":
            raise ValueError(f"not a PAC-Bayes record (kind {data.get('kind')!r})")
        best = data.get("best")
        return cls(config=dict(data["config"]), results=tuple(PacBayesResult.from_dict(r) for r in data["results"]),
                   seed=data.get("seed"), created=data.get("created", ""), versions=dict(data.get("versions", {})),
                   timings=dict(data.get("timings", {})), schema=data["schema"],
                   best=None if best is None else Certificate.from_dict(best))

    @classmethod
    def new(cls, config: Mapping[str, Any], seed: int | None, results: Sequence[PacBayesResult],
            timings: Mapping[str, float]) -> Self:
        """A fresh record of ``results``, with provenance filled in (:func:`.records.new_record`)."""
        env = new_record(cls.kind, dict(config), seed, None, dict(timings))
        return cls(config=env["config"], results=tuple(results), seed=seed, created=env["created"],
                   versions=env["versions"], timings=env["timings"], schema=env["schema"])


@dataclass(frozen=True)
class CMIRunResult:
    """One n of a CMI experiment: every bound estimate and the summary of its run set, the runs
    trained by this invocation (the others were read back from their chunks) and its seconds."""

    n: int
    result: CMIResult
    runs_trained: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = {"n": self.n, "summary": self.result.summary.to_dict(),
               "bounds": {k: b.to_dict() for k, b in self.result.bounds.items()},
               "runs_trained": self.runs_trained, "seconds": self.seconds}
        if self.result.certified is not None:           # a certified experiment (--certify)
            out["certified"] = self.result.certified.to_dict()
        return out
