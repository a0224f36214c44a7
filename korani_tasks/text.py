"""Rendered text of tasks, before tokenization.

Used to train a SentencePiece vocabulary when no mT5 vocabulary is
available: the text is what the model will read and write, i.e. every record
of a split rendered by the task's template (inputs and targets).
"""

import logging
from typing import Iterator

import seqio
import tensorflow_datasets as tfds

from korani_tasks import preprocessors
from korani_tasks import tasks
from korani_tasks import vocab


def iter_rendered_text(mixture_or_task_name: str,
                       split: str = "train") -> Iterator[str]:
  """Yields inputs and targets of every example of every subtask's split."""
  subtasks = seqio.get_subtasks(seqio.get_mixture_or_task(mixture_or_task_name))
  for task in subtasks:
    info = tasks.task_info(task.name)
    records = task.source.get_dataset(split=split, shuffle=False)
    count = 0
    for record in tfds.as_numpy(records):
      rendered = preprocessors.render_record(
          info.template, preprocessors.decode_record(record))
      yield rendered.inputs
      yield rendered.targets
      count += 1
    logging.info("Rendered %d %s examples of %s", count, split, task.name)


def trained_vocabulary(mixture_or_task_name: str, vocab_size: int = 4000,
                       split: str = "train") -> str:
  """Path of a SentencePiece model trained on (and cached for) a mixture.

  Meant for gin, so that a run without an mT5 vocabulary trains its own::

      VOCABULARY = @trained_vocabulary()
      trained_vocabulary.mixture_or_task_name = %MIXTURE_OR_TASK_NAME
  """
  return str(vocab.train_vocabulary(
      iter_rendered_text(mixture_or_task_name, split), vocab_size=vocab_size))
