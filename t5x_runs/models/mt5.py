"""The mT5 (T5.1.1) encoder-decoder network in Flax linen.

It follows t5x's ``examples/t5/network.py`` so that a t5x checkpoint maps
1:1 onto the parameter tree (shapes for emb=E, heads*head_dim=HD, mlp=M,
vocab=V, relative-position buckets=B):

    token_embedder/embedding                                 [V, E]
    encoder/relpos_bias/rel_embedding                        [heads, B]
    encoder/layers_{i}/pre_attention_layer_norm/scale        [E]
    encoder/layers_{i}/attention/{query,key,value}/kernel    [E, HD]
    encoder/layers_{i}/attention/out/kernel                  [HD, E]
    encoder/layers_{i}/pre_mlp_layer_norm/scale              [E]
    encoder/layers_{i}/mlp/{wi_0,wi_1}/kernel                [E, M]
    encoder/layers_{i}/mlp/wo/kernel                         [M, E]
    encoder/encoder_norm/scale                               [E]
    decoder/relpos_bias/rel_embedding                        [heads, B]
    decoder/layers_{i}/pre_self_attention_layer_norm/scale   [E]
    decoder/layers_{i}/self_attention/...                    (as attention)
    decoder/layers_{i}/pre_cross_attention_layer_norm/scale  [E]
    decoder/layers_{i}/encoder_decoder_attention/...         (as attention)
    decoder/layers_{i}/pre_mlp_layer_norm/scale              [E]
    decoder/layers_{i}/mlp/...                               (as encoder)
    decoder/decoder_norm/scale                               [E]
    decoder/logits_dense/kernel                              [E, V]

Every parameter is float32 and boxed with its t5x logical axis names
(``nn.get_partition_spec`` reads them). Activations carry logical sharding
constraints, which do nothing until axis rules and a mesh are active.

``config.remat_policy`` wraps each encoder and decoder layer in ``nn.remat``
('full': the backward pass recomputes the layer from its inputs; 'minimal':
from its inputs and its projections' outputs). The wrapped layer keeps its
name (``layers_{i}``), so the parameter tree above is the same for every
policy, and so are the results.

Autoregressive decoding (t5x's ``decode=True``) keeps keys and values in the
flax ``'cache'`` collection, per decoder layer::

    decoder/layers_{i}/self_attention/{cached_key,cached_value}
        [b, max_decode_length, heads, head_dim]; one position written per step
    decoder/layers_{i}/self_attention/cache_index            scalar int32
    decoder/layers_{i}/encoder_decoder_attention/{cached_key,cached_value}
        [b, enc_len, heads, head_dim]; the projected encoder output

``config.scan_layers`` runs each layer stack as one ``nn.scan`` (t5x's
``scan_layers``): XLA compiles one layer instead of all of them. The layers'
parameters are then stacked along a new first axis, with the logical axis
name 'layers' (replicated), in one module per stack::

    encoder/layers/attention/query/kernel                    [layers, E, HD]
    decoder/layers/mlp/wo/kernel                             [layers, M, E]
    ...                  (every encoder/layers_{i} and decoder/layers_{i} entry)

`stack_layers` and `unstack_layers` convert between the two trees; the
function, the remat policies and the decoding cache's layout (below, with
``layers/`` for ``layers_{i}/`` and an extra layers axis after the batch)
are the same.

A ``decode(..., decode=True)`` call with a mutable, empty ``'cache'`` and
decoder inputs of the full decode length creates the cache (cross-attention
keys and values are projected then, once); each later call takes one token
per row ([b, 1]) and returns its logits [b, 1, vocab]. Decoding never uses
``remat_policy`` (it only matters for gradients). `t5x_runs.decoding` runs
the loop.
"""

import functools
import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name
import numpy as np
from flax import linen as nn
from flax import traverse_util

from t5x_runs.models.config import MT5Config

# t5x's T5.1.1 initialisers. The query kernel uses ``_ATTENTION_INIT`` divided
# by sqrt(head_dim): T5 folds the logit scaling into the initialisation.
_EMBEDDING_INIT = nn.initializers.normal(stddev=1.0)
_ATTENTION_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
_MLP_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
_RELPOS_INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")

# Added to the attention logits of masked keys (t5x uses the same value).
_MASKED_LOGIT_BIAS = -1e10


def _dtype(config: MT5Config) -> jnp.dtype:
  return jnp.dtype(config.dtype)


def _dense(features, axes, kernel_init, dtype, name):
  """A bias-free projection of the last axis; the kernel is boxed float32."""
  return nn.Dense(
      features,
      use_bias=False,
      dtype=dtype,
      param_dtype=jnp.float32,
      kernel_init=nn.with_logical_partitioning(kernel_init, axes),
      dot_general=projection_dot,
      name=name)


# The checkpoint name of every projection's output (remat policies see
# through checkpoint_name, not into a custom_vjp's dot).
PROJECTION_NAME = "projection"


@jax.custom_vjp
def _projection(inputs: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.dot_general(inputs, kernel,
                             (((inputs.ndim - 1,), (0,)), ((), ())))


def _projection_forward(inputs, kernel):
  return _projection(inputs, kernel), (inputs, kernel)


def _projection_backward(residuals, grad):
  inputs, kernel = residuals
  grad_inputs = jax.lax.dot_general(grad, kernel,
                                    (((grad.ndim - 1,), (1,)), ((), ())))
  lead = tuple(range(inputs.ndim - 1))
  grad_kernel = jax.lax.dot_general(inputs, grad, ((lead, lead), ((), ())))
  return grad_inputs, grad_kernel


_projection.defvjp(_projection_forward, _projection_backward)


def projection_dot(inputs: jax.Array, kernel: jax.Array, dimension_numbers,
                   precision=None) -> jax.Array:
  """``nn.Dense``'s dot, [..., in] x [in, out] -> [..., out], whose kernel
  gradient contracts the leading axes of the inputs and of the incoming
  gradient in one dot: inputs [b, l, in], grad [b, l, out] -> [in, out].

  Autodiff of the same dot writes that gradient as grad^T x inputs and XLA:CPU
  transposes the [b * l, out] gradient for every projection; here it
  transposes each layer input once for all the projections that read it
  (query, key and value; wi_0 and wi_1), and the [b * l, vocab] logits
  gradient not at all (bench/RESULTS.md, 2026-12-06). Values and gradients
  are those of ``lax.dot_general`` up to float rounding.
  """
  if dimension_numbers != (((inputs.ndim - 1,), (0,)), ((), ())) or (
      kernel.ndim != 2 or precision is not None):
    raise ValueError(f"projection_dot takes nn.Dense's dot only, got "
                     f"{dimension_numbers}, kernel {kernel.shape}, "
                     f"precision {precision}")
  return checkpoint_name(_projection(inputs, kernel), PROJECTION_NAME)


def _dropout(config: MT5Config) -> nn.Dropout:
  """t5x's residual dropout: one mask per sequence, shared along length."""
  return nn.Dropout(rate=config.dropout_rate, broadcast_dims=(-2,))


class Embed(nn.Module):
  """Token embedding shared by the encoder and the decoder inputs."""

  config: MT5Config

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    """[batch, length] int ids -> [batch, length, emb]."""
    cfg = self.config
    embedding = self.param(
        "embedding",
        nn.with_logical_partitioning(_EMBEDDING_INIT, ("vocab", "embed")),
        (cfg.vocab_size, cfg.emb_dim), jnp.float32)
    x = jnp.take(embedding.astype(_dtype(cfg)), tokens, axis=0)
    return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class RMSNorm(nn.Module):
  """T5's layer norm: divides by the root mean square; no centring, no bias."""

  config: MT5Config

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    scale = self.param(
        "scale", nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
        (x.shape[-1],), jnp.float32)
    x = x.astype(jnp.float32)
    mean_square = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    y = x * jax.lax.rsqrt(mean_square + cfg.layer_norm_epsilon)
    return y.astype(_dtype(cfg)) * scale.astype(_dtype(cfg))


def relative_position_bucket(relative_position: np.ndarray, bidirectional: bool,
                             num_buckets: int, max_distance: int) -> np.ndarray:
  """Maps offsets (key position - query position) to bucket ids, as T5 does.

  Half of the buckets (of each direction, when bidirectional) hold one small
  offset each; the rest cover offsets up to ``max_distance`` in
  logarithmically wider ranges, and farther offsets share the last bucket.
  Unidirectional (decoder) buckets map every future offset to bucket 0.
  """
  bucket = np.zeros_like(relative_position)
  distance = -relative_position
  if bidirectional:
    num_buckets //= 2
    bucket += (distance < 0).astype(bucket.dtype) * num_buckets
    distance = np.abs(distance)
  else:
    distance = np.maximum(distance, 0)
  max_exact = num_buckets // 2
  log_ratio = (np.log(distance.astype(np.float32) / max_exact
                      + np.finfo(np.float32).eps)
               / np.log(max_distance / max_exact))
  large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(bucket.dtype)
  large = np.minimum(large, num_buckets - 1)
  return bucket + np.where(distance < max_exact, distance, large)


class RelativePositionBias(nn.Module):
  """Learned per-head attention bias for each bucket of relative offsets."""

  config: MT5Config
  bidirectional: bool

  @nn.compact
  def __call__(self, query_length: int, key_length: int) -> jax.Array:
    """Returns the float32 bias [1, heads, query_length, key_length]."""
    cfg = self.config
    # Every offset key - query, from -(query_length - 1) to key_length - 1.
    offsets = np.arange(1 - query_length, key_length)
    buckets = relative_position_bucket(
        offsets, self.bidirectional, cfg.relative_attention_num_buckets,
        cfg.relative_attention_max_distance)
    rel_embedding = self.param(
        "rel_embedding",
        nn.with_logical_partitioning(_RELPOS_INIT, ("heads", "relpos_buckets")),
        (cfg.num_heads, cfg.relative_attention_num_buckets), jnp.float32)
    per_offset = jnp.take(rel_embedding, buckets, axis=1)
    return toeplitz(per_offset, query_length, key_length)[None]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def toeplitz(per_offset: jax.Array, query_length: int, key_length: int
             ) -> jax.Array:
  """[..., q + k - 1] values per offset -> [..., q, k] with
  ``out[..., i, j] = per_offset[..., j - i + q - 1]``.

  E.g. per_offset [a, b, c, d] (q=2, k=3: offsets -1..2) gives
  [[b, c, d], [a, b, c]]. The gradient sums the incoming [..., q, k]
  gradient along its diagonals, with a pad and a reshape that skew the
  rows (autodiff of the gather would scatter-add element by element, a
  large part of a small model's step on CPU).
  """
  index = (np.arange(key_length)[None, :] - np.arange(query_length)[:, None]
           + query_length - 1)
  return jnp.take(per_offset, index, axis=-1)


def _toeplitz_forward(per_offset, query_length, key_length):
  return toeplitz(per_offset, query_length, key_length), None


def _toeplitz_backward(query_length, key_length, _, grad):
  # Rows reversed, row r then sits r places further right once the rows,
  # padded to width q + k, are read back with width q + k - 1: column c of
  # the skewed array holds offset c - (q - 1) in every row (or a pad zero).
  q, k = query_length, key_length
  lead = grad.shape[:-2]
  flipped = jnp.flip(grad, axis=-2)
  padded = jnp.pad(flipped, [(0, 0)] * len(lead) + [(0, 0), (0, q)])
  flat = padded.reshape(*lead, q * (q + k))[..., :q * (q + k - 1)]
  skewed = flat.reshape(*lead, q, q + k - 1)
  return (skewed.sum(axis=-2),)


toeplitz.defvjp(_toeplitz_forward, _toeplitz_backward)


def softmax_context(logits: jax.Array, value: jax.Array,
                    key_dropout=lambda ones: ones) -> jax.Array:
  """``einsum('bhqk,bkhd->bqhd', key_dropout(softmax(logits)), value)``.

  logits [b, heads, q, k] float32, value [b, k, heads, head_dim] -> context
  [b, q, heads, head_dim] in value's dtype. ``key_dropout`` is t5x's
  attention dropout: one mask per (row, head, key), shared by every query
  (``nn.Dropout(broadcast_dims=(-2,))``); it is drawn on a [b, heads, 1, k]
  array of ones and applied to the value rows, which is the same product.
  The softmax's division by its normalizer is applied to the context. So no
  weights-sized [b, heads, q, k] array is written beyond the logits and
  their exponentials, and the gradient needs no reduction over keys: XLA:CPU
  reads and writes each layer's attention-sized arrays fewer times
  (bench/RESULTS.md, 2026-12-06).
  """
  top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
  unnormalized = jnp.exp(logits - top)
  normalizer = jnp.sum(unnormalized, axis=-1)                 # [b, heads, q]
  keep = key_dropout(jnp.ones((*logits.shape[:2], 1, logits.shape[3]),
                              value.dtype))                   # [b, heads, 1, k]
  value = value * jnp.transpose(keep, (0, 3, 1, 2))          # [b, k, heads, 1]
  context = jnp.einsum("bhqk,bkhd->bqhd", unnormalized.astype(value.dtype),
                       value)
  return context / jnp.swapaxes(normalizer, 1, 2)[..., None].astype(
      value.dtype)


class MultiHeadAttention(nn.Module):
  """Multi-head dot-product attention with no biases and no logit scaling."""

  config: MT5Config

  @nn.compact
  def __call__(self, inputs_q: jax.Array, inputs_kv: jax.Array,
               mask: jax.Array | None, bias: jax.Array | None = None,
               deterministic: bool = True,
               kv_cache: str = "none") -> jax.Array:
    """Attends from ``inputs_q`` [b, q, emb] to ``inputs_kv`` [b, k, emb].

    ``mask`` [b, 1, q, k] is True where a query may attend to a key; ``bias``
    (e.g. [1, heads, q, k]) is added to the logits. Returns [b, q, emb].

    ``kv_cache`` selects decoding with the ``'cache'`` collection (see the
    module docstring): 'none' (no cache), 'causal' (self-attention: while the
    cache is empty it is created for ``inputs_q``'s length and the call is an
    ordinary one; afterwards ``inputs_q`` is one position, its key and value
    are written at ``cache_index``, ``mask`` is ignored and keys up to that
    index are attended, ``bias`` [1, heads, L, L] is read at that row) or
    'static' (cross-attention: the keys and values of ``inputs_kv`` are
    projected on the first call and read from the cache afterwards).
    """
    cfg = self.config
    dtype = _dtype(cfg)
    joined = cfg.num_heads * cfg.head_dim
    query_init = nn.initializers.variance_scaling(
        1.0 / cfg.head_dim, "fan_in", "normal")

    def project(name, kernel_init, x):
      y = _dense(joined, ("embed", "joined_kv"), kernel_init, dtype, name)(x)
      y = y.reshape(*y.shape[:-1], cfg.num_heads, cfg.head_dim)
      return nn.with_logical_constraint(y, ("batch", "length", "heads", "kv"))

    query = project("query", query_init, inputs_q)
    if kv_cache == "static" and self.has_variable("cache", "cached_key"):
      key = self.get_variable("cache", "cached_key")
      value = self.get_variable("cache", "cached_value")
    else:
      key = project("key", _ATTENTION_INIT, inputs_kv)
      value = project("value", _ATTENTION_INIT, inputs_kv)
    if kv_cache == "static":
      self.put_variable("cache", "cached_key", key)
      self.put_variable("cache", "cached_value", value)
    elif kv_cache == "causal":
      key, value, mask, bias = self._causal_cache_step(key, value, mask, bias)
    elif kv_cache != "none":
      raise ValueError(f"kv_cache={kv_cache!r}: use 'none', 'causal' or "
                       "'static'")

    logits = jnp.einsum("bqhd,bkhd->bhqk", query, key,
                        preferred_element_type=jnp.float32)
    # Mask and bias as one additive term: every layer's is the same, so XLA
    # builds one [b, heads, q, k] array for the stack instead of two.
    logits += jnp.where(mask, 0.0 if bias is None else bias,
                        _MASKED_LOGIT_BIAS)
    context = softmax_context(
        logits, value,
        functools.partial(_dropout(cfg), deterministic=deterministic))
    context = nn.with_logical_constraint(context,
                                         ("batch", "length", "heads", "kv"))
    context = context.reshape(*context.shape[:-2], joined)
    return _dense(inputs_q.shape[-1], ("joined_kv", "embed"), _ATTENTION_INIT,
                  dtype, "out")(context)

  def _causal_cache_step(self, key, value, mask, bias):
    """Self-attention decoding: (key, value, mask, bias) over the cache.

    While the cache is empty it is created (zeros, the shape of ``key``) and
    the arguments are returned unchanged. Afterwards ``key`` and ``value``
    [b, 1, heads, kv] are written at ``cache_index``, which advances by one.
    """
    initialized = self.has_variable("cache", "cached_key")
    cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape,
                               key.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros,
                                 value.shape, value.dtype)
    cache_index = self.variable("cache", "cache_index",
                                lambda: jnp.array(0, jnp.int32))
    if not initialized:
      return key, value, mask, bias
    if key.shape[1] != 1:
      raise ValueError(
          f"cached decoding takes one position per step, got {key.shape[1]}")
    index = cache_index.value
    length = cached_key.value.shape[1]
    key = jax.lax.dynamic_update_slice(cached_key.value, key, (0, index, 0, 0))
    value = jax.lax.dynamic_update_slice(cached_value.value, value,
                                         (0, index, 0, 0))
    cached_key.value, cached_value.value = key, value
    cache_index.value = index + 1
    mask = (jnp.arange(length) <= index)[None, None, None, :]
    if bias is not None:
      bias = jax.lax.dynamic_slice_in_dim(bias, index, 1, axis=2)
    return key, value, mask, bias


class GatedGeluMlp(nn.Module):
  """T5.1.1 feed-forward: wo(gelu(wi_0(x)) * wi_1(x))."""

  config: MT5Config

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
    cfg = self.config
    dtype = _dtype(cfg)
    gate = _dense(cfg.mlp_dim, ("embed", "mlp"), _MLP_INIT, dtype, "wi_0")(x)
    linear = _dense(cfg.mlp_dim, ("embed", "mlp"), _MLP_INIT, dtype, "wi_1")(x)
    hidden = nn.gelu(gate, approximate=True) * linear
    hidden = _dropout(cfg)(hidden, deterministic=deterministic)
    hidden = nn.with_logical_constraint(hidden, ("batch", "length", "mlp"))
    return _dense(x.shape[-1], ("mlp", "embed"), _MLP_INIT, dtype, "wo")(hidden)


def _residual_constraint(x: jax.Array) -> jax.Array:
  return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class EncoderLayer(nn.Module):
  """Pre-norm self-attention block, then pre-norm MLP block."""

  config: MT5Config

  @nn.compact
  def __call__(self, x, mask, position_bias, deterministic=True):
    cfg = self.config
    y = RMSNorm(cfg, name="pre_attention_layer_norm")(x)
    y = MultiHeadAttention(cfg, name="attention")(
        y, y, mask, position_bias, deterministic)
    x = _residual_constraint(x + _dropout(cfg)(y, deterministic=deterministic))

    y = RMSNorm(cfg, name="pre_mlp_layer_norm")(x)
    y = GatedGeluMlp(cfg, name="mlp")(y, deterministic)
    return _residual_constraint(
        x + _dropout(cfg)(y, deterministic=deterministic))


class DecoderLayer(nn.Module):
  """Pre-norm causal self-attention, cross-attention, then MLP blocks."""

  config: MT5Config

  @nn.compact
  def __call__(self, x, encoded, self_mask, cross_mask, position_bias,
               deterministic=True, decode=False):
    cfg = self.config
    y = RMSNorm(cfg, name="pre_self_attention_layer_norm")(x)
    y = MultiHeadAttention(cfg, name="self_attention")(
        y, y, self_mask, position_bias, deterministic,
        "causal" if decode else "none")
    x = _residual_constraint(x + _dropout(cfg)(y, deterministic=deterministic))

    y = RMSNorm(cfg, name="pre_cross_attention_layer_norm")(x)
    y = MultiHeadAttention(cfg, name="encoder_decoder_attention")(
        y, encoded, cross_mask, None, deterministic,
        "static" if decode else "none")
    x = _residual_constraint(x + _dropout(cfg)(y, deterministic=deterministic))

    y = RMSNorm(cfg, name="pre_mlp_layer_norm")(x)
    y = GatedGeluMlp(cfg, name="mlp")(y, deterministic)
    return _residual_constraint(
        x + _dropout(cfg)(y, deterministic=deterministic))


# The positional index of ``deterministic`` in each layer's __call__, counting
# ``self`` as 0 (nn.remat's static_argnums): a Python bool that selects code.
_DETERMINISTIC_ARGNUM = {"EncoderLayer": 4, "DecoderLayer": 6}

# nn.remat's checkpoint policy for each remat_policy but 'none' (t5x's).
_CHECKPOINT_POLICIES = {
    "full": None,  # save nothing inside the layer: recompute all of it
    # Save the projections' outputs (t5x's dots_with_no_batch_dims_saveable;
    # ours are named, as a custom_vjp hides its dot from that policy).
    "minimal": jax.checkpoint_policies.save_from_both_policies(
        jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
        jax.checkpoint_policies.save_only_these_names(PROJECTION_NAME)),
}


@functools.cache
def _layer_class(layer: type[nn.Module], remat_policy: str) -> type[nn.Module]:
  """``layer`` as is ('none') or rematerialized with ``remat_policy``."""
  if remat_policy == "none":
    return layer
  return nn.remat(layer, policy=_CHECKPOINT_POLICIES[remat_policy],
                  static_argnums=(_DETERMINISTIC_ARGNUM[layer.__name__],))


# The name of a scanned layer stack's module: ``encoder/layers/...``.
SCANNED_LAYERS = "layers"
# The logical axis name of the stacked (first) dimension of scanned
# parameters; partitioning maps it to no mesh axis (replicated), as t5x.
LAYERS_AXIS = "layers"


def _scan_layers(layer: nn.Module, length: int, x: jax.Array, *broadcast):
  """Applies ``layer`` ``length`` times to ``x`` as one ``nn.scan``.

  The layer's parameters get a leading dimension of size ``length`` with
  the logical axis name ``LAYERS_AXIS``; each step of the scan reads its
  own slice (and its own dropout key). ``broadcast`` (masks, position bias,
  the static ``deterministic``/``decode`` flags) is the same for every
  layer. Inside the scan the 'cache' collection is stacked along its first
  axis too; outside it keeps the batch first (`_cache_layout`).
  """
  def body(module, carry, *args):
    return module(carry, *args), None

  scan = nn.scan(
      body, variable_axes={"params": 0, "cache": 0},
      split_rngs={"params": True, "dropout": True},
      in_axes=(nn.broadcast,) * len(broadcast), length=length,
      metadata_params={nn.PARTITION_NAME: LAYERS_AXIS})
  # Outside the scan the cache keeps the batch first (decoders reorder beams
  # along axis 0) and one cache_index: [b, layers, ...] and a scalar.
  cached = nn.map_variables(
      lambda module, *args: scan(module, *args), "cache",
      trans_in_fn=functools.partial(_cache_layout, length=length,
                                    scanned=True),
      trans_out_fn=functools.partial(_cache_layout, length=length,
                                     scanned=False),
      init=False, mutable=True)
  return cached(layer, x, *broadcast)[0]


def _cache_layout(cache, length: int, scanned: bool):
  """A scanned stack's 'cache' between the scan's layout (layers first, a
  cache_index per layer) and the decoders' (batch first, one scalar
  cache_index: every layer writes the same position)."""
  def convert(path, x):
    if path[-1].key == "cache_index":
      return jnp.broadcast_to(x, (length,)) if scanned else x[0]
    return jnp.moveaxis(x, 1, 0) if scanned else jnp.moveaxis(x, 0, 1)
  return jax.tree_util.tree_map_with_path(convert, cache)


class Encoder(nn.Module):
  """Embedded tokens [b, len, emb] -> encoded [b, len, emb]."""

  config: MT5Config

  @nn.compact
  def __call__(self, embedded, mask, deterministic=True):
    cfg = self.config
    x = _dropout(cfg)(embedded, deterministic=deterministic)
    length = x.shape[-2]
    position_bias = RelativePositionBias(
        cfg, bidirectional=True, name="relpos_bias")(length, length)
    layer = _layer_class(EncoderLayer, cfg.remat_policy)
    if cfg.scan_layers:
      x = _scan_layers(layer(cfg, name=SCANNED_LAYERS), cfg.num_encoder_layers,
                       x, mask, position_bias, deterministic)
    for i in range(0 if cfg.scan_layers else cfg.num_encoder_layers):
      # Positional arguments: nn.remat marks `deterministic` static by index.
      x = layer(cfg, name=f"layers_{i}")(x, mask, position_bias, deterministic)
    x = RMSNorm(cfg, name="encoder_norm")(x)
    return nn.Dropout(rate=cfg.dropout_rate)(x, deterministic=deterministic)


class Decoder(nn.Module):
  """Embedded decoder inputs [b, dec_len, emb] -> logits [b, dec_len, vocab]."""

  config: MT5Config

  @nn.compact
  def __call__(self, embedded, encoded, self_mask, cross_mask,
               deterministic=True, decode=False, max_decode_length=None):
    """``decode``: cached decoding (module docstring); the relative position
    bias then covers ``max_decode_length`` positions (default: the input's)."""
    cfg = self.config
    y = _dropout(cfg)(embedded, deterministic=deterministic)
    length = (max_decode_length or y.shape[-2]) if decode else y.shape[-2]
    position_bias = RelativePositionBias(
        cfg, bidirectional=False, name="relpos_bias")(length, length)
    # Decoding computes no gradients: its layers are never rematerialized.
    layer = _layer_class(DecoderLayer,
                         "none" if decode else cfg.remat_policy)
    if cfg.scan_layers:
      y = _scan_layers(layer(cfg, name=SCANNED_LAYERS), cfg.num_decoder_layers,
                       y, encoded, self_mask, cross_mask, position_bias,
                       deterministic, *((True,) if decode else ()))
    for i in range(0 if cfg.scan_layers else cfg.num_decoder_layers):
      # Positional arguments: nn.remat marks `deterministic` static by index.
      if decode:
        y = layer(cfg, name=f"layers_{i}")(
            y, encoded, self_mask, cross_mask, position_bias, deterministic,
            True)
        continue
      y = layer(cfg, name=f"layers_{i}")(
          y, encoded, self_mask, cross_mask, position_bias, deterministic)
    y = RMSNorm(cfg, name="decoder_norm")(y)
    y = nn.Dropout(rate=cfg.dropout_rate)(y, deterministic=deterministic)
    logits = _dense(cfg.vocab_size, ("embed", "vocab"), _MLP_INIT, jnp.float32,
                    "logits_dense")(y)
    return nn.with_logical_constraint(logits, ("batch", "length", "vocab"))


def _pair_mask(query, key, pairwise_fn=jnp.logical_and) -> jax.Array:
  """[b, q] and [b, k] -> boolean [b, 1, q, k]."""
  return nn.make_attention_mask(query, key, pairwise_fn, dtype=jnp.bool_)


class MT5(nn.Module):
  """mT5 encoder-decoder on batches from seqio's ``EncDecFeatureConverter``.

  Token id 0 is padding. With segment ids (packed batches) attention never
  crosses segments. Positions are accepted because packed batches contain
  them, but unused: T5's relative attention takes offsets from array indices,
  which equal offsets within a segment.

  Example::

      model = MT5(mt5_config('tiny'))
      variables = model.init(jax.random.key(0), enc_tokens, dec_inputs)
      logits = model.apply(variables, enc_tokens, dec_inputs, dec_targets)
      # enc_tokens [b, enc_len], dec_* [b, dec_len] -> logits [b, dec_len, V]

  Dropout needs ``enable_dropout=True`` and ``rngs={'dropout': key}``.
  """

  config: MT5Config

  def setup(self):
    self.token_embedder = Embed(self.config)
    self.encoder = Encoder(self.config)
    self.decoder = Decoder(self.config)

  def encode(self, encoder_input_tokens, encoder_segment_ids=None,
             enable_dropout=False):
    """[b, enc_len] tokens -> encoded [b, enc_len, emb] in ``config.dtype``."""
    valid = encoder_input_tokens > 0
    mask = _pair_mask(valid, valid)
    if encoder_segment_ids is not None:
      mask &= _pair_mask(encoder_segment_ids, encoder_segment_ids, jnp.equal)
    return self.encoder(self.token_embedder(encoder_input_tokens), mask,
                        deterministic=not enable_dropout)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens,
             decoder_target_tokens=None, encoder_segment_ids=None,
             decoder_segment_ids=None, decoder_positions=None,
             enable_dropout=False, decode=False, max_decode_length=None):
    """Returns float32 logits [b, dec_len, vocab] given ``encode``'s output.

    Decoder positions whose ``decoder_target_tokens`` is 0 are padding (as in
    t5x); without targets every decoder position counts as real, which only
    changes the outputs at padded positions.

    ``decode=True`` decodes with the ``'cache'`` collection (see the module
    docstring; `t5x_runs.decoding` drives it): no targets, no segment ids.
    """
    del decoder_positions  # Relative attention needs no absolute positions.
    if decode and (decoder_target_tokens is not None
                   or encoder_segment_ids is not None):
      raise ValueError("cached decoding takes neither decoder targets nor "
                       "segment ids")
    if (encoder_segment_ids is None) != (decoder_segment_ids is None):
      raise ValueError(
          "packed batches need both encoder_segment_ids and "
          "decoder_segment_ids; got only one of them")
    if decoder_target_tokens is None:
      decoder_valid = jnp.ones(decoder_input_tokens.shape, jnp.bool_)
    else:
      decoder_valid = decoder_target_tokens > 0
    encoder_valid = encoder_input_tokens > 0

    self_mask = (nn.make_causal_mask(decoder_input_tokens, dtype=jnp.bool_)
                 & _pair_mask(decoder_valid, decoder_valid))
    cross_mask = _pair_mask(decoder_valid, encoder_valid)
    if decoder_segment_ids is not None:
      self_mask &= _pair_mask(decoder_segment_ids, decoder_segment_ids,
                              jnp.equal)
      cross_mask &= _pair_mask(decoder_segment_ids, encoder_segment_ids,
                               jnp.equal)
    if decode:
      return self.decoder(self.token_embedder(decoder_input_tokens), encoded,
                          self_mask, cross_mask,
                          deterministic=not enable_dropout, decode=True,
                          max_decode_length=max_decode_length)
    return self.decoder(self.token_embedder(decoder_input_tokens), encoded,
                        self_mask, cross_mask, deterministic=not enable_dropout)

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               decoder_target_tokens=None, encoder_segment_ids=None,
               decoder_segment_ids=None, encoder_positions=None,
               decoder_positions=None, enable_dropout=False):
    """Returns float32 logits [b, dec_len, vocab]; see ``encode``/``decode``."""
    del encoder_positions  # Relative attention needs no absolute positions.
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids,
                          enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       decoder_target_tokens, encoder_segment_ids,
                       decoder_segment_ids, decoder_positions, enable_dropout)


def param_count(config: MT5Config) -> int:
  """Number of parameters, from shapes only (instant even for xxl)."""
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  shapes = jax.eval_shape(MT5(config).init, jax.random.key(0), tokens, tokens)
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))


def _layer_index(key: str) -> int | None:
  """3 for 'layers_3'; None for any other key."""
  prefix = "layers_"
  if key.startswith(prefix) and key[len(prefix):].isdigit():
    return int(key[len(prefix):])
  return None


def stack_layers(params: Mapping[str, Any], stack=np.stack) -> dict:
  """The unscanned parameter tree -> the scanned one (``scan_layers``).

  ``encoder/layers_{i}/...`` (and the decoder's) become ``encoder/layers/...``
  with the layers stacked along a new first axis::

      encoder/layers_0/mlp/wo/kernel [M, E], ..., layers_23/...  ->
      encoder/layers/mlp/wo/kernel   [24, M, E]

  ``stack`` combines one parameter's per-layer arrays (``np.stack``, or a
  lazy stack for checkpoint readers). Other entries are kept as they are;
  a tree that is scanned already is returned unchanged.
  """
  out = {}
  for key, child in params.items():
    if not isinstance(child, Mapping):
      out[key] = child
      continue
    layers = {_layer_index(k): v for k, v in child.items()
              if _layer_index(k) is not None}
    if layers and sorted(layers) != list(range(len(layers))):
      raise ValueError(f"{key}: layers {sorted(layers)} are not 0..n-1")
    rest = {k: v for k, v in child.items() if _layer_index(k) is None}
    out[key] = stack_layers(rest, stack) if not layers else dict(rest)
    if layers:
      flat = [traverse_util.flatten_dict(dict(layers[i]))
              for i in range(len(layers))]
      out[key][SCANNED_LAYERS] = traverse_util.unflatten_dict(
          {path: stack([f[path] for f in flat]) for path in flat[0]})
  return out


def unstack_layers(params: Mapping[str, Any]) -> dict:
  """The scanned parameter tree -> the unscanned one (`stack_layers`'s
  inverse): ``encoder/layers/...`` [n, ...] -> ``encoder/layers_{i}/...``.
  An unscanned tree is returned unchanged."""
  out = {}
  for key, child in params.items():
    if not isinstance(child, Mapping):
      out[key] = child
    elif key == SCANNED_LAYERS and any(isinstance(v, Mapping)
                                       for v in child.values()):
      flat = traverse_util.flatten_dict(dict(child))
      count = {np.shape(v)[0] for v in flat.values()}
      if len(count) != 1:
        raise ValueError(f"{key}: stacked parameters disagree on the number "
                         f"of layers: {sorted(count)}")
      for i in range(count.pop()):
        out[f"layers_{i}"] = traverse_util.unflatten_dict(
            {path: value[i] for path, value in flat.items()})
    else:
      out[key] = unstack_layers(child)
  return out
