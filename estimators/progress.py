"""Progress reports for the package's long loops (training epochs, certification passes, runs).

Every loop reports through :class:`Progress` (or :func:`track`), which chooses by where the output goes
(:func:`progress_mode`):

* a terminal: a tqdm bar on stderr;
* a Jupyter kernel: tqdm's plain text bar (``tqdm.std``) on stdout, which needs no ipywidgets;
* anything else (a log file, CI): plain lines such as ``posterior: epoch 12/50, obj 0.0812, kl 3.1, 14 s``,
  one when another :data:`LINE_FRACTION` of the work is done or :data:`LINE_INTERVAL_S` seconds have passed
  since the last line, whichever comes first (:func:`line_due`), and the last one when the loop ends;
* ``enabled=False`` (the functions' ``progress=False``): nothing.

A loop given a ``delay`` shows nothing until it has run that long: the certification passes and the test
evaluation use :data:`PASS_DELAY_S`, so a pass of a second stays silent (:func:`pass_progress`).

Importing this module also imports ``tqdm.auto`` once with tqdm's "IProgress not found" warning silenced:
numpyro imports ``tqdm.auto``, which in a Jupyter kernel without ipywidgets warns and then falls back to the
same text bar (this module is imported before numpyro whenever :mod:`genbounds.estimators` is).
"""

from __future__ import annotations

import importlib
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import IO, Any, TypeVar

from tqdm.std import TqdmWarning
from tqdm.std import tqdm as _std_tqdm

__all__ = ["Mode", "LINE_INTERVAL_S", "LINE_FRACTION", "PASS_DELAY_S", "in_notebook", "progress_mode",
           "line_due", "progress_line", "Progress", "pass_progress", "track"]

T = TypeVar("T")

#: Seconds after which a log file gets its next line even if less than :data:`LINE_FRACTION` was done.
LINE_INTERVAL_S = 10.0
#: Fraction of the work after which a log file gets its next line even if less than
#: :data:`LINE_INTERVAL_S` seconds passed.
LINE_FRACTION = 0.1
#: Seconds a certification pass or test evaluation runs before it shows progress (:func:`pass_progress`).
PASS_DELAY_S = 3.0

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    importlib.import_module("tqdm.auto")


class Mode(StrEnum):
    """How progress is shown: not at all, as a tqdm bar, or as plain periodic lines."""

    OFF = "off"
    BAR = "bar"
    LINES = "lines"


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's shell there is a ``ZMQInteractiveShell``, started
    by an ``IPKernelApp``); IPython is only looked up, never imported."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)()
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in getattr(shell, "config", {})


def progress_mode(enabled: bool, stream: IO[str] | None = None) -> tuple[Mode, IO[str] | None]:
    """The mode and the stream: off when not ``enabled``; given a ``stream``, a bar if it is a terminal and
    lines if not; else a bar on stdout in a Jupyter kernel, and on stderr the same choice as for a stream."""
    if not enabled:
        return Mode.OFF, None
    if stream is None:
        if in_notebook():
            return Mode.BAR, sys.stdout
        stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    return (Mode.BAR if callable(isatty) and isatty() else Mode.LINES), stream


def line_due(done: int, total: int, last_done: int, since_last_s: float) -> bool:
    """Whether a log file gets a line now: ``done - last_done >= LINE_FRACTION * total`` (another tenth of
    the work) or ``since_last_s >= LINE_INTERVAL_S`` (ten seconds since the last line, or the start)."""
    if done <= last_done:
        return False
    return done - last_done >= LINE_FRACTION * total or since_last_s >= LINE_INTERVAL_S


def progress_line(desc: str, unit: str, done: int, total: int, postfix: Mapping[str, str], seconds: float) -> str:
    """One log line: ``posterior: epoch 12/50, obj 0.0812, kl 3.1, 14 s`` (``desc: unit done/total``, the
    postfix's ``name value`` pairs, seconds since the start)."""
    parts = [f"{desc}: {unit} {done}/{total}", *(f"{k} {v}" for k, v in postfix.items()), f"{seconds:.0f} s"]
    return ", ".join(parts)


class Progress:
    """Progress of a loop of ``total`` steps, shown as :func:`progress_mode` chooses (see the module).

    ``update(n, **postfix)`` after each step: ``n`` steps done, ``postfix`` the values to show
    (``obj="0.0812"``). Use it as a context manager, or call :meth:`close`.

    Args:
        total: the number of steps.
        desc: what runs (``"posterior"``), the line's and the bar's first word.
        unit: what a step is (``"epoch"``).
        enabled: False shows nothing.
        delay: seconds before anything is shown.
        leave: keep the terminal bar when done.
        stream: where to write (default: stdout in a Jupyter kernel, else stderr).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, total: int, desc: str, *, unit: str = "step", enabled: bool = True, delay: float = 0.0,
                 leave: bool = False, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.mode, self.stream = progress_mode(enabled, stream)
        self.total, self.desc, self.unit, self.delay, self.clock = int(total), desc, unit, float(delay), clock
        self.done, self.postfix = 0, {}
        self.bar = None
        if self.mode is Mode.BAR:
            self.bar = _std_tqdm(total=self.total, desc=desc, unit=unit, leave=leave, delay=self.delay,
                                 file=self.stream)
        elif self.mode is Mode.LINES:
            self.start = self.last_time = clock()
            self.last_done = 0

    def update(self, n: int = 1, **postfix: str) -> None:
        """``n`` more steps done; ``postfix``: the values to show with them."""
        self.done += n
        self.postfix.update(postfix)
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)
        elif self.mode is Mode.LINES:
            now = self.clock()
            if now - self.start >= self.delay and line_due(self.done, self.total, self.last_done,
                                                           now - self.last_time):
                self._line(now)

    def _line(self, now: float) -> None:
        self.stream.write(progress_line(self.desc, self.unit, self.done, self.total, self.postfix,
                                        now - self.start) + "\n")
        self.stream.flush()
        self.last_done, self.last_time = self.done, now

    def close(self) -> None:
        """End the loop: the terminal bar closes; a log file gets the last line if it has not had it yet
        (and the loop ran at least ``delay`` seconds)."""
        if self.bar is not None:
            self.bar.close()
        elif self.mode is Mode.LINES and self.done > self.last_done:
            now = self.clock()
            if now - self.start >= self.delay:
                self._line(now)
        self.mode = Mode.OFF

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def pass_progress(total: int, desc: str, *, unit: str, enabled: bool) -> Progress:
    """The progress of a certification pass or test evaluation: shown once it has run :data:`PASS_DELAY_S`
    seconds, so that a short pass stays silent."""
    return Progress(total, desc, unit=unit, enabled=enabled, delay=PASS_DELAY_S)


def track(items: Iterable[T], desc: str, *, unit: str = "step", total: int | None = None, enabled: bool = True,
          leave: bool = False, stream: IO[str] | None = None,
          clock: Callable[[], float] = time.monotonic) -> Iterator[T]:
    """``items`` one by one, each counted done (:class:`Progress`) when the loop asks for the next;
    ``total`` defaults to ``len(items)``."""
    count = len(items) if total is None else total          # type: ignore[arg-type]
    with Progress(count, desc, unit=unit, enabled=enabled, leave=leave, stream=stream, clock=clock) as bar:
        for item in items:
            yield item
            bar.update()
