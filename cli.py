"""The ``genbounds`` command line (also ``python -m genbounds``): parsers and dispatch.

The flags of the experiment commands are generated from their configs' settings
(:func:`genbounds.experiments.config.add_flags`); the text each command prints is
:mod:`genbounds.experiments.summary`'s. Bad input gives a one-line ``genbounds: error: ...``
message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .bounds import (
    CodeLength,
    CompressionBound,
    PacBayesBound,
    compression_certificate,
    pac_bayes_certificate,
)
from .estimators.devices import initialize_distributed, is_main_process
from .experiments.benchmarks.suite import run_bench
from .experiments.cmi_runner import CMIConfig, bounds_from_npz, run_cmi
from .experiments.compress_runner import CompressConfig, compress_text, run_compress
from .experiments.config import add_flags, digits, from_args, nonneg_int, positive_int
from .experiments.langevin_runner import LangevinConfig, run_langevin_experiment
from .experiments.pac_bayes_runner import QUICKSTART, PacBayesConfig, run_pac_bayes
from .experiments.plots import make_run_figure
from .experiments.recipes import RECIPES, recipe_list, run_recipe
from .experiments.records import load_records, new_record, write_record
from .experiments.report import FORMATS, REPORT_FIELDS, report_rows, row_filter
from .experiments.summary import (
    bound_cmi_text,
    calculator_text,
    cmi_text,
    compression_calculator_text,
    langevin_text,
    pac_bayes_text,
    report_text,
    reproduce_text,
)
from .paper_figures import make_all

__all__ = ["PROG", "build_parser", "main"]


def _log_to_stderr(message: str) -> None:
    """Progress messages of a run go to stderr, so stdout holds only the command's table."""
    print(message, file=sys.stderr, flush=True)


PROG = "genbounds"

#: Order in which the calculator prints PAC-Bayes bounds (tightest family first).
PAC_BAYES_ORDER = tuple(PacBayesBound)


def _add_format(p: argparse.ArgumentParser, default: str = "table", with_digits: bool = True) -> None:
    p.add_argument("--format", choices=FORMATS, default=default, help=f"output format (default: {default})")
    if with_digits:
        p.add_argument("--digits", type=digits, default=4,
                       help="digits printed (0 to 12); bounds are rounded up (default: 4)")


def _add_run_flags(p: argparse.ArgumentParser, out: str) -> None:
    """The flags every experiment command has besides its config's: output folder, progress, format."""
    p.add_argument("--out", default=None, help=f"output folder (default: {out})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_format(p, with_digits=False)


# ---------------------------------------------------------------------------------------
# Commands: each runs and returns the text to print


def _run_bound_pac_bayes(args: argparse.Namespace) -> str:
    if args.mc_samples is None and args.mc_delta is not None:
        raise ValueError("argument '--mc-delta' needs '--mc-samples'")
    mc_delta = 0.01 if args.mc_samples is not None and args.mc_delta is None else args.mc_delta
    certs = [pac_bayes_certificate(name, args.emp_risk, args.kl, args.n, args.delta, mc_samples=args.mc_samples,
                                   mc_delta=mc_delta, n_prior=args.n_prior, n_priors=args.n_priors,
                                   prior_grid_j=args.prior_grid_j) for name in PAC_BAYES_ORDER]
    if args.save:
        config = {k: v for k, v in vars(args).items() if k not in ("func", "format", "digits", "save")}
        write_record(args.save, new_record("calculator", config, None, [c.to_dict() for c in certs]))
    if args.format == "json":
        return json.dumps({c.bound: c.to_dict() for c in certs}, indent=2)
    return calculator_text(certs, args.format, args.digits)


#: The --method names of ``genbounds bound compression``.
COMPRESSION_METHODS = {"kl": CompressionBound.KL_INVERSE, "catoni": CompressionBound.CATONI}


def _run_bound_compression(args: argparse.Namespace) -> str:
    cert = compression_certificate(args.errors, args.n, CodeLength.declared(args.bits, searched=args.searched),
                                   args.delta, method=COMPRESSION_METHODS[args.method], n_prior=args.n_prior)
    return cert.to_json(indent=2) if args.format == "json" else compression_calculator_text(cert, args.digits)


def _run_pac_bayes(args: argparse.Namespace) -> str:
    cfg = from_args(QUICKSTART if args.command == "quickstart" else PacBayesConfig(), args)
    out = Path(args.out or f"results/{args.command}")
    record = run_pac_bayes(cfg, out, progress=not args.no_progress, log=_log_to_stderr)
    return pac_bayes_text(record, cfg, out, make_run_figure(record, out / "certificates.png"), args.format)


def _run_bound_cmi(args: argparse.Namespace) -> str:
    res, loo = bounds_from_npz(args.runs, miller_madow=args.miller_madow)
    if args.format == "json":
        return json.dumps(res.to_dict(), indent=2)
    return bound_cmi_text(res, loo, args.format, args.digits)


def _run_cmi(args: argparse.Namespace) -> str:
    if args.coordinator is not None or args.num_processes > 1:
        if args.coordinator is None:
            raise ValueError("argument '--num-processes' needs '--coordinator HOST:PORT' (the address of process 0)")
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    cfg = from_args(CMIConfig(), args)
    out = Path(args.out or f"results/cmi-{cfg.dataset}")
    record = run_cmi(cfg, out, progress=not args.no_progress and is_main_process(),
                     log=_log_to_stderr if is_main_process() else lambda message: None)
    return cmi_text(record, out, args.format) if is_main_process() else ""


def _run_langevin(args: argparse.Namespace) -> str:
    cfg = from_args(LangevinConfig(), args)
    out = Path(args.out or f"results/langevin-{cfg.dataset}")
    record = run_langevin_experiment(cfg, out, progress=not args.no_progress, log=_log_to_stderr)
    return langevin_text(record, cfg.k1, cfg.algorithm, out, args.format)


def _run_compress(args: argparse.Namespace) -> str:
    cfg = from_args(CompressConfig(), args)
    out = Path(args.out or f"results/compress-{cfg.dataset}")
    record = run_compress(cfg, out, progress=not args.no_progress, log=_log_to_stderr)
    return json.dumps(record, indent=2) if args.format == "json" else compress_text(record, out)


def _run_reproduce(args: argparse.Namespace) -> str:
    if args.list or args.name is None:
        if not args.list:
            raise ValueError("argument 'name' is required (genbounds reproduce --list shows the protocols)")
        return recipe_list()
    if args.name not in RECIPES:
        raise ValueError(f"argument 'name' must be one of {sorted(RECIPES)}, got {args.name!r}")
    if not args.epochs_scale > 0:
        raise ValueError(f"argument '--epochs-scale' must be > 0, got {args.epochs_scale!r}")
    recipe = RECIPES[args.name]
    out = Path(args.out or f"results/reproduce/{recipe.name}")
    records = run_recipe(recipe, out, epochs_scale=args.epochs_scale, progress=not args.no_progress, log=_log_to_stderr)
    return reproduce_text(records, recipe.notes, out, args.format)


def _run_report(args: argparse.Namespace) -> str:
    good, errors = load_records(args.results)
    rows, malformed = report_rows(good)
    for e in errors + malformed:
        print(f"{PROG}: skipped {e}", file=sys.stderr)
    if len(malformed) == len(good):
        raise ValueError(f"no readable records under {' '.join(args.results)}")
    return report_text(rows, args.group_by, args.format, args.digits, args.filter)


def _run_bench(args: argparse.Namespace) -> str:
    if not args.budget_s > 0:
        raise ValueError(f"argument '--budget-s' must be > 0, got {args.budget_s!r}")
    return run_bench(args.out or "results/bench", smoke=args.smoke, budget_s=args.budget_s, force=args.force,
                     data_dir=args.data_dir, progress=not args.no_progress, log=_log_to_stderr)


def _run_figures(args: argparse.Namespace) -> str:
    files, notes = make_all(args.results, args.out)
    for n in notes:
        print(f"{PROG}: {n}", file=sys.stderr)
    if not files:
        raise ValueError(f"no figure could be made from the records under {args.results}")
    return "\n".join(str(f) for f in files)


# ---------------------------------------------------------------------------------------
# Parsers


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the argument (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_bound_parsers(commands) -> None:
    bound = commands.add_parser("bound", help="compute bounds from numbers you already have")
    sub = bound.add_subparsers(dest="kind", metavar="KIND", required=True)
    p = sub.add_parser("pac-bayes", help="every PAC-Bayes bound for given empirical risk, KL, n and delta",
                       description="Print every applicable PAC-Bayes bound on the risk of a posterior Q for a [0,1] "
                       "loss, side by side, computed in float64 and rounded up.")
    p.add_argument("--emp-risk", type=float, required=True,
                   help="empirical risk on the bound set (a Monte Carlo estimate with --mc-samples)")
    p.add_argument("--kl", type=float, required=True, help="KL(Q||P) in nats")
    p.add_argument("--n", type=positive_int, required=True, help="examples in the bound set (excluding prior data)")
    p.add_argument("--delta", type=float, default=0.025, help="PAC-Bayes confidence part (default: 0.025)")
    p.add_argument("--mc-samples", type=positive_int, default=None, help="Monte Carlo samples behind --emp-risk, "
                   "certified by sample convergence (default: none, an exact empirical risk)")
    p.add_argument("--mc-delta", type=float, default=None,
                   help="confidence part for the Monte Carlo step (default: 0.01 with --mc-samples)")
    p.add_argument("--n-prior", type=nonneg_int, default=0, help="examples used to build the prior, recorded "
                   "(default: 0)")
    p.add_argument("--n-priors", type=positive_int, default=1,
                   help="number of priors the prior was chosen from (union bound, delta / k) (default: 1)")
    p.add_argument("--prior-grid-j", type=nonneg_int, default=None, help="index j of the prior scale c*exp(-j/b) "
                   "on the Dziugaite & Roy grid (default: none, a prior scale fixed in advance)")
    p.add_argument("--save", default=None, metavar="FILE", help="also write a result record (JSON) here "
                   "(default: none)")
    _add_format(p)
    p.set_defaults(func=_run_bound_pac_bayes)
    p = sub.add_parser("compression", help="compression bound of a quantised network from its errors and code length",
                       description="Certify the risk of a deterministic (quantised) network described by a prefix-free "
                       "message of --bits bits: a point mass under the code prior 2^-bits (Lotfi et al. 2022).")
    p.add_argument("--errors", type=nonneg_int, required=True, help="errors of the network on the bound set")
    p.add_argument("--n", type=positive_int, required=True, help="examples in the bound set (excluding prior data)")
    p.add_argument("--bits", type=nonneg_int, required=True, help="length of the prefix-free description, in bits")
    p.add_argument("--searched", type=positive_int, default=1, help="settings in the declared search grid the "
                   "network was chosen from (log2 of it is added to --bits) (default: 1)")
    p.add_argument("--delta", type=float, default=0.05, help="confidence parameter (default: 0.05)")
    p.add_argument("--method", choices=tuple(COMPRESSION_METHODS), default="kl", help="kl: the kl-inverse "
                   "(Seeger/Maurer) bound; catoni: Lotfi et al.'s Catoni form (default: kl)")
    p.add_argument("--n-prior", type=nonneg_int, default=0, help="examples used to build the prior, recorded "
                   "(default: 0)")
    _add_format(p)
    p.set_defaults(func=_run_bound_compression)
    p = sub.add_parser(
        "cmi", help="every CMI bound from your own supersample runs (an .npz file)",
        description="Estimate every CMI bound from runs trained with any code. The .npz holds 'masks' [k1, k2, n] "
        "(0/1: member of pair i used for training), 'predictions' [k1, k2, n, 2] (predicted class on both members) "
        "and 'labels' [k1, n, 2]. Leave-one-out runs instead hold 'held_out' [k1, R] (index in [0, n] of the point "
        "run r left out), 'predictions' [k1, R, n+1] and 'labels' [k1, n+1].")
    p.add_argument("--runs", required=True, help="the .npz file")
    p.add_argument("--miller-madow", action="store_true", help="bias-correct the plug-in MIs")
    _add_format(p)
    p.set_defaults(func=_run_bound_cmi)


def _add_experiment_parsers(commands) -> None:
    quick = commands.add_parser(
        "quickstart", help="certify a stochastic CNN on the bundled digits (under a minute)",
        description="10-class digits, CNN, prior trained with dropout on half the training set, inputs standardised "
        "with the prior data's statistics, f_quad; prints certificate (b) (and (a) with --mc-m 1000), the combined "
        "certificate over the prior's network and test errors and writes record.json and certificates.png into --out.")
    full = commands.add_parser(
        "pac-bayes", help="train and certify a stochastic network (every setting a flag)",
        description="Train a prior and posterior(s) against PAC-Bayes objectives and certify them. Checkpoints in "
        "OUT/checkpoints/: re-running the same command resumes.")
    for p, name in ((quick, "quickstart"), (full, "pac-bayes")):
        _add_run_flags(p, f"results/{name}/")
        p.set_defaults(func=_run_pac_bayes)
    add_flags(quick, QUICKSTART, keys=("seed", "mc_m"))
    for section, title in (("data", "data"), ("model", "network"), ("prior", "prior"), ("posterior", "posterior"),
                           ("certificate", "certificates"), (None, "seed")):
        keys = [s.key for s in PacBayesConfig.settings() if s.section == section]
        add_flags(full.add_argument_group(title) if section else full, PacBayesConfig(), keys=keys)
    p = commands.add_parser(
        "cmi", help="supersample experiment: populations of models, every CMI bound per n",
        description="Train k1 supersamples x k2 masks per n as vmapped populations and estimate every CMI bound. "
        "Finished chunks are saved: re-running the same command resumes.")
    _add_run_flags(p, "results/cmi-<dataset>/")
    add_flags(p, CMIConfig())
    g = p.add_argument_group("multi-host (JAX's own runtime, jax.distributed): run the same command on every "
                             "process; the runs spread over all of their devices and process 0 writes the files")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="address of process 0 (default: none, "
                   "one process)")
    g.add_argument("--num-processes", type=positive_int, default=1, help="processes in all (default: 1)")
    g.add_argument("--process-id", type=nonneg_int, default=0, help="this process's index (default: 0)")
    p.set_defaults(func=_run_cmi)
    p = commands.add_parser(
        "langevin", help="full-batch Langevin dynamics: bound estimates along the trajectory vs the gap",
        description="k1 outer draws (n - 1 shared points and a pair) x k2 Langevin runs (U_J antithetic); at every "
        "checkpoint the Haghifam et al. 2020 CMI bound (hypothesis test) and the Negrea et al. 2019 leave-one-out "
        "bound, with the measured gap. Finished draws are saved: re-running resumes.")
    _add_run_flags(p, "results/langevin-<dataset>/")
    add_flags(p, LangevinConfig())
    p.set_defaults(func=_run_langevin)


def _add_compress_parser(commands) -> None:
    p = commands.add_parser(
        "compress", help="compression bound: train a network in a random subspace, quantise it, certify it",
        description="Lotfi et al. 2022: theta = theta_0 + P w with a seeded random projection P, w trained, quantised "
        "to a learned codebook and arithmetic-coded; the quantised network is certified with the kl-inverse (or "
        "Catoni) bound, KL = description length x ln 2, every setting of the declared grid (--d x --levels x "
        "--settings-looked-at) paid for in bits. Checkpoints in OUT/checkpoints/: re-running the same command resumes.")
    _add_run_flags(p, "results/compress-<dataset>/")
    for section, title in (("data", "data"), ("model", "network"), ("start", "theta_0"), ("subspace", "subspace"),
                           ("quantize", "quantisation"), ("certificate", "certificate"), (None, "seed")):
        keys = [s.key for s in CompressConfig.settings() if s.section == section]
        add_flags(p.add_argument_group(title) if section else p, CompressConfig(), keys=keys)
    p.set_defaults(func=_run_compress)


def _add_record_parsers(commands) -> None:
    p = commands.add_parser(
        "reproduce", help="run a paper's protocol by name (--list shows them)",
        description="Run a named protocol (a paper's settings on data available offline), writing each run's record "
        "into OUT/<run>/ and a table into OUT/table.md. Re-running resumes.")
    p.add_argument("name", nargs="?", default=None, help="the protocol (see --list)")
    p.add_argument("--list", action="store_true", help="list the protocols and exit")
    p.add_argument("--epochs-scale", type=float, default=1.0,
                   help="multiply every epoch count (e.g. 0.2 for a quick version; at least 1 epoch) (default: 1)")
    _add_run_flags(p, "results/reproduce/<name>/")
    p.set_defaults(func=_run_reproduce)
    p = commands.add_parser(
        "report", help="bound tables from result records (markdown, LaTeX, CSV, JSON)",
        description="One row per run result (or per group with --group-by) from every record under the given "
        "folders. Bounds are rounded up; malformed records are skipped with one line each.")
    p.add_argument("results", nargs="+", help="folders or record files")
    p.add_argument("--filter", action="append", type=row_filter, default=[], metavar="FIELD=PATTERN",
                   help=f"keep only the rows whose FIELD ({' '.join(REPORT_FIELDS)}) prints as PATTERN, shell "
                   "wildcards allowed (e.g. dataset=fashion-mnist, source='masks/*'); repeat to keep rows matching "
                   "all (default: every row)")
    p.add_argument("--group-by", nargs="+", default=None, metavar="FIELD",
                   help="group rows by these fields (dataset model prior bound source) and always by n: numbers "
                   "are averaged, so a group's row is a mean, not a certificate; groups mixing different bounds "
                   "are refused (default: none, one row per result)")
    _add_format(p, default="markdown")
    p.set_defaults(func=_run_report)
    p = commands.add_parser(
        "figures", help="every paper figure from result records (PNG and PDF)",
        description="Regenerate the figures from stored records only: the role of data, objectives, "
        "CMI bounds versus n, training curves.")
    p.add_argument("results", help="folder of records")
    p.add_argument("out", help="folder for the figures")
    p.set_defaults(func=_run_figures)


def _add_bench_parser(commands) -> None:
    p = commands.add_parser(
        "bench", help="the speed suite on the devices JAX sees, within a time budget (bench.json, bench.md)",
        description="Run the benchmark items one after the other, each in its own process under its own time limit "
        "inside --budget-s; an item that does not fit is skipped and says so. Each result is written to "
        "OUT/bench.json and OUT/bench.md as it finishes; re-running with the same --out keeps finished items.")
    p.add_argument("--out", default=None, help="output folder (default: results/bench/)")
    p.add_argument("--budget-s", type=float, default=420.0, help="seconds for the whole suite (default: 420)")
    p.add_argument("--smoke", action="store_true", help="every item at tiny sizes (a CPU check of the suite)")
    p.add_argument("--force", action="store_true", help="run every item again, also those already done in --out")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX files or .npz (default: the library's "
                   "location)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Certified generalization bounds: PAC-Bayes and CMI.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_bound_parsers(commands)
    _add_experiment_parsers(commands)
    _add_compress_parser(commands)
    _add_record_parsers(commands)
    _add_bench_parser(commands)
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
