import os

import pytest
from hypothesis import HealthCheck, settings

# JAX compiles on first call, so per-example deadlines would be noise; CI runs derandomized.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (minutes of training each)")


#: XLA's CPU backend optimisation level for the unit tests alone (``-m "not integration"``): most of their time is
#: compiling many small programs, which level 0 compiles about twice as fast; the programs compute the same
#: operations (fusion is decided before the backend), only less optimised machine code. The full suite, which CI
#: runs, compiles at XLA's default level, as the library does. An XLA_FLAGS that sets the level is left alone.
UNIT_LANE_XLA_FLAG = "--xla_backend_optimization_level=0"


def pytest_configure(config: pytest.Config) -> None:
    """In the unit lane only, compile at :data:`UNIT_LANE_XLA_FLAG` (before any test module imports JAX)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "not integration" in (config.getoption("markexpr") or "") and "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {UNIT_LANE_XLA_FLAG}".strip()


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
