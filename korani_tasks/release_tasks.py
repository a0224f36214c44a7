"""Registers the SeqIO tasks of the official KORANI release CSVs.

For every catalog dataset (all 51, whether or not it has a raw reader)::

    korani_<key>_ko_release              inputs = the release's rendered input,
                                         targets = its output (training)
    korani_<key>_ko_release_score_eval   NLU datasets only: rank classification
                                         over each row's own choices

with splits ``train`` (train.csv) and ``validation`` (the evaluation CSVs, one
per template), read through the ``korani_release/<key>`` TFDS builder
(`korani_tasks.tfds_builders.release`) from the release folder
(``$KORANI_RELEASE_DIR``, else ``$KORANI_DATA_DIR/KORANI``). Their TaskInfo
has ``source="release"`` and no template (the inputs are rendered already).

Rows whose output is not among their choices (answer_index -1, "unscorable")
stay in the training task. The score-eval task scores them as the official
KORANI code does (no choice is correct: the row counts as wrong) or, with
``protocol.configure(unscorable_rows="exclude")`` (gin ``UNSCORABLE_ROWS``),
leaves them out; either way it logs how many, and `num_unscorable` gives the
count per split for the results. Registration reads no data file.
"""

import functools
import logging

import tensorflow as tf

from korani_tasks import catalog
from korani_tasks import preprocessors
from korani_tasks import protocol
from korani_tasks import sources
from korani_tasks import tasks
from korani_tasks.tfds_builders import release

_log = logging.getLogger(__name__)

TEMPLATE_ID = "release"
LANG = "ko"  # The release's prompts are Korean.
SPLITS = ("train", "validation")


def render_release(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """A release record as the fields the task preprocessors expect.

  ``{"input": x, "output": y, "choices": c, "answer_index": i, ...}`` becomes
  ``{"inputs": x, "targets": y, "answer_choices": c, "answer_index": i}``.
  """
  return dataset.map(
      lambda ex: preprocessors.with_example_index(
          {"inputs": ex["input"], "targets": ex["output"],
           "answer_choices": ex["choices"],
           "answer_index": ex["answer_index"]}, ex),
      num_parallel_calls=tf.data.AUTOTUNE)


def render_scorable(dataset: tf.data.Dataset, source: sources.KoraniTfdsSource,
                    task_name: str) -> tf.data.Dataset:
  """`render_release` for rank classification, under the run's protocol.

  A row whose output is not among its choices (answer_index -1) is scored
  (every choice wrong) or, when ``protocol.current().unscorable_rows`` is
  "exclude", left out. The number of such rows per split of the prepared
  dataset is logged.
  """
  builder = source.builder  # Prepared already: the source made `dataset`.
  unscorable = builder.prepared_unscorable_rows()
  without_choices = builder.prepared_rows_without_choices()
  policy = protocol.current().unscorable_rows
  if any(unscorable.values()):
    _log.warning(
        "%s: rows whose output is not among their choices, per split: %s; "
        "they are %s (UNSCORABLE_ROWS=%r)", task_name, unscorable,
        "scored as wrong" if policy == "score" else "left out", policy)
  if any(without_choices.values()):
    _log.warning("%s: leaving out the rows without choices, per split: %s",
                 task_name, without_choices)
  # "exclude" is applied after the offline cache
  # (`preprocessors.apply_unscorable_rows`), so a cache holds every row.
  return render_release(dataset).filter(
      lambda ex: tf.size(ex["answer_choices"]) > 0)


def num_unscorable(task_name: str, split: str) -> int:
  """Rows of `split` whose output is not among their choices (0 if none).

  For a release score-eval task, from its prepared dataset's metadata; 0 for
  any other task.
  """
  source = _SCORE_EVAL_SOURCES.get(task_name)
  if source is None:
    return 0
  return int(source.builder.prepared_unscorable_rows().get(split, 0))


_SCORE_EVAL_SOURCES: dict[str, sources.KoraniTfdsSource] = {}


def register_dataset(dataset: catalog.DatasetInfo) -> list[str]:
  """Registers the release task(s) of one dataset; returns their names."""
  source = sources.KoraniTfdsSource(release.builder_name(dataset.key),
                                    splits=SPLITS, example_index=True)
  kinds = [tasks.TRAIN] + ([tasks.SCORE_EVAL] if dataset.kind == "nlu" else [])
  names = []
  for kind in kinds:
    name = tasks.task_name(dataset.key, LANG, TEMPLATE_ID, kind)
    info = tasks.TaskInfo(
        name=name, dataset=dataset.key, cluster=dataset.cluster,
        template=None, data_lang=LANG, kind=kind, source="release")
    render = (render_release if kind == tasks.TRAIN else functools.partial(
        render_scorable, source=source, task_name=name))
    tasks.register_task(info, source, render)
    if kind == tasks.SCORE_EVAL:
      _SCORE_EVAL_SOURCES[name] = source
    names.append(name)
  return names


def register_all() -> None:
  """Registers the release tasks of every catalog dataset."""
  for dataset in catalog.load().values():
    register_dataset(dataset)


register_all()
