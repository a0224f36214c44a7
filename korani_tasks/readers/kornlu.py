"""Readers for KorNLI and KorSTS (kakaobrain/KorNLUDatasets).

Both are plain TSV files with a header row and no quoting: a ``"`` is part of
the text (the KorSTS files have 443 lines with quotes), so they are read with
the strict `tsv.read_tsv`, never with a CSV reader, which would merge lines
at an unbalanced quote (as Hugging Face's ``kor_nli`` loader once did).

KorNLI (the repository's ``KorNLI/`` folder, kept as ``kornli/`` under
``$KORANI_DATA_DIR``; header ``sentence1 sentence2 gold_label``):

  train       ``multinli.train.ko.tsv`` then ``snli_1.0_train.ko.tsv``
              (machine-translated MultiNLI and SNLI train sets; 392,702 and
              550,152 rows according to the release)
  validation  ``xnli.dev.ko.tsv`` (2,490 rows; 830 of each label)
  test        ``xnli.test.ko.tsv`` (5,010 rows; 1,670 of each label)

``gold_label`` entailment/neutral/contradiction is label 0/1/2 (the catalog's
order). SNLI marks a pair whose annotators reached no majority with the gold
label ``-`` (785 of the 550,152 English SNLI train pairs); such a pair has no
answer, so in the two *train* files a ``-`` row is skipped on purpose and the
number skipped is logged per file (`SkipCounter` collects it). The Korean
train files are not in the shared test data, so whether they keep those rows
is not checked here. Any other label, and ``-`` in the XNLI files, raises
`DataFormatError`. Example record::

    {"premise": "그리고 그가 말했다, \\"엄마, 저 왔어요.\\"",
     "hypothesis": "그는 한마디도 하지 않았다.", "label": 2}  # contradiction

KorSTS (``KorSTS/sts-{train,dev,test}.tsv``, kept under ``korsts/``; header
``genre filename year id score sentence1 sentence2``; 5,749 / 1,500 / 1,379
rows as train/validation/test). ``score`` is the 0-5 similarity (a decimal
such as ``3.800``, or an integer such as ``4`` in the later rows); a score
outside 0-5 is an error. Besides the score the record has:

  label         1 (similar) if score >= 3.0 else 0 (dissimilar): the
                threshold KLUE STS uses for its binary label
                (``binary-label``); 2,994 / 629 / 673 pairs are similar.
  score_bucket  the score rounded half up (2.5 -> 3) to an integer 0-5, for
                templates that ask for a 0-5 rating.

``genre`` is kept as written (train spells the forum genre ``main-forum``,
dev and test ``main-forums``). Example record::

    {"genre": "main-captions", "score": 3.8,
     "sentence1": "한 남자가 큰 플루트를 연주하고 있다.",
     "sentence2": "남자가 플루트를 연주하고 있다.",
     "label": 1, "score_bucket": 4}

Keys are ``"<file name>:<line>"`` (the first data row is line 2).
"""

from collections.abc import Iterator, Sequence
import collections
import logging
import math
import os
import pathlib
import re
from typing import Any

import tensorflow as tf

from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import tsv

Record = dict[str, Any]

_log = logging.getLogger(__name__)

KORNLI_SPLIT_FILES = {
    "train": ("kornli/multinli.train.ko.tsv", "kornli/snli_1.0_train.ko.tsv"),
    "validation": ("kornli/xnli.dev.ko.tsv",),
    "test": ("kornli/xnli.test.ko.tsv",),
}
KORSTS_SPLIT_FILES = {
    "train": ("korsts/sts-train.tsv",),
    "validation": ("korsts/sts-dev.tsv",),
    "test": ("korsts/sts-test.tsv",),
}

_NLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}
NO_GOLD_LABEL = "-"  # SNLI: the annotators reached no majority.

STS_SIMILAR_THRESHOLD = 3.0  # As KLUE STS's binary label.
STS_MAX_SCORE = 5
_SCORE = re.compile(r"[0-9]+(\.[0-9]+)?")
_STS_COLUMNS = ("genre", "filename", "year", "id", "score", "sentence1",
                "sentence2")


class SkipCounter(collections.Counter):
  """Rows skipped on purpose, by file name (see `read_kornli`)."""


def read_kornli(
    path: os.PathLike | str,
    *,
    allow_no_gold: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[tuple[str, Record]]:
  """Reads one KorNLI file (``sentence1 sentence2 gold_label``).

  Args:
    path: the TSV file.
    allow_no_gold: whether a row with gold label ``-`` is skipped (the train
      files) instead of being an error (the XNLI files).
    skipped: if given, counts the skipped rows under the file's name.

  Yields:
    ``("<file name>:<line>", {"premise", "hypothesis", "label"})``.

  Raises:
    DataFormatError: as `tsv.read_tsv`, or an unknown gold label.
  """
  name = pathlib.Path(path).name
  num_skipped = 0
  for line, row in tsv.read_tsv(path, ("sentence1", "sentence2",
                                       "gold_label")):
    label = row["gold_label"].strip()
    if allow_no_gold and label == NO_GOLD_LABEL:
      num_skipped += 1
      continue
    yield base.file_key(path, line), {
        "premise": row["sentence1"],
        "hypothesis": row["sentence2"],
        "label": tsv.parse_choice(label, _NLI_LABELS, path, line,
                                  "gold_label", shown=row["gold_label"]),
    }
  if num_skipped:
    _log.info("%s: skipped %d rows with gold_label %r (no annotator majority)",
              path, num_skipped, NO_GOLD_LABEL)
  if skipped is not None:
    skipped[name] += num_skipped


def parse_sts_score(value: str, path: os.PathLike | str, line: int) -> float:
  """Parses a KorSTS score such as '3.800' or '4'; it must be within 0-5."""
  if not _SCORE.fullmatch(value):
    raise DataFormatError(
        path, line,
        f"expected a decimal score in column 'score', got {value!r}")
  score = float(value)
  if not 0 <= score <= STS_MAX_SCORE:
    raise DataFormatError(
        path, line, f"score {value!r} is outside 0-{STS_MAX_SCORE}")
  return score


def score_bucket(score: float) -> int:
  """The score rounded half up and kept within 0-5 (2.5 -> 3, 4.49 -> 4)."""
  return min(STS_MAX_SCORE, max(0, math.floor(score + 0.5)))


def read_korsts(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads one KorSTS file (``genre filename year id score sentence1 ...``).

  Yields:
    ``("<file name>:<line>", record)`` with genre, score, sentence1,
    sentence2, label and score_bucket (see the module docstring).

  Raises:
    DataFormatError: as `tsv.read_tsv`, or a score that is not a number in
      0-5.
  """
  for line, row in tsv.read_tsv(path, _STS_COLUMNS):
    score = parse_sts_score(row["score"], path, line)
    yield base.file_key(path, line), {
        "genre": row["genre"],
        "score": score,
        "sentence1": row["sentence1"],
        "sentence2": row["sentence2"],
        "label": int(score >= STS_SIMILAR_THRESHOLD),
        "score_bucket": score_bucket(score),
    }


def _read_kornli_split(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  for path in paths:
    yield from read_kornli(path, allow_no_gold=split == "train")


def _read_korsts_split(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  del split  # One file per split.
  yield from read_korsts(paths[0])


base.register(base.RawDataset(
    name="kornli",
    split_files=KORNLI_SPLIT_FILES,
    read=_read_kornli_split,
    features={"premise": tf.string, "hypothesis": tf.string,
              "label": base.label_feature("kornli")},
))

base.register(base.RawDataset(
    name="kor_sts",
    split_files=KORSTS_SPLIT_FILES,
    read=_read_korsts_split,
    features={"genre": tf.string, "score": tf.float32,
              "sentence1": tf.string, "sentence2": tf.string,
              "label": base.label_feature("kor_sts"),
              "score_bucket": tf.int32},
))
