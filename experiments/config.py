"""The configuration layer: the base of experiment configs, and names of optimisers.

Library functions take ``optax`` transformations; strings such as ``--optimizer sgd`` exist only
here, where command-line flags and recorded configs are turned into objects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import optax

__all__ = ["RunConfig", "OPTIMIZERS", "make_optimizer"]

#: Optimiser names accepted by the command line and configs.
OPTIMIZERS = ("sgd", "adam")


def make_optimizer(name: str, lr: float, momentum: float = 0.9) -> optax.GradientTransformation:
    """``sgd`` (with ``momentum``) or ``adam`` at learning rate ``lr``."""
    if name == "sgd":
        return optax.sgd(lr, momentum=momentum)
    if name == "adam":
        return optax.adam(lr)
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
