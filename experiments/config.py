"""The configuration layer: experiment configs, their command-line flags, and names of optimisers.

A config is a frozen dataclass of settings, optionally grouped in sections (frozen dataclasses
too, :class:`Section`). Every setting is declared with :func:`setting`: its default, its help
text, and what the command line needs (choices, metavar, a flag name other than the setting's).
A setting has one *flat name*, unique in its config (``prior_epochs``, ``batch``): the name of
its key in the record's ``config`` object, of its flag (``--prior-epochs``) and of the argument
that a validation message names. A setting may carry its own :class:`Check` (a finite number > 0,
a whole number in a range; a float setting without one must be finite), which every config tests
before its checks across settings. :func:`add_flags` turns a config into argparse flags and
:func:`from_args` turns the parsed arguments back into a config, checked, a refusal naming the
flag as typed (``argument --mc-delta: 'mc_delta' must be in (0, 1), got 1.0``), so a command's
flags and their validation are never written twice.

Library functions take ``optax`` transformations; strings such as ``--optimizer sgd`` exist only
here, where command-line flags and recorded configs are turned into objects.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple, Self

import optax

from ..bounds._array import check_choice

__all__ = ["RunConfig", "Section", "Setting", "setting", "Check", "SettingError", "FINITE", "POSITIVE", "NONNEGATIVE",
           "between", "whole", "SEED", "add_flags", "from_args", "int_at_least", "positive_int",
           "nonneg_int", "digits", "OPTIMIZERS", "SCHEDULES", "make_optimizer", "Arch", "OptimizerName",
           "ScheduleName", "MaskPrior", "CMIArch", "LangevinAlgorithm", "AugmentName"]


class Arch(StrEnum):
    """The PAC-Bayes runner's networks: an MLP, or PBB's CNN."""

    MLP = "mlp"
    CNN = "cnn"


class CMIArch(StrEnum):
    """The CMI runner's networks: a linear model, an MLP, or a CNN."""

    LINEAR = "linear"
    MLP = "mlp"
    CNN = "cnn"


class LangevinAlgorithm(StrEnum):
    """The Langevin runner's training: Langevin dynamics (SGLD with a batch), or plain minibatch SGD."""

    LANGEVIN = "langevin"
    SGD = "sgd"


class AugmentName(StrEnum):
    """Augmentations of a data prior's training images, by the names of
    :data:`genbounds.estimators.augment.AUGMENTATIONS`."""

    NONE = "none"
    SHIFT = "shift"
    SHIFT_FLIP = "shift-flip"


class OptimizerName(StrEnum):
    """Optimiser names accepted by the command line and configs."""

    SGD = "sgd"
    ADAM = "adam"


class ScheduleName(StrEnum):
    """Learning-rate schedules: constant, or cosine decay to 0 over all steps (optax.cosine_decay_schedule)."""

    CONSTANT = "constant"
    COSINE = "cosine"


class MaskPrior(StrEnum):
    """The Bernoulli mask prior: from the prior net's magnitudes, or uniform (data-free) keep probability."""

    MAGNITUDE = "magnitude"
    UNIFORM = "uniform"


#: Optimiser names accepted by the command line and configs (:class:`OptimizerName`'s values).
OPTIMIZERS = tuple(o.value for o in OptimizerName)
#: Learning-rate schedules (:class:`ScheduleName`'s values).
SCHEDULES = tuple(s.value for s in ScheduleName)


def make_optimizer(name: str, lr: float, momentum: float = 0.9, schedule: str = "constant",
                   steps: int | None = None) -> optax.GradientTransformation:
    """``sgd`` (with ``momentum``; 0 for plain SGD) or ``adam`` at learning rate ``lr``, held constant
    or decayed along a cosine to 0 over ``steps`` optimiser steps."""
    sched = check_choice("schedule", schedule, ScheduleName)
    optimizer = check_choice("optimizer", name, OptimizerName)
    rate: float | optax.Schedule = lr
    if sched is ScheduleName.COSINE:
        if not steps or steps < 1:
            raise ValueError(f"argument 'steps' must be >= 1 for a cosine schedule, got {steps!r}")
        rate = optax.cosine_decay_schedule(lr, steps)
    if optimizer is OptimizerName.SGD:
        return optax.sgd(rate, momentum=momentum or None)
    return optax.adam(rate)


class Check(NamedTuple):
    """What one setting's value must be, on its own: ``ok(value)``, and ``what`` a refusal says
    (``argument 'lr' must be <what>, got -1.0``). A tuple setting's check holds for every value (a
    refusal shows the first bad one)."""

    ok: Callable[[Any], bool]
    what: str


def _finite(v: Any) -> bool:
    """A real number (not a bool, not text) that is finite."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any) -> bool:
    """An integer (not a bool)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


#: Every float setting without a check of its own must be finite (a record cannot hold NaN or inf).
FINITE = Check(_finite, "a finite number")
#: A finite number > 0 (learning rates, scales).
POSITIVE = Check(lambda v: _finite(v) and v > 0, "a finite number > 0")
#: A finite number >= 0 (decay rates).
NONNEGATIVE = Check(lambda v: _finite(v) and v >= 0, "a finite number >= 0")


def between(low: float, high: float, *, low_in: bool = False, high_in: bool = False) -> Check:
    """A finite number in the interval from ``low`` to ``high``, open unless ``low_in`` / ``high_in``."""
    def ok(v: Any) -> bool:
        return _finite(v) and (low <= v if low_in else low < v) and (v <= high if high_in else v < high)
    return Check(ok, f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}")


def whole(minimum: int, below: int | None = None, what: str | None = None) -> Check:
    """A whole number (an int, not a bool) >= ``minimum`` (and < ``below``)."""
    def ok(v: Any) -> bool:
        return _whole(v) and v >= minimum and (below is None or v < below)
    text = f"a whole number >= {minimum}" if below is None else f"a whole number in [{minimum}, {below})"
    return Check(ok, what or text)


#: Seeds: JAX's PRNGKey keeps 32 bits of a seed (seeds 2**32 apart would be the same run), so 0 to 2**32 - 1.
SEED = whole(0, 2**32, "a whole number in [0, 2**32)")


class SettingError(ValueError):
    """A setting refused by name: ``argument 'key' must be <what>, got <value>``. :func:`from_args`
    names the flag instead, as the user typed it."""

    def __init__(self, key: str, what: str, value: Any) -> None:
        self.key, self.what = key, what
        self.shown = value.value if isinstance(value, StrEnum) else value
        super().__init__(f"argument {key!r} must be {what}, got {self.shown!r}")

    def on_command_line(self, flag: str) -> ValueError:
        """The same refusal naming ``flag`` (``--mc-delta``) and the setting (the record's name)."""
        return ValueError(f"argument {flag}: {self.key!r} must be {self.what}, got {self.shown!r}")


def setting(default: Any, help: str, *, key: str | None = None, flag: str | None = None,
            choices: Sequence[str] | None = None, metavar: str | tuple[str, ...] | None = None,
            nargs: int | None = None, default_text: str | None = None, parse: Callable[[str], Any] | None = None,
            required: bool = False, switch: bool = False, positional: bool = False, append: bool = False,
            check: Check | None = None) -> Any:
    """A config field with its command-line metadata (``dataclasses.field(default=..., metadata=...)``).

    ``key``: the setting's flat name when it differs from the field's (``PriorSection.epochs`` is
    ``prior_epochs``); ``flag``: the flag when it is not ``--`` + the flat name with dashes;
    ``nargs``: a fixed count for a tuple (default: one or more); ``default_text``: what the help
    says of the default when the value alone would not say it (a default of None); ``parse``: the
    flag's argparse type when the annotation alone is not enough (:func:`positive_int`);
    ``required``: the flag must be given (its help names no default; the config's default, None,
    stands for "not given"); ``switch``: a boolean as a bare ``--x`` (argparse's ``store_true``,
    help without a default) instead of ``--x / --no-x``; ``positional``: a positional argument
    named by the flat name (one value or none; a tuple: one or more), help without a default;
    ``append``: a tuple whose flag is repeated for each value (``--x a --x b``); ``check``: what the
    value must be on its own (:class:`Check`: :data:`POSITIVE`, :func:`between`, :func:`whole`; of
    each value for a tuple; a float setting without one must be :data:`FINITE`), tested by
    :meth:`RunConfig._validate` (before the config's own checks; None, "not given", passes).
    """
    meta = {"help": help, "key": key, "flag": flag, "choices": None if choices is None else tuple(choices),
            "metavar": metavar, "nargs": nargs, "default_text": default_text, "parse": parse,
            "required": required or None, "switch": switch or None, "positional": positional or None,
            "append": append or None, "check": check}
    return dataclasses.field(default=default, metadata={k: v for k, v in meta.items() if v is not None})


class Setting(NamedTuple):
    """One setting of a config class: its flat ``key``, the ``section`` field holding it (None at
    the top level), the dataclass ``field`` and its resolved type annotation."""

    key: str
    section: str | None
    field: dataclasses.Field
    type: Any

    @property
    def flag(self) -> str:
        return self.field.metadata.get("flag", "--" + self.key.replace("_", "-"))

    def check(self) -> Check | None:
        """The setting's own :class:`Check`, or :data:`FINITE` for a float setting declared without one."""
        declared = self.field.metadata.get("check")
        if declared is not None:
            return declared
        typ = self.type
        if typing.get_origin(typ) in (typing.Union, types.UnionType):
            typ = next(t for t in typing.get_args(typ) if t is not type(None))
        if typing.get_origin(typ) is tuple:
            typ = typing.get_args(typ)[0]
        return FINITE if typ is float else None

    def refusal(self, value: Any) -> SettingError | None:
        """The :class:`SettingError` of ``value`` against :meth:`check` (None when it passes or is None)."""
        check = self.check()
        if check is None or value is None:
            return None
        if isinstance(value, tuple | list):
            bad = [v for v in value if not check.ok(v)]
            return SettingError(self.key, f"{check.what} (every value)", bad[0]) if bad else None
        return None if check.ok(value) else SettingError(self.key, check.what, value)


class Section:
    """Base of a config section: a frozen dataclass of :func:`setting` fields."""


def _settings_of(cls: type, section: str | None) -> list[Setting]:
    hints = typing.get_type_hints(cls)
    return [Setting(f.metadata.get("key", f.name), section, f, hints[f.name]) for f in dataclasses.fields(cls)]


class RunConfig:
    """Base of experiment configs (frozen dataclasses): flat names, validation, JSON form and digest.

    ``to_dict`` is the record's flat ``config`` object (sections expanded, in declaration order),
    ``from_dict`` / :meth:`flat` build a config from flat names, :meth:`replace` changes settings by
    flat name, and every flat name also reads as an attribute (``cfg.batch`` is
    ``cfg.posterior.batch``), except those of section fields themselves.
    """

    @classmethod
    @functools.cache
    def settings(cls) -> tuple[Setting, ...]:
        """Every setting, sections expanded, in declaration order."""
        out: list[Setting] = []
        for s in _settings_of(cls, None):
            if isinstance(s.type, type) and issubclass(s.type, Section):
                out += _settings_of(s.type, s.field.name)
            else:
                out.append(s)
        keys = [s.key for s in out]
        if len(set(keys)) != len(keys):
            raise TypeError(f"{cls.__name__}: flat setting names are not unique: {keys}")
        return tuple(out)

    @classmethod
    @functools.cache
    def _by_key(cls) -> dict[str, Setting]:
        return {s.key: s for s in cls.settings()}

    def __getattr__(self, name: str) -> Any:
        # Only reached when ordinary lookup fails: a flat name reads through to its section.
        s = type(self)._by_key().get(name)
        if s is None or s.section is None or name in {f.name for f in dataclasses.fields(self)}:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(getattr(self, s.section), s.field.name)

    def flag_defaults(self) -> dict[str, Any]:
        """The default of every setting's flag (:func:`add_flags`): every setting by flat name, as it is here
        (a config may leave settings out of :meth:`flat_items`, or mark some as unset, None, for its flags)."""
        return RunConfig.flat_items(self)

    def flat_items(self) -> dict[str, Any]:
        """Every setting by flat name, values as they are (tuples, enums)."""
        return {s.key: getattr(self if s.section is None else getattr(self, s.section), s.field.name)
                for s in type(self).settings()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """A config from flat names (a record's ``config``; lists become tuples, missing names take
        their defaults). An unknown name is refused by name."""
        by_key = cls._by_key()
        unknown = [k for k in values if k not in by_key]
        if unknown:
            raise ValueError(f"argument {unknown[0]!r} is not a setting of {cls.__name__}")
        top: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for k, v in values.items():
            s = by_key[k]
            v = tuple(v) if isinstance(v, list) else v
            (top if s.section is None else sections.setdefault(s.section, {}))[s.field.name] = v
        hints = typing.get_type_hints(cls)
        return cls(**top, **{name: hints[name](**kw) for name, kw in sections.items()})

    @classmethod
    def flat(cls, **values: Any) -> Self:
        """``cls.from_dict(values)``: a config written with flat names, ``PacBayesConfig.flat(arch="mlp")``."""
        return cls.from_dict(values)

    def replace(self, **values: Any) -> Self:
        """This config with the settings ``values`` (flat names) changed."""
        return type(self).from_dict({**self.flat_items(), **values})

    def _validate(self, checks=()) -> None:
        """Refuse the first bad setting (:class:`SettingError`): first each setting's own
        :class:`Check` (declared with :func:`setting`), then ``checks``, the config's own (ok, flat
        name, requirement) triples across settings, then :data:`FINITE` for the float settings
        declared without a check (a name from a closed set shown as the user wrote it, ``'init'``)."""
        values = RunConfig.flat_items(self)      # every setting (a config may leave some out of its own)
        settings = type(self).settings()
        declared = [s for s in settings if "check" in s.field.metadata]
        undeclared = [s for s in settings if "check" not in s.field.metadata]
        for s in declared:
            if (err := s.refusal(values[s.key])) is not None:
                raise err
        for ok, name, what in checks:
            if not ok:
                raise SettingError(name, what, values[name])
        for s in undeclared:
            if (err := s.refusal(values[s.key])) is not None:
                raise err

    def check_settings(self) -> None:
        """Every setting's own :class:`Check` (what :meth:`_validate` tests before a config's own checks)."""
        self._validate()

    def to_dict(self) -> dict:
        """The flat JSON form (the record's ``config``)."""
        return json.loads(json.dumps(self.flat_items()))

    def digest(self, fields: tuple[str, ...] | None = None) -> str:
        """Short hash of the settings (or of ``fields`` only): names checkpoints so a resume
        never mixes runs."""
        d = self.to_dict()
        if fields is not None:
            d = {k: d[k] for k in fields}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------
# Command-line flags from settings


def _shown(value: Any) -> str:
    """A default as a user would type it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple | list):
        return " ".join(map(str, value))
    return str(value)


def _flag_options(s: Setting, default: Any) -> dict[str, Any]:
    """argparse keywords of one setting: its type (optional values unwrapped), booleans as
    ``--x / --no-x``, tuples as a list of values, and help ending with the default."""
    meta, typ = s.field.metadata, s.type
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        typ = next(t for t in typing.get_args(typ) if t is not type(None))
    shown = meta.get("default_text", "none" if default is None else _shown(default))
    bare = meta.get("required") or meta.get("switch") or meta.get("positional")
    opts: dict[str, Any] = {"dest": s.key, "default": default,
                            "help": (meta["help"] if bare else f"{meta['help']} (default: {shown})").replace("%", "%%")}
    if meta.get("required"):
        opts["required"] = True
    if typ is bool:
        opts["action"] = "store_true" if meta.get("switch") else argparse.BooleanOptionalAction
    elif typing.get_origin(typ) is tuple:
        opts["type"] = meta.get("parse", typing.get_args(typ)[0])
        if meta.get("append"):
            opts["action"] = "append"
        else:
            opts["nargs"] = meta.get("nargs", "+")
        opts["default"] = None if default is None else list(default)
    else:
        opts["type"] = meta.get("parse", typ if typ in (int, float) else str)
    for k in ("choices", "metavar"):
        if k in meta:
            opts[k] = meta[k]
    return opts


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, defaults: RunConfig,
              keys: Iterable[str] | None = None, groups: Mapping[str, str] | None = None) -> None:
    """One flag per setting of ``defaults``' class (only ``keys`` when given), each with its help
    and ``defaults``' value as its default. ``groups``: a title per section; that section's flags go
    into an argument group of this title (made at its first flag), every other flag onto ``parser``."""
    wanted = None if keys is None else set(keys)
    values = defaults.flag_defaults()
    made: dict[str, argparse._ArgumentGroup] = {}
    for s in type(defaults).settings():
        if wanted is None or s.key in wanted:
            if "help" not in s.field.metadata:
                raise TypeError(f"{type(defaults).__name__}.{s.key} has no help text (declare it with setting())")
            target = parser
            if groups is not None and s.section in groups:
                if s.section not in made:
                    made[s.section] = parser.add_argument_group(groups[s.section])
                target = made[s.section]
            opts = _flag_options(s, values[s.key])
            if s.field.metadata.get("positional"):
                target.add_argument(opts.pop("dest"), **{"nargs": "?", **opts})
            else:
                target.add_argument(s.flag, **opts)


def from_args(base: RunConfig, args: argparse.Namespace) -> RunConfig:
    """``base`` with every setting that the parsed ``args`` hold (:func:`add_flags`' flags), each
    setting checked (:meth:`RunConfig.check_settings`) before anything runs; a refused setting that
    is a flag of this command is named by its flag (``argument --mc-delta: 'mc_delta' must be ...``)."""
    given = vars(args)
    by_key = type(base)._by_key()
    try:
        cfg = base.replace(**{k: given[k] for k in by_key if k in given})
        cfg.check_settings()
    except SettingError as err:
        s = by_key.get(err.key)
        if s is None or err.key not in given or s.field.metadata.get("positional"):
            raise
        raise err.on_command_line(s.flag) from None
    return cfg


# ---------------------------------------------------------------------------------------
# argparse types of the hand-written flags


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def digits(text: str) -> int:
    """argparse type: a number of printed digits, 0 to 12."""
    value = nonneg_int(text)
    if value > 12:
        raise argparse.ArgumentTypeError(f"must be <= 12, got {value}")
    return value
