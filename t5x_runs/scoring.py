"""Rank-classification scorers: the summed log-likelihood of each choice.

A score-eval task (`korani_tasks.preprocessors.rank_classification`) repeats
an example's input once per answer choice, so the model dataset that
seqio.Evaluator hands to a score function (EncDecFeatureConverter with
pack=False, enumerated) looks like::

    index  encoder_input_tokens    decoder_target_tokens
    0      [812, 77, 9, 1, 0, 0]   [35, 1, 0]    example 0, choice 0
    1      [812, 77, 9, 1, 0, 0]   [48, 6, 1]    example 0, choice 1
    2      [64, 1, 0, 0, 0, 0]     [35, 1, 0]    example 1, choice 0
    3      [64, 1, 0, 0, 0, 0]     [48, 6, 1]    example 1, choice 1

(plus decoder_input_tokens, the targets shifted right, and
decoder_loss_weights). Two scorers return the same [(index, score)]:

- `ChoiceScorer` runs the whole network on every row, as t5x's
  `score_batch` does.
- `SharedEncoderScorer` groups the rows by their (truncated) input tokens,
  runs the encoder once per distinct input and scores all of that input's
  choices against the one encoder output; a decoder batch holds the choices
  of several inputs, each row taking its input's cross-attention keys and
  values by index.

Both sort by length and cut each batch to bucketed lengths (`bucket_length`),
so that an evaluation compiles only a few shapes and pads little.
`make_scorer` picks one (evaluate's `share_encoder`). Inputs longer than
`max_input_length` tokens are truncated from the right, as t5x does, and
counted (per row) in `num_truncated`.
"""

import abc
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
import tqdm

from korani_tasks import errors
from t5x_runs import losses
from t5x_runs import partitioning
from t5x_runs.models import MT5

ENCODER_INPUTS = "encoder_input_tokens"
DECODER_INPUTS = "decoder_input_tokens"
DECODER_TARGETS = "decoder_target_tokens"
DECODER_WEIGHTS = "decoder_loss_weights"
_DECODER_FEATURES = (DECODER_INPUTS, DECODER_TARGETS, DECODER_WEIGHTS)


def bucket_length(length: int, cap: int, fine: bool = True) -> int:
  """A padded length >= `length`, at most `cap`.

  Fine buckets are powers of two and 1.5x powers of two (8, 12, 16, 24, 32,
  48, ...): padding wastes at most a third of a batch. Coarse buckets are
  powers of two. Either way a whole evaluation compiles only a few shapes.
  """
  size = 8
  while size < length:
    if fine and size & (size - 1) == 0:
      size = size * 3 // 2
    else:
      size = 1 << size.bit_length() if fine else size * 2
  return min(size, cap)


def global_batch(batch: Mapping[str, np.ndarray], sharding
                 ) -> dict[str, jax.Array]:
  """Global arrays from a batch every process holds in full.

  Each process scores the same examples (seqio's evaluation data is read
  whole on every host) and fills only its own devices' rows.
  """
  return {k: jax.make_array_from_callback(v.shape, sharding,
                                          lambda index, v=v: v[index])
          for k, v in batch.items()}


def fill_rows(out: np.ndarray,
              pending: list[tuple[np.ndarray, jax.Array]]) -> None:
  """Writes device results into `out` by row, fetching them all at once.

  `pending` holds (rows, replicated result of a padded batch) pairs: the
  batches were dispatched without waiting for their results (a host sync
  per batch would leave the devices idle while the host prepares the next).
  """
  fetched = jax.device_get([result for _, result in pending])
  for (rows, _), values in zip(pending, fetched):
    out[rows] = values[:len(rows)]


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
  """`array` with zero rows appended up to `rows` rows."""
  return np.pad(array, [(0, rows - len(array))] + [(0, 0)] * (array.ndim - 1))


class Scorer(abc.ABC):
  """A seqio score_fn: [(index, summed log-likelihood)] of a model dataset.

  Attributes:
    params: the parameters scored with; another checkpoint's of the same
      shapes and shardings may be assigned, and the compiled batch shapes
      are reused.
    num_truncated: rows scored so far whose input was longer than
      `max_input_length` (and so truncated); callers read the difference
      around a call to count a task's.
  """

  def __init__(self, mesh, batch_size: int, max_input_length: int,
               max_target_length: int):
    data_ways = mesh.shape[partitioning.DATA_AXIS]
    if batch_size < 1 or batch_size % data_ways:
      raise errors.ConfigError(
          f"batch_size={batch_size} must be a positive multiple of the "
          f"mesh's data-parallel size ({data_ways})")
    self.batch_size = batch_size
    self.max_input_length = max_input_length
    self.max_target_length = max_target_length
    self.batch_sharding = partitioning.batch_sharding(mesh)
    self.replicated = partitioning.replicated(mesh)
    self.data_ways = data_ways
    self.num_truncated = 0

  def __call__(self, dataset: tf.data.Dataset, bar: tqdm.tqdm | None = None
               ) -> list[tuple[int, float]]:
    """seqio score_fn: [(index, score)] for an enumerated model dataset."""
    chunks = list(tfds.as_numpy(dataset.batch(4096)))
    if not chunks:
      return []
    indices = np.concatenate([index for index, _ in chunks])
    features = {k: np.concatenate([f[k] for _, f in chunks])
                for k in chunks[0][1]}
    scores = self.score_features(features, bar)
    return list(zip(indices.tolist(), scores.tolist()))

  def score_features(self, features: Mapping[str, np.ndarray],
                     bar: tqdm.tqdm | None = None) -> np.ndarray:
    """float64 scores [rows] of unbatched model features (numpy arrays)."""
    input_lengths = (features[ENCODER_INPUTS] > 0).sum(axis=1)
    target_lengths = (features[DECODER_TARGETS] > 0).sum(axis=1)
    if target_lengths.max(initial=0) > self.max_target_length:
      raise errors.ConfigError(
          f"an answer choice has {target_lengths.max()} tokens, more than "
          f"max_target_length={self.max_target_length}; raise "
          "evaluate.max_target_length")
    self.num_truncated += int((input_lengths > self.max_input_length).sum())
    scores = np.zeros(len(input_lengths), np.float64)
    if len(scores):
      self._score(features, np.minimum(input_lengths, self.max_input_length),
                  target_lengths, scores, bar)
    return scores

  @abc.abstractmethod
  def _score(self, features: Mapping[str, np.ndarray],
             input_lengths: np.ndarray, target_lengths: np.ndarray,
             scores: np.ndarray, bar: tqdm.tqdm | None) -> None:
    """Fills `scores` (one per row); input_lengths are after truncation."""

  def _decoder_part(self, features: Mapping[str, np.ndarray], rows: np.ndarray,
                    target_lengths: np.ndarray, fine: bool = False
                    ) -> dict[str, np.ndarray]:
    """The decoder features of `rows`, cut to a bucket, padded to a batch."""
    width = bucket_length(int(target_lengths[rows].max()),
                          self.max_target_length, fine=fine)
    return {k: _pad_rows(features[k][rows, :width], self.batch_size)
            for k in _DECODER_FEATURES}


class ChoiceScorer(Scorer):
  """Scores every (input, choice) row with a full encoder + decoder pass.

  Rows are sorted by (input length, target length), so that each batch holds
  rows of similar length, and each batch is cut to bucketed lengths.
  """

  def __init__(self, model: MT5, params: Any, mesh, batch_size: int,
               max_input_length: int, max_target_length: int):
    super().__init__(mesh, batch_size, max_input_length, max_target_length)
    self.params = params

    def score(params, batch):
      logits = model.apply({"params": params}, batch[ENCODER_INPUTS],
                           batch[DECODER_INPUTS], batch[DECODER_TARGETS])
      return losses.sequence_log_likelihood(
          logits, batch[DECODER_TARGETS], batch[DECODER_WEIGHTS])

    # Explicit shardings: the parameters stay as restored (sharded like in
    # training), the batch is split over 'data', the scores are replicated.
    self._score_batch = jax.jit(
        score,
        in_shardings=(jax.tree.map(lambda x: x.sharding, params),
                      self.batch_sharding),
        out_shardings=self.replicated)

  def _score(self, features, input_lengths, target_lengths, scores, bar):
    order = np.lexsort((target_lengths, input_lengths))
    pending = []
    for start in range(0, len(order), self.batch_size):
      rows = order[start:start + self.batch_size]
      width = bucket_length(int(input_lengths[rows].max()),
                            self.max_input_length)
      batch = self._decoder_part(features, rows, target_lengths)
      batch[ENCODER_INPUTS] = _pad_rows(features[ENCODER_INPUTS][rows, :width],
                                        self.batch_size)
      batch = global_batch(batch, self.batch_sharding)
      pending.append((rows, self._score_batch(self.params, batch)))
      if bar is not None:
        bar.update(len(rows))
    fill_rows(scores, pending)


def distinct_inputs(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Groups rows of identical input tokens.

  Returns (first row of each distinct input, input number of every row),
  distinct inputs numbered in order of first appearance::

      distinct_inputs(np.array([[5, 1], [5, 1], [7, 1], [5, 1]]))
      -> (array([0, 2]), array([0, 0, 1, 0]))
  """
  _, first, inverse = np.unique(inputs, axis=0, return_index=True,
                                return_inverse=True)
  inverse = inverse.reshape(-1)
  renumber = np.empty(len(first), np.int64)
  renumber[np.argsort(first, kind="stable")] = np.arange(len(first))
  return np.sort(first), renumber[inverse]


_CROSS_ATTENTION = "encoder_decoder_attention"
_CROSS_PROJECTIONS = ("key", "value")


def _gathered_cross_projections(source: jax.Array, seen: list):
  """A flax interceptor: the decoder's cross-attention keys and values of
  distinct inputs, gathered per decoder row.

  `MT5.decode` projects the encoder output to keys and values in every
  decoder layer (``decoder/layers_{i}/encoder_decoder_attention/{key,value}``).
  Given the encoder outputs of the distinct inputs [inputs, len, emb], this
  projects each input once and takes row r's projection from input
  ``source[r]``: [rows, len, heads * head_dim]. Projections are linear, so
  this equals projecting the gathered encoder outputs. `seen` collects the
  paths of the intercepted projections (the caller checks that all were).
  """
  def interceptor(next_fun, args, kwargs, context):
    path = context.module.path
    if (context.method_name == "__call__" and len(path) >= 2
        and path[-2] == _CROSS_ATTENTION and path[-1] in _CROSS_PROJECTIONS):
      seen.append(path)
      return jnp.take(next_fun(*args, **kwargs), source, axis=0)
    return next_fun(*args, **kwargs)
  return interceptor


class SharedEncoderScorer(Scorer):
  """Encodes each distinct input once and scores all its choices against it.

  The rows are grouped by their input tokens (after truncation to
  `max_input_length`). Distinct inputs are sorted by (bucketed input length,
  length of their longest choice) and packed into blocks of at most
  `batch_size` choices (an input with more choices gets a block of its own);
  a block holds at most `encoder_batch_size` inputs, by default enough to
  fill a decoder batch with the task's fewest choices per input
  (batch_size / 4 = 16 inputs for 4-choice tasks at batch_size 64). Per
  block the encoder runs once on the block's inputs, cut to a bucketed
  length, and the decoder scores the block's choices in one batch (or a few,
  for an input with more than `batch_size` choices), cut to a fine bucket of
  their length (the choices of a block have similar lengths): each row takes
  its input's padding mask by index (`source`), and the cross-attention keys
  and values are projected once per input, not per choice
  (`_gathered_cross_projections`). Memory per batch stays below
  ChoiceScorer's: the encoder sees fewer rows, the decoder as many.

  With k choices per input this runs the encoder and the cross-attention
  projections k times less often than `ChoiceScorer`. The scores equal
  ChoiceScorer's to float32 rounding: padding is masked exactly, only the
  order of XLA's reductions changes with the shapes.
  """

  def __init__(self, model: MT5, params: Any, mesh, batch_size: int,
               max_input_length: int, max_target_length: int,
               encoder_batch_size: int | None = None):
    super().__init__(mesh, batch_size, max_input_length, max_target_length)
    if encoder_batch_size is not None and (
        encoder_batch_size < 1 or encoder_batch_size % self.data_ways):
      raise errors.ConfigError(
          f"encoder_batch_size={encoder_batch_size} must be a positive "
          f"multiple of the mesh's data-parallel size ({self.data_ways})")
    self.params = params
    self.encoder_batch_size = encoder_batch_size
    param_shardings = jax.tree.map(lambda x: x.sharding, params)
    # A scanned decoder (scan_layers) has one cross-attention module, traced
    # for all its layers: the distinct module paths are counted.
    num_projections = len(_CROSS_PROJECTIONS) * (
        1 if model.config.scan_layers else model.config.num_decoder_layers)

    def encode(params, tokens):
      return model.apply({"params": params}, tokens, method=MT5.encode)

    def score(params, encoded, input_tokens, batch):
      source = batch["source"]
      seen = []
      with nn.intercept_methods(_gathered_cross_projections(source, seen)):
        logits = model.apply(
            {"params": params}, encoded, jnp.take(input_tokens, source, axis=0),
            batch[DECODER_INPUTS], batch[DECODER_TARGETS], method=MT5.decode)
      if len(set(seen)) != num_projections:  # Checked when jit traces.
        raise RuntimeError(
            f"expected {num_projections} cross-attention projections "
            f"(decoder/layers_*/{_CROSS_ATTENTION}/{{key,value}}) in "
            f"MT5.decode, intercepted {len(seen)}: {seen}")
      return losses.sequence_log_likelihood(
          logits, batch[DECODER_TARGETS], batch[DECODER_WEIGHTS])

    # Explicit shardings: parameters as restored, inputs, encoder outputs
    # and decoder rows split over 'data', scores replicated.
    self._encode = jax.jit(
        encode, in_shardings=(param_shardings, self.batch_sharding),
        out_shardings=self.batch_sharding)
    self._score_batch = jax.jit(
        score,
        in_shardings=(param_shardings, self.batch_sharding,
                      self.batch_sharding, self.batch_sharding),
        out_shardings=self.replicated)

  def _inputs_per_block(self, choices_per_input: np.ndarray) -> int:
    """Encoder batch size: enough inputs to fill a decoder batch."""
    if self.encoder_batch_size is not None:
      return self.encoder_batch_size
    size = -(-self.batch_size // max(1, int(choices_per_input.min())))
    return -(-size // self.data_ways) * self.data_ways

  def blocks(self, input_lengths: np.ndarray, target_lengths: np.ndarray,
             input_of_row: np.ndarray) -> tuple[list[np.ndarray], int]:
    """(distinct input numbers of each block, encoder batch size).

    Inputs are ordered by bucketed length, then by their longest choice, so
    that a block's inputs and choices are cut to tight lengths.
    """
    num_inputs = int(input_of_row.max()) + 1
    choices = np.bincount(input_of_row, minlength=num_inputs)
    longest_choice = np.zeros(num_inputs, np.int64)
    np.maximum.at(longest_choice, input_of_row, target_lengths)
    length = np.zeros(num_inputs, np.int64)
    length[input_of_row] = input_lengths
    width = np.array([bucket_length(int(n), self.max_input_length)
                      for n in length])
    capacity = self._inputs_per_block(choices)
    blocks, block, rows = [], [], 0
    for number in np.lexsort((length, longest_choice, width)).tolist():
      if block and (len(block) == capacity
                    or rows + choices[number] > self.batch_size):
        blocks.append(np.array(block))
        block, rows = [], 0
      block.append(number)
      rows += int(choices[number])
    blocks.append(np.array(block))
    return blocks, capacity

  def _score(self, features, input_lengths, target_lengths, scores, bar):
    inputs = features[ENCODER_INPUTS][:, :self.max_input_length]
    first_rows, input_of_row = distinct_inputs(inputs)
    rows_of_input = np.argsort(input_of_row, kind="stable")
    starts = np.searchsorted(input_of_row[rows_of_input],
                             np.arange(len(first_rows) + 1))
    blocks, capacity = self.blocks(input_lengths, target_lengths, input_of_row)
    position = np.zeros(len(first_rows), np.int32)
    pending = []
    for block in blocks:
      width = bucket_length(int(input_lengths[first_rows[block]].max()),
                            self.max_input_length)
      tokens = global_batch(
          {"t": _pad_rows(inputs[first_rows[block], :width], capacity)},
          self.batch_sharding)["t"]
      encoded = self._encode(self.params, tokens)
      position[block] = np.arange(len(block), dtype=np.int32)
      rows = np.concatenate(
          [rows_of_input[starts[n]:starts[n + 1]] for n in block])
      for start in range(0, len(rows), self.batch_size):
        part = rows[start:start + self.batch_size]
        batch = self._decoder_part(features, part, target_lengths, fine=True)
        batch["source"] = _pad_rows(position[input_of_row[part]],
                                    self.batch_size)
        batch = global_batch(batch, self.batch_sharding)
        pending.append(
            (part, self._score_batch(self.params, encoded, tokens, batch)))
        if bar is not None:
          bar.update(len(part))
    fill_rows(scores, pending)


def make_scorer(model: MT5, params: Any, mesh, batch_size: int,
                max_input_length: int, max_target_length: int,
                share_encoder: bool = True) -> Scorer:
  """The shared-encoder scorer, or with share_encoder=False the naive one."""
  cls = SharedEncoderScorer if share_encoder else ChoiceScorer
  return cls(model, params, mesh, batch_size, max_input_length,
             max_target_length)
