"""The configuration layer: the base of experiment configs, and names of optimisers.

Library functions take ``optax`` transformations; strings such as ``--optimizer sgd`` exist only
here, where command-line flags and recorded configs are turned into objects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import optax

__all__ = ["RunConfig", "OPTIMIZERS", "SCHEDULES", "make_optimizer"]

#: Optimiser names accepted by the command line and configs.
OPTIMIZERS = ("sgd", "adam")
#: Learning-rate schedules: constant, or cosine decay to 0 over all steps (optax.cosine_decay_schedule).
SCHEDULES = ("constant", "cosine")


def make_optimizer(name: str, lr: float, momentum: float = 0.9, schedule: str = "constant",
                   steps: int | None = None) -> optax.GradientTransformation:
    """``sgd`` (with ``momentum``; 0 for plain SGD) or ``adam`` at learning rate ``lr``, held constant
    or decayed along a cosine to 0 over ``steps`` optimiser steps."""
    if schedule not in SCHEDULES:
        raise ValueError(f"argument 'schedule' must be one of {SCHEDULES}, got {schedule!r}")
    rate: float | optax.Schedule = lr
    if schedule == "cosine":
        if not steps or steps < 1:
            raise ValueError(f"argument 'steps' must be >= 1 for a cosine schedule, got {steps!r}")
        rate = optax.cosine_decay_schedule(lr, steps)
    if name == "sgd":
        return optax.sgd(rate, momentum=momentum or None)
    if name == "adam":
        return optax.adam(rate)
    raise ValueError(f"argument 'optimizer' must be one of {OPTIMIZERS}, got {name!r}")


class RunConfig:
    """Base of experiment configs (frozen dataclasses): validation, JSON form and digest."""

    def _validate(self, checks) -> None:
        """``checks``: (ok, field name, requirement) triples; the first failure raises."""
        for ok, name, what in checks:
            if not ok:
                raise ValueError(f"argument {name!r} must be {what}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self, fields: tuple[str, ...] | None = None) -> str:
        """Short hash of the settings (or of ``fields`` only): names checkpoints so a resume
        never mixes runs."""
        d = self.to_dict()
        if fields is not None:
            d = {k: d[k] for k in fields}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
