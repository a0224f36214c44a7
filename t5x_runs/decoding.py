"""Cached, jit-compiled autoregressive decoding of an `MT5` model.

The encoder runs once per batch. The decoder then takes one token per step
inside a `jax.lax.while_loop` of at most ``max_decode_length`` steps, with
its self-attention keys/values and the projected encoder output kept in the
flax ``'cache'`` collection (see `t5x_runs.models.mt5`). The loop stops when
every row has produced EOS (id 1).

    tokens = greedy_decode(model, params, encoder_input_tokens, 32)
    # encoder_input_tokens [b, enc_len] -> tokens [b, 32]: the generated ids,
    # EOS included, zeros after it. tokens[:, 0] is the first generated token
    # (the decoder's start token, 0, is not part of the output).

`beam_search` follows t5x's ``decoding.beam_search``: ``beam_size`` hypotheses
per row, finished ones scored by log-likelihood / ((5 + length) / 6) ** alpha.

`Predictor` is a seqio ``predict_fn``: it sorts a task's examples by input
length, decodes them in batches whose inputs are cut to a length bucket (one
compilation per (batch size, input bucket, max decode length)), data-parallel
over the evaluation's mesh, and returns ``[(index, token ids)]`` for seqio to
detokenize and postprocess.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import errors
from t5x_runs import partitioning
from t5x_runs import scoring
from t5x_runs.models import MT5

EOS_ID = 1
# Log-probability of impossible hypotheses (t5x uses the same value).
_NEG_INF = -1.0e7


def _cached_decoder(model: MT5, params: Any, encoder_input_tokens: jax.Array,
                    max_decode_length: int):
  """Encodes once; returns (initial cache, step fn: (tokens [b], cache) ->
  (float32 logits [b, vocab], cache))."""
  encoded = model.apply({"params": params}, encoder_input_tokens,
                        method=MT5.encode)
  batch = encoder_input_tokens.shape[0]
  decode = functools.partial(
      model.apply, method=MT5.decode, decode=True,
      max_decode_length=max_decode_length, mutable=["cache"])
  # Creates the cache: zeros for self-attention, the projected encoder output
  # for cross-attention. The logits of this call are discarded (and pruned by
  # XLA); only the cache is used.
  _, variables = decode(
      {"params": params}, encoded, encoder_input_tokens,
      jnp.zeros((batch, max_decode_length), jnp.int32))

  def step(tokens, cache):
    logits, variables = decode({"params": params, "cache": cache}, encoded,
                               encoder_input_tokens, tokens[:, None])
    return logits[:, 0], variables["cache"]

  return variables["cache"], step


def greedy_decode(model: MT5, params: Any, encoder_input_tokens: jax.Array,
                  max_decode_length: int, return_logits: bool = False):
  """Greedy (argmax) decoding with the key/value cache.

  Args:
    model: the network.
    params: its parameters (plain arrays).
    encoder_input_tokens: [b, enc_len] int ids, 0 = padding.
    max_decode_length: the most tokens generated per row (EOS included).
    return_logits: also return the logits of every step.

  Returns:
    int32 tokens [b, max_decode_length] (zeros after a row's EOS) and, with
    ``return_logits``, float32 logits [b, max_decode_length, vocab]: row r,
    step t holds the distribution that chose tokens[r, t] (zeros after the
    loop stopped).
  """
  batch = encoder_input_tokens.shape[0]
  cache, step = _cached_decoder(model, params, encoder_input_tokens,
                                max_decode_length)
  tokens = jnp.zeros((batch, max_decode_length), jnp.int32)
  logits_out = (jnp.zeros((batch, max_decode_length, model.config.vocab_size),
                          jnp.float32) if return_logits else None)
  state = (jnp.int32(0), jnp.zeros((batch,), jnp.int32), jnp.zeros((batch,), jnp.bool_),
           tokens, logits_out, cache)

  def not_done(state):
    index, _, done, *_ = state
    return (index < max_decode_length) & ~jnp.all(done)

  def body(state):
    index, previous, done, tokens, logits_out, cache = state
    logits, cache = step(previous, cache)
    chosen = jnp.where(done, 0, jnp.argmax(logits, axis=-1).astype(jnp.int32))
    tokens = tokens.at[:, index].set(chosen)
    if logits_out is not None:
      logits_out = logits_out.at[:, index].set(logits)
    return (index + 1, chosen, done | (chosen == EOS_ID), tokens, logits_out,
            cache)

  *_, tokens, logits_out, _ = jax.lax.while_loop(not_done, body, state)
  return (tokens, logits_out) if return_logits else tokens


def brevity_penalty(alpha: float, length: jax.Array) -> jax.Array:
  """t5x's length penalty: ((5 + length) / 6) ** alpha."""
  return jnp.power((5.0 + length) / 6.0, alpha)


def _gather_beams(tree, beam_indices: jax.Array, batch: int, beam: int):
  """Reorders the [batch * beam, ...] leaves of ``tree`` by beam_indices
  [batch, beam] (beams of the same row); scalars (cache indices) stay."""
  flat = (jnp.arange(batch)[:, None] * beam + beam_indices).reshape(-1)

  def gather(x):
    if x.ndim == 0:
      return x
    return jnp.take(x, flat, axis=0)

  return jax.tree.map(gather, tree)


def beam_search(model: MT5, params: Any, encoder_input_tokens: jax.Array,
                max_decode_length: int, beam_size: int, alpha: float = 0.6):
  """Beam search as t5x's ``decoding.beam_search`` (EOS id 1).

  Alive hypotheses are extended by every token; the ``beam_size`` best that do
  not end in EOS stay alive, those that end in EOS compete for the
  ``beam_size`` finished slots with score log-likelihood / brevity_penalty.
  The search stops at ``max_decode_length`` or when no alive hypothesis can
  still beat the worst finished one of every row. Rows with no finished
  hypothesis return their best alive one.

  Returns:
    (int32 tokens [b, max_decode_length] with zeros after EOS, float32
    scores [b]: the returned hypotheses' length-penalized log-likelihoods).
  """
  batch = encoder_input_tokens.shape[0]
  length = max_decode_length
  expanded = jnp.repeat(encoder_input_tokens, beam_size, axis=0)
  cache, step = _cached_decoder(model, params, expanded, length)
  # Sequences carry the start token 0 at position 0: [b, beam, 1 + length].
  alive_seqs = jnp.zeros((batch, beam_size, length + 1), jnp.int32)
  # Only the first beam is live at the start, or the beams would be copies.
  alive_log_probs = jnp.tile(
      jnp.array([0.0] + [_NEG_INF] * (beam_size - 1), jnp.float32), (batch, 1))
  finished_seqs = jnp.zeros_like(alive_seqs)
  finished_scores = jnp.full((batch, beam_size), _NEG_INF, jnp.float32)
  finished_flags = jnp.zeros((batch, beam_size), jnp.bool_)
  state = (jnp.int32(0), alive_seqs, alive_log_probs, finished_seqs, finished_scores,
           finished_flags, cache)
  max_penalty = brevity_penalty(alpha, float(length))

  def not_done(state):
    index, _, alive_log_probs, _, finished_scores, finished_flags, _ = state
    best_alive = alive_log_probs[:, 0] / max_penalty
    worst_finished = jnp.min(
        jnp.where(finished_flags, finished_scores, _NEG_INF), axis=1)
    return (index < length) & ~jnp.all(worst_finished > best_alive)

  def body(state):
    (index, alive_seqs, alive_log_probs, finished_seqs, finished_scores,
     finished_flags, cache) = state
    previous = alive_seqs[:, :, index].reshape(-1)
    logits, cache = step(previous, cache)
    vocab = logits.shape[-1]
    log_probs = jax.nn.log_softmax(logits).reshape(batch, beam_size, vocab)
    candidate_log_probs = (log_probs + alive_log_probs[:, :, None]).reshape(
        batch, beam_size * vocab)
    # 2 * beam candidates: enough for beam_size alive ones even if beam_size
    # of them end in EOS.
    top_log_probs, top_ids = jax.lax.top_k(candidate_log_probs, 2 * beam_size)
    top_beams, top_tokens = top_ids // vocab, top_ids % vocab
    top_seqs = jnp.take_along_axis(alive_seqs, top_beams[:, :, None], axis=1)
    top_seqs = top_seqs.at[:, :, index + 1].set(top_tokens)
    ends = top_tokens == EOS_ID

    # Alive: the best candidates that do not end in EOS.
    alive_candidates = jnp.where(ends, _NEG_INF, top_log_probs)
    new_alive_log_probs, alive_order = jax.lax.top_k(alive_candidates,
                                                     beam_size)
    alive_seqs = jnp.take_along_axis(top_seqs, alive_order[:, :, None], axis=1)
    cache = _gather_beams(
        cache, jnp.take_along_axis(top_beams, alive_order, axis=1),
        batch, beam_size)

    # Finished: the old finished ones and the candidates that end in EOS.
    new_scores = jnp.where(
        ends, top_log_probs / brevity_penalty(alpha, index + 1.0), _NEG_INF)
    all_seqs = jnp.concatenate([finished_seqs, top_seqs], axis=1)
    all_scores = jnp.concatenate([finished_scores, new_scores], axis=1)
    all_flags = jnp.concatenate([finished_flags, ends], axis=1)
    finished_scores, finished_order = jax.lax.top_k(all_scores, beam_size)
    finished_seqs = jnp.take_along_axis(all_seqs, finished_order[:, :, None],
                                        axis=1)
    finished_flags = jnp.take_along_axis(all_flags, finished_order, axis=1)
    return (index + 1, alive_seqs, new_alive_log_probs, finished_seqs,
            finished_scores, finished_flags, cache)

  (_, alive_seqs, alive_log_probs, finished_seqs, finished_scores,
   finished_flags, _) = jax.lax.while_loop(not_done, body, state)
  none_finished = ~jnp.any(finished_flags, axis=1)
  seqs = jnp.where(none_finished[:, None], alive_seqs[:, 0],
                   finished_seqs[:, 0])[:, 1:]
  scores = jnp.where(none_finished, alive_log_probs[:, 0] / max_penalty,
                     finished_scores[:, 0])
  return _zero_after_eos(seqs), scores


def _zero_after_eos(tokens: jax.Array) -> jax.Array:
  """Sets every token after a row's first EOS to 0 (padding)."""
  eos_before = jnp.cumsum(tokens == EOS_ID, axis=1) - (tokens == EOS_ID)
  return jnp.where(eos_before > 0, 0, tokens)


def make_decode_fn(model: MT5, max_decode_length: int, beam_size: int = 1,
                   alpha: float = 0.6, shardings=None):
  """A jitted (params, encoder_input_tokens) -> tokens [b, max_decode_length].

  ``beam_size`` 1 is greedy decoding; more is `beam_search`. jax compiles it
  once per encoder input shape. `shardings` (params', inputs', output's) are
  the explicit in/out shardings, as `Predictor` sets them.
  """
  if max_decode_length < 1:
    raise errors.ConfigError(
        f"max_decode_length={max_decode_length} must be at least 1")
  if beam_size < 1:
    raise errors.ConfigError(f"beam_size={beam_size} must be at least 1")
  if beam_size == 1:
    fn = functools.partial(greedy_decode, model,
                           max_decode_length=max_decode_length)
  else:
    def fn(params, encoder_input_tokens):
      tokens, _ = beam_search(model, params, encoder_input_tokens,
                              max_decode_length, beam_size, alpha)
      return tokens
  if shardings is None:
    return jax.jit(fn)
  param_shardings, input_sharding, output_sharding = shardings
  return jax.jit(fn, in_shardings=(param_shardings, input_sharding),
                 out_shardings=output_sharding)


class Predictor:
  """seqio predict_fn: decodes a task's examples in length-bucketed batches.

  Inputs longer than ``max_input_length`` tokens are truncated from the right
  (counted in ``num_truncated``), as in scoring. Rows are padded to
  ``batch_size``, so one compilation serves each input length bucket.

  Decoding is data-parallel over `mesh` (default: one device), with explicit
  shardings as the scorers': the parameters stay as restored, each batch is
  split over 'data' (every process holds the whole evaluation data and fills
  its own devices' rows), the tokens come back replicated. Batches are
  dispatched without waiting for their tokens, which are fetched together
  at the end.
  """

  def __init__(self, model: MT5, params: Any, batch_size: int,
               max_input_length: int, max_decode_length: int,
               beam_size: int = 1, alpha: float = 0.6, mesh=None):
    mesh = mesh if mesh is not None else partitioning.make_mesh(
        1, jax.devices()[:1])
    data_ways = mesh.shape[partitioning.DATA_AXIS]
    if batch_size < 1 or batch_size % data_ways:
      raise errors.ConfigError(
          f"batch_size={batch_size} must be a positive multiple of the "
          f"mesh's data-parallel size ({data_ways})")
    self.params = params
    self.batch_size = batch_size
    self.max_input_length = max_input_length
    self.max_decode_length = max_decode_length
    self.num_truncated = 0
    self.batch_sharding = partitioning.batch_sharding(mesh)
    self._decode = make_decode_fn(
        model, max_decode_length, beam_size, alpha,
        shardings=(jax.tree.map(lambda x: x.sharding, params),
                   self.batch_sharding, partitioning.replicated(mesh)))

  def predict(self, encoder_input_tokens: np.ndarray) -> np.ndarray:
    """[n, enc_len] int ids -> tokens [n, max_decode_length] (input order)."""
    lengths = (encoder_input_tokens > 0).sum(axis=1)
    self.num_truncated += int((lengths > self.max_input_length).sum())
    out = np.zeros((len(lengths), self.max_decode_length), np.int32)
    order = np.argsort(lengths, kind="stable")
    pending = []
    for start in range(0, len(order), self.batch_size):
      rows = order[start:start + self.batch_size]
      width = scoring.bucket_length(int(lengths[rows].max(initial=1)),
                                    self.max_input_length)
      batch = encoder_input_tokens[rows, :width]
      batch = np.pad(batch, [(0, self.batch_size - len(rows)),
                             (0, width - batch.shape[1])])
      batch = scoring.global_batch({"t": batch}, self.batch_sharding)["t"]
      pending.append((rows, self._decode(self.params, batch)))
    scoring.fill_rows(out, pending)
    return out

  def __call__(self, dataset: tf.data.Dataset
               ) -> list[tuple[int, np.ndarray]]:
    """[(index, token ids [max_decode_length])] for an enumerated dataset."""
    chunks = list(tfds.as_numpy(dataset.batch(4096)))
    if not chunks:
      return []
    indices = np.concatenate([index for index, _ in chunks])
    inputs = _concatenate_padded(
        [features["encoder_input_tokens"] for _, features in chunks])
    tokens = self.predict(inputs)
    return list(zip(indices.tolist(), tokens))


def _concatenate_padded(parts: list[np.ndarray]) -> np.ndarray:
  width = max(part.shape[1] for part in parts)
  return np.concatenate(
      [np.pad(part, [(0, 0), (0, width - part.shape[1])]) for part in parts])

