"""The ``genbounds`` command line (also ``python -m genbounds``): parsers and dispatch.

The flags of the experiments, the bound calculators, ``reproduce``, ``report`` and ``bench`` are
generated from their configs' settings (:func:`genbounds.experiments.config.add_flags`); what a
command does beyond parsing is its runner's or :mod:`genbounds.experiments.commands`', and the
text it prints is :mod:`genbounds.experiments.summary`'s. Bad input gives a one-line
``genbounds: error: ...`` message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .estimators.devices import is_main_process
from .experiments import commands as C
from .experiments.cmi_runner import CMIConfig, bounds_from_npz, run_cmi
from .experiments.compress_runner import CompressConfig, compress_text, run_compress
from .experiments.config import add_flags, digits, from_args
from .experiments.langevin_runner import LangevinConfig, run_langevin_experiment
from .experiments.pac_bayes_runner import QUICKSTART, PacBayesConfig, run_pac_bayes
from .experiments.plots import make_run_figure
from .experiments.report import FORMATS
from .experiments.summary import (
    bound_cmi_text,
    calculator_text,
    cmi_text,
    compression_calculator_text,
    langevin_text,
    pac_bayes_text,
)
from .paper_figures import make_all

__all__ = ["PROG", "build_parser", "main"]


def _log_to_stderr(message: str) -> None:
    """Progress messages of a run go to stderr, so stdout holds only the command's table."""
    print(message, file=sys.stderr, flush=True)


def _note(message: str) -> None:
    """A note of the command itself (a record skipped, a figure not made), to stderr."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


PROG = "genbounds"


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
    certs = C.run_pac_bayes_calculator(from_args(C.PacBayesCalculatorConfig(), args), save=args.save)
    if args.format == "json":
        return json.dumps({c.bound: c.to_dict() for c in certs}, indent=2)
    return calculator_text(certs, args.format, args.digits)


def _run_bound_compression(args: argparse.Namespace) -> str:
    cert = C.run_compression_calculator(from_args(C.CompressionCalculatorConfig(), args))
    return cert.to_json(indent=2) if args.format == "json" else compression_calculator_text(cert, args.digits)


def _run_pac_bayes(args: argparse.Namespace) -> str:
    cfg = from_args(QUICKSTART if args.command == "quickstart" else PacBayesConfig(), args)
    out = Path(args.out or f"results/{args.command}")
    record = run_pac_bayes(cfg, out, progress=not args.no_progress, log=_log_to_stderr)
    return pac_bayes_text(record, cfg, out, make_run_figure(record, out / "certificates.png"), args.format)


def _run_bound_cmi(args: argparse.Namespace) -> str:
    cfg = from_args(C.BoundCMIConfig(), args)
    res, loo = bounds_from_npz(cfg.runs, miller_madow=cfg.miller_madow)
    if args.format == "json":
        return json.dumps(res.to_dict(), indent=2)
    return bound_cmi_text(res, loo, args.format, args.digits)


def _run_cmi(args: argparse.Namespace) -> str:
    C.start_processes(from_args(C.ProcessesConfig(), args))
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
    return C.reproduce(from_args(C.ReproduceConfig(), args), args.out, args.format, progress=not args.no_progress,
                     log=_log_to_stderr)


def _run_report(args: argparse.Namespace) -> str:
    return C.report(from_args(C.ReportConfig(), args), args.format, args.digits, log=_note)


def _run_bench(args: argparse.Namespace) -> str:
    return C.bench(from_args(C.BenchConfig(), args), args.out, progress=not args.no_progress, log=_log_to_stderr)


def _run_figures(args: argparse.Namespace) -> str:
    for name in ("results", "out"):
        if not getattr(args, name).strip():
            raise ValueError(f"argument {name}: must be a folder, not an empty path")
    if not Path(args.results).is_dir():
        raise ValueError(f"argument results: {args.results} is not a folder of records")
    C.output_folder(args.out, "out")
    files, notes = make_all(args.results, args.out)
    for n in notes:
        _note(n)
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
    add_flags(p, C.PacBayesCalculatorConfig())
    p.add_argument("--save", default=None, metavar="FILE", help="also write a result record (JSON) here "
                   "(default: none)")
    _add_format(p)
    p.set_defaults(func=_run_bound_pac_bayes)
    p = sub.add_parser("compression", help="compression bound of a quantised network from its errors and code length",
                       description="Certify the risk of a deterministic (quantised) network described by a prefix-free "
                       "message of --bits bits: a point mass under the code prior 2^-bits (Lotfi et al. 2022).")
    add_flags(p, C.CompressionCalculatorConfig())
    _add_format(p)
    p.set_defaults(func=_run_bound_compression)
    p = sub.add_parser(
        "cmi", help="every CMI bound from your own supersample runs (an .npz file)",
        description="Estimate every CMI bound from runs trained with any code. The .npz holds 'masks' [k1, k2, n] "
        "(0/1: member of pair i used for training), 'predictions' [k1, k2, n, 2] (predicted class on both members) "
        "and 'labels' [k1, n, 2]. Leave-one-out runs instead hold 'held_out' [k1, R] (index in [0, n] of the point "
        "run r left out), 'predictions' [k1, R, n+1] and 'labels' [k1, n+1].")
    add_flags(p, C.BoundCMIConfig())
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
    add_flags(full, PacBayesConfig(), groups={"data": "data", "model": "network", "prior": "prior",
                                              "posterior": "posterior", "certificate": "certificates"})
    p = commands.add_parser(
        "cmi", help="supersample experiment: populations of models, every CMI bound per n",
        description="Train k1 supersamples x k2 masks per n as vmapped populations and estimate every CMI bound. "
        "Finished chunks are saved: re-running the same command resumes.")
    _add_run_flags(p, "results/cmi-<dataset>/")
    add_flags(p, CMIConfig())
    add_flags(p.add_argument_group(C.PROCESSES_TITLE), C.ProcessesConfig())
    p.set_defaults(func=_run_cmi)
    p = commands.add_parser(
        "langevin", help="full-batch Langevin dynamics: bound estimates along the trajectory vs the gap",
        description="k1 outer draws (n - 1 shared points and a pair) x k2 Langevin runs (U_J antithetic); at every "
        "checkpoint the Haghifam et al. 2020 CMI bound (hypothesis test) and the Negrea et al. 2019 leave-one-out "
        "bound, with the measured gap. Finished draws are saved: re-running resumes.")
    _add_run_flags(p, "results/langevin-<dataset>/")
    add_flags(p, LangevinConfig())
    p.set_defaults(func=_run_langevin)
    p = commands.add_parser(
        "compress", help="compression bound: train a network in a random subspace, quantise it, certify it",
        description="Lotfi et al. 2022: theta = theta_0 + P w with a seeded random projection P, w trained, quantised "
        "to a learned codebook and arithmetic-coded; the quantised network is certified with the kl-inverse (or "
        "Catoni) bound, KL = description length x ln 2, every setting of the declared grid (--d x --levels x "
        "--settings-looked-at) paid for in bits. Checkpoints in OUT/checkpoints/: re-running the same command resumes.")
    _add_run_flags(p, "results/compress-<dataset>/")
    add_flags(p, CompressConfig(), groups={"data": "data", "model": "network", "start": "theta_0",
                                           "subspace": "subspace", "quantize": "quantisation",
                                           "certificate": "certificate"})
    p.set_defaults(func=_run_compress)


def _add_record_parsers(commands) -> None:
    p = commands.add_parser(
        "reproduce", help="run a paper's protocol by name (--list shows them)",
        description="Run a named protocol (a paper's settings on data available offline), writing each run's record "
        "into OUT/<run>/ and a table into OUT/table.md. Re-running resumes.")
    add_flags(p, C.ReproduceConfig())
    _add_run_flags(p, "results/reproduce/<name>/")
    p.set_defaults(func=_run_reproduce)
    p = commands.add_parser(
        "report", help="bound tables from result records (markdown, LaTeX, CSV, JSON)",
        description="One row per run result (or per group with --group-by) from every record under the given "
        "folders. Bounds are rounded up; malformed records are skipped with one line each.")
    add_flags(p, C.ReportConfig())
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
    add_flags(p, C.BenchConfig())
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Certified generalization bounds: PAC-Bayes and CMI.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_bound_parsers(commands)
    _add_experiment_parsers(commands)
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
