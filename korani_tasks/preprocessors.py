"""SeqIO preprocessors: prompt templates and rank-classification expansion.

Data flow of a task (see tasks.py)::

    raw record ──apply_prompt_template──▶ {inputs, targets, answer_choices,
                                           answer_index}
      train task:      ──select_inputs_targets──▶ ┊cache┊ ──tokenize──▶
                       ──append_eos_after_trim──▶
      score-eval task: ┊cache┊ ──rank_classification──▶ one example per
                       choice ──tokenize──▶ ──append_eos_after_trim──▶

┊cache┊ is the task's `seqio.CacheDatasetPlaceholder` (korani_tasks/caching.py):
the offline cache holds rendered text. The source's ``example_index`` (the
record's position in its split, `sources.EXAMPLE_INDEX`) passes through the
rendering and numbers the examples of a score-eval task.

The template language is a parameter of `apply_prompt_template`, independent
of the data: the same Korean record can be rendered with the Korean template
(monolingual) or with its aligned English version (cross-lingual).
"""

from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from korani_tasks.sources import EXAMPLE_INDEX
from korani_tasks.templates import PromptTemplate


def _to_python(value: Any) -> Any:
  """Converts one record field from a tensor to str/int/float/list."""
  if isinstance(value, tf.Tensor):
    value = value.numpy()
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray):
    return [_to_python(v) for v in value.tolist()]
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, list):
    return [_to_python(v) for v in value]
  return value


def decode_record(record: Mapping[str, Any]) -> dict[str, Any]:
  """A record of tensors or numpy values as plain Python values."""
  return {k: _to_python(v) for k, v in record.items()}


def render_record(template: PromptTemplate, record: Mapping[str, Any]):
  """Renders a record, naming the template and record in any error."""
  try:
    return template.render(record)
  except ValueError as e:
    raise ValueError(
        f"{e} (record idx={record.get('idx', '?')} of {template.dataset})") from e


def apply_prompt_template(dataset: tf.data.Dataset,
                          template: PromptTemplate) -> tf.data.Dataset:
  """Renders every record with a jinja2 prompt template.

  Example: a KoBEST BoolQ record ``{"paragraph": "…", "question": "…",
  "label": 1, "idx": 3}`` becomes::

      {"inputs": "…\\nQuestion: …\\nAnswer:", "targets": "Yes",
       "answer_choices": ["No", "Yes"], "answer_index": 1}

  ``answer_index`` is -1 for generation templates (no choices). A record's
  ``example_index`` is kept as it is (not shown to the template).
  """
  keys = sorted(k for k in dataset.element_spec if k != EXAMPLE_INDEX)

  def render(*values):
    record = decode_record(dict(zip(keys, values)))
    rendered = render_record(template, record)
    label = -1 if rendered.label_index is None else rendered.label_index
    return (rendered.inputs, rendered.targets,
            tf.constant(list(rendered.answer_choices), dtype=tf.string,
                        shape=[len(rendered.answer_choices)]),
            np.int32(label))

  def map_fn(ex):
    inputs, targets, choices, answer_index = tf.py_function(
        render, [ex[k] for k in keys],
        [tf.string, tf.string, tf.string, tf.int32])
    inputs.set_shape([])
    targets.set_shape([])
    choices.set_shape([None])
    answer_index.set_shape([])
    return with_example_index(
        {"inputs": inputs, "targets": targets, "answer_choices": choices,
         "answer_index": answer_index}, ex)

  return dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)


def with_example_index(rendered: dict[str, Any],
                       record: Mapping[str, Any]) -> dict[str, Any]:
  """`rendered` with the record's `EXAMPLE_INDEX`, where it has one."""
  if EXAMPLE_INDEX in record:
    rendered[EXAMPLE_INDEX] = record[EXAMPLE_INDEX]
  return rendered


def select_inputs_targets(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Keeps only `inputs` and `targets` (what a training task emits)."""
  return dataset.map(lambda ex: {"inputs": ex["inputs"],
                                 "targets": ex["targets"]},
                     num_parallel_calls=tf.data.AUTOTUNE)


def rank_classification(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Expands each example into one example per answer choice.

  This is the score-eval format of T0 and t5x (t5.data.preprocessors.
  rank_classification): the model scores every choice as a target, and the
  metric picks the choice with the highest log-likelihood. Example 7 with
  choices ["No", "Yes"] and answer_index 1 becomes::

      {"inputs": x, "targets": "No",  "idx": [7, 0], "is_correct": False}
      {"inputs": x, "targets": "Yes", "idx": [7, 1], "is_correct": True}

  The example number is the record's ``example_index`` (its position in the
  split, `sources.EXAMPLE_INDEX`), so it is the same however the split's files
  are read (in order, sharded, or by a Beam job one file at a time).

  Raises:
    ValueError: the examples have no ``example_index``.
  """
  if EXAMPLE_INDEX not in dataset.element_spec:
    raise ValueError(
        f"rank_classification needs each example's {EXAMPLE_INDEX!r} (from "
        "KoraniTfdsSource(..., example_index=True)); got features "
        f"{sorted(dataset.element_spec)}")

  def expand(ex):
    index = ex[EXAMPLE_INDEX]
    tf.debugging.assert_positive(
        tf.size(ex["answer_choices"]),
        message="rank_classification needs answer choices (a generation "
        "template has none)")
    num_choices = tf.shape(ex["answer_choices"])[0]
    choice = tf.range(num_choices, dtype=tf.int32)
    return tf.data.Dataset.from_tensor_slices({
        "inputs": tf.fill([num_choices], ex["inputs"]),
        "targets": ex["answer_choices"],
        "idx": tf.stack(
            [tf.fill([num_choices], tf.cast(index, tf.int32)), choice], axis=1),
        "is_correct": tf.equal(choice, ex["answer_index"]),
    })

  return dataset.flat_map(expand)
