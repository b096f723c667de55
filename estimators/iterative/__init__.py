"""Noisy iterative algorithms: populations of Langevin / SGLD / SGD runs and the bounds of
:mod:`genbounds.bounds.iterative` from their trajectory statistics.

* :mod:`.population`: :func:`pair_population` (Langevin dynamics or SGLD on a supersample pair,
  recording :class:`PairStats` per step) and :func:`sgd_population` (plain SGD, :class:`SGDStats`),
  each a vmapped program; the step and schedules are in :mod:`genbounds.estimators.steps`;
* :mod:`.trajectories`: :func:`bounds_from_trajectories` and :func:`sgd_bounds_from_trajectories`
  for statistics recorded by any code, returning :class:`IterativeResult`.
"""

from .population import PairStats, SGDStats, net_losses, pair_population, sgd_population
from .trajectories import (
    BOUND_NAMES,
    Checkpoint,
    IterativeBound,
    IterativeResult,
    SGDBound,
    bounds_from_trajectories,
    sgd_bounds_from_trajectories,
)

__all__ = [
    # populations
    "PairStats",
    "SGDStats",
    "net_losses",
    "pair_population",
    "sgd_population",
    # bounds from trajectories
    "BOUND_NAMES",
    "Checkpoint",
    "IterativeBound",
    "IterativeResult",
    "SGDBound",
    "bounds_from_trajectories",
    "sgd_bounds_from_trajectories",
]
