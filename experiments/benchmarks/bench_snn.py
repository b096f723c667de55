"""Stochastic-network benchmark: training throughput, and the two Monte Carlo certificates.

1. Training throughput of a stochastic MLP 784-600-600-k (DR17's T-600²) on 784-dim inputs (and with
   ``--throughput-arch cnn`` of the CNN 32-64-128 on 28x28 images): examples per second of a
   jitted forward + backward step with sampled weights, (i) one weight draw per example
   (local reparameterisation for dense layers, a drawn kernel per example for convolutions),
   (ii) one weight draw per minibatch.
2. On a trained Fashion-MNIST posterior (the checkpoint of a ``genbounds pac-bayes`` run,
   default ``results/fashion-binary-t600``), the time and certified empirical risk of
   (a) m full weight draws over the bound set (default m = 1000) and (b) per-example draws
   with r = 1 and r = 10; the ratio of times is printed.
3. ``--quickstart``: one ``genbounds quickstart`` run as it ships (:func:`genbounds.experiments.
   pac_bayes_runner.run_pac_bayes` on :data:`~genbounds.experiments.pac_bayes_runner.QUICKSTART`), its
   seconds per phase (the record's ``timings``) and the XLA compilation time inside them, with the
   processor's vector extensions (``/proc/cpuinfo``) and any ISA restriction of XLA
   (``XLA_FLAGS=--xla_cpu_max_isa=AVX2`` measures an AVX2-only machine on an AVX-512 one), so that a
   regression on either kind of machine shows. ``--arch mlp`` runs the MLP variant
   (``genbounds pac-bayes --arch mlp --prior-dropout 0``); ``--mc-m 1000`` adds certificate (a).

    python -m genbounds.experiments.benchmarks.bench_snn [--run results/fashion-binary-t600] [--m 1000]
    python -m genbounds.experiments.benchmarks.bench_snn --throughput-arch mlp-600-600 cnn --steps 5 --skip-certificates
    XLA_FLAGS=--xla_cpu_max_isa=AVX2 python -m genbounds.experiments.benchmarks.bench_snn --quickstart [--arch mlp]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import tempfile
import time
from pathlib import Path

import jax
import optax
from jax import monitoring

from ...bounds import format_upper, sample_convergence
from ...estimators import nets, snn
from ...estimators.data import load
from ...estimators.devices import batch_sharding, data_mesh, replicated
from ...estimators.steps import compile_epoch
from ..pac_bayes_runner import QUICKSTART, PacBayesConfig, phase_table, run_pac_bayes

#: x86 vector extensions worth naming (in this order) when they appear in /proc/cpuinfo's flags.
VECTOR_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
                     "avx512_bf16", "amx_tile")
#: The event JAX reports for each XLA compilation (seconds).
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _throughput(batch: int, steps: int, num_classes: int, arch: str = "mlp-600-600") -> dict:
    """Examples/s of posterior training as it ships: :func:`genbounds.estimators.snn.posterior_step`
    (quad objective, SGD with momentum) run by the compiled epoch
    (:func:`genbounds.estimators.steps.compile_epoch`, ``steps`` minibatches of ``batch`` over
    device-resident data, split over the local devices), with per-example draws and with one draw
    per minibatch. The first epoch (compilation) is not timed."""
    shape = (28, 28, 1)
    net = nets.mlp(shape, (600, 600), num_classes) if arch == "mlp-600-600" else nets.cnn(shape, num_classes)
    mean = net.init(jax.random.PRNGKey(0))
    prior = snn.Prior(mean, 0.03)
    m = batch * steps
    mesh = data_mesh()
    x = replicated(mesh, jax.random.uniform(jax.random.PRNGKey(1), (m, 28, 28, 1)))
    y = replicated(mesh, jax.random.randint(jax.random.PRNGKey(2), (m,), 0, num_classes))
    out = {}
    for mode, independent in (("per-example draws", True), ("one draw per minibatch", False)):
        train = snn.posterior_step(net, prior, optimizer=optax.sgd(1e-3, momentum=0.9), objective_name="quad",
                                   n_bound=60000, independent=independent)
        epoch = compile_epoch(train.step, m=m, batch_size=batch, sharding=batch_sharding(mesh, batch))
        state, _ = epoch(replicated(mesh, train.init(snn.init_posterior(mean, 0.03))), jax.random.PRNGKey(0), x, y)
        jax.block_until_ready(state)
        t0 = time.perf_counter()
        state, _ = epoch(state, jax.random.PRNGKey(1), x, y)
        jax.block_until_ready(state)
        out[mode] = m / (time.perf_counter() - t0)
    return out


def vector_extensions(cpuinfo: str) -> list[str]:
    """The :data:`VECTOR_EXTENSIONS` in the first ``flags`` line of ``cpuinfo`` (the text of /proc/cpuinfo;
    empty where there is none)."""
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    have = set(line.partition(":")[2].split())
    return [x for x in VECTOR_EXTENSIONS if x in have]


def isa_restriction(xla_flags: str | None) -> str | None:
    """The ISA that ``--xla_cpu_max_isa`` in ``xla_flags`` (the XLA_FLAGS variable) restricts XLA's CPU code to,
    upper-cased, or None."""
    found = re.findall(r"--xla_cpu_max_isa=(\S+)", xla_flags or "")
    return found[-1].upper() if found else None


def machine_line(cpuinfo: str, xla_flags: str | None, cores: int | None) -> str:
    """One line: the processor's model name, its cores, its vector extensions and XLA's ISA restriction."""
    model = next((ln.partition(":")[2].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
                 "unknown processor")
    isa = isa_restriction(xla_flags)
    limit = "XLA uses all of them" if isa is None else f"XLA restricted to {isa} (XLA_FLAGS --xla_cpu_max_isa)"
    return (f"CPU: {model}, {cores} cores; vector extensions: {' '.join(vector_extensions(cpuinfo)) or 'unknown'}; "
            f"{limit}")


def _quickstart(arch: str, mc_m: int, out: str | None) -> None:
    """Run the quickstart (or its MLP variant) once, in ``out`` or a fresh folder, and print its phases."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    print(machine_line(cpuinfo, os.environ.get("XLA_FLAGS"), os.cpu_count()))
    cfg = QUICKSTART.replace(mc_m=mc_m)
    if arch == "mlp":
        cfg = cfg.replace(arch="mlp", prior_dropout=0.0)
    compiled: list[float] = []
    monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kw: compiled.append(seconds) if event == COMPILE_EVENT else None)
    folder = out or tempfile.mkdtemp(prefix="bench-quickstart-")
    record = run_pac_bayes(cfg, folder, progress=False, log=lambda message: None)
    res = record.results[0]
    print(f"{'quickstart' if arch == 'cnn' else 'MLP variant'} ({res.certificate.details['arch']}, config "
          f"{cfg.digest()}) in {folder}; load average {os.getloadavg()[0]:.2f}")
    print(phase_table(record.timings, cfg.objectives))
    print(f"XLA compilation: {len(compiled)} programs, {sum(compiled):.1f} s of the {record.timings['total_s']:.1f} s")
    extra = "" if res.certificate_excess is None else f", combined {format_upper(res.certificate_excess.value, 5)}"
    print(f"certificate (b) {format_upper(res.certificate.value, 5)}{extra}, stochastic test error "
          f"{res.test_error_stochastic:.4f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="results/fashion-binary-t600",
                        help="output folder of a pac-bayes run")
    parser.add_argument("--m", type=int, default=1000, help="weight draws for method (a)")
    parser.add_argument("--extrapolate-to", type=int, default=None, metavar="M",
                        help="also report (a)'s time scaled linearly to M draws (it is M independent passes)")
    parser.add_argument("--batch", type=int, nargs="+", default=[256],
                        help="minibatch sizes to time (several: find the one that fills the device)")
    parser.add_argument("--steps", type=int, default=50, help="minibatches per timed epoch")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--throughput-arch", nargs="+", choices=("mlp-600-600", "cnn"), default=["mlp-600-600"])
    parser.add_argument("--skip-certificates", action="store_true", help="only the training throughput")
    parser.add_argument("--quickstart", action="store_true",
                        help="only: one quickstart run, its seconds per phase, the CPU's vector extensions")
    parser.add_argument("--arch", choices=("cnn", "mlp"), default="cnn",
                        help="--quickstart: the CNN quickstart or its MLP variant")
    parser.add_argument("--mc-m", type=int, default=QUICKSTART.mc_m,
                        help="--quickstart: weight draws of certificate (a) (default: the quickstart's, 0: none)")
    parser.add_argument("--out", default=None, help="--quickstart: output folder (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    if args.quickstart:
        _quickstart(args.arch, args.mc_m, args.out)
        return

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s)")
    if not args.skip_throughput:
        for arch in args.throughput_arch:
            for batch in args.batch:
                for mode, rate in _throughput(batch, args.steps, 10, arch).items():
                    print(f"{arch.upper()} stochastic training, batch {batch}, {mode}: {rate:,.0f} examples/s")
    if args.skip_certificates:
        return

    run = Path(args.run)
    record = json.loads((run / "record.json").read_text())
    cfg = PacBayesConfig.from_dict(record["config"])
    # The checkpoint folder whose stored config is the record's (digests change when fields are added).
    ckpt = next(d for d in (run / "checkpoints").iterdir()
                if json.loads((d / "config.json").read_text()) == record["config"])
    prior_files = [ckpt / "prior.pkl", run / "checkpoints" / f"prior-{cfg.prior_digest()}.pkl"]
    with open(next(p for p in prior_files if p.exists()), "rb") as f:
        prior_ckpt = pickle.load(f)
    obj = cfg.objectives[0]
    with open(ckpt / f"{obj}.state.pkl", "rb") as f:
        state = pickle.load(f)["state"]
    data = load(cfg.dataset, cfg.data_dir, binary=cfg.binary, seed=cfg.seed)
    shape, k = data.train.x.shape[1:], data.train.num_classes
    net = nets.mlp(shape, cfg.widths, k) if cfg.arch == "mlp" else nets.cnn(shape, k)
    post = state.posterior
    prior = snn.Prior(prior_ckpt["mean"], cfg.prior_scale, cfg.family, prior_ckpt["indices"])
    bset, _ = snn.bound_set(data.train, prior)
    n = len(bset)
    print(f"\nposterior of {run} ({cfg.dataset}, {net.name}, objective {obj}); bound set n = {n}, "
          f"delta' = {cfg.mc_delta}")
    rows = []
    for label, fn, count in (
        ("(b) per-example, r = 1", lambda: snn.mc_independent(net, post, cfg.family, bset, r=1,
                                                                   key=jax.random.PRNGKey(11)), n),
        ("(b) per-example, r = 10", lambda: snn.mc_independent(net, post, cfg.family, bset, r=10,
                                                                    key=jax.random.PRNGKey(12)), 10 * n),
        (f"(a) weight draws, m = {args.m}", lambda: snn.mc_weight_samples(
            net, post, cfg.family, bset, m=args.m, key=jax.random.PRNGKey(13)), args.m),
    ):
        t0 = time.perf_counter()   # includes the one compilation a user pays too
        mc = fn()
        seconds = time.perf_counter() - t0
        cert = float(sample_convergence(mc.zero_one, count, cfg.mc_delta))
        rows.append((label, seconds, mc.zero_one, cert))
        print(f"  {label:28s} {seconds:8.1f} s   MC estimate {mc.zero_one:.5f}   certified <= {format_upper(cert, 5)}"
              f"   (slack {cert - mc.zero_one:.5f})")
    t_b10, t_a = rows[1][1], rows[2][1]
    if args.extrapolate_to:
        t_a = t_a * args.extrapolate_to / args.m
        cert = float(sample_convergence(rows[2][2], args.extrapolate_to, cfg.mc_delta))
        print(f"  (a) at m = {args.extrapolate_to}, time extrapolated linearly from m = {args.m}: {t_a:.1f} s; "
              f"its certificate for the same estimate would be {format_upper(cert, 5)}")
    print(f"  time (a) / time (b, r = 10) = {t_a / t_b10:.1f}x   (target >= 30x); "
          f"(b, r = 10) certified minus its estimate = {rows[1][3] - rows[1][2]:.5f} (target <= 0.005)")


if __name__ == "__main__":
    main()
