import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# JAX compiles on first call, so per-example deadlines would be noise; CI runs derandomized.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (minutes of training each)")


#: XLA's CPU compiler settings for the unit tests alone (``-m "not integration"``): most of their time is compiling
#: many small programs. Backend optimisation level 0 compiles about twice as fast, and the older elemental emitters
#: (``xla_cpu_use_fusion_emitters=false``) about twice as fast again (tests/test_snn.py, test_progress.py,
#: test_conv_choice.py and test_masks.py: 68 s at level 0 alone, 37 s with both). The programs compute the same
#: operations (fusion is decided before the emitters), only with less optimised machine code. The full suite, which
#: CI runs, compiles with XLA's defaults, as the library does. A flag that XLA_FLAGS already sets keeps its value.
UNIT_LANE_XLA_FLAGS = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false"}


#: JAX's persistent compilation cache for the unit lane alone: XLA's compiled programs are kept in the git-ignored
#: ``.pytest_cache/jax-compilation`` of the checkout (about 15 MB for the lane; delete it at any time), so a second
#: run of the lane loads most of them instead of compiling them again. The cache key covers the program, the compiler
#: flags and the JAX version, so a changed test compiles afresh. A JAX_COMPILATION_CACHE_DIR already set is used
#: instead; a checkout that cannot be written runs without one. The full suite never uses it.
UNIT_LANE_CACHE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compilation"


def pytest_configure(config: pytest.Config) -> None:
    """In the unit lane only, compile with :data:`UNIT_LANE_XLA_FLAGS` and keep the compiled programs between runs
    (:data:`UNIT_LANE_CACHE`); both before any test module imports JAX. xdist's workers inherit both."""
    if "not integration" not in (config.getoption("markexpr") or ""):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    extra = [f"--{name}={value}" for name, value in UNIT_LANE_XLA_FLAGS.items() if name not in flags]
    os.environ["XLA_FLAGS"] = " ".join([flags, *extra]).strip()
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        try:
            UNIT_LANE_CACHE.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(UNIT_LANE_CACHE)
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"      # default 1 s: most of ours take less


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (the unit lane's command in pyproject.toml and the README) runs a lane on every core, but one file
    or one test in this process: a command line naming test files or node ids, or ``-s``, runs serially (``-n 2``
    still distributes it). ``None`` leaves the count to pytest-xdist (the cores, or PYTEST_XDIST_AUTO_NUM_WORKERS)."""
    named = any(".py" in arg for arg in config.args)
    return 0 if named or config.getoption("capture") == "no" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests marked ``slow`` unless ``--run-slow`` is given or ``-m`` names ``slow``.

    Done here rather than by ``-m 'not slow'`` in addopts because a ``-m`` on the command line
    replaces the one in addopts: ``pytest -m "not integration"`` would then run the slow tests too.
    """
    if config.getoption("--run-slow") or "slow" in config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]
