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
