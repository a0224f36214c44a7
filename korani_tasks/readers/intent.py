"""Readers for the intent datasets SAE4K and StyleKQC (speech acts).

SAE4K (https://github.com/warnikchow/sae4k, ``data/sae4k_v1.txt``) is one
headerless UTF-8 file (a BOM before line 1, CRLF line ends, no line end after
the last row) of 30,837 rows ``sentence<TAB>argument<TAB>label``: a Korean
question or command, its intent argument (the question set or to-do item),
and the utterance type, 0-5 = yes/no question (판정), alternative question
(선택), wh-question (설명), prohibition (금지), requirement (부탁), strong
requirement (권고; "don't X, do Y"). These ids are the catalog's label order,
as in the SAE4K documentation (the Hugging Face ``kor_sae`` card) and the data
itself (label 1 rows are "A or B" questions, 3 rows "don't ...", 5 rows
"don't X but Y"). Example record::

    {"sentence": "오늘 체감온도가 어느 정도이니",
     "argument": "오늘 체감온도", "label": 2}  # wh_question

The source has no split. Rows are assigned train/validation/test (80/10/10) by
`splits.assign_split` of the sentence with its whitespace collapsed, so every
copy of a sentence lands in the same split (1,560 sentences occur more than
once; split by line number, 619 validation/test rows would repeat a train
sentence). The record key is ``"sae4k_v1.txt:<line>"``.

StyleKQC (https://github.com/cynthia/stylekqc) ``act/{train,dev,test}.tsv``
are TSV files with the header ``act sentence`` (24,000 / 1,200 / 4,800 rows),
read as train/validation/test. ``act`` 0-3 is the speech act, in the catalog's
label order: 0 alternative question (선택, "A야 B야"), 1 wh-question (질문),
2 prohibition (금지), 3 requirement (부탁); this was read off the sentences of
each id (the repository does not document it) and agrees with the KORANI
release, whose StyleKQC examples with the answer 선택 are act 0 rows. Example
record::

    {"sentence": "파란색 바지가 겨울용인지 여름용인지 알려주세요",
     "label": 0}  # alternative_question

The ``topic/*.tsv`` files hold the same sentences, in the same order, with a
topic label (0-5) instead of the act; they are not used.

Text is kept exactly as in the files (some SAE4K sentences and arguments have
trailing spaces); an unknown label, a wrong number of fields or an empty text
raises `korani_tasks.errors.DataFormatError` naming the file and line.
"""

from collections.abc import Iterator, Sequence
import os
import pathlib
from typing import Any

import tensorflow as tf

from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import splits
from korani_tasks.readers import tsv

Record = dict[str, Any]

SAE4K_FILE = "sae4k/sae4k_v1.txt"
SAE4K_SPLIT_NOTE = (
    "The source has no split: rows are assigned train/validation/test "
    "80/10/10 by sha256('korani-v1:<sentence>') of the sentence with its "
    "whitespace collapsed (korani_tasks.readers.splits), so repeated "
    "sentences stay in one split.")
STYLEKQC_SPLIT_FILES = {
    "train": "stylekqc/act/train.tsv",
    "validation": "stylekqc/act/dev.tsv",
    "test": "stylekqc/act/test.tsv",
}

_SAE4K_LABELS = {str(i): i for i in range(6)}
# StyleKQC act id -> catalog label id (the same order; see the docstring).
_STYLEKQC_ACTS = {"0": 0, "1": 1, "2": 2, "3": 3}


def sae4k_group(sentence: str) -> str:
  """The split group of a SAE4K sentence: its words joined by one space."""
  return " ".join(sentence.split())


def read_sae4k(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads every row of ``sae4k_v1.txt`` (all splits), in file order.

  Yields:
    ``("sae4k_v1.txt:<line>", record)``, the line number 1-based.

  Raises:
    DataFormatError: the file is not UTF-8 or empty; a row has other than 3
      fields, an empty sentence or argument, or a label not in 0-5; a blank
      line is followed by more rows.
  """
  for line, text in tsv.read_lines(path):
    fields = text.split("\t")
    if len(fields) != 3:
      raise DataFormatError(
          path, line,
          f"expected 3 tab-separated fields (sentence, argument, label), "
          f"got {len(fields)}")
    sentence, argument, label = fields
    for column, value in (("sentence", sentence), ("argument", argument)):
      if not value.strip():
        raise DataFormatError(path, line, f"empty {column}")
    yield base.file_key(path, line), {
        "sentence": sentence,
        "argument": argument,
        "label": tsv.parse_choice(label, _SAE4K_LABELS, path, line, "label"),
    }


def read_stylekqc(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads one StyleKQC ``act`` file (``act sentence``).

  Yields:
    ``("<file name>:<line>", record)``; the first data row is line 2.

  Raises:
    DataFormatError: as `tsv.read_tsv`, or an act not in 0-3, or an empty
      sentence.
  """
  for line, row in tsv.read_tsv(path, ("act", "sentence")):
    if not row["sentence"].strip():
      raise DataFormatError(path, line, "empty sentence")
    yield base.file_key(path, line), {
        "sentence": row["sentence"],
        "label": tsv.parse_choice(row["act"], _STYLEKQC_ACTS, path, line,
                                  "act"),
    }


def _read_sae4k_split(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  for key, record in read_sae4k(paths[0]):
    if splits.assign_split(sae4k_group(record["sentence"])) == split:
      yield key, record


def _read_stylekqc_split(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  del split  # One file per split.
  yield from read_stylekqc(paths[0])


base.register(base.RawDataset(
    name="sae4k",
    split_files={split: (SAE4K_FILE,)
                 for split, _ in splits.DEFAULT_FRACTIONS},
    read=_read_sae4k_split,
    features={"sentence": tf.string, "argument": tf.string,
              "label": base.label_feature("sae4k")},
    split_note=SAE4K_SPLIT_NOTE))

base.register(base.RawDataset(
    name="stylekqc",
    split_files={split: (f,) for split, f in STYLEKQC_SPLIT_FILES.items()},
    read=_read_stylekqc_split,
    features={"sentence": tf.string, "label": base.label_feature("stylekqc")},
))
