"""The ``genbounds`` command line (also ``python -m genbounds``).

Bad input gives a one-line ``genbounds: error: ...`` message and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .bounds import PacBayesBound, format_delta, format_upper, pac_bayes_certificate, union_minimum
from .estimators.augment import AUGMENTATIONS
from .estimators.devices import initialize_distributed, is_main_process
from .estimators.snn import FAMILIES, OBJECTIVES
from .estimators.supersample import bounds_from_runs, loo_bounds_from_runs, loo_losses
from .experiments.cmi_runner import CMIConfig, run_cmi
from .experiments.config import OPTIMIZERS, SCHEDULES
from .experiments.langevin_runner import LangevinConfig, run_langevin_experiment
from .experiments.pac_bayes_runner import QUICKSTART, PacBayesConfig, run_pac_bayes
from .experiments.plots import make_run_figure
from .experiments.recipes import RECIPES, recipe_table, run_recipe
from .experiments.records import load_records, new_record, write_record
from .experiments.report import (
    FORMATS,
    GROUP_NOTE,
    REPORT_COLUMNS,
    REPORT_NOTE,
    Column,
    cmi_columns,
    cmi_rows,
    format_number,
    group_rows,
    render,
    report_rows,
    summary_columns,
    summary_rows,
)
from .paper_figures import make_all

__all__ = ["PROG", "build_parser", "main"]


def _log_to_stderr(message: str) -> None:
    """Progress messages of a run go to stderr, so stdout holds only the command's table."""
    print(message, file=sys.stderr, flush=True)


PROG = "genbounds"

#: Order in which the calculator prints PAC-Bayes bounds (tightest family first).
PAC_BAYES_ORDER = tuple(PacBayesBound)


def _int_at_least(minimum: int):
    """argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _digits(text: str) -> int:
    value = _nonneg_int(text)
    if value > 12:
        raise argparse.ArgumentTypeError(f"must be <= 12, got {value}")
    return value


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--digits", type=_digits, default=4, help="digits printed (0 to 12); bounds are rounded up")


# ---------------------------------------------------------------------------------------
# genbounds bound pac-bayes


def _add_bound_pac_bayes(sub) -> None:
    p = sub.add_parser(
        "pac-bayes",
        help="every PAC-Bayes bound for given empirical risk, KL, n and delta",
        description="Print every applicable PAC-Bayes bound on the risk of a posterior Q "
        "for a [0,1] loss, side by side, computed in float64 and rounded up.",
    )
    p.add_argument("--emp-risk", type=float, required=True,
                   help="empirical risk on the bound set (a Monte Carlo estimate with --mc-samples)")
    p.add_argument("--kl", type=float, required=True, help="KL(Q||P) in nats")
    p.add_argument("--n", type=_positive_int, required=True,
                   help="examples in the bound set (excluding prior data)")
    p.add_argument("--delta", type=float, default=0.025, help="PAC-Bayes confidence part (default 0.025)")
    p.add_argument("--mc-samples", type=_positive_int, default=None,
                   help="Monte Carlo samples behind --emp-risk (certified by sample convergence)")
    p.add_argument("--mc-delta", type=float, default=None,
                   help="confidence part for the Monte Carlo step (default 0.01 with --mc-samples)")
    p.add_argument("--n-prior", type=_nonneg_int, default=0,
                   help="examples used to build the prior (recorded)")
    p.add_argument("--n-priors", type=_positive_int, default=1,
                   help="number of priors the prior was chosen from (union bound, delta / k)")
    p.add_argument("--prior-grid-j", type=_nonneg_int, default=None,
                   help="index j of the prior scale c*exp(-j/b) on the Dziugaite & Roy grid")
    p.add_argument("--save", default=None, metavar="FILE", help="also write a result record (JSON) here")
    _add_format(p)
    p.set_defaults(func=_run_bound_pac_bayes)


def _run_bound_pac_bayes(args: argparse.Namespace) -> str:
    mc_delta = args.mc_delta
    if args.mc_samples is not None and mc_delta is None:
        mc_delta = 0.01
    if args.mc_samples is None and mc_delta is not None:
        raise ValueError("argument '--mc-delta' needs '--mc-samples'")
    certs = [
        pac_bayes_certificate(
            name, args.emp_risk, args.kl, args.n, args.delta,
            mc_samples=args.mc_samples, mc_delta=mc_delta, n_prior=args.n_prior,
            n_priors=args.n_priors, prior_grid_j=args.prior_grid_j,
        )
        for name in PAC_BAYES_ORDER
    ]
    if args.save:
        config = {k: v for k, v in vars(args).items() if k not in ("func", "format", "digits", "save")}
        write_record(args.save, new_record("calculator", config, None, [c.to_dict() for c in certs]))
    if args.format == "json":
        return json.dumps({c.bound: c.to_dict() for c in certs}, indent=2)
    rows = [
        {
            "bound": c.bound,
            "value": c.value,
            "vacuous": c.vacuous,
            "note": _note(c),
        }
        for c in certs
    ]
    cols = [Column("bound", "bound"), Column("value", "value", upper=True, digits=args.digits),
            Column("vacuous", "vacuous"), Column("note", "note")]
    table = render(cols, rows, args.format)
    if args.format != "table":
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
        f"honest minimum is {format_number(best.value, args.digits, upper=True)} "
        f"({best.details['selection']['chosen']}).",
    ]
    return "\n".join(head + ["", table, "", *foot])


def _note(c) -> str:
    if c.bound == "catoni":
        g = c.details["C_grid"]
        return f"C = {c.details['C']:.3g} from a grid of {g['size']} (union bound)"
    if c.bound == "lambda":
        return f"lambda = {c.details['lambda']:.3g} (optimal; uniform in lambda)"
    return ""


# ---------------------------------------------------------------------------------------
# genbounds quickstart / genbounds pac-bayes


def _add_pac_bayes_flags(p: argparse.ArgumentParser, quick: bool) -> None:
    d = QUICKSTART if quick else PacBayesConfig()
    p.add_argument("--out", default=None, help="output folder (default results/<command>/)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--format", choices=FORMATS, default="table", help="summary table format")
    if quick:
        return
    p.add_argument("--dataset", default=d.dataset, help="digits | mnist-5k | mnist | fashion-mnist")
    p.add_argument("--data-dir", default=None, help="folder with IDX files, or a .npz (mnist, fashion-mnist)")
    p.add_argument("--binary", type=int, nargs="+", default=None, metavar="CLASS",
                   help="relabel to 2 classes: these classes -> 1, the rest -> 0 (e.g. 5 6 7 8 9)")
    p.add_argument("--arch", choices=("mlp", "cnn"), default=d.arch)
    p.add_argument("--widths", type=int, nargs="+", default=list(d.widths), help="MLP hidden widths")
    p.add_argument("--prior", choices=("data", "init", "dp"), default=d.prior,
                   help="data: prior mean trained on --alpha of the data; init: the random init (DR17); dp: mean "
                   "drawn by an epsilon-DP Gibbs mechanism (SGLD) on all the data (DR18)")
    p.add_argument("--dp-epsilon", type=float, default=d.dp_epsilon, help="dp prior: epsilon (tau = epsilon n / 2)")
    p.add_argument("--dp-base-scale", type=float, default=d.dp_base_scale,
                   help="dp prior: std of the data-free Gaussian base measure around the initialisation")
    p.add_argument("--dp-lr", type=float, default=d.dp_lr, help="dp prior: SGLD step size")
    p.add_argument("--dp-epochs", type=int, default=d.dp_epochs, help="dp prior: SGLD epochs")
    p.add_argument("--alpha", type=float, default=d.alpha, help="fraction of training data for the prior")
    p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                   help="standardise inputs per pixel with the prior data's mean and std (default: yes with a "
                   "data prior; a data-free prior cannot)")
    p.add_argument("--objective", nargs="+", default=list(d.objectives), dest="objectives",
                   help=f"{' | '.join(OBJECTIVES)} (several: side by side)")
    p.add_argument("--family", choices=FAMILIES, default=d.family,
                   help="posterior family: factorised Gaussian or Laplace weights, Bernoulli masks over the prior's "
                   "weights, or matrix-normal (Kronecker-factored) dense layers")
    p.add_argument("--sparsity", type=float, default=d.sparsity,
                   help="mask family: fraction the prior's magnitude mask prunes")
    p.add_argument("--mask-flip", type=float, default=d.mask_flip,
                   help="mask family: prior keep probability of a pruned weight (1 - it for a kept one)")
    p.add_argument("--mask-prior", choices=("magnitude", "uniform"), default=d.mask_prior,
                   help="mask family: Bernoulli prior from the prior net's magnitudes, or uniform (data-free) "
                   "keep probability 1 - sparsity")
    p.add_argument("--prior-scale", type=float, default=d.prior_scale)
    p.add_argument("--learn-prior-scale", action="store_true",
                   help="learn the prior scale, then round it to the DR17 grid (union bound paid)")
    p.add_argument("--prior-epochs", type=int, default=d.prior_epochs)
    p.add_argument("--prior-lr", type=float, default=d.prior_lr)
    p.add_argument("--prior-batch", type=int, default=d.prior_batch)
    p.add_argument("--prior-optimizer", choices=OPTIMIZERS, default=d.prior_optimizer)
    p.add_argument("--prior-momentum", type=float, default=d.prior_momentum, help="SGD momentum of the prior")
    p.add_argument("--prior-dropout", type=float, default=d.prior_dropout,
                   help="dropout rate on hidden activations while training the prior (PBB: 0.2)")
    p.add_argument("--prior-schedule", choices=SCHEDULES, default=d.prior_schedule,
                   help="learning-rate schedule of the prior: constant or cosine decay to 0")
    p.add_argument("--prior-augment", choices=sorted(AUGMENTATIONS), default=d.prior_augment,
                   help="augment the prior's training images: random 2-pixel shifts (shift), and mirror images "
                   "(shift-flip); the bound set is never augmented")
    p.add_argument("--epochs", type=int, default=d.epochs, help="posterior epochs")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule, help="posterior learning-rate schedule")
    p.add_argument("--shared-sample", action="store_true",
                   help="train with one weight draw per minibatch instead of one per example")
    p.add_argument("--p-min", type=float, default=d.p_min)
    p.add_argument("--delta", type=float, default=d.delta)
    p.add_argument("--mc-delta", type=float, default=d.mc_delta)
    p.add_argument("--mc-r", type=int, default=d.mc_r, help="per-example draws per example, method (b)")
    p.add_argument("--mc-m", type=int, default=d.mc_m, help="weight draws for method (a); 0 skips it")
    p.add_argument("--settings-looked-at", type=int, default=d.settings_looked_at,
                   help="settings whose certificates you already looked at on this bound set, this one included: "
                        "every certificate pays for the choice (delta / this number)")


def _config_from_args(args: argparse.Namespace):
    if args.command == "quickstart":
        return dataclasses.replace(QUICKSTART, seed=args.seed)
    fields = {f.name for f in dataclasses.fields(PacBayesConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    for k in ("widths", "objectives", "binary"):
        if values.get(k) is not None:
            values[k] = tuple(values[k])
    return PacBayesConfig(**values)


def _run_pac_bayes(args: argparse.Namespace) -> str:
    cfg = _config_from_args(args)
    out = Path(args.out or f"results/{args.command}")
    record = run_pac_bayes(cfg, out, progress=not args.no_progress, log=_log_to_stderr)
    fig = make_run_figure(record, out / "certificates.png")
    table = render(summary_columns(), summary_rows(record), args.format, json_key="objective")
    if args.format != "table":
        return table

    res = record["results"][0]["certificate"]
    foot = [
        "",
        f"certificate (b): Seeger bound, empirical risk certified from {res['mc_samples']} per-example "
        f"weight draws; (a): from {cfg.mc_m} full weight draws (Langford & Caruana).",
        f"each certificate holds on its own w.p. >= 1 - {format_delta(res['delta'])} (pac_bayes "
        f"{format_delta(res['delta_parts']['pac_bayes'])} + monte_carlo "
        f"{format_delta(res['delta_parts']['monte_carlo'])}); "
        + ("the DP prior used every example: none is held out." if res["details"].get("dp_prior")
           else "bound set excludes the prior's data."),
    ]
    dp = res["details"].get("dp_prior")
    if dp:
        foot.append(f"prior mean drawn by an epsilon-DP mechanism on all {res['n_bound']} examples (nothing held out): "
                    f"epsilon {dp['epsilon']:g} adds {dp['adjustment_nats']:.1f} nats (ln 2 + max-information) to "
                    f"the KL. Privacy: {dp['privacy']}.")
    masks = record["results"][0].get("masks")
    if masks:
        foot.append(f"masks: expected sparsity {masks['expected_sparsity']:.3f}. Deterministic predictors on the same "
                    f"bound set (Seeger, delta {format_delta(masks['magnitude']['certificate']['delta'])}, separate "
                    "statements):")
        for name, what in (("magnitude", "magnitude-pruned prior net, KL 0"),
                           ("thresholded", "posterior mask thresholded at 1/2, point mass")):
            m = masks[name]
            foot.append(f"  {what}: certificate {format_number(m['certificate']['value'], 4, upper=True)}, "
                        f"test error {m['test_error']:.4f}, sparsity {m['sparsity']:.3f}, "
                        f"KL {m['certificate']['kl']:.1f}")
    if "best" in record:
        sel = record["best"]["details"]["selection"]
        best = format_number(record["best"]["value"], 4, upper=True)
        among = (f"these {len(sel['labels'])} certificates" if sel["k"] == len(sel["labels"]) else
                 f"these {len(sel['labels'])} certificates (standing for {sel['k']} candidates looked at)")
        foot.append(f"keeping the smallest of {among} is a choice after seeing them: paid "
                    f"with a union bound (each at delta/{sel['k']}) it is {best} ({sel['chosen']}).")
    if cfg.settings_looked_at > 1:
        foot.append(f"every certificate above pays for keeping these settings among {cfg.settings_looked_at} looked "
                    f"at on this bound set (each at delta/{cfg.settings_looked_at}).")
    foot.append(f"record: {out / 'record.json'}   figure: {fig}   ({record['timings']['total_s']:.0f} s)")
    vac = [r["objective"] for r in summary_rows(record) if r["vacuous"]]
    if vac:
        foot.append(f"VACUOUS (>= 1, says nothing): {', '.join(vac)}")
    return "\n".join([table, *foot])


# ---------------------------------------------------------------------------------------
# genbounds bound cmi / genbounds cmi


def _add_bound_cmi(sub) -> None:
    p = sub.add_parser(
        "cmi", help="every CMI bound from your own supersample runs (an .npz file)",
        description="Estimate every CMI bound from runs trained with any code. The .npz holds "
        "'masks' [k1, k2, n] (0/1: member of pair i used for training), 'predictions' "
        "[k1, k2, n, 2] (predicted class on both members) and 'labels' [k1, n, 2]. Leave-one-out "
        "runs instead hold 'held_out' [k1, R] (index in [0, n] of the point run r left out), "
        "'predictions' [k1, R, n+1] and 'labels' [k1, n+1].")
    p.add_argument("--runs", required=True, help="the .npz file")
    p.add_argument("--miller-madow", action="store_true", help="bias-correct the plug-in MIs")
    _add_format(p)
    p.set_defaults(func=_run_bound_cmi)


def _run_bound_cmi(args: argparse.Namespace) -> str:
    try:
        z = np.load(args.runs, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"--runs {args.runs} is not a readable .npz archive (np.savez output): {err}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"--runs {args.runs} holds a single array, not an .npz archive of named arrays "
                         "(save with np.savez(file, masks=..., predictions=..., labels=...))")
    with z:
        loo = "held_out" in z.files
        needed = ("held_out" if loo else "masks", "predictions", "labels")
        missing = [k for k in needed if k not in z.files]
        if missing:
            raise ValueError(f"--runs {args.runs} lacks array(s) {', '.join(missing)} (has {z.files})")
        if loo:
            res = loo_bounds_from_runs(z["held_out"], loo_losses(z["predictions"], z["labels"]))
        else:
            res = bounds_from_runs(z["masks"], z["predictions"], z["labels"], miller_madow=args.miller_madow)
    if args.format == "json":
        return json.dumps(res.to_dict(), indent=2)
    s = res.summary
    rows = [{"bound": k, "value": b.value, "low": b.interval[0] if b.applicable else None,
             "high": b.interval[1] if b.applicable else None, "mi": b.mi,
             "note": "" if b.applicable else "not applicable: " + b.reason}
            for k, b in res.bounds.items()]
    cols = [Column("bound", "bound (estimate)"),
            Column("value", "estimated bound on E[test error]", upper=True, digits=args.digits),
            Column("low", "95% low", digits=args.digits), Column("high", "95% high", upper=True, digits=args.digits),
            Column("mi", "uses MI of"), Column("note", "note")]
    table = render(cols, rows, args.format)
    if args.format != "table":
        return table
    runs = f"{s.runs} leave-one-out runs" if loo else f"{s.k2} masks"
    head = (f"ESTIMATES, not certificates: {s.note}.\n"
            f"{s.k1} supersamples x {runs}, n = {s.n}: train error {s.train_error:.4f}, "
            f"test error (held-out points) {s.test_error:.4f}, gap {s.gap:.4f}; "
            f"intervals: bootstrap over supersamples\n")
    return head + "\n" + table


def _add_cmi(commands) -> None:
    d = CMIConfig()
    p = commands.add_parser(
        "cmi", help="supersample experiment: populations of models, every CMI bound per n",
        description="Train k1 supersamples x k2 masks per n as vmapped populations and estimate "
        "every CMI bound. Finished chunks are saved: re-running the same command resumes.")
    p.add_argument("--dataset", default=d.dataset, help="synthetic | digits | mnist-5k | mnist | fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--classes", type=int, nargs=2, default=None, metavar=("NEG", "POS"),
                   help="binary task (default 4 9; fashion-mnist 2 4: pullover vs coat)")
    p.add_argument("--arch", choices=("linear", "mlp", "cnn"), default=d.arch)
    p.add_argument("--widths", type=int, nargs="+", default=list(d.widths))
    p.add_argument("--n", type=int, nargs="+", default=list(d.n))
    p.add_argument("--k1", type=int, default=d.k1)
    p.add_argument("--k2", type=int, default=d.k2)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--chunk", type=int, default=d.chunk, help="runs per saved chunk (default k2)")
    p.add_argument("--miller-madow", action="store_true")
    p.add_argument("--loo", action="store_true", help="leave-one-out CMI: n+1 points per draw, all n+1 "
                   "held-out runs trained (k2 is not used)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=None, help="output folder (default results/cmi-<dataset>/)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--format", choices=FORMATS, default="table")
    g = p.add_argument_group("multi-host (JAX's own runtime, jax.distributed): run the same command on every "
                             "process; the runs spread over all of their devices and process 0 writes the files")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="address of process 0")
    g.add_argument("--num-processes", type=_positive_int, default=1)
    g.add_argument("--process-id", type=_nonneg_int, default=0)
    p.set_defaults(func=_run_cmi)


def _run_cmi(args: argparse.Namespace) -> str:
    if args.coordinator is not None or args.num_processes > 1:
        if args.coordinator is None:
            raise ValueError("argument '--num-processes' needs '--coordinator HOST:PORT' (the address of process 0)")
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)

    fields = {f.name for f in dataclasses.fields(CMIConfig)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if k in fields}
    cfg = CMIConfig(**values)
    out = Path(args.out or f"results/cmi-{cfg.dataset}")

    record = run_cmi(cfg, out, progress=not args.no_progress and is_main_process(),
                     log=_log_to_stderr if is_main_process() else lambda message: None)
    if not is_main_process():
        return ""
    return _estimates_table(render(cmi_columns(record), cmi_rows(record), args.format), args.format,
                            "bounds on E[test error] from plug-in MIs", out, record)


def _estimates_table(table: str, fmt: str, what: str, out: Path, record: dict) -> str:
    """A table of estimates; as text, followed by the line saying they are not certificates."""
    if fmt != "table":
        return table
    return "\n".join([table, "", f"ESTIMATES, not certificates: {what}; intervals and per-draw values in "
                      f"{out / 'record.json'} ({record['timings']['total_s']:.0f} s)"])


# ---------------------------------------------------------------------------------------
# genbounds langevin


def _add_langevin(commands) -> None:
    d = LangevinConfig()
    p = commands.add_parser(
        "langevin", help="full-batch Langevin dynamics: bound estimates along the trajectory vs the gap",
        description="k1 outer draws (n - 1 shared points and a pair) x k2 Langevin runs (U_J antithetic); at "
        "every checkpoint the Haghifam et al. 2020 CMI bound (hypothesis test) and the Negrea et al. 2019 "
        "leave-one-out bound, with the measured gap. Finished draws are saved: re-running resumes.")
    p.add_argument("--dataset", default=d.dataset, help="digits | mnist-5k | mnist | fashion-mnist (binary task)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--classes", type=int, nargs=2, default=None, metavar=("NEG", "POS"))
    p.add_argument("--widths", type=int, nargs="+", default=list(d.widths), help="MLP hidden widths")
    for name in ("n", "n_test", "steps", "every", "k1", "k2", "every_eta", "every_v", "batch", "seed"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("eta0", "decay", "v0", "v_inf", "rate"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--algorithm", choices=("langevin", "sgd"), default=d.algorithm,
                   help="sgd: plain minibatch SGD (--batch > 0) with Neu et al. 2021's bound per --sigmas")
    p.add_argument("--sigmas", type=float, nargs="+", default=list(d.sigmas),
                   help="sgd: perturbation scales, a grid fixed before the runs")
    p.add_argument("--n-heldout", type=int, default=d.n_heldout, help="sgd: points for the population gradient")
    p.add_argument("--mc", type=int, default=d.mc, help="sgd: Gaussian draws per expectation")
    p.add_argument("--out", default=None, help="output folder (default results/langevin-<dataset>/)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=_run_langevin)


def _run_langevin(args: argparse.Namespace) -> str:
    fields = {f.name for f in dataclasses.fields(LangevinConfig)}
    cfg = LangevinConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items()
                            if k in fields})
    out = Path(args.out or f"results/langevin-{cfg.dataset}")

    record = run_langevin_experiment(cfg, out, progress=not args.no_progress, log=_log_to_stderr)
    cols = [Column("step", "step"), Column("beta", "beta", digits=0) if cfg.algorithm == "langevin" else
            Column("eta", "eta"), Column("train_error", "train err"),
            Column("test_error", "test err"), Column("gap", "gap")]
    shown = list(record["results"][0]["bounds"])
    cols += [Column(b, b, upper=True) for b in shown]
    rows = [{**{k: r[k] for k in ("step", "beta", "eta", "train_error", "test_error", "gap")},
             **{b: r["bounds"][b]["value"] for b in shown}} for r in record["results"]]
    return _estimates_table(render(cols, rows, args.format), args.format,
                            "bounds on E[test error - training error] (0-1 loss), each expectation estimated "
                            f"from {cfg.k1} draws (pooled before any square root)",
                            out, record)


# ---------------------------------------------------------------------------------------
# genbounds reproduce


def _add_reproduce(commands) -> None:
    p = commands.add_parser(
        "reproduce", help="run a paper's protocol by name (--list shows them)",
        description="Run a named protocol (a paper's settings on data available offline), writing each "
        "run's record into OUT/<run>/ and a table into OUT/table.md. Re-running resumes.")
    p.add_argument("name", nargs="?", default=None, help="the protocol (see --list)")
    p.add_argument("--list", action="store_true", help="list the protocols and exit")
    p.add_argument("--epochs-scale", type=float, default=1.0,
                   help="multiply every epoch count (e.g. 0.2 for a quick version; at least 1 epoch)")
    p.add_argument("--out", default=None, help="output folder (default results/reproduce/<name>/)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=_run_reproduce)


def _run_reproduce(args: argparse.Namespace) -> str:
    if args.list or args.name is None:
        if not args.list:
            raise ValueError("argument 'name' is required (genbounds reproduce --list shows the protocols)")
        return "\n".join(f"{r.name:22s} {r.summary}\n{'':22s} ({r.reference})" for r in RECIPES.values())
    if args.name not in RECIPES:
        raise ValueError(f"argument 'name' must be one of {sorted(RECIPES)}, got {args.name!r}")
    if not args.epochs_scale > 0:
        raise ValueError(f"argument '--epochs-scale' must be > 0, got {args.epochs_scale!r}")
    recipe = RECIPES[args.name]
    out = Path(args.out or f"results/reproduce/{recipe.name}")

    records = run_recipe(recipe, out, epochs_scale=args.epochs_scale, progress=not args.no_progress, log=_log_to_stderr)
    table = recipe_table(records, args.format)
    if args.format != "table":
        return table
    return "\n".join([table, "", REPORT_NOTE, recipe.notes, f"records and table.md in {out}"])


# ---------------------------------------------------------------------------------------
# genbounds report / genbounds figures


def _add_report(commands) -> None:
    p = commands.add_parser(
        "report", help="bound tables from result records (markdown, LaTeX, CSV, JSON)",
        description="One row per run result (or per group with --group-by) from every record under "
        "the given folders. Bounds are rounded up; malformed records are skipped with one line each.")
    p.add_argument("results", nargs="+", help="folders or record files")
    p.add_argument("--group-by", nargs="+", default=None, metavar="FIELD",
                   help="group rows by these fields (dataset model prior bound n): numbers are averaged, so a "
                   "group's row is a mean, not a certificate; groups mixing different bounds are refused")
    p.add_argument("--format", choices=FORMATS, default="markdown")
    p.add_argument("--digits", type=_digits, default=4, help="digits printed (0 to 12); bounds are rounded up")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> str:
    good, errors = load_records(args.results)
    rows, malformed = report_rows(good)
    for e in errors + malformed:
        print(f"{PROG}: skipped {e}", file=sys.stderr)
    if len(malformed) == len(good):
        raise ValueError(f"no readable records under {' '.join(args.results)}")
    cols = [dataclasses.replace(c, digits=args.digits) if c.key in ("emp_risk", "test_error", "certificate")
            else c for c in REPORT_COLUMNS]
    if args.group_by:
        bad = [k for k in args.group_by if k not in {c.key for c in REPORT_COLUMNS}]
        if bad:
            raise ValueError(f"argument '--group-by' has unknown field(s) {bad}")
        rows = group_rows(rows, args.group_by)
        cols = cols + [Column("runs", "runs")]
    table = render(cols, rows, args.format)
    note = f"{REPORT_NOTE} {GROUP_NOTE}" if args.group_by else REPORT_NOTE
    if args.format in ("table", "markdown"):
        return f"{table}\n\n{note}"
    if args.format == "latex":
        return f"{table}\n% {note}"
    return table


def _add_figures(commands) -> None:
    p = commands.add_parser(
        "figures", help="every paper figure from result records (PNG and PDF)",
        description="Regenerate the figures from stored records only: the role of data, objectives, "
        "CMI bounds versus n, training curves.")
    p.add_argument("results", help="folder of records")
    p.add_argument("out", help="folder for the figures")
    p.set_defaults(func=_run_figures)


def _run_figures(args: argparse.Namespace) -> str:
    files, notes = make_all(args.results, args.out)
    for n in notes:
        print(f"{PROG}: {n}", file=sys.stderr)
    if not files:
        raise ValueError(f"no figure could be made from the records under {args.results}")
    return "\n".join(str(f) for f in files)


# ---------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the argument (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Certified generalization bounds: PAC-Bayes and CMI.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bound = commands.add_parser("bound", help="compute bounds from numbers you already have")
    bound_sub = bound.add_subparsers(dest="kind", metavar="KIND", required=True)
    _add_bound_pac_bayes(bound_sub)
    _add_bound_cmi(bound_sub)
    _add_cmi(commands)
    _add_langevin(commands)
    _add_reproduce(commands)
    _add_report(commands)
    _add_figures(commands)
    quick = commands.add_parser(
        "quickstart", help="certify a stochastic CNN on the bundled digits (under a minute)",
        description="10-class digits, CNN, prior trained with dropout on half the training set, "
        "inputs standardised with the prior data's statistics, f_quad; prints certificates (a) and (b) "
        "and test errors and writes record.json and certificates.png into --out.")
    _add_pac_bayes_flags(quick, quick=True)
    quick.set_defaults(func=_run_pac_bayes)
    full = commands.add_parser(
        "pac-bayes", help="train and certify a stochastic network (every setting a flag)",
        description="Train a prior and posterior(s) against PAC-Bayes objectives and certify them. "
        "Checkpoints in OUT/checkpoints/: re-running the same command resumes.")
    _add_pac_bayes_flags(full, quick=False)
    full.set_defaults(func=_run_pac_bayes)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:      # --help (0) or a usage error (2, already printed in one line)
        return int(stop.code or 0)
    func: Callable[[argparse.Namespace], str | None] = args.func
    try:
        out = func(args)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    if out:
        print(out)
    return 0
