"""CMI side: supersample designs, populations of training runs, MI estimates, run-level bounds.

* :mod:`.design`: supersamples, fair masks (antithetic pairs), leave-one-out designs;
* :mod:`.population`: :func:`train_population`, many small models as one sharded program;
* :mod:`.mi`: the plug-in MI with U's known uniform marginal;
* :mod:`.runs`: the plug-in estimates of every bound for runs trained with any code (validated against
  the theorems' assumptions), returning :class:`CMIResult`; :func:`loo_bounds_from_runs`;
* :mod:`.certified`: :func:`bounds_from_runs` (the estimates, and with ``certify=True`` a certificate of
  the algorithm's expected risk and its held-out baseline), :func:`certify_runs`, and the design sizing
  :func:`certified_floor`, :func:`runs_needed`.
"""

from .certified import (
    CertifiedCMI,
    RunsNeeded,
    Sampling,
    bounds_from_runs,
    certified_floor,
    certify_runs,
    require_nonvacuous_design,
    runs_needed,
)
from .design import (
    Supersample,
    draw_loo_supersample,
    draw_masks,
    draw_supersample,
    loo_held_out,
    loo_runs,
    supersample_runs,
)
from .mi import bootstrap_interval, dense_codes, encode_pairs, plugin_mi
from .population import (
    Plan,
    TrainConfig,
    device_bytes,
    map_batch_for,
    plan_population,
    train_population,
)
from .runs import (
    BOUND_NAMES,
    CMIBound,
    CMIResult,
    LooSummary,
    SupersampleSummary,
    check_loo_runs,
    check_supersample_runs,
    loo_bounds_from_runs,
    loo_losses,
)

__all__ = [
    # designs
    "Supersample",
    "draw_loo_supersample",
    "draw_masks",
    "draw_supersample",
    "loo_held_out",
    "loo_runs",
    "supersample_runs",
    # populations
    "Plan",
    "TrainConfig",
    "device_bytes",
    "map_batch_for",
    "plan_population",
    "train_population",
    # mutual information
    "bootstrap_interval",
    "dense_codes",
    "encode_pairs",
    "plugin_mi",
    # bounds from runs
    "BOUND_NAMES",
    "CMIBound",
    "CMIResult",
    "LooSummary",
    "SupersampleSummary",
    "bounds_from_runs",
    "CertifiedCMI",
    "RunsNeeded",
    "Sampling",
    "certified_floor",
    "certify_runs",
    "require_nonvacuous_design",
    "runs_needed",
    "check_loo_runs",
    "check_supersample_runs",
    "loo_bounds_from_runs",
    "loo_losses",
]
