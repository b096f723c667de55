"""The whole speed story in one command: ``genbounds bench --out DIR [--budget-s 420] [--smoke]``.

Runs the items of :data:`ITEMS` one after the other on whatever devices JAX sees, each in a fresh
process (its own compilation cache and device memory) under its own time limit,
``min(limit, what is left of the budget)``. An item that would not fit in what is left is skipped
with the reason. Each item's result goes into ``DIR/bench.json`` (and the table into
``DIR/bench.md``) as soon as it finishes, and what a timed-out item measured before its limit is
kept; a rerun with the same ``--out`` keeps the finished items and runs the others (``--force``:
all again). Compilation and steady-state time are reported apart: by XLA's own compile events
(:data:`~genbounds.experiments.benchmarks.bench_snn.COMPILE_EVENT`) or ahead-of-time
``.lower().compile()`` timing, and a second, compiled, call.

Items (full sizes: the published protocols' where they fit the budget; ``--smoke``: tiny sizes that
run on a CPU in well under 3 minutes, so a GPU run cannot fail on a typo):

1. ``pbb_fashion_fcn``: ``genbounds reproduce pbb-fashion-fcn`` end to end (prior, posterior,
   certificate (b)): wall time, XLA compile time, the certificate.
2. ``posterior_training``: MLP 600-600 and CNN 32-64-128 stochastic posterior training
   (:func:`genbounds.estimators.snn.posterior_step` run by
   :func:`genbounds.estimators.steps.compile_epoch`), examples/s at batch 256 and 1024, FLOPs and
   bytes per example from XLA's cost analysis of one step, the fraction of the device's peaks.
3. ``certificate_b``: :func:`genbounds.estimators.snn.mc_independent` at r = 10 on 60,000
   examples, draws/s (an untrained posterior on synthetic inputs: a speed, not a certificate).
4. ``cmi_population``: ``genbounds cmi`` (:func:`genbounds.experiments.cmi_runner.run_cmi`), CNN on
   Fashion-MNIST pullover vs coat, one draw of k2 = 30 runs at each n in {75, 250, 1000, 4000}:
   runs/s, and the time of the protocol's 5 x 30 runs at every n (600 runs, 200 epochs) projected
   from them (steady-state time scales with the epochs).
5. ``mlp_population``: the MLP population (:func:`genbounds.estimators.supersample.train_population`)
   against a sequential loop over one jitted step (``bench_population``'s), MNIST 4 vs 9.
6. ``langevin_population``: :func:`genbounds.estimators.iterative.pair_population` vmapped against
   run by run, at the sizes of the speed page (``bench_langevin``'s).
7. ``quickstart``: ``genbounds quickstart`` as it ships.

Targets (:data:`TARGETS`) are checked on full sizes; bench.md says by how much one is missed, and
why, from the measured figures (:func:`diagnose`: compile-bound, memory-bound, compute-bound or
launch-bound).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import monitoring

from ...bounds import format_upper, sample_convergence
from ...estimators import nets, snn
from ...estimators import supersample as S
from ...estimators.data import Dataset, binary_task
from ...estimators.devices import batch_sharding, data_mesh, replicated
from ...estimators.iterative import pair_population
from ...estimators.progress import Progress
from ...estimators.steps import compile_epoch, constant_schedule, steps_per_epoch
from ..cmi_runner import CMIConfig, run_cmi, task_net
from ..config import CMIArch, OptimizerName
from ..pac_bayes_runner import QUICKSTART, run_pac_bayes
from ..recipes import RECIPES, run_recipe
from ..records import write_atomic, write_json_atomic
from .bench_population import _sequential
from .bench_snn import COMPILE_EVENT, machine_line

__all__ = ["Size", "Status", "DevicePeak", "PEAKS", "device_peak", "peak_fractions", "ItemResult", "Item", "Context",
           "Target", "TARGETS", "ITEMS", "SUMMARY", "summary_rows", "diagnose", "run_suite", "bench_markdown",
           "subprocess_runner", "run_bench"]

SCHEMA = "genbounds-bench/1"


class Size(StrEnum):
    """The sizes an item runs at: the protocols' (``full``) or tiny ones for a CPU check (``smoke``)."""

    FULL = "full"
    SMOKE = "smoke"


class Status(StrEnum):
    """How an item ended."""

    DONE = "done"
    SKIPPED = "skipped"
    TIMED_OUT = "timed out"
    FAILED = "failed"


# ---------------------------------------------------------------------------------------------------
# Hardware limits


@dataclass(frozen=True)
class DevicePeak:
    """A device's dense peak arithmetic (TFLOP/s, no 2:4 sparsity) and memory bandwidth (TB/s), from the
    vendor's data sheet (``source``). TF32 and BF16 are tensor-core figures; FP32 is the non-tensor rate."""

    name: str
    fp32_tflops: float
    tf32_tflops: float
    bf16_tflops: float
    hbm_tb_s: float
    source: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


_H200 = ("https://nvdam.widen.net/s/nb5zzzsjdf/hpc-datasheet-sc23-h200-datasheet-3002446 (NVIDIA H200 Tensor Core "
         "GPU data sheet; its TF32/BF16 figures are with sparsity, halved here)")
_H100 = ("https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet (NVIDIA H100 Tensor Core "
         "GPU data sheet; its TF32/BF16 figures are with sparsity, halved here)")
_A100 = ("https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
         "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf (NVIDIA A100 Tensor Core GPU data sheet)")

#: (words that must all appear in ``jax.Device.device_kind``, case-insensitive; the peak), most specific first.
PEAKS: tuple[tuple[tuple[str, ...], DevicePeak], ...] = (
    (("h200", "nvl"), DevicePeak("NVIDIA H200 NVL", 60.0, 417.5, 835.5, 4.8, _H200)),
    (("h200",), DevicePeak("NVIDIA H200 SXM", 67.0, 494.7, 989.4, 4.8, _H200)),
    (("h100", "nvl"), DevicePeak("NVIDIA H100 NVL", 60.0, 417.5, 835.5, 3.9, _H100)),
    (("h100", "pcie"), DevicePeak("NVIDIA H100 PCIe", 51.0, 378.0, 756.5, 2.0, _H100)),
    (("h100",), DevicePeak("NVIDIA H100 SXM", 67.0, 494.7, 989.4, 3.35, _H100)),
    (("a100", "80gb", "pcie"), DevicePeak("NVIDIA A100 80GB PCIe", 19.5, 156.0, 312.0, 1.935, _A100)),
    (("a100", "80gb"), DevicePeak("NVIDIA A100 80GB SXM", 19.5, 156.0, 312.0, 2.039, _A100)),
    (("a100",), DevicePeak("NVIDIA A100 40GB", 19.5, 156.0, 312.0, 1.555, _A100)),
)


def device_peak(kind: str) -> DevicePeak | None:
    """The :data:`PEAKS` entry for a device kind (``jax.devices()[0].device_kind``), or None (CPUs, unknown
    devices: fractions of peak are then omitted)."""
    low = kind.lower()
    return next((peak for words, peak in PEAKS if all(w in low for w in words)), None)


def peak_fractions(flops_per_s: float | None, bytes_per_s: float | None, peak: DevicePeak | None) -> dict:
    """Achieved FLOP/s over the fp32, tf32 and bf16 peaks, and achieved bytes/s over the HBM bandwidth
    (``*_fraction`` keys; none without a peak or a figure)."""
    if peak is None:
        return {}
    out = {}
    if flops_per_s is not None:
        out.update(fp32_fraction=flops_per_s / (peak.fp32_tflops * 1e12),
                   tf32_fraction=flops_per_s / (peak.tf32_tflops * 1e12),
                   bf16_fraction=flops_per_s / (peak.bf16_tflops * 1e12))
    if bytes_per_s is not None:
        out["hbm_fraction"] = bytes_per_s / (peak.hbm_tb_s * 1e12)
    return out


def environment() -> dict:
    """What the item ran on: JAX version, backend, device kind and count, device memory, the peak table's
    entry (or why there is none), and on CPU the processor line of ``bench_snn``."""
    dev = jax.devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    peak = device_peak(dev.device_kind)
    env = {"jax_version": jax.__version__, "backend": jax.default_backend(), "device_kind": dev.device_kind,
           "device_count": jax.device_count(), "memory_bytes": (stats or {}).get("bytes_limit"),
           "peak": peak.to_dict() if peak else None,
           "peak_reason": "" if peak else f"no data-sheet peak for device kind {dev.device_kind!r}: fractions of "
           "peak omitted"}
    if dev.platform == "cpu":
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        env["cpu"] = machine_line(cpuinfo, os.environ.get("XLA_FLAGS"), os.cpu_count())
    return env


# ---------------------------------------------------------------------------------------------------
# Results and the context an item runs in


def _plain(x: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, NaN/inf to None."""
    if isinstance(x, (np.generic,)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome: status, wall seconds (process start included) under ``limit_s``, its figures
    (flat ``key -> number``; ``.../compile_s`` and ``.../steady_s`` apart), notes, why it was skipped or
    failed, and the environment it ran in."""

    name: str
    status: Status
    seconds: float
    limit_s: float
    figures: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    reason: str = ""
    environment: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "figures", MappingProxyType({k: _plain(v) for k, v in self.figures.items()}))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))

    def to_dict(self) -> dict:
        return {"name": self.name, "status": str(self.status), "seconds": self.seconds, "limit_s": self.limit_s,
                "figures": dict(self.figures), "notes": list(self.notes), "reason": self.reason,
                "environment": dict(self.environment)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ItemResult:
        return cls(d["name"], Status(d["status"]), d["seconds"], d["limit_s"], d.get("figures", {}),
                   tuple(d.get("notes", ())), d.get("reason", ""), d.get("environment", {}))


_compiled_seconds: list[float] = []
_listening: list[bool] = []


def _on_event(event: str, seconds: float, **kwargs) -> None:
    if event == COMPILE_EVENT:
        _compiled_seconds.append(seconds)


def compile_seconds() -> float:
    """Seconds of XLA compilation in this process so far (JAX's compile events); differences of two
    readings time the compilation inside a call."""
    if not _listening:
        monitoring.register_event_duration_secs_listener(_on_event)
        _listening.append(True)
    return float(sum(_compiled_seconds))


class Context:
    """What an item function gets: the size, a deadline, a fresh work folder, the data folder, whether to
    show progress; :meth:`record` and :meth:`note` write what was measured to ``partial`` at once, so an
    item stopped at its limit keeps its figures."""

    def __init__(self, size: Size, limit_s: float, work: Path, partial: Path | None = None,
                 data_dir: str | None = None, progress: bool = False, clock: Callable[[], float] = time.monotonic):
        self.size, self.work, self.partial, self.data_dir, self.progress = Size(size), Path(work), partial, data_dir, \
            progress
        self.clock = clock
        self.deadline = clock() + limit_s
        self.figures: dict[str, Any] = {}
        self.notes: list[str] = []
        self.environment: dict[str, Any] = {}
        compile_seconds()

    def left(self) -> float:
        """Seconds until the item's limit."""
        return self.deadline - self.clock()

    def fits(self, part: str, need_s: float) -> bool:
        """Whether ``need_s`` more seconds fit before the limit; if not, a note says ``part`` was skipped."""
        if need_s <= self.left():
            return True
        self.note(f"{part} skipped: needs about {need_s:.0f} s, {max(self.left(), 0):.0f} s of the item's limit left")
        return False

    def record(self, key: str, value: Any) -> None:
        self.figures[key] = _plain(value)
        self.flush()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.flush()

    def flush(self, complete: bool = False) -> None:
        """Write the figures, notes and environment to ``partial`` (``complete``: the item finished)."""
        if self.partial is not None:
            write_json_atomic(self.partial, {"figures": self.figures, "notes": self.notes,
                                             "environment": self.environment, "complete": complete})


# ---------------------------------------------------------------------------------------------------
# Timing helpers


def _cost(compiled: Any) -> dict:
    """XLA's cost analysis of a compiled program (``flops``, ``bytes accessed``); {} where the backend has none."""
    try:
        cost = compiled.cost_analysis()
    except Exception:                                   # some backends raise instead of returning nothing
        return {}
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return dict(cost or {})


def _per_step_cost(epoch_cost: Mapping[str, float], step_flops: float | None, steps: int) -> dict:
    """One step's ``flops`` and ``bytes accessed`` from the cost analysis of a compiled epoch (a ``lax.scan``
    of ``steps`` steps). XLA's analysis counts a loop's body once, which the FLOPs of one lowered step
    (``step_flops``, before optimisation, no compilation needed) confirm: where the epoch's FLOPs are
    instead near ``steps`` times the step's, both figures are divided by ``steps``."""
    flops = epoch_cost.get("flops")
    if not flops:
        return {}
    per_loop = bool(step_flops) and flops > 0.5 * steps * step_flops and steps > 1
    div = steps if per_loop else 1
    return {k: epoch_cost[k] / div for k in ("flops", "bytes accessed") if epoch_cost.get(k)}


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``fn`` (blocking on its result): (wall seconds, XLA compile seconds inside it, result)."""
    c0, t0 = compile_seconds(), time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - t0, compile_seconds() - c0, out


# ---------------------------------------------------------------------------------------------------
# Items: each a small function of a Context, its sizes per Size


class RecipeSpec(NamedTuple):
    """End-to-end runs: flat config replacements (none at full size)."""

    replace: Mapping[str, Any]


PBB_FCN = {Size.FULL: RecipeSpec({}),
           Size.SMOKE: RecipeSpec({"dataset": "digits", "widths": (32, 32), "prior_epochs": 1, "epochs": 1,
                                   "mc_r": 1})}


def _run_record_figures(ctx: Context, record: dict, wall: float, compiled: float) -> None:
    res = record["results"][0]
    ctx.record("wall_s", wall)
    ctx.record("xla_compile_s", compiled)
    ctx.record("steady_s", wall - compiled)
    ctx.record("compile_share", compiled / wall)
    ctx.record("certificate_b", res["certificate"]["value"])
    if res.get("certificate_excess"):
        ctx.record("certificate_combined", res["certificate_excess"]["value"])
    ctx.record("n_bound", res["certificate"]["n_bound"])
    ctx.record("test_error_stochastic", res["test_error_stochastic"])
    for key, seconds in record.get("timings", {}).items():
        ctx.record(f"phase/{key}", seconds)


def pbb_fashion_fcn(ctx: Context) -> None:
    """``genbounds reproduce pbb-fashion-fcn`` end to end, in a fresh folder (nothing resumed)."""
    recipe = RECIPES["pbb-fashion-fcn"]
    spec = PBB_FCN[ctx.size]
    data_dir = {} if ctx.size is Size.SMOKE or ctx.data_dir is None else {"data_dir": ctx.data_dir}
    runs = tuple((label, cfg.replace(**spec.replace, **data_dir)) for label, cfg in recipe.runs)
    c0, t0 = compile_seconds(), time.perf_counter()
    records = run_recipe(recipe._replace(runs=runs), ctx.work, progress=ctx.progress, log=lambda m: None)
    _run_record_figures(ctx, records[0][1], time.perf_counter() - t0, compile_seconds() - c0)


def quickstart(ctx: Context) -> None:
    """``genbounds quickstart`` as it ships (smoke: 1 + 1 epochs, r = 1), in a fresh folder."""
    cfg = QUICKSTART if ctx.size is Size.FULL else QUICKSTART.replace(prior_epochs=1, epochs=1, mc_r=1)
    c0, t0 = compile_seconds(), time.perf_counter()
    record = run_pac_bayes(cfg, ctx.work, progress=ctx.progress, log=lambda m: None).to_dict()
    _run_record_figures(ctx, record, time.perf_counter() - t0, compile_seconds() - c0)
    ctx.record("cpu_reference_s", QUICKSTART_CPU_S)


class TrainingSpec(NamedTuple):
    archs: tuple[tuple[str, tuple[int, ...] | None], ...]   # (label, MLP widths, or None for the CNN)
    batches: tuple[int, ...]
    steps: int                                               # minibatches per timed epoch
    repeats: int                                             # timed epochs (the fastest is reported)
    modes: tuple[str, ...]                                   # names in MODES


#: Posterior training modes: per-example weight draws (as shipped) and one draw per minibatch.
MODES = {"per-example": True, "per-minibatch": False}

TRAINING = {Size.FULL: TrainingSpec((("mlp-600-600", (600, 600)), ("cnn", None)), (256, 1024), 50, 3,
                                    ("per-example", "per-minibatch")),
            Size.SMOKE: TrainingSpec((("mlp-32-32", (32, 32)),), (8,), 2, 1, ("per-example",))}


def _training_config(ctx: Context, prefix: str, net: nets.Net, batch: int, steps: int, repeats: int,
                     independent: bool, peak: DevicePeak | None) -> None:
    """One posterior-training configuration, as ``bench_snn``'s throughput (quad objective, SGD with
    momentum, 10 classes, n_bound 60,000, 28x28 inputs): the compiled epoch timed ahead of time
    (``.lower().compile()``), a first epoch, then ``repeats`` steady epochs; FLOPs and bytes per example
    from XLA's cost analysis of the compiled epoch (:func:`_per_step_cost`)."""
    mean = net.init(jax.random.PRNGKey(0))
    prior = snn.Prior(mean, 0.03)
    m = batch * steps
    mesh = data_mesh()
    x = replicated(mesh, jax.random.uniform(jax.random.PRNGKey(1), (m, 28, 28, 1)))
    y = replicated(mesh, jax.random.randint(jax.random.PRNGKey(2), (m,), 0, 10))
    train = snn.posterior_step(net, prior, optimizer=optax.sgd(1e-3, momentum=0.9), objective_name="quad",
                               n_bound=60000, independent=independent)
    state = replicated(mesh, train.init(snn.init_posterior(mean, 0.03)))
    step_flops = _cost(jax.jit(train.step).lower(state, jax.random.PRNGKey(3), x[:batch], y[:batch])).get("flops")
    epoch = compile_epoch(train.step, m=m, batch_size=batch, sharding=batch_sharding(mesh, batch))
    t0 = time.perf_counter()
    compiled = epoch.lower(state, jax.random.PRNGKey(0), x, y).compile()
    ctx.record(f"{prefix}/compile_s", time.perf_counter() - t0)
    cost = _per_step_cost(_cost(compiled), step_flops, steps)
    first, _, (state, _) = _timed(lambda: compiled(state, jax.random.PRNGKey(0), x, y))
    ctx.record(f"{prefix}/first_epoch_s", first)
    best = math.inf
    for i in range(repeats):
        seconds, _, (state, _) = _timed(lambda i=i, state=state: compiled(state, jax.random.PRNGKey(1 + i), x, y))
        best = min(best, seconds)
    rate = m / best
    ctx.record(f"{prefix}/steady_s", best)
    ctx.record(f"{prefix}/examples_per_s", rate)
    flops, nbytes = cost.get("flops"), cost.get("bytes accessed")
    if flops:
        ctx.record(f"{prefix}/flops_per_example", flops / batch)
        ctx.record(f"{prefix}/achieved_tflops", flops / batch * rate / 1e12)
    if nbytes:
        ctx.record(f"{prefix}/bytes_per_example", nbytes / batch)
    fractions = peak_fractions(flops / batch * rate if flops else None, nbytes / batch * rate if nbytes else None,
                               peak)
    for key, value in fractions.items():
        ctx.record(f"{prefix}/{key}", value)


def posterior_training(ctx: Context) -> None:
    """Stochastic posterior training throughput, every (architecture, batch, mode) of the spec."""
    spec = TRAINING[ctx.size]
    peak = device_peak(jax.devices()[0].device_kind)
    last = 0.0
    for label, widths in spec.archs:
        shape = (28, 28, 1)
        net = nets.mlp(shape, widths, 10) if widths is not None else nets.cnn(shape, 10)
        for batch in spec.batches:
            for mode in spec.modes:
                independent = MODES[mode]
                prefix = f"{label}/b{batch}/{mode}"
                if not ctx.fits(prefix, last):
                    continue
                t0 = time.perf_counter()
                _training_config(ctx, prefix, net, batch, spec.steps, spec.repeats, independent, peak)
                last = time.perf_counter() - t0


class CertificateSpec(NamedTuple):
    widths: tuple[int, ...]
    n: int
    r: int


CERTIFICATE = {Size.FULL: CertificateSpec((600, 600), 60_000, 10), Size.SMOKE: CertificateSpec((32, 32), 500, 2)}


def certificate_b(ctx: Context) -> None:
    """Certificate (b)'s draws (:func:`snn.mc_independent`) at r draws per example on n synthetic 28x28
    inputs, MLP posterior at its initialisation (std 0.03), 10 classes: a first call (compilation
    included) and a second (steady state). The speed does not depend on the values; the certificate
    recorded is that of this untrained posterior on noise."""
    spec = CERTIFICATE[ctx.size]
    net = nets.mlp((28, 28, 1), spec.widths, 10)
    post = snn.init_posterior(net.init(jax.random.PRNGKey(0)), 0.03)
    rng = np.random.default_rng(0)
    data = Dataset(rng.uniform(0, 1, (spec.n, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, spec.n),
                   num_classes=10)

    def draws(seed: int):
        return snn.mc_independent(net, post, snn.GAUSSIAN, data, r=spec.r, key=jax.random.PRNGKey(seed))

    ctx.record("n", spec.n)
    ctx.record("r", spec.r)
    first, c1, _ = _timed(lambda: draws(11))
    ctx.record("first_call_s", first)                 # kept if the second call runs past the limit
    ctx.record("xla_compile_s", c1)
    steady, c2, mc = _timed(lambda: draws(12))
    draws_n = spec.n * spec.r
    ctx.record("compile_s", first - (steady - c2))
    ctx.record("steady_s", steady - c2)
    ctx.record("draws_per_s", draws_n / (steady - c2))
    ctx.record("estimate_untrained", mc.zero_one)
    ctx.record("certificate_untrained", float(sample_convergence(mc.zero_one, draws_n, 0.01)))


class CMISpec(NamedTuple):
    dataset: str
    classes: tuple[int, int] | None
    n: tuple[int, ...]
    k2: int
    epochs: int
    protocol_k1: int
    protocol_epochs: int


CMI = {Size.FULL: CMISpec("fashion-mnist", (2, 4), (75, 250, 1000, 4000), 30, 50, 5, 200),
       Size.SMOKE: CMISpec("mnist-5k", None, (20,), 2, 1, 5, 200)}


def cmi_population(ctx: Context) -> None:
    """``genbounds cmi`` with the CNN, one draw (k1 = 1) of k2 runs at each n, each n its own run in a
    fresh folder: seconds (XLA compilation apart), runs/s, and completion (no out-of-memory). The
    protocol's time (k1 draws at every n, its epochs) is projected from the steady-state seconds
    (linear in draws and epochs) plus one compilation per n."""
    spec = CMI[ctx.size]
    data_dir = ctx.data_dir if ctx.size is Size.FULL else None
    projected_steady = projected_compile = 0.0
    last_per_step = last_compile = 0.0
    for n in spec.n:
        steps = spec.epochs * steps_per_epoch(n, 128)
        if not ctx.fits(f"n = {n}", last_per_step * steps * 1.2 + last_compile):
            return
        cfg = CMIConfig(dataset=spec.dataset, data_dir=data_dir, classes=spec.classes, arch=CMIArch.CNN, n=(n,),
                        k1=1, k2=spec.k2, epochs=spec.epochs, batch=128, lr=1e-3, optimizer=OptimizerName.ADAM)
        c0, t0 = compile_seconds(), time.perf_counter()
        run_cmi(cfg, ctx.work / f"n{n}", progress=ctx.progress, log=lambda m: None)
        wall, compiled = time.perf_counter() - t0, compile_seconds() - c0
        steady = wall - compiled
        last_per_step, last_compile = steady / steps, compiled
        ctx.record(f"n{n}/wall_s", wall)
        ctx.record(f"n{n}/compile_s", compiled)
        ctx.record(f"n{n}/steady_s", steady)
        ctx.record(f"n{n}/runs_per_s", spec.k2 / steady)
        ctx.record(f"n{n}/completed", 1)
        projected_steady += spec.protocol_k1 * steady * spec.protocol_epochs / spec.epochs
        projected_compile += compiled
    ctx.record("protocol_runs", spec.protocol_k1 * spec.k2 * len(spec.n))
    ctx.record("compile_s", projected_compile)
    ctx.record("steady_s", projected_steady)
    ctx.record("protocol_projected_s", projected_steady + projected_compile)


class PopulationSpec(NamedTuple):
    n: tuple[int, ...]
    k2: int
    epochs: int


MLP_POPULATION = {Size.FULL: PopulationSpec((75, 250), 30, 20), Size.SMOKE: PopulationSpec((20,), 2, 1)}


def mlp_population(ctx: Context) -> None:
    """``bench_population``'s MLP comparison on MNIST 4 vs 9 (batch 128, Adam 1e-3): the vmapped population
    twice (the first call compiles) against its sequential loop over one jitted step; model-steps/s
    and the speed-up, steady state against steady state (the loop's step compilation subtracted)."""
    spec = MLP_POPULATION[ctx.size]
    pool = binary_task("mnist-5k")
    net = task_net(CMIConfig(dataset="mnist-5k", arch=CMIArch.MLP), pool)
    cfg = S.TrainConfig(spec.epochs, 128, optax.adam(1e-3), S.map_batch_for("mlp"))
    for n in spec.n:
        _mlp_population_at(ctx, net, cfg, pool, n, spec.k2)


def _mlp_population_at(ctx: Context, net: nets.Net, cfg: S.TrainConfig, pool: Dataset, n: int, k2: int) -> None:
    sup = S.draw_supersample(jax.random.PRNGKey(0), pool, n)
    px, py, idx = S.supersample_runs(sup, S.draw_masks(jax.random.PRNGKey(1), k2, n))
    keys = jax.random.split(jax.random.PRNGKey(2), k2)
    steps = k2 * cfg.epochs * steps_per_epoch(n, cfg.batch_size)
    first, _, _ = _timed(lambda: S.train_population(net, keys, px, py, idx, cfg, progress=False))
    pop, _, _ = _timed(lambda: S.train_population(net, keys, px, py, idx, cfg, progress=False))
    seq, seq_compile, _ = _timed(lambda: _sequential(net, keys, px, py, idx, cfg))
    ctx.record(f"n{n}/compile_s", first - pop)
    ctx.record(f"n{n}/steady_s", pop)
    ctx.record(f"n{n}/population_steps_per_s", steps / pop)
    ctx.record(f"n{n}/sequential_steps_per_s", steps / (seq - seq_compile))
    ctx.record(f"n{n}/speedup", (seq - seq_compile) / pop)


class LangevinSpec(NamedTuple):
    runs: tuple[tuple[int, int], ...]      # (n, runs)
    steps: int
    width: int


LANGEVIN = {Size.FULL: LangevinSpec(((400, 8), (100, 16)), 100, 100), Size.SMOKE: LangevinSpec(((30, 4),), 10, 16)}


def langevin_population(ctx: Context) -> None:
    """``bench_langevin``'s comparison: :func:`pair_population` vmapped over all runs against called run by
    run, MNIST 4 vs 9, MLP, full-batch steps; both programs compiled ahead of time (timed), then each
    run once to warm up and once timed; model-steps/s and the ratio."""
    spec = LANGEVIN[ctx.size]
    pool = binary_task("mnist-5k")
    net = nets.mlp(pool.x.shape[1:], (spec.width,), 2)
    fn = jax.jit(lambda *a: pair_population(net, *a, schedule=constant_schedule(0.05, 1e3), steps=spec.steps,
                                             every=spec.steps))
    for n, runs in spec.runs:
        _langevin_at(ctx, fn, pool, n, runs, spec.steps)


def _langevin_at(ctx: Context, fn: Callable, pool: Dataset, n: int, runs: int, steps: int) -> None:
    perm = np.random.default_rng(0).permutation(len(pool))
    shared, pair, test = perm[: n - 1], perm[n - 1: n + 1], perm[n + 1: n + 201]
    data = (pool.x[shared], pool.y[shared], pool.x[pair], pool.y[pair])
    tests = (pool.x[test], pool.y[test])
    u = jnp.arange(runs) % 2
    keys = jax.random.split(jax.random.PRNGKey(0), runs)
    t0 = time.perf_counter()
    vmapped = fn.lower(*data, u, keys, *tests).compile()
    t1 = time.perf_counter()
    single = fn.lower(*data, u[:1], keys[:1], *tests).compile()
    t2 = time.perf_counter()

    def population():
        return vmapped(*data, u, keys, *tests)

    def sequential():
        return [single(*data, u[r:r + 1], keys[r:r + 1], *tests) for r in range(runs)]

    _timed(population)                  # warm-up runs
    _timed(sequential)
    t_pop, _, _ = _timed(population)
    t_seq, _, _ = _timed(sequential)
    prefix = f"n{n}_runs{runs}"
    ctx.record(f"{prefix}/compile_s", t1 - t0)
    ctx.record(f"{prefix}/compile_single_s", t2 - t1)
    ctx.record(f"{prefix}/steady_s", t_pop)
    ctx.record(f"{prefix}/vmapped_steps_per_s", runs * steps / t_pop)
    ctx.record(f"{prefix}/sequential_steps_per_s", runs * steps / t_seq)
    ctx.record(f"{prefix}/ratio", t_seq / t_pop)


@dataclass(frozen=True)
class Item:
    """A benchmark item: its function, its time limit and the least time it needs, per :class:`Size`."""

    name: str
    title: str
    run: Callable[[Context], None]
    limit_s: Mapping[Size, float]
    need_s: Mapping[Size, float]


def _sizes(full: float, smoke: float) -> dict[Size, float]:
    return {Size.FULL: full, Size.SMOKE: smoke}


#: The suite, in order. Limits add up to more than the default budget on purpose: an item that finishes
#: early leaves its time to the next; ``need_s`` is the least worth starting with.
ITEMS: tuple[Item, ...] = (
    Item("pbb_fashion_fcn", "pbb-fashion-fcn end to end (prior, posterior, certificate (b))", pbb_fashion_fcn,
         _sizes(90, 120), _sizes(20, 5)),
    Item("posterior_training", "MLP 600-600 and CNN posterior training, examples/s", posterior_training,
         _sizes(90, 120), _sizes(20, 5)),
    Item("certificate_b", "certificate (b), r = 10, 60,000 examples, draws/s", certificate_b,
         _sizes(45, 120), _sizes(10, 5)),
    Item("cmi_population", "CMI population, CNN, Fashion pullover vs coat, 30 runs per n", cmi_population,
         _sizes(150, 120), _sizes(30, 5)),
    Item("mlp_population", "MLP population vs a sequential loop, MNIST 4 vs 9", mlp_population,
         _sizes(60, 120), _sizes(10, 5)),
    Item("langevin_population", "Langevin population, vmapped vs run by run", langevin_population,
         _sizes(45, 120), _sizes(10, 5)),
    Item("quickstart", "genbounds quickstart", quickstart, _sizes(90, 120), _sizes(20, 5)),
)

#: Seconds of ``genbounds quickstart`` on an idle 2-core AMD EPYC with AVX-512 (the README's figure), the CPU
#: time a GPU has to beat.
QUICKSTART_CPU_S = 36.0


# ---------------------------------------------------------------------------------------------------
# Targets and the diagnosis of a miss


@dataclass(frozen=True)
class Target:
    """``figures[key] op value`` for item ``item`` (op ``<=`` or ``>=``)."""

    item: str
    key: str
    label: str
    op: str
    value: float
    unit: str

    def verdict(self, figures: Mapping[str, Any]) -> tuple[str, float | None]:
        """("met", None), ("missed", factor: how many times off) or ("not measured", None)."""
        got = figures.get(self.key)
        if got is None:
            return "not measured", None
        ok = got <= self.value if self.op == "<=" else got >= self.value
        if ok:
            return "met", None
        factor = got / self.value if self.op == "<=" else (self.value / got if got > 0 else math.inf)
        return "missed", factor


TARGETS: tuple[Target, ...] = (
    Target("pbb_fashion_fcn", "wall_s", "pbb-fashion-fcn end to end", "<=", 15.0, "s"),
    Target("posterior_training", "mlp-600-600/b1024/per-example/examples_per_s",
           "MLP 600-600 training, batch 1024, per-example draws", ">=", 1e6, "examples/s"),
    Target("cmi_population", "n4000/completed", "CNN CMI population at n = 4000 without out-of-memory", ">=", 1,
           "run"),
    Target("cmi_population", "protocol_projected_s", "CNN CMI protocol, 600 runs (projected)", "<=", 300.0, "s"),
    Target("quickstart", "wall_s", f"quickstart, against {QUICKSTART_CPU_S:.0f} s on the 2-core CPU", "<=",
           QUICKSTART_CPU_S, "s"),
)


def diagnose(figures: Mapping[str, Any], key: str) -> str:
    """Why a figure is what it is, read off the measured figures of its configuration (same key prefix):

    * compile-bound: compilation took at least as long as the steady-state work (not for a rate,
      ``..._per_s``, which is measured in steady state);
    * memory-bound: bytes moved reach half the HBM bandwidth or more;
    * compute-bound: FLOPs reach half the fp32 peak or more;
    * launch-bound: neither (the device waits on kernel launches and small operations).
    """
    prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    compiled = figures.get(f"{prefix}compile_s", figures.get(f"{prefix}xla_compile_s"))
    steady = figures.get(f"{prefix}steady_s")
    if steady is None and compiled is not None and f"{prefix}wall_s" in figures:
        steady = figures[f"{prefix}wall_s"] - compiled
    if compiled is None or steady is None:
        return "not diagnosed: compile and steady-state time not measured"
    times = f"compile {compiled:.1f} s, steady state {steady:.1f} s"
    if compiled >= steady and not key.endswith("_per_s"):        # a rate is a steady-state figure
        return f"compile-bound: {times}"
    hbm, fp32 = figures.get(f"{prefix}hbm_fraction"), figures.get(f"{prefix}fp32_fraction")
    if hbm is None and fp32 is None:
        return f"not compile-bound ({times}); compute and memory use not measured (no peak figure or cost analysis)"
    use = f"{100 * (fp32 or 0):.1f} % of the fp32 peak, {100 * (hbm or 0):.1f} % of the HBM bandwidth"
    if hbm is not None and hbm >= 0.5:
        return f"memory-bound: {use}; {times}"
    if fp32 is not None and fp32 >= 0.5:
        return f"compute-bound: {use}; {times}"
    return f"launch-bound: neither compute nor memory near peak ({use}); {times}"


# ---------------------------------------------------------------------------------------------------
# The scheduler and the writers

Runner = Callable[[Item, Size, float], ItemResult]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _load(out: Path, size: Size, force: bool) -> dict | None:
    path = out / "bench.json"
    if force or not path.exists():
        return None
    bench = json.loads(path.read_text())
    if bench.get("size") != str(size):
        raise ValueError(f"argument '--out': {out} holds a bench at {bench.get('size')} sizes, not {size}; pass "
                         "--force to replace it, or another --out")
    return bench


def write_bench(out: Path, bench: dict) -> None:
    """``out/bench.json`` and ``out/bench.md``, atomically."""
    write_json_atomic(out / "bench.json", bench)
    write_atomic(out / "bench.md", lambda f: f.write(bench_markdown(bench)))


def run_suite(items: Iterable[Item], out: str | os.PathLike, *, size: Size, budget_s: float, runner: Runner | None,
              force: bool = False, clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] = print,
              targets: tuple[Target, ...] = TARGETS, progress: bool = False) -> dict:
    """Run ``items`` in order within ``budget_s`` seconds; returns the bench (as written to ``out/bench.json``).

    Each item runs under ``min(its limit, what is left)`` by ``runner(item, size, limit_s)``; one whose
    ``need_s`` exceeds what is left is skipped with the reason. Results are written after every item.
    Items already done in ``out/bench.json`` (same size) are kept unless ``force``."""
    if not budget_s > 0:
        raise ValueError(f"argument 'budget_s' must be > 0, got {budget_s!r}")
    items = tuple(items)
    out = Path(out)
    bench = _load(out, size, force) or {"schema": SCHEMA, "size": str(size), "created": _now(), "items": {},
                                        "environment": {}}
    bench.update(budget_s=budget_s, used_s=0.0, updated=_now(),
                 targets=[dataclasses.asdict(t) for t in targets], peaks={p.name: p.to_dict() for _, p in PEAKS})
    start = clock()
    with Progress(len(items), "bench", unit="item", enabled=progress) as bar:
        for item in items:
            prev = bench["items"].get(item.name)
            if prev is not None and prev["status"] == Status.DONE:
                log(f"{item.name}: kept from an earlier run ({prev['seconds']:.0f} s)")
                bar.update(1)
                continue
            left = budget_s - (clock() - start)
            limit = min(item.limit_s[size], left)
            if limit < item.need_s[size]:
                result = ItemResult(item.name, Status.SKIPPED, 0.0, max(limit, 0.0),
                                    reason=f"needs about {item.need_s[size]:.0f} s, {max(left, 0.0):.0f} s of the "
                                    f"{budget_s:.0f} s budget left")
            else:
                log(f"{item.name}: {item.title} (limit {limit:.0f} s)")
                result = runner(item, size, limit)
            bench["items"][item.name] = result.to_dict()
            if result.environment and not bench["environment"]:
                bench["environment"] = dict(result.environment)
            bench["used_s"] = clock() - start
            bench["updated"] = _now()
            write_bench(out, bench)
            log(f"{item.name}: {result.status} in {result.seconds:.1f} s" + (f" ({result.reason})"
                                                                             if result.reason else ""))
            bar.update(1)
    return bench


def _fmt(key: str, value: Any) -> str:
    """A figure as the table prints it: fractions in %, certificates rounded up to 5 decimals, large numbers
    with thousands separators, others to 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key.endswith("_fraction") or key.endswith("_share"):
        return f"{100 * value:.2f} %"
    if key.rsplit("/", 1)[-1].startswith("certificate") and not key.endswith("_s"):
        return format_upper(value, 5)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


#: bench.md's summary, the rows of the speed table in the docs: (label, item, figure keys, template).
SUMMARY: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("`reproduce pbb-fashion-fcn` end to end: s (of which XLA compilation); certificate (b)", "pbb_fashion_fcn",
     ("wall_s", "xla_compile_s", "certificate_b"), "{} s ({} s); {}"),
    ("MLP 600-600 posterior training, batch 256, examples/s: per-example draws / one draw per minibatch",
     "posterior_training", ("mlp-600-600/b256/per-example/examples_per_s",
                            "mlp-600-600/b256/per-minibatch/examples_per_s"), "{} / {}"),
    ("the same at batch 1024; FLOPs per example (per-example draws); fraction of the fp32 peak",
     "posterior_training", ("mlp-600-600/b1024/per-example/examples_per_s",
                            "mlp-600-600/b1024/per-minibatch/examples_per_s",
                            "mlp-600-600/b1024/per-example/flops_per_example",
                            "mlp-600-600/b1024/per-example/fp32_fraction"), "{} / {}; {}; {}"),
    ("CNN 32-64-128 posterior training, batch 256, examples/s: per-example draws / one draw per minibatch",
     "posterior_training", ("cnn/b256/per-example/examples_per_s", "cnn/b256/per-minibatch/examples_per_s"),
     "{} / {}"),
    ("the same at batch 1024; FLOPs per example (per-example draws); fraction of the fp32 peak",
     "posterior_training", ("cnn/b1024/per-example/examples_per_s", "cnn/b1024/per-minibatch/examples_per_s",
                            "cnn/b1024/per-example/flops_per_example", "cnn/b1024/per-example/fp32_fraction"),
     "{} / {}; {}; {}"),
    ("certificate (b), r = 10, 60,000 examples, MLP 600-600: draws/s (compilation s)", "certificate_b",
     ("draws_per_s", "compile_s"), "{} ({} s)"),
    ("`genbounds cmi`, CNN, Fashion pullover vs coat, 30 runs x 50 epochs: runs/s at n = 1000 / n = 4000",
     "cmi_population", ("n1000/runs_per_s", "n4000/runs_per_s"), "{} / {}"),
    ("the protocol's 600 runs (5 x 30 at n in {75, 250, 1000, 4000}, 200 epochs), projected s", "cmi_population",
     ("protocol_projected_s",), "{} s"),
    ("MLP population, MNIST 4v9, 30 runs x 20 epochs, n = 75 / 250: model-steps/s; x sequential loop",
     "mlp_population", ("n75/population_steps_per_s", "n75/speedup", "n250/population_steps_per_s",
                        "n250/speedup"), "{}; {}x / {}; {}x"),
    ("Langevin population, 100 steps, n = 400 with 8 runs: model-steps/s vmapped / run by run (ratio)",
     "langevin_population", ("n400_runs8/vmapped_steps_per_s", "n400_runs8/sequential_steps_per_s",
                             "n400_runs8/ratio"), "{} / {} ({}x)"),
    ("the same, n = 100 with 16 runs", "langevin_population",
     ("n100_runs16/vmapped_steps_per_s", "n100_runs16/sequential_steps_per_s", "n100_runs16/ratio"),
     "{} / {} ({}x)"),
    ("`genbounds quickstart`: s (of which XLA compilation); certificate (b)", "quickstart",
     ("wall_s", "xla_compile_s", "certificate_b"), "{} s ({} s); {}"),
)


def summary_rows(bench: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) per :data:`SUMMARY` row: the figures, "-" for one not measured, or the item's status
    where it did not run."""
    rows = []
    for label, name, keys, template in SUMMARY:
        item = bench["items"].get(name)
        if item is None:
            rows.append((label, "not run"))
            continue
        figures = item.get("figures", {})
        if not any(k in figures for k in keys):
            rows.append((label, item["status"] if item["status"] != Status.DONE else "not measured"))
            continue
        value = template.format(*(_fmt(k, figures.get(k)) for k in keys))
        rows.append((label, value if item["status"] == Status.DONE else f"{value} ({item['status']})"))
    return rows


def _device_line(env: Mapping[str, Any]) -> str:
    if not env:
        return "device: not known yet (no item finished)"
    line = (f"device: {env.get('device_count')} x {env.get('device_kind')} ({env.get('backend')}), "
            f"JAX {env.get('jax_version')}")
    mem = env.get("memory_bytes")
    if mem:
        line += f", {mem / 2**30:.0f} GiB device memory"
    peak = env.get("peak")
    if peak:
        line += (f"; peaks used ({peak['name']}, dense): fp32 {peak['fp32_tflops']:g}, tf32 {peak['tf32_tflops']:g}, "
                 f"bf16 {peak['bf16_tflops']:g} TFLOP/s, HBM {peak['hbm_tb_s']:g} TB/s ({peak['source']})")
    else:
        line += f"; {env.get('peak_reason', 'no peak figure')}"
    if env.get("cpu"):
        line += f"; {env['cpu']}"
    return line


def bench_markdown(bench: Mapping[str, Any]) -> str:
    """bench.md: the device, the targets (met, or missed by how much and why), every item's status and every
    figure."""
    items = bench["items"]
    smoke = bench["size"] == Size.SMOKE
    lines = [f"# genbounds bench ({bench['size']} sizes)", "",
             f"{_device_line(bench.get('environment', {}))}.",
             f"Measured {bench.get('updated', '')}; budget {bench['budget_s']:.0f} s, used {bench['used_s']:.0f} s "
             "(this run).", "", "| target | measured | target | result |", "|---|---:|---:|---|"]
    notes = []
    for t in bench.get("targets", ()):
        t = t if isinstance(t, Target) else Target(**t)
        figures = items.get(t.item, {}).get("figures", {})
        verdict, factor = t.verdict(figures)
        if smoke and verdict != "not measured":
            verdict = "n/a at smoke sizes"
        elif verdict == "missed":
            verdict = f"missed by {factor:.2f}x"
            notes.append(f"- {t.label}: {diagnose(figures, t.key)}")
        got = figures.get(t.key)
        lines.append(f"| {t.label} | {_fmt(t.key, got)}{' ' + t.unit if got is not None else ''} | "
                     f"{t.op} {_fmt(t.key, t.value)} {t.unit} | {verdict} |")
    if notes:
        lines += ["", "Why the misses (from the measured figures):", *notes]
    if not smoke:
        lines += ["", "| measurement | figure |", "|---|---:|",
                  *(f"| {label} | {value} |" for label, value in summary_rows(bench))]
    lines += ["", "| item | status | seconds | limit (s) | notes |", "|---|---|---:|---:|---|"]
    for name, item in items.items():
        status = item["status"] + (f": {item['reason']}" if item.get("reason") else "")
        lines.append(f"| {name} | {status} | {item['seconds']:.1f} | {item['limit_s']:.0f} | "
                     f"{'; '.join(item.get('notes', []))} |")
    lines += ["", "| item | figure | value |", "|---|---|---:|"]
    for name, item in items.items():
        for key, value in item.get("figures", {}).items():
            lines.append(f"| {name} | {key} | {_fmt(key, value)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# Running an item in its own process


def subprocess_runner(out: Path, *, data_dir: str | None = None, progress: bool = False) -> Runner:
    """A runner that starts ``python -m genbounds.experiments.benchmarks.suite --item NAME`` per item, kills it
    at its limit, and reads back what it recorded (``out/work/NAME.partial.json``; its output in
    ``out/logs/NAME.log``)."""
    def run(item: Item, size: Size, limit_s: float) -> ItemResult:
        partial, log = out / "work" / f"{item.name}.partial.json", out / "logs" / f"{item.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if partial.exists():
            partial.unlink()
        cmd = [sys.executable, "-m", "genbounds.experiments.benchmarks.suite", "--item", item.name, "--size",
               str(size), "--limit-s", f"{limit_s:.3f}", "--work", str(out / "work" / item.name), "--partial",
               str(partial)] + (["--data-dir", data_dir] if data_dir else []) + ([] if progress else ["--no-progress"])
        t0 = time.monotonic()
        with open(log, "w") as f:
            try:
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=limit_s).returncode
            except subprocess.TimeoutExpired:
                rc = None
        seconds = time.monotonic() - t0
        got = json.loads(partial.read_text()) if partial.exists() else {}
        figures, notes, env = got.get("figures", {}), tuple(got.get("notes", ())), got.get("environment", {})
        if rc is None:
            return ItemResult(item.name, Status.TIMED_OUT, seconds, limit_s, figures, notes,
                              f"ran past its limit of {limit_s:.0f} s (figures measured before it are kept)", env)
        if rc != 0 or not got.get("complete"):
            tail = [ln for ln in log.read_text().splitlines() if ln.strip()][-1:] or ["no output"]
            return ItemResult(item.name, Status.FAILED, seconds, limit_s, figures, notes,
                              f"exit status {rc}: {tail[0][:300]} (see {log})", env)
        return ItemResult(item.name, Status.DONE, seconds, limit_s, figures, notes, "", env)
    return run


def run_bench(out: str | os.PathLike, *, smoke: bool = False, budget_s: float = 420.0, force: bool = False,
              data_dir: str | None = None, progress: bool = True, log: Callable[[str], None] = print) -> str:
    """``genbounds bench``: the suite into ``out`` (each item in its own process); returns bench.md's text."""
    out = Path(out)
    size = Size.SMOKE if smoke else Size.FULL
    bench = run_suite(ITEMS, out, size=size, budget_s=budget_s, force=force, log=log, progress=progress,
                      runner=subprocess_runner(out, data_dir=data_dir, progress=progress))
    return bench_markdown(bench)


def _item_main(argv: list[str] | None = None) -> int:
    """One item in this process (what :func:`subprocess_runner` starts)."""
    parser = argparse.ArgumentParser(description="run one bench item (genbounds bench starts this)")
    parser.add_argument("--item", required=True, choices=[i.name for i in ITEMS])
    parser.add_argument("--size", required=True, choices=list(Size))
    parser.add_argument("--limit-s", type=float, required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--partial", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    item = next(i for i in ITEMS if i.name == args.item)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)             # nothing resumed: every run starts cold
    work.mkdir(parents=True)
    ctx = Context(Size(args.size), args.limit_s, work, Path(args.partial), args.data_dir, not args.no_progress)
    ctx.environment = environment()
    ctx.flush()
    try:
        item.run(ctx)
    except Exception:
        traceback.print_exc()
        ctx.flush()
        return 1
    ctx.flush(complete=True)
    return 0


if __name__ == "__main__":
    sys.exit(_item_main())
