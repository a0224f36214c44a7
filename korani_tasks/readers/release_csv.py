"""Reader of the official KORANI release CSVs (pre-rendered Korean prompts).

The KORANI authors distribute every dataset already rendered with their
templates, laid out as::

    KORANI/<cluster folder>/<dataset key>/train.csv
    KORANI/<cluster folder>/<dataset key>/<one CSV per template>.csv

Every ``*.csv`` other than ``train.csv`` in a dataset's folder is the
evaluation file of one template (file names vary). The cluster folder names of
the release are not ours (e.g. ``natural_language_inference``,
``hatespeech``), so a dataset is found by its key alone (`find_dataset_dir`).

Each CSV has the header ``input,output,choices,dataset_name,id``; ``input`` is
the rendered prompt, ``choices`` joins the answer options with ``|||`` (empty
for generation tasks). Fields may hold quotes and newlines. A row::

    input,output,choices,dataset_name,id
    "다음 발화의 의도를 골라봐\\n댓글: ...",선택,질문|||선택|||금지|||부탁,stylekqc,5074

is read as the record::

    {"input": "다음 발화의 의도를 골라봐\\n댓글: ...", "output": "선택",
     "choices": ["질문", "선택", "금지", "부탁"], "answer_index": 1,
     "dataset_name": "stylekqc", "id": "5074", "template": "dev_template0"}

``answer_index`` is the index of the stripped output among the (stripped)
choices, -1 where there are no choices. The release has rows whose output is
not one of their choices (e.g. ``beep_hate`` output 아니다 with choices
적대|||혐오|||정상): such a row gets answer_index -1 and a logged warning naming
its file and line; it is trained on, and a score eval counts it as wrong or
leaves it out (`korani_tasks.protocol`); `count_unscorable` reports it. An
empty output is an error naming file and line.

This module registers no `RawDataset` (the release has its own TFDS builder,
`korani_tasks.tfds_builders.release`) and imports only the standard library.
"""

from collections.abc import Iterable, Iterator
import csv
import logging
import os
import pathlib
import sys
from typing import Any

from korani_tasks import errors
from korani_tasks import storage

_log = logging.getLogger(__name__)

COLUMNS = ("input", "output", "choices", "dataset_name", "id")
CHOICE_SEPARATOR = "|||"
TRAIN_FILE = "train.csv"

Record = dict[str, Any]

# Release fields (whole dialogues, documents) can exceed csv's 128 KiB default.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def parse_choices(value: str, path: os.PathLike | str,
                  line: int) -> list[str]:
  """The answer options of a ``choices`` field ([] when it is empty)."""
  if not value.strip():
    return []
  choices = [c.strip() for c in value.split(CHOICE_SEPARATOR)]
  if not all(choices):
    raise errors.DataFormatError(
        path, line, f"empty answer choice in choices {value!r}")
  return choices


def _utf8_error(path: pathlib.Path) -> errors.DataFormatError:
  """The error for a file that is not UTF-8, naming its first bad line."""
  with storage.open_binary(path) as f:
    for line, raw in enumerate(f, start=1):
      try:
        raw.decode("utf-8")
      except UnicodeDecodeError as e:
        return errors.DataFormatError(
            path, line, f"not valid UTF-8 (bad byte 0x{raw[e.start]:02x} at "
            f"column {e.start + 1}); the file must be UTF-8")
  return errors.DataFormatError(path, None, "not valid UTF-8")


def _rows(path: pathlib.Path) -> Iterator[tuple[int, Record, bool]]:
  """Yields (line of the row start, record, scorable) for each row of a CSV."""
  with storage.open_text(path) as f:
    reader = csv.reader(f, strict=True)
    end = 0  # Last line read so far.
    try:
      header = next(reader, None)
      if header is None:
        raise errors.DataFormatError(path, 1, "empty file: no header")
      if tuple(h.strip() for h in header) != COLUMNS:
        raise errors.DataFormatError(
            path, 1, f"header {header} is not {list(COLUMNS)}")
      end = reader.line_num
      while True:
        start = end + 1
        row = next(reader, None)
        if row is None:
          return
        end = reader.line_num
        if not row:  # A blank line, no data.
          continue
        if len(row) != len(COLUMNS):
          spans = f" (the row runs to line {end})" if end > start else ""
          raise errors.DataFormatError(
              path, start,
              f"{len(row)} fields, expected {len(COLUMNS)} "
              f"({', '.join(COLUMNS)}){spans}; an unbalanced quote joins or "
              "splits rows")
        record = dict(zip(COLUMNS, row))
        if not record["input"].strip():
          raise errors.DataFormatError(path, start, "empty input")
        if not record["output"].strip():
          raise errors.DataFormatError(
              path, start, "empty output: a row needs its target (the "
              "answer, or the text to generate)")
        choices = parse_choices(record["choices"], path, start)
        output = record["output"].strip()
        answer_index = choices.index(output) if output in choices else -1
        record.update(choices=choices, answer_index=answer_index,
                      template=path.stem)
        yield start, record, not choices or answer_index >= 0
    except csv.Error as e:
      raise errors.DataFormatError(
          path, end + 1,
          f"malformed CSV in the row starting here ({e}); an unbalanced "
          "quote joins rows") from e
    except UnicodeDecodeError:
      raise _utf8_error(path) from None


def read_release_csv(
    path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Yields ``("<file name>:<line>", record)`` for every row of a release CSV.

  The line is the one where the row starts (a row may span lines). See the
  module docstring for the record. A row whose output is not among its
  choices is yielded with answer_index -1 and a logged warning.

  Raises:
    DataFormatError: not UTF-8, a wrong header, a row with a wrong number of
      fields, an empty input or output or an empty answer choice; the
      message names file and line.
  """
  path = storage.path(path)
  for line, record, scorable in _rows(path):
    if not scorable:
      _log.warning(
          "%s:%d: output %r is not one of the choices %s (%s): no choice "
          "is correct when the row is scored", path, line,
          record["output"], record["choices"], record["dataset_name"])
    yield f"{path.name}:{line}", record


def count_unscorable(path: os.PathLike | str) -> int:
  """The number of rows with choices whose output is not among them."""
  return sum(not scorable for _, _, scorable in _rows(storage.path(path)))


def count_unscorable_per_file(
    paths: Iterable[os.PathLike | str]) -> dict[pathlib.Path, int]:
  """`count_unscorable` of each file, e.g. ``{Path(".../dev.csv"): 1}``."""
  return {storage.path(p): count_unscorable(p) for p in paths}


def find_dataset_dir(release_dir: os.PathLike | str,
                     key: str) -> pathlib.Path | None:
  """The folder ``<release_dir>/<any cluster>/<key>``, or None if absent.

  Raises:
    DataFormatError: two cluster folders hold a folder named `key`.
  """
  release_dir = storage.path(release_dir)
  found = sorted(p for p in release_dir.glob(f"*/{key}") if p.is_dir())
  if len(found) > 1:
    raise errors.DataFormatError(
        release_dir, None,
        f"dataset {key!r} is in more than one cluster folder: "
        + ", ".join(p.relative_to(release_dir).as_posix() for p in found)
        + "; keep one")
  return found[0] if found else None


def unknown_dataset_dirs(release_dir: os.PathLike | str,
                         keys: Iterable[str]) -> list[pathlib.Path]:
  """The dataset folders ``<release_dir>/<cluster>/<name>`` named by no key.

  Such a folder is never read (datasets are found by their catalog key, the
  release's ``dataset_name``), so callers warn about it. Example:
  ``[Path(".../KORANI/summarization/book_summary")]``.
  """
  release_dir = storage.path(release_dir)
  keys = set(keys)
  return sorted(p for p in release_dir.glob("*/*")
                if p.is_dir() and p.name not in keys)


def split_files(
    dataset_dir: os.PathLike | str) -> dict[str, list[pathlib.Path]]:
  """The CSVs of a dataset folder by split: train.csv and the evaluation CSVs.

  Example: ``{"train": [.../train.csv], "validation": [.../dev_t0.csv,
  .../dev_t1.csv]}`` (evaluation files sorted by name); a split with no file
  is left out.
  """
  dataset_dir = storage.path(dataset_dir)
  csvs = sorted(p for p in dataset_dir.glob("*.csv") if p.is_file())
  train = [p for p in csvs if p.name == TRAIN_FILE]
  evaluation = [p for p in csvs if p.name != TRAIN_FILE]
  return {split: files for split, files in
          (("train", train), ("validation", evaluation)) if files}
