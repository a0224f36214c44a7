"""Batch evaluation: many checkpoints on many mixtures, in one resumable job.

    python -m t5x_runs.batch_eval --gin_file=runs/batch_eval.gin \\
        --gin.CHECKPOINTS="['/runs/ko_to_en:2000', '/runs/en_to_en']" \\
        --gin.EVAL_MIXTURES="['korani_kobest_heldout_score_eval']" \\
        --gin.EVAL_OUTPUT_DIR=/runs/heldout

    korani eval-batch /runs/ko_to_en:2000 /runs/en_to_en \\
        --mixture korani_kobest_heldout_score_eval --output /runs/heldout

A checkpoint entry is ``MODEL_DIR:STEP`` (one checkpoint) or ``MODEL_DIR``
(every checkpoint of the run). Each checkpoint is restored once and
evaluates every task of the mixtures as `evaluator.evaluate` does (score-eval
tasks by rank classification, generation tasks by decoding); the results go
to::

    <output_dir>/
      evaluated.jsonl                 one line per (checkpoint, task) scored
      <model dir name>/checkpoint_<step>/
        tasks/<task>.json             the task's ResultRows, written when the
                                      task is done (temp file + rename)
        results.json, results.md      every task of the checkpoint, written
                                      when its last task is done (the format
                                      of `evaluate`: `korani compare` reads it)

A task file::

    {"model_dir": "/runs/ko_to_en", "checkpoint_step": 2000,
     "task": "korani_kobest_copa_ko_c1_or_c2_score_eval",
     "settings": {"split": "validation", "max_examples_per_task": null,
                  "max_input_length": 1024, "max_target_length": 256},
     "rows": [{"task": ..., "metric": "accuracy", "value": 52.4, ...}, ...]}

Restarting the same command skips every (checkpoint, task) whose file is
valid (it parses, names that checkpoint and task, and was computed with the
same settings and the same version of the task's template, see
`results.ResultRow`); a killed job therefore loses at most the task it was
scoring, and scores no finished task twice. Temporary files and unreadable
or stale task files never count (they are logged and scored again). A
checkpoint whose tasks are all done is not even restored.

Progress: a bar over the (checkpoint, task) pairs to score, and a log line
per task with examples per second and the job's ETA.
"""

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import sys
import time
from typing import Any, Mapping, Sequence

import flax.linen as nn
import gin
import jax
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
import tqdm

from korani_tasks import errors
from korani_tasks import protocol
from korani_tasks import vocab as vocab_lib
from t5x_runs import checkpoints as checkpoints_lib
from t5x_runs import decoding
from t5x_runs import entrypoint
from t5x_runs import flags
from t5x_runs import evaluator as evaluator_lib
from t5x_runs import partitioning
from t5x_runs import results as results_lib
from t5x_runs import scoring
from t5x_runs import trainer
from t5x_runs.models import MT5

LEDGER = "evaluated.jsonl"
TASKS_DIR = "tasks"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  """One checkpoint of a training run, and where its results go."""
  model_dir: str  # absolute
  step: int
  name: str  # the model dir's base name: the results folder

  @property
  def label(self) -> str:
    return f"{self.name}:{self.step}"

  def results_dir(self, output_dir: str) -> str:
    return os.path.join(output_dir, self.name, f"checkpoint_{self.step}")

  def task_path(self, output_dir: str, task: str) -> str:
    return os.path.join(self.results_dir(output_dir), TASKS_DIR,
                        f"{task}.json")


def _split_entry(entry: str) -> tuple[str, int | None]:
  """'DIR:200' -> ('DIR', 200); 'DIR' (also 'gs://b/DIR') -> ('DIR', None)."""
  head, sep, tail = entry.rpartition(":")
  if sep and head and tail.isdigit():
    return head, int(tail)
  return entry, None


def resolve_checkpoints(entries: Sequence[str]) -> list[Checkpoint]:
  """The checkpoints named by ``MODEL_DIR:STEP`` / ``MODEL_DIR`` entries.

  Raises:
    ConfigError: no entry, or two model dirs with the same base name (their
      results would share a folder).
    MissingDataError: a model dir without checkpoints, or a missing step.
  """
  if isinstance(entries, str):
    entries = [entries]
  if not entries:
    raise errors.ConfigError(
        "no checkpoints to evaluate: give CHECKPOINTS (e.g. "
        "--gin.CHECKPOINTS=\"['/runs/a:1000', '/runs/b']\"; korani "
        "eval-batch /runs/a:1000 /runs/b ...)")
  found: list[Checkpoint] = []
  names: dict[str, str] = {}
  for entry in entries:
    model_dir, step = _split_entry(str(entry))
    model_dir = model_dir.rstrip("/")
    if "://" not in model_dir:
      model_dir = os.path.abspath(model_dir)
    name = os.path.basename(model_dir)
    if names.setdefault(name, model_dir) != model_dir:
      raise errors.ConfigError(
          f"model dirs {names[name]} and {model_dir} have the same name "
          f"{name!r}: their results would share <output_dir>/{name}; "
          "evaluate them in separate jobs (other output dirs)")
    store = checkpoints_lib.CheckpointStore(model_dir, read_only=True)
    try:
      steps = store.all_steps()
    finally:
      store.close()
    if not steps:
      raise errors.MissingDataError(
          f"no checkpoint in {checkpoints_lib.checkpoint_dir(model_dir)}")
    if step is not None and step not in steps:
      raise errors.MissingDataError(
          f"{entry}: no checkpoint for step {step} in "
          f"{checkpoints_lib.checkpoint_dir(model_dir)} (steps: {steps})")
    for s in [step] if step is not None else steps:
      checkpoint = Checkpoint(model_dir, s, name)
      if checkpoint not in found:
        found.append(checkpoint)
  return found


def _has_metrics(task: seqio.Task, output_type) -> bool:
  return any(m.model_output_type == output_type for m in task.metric_objs)


def resolve_tasks(mixtures: Sequence[str], split: str) -> list[str]:
  """The tasks with `split` and metrics of the mixtures (or tasks), in order.

  Score-eval tasks (rank classification) and generation tasks (predict
  metrics) count; seqio.Evaluator evaluates the same ones.

  Raises:
    ConfigError: an unknown name, or no task with metrics and `split`.
  """
  if isinstance(mixtures, str):
    mixtures = [mixtures]
  if not mixtures:
    raise errors.ConfigError(
        "no mixtures to evaluate: give EVAL_MIXTURES (e.g. --gin.EVAL_MIXTURES="
        "\"['korani_kobest_heldout_score_eval']\"; korani eval-batch ... "
        "--mixture korani_kobest_heldout_score_eval)")
  known = set(seqio.MixtureRegistry.names()) | set(seqio.TaskRegistry.names())
  tasks: list[str] = []
  for name in mixtures:
    if name not in known:
      raise errors.ConfigError(
          f"unknown mixture or task {name!r} (`korani tasks list --mixtures` "
          "lists the mixtures)")
    subtasks = seqio.get_subtasks(seqio.get_mixture_or_task(name))
    valid = seqio.evaluation.get_valid_eval_tasks(subtasks, split)
    scored = [t.name for t in valid if t.metric_objs]
    if not scored:
      raise errors.ConfigError(
          f"{name} has no task with metrics and a {split!r} split")
    tasks.extend(t for t in scored if t not in tasks)
  return tasks


def rows_of_first_examples(task_name: str, split: str, max_examples: int,
                           use_cached: bool = False) -> int:
  """Rows of the first `max_examples` examples of a task.

  A score-eval task has a row per (example, choice), the choices of an
  example in a run (``idx[0]``, the record's index in its split: not always
  0, 1, 2, ... in this order, e.g. read from the cache or with records left
  out), so these are the rows before the `max_examples` + 1-th distinct
  ``idx[0]``. A generation task has a row per example.
  """
  task = seqio.get_mixture_or_task(task_name)
  if not _has_metrics(task, seqio.metrics.ModelOutputType.SCORE):
    return max_examples
  dataset = task.get_dataset(
      sequence_length=None, split=split, shuffle=False, num_epochs=1,
      use_cached=use_cached)
  rows, seen = 0, set()
  for example in tfds.as_numpy(dataset):
    seen.add(int(example["idx"][0]))
    if len(seen) > max_examples:
      break
    rows += 1
  return rows


def task_evaluator(task_name: str, split: str,
                   max_examples: int | None = None,
                   use_cached: bool = False) -> seqio.Evaluator:
  """A seqio.Evaluator of one task (its first `max_examples` examples)."""
  rows = (None if max_examples is None
          else rows_of_first_examples(task_name, split, max_examples,
                                      use_cached))
  if rows == 0:
    raise errors.ConfigError(
        f"{task_name} has no {split!r} example to evaluate "
        f"(max_examples_per_task={max_examples})")
  return evaluator_lib.make_evaluator(task_name, split, num_rows=rows,
                                     use_cached=use_cached)


def read_task_result(path: str, checkpoint: Checkpoint, task: str,
                     settings: Mapping[str, Any]
                     ) -> list[results_lib.ResultRow] | None:
  """The rows of a finished task file, or None (missing, invalid, stale)."""
  if not tf.io.gfile.exists(path):
    return None
  version = evaluator_lib.template_version(task)
  try:
    with tf.io.gfile.GFile(path) as f:
      record = json.load(f)
    rows = [results_lib.ResultRow(**r) for r in record["rows"]]
    problem = None
    if (record["task"], record["checkpoint_step"]) != (task, checkpoint.step):
      problem = (f"it holds {record['task']} of step "
                 f"{record['checkpoint_step']}")
    elif record["settings"] != dict(settings):
      problem = (f"it was computed with other settings "
                 f"({record['settings']}, now {dict(settings)})")
    elif not rows or any((r.task, r.checkpoint_step) != (task, checkpoint.step)
                         for r in rows):
      problem = "its rows do not belong to it"
    elif any(r.template_version != version for r in rows):
      problem = (f"it was scored with template version "
                 f"{rows[0].template_version or 'unknown'}, now {version}")
  except (ValueError, KeyError, TypeError) as e:
    problem = f"it is not a task result ({type(e).__name__}: {e})"
  if problem:
    logging.warning("Ignoring %s: %s; scoring %s again", path, problem, task)
    return None
  return rows


def write_task_result(path: str, checkpoint: Checkpoint, task: str,
                      settings: Mapping[str, Any],
                      rows: Sequence[results_lib.ResultRow]) -> None:
  tf.io.gfile.makedirs(os.path.dirname(path))
  results_lib.write_atomically(path, json.dumps({
      "model_dir": checkpoint.model_dir, "checkpoint_step": checkpoint.step,
      "task": task, "settings": dict(settings),
      "rows": [dataclasses.asdict(r) for r in rows]},
      ensure_ascii=False, indent=1))


def _append_ledger(output_dir: str, entry: Mapping[str, Any]) -> None:
  """One JSON line per scored (checkpoint, task), for people and tests."""
  if "://" in output_dir:  # Object stores cannot append.
    return
  with open(os.path.join(output_dir, LEDGER), "a", encoding="utf-8") as f:
    f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _vocabulary_key() -> str:
  """Content hash of the tasks' vocabulary (runs keep copies of one file)."""
  with tf.io.gfile.GFile(vocab_lib.vocabulary_path(), "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def _duration(seconds: float) -> str:
  return str(datetime.timedelta(seconds=round(seconds)))


class _Progress:
  """Tasks done / to do, examples per second and ETA, as a bar and logs."""

  def __init__(self, total: int, skipped: int, enabled: bool):
    self.total = total
    self.skipped = skipped
    self.done = 0
    self.examples = 0
    self.seconds = 0.0
    self.bar = tqdm.tqdm(total=total, unit="task", desc="batch eval",
                         disable=not enabled, dynamic_ncols=True)

  def update(self, checkpoint: Checkpoint, task: str, examples: int,
             seconds: float) -> None:
    self.done += 1
    self.examples += examples
    self.seconds += seconds
    rate = self.examples / max(self.seconds, 1e-9)
    eta = (self.total - self.done) * self.seconds / self.done
    self.bar.set_postfix(examples_per_s=f"{rate:.1f}")
    self.bar.update(1)
    logging.info(
        "[%d/%d] %s %s: %d examples in %.1f s (%.1f examples/s); job: %d/%d "
        "tasks done, %.1f examples/s, ETA %s", self.done, self.total,
        checkpoint.label, task, examples, seconds,
        examples / max(seconds, 1e-9), self.skipped + self.done,
        self.skipped + self.total, rate, _duration(eta))

  def close(self) -> None:
    self.bar.close()


@gin.configurable(denylist=["progress"])
def evaluate_checkpoints(*,
                         checkpoints: Sequence[str] = gin.REQUIRED,
                         mixtures: Sequence[str] = gin.REQUIRED,
                         output_dir: str = gin.REQUIRED,
                         split: str = "validation",
                         max_examples_per_task: int | None = None,
                         batch_size: int = 64,
                         max_input_length: int = 1024,
                         max_target_length: int = 256,
                         num_partitions: int = 1,
                         share_encoder: bool = True,
                         max_decode_length: int = 128,
                         beam_size: int = 1,
                         length_penalty_alpha: float = 0.6,
                         use_cached: bool = False,
                         inputs_eos: bool = True,
                         unscorable_rows: str = "score",
                         progress: bool = True
                         ) -> dict[str, list[results_lib.ResultRow]]:
  """Evaluates every checkpoint on every task of the mixtures.

  Args:
    checkpoints: ``MODEL_DIR:STEP`` or ``MODEL_DIR`` (all its checkpoints)
      entries; each run's model_config.json and vocab.model are used.
    mixtures: mixtures or tasks; their subtasks with metrics and `split`
      are evaluated (each task once, in order): score-eval tasks by rank
      classification, generation tasks by decoding.
    output_dir: the job's folder (see the module docstring); a job run
      again with the same folder skips what is done.
    split: the eval split of the tasks.
    max_examples_per_task: score only the first N examples of each task
      (None: all).
    batch_size, max_input_length, max_target_length, num_partitions,
      share_encoder, max_decode_length, beam_size, length_penalty_alpha,
      use_cached, inputs_eos, unscorable_rows: the settings of
      `evaluator.evaluate`.

  Returns:
    {checkpoint label 'name:step': its rows (every task)}.
  """
  mixtures = [mixtures] if isinstance(mixtures, str) else list(mixtures)
  if not output_dir:
    raise errors.ConfigError(
        "no output dir: give EVAL_OUTPUT_DIR (--gin.EVAL_OUTPUT_DIR=DIR; "
        "korani eval-batch ... --output DIR)")
  if max_examples_per_task is not None and max_examples_per_task < 1:
    raise errors.ConfigError(
        f"max_examples_per_task={max_examples_per_task} must be positive")
  refs = resolve_checkpoints(checkpoints)
  protocol.configure(inputs_eos=inputs_eos, unscorable_rows=unscorable_rows)
  tasks = resolve_tasks(mixtures, split)
  settings = {"split": split, "max_examples_per_task": max_examples_per_task,
              "max_input_length": max_input_length,
              "max_target_length": max_target_length}
  # A protocol switch away from its default changes the results (and so
  # which stored task results still count); the defaults stay unrecorded.
  if not inputs_eos:
    settings["inputs_eos"] = False
  if unscorable_rows != "score":
    settings["unscorable_rows"] = unscorable_rows
  decode_settings = {**settings, "max_decode_length": max_decode_length,
                     "beam_size": beam_size,
                     "length_penalty_alpha": length_penalty_alpha}
  task_settings = {
      task: settings if _has_metrics(seqio.get_mixture_or_task(task),
                                     seqio.metrics.ModelOutputType.SCORE)
      else decode_settings for task in tasks}
  done = {(ref, task): read_task_result(ref.task_path(output_dir, task), ref,
                                        task, task_settings[task])
          for ref in refs for task in tasks}
  pending = [pair for pair, rows in done.items() if rows is None]
  logging.info(
      "Batch eval: %d checkpoint(s) x %d task(s) = %d; %d already done "
      "(skipped), %d to score; results in %s", len(refs), len(tasks),
      len(done), len(done) - len(pending), len(pending), output_dir)
  if jax.process_count() > 1:  # Every process decided before any writes.
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices("korani_batch_eval_plan")
  writer = jax.process_index() == 0
  if writer:
    tf.io.gfile.makedirs(output_dir)

  mesh = partitioning.make_mesh(num_partitions)
  evaluators: dict[str, seqio.Evaluator] = {}
  evaluators_vocabulary = None
  scorer, predictor, scorer_config = None, None, None
  bar = _Progress(len(pending), len(done) - len(pending), progress)
  all_rows = {}
  try:
    with mesh, nn.logical_axis_rules(
        partitioning.standard_logical_axis_rules()):
      for ref in refs:
        todo = [task for task in tasks if done[(ref, task)] is None]
        # Each run's vocabulary is the tasks' while its tasks are scored.
        with vocab_lib.using_vocabulary(
            trainer.run_vocabulary(ref.model_dir)):
          if todo:
            config = evaluator_lib.prepare_model_config(ref.model_dir)
            recorded = results_lib.run_settings(mixtures)
            if _vocabulary_key() != evaluators_vocabulary:
              evaluators, evaluators_vocabulary = {}, _vocabulary_key()
            params, _ = evaluator_lib.restore_params(ref.model_dir, config,
                                                     mesh, ref.step)
            if scorer is None or scorer_config != config:
              scorer = scoring.make_scorer(
                  MT5(config), params, mesh, batch_size, max_input_length,
                  max_target_length, share_encoder)
              predictor = decoding.Predictor(
                  MT5(config), params, batch_size, max_input_length,
                  max_decode_length, beam_size, length_penalty_alpha,
                  mesh=mesh)
              scorer_config = config
            # Same shapes: the compiled steps are reused.
            scorer.params = predictor.params = params
            logging.info("Restored %s (step %d of %s): %d task(s) to score",
                         ref.label, ref.step, ref.model_dir, len(todo))
          for task in todo:
            tick = time.perf_counter()
            if task not in evaluators:
              evaluators[task] = task_evaluator(
                  task, split, max_examples_per_task, use_cached)
            rows = [dataclasses.replace(r, **recorded)
                    for r in evaluator_lib.evaluate_tasks(
                        evaluators[task], scorer, predictor, step=ref.step,
                        split=split)]
            seconds = time.perf_counter() - tick
            if writer:
              write_task_result(ref.task_path(output_dir, task), ref, task,
                                task_settings[task], rows)
              _append_ledger(output_dir, {
                  "model_dir": ref.model_dir, "checkpoint_step": ref.step,
                  "task": task, "examples": rows[0].num_examples,
                  "seconds": round(seconds, 3), "pid": os.getpid()})
            done[(ref, task)] = rows
            bar.update(ref, task, rows[0].num_examples, seconds)
          rows = [row for task in tasks for row in done[(ref, task)]]
          if writer:
            results_lib.write_results(
                rows, ref.results_dir(output_dir), title=(
                    f"{', '.join(mixtures)} — {split} split, checkpoint "
                    f"{ref.step} of {ref.model_dir}"))
          all_rows[ref.label] = rows
  finally:
    bar.close()
  logging.info("Batch eval done: %d task(s) scored in %s, %d skipped; "
               "results in %s", bar.done, _duration(bar.seconds),
               len(done) - len(pending), output_dir)
  return all_rows


# -- the command ------------------------------------------------------------

DEFAULT_GIN_FILE = "runs/batch_eval.gin"
USAGE = """\
korani eval-batch [CHECKPOINT ...] [--mixture M ...] [--output DIR]
                         [--max_examples_per_task N] [--gin_file F]
                         [--gin.MACRO=value ...]
       (= python -m t5x_runs.batch_eval)"""
DESCRIPTION = """\
CHECKPOINT: MODEL_DIR:STEP, or MODEL_DIR for every checkpoint of the run.
Flags set the macros of gin/runs/batch_eval.gin (CHECKPOINTS, EVAL_MIXTURES,
EVAL_OUTPUT_DIR, MAX_EXAMPLES_PER_TASK); without --gin_file that file is
used. A finished (checkpoint, task) is skipped when the job runs again.
Errors a user can fix (unknown mixture, missing checkpoint) exit with 2."""


def _positive(value: str) -> int:
  if not value.isdigit() or int(value) < 1:
    raise argparse.ArgumentTypeError(
        f"{value!r}: expected a positive whole number")
  return int(value)


def command_parser(name: str = "t5x_runs.batch_eval"):
  """The command's flags: t5x_runs/flags.py's, and the ones for its macros."""
  parser = flags.parser(name, usage=USAGE, description=DESCRIPTION)
  parser.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT")
  parser.add_argument("--mixture", action="append", default=[],
                      help="a mixture or task to evaluate (repeatable)")
  parser.add_argument("--output", "--output_dir", dest="output",
                      metavar="DIR", help="EVAL_OUTPUT_DIR")
  parser.add_argument("--max_examples_per_task", type=_positive, metavar="N")
  return parser


def command_args(argv: Sequence[str], name: str = "t5x_runs.batch_eval"):
  """The parsed flags with the command's own as gin macros (or exit status)."""
  args = flags.parse(command_parser(name), argv, intermixed=True)
  if isinstance(args, int):
    return args
  if args.checkpoints:
    flags.add_macro(args, "CHECKPOINTS", repr(args.checkpoints))
  if args.mixture:
    flags.add_macro(args, "EVAL_MIXTURES", repr(args.mixture))
  if args.output is not None:
    flags.add_macro(args, "EVAL_OUTPUT_DIR", repr(args.output))
  if args.max_examples_per_task is not None:
    flags.add_macro(args, "MAX_EXAMPLES_PER_TASK",
                    str(args.max_examples_per_task))
  if not args.gin_files:
    args.gin_files.append(DEFAULT_GIN_FILE)
  return args


def main(argv: Sequence[str] | None = None,
         name: str = "t5x_runs.batch_eval") -> int:
  args = command_args(list(sys.argv[1:] if argv is None else argv), name)
  if isinstance(args, int):
    return args

  def run():
    # The gin file registers this module as t5x_runs.batch_eval (also when
    # it runs as __main__): call that module's function.
    from t5x_runs import batch_eval as job  # pylint: disable=import-outside-toplevel,import-self
    job.evaluate_checkpoints()
  return entrypoint.run_with_gin(args, run, name=name)


if __name__ == "__main__":
  sys.exit(main())
