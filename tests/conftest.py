import os

from hypothesis import HealthCheck, settings

# JAX compiles on first call, so per-example deadlines would be noise; CI runs derandomized.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
