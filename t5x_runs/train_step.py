"""The training step, importable without TensorFlow or seqio.

Everything `trainer.train` runs on the devices, and nothing it reads data
or writes files with: the optimizer (`make_optimizer`), the jit-able step
(`make_train_step`: forward, loss, gradients, update) and the parameters
and optimizer state created directly in their shards (`init_train_state`).
It imports only JAX, Flax, optax and this project's model, loss, optimizer
and partitioning modules, so an accelerator machine that carries only those
can build and time the trainer's exact step
(bench/bench_accelerator.py); t5x_runs/trainer.py feeds it seqio batches
and checkpoints it with orbax.
"""

import dataclasses
import logging
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from t5x_runs import layer_optimizer
from t5x_runs import losses
from t5x_runs import partitioning
from t5x_runs.models import MT5, MT5Config


def make_optimizer(learning_rate: float = 1e-3, warmup_steps: int = 0,
                   decay_rate: float = 0.8, clipping_threshold: float = 1.0,
                   ) -> optax.GradientTransformation:
  """Adafactor as T5/mT5 fine-tuning uses it: constant rate 1e-3.

  optax's defaults otherwise: factored second moments for arrays whose two
  largest dimensions are at least 128, updates clipped to RMS
  `clipping_threshold` and multiplied by the parameter's RMS (at least
  1e-3), no momentum. gin configures it as ``trainer.make_optimizer``.

  Scanned layer parameters are updated layer by layer (`layer_optimizer`),
  as if they were not stacked.
  """
  schedule = (optax.linear_schedule(0.0, learning_rate, warmup_steps)
              if warmup_steps else learning_rate)
  if warmup_steps:
    schedule = optax.join_schedules(
        [schedule, optax.constant_schedule(learning_rate)], [warmup_steps])
  return layer_optimizer.per_layer(optax.adafactor(
      learning_rate=schedule, decay_rate=decay_rate,
      clipping_threshold=clipping_threshold))


def model_inputs(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """The features of a seqio EncDecFeatureConverter batch the model reads."""
  names = ("encoder_input_tokens", "decoder_input_tokens",
           "decoder_target_tokens", "encoder_segment_ids",
           "decoder_segment_ids", "encoder_positions", "decoder_positions")
  return {k: batch[k] for k in names if k in batch}


def make_train_step(model: MT5, optimizer: optax.GradientTransformation,
                    z_loss: float, num_microbatches: int = 1):
  """Returns train_step(params, opt_state, batch, dropout_rng).

  With ``num_microbatches`` > 1 the gradients are accumulated over that many
  microbatches in a ``lax.scan`` (t5x's ``accumulate_grads_microbatched``,
  google-research/t5x t5x/trainer.py at 49e5ebd), so only one microbatch's
  activations are alive at a time. Microbatch j holds the rows r with
  r % num_microbatches == j: each data-parallel replica keeps its own rows
  (no data moves between devices). Each microbatch's loss is normalized by
  the whole batch's token count, so the accumulated gradient, the update
  and the metrics equal the full batch's (dropout aside: microbatch j
  draws its masks from ``fold_in(dropout_rng, j)``).
  """

  def loss_fn(p, batch, rng):
    logits = model.apply({"params": p}, **model_inputs(batch),
                         enable_dropout=True, rngs={"dropout": rng})
    return losses.cross_entropy_loss(
        logits, batch["decoder_target_tokens"],
        batch["decoder_loss_weights"], z_loss=z_loss)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def accumulated_grads(params, batch, dropout_rng):
    """(metrics, grads) of the batch, one microbatch at a time."""
    def split(x):  # [B, ...] -> [M, B / M, ...], rows r % M == j at j.
      x = x.reshape(x.shape[0] // num_microbatches, num_microbatches,
                    *x.shape[1:])
      return nn.with_logical_constraint(
          jnp.swapaxes(x, 0, 1), (None, "batch") + (None,) * (x.ndim - 2))

    microbatches = jax.tree.map(split, batch)
    total_tokens = jnp.maximum(
        batch["decoder_loss_weights"].astype(jnp.float32).sum(), 1.0)

    def metrics_and_grads(index, microbatch):
      (loss, parts), grads = grad_fn(
          params, microbatch, jax.random.fold_in(dropout_rng, index))
      # The loss and every metric but num_tokens are sums over the
      # microbatch's tokens divided by their count: rescaled to the whole
      # batch's count, they add up to the batch's values.
      share = jnp.maximum(parts["num_tokens"], 1.0) / total_tokens
      metrics = {k: v * share for k, v in dict(parts, loss=loss).items()}
      metrics["num_tokens"] = parts["num_tokens"]
      return metrics, jax.tree.map(lambda g: g * share, grads)

    def body(accumulated, xs):
      return jax.tree.map(jnp.add, accumulated,
                          metrics_and_grads(*xs)), None

    first = jax.tree.map(lambda x: x[0], microbatches)
    zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype),
                         jax.eval_shape(metrics_and_grads, 0, first))
    (metrics, grads), _ = jax.lax.scan(
        body, zeros, (jnp.arange(num_microbatches), microbatches))
    return metrics, grads

  def train_step(params, opt_state, batch, dropout_rng):
    if num_microbatches == 1:
      (loss, parts), grads = grad_fn(params, batch, dropout_rng)
    else:
      parts, grads = accumulated_grads(params, batch, dropout_rng)
      loss = parts.pop("loss")
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = dict(parts, loss=loss, grad_norm=optax.global_norm(grads))
    return params, opt_state, metrics

  return train_step


@dataclasses.dataclass
class ShardedTrainState:
  """Parameters and optimizer state on a mesh, with their shardings."""
  params: Any
  opt_state: Any
  param_shardings: Any
  opt_state_shardings: Any
  mesh: Mesh

  def compile_step(self, model: MT5, optimizer: optax.GradientTransformation,
                   z_loss: float, num_microbatches: int = 1):
    """`make_train_step` jit-compiled with explicit in/out shardings.

    Parameters and optimizer state keep their shardings (and are donated:
    updated in place), the batch is split over 'data', the dropout key and
    the metrics are replicated.
    """
    replicated = partitioning.replicated(self.mesh)
    return jax.jit(
        make_train_step(model, optimizer, z_loss, num_microbatches),
        in_shardings=(self.param_shardings, self.opt_state_shardings,
                      partitioning.batch_sharding(self.mesh), replicated),
        out_shardings=(self.param_shardings, self.opt_state_shardings,
                       replicated),
        donate_argnums=(0, 1))


def init_train_state(model: MT5, optimizer: optax.GradientTransformation,
                     mesh: Mesh, rules: partitioning.LogicalRules,
                     task_feature_lengths: Mapping[str, int], seed: int,
                     init_checkpoint: str | None = None) -> ShardedTrainState:
  """Initial parameters and optimizer state, created directly in shards.

  Parameters come from `init_checkpoint` (a t5x or Hugging Face checkpoint,
  see t5x_runs/exchange) when given, else from the model's initializers with
  `seed`. Each device only ever holds its own shards.
  """
  dummy = {
      "encoder_input_tokens": jnp.ones((1, task_feature_lengths["inputs"]),
                                       jnp.int32),
      "decoder_input_tokens": jnp.ones((1, task_feature_lengths["targets"]),
                                       jnp.int32),
  }

  def init_params(rng):
    return model.init(rng, **dummy)["params"]

  boxed = jax.eval_shape(init_params, jax.random.PRNGKey(seed))
  param_shardings = partitioning.param_shardings(boxed, mesh, rules)
  abstract_params = nn.unbox(boxed)
  with mesh, nn.logical_axis_rules(rules):
    if init_checkpoint:
      params = load_initial_params(init_checkpoint, model.config,
                                   abstract_params, param_shardings)
    else:
      params = jax.jit(lambda r: nn.unbox(init_params(r)),
                       out_shardings=param_shardings)(jax.random.PRNGKey(seed))
    abstract_state = jax.eval_shape(optimizer.init, abstract_params)
    state_shardings = partitioning.opt_state_shardings(
        abstract_state, abstract_params, param_shardings, mesh)
    opt_state = jax.jit(optimizer.init, in_shardings=(param_shardings,),
                        out_shardings=state_shardings)(params)
  return ShardedTrainState(params, opt_state, param_shardings, state_shardings,
                           mesh)


def load_initial_params(path: str, config: MT5Config, abstract_params: Any,
                        shardings: Any) -> Any:
  """Parameters of a pretrained checkpoint, read shard by shard.

  Each device's shard is read from the checkpoint on its own
  (`jax.make_array_from_callback`): a host reads only the slices its
  devices hold, which matters for XXL's 13B parameters.
  """
  from t5x_runs import exchange  # pylint: disable=import-outside-toplevel
  loaded, _ = exchange.load_pretrained(path, config)
  exchange.check_params_match(loaded, abstract_params)
  logging.info("Initializing parameters from %s", path)

  def place(leaf, abstract, sharding):
    return jax.make_array_from_callback(
        abstract.shape, sharding,
        lambda index: np.asarray(leaf[index], np.float32))

  return jax.tree.map(place, loaded, abstract_params, shardings)
