"""Estimators: what turns data and models into the quantities the bounds need.

Four pipelines, one per family of bounds in :mod:`genbounds.bounds`, over shared data loaders,
networks and training steps:

* :mod:`genbounds.estimators.snn`: PAC-Bayes (stochastic networks, objectives, certification);
* :mod:`genbounds.estimators.supersample`: CMI (designs, populations, MI, run-level bounds,
  :func:`bounds_from_runs`);
* :mod:`genbounds.estimators.iterative`: noisy iterative algorithms (Langevin / SGLD / SGD
  populations recording per-step statistics, :func:`bounds_from_trajectories`);
* :mod:`genbounds.estimators.compression`: compression bounds (subspace networks, quantisation,
  :func:`certify_compressed`).

Shared: :mod:`.data` (``Dataset``, loaders, the binary task), :mod:`.nets` (architectures),
:mod:`.steps` (the supervised and Langevin step builders, schedules and the one minibatch rule),
:mod:`.losses` (bounded losses), :mod:`.devices` (meshes), :mod:`.augment` (input augmentations
for training a prior).
"""

from . import augment, compression, iterative, snn, supersample
from .compression import certify_compressed
from .data import DATASETS, Dataset, TrainTest, load, relabel_binary
from .iterative import bounds_from_trajectories
from .nets import Net, cnn, conv_for_backend, custom, mlp, predict
from .snn import certify_network
from .steps import Step, SupervisedState, epoch_batches, supervised_step
from .supersample import bounds_from_runs, loo_bounds_from_runs

__all__ = [
    "augment",
    "compression",
    "certify_compressed",
    "iterative",
    "snn",
    "supersample",
    # data
    "DATASETS",
    "Dataset",
    "TrainTest",
    "load",
    "relabel_binary",
    # networks
    "Net",
    "cnn",
    "conv_for_backend",
    "custom",
    "mlp",
    "predict",
    # training steps
    "Step",
    "SupervisedState",
    "epoch_batches",
    "supervised_step",
    # the entry points users reach for first
    "bounds_from_runs",
    "bounds_from_trajectories",
    "certify_network",
    "loo_bounds_from_runs",
]
