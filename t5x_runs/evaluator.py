"""Rank-classification evaluation of a checkpoint with seqio.Evaluator.

`evaluate` (gin-configurable, see gin/runs/eval.gin) restores the parameters
of one checkpoint, builds a seqio.Evaluator over every score-eval task of a
mixture, scores each (input, choice) pair by the summed log-likelihood of the
choice (t5x's `score_batch`), lets the tasks' metric functions pick the best
choice per example, and writes results.json and results.md.

Inputs longer than `max_input_length` tokens are truncated from the right,
as t5x does; the number of truncated examples is reported per task.
"""

import logging
import os
from typing import Any, Iterable, Mapping

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
import tqdm

from korani_tasks import errors
from korani_tasks import tasks as korani_tasks_lib
from korani_tasks import vocab as vocab_lib
from t5x_runs import checkpoints
from t5x_runs import losses
from t5x_runs import partitioning
from t5x_runs import results as results_lib
from t5x_runs import trainer
from t5x_runs.models import MT5, MT5Config

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


class ChoiceScorer:
  """Scores (inputs, target) pairs: summed log-likelihood of the target.

  seqio pads every example of an evaluation to its longest one. The scorer
  instead sorts a task's examples by length, so that each batch holds
  examples of similar length, and cuts each batch to a bucketed length
  (`bucket_length`). Scores are returned with seqio's example indices, so the
  order of scoring does not matter.
  """

  def __init__(self, model: MT5, params: Any, mesh, batch_size: int,
               max_input_length: int, max_target_length: int):
    self.params = params
    self.batch_size = batch_size
    self.max_input_length = max_input_length
    self.max_target_length = max_target_length
    self.batch_sharding = partitioning.batch_sharding(mesh)
    self.num_truncated = 0

    def score(params, batch):
      logits = model.apply(
          {"params": params}, batch["encoder_input_tokens"],
          batch["decoder_input_tokens"], batch["decoder_target_tokens"])
      return losses.sequence_log_likelihood(
          logits, batch["decoder_target_tokens"],
          batch["decoder_loss_weights"])

    # Explicit shardings: the parameters stay as restored (sharded like in
    # training), the batch is split over 'data', the scores are replicated.
    self._score = jax.jit(
        score,
        in_shardings=(jax.tree.map(lambda x: x.sharding, params),
                      self.batch_sharding),
        out_shardings=partitioning.replicated(mesh))

  def _batches(self, features: Mapping[str, np.ndarray]):
    """Yields (row numbers, batch cut to its bucket and padded to size)."""
    input_lengths = (features["encoder_input_tokens"] > 0).sum(axis=1)
    target_lengths = (features["decoder_target_tokens"] > 0).sum(axis=1)
    if target_lengths.max(initial=0) > self.max_target_length:
      raise errors.ConfigError(
          f"an answer choice has {target_lengths.max()} tokens, more than "
          f"max_target_length={self.max_target_length}; raise "
          "evaluate.max_target_length")
    self.num_truncated += int((input_lengths > self.max_input_length).sum())
    order = np.lexsort((target_lengths, input_lengths))
    for start in range(0, len(order), self.batch_size):
      rows = order[start:start + self.batch_size]
      widths = {
          "encoder": bucket_length(int(input_lengths[rows].max()),
                                   self.max_input_length),
          "decoder": bucket_length(int(target_lengths[rows].max()),
                                   self.max_target_length, fine=False)}
      batch = {}
      for key, value in features.items():
        part = value[rows, :widths[key.split("_")[0]]]
        batch[key] = np.pad(part, [(0, self.batch_size - len(rows)), (0, 0)])
      yield rows, batch

  def __call__(self, dataset: tf.data.Dataset, bar: tqdm.tqdm | None = None
               ) -> list[tuple[int, float]]:
    """seqio score_fn: [(index, score)] for an enumerated model dataset."""
    chunks = list(tfds.as_numpy(dataset.batch(4096)))
    if not chunks:
      return []
    indices = np.concatenate([index for index, _ in chunks])
    features = {k: np.concatenate([f[k] for _, f in chunks])
                for k in chunks[0][1]}
    scores = np.zeros(len(indices), np.float64)
    for rows, batch in self._batches(features):
      batch = _global_batch(batch, self.batch_sharding)
      batch_scores = np.asarray(self._score(self.params, batch))
      scores[rows] = batch_scores[:len(rows)]
      if bar is not None:
        bar.update(len(rows))
    return list(zip(indices.tolist(), scores.tolist()))


def _global_batch(batch: Mapping[str, np.ndarray], sharding
                  ) -> dict[str, jax.Array]:
  """Global arrays from a batch every process holds in full.

  Each process scores the same examples (seqio's evaluation data is read
  whole on every host) and fills only its own devices' rows.
  """
  return {k: jax.make_array_from_callback(v.shape, sharding,
                                          lambda index, v=v: v[index])
          for k, v in batch.items()}


def restore_params(model_dir: str, config: MT5Config, mesh,
                   step: int | None = None) -> tuple[Any, int]:
  """Restores the parameters of `step` (default: the latest) of a run."""
  store = checkpoints.CheckpointStore(model_dir, read_only=True)
  try:
    step = step if step is not None else store.latest_step()
    if step is None:
      raise errors.MissingDataError(f"no checkpoint found in {store.directory}")
    model = MT5(config)
    rules = partitioning.standard_logical_axis_rules()
    dummy = jnp.ones((1, 8), jnp.int32)
    boxed = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), dummy, dummy)["params"])
    shardings = partitioning.param_shardings(boxed, mesh, rules)
    abstract = jax.tree.map(
        lambda b, s: jax.ShapeDtypeStruct(b.value.shape, b.value.dtype,
                                          sharding=s),
        boxed, shardings, is_leaf=lambda x: isinstance(x, nn.Partitioned))
    restored = store.restore(step, abstract)
  finally:
    store.close()
  return restored[checkpoints.PARAMS], step


def _num_examples(task_dataset: tf.data.Dataset) -> int:
  """Number of distinct examples (not choices) in a score-eval dataset."""
  return len({int(ex["idx"][0]) for ex in tfds.as_numpy(task_dataset)})


@gin.configurable(denylist=["progress"])
def evaluate(*,
             model_dir: str = gin.REQUIRED,
             mixture_or_task_name: str = gin.REQUIRED,
             output_dir: str | None = None,
             checkpoint_step: int | None = None,
             split: str = "validation",
             batch_size: int = 64,
             max_input_length: int = 1024,
             max_target_length: int = 256,
             model_config: MT5Config | None = None,
             vocabulary: str | None = None,
             num_partitions: int = 1,
             progress: bool = True) -> list[results_lib.ResultRow]:
  """Scores the mixture's score-eval tasks; writes results.{json,md}.

  Args:
    model_dir: a training run's folder (checkpoints/, model_config.json,
      vocab.model).
    mixture_or_task_name: a mixture or task whose subtasks have score metrics
      (other subtasks are skipped by seqio.Evaluator).
    output_dir: where to write the result files (default model_dir/eval).
    checkpoint_step: which checkpoint (default: the latest).
    split: the eval split of the tasks ('validation' or 'test').
    model_config: the network (default: the run's model_config.json).
    vocabulary: SentencePiece model (default: the run's vocab.model).

  Returns:
    One ResultRow per (task, metric).
  """
  vocabulary = vocabulary or _run_vocabulary(model_dir)
  vocab_lib.use_vocabulary(vocabulary)
  if model_config is None:
    model_config = trainer.load_model_config(model_dir)
  model_config = trainer.resolve_model_config(
      model_config, seqio.SentencePieceVocabulary(vocab_lib.vocabulary_path()))
  mesh = partitioning.make_mesh(num_partitions)
  with mesh, nn.logical_axis_rules(partitioning.standard_logical_axis_rules()):
    params, step = restore_params(model_dir, model_config, mesh,
                                  checkpoint_step)
    evaluator = seqio.Evaluator(
        mixture_or_task_name,
        feature_converter=seqio.EncDecFeatureConverter(pack=False),
        eval_split=split, use_memory_cache=True,
        async_compute_metrics=False)
    if not evaluator.eval_tasks:
      raise errors.ConfigError(
          f"{mixture_or_task_name} has no task with score metrics and a "
          f"{split!r} split to evaluate")
    scorer = ChoiceScorer(MT5(model_config), params, mesh, batch_size,
                          max_input_length, max_target_length)
    total = sum(int(ds.cardinality()) if ds.cardinality() >= 0 else 0
                for ds in evaluator.cached_model_datasets.values())
    truncated = {}
    with tqdm.tqdm(total=total or None, desc="score", unit="choice",
                   disable=not progress, dynamic_ncols=True) as bar:
      def score_fn(dataset):
        before = scorer.num_truncated
        scored = scorer(dataset, bar)
        truncated[id(dataset)] = scorer.num_truncated - before
        return scored
      metrics_future, _ = evaluator.evaluate(compute_metrics=True,
                                             score_fn=score_fn, step=step)
      task_metrics = metrics_future.result()

  rows = []
  for task in evaluator.eval_tasks:
    model_ds = evaluator.cached_model_datasets[task.name]
    rows.extend(_result_rows(
        task.name, task_metrics[task.name],
        num_examples=_num_examples(evaluator.cached_task_datasets[task.name]),
        num_truncated=truncated.get(id(model_ds), 0),
        split=split, step=step))
  output_dir = output_dir or os.path.join(model_dir, "eval")
  results_lib.write_results(rows, output_dir, title=(
      f"{mixture_or_task_name} — {split} split, checkpoint {step} of "
      f"{model_dir}"))
  return rows


def _run_vocabulary(model_dir: str) -> str | None:
  path = os.path.join(model_dir, trainer.VOCAB_FILE)
  return path if tf.io.gfile.exists(path) else None


def _result_rows(task_name: str, metrics: Mapping[str, Any], *,
                 num_examples: int, num_truncated: int, split: str,
                 step: int) -> Iterable[results_lib.ResultRow]:
  try:
    info = korani_tasks_lib.task_info(task_name)
    described = dict(dataset=info.dataset, cluster=info.cluster,
                     template=info.template_id,
                     template_lang=info.template_lang,
                     data_lang=info.data_lang)
  except KeyError:
    logging.warning("%s is not a KORANI task; its rows carry no metadata",
                    task_name)
    described = dict(dataset=task_name, cluster="", template="",
                     template_lang="", data_lang="")
  for metric, value in sorted(metrics.items()):
    value = value.value if hasattr(value, "value") else value
    yield results_lib.ResultRow(
        task=task_name, metric=metric, value=float(value),
        num_examples=num_examples, num_truncated=num_truncated, split=split,
        checkpoint_step=step, **described)

