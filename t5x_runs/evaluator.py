"""Rank-classification evaluation of a checkpoint with seqio.Evaluator.

`evaluate` (gin-configurable, see gin/runs/eval.gin) restores the parameters
of one checkpoint, builds a seqio.Evaluator over every score-eval task of a
mixture, scores each (input, choice) pair by the summed log-likelihood of the
choice (t5x's `score_batch`; by default with `scoring.SharedEncoderScorer`,
which encodes each distinct input once), lets the tasks' metric functions
pick the best choice per example, and writes results.json and results.md.
Subtasks with predict metrics (generation tasks: ROUGE-L) are decoded
instead (`t5x_runs.decoding`: greedy or beam search up to
`max_decode_length`).
`prepare_model_config`, `restore_params`, `make_evaluator` and
`evaluate_tasks` are the same steps for jobs that evaluate many checkpoints
(t5x_runs/batch_eval.py).

Inputs longer than `max_input_length` tokens are truncated from the right,
as t5x does; the number of truncated examples is reported per task.
"""

import dataclasses
import logging
import os
from typing import Any, Iterable, Mapping

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
import tqdm

from korani_tasks import availability
from korani_tasks import errors
from korani_tasks import protocol
from korani_tasks import release_tasks
from korani_tasks import tasks as korani_tasks_lib
from korani_tasks import vocab as vocab_lib
from t5x_runs import checkpoints
from t5x_runs import decoding
from t5x_runs import partitioning
from t5x_runs import results as results_lib
from t5x_runs import scoring
from t5x_runs import trainer
from t5x_runs.models import MT5, MT5Config

def prepare_model_config(model_dir: str, model_config: MT5Config | None = None
                         ) -> MT5Config:
  """A run's config with vocab_size filled in from the tasks' vocabulary.

  `model_config` defaults to the run's model_config.json. Call it inside
  the run's `vocab.using_vocabulary` block.
  """
  if model_config is None:
    model_config = trainer.load_model_config(model_dir)
  return trainer.resolve_model_config(
      model_config, seqio.SentencePieceVocabulary(vocab_lib.vocabulary_path()))


def restore_params(model_dir: str, config: MT5Config, mesh,
                   step: int | None = None) -> tuple[Any, int]:
  """Restores the parameters of `step` (default: the latest) of a run.

  Raises:
    MissingDataError: no checkpoint, or the step's files do not match its
      manifest (truncated or corrupted; the message names the files).
  """
  store = checkpoints.CheckpointStore(model_dir, read_only=True)
  try:
    step = step if step is not None else store.latest_step()
    if step is None:
      raise errors.MissingDataError(f"no checkpoint found in {store.directory}")
    problem = checkpoints.check_manifest(store.step_dir(step))
    if problem:
      raise errors.MissingDataError(
          f"checkpoint {step} in {store.directory} is damaged: {problem}")
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
  """Number of distinct examples (not choices) in a score-eval dataset;
  of examples in a predict (generation) dataset, which has no ``idx``."""
  examples = list(tfds.as_numpy(task_dataset))
  if examples and "idx" not in examples[0]:
    return len(examples)
  return len({int(ex["idx"][0]) for ex in examples})


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
             share_encoder: bool = True,
             max_decode_length: int = 128,
             beam_size: int = 1,
             length_penalty_alpha: float = 0.6,
             use_cached: bool = False,
             inputs_eos: bool = True,
             unscorable_rows: str = "score",
             allow_absent_datasets: bool = False,
             progress: bool = True) -> list[results_lib.ResultRow]:
  """Scores the mixture's score-eval tasks; writes results.{json,md}.

  In a multi-host run every process evaluates (each fills its own devices'
  rows) and process 0 writes the result files.

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
    share_encoder: score with `scoring.SharedEncoderScorer` (the encoder runs
      once per distinct input); False: `scoring.ChoiceScorer` (once per
      choice). Both give the same scores.
    max_decode_length: the most tokens decoded per example, for subtasks with
      predict metrics (generation tasks, e.g. ROUGE-L).
    beam_size: 1 decodes greedily; more runs beam search.
    length_penalty_alpha: beam search's length penalty exponent (t5x's).
    use_cached: read the tasks' offline cache (korani_tasks/caching.py).
    inputs_eos: whether inputs end with EOS (False: T0's protocol;
      `korani_tasks.protocol`).
    unscorable_rows: "score" (a release row whose answer is not among its
      choices counts as wrong, as in the official KORANI code) or "exclude"
      (left out); recorded with the count per task in the results.
    allow_absent_datasets: score the datasets of the mixture that are
      present and record the absent ones in the results (False: an error
      naming every absent dataset; `korani_tasks.availability`).

  Returns:
    One ResultRow per (task, metric).
  """
  protocol.configure(inputs_eos=inputs_eos, unscorable_rows=unscorable_rows)
  present_name, left_out = mixture_or_task_name, ()
  if not use_cached:  # A cached task reads no raw file.
    present_name, left_out = availability.check(
        mixture_or_task_name, split, allow_absent=allow_absent_datasets)
  # The run's vocabulary is the tasks' until evaluate returns.
  with vocab_lib.using_vocabulary(
      trainer.run_vocabulary(model_dir, vocabulary)):
    model_config = prepare_model_config(model_dir, model_config)
    mesh = partitioning.make_mesh(num_partitions)
    rules = partitioning.standard_logical_axis_rules()
    with mesh, nn.logical_axis_rules(rules):
      params, step = restore_params(model_dir, model_config, mesh,
                                    checkpoint_step)
      evaluator = make_evaluator(present_name, split, use_cached=use_cached)
      scorer = scoring.make_scorer(MT5(model_config), params, mesh, batch_size,
                                   max_input_length, max_target_length,
                                   share_encoder)
      predictor = decoding.Predictor(
          MT5(model_config), params, batch_size, max_input_length,
          max_decode_length, beam_size, length_penalty_alpha, mesh=mesh)
      total = sum(int(ds.cardinality()) if ds.cardinality() >= 0 else 0
                  for ds in evaluator.cached_model_datasets.values())
      with tqdm.tqdm(total=total or None, desc="score", unit="choice",
                     disable=not (progress and jax.process_index() == 0),
                     dynamic_ncols=True) as bar:
        rows = evaluate_tasks(evaluator, scorer, predictor, step=step,
                              split=split, bar=bar)
    recorded = results_lib.run_settings([mixture_or_task_name])
    rows = [dataclasses.replace(r, left_out_datasets=left_out, **recorded)
            for r in rows]
    # Every process evaluated the same examples; one writes the results.
    if jax.process_index() == 0:
      output_dir = output_dir or os.path.join(model_dir, "eval")
      results_lib.write_results(rows, output_dir, title=(
          f"{mixture_or_task_name} — {split} split, checkpoint {step} of "
          f"{model_dir}"))
    return rows


def make_evaluator(mixture_or_task_name: str, split: str,
                   num_rows: int | None = None,
                   use_cached: bool = False) -> seqio.Evaluator:
  """A seqio.Evaluator of the subtasks of a mixture or task with metrics.

  Its tasks are those with the split and score metrics (rank
  classification) or predict metrics (generation). `num_rows` keeps the
  first rows of each task (seqio's num_examples; for score-eval tasks rows
  are (example, choice) pairs, not examples).

  Raises:
    ConfigError: no subtask has metrics and the split.
  """
  evaluator = seqio.Evaluator(
      mixture_or_task_name,
      feature_converter=seqio.EncDecFeatureConverter(pack=False),
      eval_split=split, num_examples=num_rows, use_memory_cache=True,
      async_compute_metrics=False, use_cached=use_cached)
  if not evaluator.eval_tasks:
    raise errors.ConfigError(
        f"{mixture_or_task_name} has no task with score metrics and a "
        f"{split!r} split to evaluate")
  empty = sorted(name for name, ds in evaluator.cached_task_datasets.items()
                 if not list(ds.take(1)))
  if empty:
    raise errors.ConfigError(
        f"{', '.join(empty)}: no example to evaluate in the {split!r} split "
        "(with UNSCORABLE_ROWS='exclude' a release score eval leaves out the "
        "rows whose answer is not among their choices)")
  return evaluator


def evaluate_tasks(evaluator: seqio.Evaluator, scorer: scoring.Scorer,
                   predictor: decoding.Predictor | None = None, *,
                   step: int, split: str, bar: tqdm.tqdm | None = None
                   ) -> list[results_lib.ResultRow]:
  """Evaluates an evaluator's tasks: one ResultRow per (task, metric).

  Score-eval tasks are scored by `scorer` (rank classification); tasks with
  predict metrics (generation) are decoded by `predictor`, which is required
  only when there are such tasks. The scorer's and predictor's parameters
  are the checkpoint's (`step` labels the rows); set their `params` to
  another checkpoint's and call this again to evaluate it on the same cached
  data.
  """
  truncated = {}

  def score_fn(dataset):
    before = scorer.num_truncated
    scored = scorer(dataset, bar)
    truncated[id(dataset)] = scorer.num_truncated - before
    return scored

  def predict_fn(dataset):
    if predictor is None:
      raise errors.ConfigError(
          "a task has predict metrics (generation) but no decoder was set up "
          "for it; evaluate it with evaluator.evaluate")
    before = predictor.num_truncated
    predicted = predictor(dataset)
    truncated[id(dataset)] = predictor.num_truncated - before
    return predicted
  metrics_future, _ = evaluator.evaluate(
      compute_metrics=True, score_fn=score_fn, predict_fn=predict_fn,
      step=step)
  task_metrics = metrics_future.result()
  rows = []
  for task in evaluator.eval_tasks:
    model_ds = evaluator.cached_model_datasets[task.name]
    rows.extend(_result_rows(
        task.name, task_metrics[task.name],
        num_examples=_num_examples(evaluator.cached_task_datasets[task.name]),
        num_truncated=truncated.get(id(model_ds), 0), split=split, step=step,
        num_unscorable=_num_unscorable(
            task.name, split, evaluator.cached_task_datasets[task.name])))
  return rows


def _num_unscorable(task_name: str, split: str,
                    task_dataset: tf.data.Dataset) -> int:
  """Rows of a task's split whose answer is not among their choices.

  From the prepared release dataset's metadata; where the raw files are
  absent (a task read from the offline cache), the scored examples without
  a correct choice are counted (none are left under UNSCORABLE_ROWS =
  'exclude', which removes them after the cache).
  """
  try:
    return release_tasks.num_unscorable(task_name, split)
  except errors.MissingDataError:
    correct = {}
    for ex in tfds.as_numpy(task_dataset):
      index = int(ex["idx"][0])
      correct[index] = correct.get(index, False) or bool(ex["is_correct"])
    return sum(not c for c in correct.values())


def template_version(task_name: str) -> str:
  """The `PromptTemplate.version` of a task's template; "" for a task
  without one (release tasks, tasks that are not KORANI's)."""
  try:
    template = korani_tasks_lib.task_info(task_name).template
  except KeyError:
    return ""
  return template.version if template else ""


def _result_rows(task_name: str, metrics: Mapping[str, Any], *,
                 num_examples: int, num_truncated: int, split: str,
                 step: int, num_unscorable: int = 0
                 ) -> Iterable[results_lib.ResultRow]:
  try:
    info = korani_tasks_lib.task_info(task_name)
    described = dict(dataset=info.dataset, cluster=info.cluster,
                     template=info.template_id,
                     template_lang=info.template_lang,
                     data_lang=info.data_lang,
                     template_version=template_version(task_name))
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
        checkpoint_step=step, num_unscorable=num_unscorable,
        unscorable_rows=protocol.current().unscorable_rows, **described)

