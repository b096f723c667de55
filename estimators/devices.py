"""Devices: meshes for data-parallel and population-parallel programs, memory budgets, and arrays
that span several processes (JAX's multi-host runtime, ``jax.distributed``).

* Data parallelism (posterior training, certification, test passes): the minibatch is sharded
  over a one-axis mesh ``"data"`` of the local devices; parameters are replicated, and XLA's SPMD
  partitioner inserts the gradient all-reduce. Per-example weight draws do not depend on the
  sharding (JAX's threefry is partitionable), so the same examples get the same draws on one
  device or many.
* Population parallelism (CMI and Langevin runs): runs are sharded over a ``"pop"`` mesh
  (:func:`population_mesh`) of every device of every process (CMI), or of as many local devices as
  divide the runs (Langevin). With ``jax.distributed.initialize`` called first,
  :func:`global_array` builds inputs that span the processes and :func:`to_host` gathers results
  back on each of them.
* :func:`free_memory` is the budget that chunk sizes are planned against: the accelerator's own
  count (``bytes_limit - bytes_in_use``), or on CPU the host's available memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..bounds._array import check_count

__all__ = ["data_mesh", "batch_sharding", "replicated", "population_mesh", "population_shardings", "free_memory",
           "global_array", "to_host", "initialize_distributed", "is_main_process", "broadcast_from_main"]


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh | None:
    """A one-axis ``"data"`` mesh over ``devices`` (default: this process's devices), or None for
    a single device (nothing to shard)."""
    devices = list(devices) if devices is not None else jax.local_devices()
    return Mesh(np.array(devices), ("data",)) if len(devices) > 1 else None


def batch_sharding(mesh: Mesh | None, batch_size: int) -> NamedSharding | None:
    """Sharding of a minibatch's leading axis over ``mesh``, or None when there is no mesh or the
    batch does not split evenly over its devices (then the batch is replicated)."""
    if mesh is None or batch_size % mesh.size:
        return None
    return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh | None, x):
    """``x`` placed whole on every device of ``mesh`` (or on the default device)."""
    if mesh is None:
        return jax.device_put(x)
    return jax.device_put(x, NamedSharding(mesh, PartitionSpec()))


def population_mesh(devices: Sequence[jax.Device] | None = None, *, runs: int | None = None) -> Mesh:
    """A one-axis ``"pop"`` mesh for a population of runs, over ``devices`` (default: every device
    of every process, ``jax.devices()``).

    With ``runs``, over the first d of them, d the largest device count that divides ``runs``: every
    device holds the same number of whole runs, a run never spans devices, so the runs' numbers do
    not depend on how many devices there are."""
    devices = list(devices) if devices is not None else jax.devices()
    if not devices:
        raise ValueError("argument 'devices' must name at least one device")
    if runs is not None:
        check_count("runs", runs)
        devices = devices[: max(d for d in range(1, len(devices) + 1) if runs % d == 0)]
    return Mesh(np.array(devices), ("pop",))


def population_shardings(mesh: Mesh) -> tuple[NamedSharding, NamedSharding]:
    """The two placements on a ``"pop"`` mesh: split along the leading (run) axis, and replicated
    (the data every run reads)."""
    return NamedSharding(mesh, PartitionSpec("pop")), NamedSharding(mesh, PartitionSpec())


def free_memory(device: jax.Device | None = None) -> int:
    """Bytes a new program may use on ``device``: ``bytes_limit - bytes_in_use`` where the backend
    reports them (GPU, TPU), else the host's available memory (``MemAvailable``)."""
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def global_array(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array placed with ``sharding``; when the sharding spans several processes, each
    process supplies the shards of its own devices (every process holds the same ``x``)."""
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def to_host(x: jax.Array) -> np.ndarray:
    """A (possibly multi-process) array as a NumPy array on every process."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a multi-process (multi-host) run through JAX's own runtime, ``jax.distributed``.

    Every process calls this with the same ``coordinator`` ("host:port" of process 0) and
    ``num_processes``, and its own ``process_id``, before any other JAX call. On CPU the
    processes talk through gloo collectives (localhost runs, tests); on GPU through NCCL. On
    SLURM or Cloud TPU ``jax.distributed.initialize()`` without arguments finds these itself.
    """
    if not 0 <= process_id < num_processes:
        raise ValueError(f"argument 'process_id' must be in [0, {num_processes}), got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def is_main_process() -> bool:
    """True on process 0 (the one that writes files in a multi-process run)."""
    return jax.process_index() == 0


def broadcast_from_main(x):
    """Process 0's value of ``x`` (a NumPy array or number) on every process; ``x`` itself in a
    single-process run. Every process must call it, with a value of the same shape."""
    if jax.process_count() == 1:
        return x
    return np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(x)))
