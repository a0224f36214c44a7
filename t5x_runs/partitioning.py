"""Device mesh and the mapping from logical axis names to mesh axes.

Parameters and activations carry logical axis names (t5x's: 'batch',
'length', 'embed', 'mlp', 'heads', 'kv', 'joined_kv', 'vocab', ...). The
rules below map them onto a 2-D mesh of devices with axes ('data', 'model'),
as t5x's `standard_logical_axis_rules` does: the batch is split over 'data',
the wide dimensions of attention, MLP and vocabulary over 'model'; 'embed'
stays replicated unless 2-D parameter sharding is switched on.

    >>> mesh = make_mesh(num_partitions=1)          # all devices on 'data'
    >>> shardings = param_shardings(abstract_params, mesh)
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from korani_tasks import errors

DATA_AXIS = "data"
MODEL_AXIS = "model"

LogicalRules = Sequence[tuple[str, str | None]]


def standard_logical_axis_rules(
    parameter_2d_sharding: bool = False) -> LogicalRules:
  """t5x's standard rules for a ('data', 'model') mesh.

  With `parameter_2d_sharding`, 'embed' of the parameters is split over
  'data' as well (ZeRO-3-like: less memory per device, more communication).
  """
  return (
      ("batch", DATA_AXIS),
      ("vocab", MODEL_AXIS),
      ("mlp", MODEL_AXIS),
      ("heads", MODEL_AXIS),
      ("joined_kv", MODEL_AXIS),
      ("kv", None),
      ("embed", DATA_AXIS if parameter_2d_sharding else None),
      ("length", None),
      ("relpos_buckets", None),
  )


def make_mesh(num_partitions: int = 1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A (data, model) mesh with `num_partitions` devices on the model axis."""
  devices = list(devices if devices is not None else jax.devices())
  if num_partitions < 1 or len(devices) % num_partitions:
    raise errors.ConfigError(
        f"num_partitions={num_partitions} must divide the number of devices "
        f"({len(devices)})")
  grid = np.array(devices).reshape(len(devices) // num_partitions,
                                   num_partitions)
  return Mesh(grid, (DATA_AXIS, MODEL_AXIS))


def param_shardings(boxed_params: Any, mesh: Mesh,
                    rules: LogicalRules | None = None) -> Any:
  """NamedShardings for a tree of logically partitioned (boxed) params."""
  rules = rules if rules is not None else standard_logical_axis_rules()
  specs = nn.get_partition_spec(boxed_params)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of a [batch, length] input array: batch split over 'data'."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())
