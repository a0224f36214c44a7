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

The rows of the mesh are the data-parallel replicas; `data_layout` says
which of them each process feeds, as t5x's `get_data_layout` does
(t5x/partitioning.py at google-research/t5x@aeeced0e: `LocalChunker`,
`DataLayout`).
"""

import collections
import dataclasses
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from t5x_runs import errors

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
  return Mesh(device_grid(num_partitions, devices), (DATA_AXIS, MODEL_AXIS))


def device_grid(num_partitions: int, devices: Sequence[Any]) -> np.ndarray:
  """The devices as a [replicas, num_partitions] array.

  TPU chips have a physical topology: JAX's `mesh_utils` lays the model
  groups onto neighbouring chips of the torus (`create_device_mesh`; with
  several slices, `create_hybrid_device_mesh` keeps each group inside a
  slice and spreads the replicas over them). Other devices (host CPU
  devices, GPUs) are ordered by process and id and reshaped: a model group
  fills one process's devices before it spans the next process.
  """
  devices = list(devices)
  if num_partitions < 1 or len(devices) % num_partitions:
    raise errors.ConfigError(
        f"num_partitions={num_partitions} (gin NUM_PARTITIONS) must divide "
        f"the number of devices ({_device_summary(devices)})")
  shape = (len(devices) // num_partitions, num_partitions)
  if devices[0].platform != "tpu":
    ordered = sorted(devices, key=lambda d: (d.process_index, d.id))
    grid = np.empty(len(ordered), dtype=object)
    grid[:] = ordered
    return grid.reshape(shape)
  slices = sorted({getattr(d, "slice_index", 0) for d in devices})
  if len(slices) == 1:
    return mesh_utils.create_device_mesh(shape, devices,
                                         allow_split_physical_axes=True)
  if shape[0] % len(slices):
    raise errors.ConfigError(
        f"{shape[0]} data-parallel replicas (devices / num_partitions="
        f"{num_partitions}) cannot be spread evenly over {len(slices)} TPU "
        "slices")
  return mesh_utils.create_hybrid_device_mesh(
      (shape[0] // len(slices), num_partitions), (len(slices), 1), devices,
      allow_split_physical_axes=True)


def _device_summary(devices: Sequence[Any]) -> str:
  """'8' or '8: 4 processes x 2 devices'."""
  per_process = collections.Counter(d.process_index for d in devices)
  if len(per_process) == 1:
    return str(len(devices))
  counts = sorted(set(per_process.values()))
  each = (f"{counts[0]} devices" if len(counts) == 1
          else f"{counts[0]}..{counts[-1]} devices")
  return f"{len(devices)}: {len(per_process)} processes x {each}"


@dataclasses.dataclass(frozen=True)
class DataLayout:
  """Which rows of the global batch one process builds (t5x's `DataLayout`).

  The replicas (rows of the mesh's 'data' axis) split the global batch
  evenly: replica r takes rows ``[r * n, (r + 1) * n)``, ``n = batch_size /
  num_replicas``. The processes that hold devices of the same replicas form
  one group; each group reads its own shard of the data (seqio's
  ``ShardInfo(shard_id, num_shards)``) and every process of a group builds
  the same rows, those of the group's replicas. Example, 4 processes with 2
  devices each, num_partitions=4, batch 8::

      replica 0 = processes 0, 1 -> shard 0 of 2, rows 0-3
      replica 1 = processes 2, 3 -> shard 1 of 2, rows 4-7

  With num_partitions=2 each process holds one whole replica (4 shards of 2
  rows); with num_partitions=8 all four hold the one replica and read the
  whole data (1 shard of 8 rows).
  """
  batch_size: int  # global
  num_replicas: int
  num_shards: int
  shard_id: int  # of this process
  replicas: tuple[int, ...]  # this process's replicas (mesh rows), ascending
  processes: tuple[int, ...]  # the processes of this process's group

  @property
  def host_batch_size(self) -> int:
    """Rows this process reads per step: those of its replicas."""
    return self.batch_size // self.num_shards

  @property
  def rows_per_replica(self) -> int:
    return self.batch_size // self.num_replicas

  def shard_info(self):
    """seqio's ShardInfo of this process's data (None: one shard)."""
    import seqio  # pylint: disable=import-outside-toplevel
    if self.num_shards == 1:
      return None
    return seqio.ShardInfo(index=self.shard_id, num_shards=self.num_shards)

  def local_row(self, global_row: int) -> int:
    """Where a row of the global batch is in this process's batch."""
    replica, offset = divmod(global_row, self.rows_per_replica)
    return self.replicas.index(replica) * self.rows_per_replica + offset

  def describe(self) -> str:
    return (f"batch {self.batch_size} over {self.num_replicas} replicas "
            f"({self.rows_per_replica} rows each) in {self.num_shards} data "
            f"shards; this process reads shard {self.shard_id} "
            f"({self.host_batch_size} rows: replicas "
            f"{ranges(self.replicas)}) with processes "
            f"{ranges(self.processes)}")


def ranges(values: Sequence[int]) -> str:
  """'0-3' for 0, 1, 2, 3; '0, 2' otherwise."""
  values = list(values)
  if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
    return f"{values[0]}-{values[-1]}"
  return ", ".join(map(str, values))


def data_layout(grid: np.ndarray, batch_size: int,
                process_index: int | None = None) -> DataLayout:
  """The data layout of `process_index` (this process) on a device grid.

  `grid` is a mesh's ``devices`` ([replicas, num_partitions]). Raises
  ConfigError, naming the setting and the numbers, where no layout works:
  a batch that the replicas cannot split evenly, a process whose replicas
  other processes share only in part (they would read different data for
  the same replica), or groups of unequal sizes.
  """
  grid = np.asarray(grid)
  num_replicas, num_partitions = grid.shape
  if process_index is None:
    process_index = jax.process_index()
  if batch_size % num_replicas:
    raise errors.ConfigError(
        f"batch_size={batch_size} (gin BATCH_SIZE) must be divisible by the "
        f"{num_replicas} data-parallel replicas "
        f"({_device_summary(grid.ravel())} devices / num_partitions="
        f"{num_partitions})")
  replicas_of = collections.defaultdict(set)
  for replica, row in enumerate(grid):
    for device in row:
      replicas_of[device.process_index].add(replica)
  groups: dict[tuple[int, ...], list[int]] = {}
  for process in sorted(replicas_of):
    groups.setdefault(tuple(sorted(replicas_of[process])), []).append(process)
  holder: dict[int, tuple[int, ...]] = {}
  for replicas, processes in groups.items():
    for replica in replicas:
      if replica in holder:
        other = holder[replica]
        raise errors.ConfigError(
            f"num_partitions={num_partitions} (gin NUM_PARTITIONS) on "
            f"{_device_summary(grid.ravel())} devices: replica {replica} is "
            f"held by processes {ranges(groups[other])} (replicas "
            f"{ranges(other)}) and {ranges(processes)} (replicas "
            f"{ranges(replicas)}), which would read different data for it; "
            "choose num_partitions so that each process holds whole "
            "replicas or a part of one")
      holder[replica] = replicas
  sizes = sorted({len(r) for r in groups})
  if len(sizes) > 1:
    raise errors.ConfigError(
        f"num_partitions={num_partitions} (gin NUM_PARTITIONS) on "
        f"{_device_summary(grid.ravel())} devices: processes hold between "
        f"{sizes[0]} and {sizes[-1]} replicas, so their data shards would "
        "differ in size; give every process as many devices")
  shards = sorted(groups, key=min)
  mine = next((r for r in shards if process_index in groups[r]), None)
  if mine is None:
    raise errors.ConfigError(
        f"process {process_index} holds no device of the mesh")
  return DataLayout(batch_size=batch_size, num_replicas=num_replicas,
                    num_shards=len(shards), shard_id=shards.index(mine),
                    replicas=mine, processes=tuple(groups[mine]))


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
