"""Throughput of a Langevin population with per-step gradient statistics versus a sequential loop.

Both time :func:`genbounds.estimators.iterative.pair_population`, the code ``genbounds langevin``
runs: once vmapped over all k2 runs of an outer draw, and once called run by run (each call one
compiled program for a single run, as one-run-per-process research code does, minus the process
start). Same data, schedule and steps; compilation excluded (each program runs once before
timing). Prints model-steps per second (runs x steps / seconds) and the ratio, measured in one run.

    python -m genbounds.experiments.benchmarks.bench_langevin [--dataset mnist-5k] [--n 400] [--runs 8] [--steps 100]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from ...estimators import nets
from ...estimators.data import binary_task
from ...estimators.iterative import pair_population
from ...estimators.steps import constant_schedule


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--width", type=int, default=100)
    args = parser.parse_args(argv)

    pool = binary_task(args.dataset)
    net = nets.mlp(pool.x.shape[1:], (args.width,), 2)
    perm = np.random.default_rng(0).permutation(len(pool))
    shared, pair, test = perm[: args.n - 1], perm[args.n - 1: args.n + 1], perm[args.n + 1: args.n + 201]
    data = (pool.x[shared], pool.y[shared], pool.x[pair], pool.y[pair])
    tests = (pool.x[test], pool.y[test])
    u = jnp.arange(args.runs) % 2
    keys = jax.random.split(jax.random.PRNGKey(0), args.runs)
    fn = jax.jit(lambda *a: pair_population(net, *a, schedule=constant_schedule(0.05, 1e3), steps=args.steps,
                                             every=args.steps))

    def population():
        jax.block_until_ready(fn(*data, u, keys, *tests))

    def sequential():
        for r in range(args.runs):
            jax.block_until_ready(fn(*data, u[r:r + 1], keys[r:r + 1], *tests))

    results = {}
    for name, run in (("population (vmapped)", population), ("sequential loop", sequential)):
        run()                                      # compile
        t0 = time.perf_counter()
        run()
        results[name] = args.runs * args.steps / (time.perf_counter() - t0)
    print(f"{pool.name}, {net.name}, n = {args.n}, {args.runs} runs x {args.steps} full-batch steps, "
          f"backend {jax.default_backend()}")
    for name, rate in results.items():
        print(f"  {name:22s} {rate:10.1f} model-steps/s")
    print(f"  ratio population / sequential: {results['population (vmapped)'] / results['sequential loop']:.2f}x")


if __name__ == "__main__":
    main()
