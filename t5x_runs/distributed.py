"""Multi-host runs: JAX's distributed runtime and each host's share of the data.

One Python process runs per host (a TPU VM worker, a GPU node); together
they drive one global device mesh. Every process runs the same program:

* `initialize` connects the processes before JAX touches a device. On a
  Cloud TPU pod slice (several workers) it is automatic; elsewhere the
  entry points take t5x's flags::

      python -m t5x_runs.train --gin_file=gin/ko_xl.gin --gin.MODEL_DIR=... \\
        --coordinator_address=10.0.0.2:1234 --process_count=4 --process_index=0

  (on CPU the processes talk through gloo collectives).
* Each process reads only its shard of the training data (`shard_info`:
  seqio's ``ShardInfo(index=process_index, num_shards=process_count)``) and
  builds a per-host batch of ``global_batch / process_count`` examples;
  `global_batch` assembles the hosts' batches into one global array sharded
  over the mesh's 'data' axis. Rows are laid out by process: the global
  batch is host 0's rows, then host 1's, and so on.
* Orbax checkpoints are written and restored by all processes together (each
  writes the shards it holds); only process 0 writes logs and run files.
"""

import logging
import os
from typing import Any, Mapping

import jax
import numpy as np
import seqio
from jax.sharding import NamedSharding

from korani_tasks import errors

# Set on every worker of a Cloud TPU VM slice: the slice's worker hostnames.
_TPU_WORKERS_ENV = "TPU_WORKER_HOSTNAMES"


def on_multi_host_tpu() -> bool:
  """True on a Cloud TPU slice with more than one worker (host)."""
  return len(os.environ.get(_TPU_WORKERS_ENV, "").split(",")) > 1


def initialize(coordinator_address: str | None = None,
               process_count: int | None = None,
               process_index: int | None = None,
               cpu_collectives: str = "gloo") -> bool:
  """Starts JAX's distributed runtime when the run spans several processes.

  With a coordinator address all three settings are required (t5x's
  ``--coordinator_address``/``--process_count``/``--process_index``); without
  one, a multi-worker Cloud TPU slice is detected and initialized
  automatically, and a single host runs as one process. Returns whether the
  runtime was started. Must run before anything uses a JAX device.
  """
  explicit = (coordinator_address, process_count, process_index)
  if coordinator_address is None:
    if process_count not in (None, 1) or process_index not in (None, 0):
      raise errors.ConfigError(
          "--process_count/--process_index need --coordinator_address="
          "HOST:PORT (the address of process 0)")
    if not on_multi_host_tpu():
      return False
    logging.info("Cloud TPU slice with workers %s: initializing JAX's "
                 "distributed runtime", os.environ[_TPU_WORKERS_ENV])
    jax.distributed.initialize()
    return True
  if None in explicit:
    raise errors.ConfigError(
        "--coordinator_address needs --process_count and --process_index "
        f"(got {explicit})")
  if not 0 <= process_index < process_count:
    raise errors.ConfigError(
        f"--process_index={process_index} must be in [0, --process_count="
        f"{process_count})")
  if ":" not in coordinator_address:
    raise errors.ConfigError(
        f"--coordinator_address={coordinator_address!r} must be HOST:PORT")
  # CPU devices only exchange data across processes with a collectives
  # implementation; accelerators bring their own (ICI, NCCL).
  jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=process_count,
                             process_id=process_index)
  logging.info("Process %d of %d (coordinator %s), %d local of %d devices",
               jax.process_index(), jax.process_count(), coordinator_address,
               jax.local_device_count(), jax.device_count())
  return True


def shard_info() -> seqio.ShardInfo | None:
  """This process's shard of the input data (None for a single process)."""
  if jax.process_count() == 1:
    return None
  return seqio.ShardInfo(index=jax.process_index(),
                         num_shards=jax.process_count())


def host_batch_size(global_batch_size: int) -> int:
  """Examples each process reads per step."""
  count = jax.process_count()
  if global_batch_size % count:
    raise errors.ConfigError(
        f"batch_size={global_batch_size} must be divisible by the number of "
        f"processes ({count})")
  return global_batch_size // count


def global_batch(host_batch: Mapping[str, np.ndarray],
                 sharding: NamedSharding) -> dict[str, jax.Array]:
  """The hosts' batches as global arrays (rows ordered by process).

  Example: 2 processes with 4 rows each of [4, 1024] tokens give one
  [8, 1024] array sharded over 'data'; this host's devices hold its 4 rows.
  """
  count = jax.process_count()
  return {
      name: jax.make_array_from_process_local_data(
          sharding, value, (value.shape[0] * count,) + value.shape[1:])
      for name, value in host_batch.items()}


def is_primary() -> bool:
  """Whether this process writes logs, summaries and run files."""
  return jax.process_index() == 0


def fetch(tree: Any) -> Any:
  """Host copies of (replicated) arrays, on every process."""
  return jax.tree.map(np.asarray, tree)
