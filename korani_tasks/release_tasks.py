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

Rows whose output is not among their choices (answer_index -1) stay in the
training task and are left out of the score-eval task, which logs how many.
Registration reads no data file.
"""

import functools
import logging

import tensorflow as tf

from korani_tasks import catalog
from korani_tasks import preprocessors
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
  """`render_release`, keeping only the rows that can be scored.

  A row can be scored when its output is one of its choices (answer_index >=
  0). The number of rows left out, per split of the prepared dataset, is
  logged.
  """
  builder = source.builder  # Prepared already: the source made `dataset`.
  unscorable = builder.prepared_unscorable_rows()
  without_choices = builder.prepared_rows_without_choices()
  if any(unscorable.values()) or any(without_choices.values()):
    _log.warning(
        "%s: leaving out the rows that cannot be scored: output not among the "
        "choices %s, no choices %s (rows per split)", task_name, unscorable,
        without_choices)
  return render_release(dataset).filter(lambda ex: ex["answer_index"] >= 0)


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
    names.append(name)
  return names


def register_all() -> None:
  """Registers the release tasks of every catalog dataset."""
  for dataset in catalog.load().values():
    register_dataset(dataset)


register_all()
