"""Rendering P3 records with promptsource templates, as T0 did.

`apply_p3_template` is the first preprocessor of every P3 task. It takes the
``p3_records`` examples (``{"key": "val.jsonl:3", "record": "<json>"}``, see
`korani_tasks.p3.tfds_builder`) and gives what
`korani_tasks.preprocessors.apply_prompt_template` gives for KORANI tasks::

    {"inputs": "...", "targets": "Yes", "answer_choices": ["Yes", "No"],
     "answer_index": 0}

Like T0 (promptsource's ``Template.apply`` in t-zero's seqio tasks), each
record is first prepared as promptsource prepares it: '-' in field names
becomes '_' (``removeHyphen``) and '|||' inside string fields is protected
so that it does not split the choices or the input from the target.

Records are skipped, never an error, where

* the input or the target renders empty: the template does not apply to the
  record (e.g. ``{% if label != -1 %}`` on unlabeled rows, ``{% if label ==
  1 %}`` templates, an empty answer list); T0 drops these examples too;
* in a score-eval task, the target is not one of the answer choices (or a
  choice renders empty): the record cannot be scored by rank
  classification. Training tasks keep these records (answer_index -1).

The number skipped is logged once the dataset has been read to its end:
``p3_super_glue_rte_GPT_3_style_score_eval: skipped 3 of 277 records ...``.
"""

from collections.abc import Mapping
import json
import logging
import threading
from typing import Any

import numpy as np
import tensorflow as tf

from korani_tasks import errors
from korani_tasks import preprocessors as korani_preprocessors
from korani_tasks.sources import EXAMPLE_INDEX
from korani_tasks.templates import PromptTemplate

_log = logging.getLogger(__name__)

TRAIN = "train"
SCORE_EVAL = "score_eval"

KEPT, EMPTY, UNSCORABLE = 0, 1, 2
_END = -1  # The marker after the last record.
# promptsource's Template.pipe_protector.
PIPE_PROTECTOR = "3ed2dface8203c4c9dfb1a5dc58e41e0"
SEPARATOR = "|||"


def prepare_record(record: Mapping[str, Any]) -> dict[str, Any]:
  """promptsource's record preparation: ``removeHyphen`` and pipe escaping.

  Field names with '-' get '_' instead; '|||' in (top-level) string values
  becomes `PIPE_PROTECTOR` (undone by `unescape` after rendering).
  """
  prepared = {}
  for key, value in record.items():
    if isinstance(value, str):
      value = value.replace(SEPARATOR, PIPE_PROTECTOR)
    prepared[key.replace("-", "_")] = value
  return prepared


def unescape(text: str) -> str:
  return text.replace(PIPE_PROTECTOR, SEPARATOR)


def render_p3(template: PromptTemplate, record: Mapping[str, Any],
              kind: str = TRAIN) -> tuple[str, str, list[str], int, int]:
  """``(inputs, targets, answer_choices, answer_index, status)`` of a record.

  `status` is KEPT, EMPTY (input or target empty) or UNSCORABLE (score-eval
  only: no answer choices, an empty choice, or the target not among them).
  `answer_index` is the target's index among the choices, else -1.

  Raises:
    ConfigError: the template uses a field the record lacks.
  """
  inputs, targets, choices = template.render_parts(prepare_record(record))
  inputs, targets = unescape(inputs), unescape(targets)
  choices = [unescape(c) for c in choices]
  scorable = bool(choices) and all(choices) and targets in choices
  answer_index = choices.index(targets) if scorable else -1
  if not inputs or not targets:
    status = EMPTY
  elif kind == SCORE_EVAL and not scorable:
    status = UNSCORABLE
  else:
    status = KEPT
  return inputs, targets, choices, answer_index, status


class SkipCounter:
  """Counts the records of one pass over a task's data, by status."""

  def __init__(self, task_name: str):
    self.task_name = task_name
    self._lock = threading.Lock()
    self._counts = [0, 0, 0]

  def add(self, status: int) -> None:
    with self._lock:
      self._counts[status] += 1

  def counts(self) -> tuple[int, int, int]:
    with self._lock:
      return tuple(self._counts)

  def report(self) -> None:
    """Logs the skipped records of the pass just finished; resets."""
    with self._lock:
      kept, empty, unscorable = self._counts
      self._counts = [0, 0, 0]
    total = kept + empty + unscorable
    if not empty and not unscorable:
      return
    message = (
        f"{self.task_name}: skipped {empty + unscorable} of {total} records: "
        f"{empty} where the template renders an empty input or target (it "
        f"does not apply to them; T0 skips them too), {unscorable} whose "
        "target is not among the answer choices (cannot be scored)")
    (_log.warning if not kept else _log.info)(message)


def apply_p3_template(dataset: tf.data.Dataset, template: PromptTemplate,
                      kind: str = TRAIN,
                      task_name: str = "") -> tf.data.Dataset:
  """Renders ``p3_records`` examples with a template; skips as T0 does.

  Args:
    dataset: examples ``{"key": tf.string, "record": tf.string (JSON)}``,
      with an ``example_index`` (kept as it is) where the source adds one.
    template: a promptsource-dialect `PromptTemplate` (see
      `korani_tasks.p3.promptsource_yaml`).
    kind: TRAIN or SCORE_EVAL (which records are skipped, see the module
      docstring).
    task_name: for the log line of skipped records.

  Returns:
    ``{"inputs", "targets", "answer_choices", "answer_index"}`` per kept
    record, in order.
  """
  counter = SkipCounter(task_name or template.name)

  def render(key, record_json):
    key = key.numpy().decode("utf-8")
    record = json.loads(record_json.numpy().decode("utf-8"))
    try:
      inputs, targets, choices, answer_index, status = render_p3(
          template, record, kind)
    except errors.ConfigError as e:
      raise errors.ConfigError(f"{e} (record {key})") from e
    counter.add(status)
    return (inputs, targets,
            tf.constant(choices, dtype=tf.string, shape=[len(choices)]),
            np.int32(answer_index), np.int32(status))

  def map_fn(ex):
    inputs, targets, choices, answer_index, status = tf.py_function(
        render, [ex["key"], ex["record"]],
        [tf.string, tf.string, tf.string, tf.int32, tf.int32])
    inputs.set_shape([])
    targets.set_shape([])
    choices.set_shape([None])
    answer_index.set_shape([])
    status.set_shape([])
    return korani_preprocessors.with_example_index(
        {"inputs": inputs, "targets": targets, "answer_choices": choices,
         "answer_index": answer_index, "status": status}, ex)

  def report():
    counter.report()
    return np.int32(_END)

  def end_marker(ex):
    status = tf.py_function(report, [], tf.int32)
    status.set_shape([])
    return dict(ex, status=status)

  rendered = dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
  # One marker element after the records: mapping it logs the counts of the
  # pass (the records before it have all been rendered by then).
  end_example = {
      "inputs": tf.constant(""), "targets": tf.constant(""),
      "answer_choices": tf.zeros([0], tf.string),
      "answer_index": tf.constant(-1, tf.int32),
      "status": tf.constant(_END, tf.int32),
  }
  if EXAMPLE_INDEX in dataset.element_spec:
    end_example[EXAMPLE_INDEX] = tf.constant(-1, tf.int64)
  end = tf.data.Dataset.from_tensors(end_example).map(end_marker)
  return (rendered.concatenate(end)
          .filter(lambda ex: tf.equal(ex["status"], KEPT))
          .map(lambda ex: {k: v for k, v in ex.items() if k != "status"}))
