"""Speed benchmarks, each a script that prints ratios measured in one run:

* ``python -m genbounds.experiments.benchmarks.bench_kl_inverse``: vectorised kl inverses;
* ``python -m genbounds.experiments.benchmarks.bench_population``: vmapped populations vs loops;
* ``python -m genbounds.experiments.benchmarks.bench_snn``: stochastic training throughput and the
  two Monte Carlo certificates;
* ``genbounds bench`` (:mod:`.suite`): all of it within a time budget, on whatever devices JAX sees,
  into ``bench.json`` and ``bench.md``.

They time the shipped step builders (:mod:`genbounds.estimators.steps`,
:func:`genbounds.estimators.snn.posterior_step`), not copies.
"""

__all__: list[str] = []
