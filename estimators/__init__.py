"""Estimators: stochastic-network posteriors and supersample experiments that produce the
quantities the bounds in :mod:`bounds` need."""
