"""Per-device memory of a training run, before it runs (`korani plan`).

    plan = plan_from_gin(['gin/models/mt5_xxl.gin', 'gin/runs/finetune.gin'],
                         ['BATCH_SIZE = 128', 'NUM_PARTITIONS = 8',
                          "REMAT_POLICY = 'full'"],
                         num_devices=32, device_memory_gib=32)
    print(format_plan(plan))

The mesh is the trainer's: ``num_devices / num_partitions`` data-parallel
replicas times ``num_partitions`` model-parallel devices, with t5x's logical
axis rules (t5x_runs/partitioning.py). Per device:

* parameters: the exact shapes of the model's parameters (``jax.eval_shape``
  of the model's init; nothing is allocated). A dimension whose logical axis
  maps to 'model' ('vocab', 'mlp', 'heads', 'joined_kv') is split
  ``num_partitions`` ways; with ``parameter_2d_sharding``, 'embed' is split
  over the data-parallel replicas as well; everything else is replicated.
* optimizer state: ``jax.eval_shape(optimizer.init, params)`` of the
  trainer's optimizer (``trainer.make_optimizer``: optax Adafactor without
  momentum, so factored second moments: a row and a column vector for
  parameters with two dimensions of at least 128, a full-size accumulator
  for the others, plus step counters). A state array is sharded as its
  parameter is: same shape, same sharding; a factored vector keeps the
  sharding of the parameter dimensions it still has; other arrays (counters,
  placeholders) are replicated.
* gradients: as the parameters (transient, but all alive at the end of the
  backward pass); with ``num_microbatches`` > 1 twice that: the accumulated
  gradients and those of the current microbatch.
* activations: an estimate that follows the model's ``remat_policy`` (what
  each layer keeps for the backward pass, plus the largest transient of the
  backward pass), see `activation_bytes`, for one microbatch: the
  per-device batch divided by ``num_microbatches`` (the trainer's
  gradient accumulation runs one microbatch at a time).
* update temporaries: the optimizer step's, see `update_temporary_bytes`.

The total adds parameters, optimizer state and gradients to the larger of
the activations and the update temporaries (the activations are gone when
the optimizer step runs). It is meant as an upper bound: it keeps every
gradient alive with every saved activation, while XLA frees the activations
as the gradients appear (on GPU it also applies each parameter's update as
soon as its gradient exists). Checked against XLA's own figure for compiled
train steps (`compile_train_step`, `compiled_peak_bytes`;
bench/bench_planner_memory.py and bench/RESULTS.md): on an H200, 2% under to
23% over where the activations dominate, with every policy; on CPU, 3% to
17% under without rematerialization (XLA:CPU keeps a few more elementwise
intermediates), while there XLA recomputes all rematerialized layers at once
and saves almost nothing. A run *fits* when the total is at most
``(1 - headroom)`` of the device memory; the headroom (10% by default) is left
for XLA's temporary buffers, the batch, the compiled program and
fragmentation. On GPUs JAX preallocates only 75% of the memory unless
``XLA_PYTHON_CLIENT_MEM_FRACTION`` says otherwise: plan with that fraction of
the card.
"""

import dataclasses
import logging
import math
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from t5x_runs import errors
from t5x_runs import partitioning
from t5x_runs import train_step
from t5x_runs.models import MT5, MT5Config
from t5x_runs.models.config import REMAT_POLICIES

GIB = 1024 ** 3
DEFAULT_HEADROOM = 0.1


@dataclasses.dataclass(frozen=True)
class Plan:
  """Memory of one training step, in bytes per device (see the module doc)."""

  model_config: MT5Config
  batch_size: int
  task_feature_lengths: Mapping[str, int]
  num_devices: int
  num_partitions: int
  parameter_2d_sharding: bool
  param_count: int
  parameters: int
  optimizer_state: int
  gradients: int
  activations: int
  parameters_by_name: Mapping[str, int]  # 'encoder/layers_0/mlp/wo/kernel' -> bytes
  activations_by_kind: Mapping[str, int]  # see `activation_bytes`
  activations_per_example: int  # growth per example of the per-device batch
  update_temporaries: int = 0  # see `update_temporary_bytes`
  # Per process, where the hosts are known (`planned_devices`).
  data_layouts: Sequence[partitioning.DataLayout] | None = None
  device_memory_gib: float | None = None
  headroom: float = DEFAULT_HEADROOM
  num_microbatches: int = 1

  @property
  def remat_policy(self) -> str:
    return self.model_config.remat_policy

  @property
  def data_parallel(self) -> int:
    """Replicas of the model: the size of the mesh's 'data' axis."""
    return self.num_devices // self.num_partitions

  @property
  def per_device_batch(self) -> int:
    return self.batch_size // self.data_parallel

  @property
  def microbatch_per_device(self) -> int:
    """Sequences a device holds activations for at a time."""
    return self.per_device_batch // self.num_microbatches

  @property
  def total(self) -> int:
    """Parameters, optimizer state and gradients, plus the larger of the
    activations (forward and backward pass) and the update's temporaries
    (optimizer step, when the activations are gone)."""
    return (self.parameters + self.optimizer_state + self.gradients
            + max(self.activations, self.update_temporaries))

  @property
  def usable_bytes(self) -> float | None:
    if self.device_memory_gib is None:
      return None
    return self.device_memory_gib * GIB * (1.0 - self.headroom)

  @property
  def fits(self) -> bool | None:
    """Whether the total fits the usable memory (None: memory not given)."""
    usable = self.usable_bytes
    return None if usable is None else self.total <= usable

  @property
  def max_batch_size(self) -> int | None:
    """The largest batch (a multiple of the replicas and microbatches) that
    fits with ``num_microbatches``, or None.

    0 when not even one example per replica and microbatch fits.
    """
    per_microbatch = self._max_microbatch_per_device(self.num_microbatches)
    if per_microbatch is None:
      return None
    return per_microbatch * self.num_microbatches * self.data_parallel

  def _max_microbatch_per_device(self, num_microbatches: int) -> int | None:
    """The most sequences per device and microbatch that fit."""
    usable = self.usable_bytes
    if usable is None:
      return None
    gradients = self.parameter_gradients * (2 if num_microbatches > 1 else 1)
    room = usable - (self.parameters + self.optimizer_state + gradients)
    if room < self.update_temporaries:
      return 0
    fixed = (self.activations
             - self.activations_per_example * self.microbatch_per_device)
    return max(0, int((room - fixed) // self.activations_per_example))

  @property
  def parameter_gradients(self) -> int:
    """Bytes of one set of gradients (``gradients`` without the
    accumulator of microbatching)."""
    return self.gradients // (2 if self.num_microbatches > 1 else 1)

  def smallest_num_microbatches(self) -> int | None:
    """The fewest microbatches with which this batch fits (None: the
    memory is not given, or no count that divides the per-device batch
    fits).

    Counts must divide the per-device batch (BATCH_SIZE / replicas).
    """
    for count in range(1, self.per_device_batch + 1):
      if self.per_device_batch % count:
        continue
      fitting = self._max_microbatch_per_device(count)
      if fitting is None:
        return None
      if fitting >= self.per_device_batch // count:
        return count
    return None


def _check_positive(**values: int) -> None:
  for name, value in values.items():
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise errors.ConfigError(f"{name} must be a positive integer, got {value!r}")


def _abstract_params(config: MT5Config) -> Any:
  """The boxed (logically partitioned) parameter shapes, without allocating."""
  if config.vocab_size is None:
    raise errors.ConfigError(
        "the model's vocab_size is None (the trainer takes it from the "
        "vocabulary); give it to plan, e.g. "
        "--gin.models.mt5_config.vocab_size=4096")
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  return jax.eval_shape(
      lambda rng, enc, dec: MT5(config).init(rng, enc, dec)["params"],
      jax.random.key(0), tokens, tokens)


def _is_box(x) -> bool:
  return isinstance(x, nn.LogicallyPartitioned)


def _path_name(path) -> tuple[str, ...]:
  return tuple(str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey))


def _split_factors(name: str, shape: Sequence[int], logical: Sequence[str | None],
                   mesh_sizes: Mapping[str, int], rules) -> tuple[int, ...]:
  """How many ways each dimension of a parameter is split; checks divisibility."""
  spec = tuple(nn.logical_to_mesh_axes(tuple(logical), rules))
  spec += (None,) * (len(shape) - len(spec))
  factors = []
  for dim, (size, axes, axis_name) in enumerate(zip(shape, spec, logical)):
    axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
    factor = math.prod(mesh_sizes[a] for a in axes)
    if size % factor:
      if partitioning.MODEL_AXIS in axes:
        setting = (f"num_partitions={mesh_sizes[partitioning.MODEL_AXIS]} "
                   "(gin NUM_PARTITIONS)")
      else:
        setting = (f"parameter_2d_sharding over the "
                   f"{mesh_sizes[partitioning.DATA_AXIS]} data-parallel "
                   "replicas (devices / num_partitions)")
      raise errors.ConfigError(
          f"{setting} does not divide dimension {dim} ('{axis_name}', size "
          f"{size}) of parameter {name}; choose a divisor of {size}")
    factors.append(factor)
  return tuple(factors)


def _sharded_bytes(shape, dtype, factors) -> int:
  return math.prod(shape) * jnp.dtype(dtype).itemsize // math.prod(factors)


def _state_factors(shape, param_shape, param_factors) -> tuple[int, ...] | None:
  """Split factors of an optimizer-state array belonging to a parameter.

  Same shape: the parameter's. One dimension fewer (a factored Adafactor
  moment): the factors of the dimensions left; where more than one dimension
  could have been removed, the least-split reading (the most bytes). Anything
  else: None (replicated).
  """
  shape, param_shape = tuple(shape), tuple(param_shape)
  if shape == param_shape:
    return tuple(param_factors)
  if len(shape) != len(param_shape) - 1:
    return None
  candidates = [tuple(param_factors[:i] + param_factors[i + 1:])
                for i in range(len(param_shape))
                if param_shape[:i] + param_shape[i + 1:] == shape]
  if not candidates:
    return None
  return min(candidates, key=math.prod)


def _layer_activations(config: MT5Config, *, b: int, le: int, ld: int, p: int,
                       a: int) -> dict[str, dict[str, int]]:
  """Bytes of one encoder ('encoder') and one decoder ('decoder') layer.

  Per layer: ``input`` (the residual stream entering it), what it keeps for
  the backward pass without rematerialization (``residual``,
  ``attention_projections``, ``attention_scores``, ``mlp_hidden``), the
  MLP block's share of ``residual`` (``mlp_residual``), the projection
  outputs that the 'minimal' policy saves (``minimal_projections``,
  ``minimal_mlp``) and ``score_gradient``, the float32 gradient of its
  largest attention scores that its backward pass creates. See
  `activation_bytes` for the formulas.
  """
  cfg = config
  e, hd, h, f = (cfg.emb_dim, cfg.num_heads * cfg.head_dim, cfg.num_heads,
                 cfg.mlp_dim)
  score = 4 + (a if a != 4 else 0)
  return {
      "encoder": {
          "input": b * le * e * a,
          "residual": 4 * b * le * e * a,
          "mlp_residual": 2 * b * le * e * a,
          "attention_projections": 5 * b * le * hd * a // p,
          "minimal_projections": 3 * b * le * hd * a // p,
          "attention_scores": b * h * le * le * score // p,
          "mlp_hidden": 3 * b * le * f * a // p,
          "minimal_mlp": 2 * b * le * f * a // p,
          "score_gradient": 4 * b * h * le * le // p,
      },
      "decoder": {
          "input": b * ld * e * a,
          "residual": 6 * b * ld * e * a,
          "mlp_residual": 2 * b * ld * e * a,
          "attention_projections":
              (8 * b * ld * hd + 2 * b * le * hd) * a // p,
          "minimal_projections": (4 * b * ld * hd + 2 * b * le * hd) * a // p,
          "attention_scores": b * h * (ld * ld + ld * le) * score // p,
          "mlp_hidden": 3 * b * ld * f * a // p,
          "minimal_mlp": 2 * b * ld * f * a // p,
          "score_gradient": 4 * b * h * ld * max(ld, le) // p,
      },
  }


_SAVED_KINDS = ("residual", "attention_projections", "attention_scores",
                "mlp_hidden")


def _saved_by_layer(layer: Mapping[str, int], remat_policy: str
                    ) -> dict[str, int]:
  """What one layer keeps for the backward pass under `remat_policy`."""
  if remat_policy == "none":
    return {k: layer[k] for k in _SAVED_KINDS}
  saved = dict.fromkeys(_SAVED_KINDS, 0)
  saved["residual"] = layer["input"]
  if remat_policy == "minimal":
    saved["attention_projections"] = layer["minimal_projections"]
    saved["mlp_hidden"] = layer["minimal_mlp"]
  return saved


def _layer_backward_bytes(layer: Mapping[str, int],
                          saved: Mapping[str, int]) -> int:
  """Transient bytes of one layer's backward pass beyond what it saved.

  The backward pass goes through the MLP block first, with everything the
  layer recomputed alive, then through the attention block(s), when the MLP
  block's recomputed activations are gone and the scores' gradient exists.
  """
  recomputed = {k: layer[k] - saved[k] for k in _SAVED_KINDS}
  during_mlp = sum(recomputed.values())
  during_attention = (during_mlp - recomputed["mlp_hidden"]
                      - min(recomputed["residual"], layer["mlp_residual"])
                      + layer["score_gradient"])
  return max(during_mlp, during_attention)


def activation_bytes(config: MT5Config, *, per_device_batch: int,
                     inputs_length: int, targets_length: int,
                     num_partitions: int = 1,
                     activation_dtype: Any = None,
                     remat_policy: str | None = None) -> dict[str, int]:
  """Estimated activation memory of one device at the step's peak, in bytes.

  What the forward pass keeps for the backward pass (the first four kinds),
  plus the largest transient of the backward pass (``backward_peak``). With
  b the per-device batch, Le / Ld the input / target lengths, E = emb_dim,
  HD = num_heads * head_dim, H = num_heads, F = mlp_dim, V = vocab_size, P =
  num_partitions (which splits heads, mlp and vocab, not embed: the residual
  stream is replicated over the 'model' axis) and a the activation dtype's
  bytes (``config.dtype`` unless given). ``remat_policy`` defaults to
  ``config.remat_policy``.

  Per layer, without rematerialization ('none'):

  * residual: each sub-layer (2 an encoder layer, 3 a decoder layer) keeps
    its input (for the norm's backward) and the normed input (for the
    projections' kernel gradients): 4 b Le E a an encoder layer, 6 b Ld E a
    a decoder layer.
  * attention projections: query, key, value, context (the out
    projection's input) and the context before its division by the
    softmax's normalizer (the division's backward reads it): 5 b Le HD / P a
    an encoder layer; (5 b Ld HD + 3 b Ld HD + 2 b Le HD) / P a a decoder
    layer (self-attention, then cross-attention's query and two contexts at
    Ld, key and value at Le).
  * attention scores: the softmax's exponentials in float32 (what its
    backward needs; `models.mt5.softmax_context` normalizes the context,
    not the weights, and drops value rows) and their copy in dtype a that
    multiplies the values (none when a is float32): b H Lq Lk / P (4 + a)
    per attention, a = 4 counted once, (Lq, Lk) = (Le, Le) in the encoder,
    (Ld, Ld) and (Ld, Le) in the decoder.
  * mlp hidden: gate, linear and their gated product (wo's input):
    3 b L F / P a, L = Le in the encoder and Ld in the decoder.

  With 'full' a layer keeps only its input (b L E a) and the backward pass
  recomputes the rest, one layer at a time. With 'minimal' it keeps its
  input and the outputs of the projections the backward pass needs (query,
  key and value: 3 b L HD / P a; wi_0 and wi_1: 2 b L F / P a; the out and
  wo outputs only feed additions and are not kept), and recomputes norms,
  scores and the gated product.

  Outside the layers, for every policy (counted as residual): the encoder's
  output before and after its final norm (cross-attention's keys and values
  are computed from the latter) and the decoder's, 2 b Le E a + b Ld E a,
  and the logits layer's float32 input, 4 b Ld E; plus (as attention
  scores) the float32 relative position biases, H Le^2 / P and H Ld^2 / P,
  shared by the layers.

  backward_peak: the largest of (1) the loss's backward at the start of the
  backward pass, two float32 [b, Ld, V / P] buffers (the logits' softmax
  and gradient): 8 b Ld V / P; (2) one layer's backward. Without
  rematerialization that is the float32 gradient of its largest attention
  scores, 4 b H Lq Lk / P. With it, the layer first recomputes what 'none'
  keeps minus what the policy keeps, all of which is alive during the MLP
  block's backward; during the attention's backward the MLP block's part
  (its hidden activations and its 2 b L E a of residual) is gone and the
  scores' gradient has come: the larger of the two moments.

  This is meant as an upper bound for XLA's accelerator schedules, which
  free a layer's activations once its backward is done (on an H200 it was
  2% under to 23% over XLA's figure, bench/RESULTS.md). XLA:CPU's
  scheduler, however, recomputes every rematerialized layer at the start of
  the backward pass, so on CPU rematerialization saves (almost) nothing:
  bench/bench_planner_memory.py, bench/RESULTS.md. Ignored: masks and
  dropout masks (broadcast over a length, or regenerated from the random
  key), the token ids, XLA's fusion temporaries (the plan's headroom covers
  them).
  """
  cfg = config
  policy = remat_policy if remat_policy is not None else cfg.remat_policy
  if policy not in REMAT_POLICIES:
    raise errors.ConfigError(
        f"remat_policy={policy!r} is not one of {', '.join(REMAT_POLICIES)}")
  b, le, ld, p = per_device_batch, inputs_length, targets_length, num_partitions
  a = jnp.dtype(activation_dtype if activation_dtype is not None
                else cfg.dtype).itemsize
  e, h, v = cfg.emb_dim, cfg.num_heads, cfg.vocab_size
  layers = _layer_activations(cfg, b=b, le=le, ld=ld, p=p, a=a)
  counts = {"encoder": cfg.num_encoder_layers, "decoder": cfg.num_decoder_layers}
  acts = dict.fromkeys(_SAVED_KINDS, 0)
  layer_backward = 0
  for kind, layer in layers.items():
    saved = _saved_by_layer(layer, policy)
    for k, n in saved.items():
      acts[k] += counts[kind] * n
    if counts[kind]:
      layer_backward = max(layer_backward, _layer_backward_bytes(layer, saved))
  acts["residual"] += (2 * b * le * e + b * ld * e) * a + 4 * b * ld * e
  acts["attention_scores"] += 4 * h * (le * le + ld * ld) // p
  acts["backward_peak"] = max(8 * b * ld * v // p, layer_backward)
  return acts


# Parameter-sized temporaries of the optimizer step (see
# `update_temporary_bytes`).
UPDATE_TEMPORARIES_PER_PARAMETER = 2


def update_temporary_bytes(parameter_bytes) -> int:
  """Transient memory of the optimizer step: 2 x the largest parameter.

  `parameter_bytes`: the per-device bytes of each parameter. Adafactor
  computes, per parameter, its update (the gradient over the root of the
  factored second moment) and that update clipped to an RMS of at most
  ``clipping_threshold`` before the new value replaces the donated
  parameter: two temporaries of the parameter's size (its shard, per device)
  that XLA frees parameter by parameter, so the largest parameter (mT5's
  embedding or logits kernel) sets the peak. That is what XLA:CPU's
  schedule holds at its peak for mT5-Small (bench/RESULTS.md); XLA:GPU
  fuses most of it away.
  """
  return UPDATE_TEMPORARIES_PER_PARAMETER * max(parameter_bytes, default=0)


def plan(model_config: MT5Config, *, batch_size: int,
         task_feature_lengths: Mapping[str, int], num_devices: int,
         num_partitions: int = 1, device_memory_gib: float | None = None,
         devices: Sequence[Any] | None = None,
         parameter_2d_sharding: bool = False, param_dtype: Any = jnp.float32,
         activation_dtype: Any = None, optimizer=None,
         headroom: float = DEFAULT_HEADROOM, num_microbatches: int = 1
         ) -> Plan:
  """Per-device memory of training `model_config`; see the module docstring.

  `optimizer` defaults to the trainer's (``trainer.make_optimizer()``, with
  any gin bindings); `activation_dtype` to ``model_config.dtype``.
  With `devices` (`planned_devices`: which host holds which device), the
  plan also has the trainer's data layout of every process.

  Raises:
    ConfigError: a setting that the trainer's mesh cannot take (partitions
      not dividing the devices or a sharded dimension, a batch not divisible
      by the data-parallel replicas times the microbatches, a missing length
      or vocabulary size).
  """
  _check_positive(batch_size=batch_size, num_devices=num_devices,
                  num_partitions=num_partitions,
                  num_microbatches=num_microbatches)
  if num_devices % num_partitions:
    raise errors.ConfigError(
        f"num_partitions={num_partitions} (gin NUM_PARTITIONS) must divide "
        f"the number of devices ({num_devices})")
  data_parallel = num_devices // num_partitions
  if batch_size % data_parallel:
    raise errors.ConfigError(
        f"batch_size={batch_size} (gin BATCH_SIZE) must be a multiple of the "
        f"{data_parallel} data-parallel replicas (devices {num_devices} / "
        f"num_partitions {num_partitions})")
  if batch_size % (data_parallel * num_microbatches):
    raise errors.ConfigError(
        f"batch_size={batch_size} (gin BATCH_SIZE) must be divisible by "
        f"num_microbatches={num_microbatches} (gin NUM_MICROBATCHES) x the "
        f"{data_parallel} data-parallel replicas = "
        f"{data_parallel * num_microbatches}")
  layouts = _data_layouts(devices, num_devices, num_partitions, batch_size)
  missing = {"inputs", "targets"} - set(task_feature_lengths)
  if missing:
    raise errors.ConfigError(
        f"task_feature_lengths (gin TASK_FEATURE_LENGTHS) lacks "
        f"{sorted(missing)}; got {dict(task_feature_lengths)}")
  if not 0 <= headroom < 1:
    raise errors.ConfigError(f"headroom must be in [0, 1), got {headroom}")

  rules = partitioning.standard_logical_axis_rules(parameter_2d_sharding)
  mesh_sizes = {partitioning.DATA_AXIS: data_parallel,
                partitioning.MODEL_AXIS: num_partitions}
  boxed = _abstract_params(model_config)
  boxes = jax.tree_util.tree_flatten_with_path(boxed, is_leaf=_is_box)[0]
  by_path, param_bytes = {}, {}
  for path, box in boxes:
    name = "/".join(_path_name(path))
    shape = box.value.shape
    factors = _split_factors(name, shape, box.names, mesh_sizes, rules)
    by_path[_path_name(path)] = (shape, factors)
    param_bytes[name] = _sharded_bytes(shape, param_dtype, factors)

  params = jax.tree.map(lambda box: jax.ShapeDtypeStruct(box.value.shape,
                                                         param_dtype),
                        boxed, is_leaf=_is_box)
  if optimizer is None:
    from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
    optimizer = trainer.make_optimizer()
  state = jax.eval_shape(optimizer.init, params)
  state_bytes = 0
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    keys = _path_name(path)
    factors = None
    # The state's trees mirror the parameters' below a prefix of attributes.
    for start in range(len(keys)):
      if keys[start:] in by_path:
        param_shape, param_factors = by_path[keys[start:]]
        factors = _state_factors(leaf.shape, param_shape, param_factors)
        break
    state_bytes += _sharded_bytes(leaf.shape, leaf.dtype,
                                  factors or (1,) * len(leaf.shape))

  def acts_at(per_device_batch):
    return activation_bytes(
        model_config, per_device_batch=per_device_batch,
        inputs_length=task_feature_lengths["inputs"],
        targets_length=task_feature_lengths["targets"],
        num_partitions=num_partitions, activation_dtype=activation_dtype)
  acts = acts_at(batch_size // data_parallel // num_microbatches)
  parameters = sum(param_bytes.values())
  update = update_temporary_bytes(param_bytes.values())
  return Plan(
      model_config=model_config, batch_size=batch_size,
      task_feature_lengths=dict(task_feature_lengths), num_devices=num_devices,
      num_partitions=num_partitions,
      parameter_2d_sharding=parameter_2d_sharding,
      param_count=sum(math.prod(s) for s, _ in by_path.values()),
      parameters=parameters, optimizer_state=state_bytes,
      gradients=parameters * (2 if num_microbatches > 1 else 1),
      activations=sum(acts.values()),
      parameters_by_name=param_bytes, activations_by_kind=acts,
      activations_per_example=(sum(acts_at(1).values())
                               - sum(acts_at(0).values())),
      update_temporaries=update,
      device_memory_gib=device_memory_gib, headroom=headroom,
      num_microbatches=num_microbatches,
      data_layouts=layouts)


@dataclasses.dataclass(frozen=True)
class PlannedDevice:
  """A device as `partitioning.device_grid` sees it, without the hardware."""
  id: int
  process_index: int
  platform: str = "cpu"
  device_kind: str = "cpu"
  coords: tuple[int, int, int] = (0, 0, 0)
  core_on_chip: int = 0


# A TPU v4 host holds 2x2x1 chips.
_TPU_V4_HOST = (2, 2, 1)


def planned_devices(num_devices: int, devices_per_host: int | None = None,
                    tpu_topology: str | None = None) -> list[PlannedDevice]:
  """The devices of a run: hosts of `devices_per_host` host devices or GPUs
  (in process order), or the chips of a TPU v4 slice of `tpu_topology`
  ('4x4x4': x, y, z chips; 4 chips per host) for JAX's topology-aware mesh.
  """
  if tpu_topology is None:
    per_host = devices_per_host or num_devices
    if per_host < 1 or num_devices % per_host:
      raise errors.ConfigError(
          f"--devices_per_host={per_host} must divide --devices={num_devices}")
    return [PlannedDevice(i, i // per_host) for i in range(num_devices)]
  try:
    x, y, z = (int(n) for n in tpu_topology.split("x"))
  except ValueError:
    raise errors.ConfigError(
        f"--tpu_topology={tpu_topology!r} must be XxYxZ, e.g. 4x4x4") from None
  hx, hy, hz = _TPU_V4_HOST
  if x * y * z != num_devices or x % hx or y % hy or z % hz:
    raise errors.ConfigError(
        f"--tpu_topology={tpu_topology} must have --devices={num_devices} "
        f"chips in hosts of {hx}x{hy}x{hz}")
  chips = [(i, j, k) for k in range(z) for j in range(y) for i in range(x)]
  return [PlannedDevice(n, ((k // hz) * (y // hy) + j // hy) * (x // hx)
                        + i // hx, "tpu", "TPU v4", (i, j, k))
          for n, (i, j, k) in enumerate(chips)]


def _data_layouts(devices, num_devices, num_partitions, batch_size):
  if devices is None:
    return None
  if len(devices) != num_devices:
    raise errors.ConfigError(
        f"{len(devices)} planned devices for --devices={num_devices}")
  grid = partitioning.device_grid(num_partitions, devices)
  processes = sorted({d.process_index for d in devices})
  return tuple(partitioning.data_layout(grid, batch_size, p)
               for p in processes)


# The features of a packed training batch (seqio's EncDecFeatureConverter
# with pack=True, as the trainer trains), and the length each one takes.
_BATCH_FEATURES = {
    "encoder_input_tokens": "inputs", "encoder_segment_ids": "inputs",
    "encoder_positions": "inputs", "decoder_input_tokens": "targets",
    "decoder_target_tokens": "targets", "decoder_loss_weights": "targets",
    "decoder_segment_ids": "targets", "decoder_positions": "targets",
}


def compile_train_step(model_config: MT5Config, *, batch_size: int,
                       task_feature_lengths: Mapping[str, int],
                       optimizer=None, z_loss: float = 1e-4):
  """The trainer's train step on one device, compiled from shapes alone.

  ``train_step.make_train_step`` with ``trainer.make_optimizer()`` (unless
  `optimizer` is given), parameters and optimizer state donated as the
  trainer does, on a packed int32 batch of ``batch_size`` x the lengths.
  Nothing is allocated; `compiled_peak_bytes` reads XLA's memory figures,
  and the result runs as ``compiled(params, opt_state, batch, rng)``.
  """
  model = MT5(model_config)
  if optimizer is None:
    from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
    optimizer = trainer.make_optimizer()
  params = jax.tree.map(
      lambda box: jax.ShapeDtypeStruct(box.value.shape, jnp.float32),
      _abstract_params(model_config), is_leaf=_is_box)
  state = jax.eval_shape(optimizer.init, params)
  batch = {name: jax.ShapeDtypeStruct(
               (batch_size, task_feature_lengths[length]), jnp.int32)
           for name, length in _BATCH_FEATURES.items()}
  step = jax.jit(train_step.make_train_step(model, optimizer, z_loss),
                 donate_argnums=(0, 1))
  return step.lower(params, state, batch, jax.random.PRNGKey(0)).compile()


def compiled_peak_bytes(compiled) -> int:
  """XLA's own figure for a compiled step's peak: arguments + outputs +
  temporaries - outputs written into donated arguments (bytes)."""
  stats = compiled.memory_analysis()
  return (stats.argument_size_in_bytes + stats.output_size_in_bytes
          + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


def _required(value) -> bool:
  """Whether a gin value is `%gin.REQUIRED` (gin's finalize check)."""
  import gin  # pylint: disable=import-outside-toplevel
  return (isinstance(value, gin.config.ConfigurableReference)
          and value.selector == "gin.constant"
          and value.scoped_configurable_fn() is gin.REQUIRED)


def _resolve(value, binding: str):
  """A gin binding's value with macros and configurable calls evaluated.

  A macro still `%gin.REQUIRED` is a ConfigError naming it and `binding`.
  """
  import gin  # pylint: disable=import-outside-toplevel
  if isinstance(value, gin.config.ConfigurableReference):
    if value.selector == "gin.macro":
      macro = "/".join(value.scopes)
      if _required(gin.query_parameter(f"{macro}/gin.macro.value")):
        raise errors.ConfigError(
            f"{binding} = %{macro}, and the required macro {macro} is not "
            f"set: bind it (--gin.{macro}=...) or include a file that does")
    return _resolve(value.scoped_configurable_fn(), binding)
  if isinstance(value, dict):
    return {k: _resolve(v, binding) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return type(value)(_resolve(v, binding) for v in value)
  return value


def _trainer_setting(name: str, default=None, required: bool = True):
  import gin  # pylint: disable=import-outside-toplevel
  binding = f"trainer.train.{name}"
  try:
    value = gin.query_parameter(binding)
  except ValueError as e:
    if not required:
      return default
    raise errors.ConfigError(
        f"the gin configuration binds no {binding} (include "
        "gin/runs/finetune.gin after a model file)") from e
  return _resolve(value, binding)


def plan_from_gin(gin_files: Sequence[str], bindings: Sequence[str] = (), *,
                  num_devices: int, device_memory_gib: float | None = None,
                  devices: Sequence[Any] | None = None,
                  headroom: float = DEFAULT_HEADROOM) -> Plan:
  """`plan` for the training run a gin configuration describes.

  Reads what ``trainer.train`` would get: model_config, batch_size,
  task_feature_lengths, num_partitions, num_microbatches (the MODEL_CONFIG,
  BATCH_SIZE, TASK_FEATURE_LENGTHS, NUM_PARTITIONS and NUM_MICROBATCHES
  macros of gin/runs/finetune.gin,
  so ``BATCH_SIZE = 64`` bindings override them) and parameter_2d_sharding
  if bound. The configuration is parsed once and not finalized, so required
  macros that planning does not read (MODEL_DIR, ...) may stay unset; one it
  reads is an error naming it. Replaces the process's gin configuration.
  """
  import gin  # pylint: disable=import-outside-toplevel
  from t5x_runs import entrypoint  # pylint: disable=import-outside-toplevel
  from t5x_runs import gin_utils  # pylint: disable=import-outside-toplevel
  if not gin_files:
    raise errors.ConfigError("give at least one gin file (--gin_file=...)")
  files = [gin_utils.find_gin_file(f) for f in gin_files]
  entrypoint.configurables()
  # gin logs each search-path miss of an `include` as an error; not one here.
  quiet = logging.getLogger()
  def misses(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Path not found")
  quiet.addFilter(misses)
  try:
    gin.clear_config()
    gin_utils.parse_gin(files, bindings, finalize=False)
  finally:
    quiet.removeFilter(misses)
  try:
    model_config = _trainer_setting("model_config")
  except errors.KoraniError:
    raise
  except ValueError as e:  # e.g. an unknown size in models.mt5_config
    raise errors.ConfigError(f"gin configuration error: {e}") from e
  return plan(
      model_config,
      batch_size=_trainer_setting("batch_size"),
      task_feature_lengths=_trainer_setting("task_feature_lengths"),
      num_devices=num_devices,
      num_partitions=_trainer_setting("num_partitions", 1, required=False),
      parameter_2d_sharding=bool(_trainer_setting(
          "parameter_2d_sharding", False, required=False)),
      num_microbatches=_trainer_setting("num_microbatches", 1,
                                        required=False),
      device_memory_gib=device_memory_gib, headroom=headroom,
      devices=devices)


def _gib(n: float) -> str:
  return f"{n / GIB:,.3f}"


def format_data_layouts(layouts) -> list[str]:
  """Lines on which processes read which shard (none without layouts).

  e.g. for 4 processes x 2 devices, NUM_PARTITIONS=4, batch 8:
      data: 2 shards of 4 rows (batch 8, 2 replicas), 2 processes per shard
        shard 0: processes 0, 1 (replicas 0)
        shard 1: processes 2, 3 (replicas 1)
  """
  if not layouts:
    return []
  first = layouts[0]
  shards = {l.shard_id: l for l in layouts}
  lines = [f"data: {first.num_shards} shards of {first.host_batch_size} rows "
           f"(batch {first.batch_size}, {first.num_replicas} replicas), "
           f"{len(first.processes)} processes per shard"]
  shown = sorted(shards)[:8]
  for shard in shown:
    layout = shards[shard]
    lines.append(f"  shard {shard}: processes "
                 f"{partitioning.ranges(layout.processes)} (replicas "
                 f"{partitioning.ranges(layout.replicas)})")
  if len(shards) > len(shown):
    lines.append(f"  ... {len(shards) - len(shown)} more shards")
  return lines


def format_plan(p: Plan) -> str:
  """The plan as a table: component, GiB per device, GiB over all devices."""
  cfg = p.model_config
  lengths = ", ".join(f"{k} {v}" for k, v in p.task_feature_lengths.items())
  lines = [
      f"model: {cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers, "
      f"emb {cfg.emb_dim}, mlp {cfg.mlp_dim}, {cfg.num_heads} heads, vocab "
      f"{cfg.vocab_size:,}: {p.param_count:,} parameters",
      f"run: batch {p.batch_size} ({p.per_device_batch} per replica"
      + (f", {p.num_microbatches} microbatches of {p.microbatch_per_device}"
         if p.num_microbatches > 1 else "") + "), "
      f"lengths {lengths}, {cfg.dtype} activations, rematerialization "
      f"{cfg.remat_policy!r}",
      f"mesh: {p.num_devices} devices = {p.data_parallel} data x "
      f"{p.num_partitions} model, 2-D parameter sharding "
      f"{'on' if p.parameter_2d_sharding else 'off'}",
      *format_data_layouts(p.data_layouts),
      "",
  ]
  rows = [("parameters", p.parameters), ("optimizer state", p.optimizer_state),
          ("gradients", p.gradients), ("activations (estimate)", p.activations),
          ("update temporaries", p.update_temporaries), ("total", p.total)]
  headers = ("component", "GiB per device", f"GiB total ({p.num_devices})")
  cells = [headers] + [(name, _gib(n), _gib(n * p.num_devices))
                       for name, n in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(3)]
  for i, cell in enumerate(cells):
    if i == len(cells) - 1:
      lines.append("  ".join("-" * w for w in widths))
    lines.append("  ".join([cell[0].ljust(widths[0])]
                           + [c.rjust(w) for c, w in zip(cell[1:], widths[1:])]))
    if i == 0:
      lines.append("  ".join("-" * w for w in widths))
  lines.append("(activations and update temporaries are not alive together: "
               "the total counts the larger)")
  lines.append("")
  if p.fits is None:
    lines.append(f"fits: unknown ({_gib(p.total)} GiB per device; give "
                 "--device_memory=GiB)")
  else:
    lines.append(
        f"fits: {'yes' if p.fits else 'no'} ({_gib(p.total)} of "
        f"{p.device_memory_gib:g} GiB per device; at most "
        f"{_gib(p.usable_bytes)} GiB usable with {p.headroom:.0%} headroom)")
    largest = p.max_batch_size
    if largest:
      lines.append(f"largest batch that fits: {largest} "
                   f"({largest // p.data_parallel} per replica)")
    else:
      lines.append("largest batch that fits: none (not one example per "
                   "replica; more NUM_PARTITIONS or devices)")
    if not p.fits:
      count = p.smallest_num_microbatches()
      lines.append(
          f"smallest NUM_MICROBATCHES that fits batch {p.batch_size}: "
          f"{count} ({p.per_device_batch // count} sequences per replica "
          "at a time)" if count else
          f"no NUM_MICROBATCHES fits batch {p.batch_size} (even one "
          "sequence per replica at a time does not)")
  return "\n".join(lines)
