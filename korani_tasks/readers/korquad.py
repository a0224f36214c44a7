"""Reader for KorQuAD 1.0 in its SQuAD v1.1 JSON files.

KorQuAD 1.0 (Lim et al., 2019) is released at https://korquad.github.io as
``KorQuAD_v1.0_train.json`` (train) and ``KorQuAD_v1.0_dev.json``
(validation), in the SQuAD v1.1 layout::

    {"version": "KorQuAD_v1.0_dev",
     "data": [{"title": "임종석",
               "paragraphs": [{"context": "1989년 2월 15일 여의도 ...",
                               "qas": [{"id": "6548850-0-0",
                                        "question": "...",
                                        "answers": [{"text": "1989년 2월 15일",
                                                     "answer_start": 0}]}]}]}]}

One record per question, keyed by its ``id`` (unique within a file)::

    {"id": "6548850-0-0", "title": "임종석", "context": "1989년 2월 15일 ...",
     "question": "임종석이 여의도 농민 폭력 시위를 주도한 혐의로 지명수배 된 날은?",
     "answers": ["1989년 2월 15일"], "answer_start": [0]}

Every question has at least one answer (KorQuAD 1.0 has no unanswerable
questions; one without answers is an error). Each answer's ``answer_start``
is checked against the context: an answer not found at its offset is kept
as it is, and the reader logs a warning with the number of such answers in
the file (`korani_tasks.readers.klue.SpanCheck`). Malformed input
raises `korani_tasks.errors.DataFormatError` naming the file and the
question's JSON path and id.
"""

from collections.abc import Iterator
import os
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import klue

Record = dict[str, Any]

SPLIT_FILES = {"train": "korquad1/KorQuAD_v1.0_train.json",
               "validation": "korquad1/KorQuAD_v1.0_dev.json"}

FEATURES = {
    "id": tf.string, "title": tf.string, "context": tf.string,
    "question": tf.string, "answers": tfds.features.Sequence(tf.string),
    "answer_start": tfds.features.Sequence(tf.int32),
}


def read_korquad1(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads one KorQuAD 1.0 file (see the module docstring)."""
  spans = klue.SpanCheck("korquad1", path)
  for qid, where, article, paragraph, qa in klue.iter_squad(path, "id"):
    context = klue.get(paragraph, "context", str, path, where)
    texts, starts = klue.answer_spans(qa, path, where)
    if not texts:
      raise DataFormatError(path, None, f"{where}: a question with no answers")
    spans.add(qid, context, texts, starts)
    yield qid, {
        "id": qid,
        "title": klue.get(article, "title", str, path, where),
        "context": context,
        "question": klue.get(qa, "question", str, path, where),
        "answers": texts,
        "answer_start": starts,
    }
  spans.log()


def _read(split, split_paths):
  del split  # One file per split.
  yield from read_korquad1(split_paths[0])


base.register(base.RawDataset(
    name="korquad1",
    split_files={split: (f,) for split, f in SPLIT_FILES.items()},
    read=_read,
    features=FEATURES))
