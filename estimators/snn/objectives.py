"""Training objectives: differentiable PAC-Bayes bounds on a bounded surrogate loss.

The surrogate is :func:`genbounds.estimators.losses.bounded_cross_entropy` (re-exported here with
:func:`~genbounds.estimators.losses.zero_one`): the cross-entropy with the predicted probability
clamped at ``p_min`` and divided by ln(1/p_min), so it lies in [0, 1] and is itself certifiable.
Each objective is the corresponding bound of :mod:`bounds.pac_bayes` evaluated on JAX arrays:

* ``classic`` (= ``mcallester``): emp + sqrt(B/2)
* ``seeger``: kl^-1(emp, B), differentiated through the kl inverse's implicit JVP
* ``quad``: (sqrt(emp + B/2) + sqrt(B/2))^2
* ``lambda``: emp/(1 - l/2) + B/(l (1 - l/2)) with l = 2 sigmoid(theta) learned jointly
  (the bound holds for all l at once, Thiemann et al. 2017)
* ``catoni``: Catoni's bound with C = softplus(theta) learned jointly (a training
  objective only; certificates use the kl bound)

with B = (KL + ln(2 sqrt(n)/delta))/n and n the size of the *bound set*, and one objective on the excess loss
over the prior's own network (the combined certificate's, :func:`genbounds.bounds.excess_loss_certificate`):

* ``excess``: (d+ - d-) + psi(-eta)/eta (d+ + d-) + (KL + ln(6/(0.07 delta)))/(eta n), the Unexpected-Bernstein
  excess bound with eta = sigmoid(theta)/2 learned jointly, on surrogate rates d+ (the bounded cross-entropy
  where the prior's network is right) and d- (one minus it where that network errs).
 The objectives are one
registry, :data:`OBJECTIVE_REGISTRY`: each names the certificate bound
(:class:`genbounds.bounds.PacBayesBound`) it trains against, its function and its extra scalars.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import jax
import jax.numpy as jnp

from ... import bounds
from ...bounds import ExcessMethod, PacBayesBound
from ...bounds._array import check_choice
from ...bounds.certificate import EXCESS_SHARE
from ..losses import bounded_cross_entropy, zero_one

__all__ = ["OBJECTIVES", "OBJECTIVE_REGISTRY", "Objective", "ObjectiveName", "bounded_cross_entropy", "zero_one",
           "get_objective", "objective", "objective_extras"]


class ObjectiveName(StrEnum):
    """The training objectives, by the names configs, records and the command line use: the
    certificate bounds' names (:class:`genbounds.bounds.PacBayesBound`), McAllester's as "classic"."""

    CLASSIC = "classic"
    SEEGER = PacBayesBound.SEEGER.value
    QUAD = PacBayesBound.QUAD.value
    LAMBDA = PacBayesBound.LAMBDA.value
    CATONI = PacBayesBound.CATONI.value
    EXCESS = "excess"


#: The objectives' names, in the order configs list them.
OBJECTIVES = tuple(o.value for o in ObjectiveName)
#: Other names accepted for an objective: the certificate bound's own name.
_ALIASES = {PacBayesBound.MCALLESTER.value: ObjectiveName.CLASSIC}


@dataclass(frozen=True, eq=False)
class Objective:
    """A differentiable training objective: a PAC-Bayes bound on JAX arrays.

    Attributes:
        name: the objective's name.
        bound: the certificate bound it trains against.
        value: ``(emp, kl, n, delta, extras) -> objective`` on clipped ``emp`` in [0, 1] and
            ``kl >= 0``.
        extras: the extra trainable scalars it needs, by name, at their initial raw values.
    """

    name: ObjectiveName
    bound: PacBayesBound | ExcessMethod
    value: Callable[[jax.Array, jax.Array, int, float, dict], jax.Array]
    extras: dict = field(default_factory=dict)

    @property
    def relative(self) -> bool:
        """True for an objective on the excess loss over the prior's network: its ``emp`` is ``[d+, d-]``."""
        return isinstance(self.bound, ExcessMethod)

    def __call__(self, emp: jax.Array, kl: jax.Array, n: int, delta: float, extras: dict) -> jax.Array:
        """The objective at surrogate empirical risk ``emp`` (clipped to [0, 1]; for a :attr:`relative` objective
        the pair ``[d+, d-]``) and ``kl`` (clipped at 0)."""
        return self.value(jnp.clip(emp, 0.0, 1.0), jnp.maximum(kl, 0.0), n, delta, extras)


def _lambda(emp, kl, n, delta, extras):
    """lambda = 2 sigmoid(theta), kept inside (0, 2)."""
    lam = jnp.clip(2.0 * jax.nn.sigmoid(extras["lam"]), 1e-3, 2.0 - 1e-3)
    return bounds.lambda_bound(emp, kl, n, delta, lam)


def _catoni(emp, kl, n, delta, extras):
    """C = softplus(theta) + 1e-3 > 0."""
    return bounds.catoni(emp, kl, n, delta, jax.nn.softplus(extras["C"]) + 1e-3)


def _excess(rates, kl, n, delta, extras):
    """The Unexpected-Bernstein excess bound (Mhammedi, Grünwald & Guedj 2019, as in Wu & Seldin 2022, Thm 6 with
    b = 1, Z^2 = Z^+ + Z^-) at a learned eta = sigmoid(theta) / 2 in (0, 1/2):
    (d+ - d-) + psi(-eta)/eta (d+ + d-) + (KL + ln(6 / delta_ex))/(eta n), psi(u) = u - ln(1 + u), paying ln 6 for
    the certificate's grid (6 points at n = 30000) at the excess bound's share delta_ex = 0.07 delta of ``delta``
    (:data:`genbounds.bounds.certificate.EXCESS_SHARE`), as the certificate pays ln(|G| / delta_ex). A training
    objective, not a certificate: only the gradient and the scale of the complexity term matter here."""
    d_plus, d_minus = rates[0], rates[1]
    eta = jnp.clip(0.5 * jax.nn.sigmoid(extras["eta"]), 1e-4, 0.5)
    coef = (-eta - jnp.log1p(-eta)) / eta
    return (d_plus - d_minus) + coef * (d_plus + d_minus) + (kl + math.log(6.0 / (EXCESS_SHARE * delta))) / (eta * n)


#: Every training objective by name.
OBJECTIVE_REGISTRY: dict[ObjectiveName, Objective] = {o.name: o for o in (
    Objective(ObjectiveName.CLASSIC, PacBayesBound.MCALLESTER,
              lambda emp, kl, n, delta, extras: bounds.mcallester(emp, kl, n, delta)),
    Objective(ObjectiveName.SEEGER, PacBayesBound.SEEGER,
              lambda emp, kl, n, delta, extras: bounds.seeger(emp, kl, n, delta)),
    Objective(ObjectiveName.QUAD, PacBayesBound.QUAD, lambda emp, kl, n, delta, extras: bounds.quad(emp, kl, n, delta)),
    Objective(ObjectiveName.LAMBDA, PacBayesBound.LAMBDA, _lambda, {"lam": 0.0}),    # l = 2 sigmoid(0) = 1
    Objective(ObjectiveName.CATONI, PacBayesBound.CATONI, _catoni, {"C": math.log(math.e - 1.0)}),   # softplus = 1
    Objective(ObjectiveName.EXCESS, ExcessMethod.UNEXPECTED_BERNSTEIN, _excess, {"eta": 0.0}),     # eta = 1/4
)}


def get_objective(name: Objective | str) -> Objective:
    """The :class:`Objective` called ``name`` (one of :data:`OBJECTIVES`, or "mcallester" for
    "classic"); an :class:`Objective` is returned as it is."""
    if isinstance(name, Objective):
        return name
    alias = _ALIASES.get(name, name) if isinstance(name, str) else name
    return OBJECTIVE_REGISTRY[check_choice("objective", alias, ObjectiveName)]


def objective_extras(name: Objective | str) -> dict:
    """Extra trainable scalars an objective needs (initial raw values, float32)."""
    return {k: jnp.float32(v) for k, v in get_objective(name).extras.items()}


def objective(name: Objective | str, emp: jax.Array, kl: jax.Array, n: int, delta: float, extras: dict) -> jax.Array:
    """The training objective ``name`` at surrogate empirical risk ``emp`` and ``kl``."""
    return get_objective(name)(emp, kl, n, delta, extras)
