"""Readers for the review-sentiment sources NSMC and Naver Shopping.

Neither file is in the shared test data (a user downloads them; the tests
write small files in the same format). Keys are ``"<file name>:<line>"``.

* ``naver_movie``: NSMC v1.0 (e9t/nsmc), ``ratings_train.txt`` and
  ``ratings_test.txt``, TSV with header ``id document label``; label 0
  negative, 1 positive. ``test`` is ratings_test; ratings_train is split 90/10
  into ``train`` and ``validation`` by `splits.assign_split` on the review id.
* ``naver_shopping``: bab2min/corpus ``sentiment/naver_shopping.txt``, one
  ``rating<TAB>review`` line per row, no header, ratings 1, 2, 4 or 5; label
  0 (negative) for 1-2 and 1 (positive) for 4-5. No split of its own: rows are
  assigned by `splits.assign_split` on ``"naver_shopping.txt:<line>"``.

Empty texts: NSMC has a few rows whose ``document`` is empty, which no
template can render. Rows whose text is empty or only spaces are skipped, in
both sources, and counted: reading a split logs a warning with the number of
rows skipped and their lines (``skipped_rows`` gives the same count). Anything
else that does not fit the format raises `korani_tasks.errors.DataFormatError`.
"""

from collections.abc import Iterator, Sequence
import logging
import os
import pathlib
from typing import Any

import tensorflow as tf

from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import splits
from korani_tasks.readers import tsv
from korani_tasks import storage

Record = dict[str, Any]
# (path, line, record or None for a skipped row)
Row = tuple[pathlib.Path, int, Record | None]

_log = logging.getLogger(__name__)

NSMC_TRAIN = "nsmc/ratings_train.txt"
NSMC_TEST = "nsmc/ratings_test.txt"
NSMC_VALIDATION_FRACTIONS = (("train", 0.9), ("validation", 0.1))
SHOPPING_FILE = "naver_shopping/naver_shopping.txt"

_NSMC_LABELS = {"0": 0, "1": 1}
# Rating -> label; 3 is not in the corpus (neutral reviews were left out).
_SHOPPING_RATINGS = {"1": 0, "2": 0, "4": 1, "5": 1}


def _empty(text: str) -> bool:
  return not text.strip()


def read_nsmc(
    path: os.PathLike | str) -> Iterator[tuple[int, str, Record | None]]:
  """Reads one NSMC file: yields ``(line, id, record)``.

  ``record`` is None for a row with an empty ``document`` (see the module
  docstring). Example::

      (2, "9976970", {"id": 9976970, "document": "아 더빙.. 진짜 짜증나네요 목소리",
                      "label": 0})  # 0 negative, 1 positive

  Raises:
    DataFormatError: a missing column, a wrong field count, an id that is not
      an integer or a label other than 0/1.
  """
  for line, row in tsv.read_tsv(path, ("id", "document", "label")):
    review_id = tsv.parse_int(row["id"], path, line, "id")
    label = tsv.parse_choice(row["label"], _NSMC_LABELS, path, line, "label")
    record = None
    if not _empty(row["document"]):
      record = {"id": review_id, "document": row["document"], "label": label}
    yield line, row["id"], record


def read_naver_shopping(
    path: os.PathLike | str) -> Iterator[tuple[int, Record | None]]:
  """Reads ``naver_shopping.txt``: yields ``(line, record)``.

  A line is split on its first TAB. ``record`` is None for an empty review.
  Example::

      (1, {"rating": 5, "review": "배공빠르고 굿", "label": 1})

  Raises:
    DataFormatError: a line without a TAB, or a rating other than 1, 2, 4, 5.
  """
  for line, text in tsv.read_lines(path):
    rating, tab, review = text.partition("\t")
    if not tab:
      raise DataFormatError(
          path, line, "expected 'rating<TAB>review', found no TAB")
    if rating not in _SHOPPING_RATINGS:
      raise DataFormatError(
          path, line, f"unknown rating {rating!r} (expected one of: "
          f"{', '.join(_SHOPPING_RATINGS)}; 3 is not in the corpus)")
    record = None
    if not _empty(review):
      record = {"rating": int(rating), "review": review,
                "label": _SHOPPING_RATINGS[rating]}
    yield line, record


def skipped_rows(dataset: str, split: str,
                 split_paths: Sequence[os.PathLike | str]) -> list[str]:
  """The keys (``"<file>:<line>"``) of the empty rows left out of `split`."""
  return [base.file_key(path, line)
          for path, line, record in _rows(dataset, split, split_paths)
          if record is None]


def _rows(dataset: str, split: str,
          split_paths: Sequence[os.PathLike | str]) -> Iterator[Row]:
  """(path, line, record or None) of the rows of `split`, skipped ones too."""
  path = storage.path(split_paths[0])
  if dataset == "naver_movie":
    for line, review_id, record in read_nsmc(path):
      if split == "test" or (
          splits.assign_split(review_id, fractions=NSMC_VALIDATION_FRACTIONS)
          == split):
        yield path, line, record
  elif dataset == "naver_shopping":
    for line, record in read_naver_shopping(path):
      if splits.assign_split(base.file_key(path, line)) == split:
        yield path, line, record
  else:
    raise ValueError(f"not a sentiment dataset: {dataset!r}")


def _reader(dataset: str, text_field: str):
  def read(split: str, split_paths: Sequence[pathlib.Path]):
    skipped = []
    for path, line, record in _rows(dataset, split, split_paths):
      if record is None:
        skipped.append(base.file_key(path, line))
      else:
        yield base.file_key(path, line), record
    if skipped:
      _log.warning("%s: skipped %d row(s) of split %s with an empty %r: %s",
                   dataset, len(skipped), split, text_field,
                   ", ".join(skipped))
  return read


base.register(base.RawDataset(
    name="naver_movie",
    split_files={"train": (NSMC_TRAIN,), "validation": (NSMC_TRAIN,),
                 "test": (NSMC_TEST,)},
    read=_reader("naver_movie", "document"),
    features={"id": tf.int64, "document": tf.string,
              "label": base.label_feature("naver_movie")},
    split_note=(
        "test is ratings_test.txt; ratings_train.txt is split 90/10 into "
        "train/validation by sha256('korani-v1:<review id>') "
        "(korani_tasks.readers.splits). Rows with an empty document cannot be "
        "rendered and are skipped; reading a split logs how many (a warning "
        "naming their lines).")))

base.register(base.RawDataset(
    name="naver_shopping",
    split_files={s: (SHOPPING_FILE,) for s in ("train", "validation", "test")},
    read=_reader("naver_shopping", "review"),
    features={"rating": tf.int32, "review": tf.string,
              "label": base.label_feature("naver_shopping")},
    split_note=(
        splits.DEFAULT_NOTE.replace("<row id>", "naver_shopping.txt:<line>")
        + " Rows with an empty review are skipped; reading a split logs how "
        "many (a warning naming their lines).")))
