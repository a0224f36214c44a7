"""Device mesh and the mapping from logical axis names to mesh axes.

Parameters and activations carry logical axis names (t5x's: 'batch',
'length', 'embed', 'mlp', 'heads', 'kv', 'joined_kv', 'vocab', ...). The
rules below map them onto a 2-D mesh of devices with axes ('data', 'model'),
as t5x's `standard_logical_axis_rules` does: the batch is split over 'data',
the wide dimensions of attention, MLP and vocabulary over 'model'; 'embed'
stays replicated unless 2-D parameter sharding is switched on.

    >>> mesh = make_mesh(num_partitions=2)   # 8 devices -> 4 (data) x 2 (model)
    >>> shardings = param_shardings(boxed_abstract_params, mesh)
    >>> shardings['encoder']['layers_0']['mlp']['wi_0']['kernel'].spec
    PartitionSpec(None, 'model')              # [embed, mlp]: mlp split in two

The optimizer state follows its parameters (`opt_state_shardings`), and the
trainer compiles its steps with these shardings as explicit in/out
shardings, so nothing that is sharded is ever gathered onto one device.
"""

from typing import Any, Mapping, Sequence

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
      ("layers", None),  # the stacked axis of scanned layers (scan_layers)
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
  shardings = nn.logical_to_mesh_sharding(specs, mesh, rules)
  _check_divisible(boxed_params, shardings, mesh)
  return shardings


def _check_divisible(boxed_params: Any, shardings: Any, mesh: Mesh) -> None:
  """Every split dimension must divide evenly over its mesh axis."""
  is_box = lambda x: isinstance(x, nn.Partitioned)  # pylint: disable=unnecessary-lambda-assignment
  flat = jax.tree_util.tree_flatten_with_path(boxed_params, is_leaf=is_box)[0]
  for (path, box), sharding in zip(flat, jax.tree.leaves(shardings)):
    shape = box.value.shape if is_box(box) else box.shape
    names = box.names if is_box(box) else (None,) * len(shape)
    for size, axis, name in zip(shape, sharding.spec, names):
      ways = mesh.shape[axis] if isinstance(axis, str) else 1
      if size % ways:
        param = "/".join(str(p.key) for p in path
                         if isinstance(p, jax.tree_util.DictKey))
        raise errors.ConfigError(
            f"{param}: its {name!r} dimension ({size}) cannot be split "
            f"{ways} ways over the mesh's {axis!r} axis (mesh "
            f"{dict(mesh.shape)}); choose num_partitions (or a device count) "
            "that divides num_heads, mlp_dim and vocab_size")


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of a [batch, length] input array: batch split over 'data'."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def _param_key(path) -> tuple[str, ...] | None:
  """The dict keys of a tree path: ('encoder', 'layers_0', ..., 'kernel')."""
  keys = tuple(str(p.key) for p in path if isinstance(p, jax.tree_util.DictKey))
  return keys or None


def _state_spec(shape: Sequence[int], param_shape: Sequence[int],
                param_spec: PartitionSpec) -> PartitionSpec:
  """The spec of an optimizer-state array derived from its parameter's.

  Same shape: the parameter's spec. One dimension fewer (Adafactor's
  factored row/column second moments): the parameter's spec without the
  entry of the dropped dimension. Anything else (counters, the [1]
  placeholders of factored parameters): replicated.
  """
  shape, param_shape = tuple(shape), tuple(param_shape)
  entries = tuple(param_spec) + (None,) * (len(param_shape) - len(param_spec))
  if shape == param_shape:
    return PartitionSpec(*entries)
  if len(shape) == len(param_shape) - 1:
    for dropped in range(len(param_shape)):
      if param_shape[:dropped] + param_shape[dropped + 1:] == shape:
        return PartitionSpec(*(entries[:dropped] + entries[dropped + 1:]))
  return PartitionSpec()


def opt_state_shardings(abstract_opt_state: Any, abstract_params: Any,
                        shardings: Any, mesh: Mesh) -> Any:
  """NamedShardings for an optimizer state, following its parameters.

  `abstract_opt_state` is e.g. ``jax.eval_shape(optimizer.init, params)``;
  every state array that belongs to a parameter (optax keeps per-parameter
  state in trees with the parameters' dict keys) is sharded like it:

      param   token_embedder/embedding    [250112, 4096]  P('model', None)
      v_row   (factored: vocab dropped)   [4096]          P(None)
      v_col   (factored: embed dropped)   [250112]        P('model')
      v       (factored: a placeholder)   [1]             P()
      v of an unfactored [4096] scale     [4096]          P(None)
  """
  params: Mapping[tuple[str, ...], tuple[Any, PartitionSpec]] = {}
  flat_params = jax.tree_util.tree_flatten_with_path(abstract_params)[0]
  flat_shardings = jax.tree.leaves(shardings)
  if len(flat_params) != len(flat_shardings):
    raise ValueError("abstract_params and shardings differ in structure")
  for (path, leaf), sharding in zip(flat_params, flat_shardings):
    params[_param_key(path)] = (leaf.shape, sharding.spec)

  def state_sharding(path, leaf):
    key = _param_key(path)
    if key in params and hasattr(leaf, "shape"):
      param_shape, spec = params[key]
      return NamedSharding(mesh, _state_spec(leaf.shape, param_shape, spec))
    return NamedSharding(mesh, PartitionSpec())

  return jax.tree_util.tree_map_with_path(state_sharding, abstract_opt_state)
