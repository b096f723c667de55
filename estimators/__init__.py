"""Estimators: what turns data and models into the quantities the bounds need.

Two pipelines over shared data loaders, networks and training steps:

* :mod:`genbounds.estimators.snn`: PAC-Bayes (stochastic networks, objectives, certification);
* :mod:`genbounds.estimators.supersample`: CMI (designs, populations, MI, run-level bounds);
* :mod:`genbounds.estimators.langevin`: Langevin / SGLD steps and schedules, with the statistics
  the bounds for noisy iterative algorithms need recorded along the trajectory.

Shared: :mod:`.data` (``Dataset``, loaders), :mod:`.nets` (architectures), :mod:`.steps` (the
supervised step builder and the one minibatch rule), :mod:`.augment` (input augmentations for
training a prior).
"""

from . import augment, langevin, snn, supersample
from .data import DATASETS, Dataset, TrainTest, load, relabel_binary
from .nets import Net, cnn, conv_for_backend, custom, mlp, predict
from .snn import certify_network
from .steps import Step, SupervisedState, epoch_batches, supervised_step
from .supersample import bounds_from_runs, loo_bounds_from_runs

__all__ = [
    "augment",
    "langevin",
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
    # the two entry points users reach for first
    "bounds_from_runs",
    "certify_network",
    "loo_bounds_from_runs",
]
