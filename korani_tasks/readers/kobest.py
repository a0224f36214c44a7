"""Readers for the five KoBEST benchmarks in their canonical TSV files.

KoBEST (Kim et al., 2022) is released at
https://github.com/SKT-LSL/KoBEST_datarepo (v1.0) as one folder per dataset
with ``train.tsv``, ``dev.tsv`` and ``test.tsv``. Each reader turns one of those
files into ``(key, record)`` pairs, where ``key`` is ``"<file name>:<line>"``
(unique within a split, e.g. ``"dev.tsv:17"``) and ``record`` uses the field
names of the Hugging Face ``skt/kobest_v1`` dataset, which templates refer to.

Text fields are exactly as in the file (quotes and surrounding spaces kept);
labels are parsed strictly, so an unknown label raises
`korani_tasks.errors.DataFormatError` instead of being dropped.
`KOBEST_DATASETS` says where each dataset's files are and how to read them.
"""

from collections.abc import Callable, Iterator, Mapping
import dataclasses
import os
import pathlib
from typing import Any

import tensorflow as tf

from korani_tasks import catalog
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import tsv
from korani_tasks import storage

Record = dict[str, Any]
Reader = Callable[[os.PathLike | str], Iterator[tuple[str, Record]]]

# KoBEST file name of each split, by TFDS/seqio split name.
SPLIT_FILES = {
    "train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}

_COPA_ANSWERS = {"1": 0, "2": 1}
_COPA_QUESTIONS = {"원인": "원인", "결과": "결과"}  # cause, effect
_HELLASWAG_LABELS = {"0": 0, "1": 1, "2": 2, "3": 3}
_SENTINEG_LABELS = {"0": 0, "1": 1}  # negative, positive
_SENTINEG_NEGATION_COLUMNS = ("Label_origin", "Text_origin", "Category_neg")


def _key(path: os.PathLike | str, line: int) -> str:
  return f"{pathlib.Path(path).name}:{line}"


def read_kobest_boolq(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KoBEST BoolQ (``ID Text Question Answer``).

  Answer is 'True'/'False' in any case (the files mix 'TRUE' and 'True').
  Example record::

      {"idx": 7, "paragraph": "서울은 대한민국의 수도이다. ...",
       "question": "서울은 대한민국의 수도인가?", "label": 1}  # 0 False, 1 True
  """
  for line, row in tsv.read_tsv(path, ("ID", "Text", "Question", "Answer")):
    yield _key(path, line), {
        "idx": tsv.parse_int(row["ID"], path, line, "ID"),
        "paragraph": row["Text"],
        "question": row["Question"],
        "label": int(tsv.parse_bool(row["Answer"], path, line, "Answer")),
    }


def read_kobest_copa(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KoBEST COPA (``ID sentence question 1 2 Answer``).

  The question is '원인' (cause) or '결과' (effect); a few train rows have a
  trailing space ('원인 '), which is stripped. Answer 1 or 2 names the right
  alternative. Example record::

      {"idx": 7, "premise": "비가 많이 왔다.", "question": "결과",
       "alternative_1": "길이 젖었다.", "alternative_2": "길이 말랐다.",
       "label": 0}  # Answer minus 1
  """
  columns = ("ID", "sentence", "question", "1", "2", "Answer")
  for line, row in tsv.read_tsv(path, columns):
    yield _key(path, line), {
        "idx": tsv.parse_int(row["ID"], path, line, "ID"),
        "premise": row["sentence"],
        "question": tsv.parse_choice(
            row["question"].strip(), _COPA_QUESTIONS, path, line, "question",
            shown=row["question"]),
        "alternative_1": row["1"],
        "alternative_2": row["2"],
        "label": tsv.parse_choice(
            row["Answer"], _COPA_ANSWERS, path, line, "Answer"),
    }


def read_kobest_hellaswag(
    path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KoBEST HellaSwag (``context choice1 choice2 choice3 choice4 label``).

  The file has no ID column: ``idx`` is the data row's position in the file,
  starting at 0 (so line 2 has idx 0). Example record::

      {"idx": 0, "context": "남자가 공을 던진다. ...", "ending_1": "...",
       "ending_2": "...", "ending_3": "...", "ending_4": "...",
       "label": 3}  # 0-3: ending_1 to ending_4
  """
  columns = ("context", "choice1", "choice2", "choice3", "choice4", "label")
  for idx, (line, row) in enumerate(tsv.read_tsv(path, columns)):
    yield _key(path, line), {
        "idx": idx,
        "context": row["context"],
        **{f"ending_{i}": row[f"choice{i}"] for i in range(1, 5)},
        "label": tsv.parse_choice(
            row["label"], _HELLASWAG_LABELS, path, line, "label"),
    }


def read_kobest_sentineg(
    path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KoBEST SentiNeg; columns are found by name, not position.

  The splits differ: train is ``ID Text Label``, dev ``ID Label Text``, and
  test ``ID Label_origin Text_origin Label Text Category_neg``. KoBEST's test
  set is the negated sentences, so ``sentence``/``label`` are always the
  Text/Label columns; the test file's original sentence, its label and the
  negation category are kept as ``original_sentence``, ``original_label`` and
  ``negation_category``. Files without those columns (train, dev) give
  '' / -1 / -1 there. Labels: 0 negative, 1 positive. Example test record::

      {"idx": 7, "sentence": "배송이 빠르지 않아요", "label": 0,
       "original_sentence": "배송이 빨라요", "original_label": 1,
       "negation_category": 1}
  """
  for line, row in tsv.read_tsv(path, ("ID", "Text", "Label")):
    present = [c for c in _SENTINEG_NEGATION_COLUMNS if c in row]
    if present and len(present) < len(_SENTINEG_NEGATION_COLUMNS):
      missing = [c for c in _SENTINEG_NEGATION_COLUMNS if c not in row]
      raise DataFormatError(
          path, 1, f"has negation column(s) {present} but not {missing}")
    record = {
        "idx": tsv.parse_int(row["ID"], path, line, "ID"),
        "sentence": row["Text"],
        "label": tsv.parse_choice(
            row["Label"], _SENTINEG_LABELS, path, line, "Label"),
        "original_sentence": "",
        "original_label": -1,
        "negation_category": -1,
    }
    if present:
      record.update(
          original_sentence=row["Text_origin"],
          original_label=tsv.parse_choice(
              row["Label_origin"], _SENTINEG_LABELS, path, line,
              "Label_origin"),
          negation_category=tsv.parse_int(
              row["Category_neg"], path, line, "Category_neg"),
      )
    yield _key(path, line), record


def read_kobest_wic(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KoBEST WiC (``ID Target SENTENCE1 ... SENTENCE2 ... ANSWER``).

  The target word is marked with [brackets] in both sentences; they are kept.
  ANSWER is 'True'/'False' in any case. The dictionary sense numbers and links
  are not part of the record. Example record::

      {"idx": 7, "word": "배", "context_1": "[배]를 타고 강을 건넜다.",
       "context_2": "[배]가 아파서 병원에 갔다.",
       "label": 0}  # 0 = False (different senses), 1 = True
  """
  columns = ("ID", "Target", "SENTENCE1", "SENTENCE2", "ANSWER")
  for line, row in tsv.read_tsv(path, columns):
    yield _key(path, line), {
        "idx": tsv.parse_int(row["ID"], path, line, "ID"),
        "word": row["Target"],
        "context_1": row["SENTENCE1"],
        "context_2": row["SENTENCE2"],
        "label": int(tsv.parse_bool(row["ANSWER"], path, line, "ANSWER")),
    }


@dataclasses.dataclass(frozen=True)
class KobestDataset:
  """One KoBEST dataset: where its files are and how to read them.

  Attributes:
    name: the KORANI dataset key, e.g. 'kobest_boolq'.
    folder: the folder of its files, relative to ``$KORANI_DATA_DIR``.
    reader: reads one split file into ``(key, record)`` pairs.
    split_files: the file name of each split, by split name.
  """

  name: str
  folder: str
  reader: Reader
  split_files: Mapping[str, str] = dataclasses.field(
      default_factory=lambda: dict(SPLIT_FILES))

  @property
  def label_names(self) -> tuple[str, ...]:
    """The meaning of each ``label`` value, by value (from the catalog)."""
    return catalog.get(self.name).labels

  def path(self, data_dir: os.PathLike | str, split: str) -> pathlib.Path:
    """The file of `split`, e.g. ``<data_dir>/kobest/BoolQ/dev.tsv``."""
    return storage.path(data_dir, self.folder, self.split_files[split])


KOBEST_DATASETS: Mapping[str, KobestDataset] = {
    d.name: d for d in (
        KobestDataset("kobest_boolq", "kobest/BoolQ", read_kobest_boolq),
        KobestDataset("kobest_copa", "kobest/COPA", read_kobest_copa),
        KobestDataset("kobest_hellaswag", "kobest/HellaSwag",
                      read_kobest_hellaswag),
        KobestDataset("kobest_sentineg", "kobest/SentiNeg",
                      read_kobest_sentineg),
        KobestDataset("kobest_wic", "kobest/WiC", read_kobest_wic),
    )
}


_FEATURES = {
    "kobest_boolq": {
        "idx": tf.int32, "paragraph": tf.string, "question": tf.string},
    "kobest_copa": {
        "idx": tf.int32, "premise": tf.string, "question": tf.string,
        "alternative_1": tf.string, "alternative_2": tf.string},
    "kobest_hellaswag": {
        "idx": tf.int32, "context": tf.string,
        **{f"ending_{i}": tf.string for i in range(1, 5)}},
    "kobest_sentineg": {
        "idx": tf.int32, "sentence": tf.string,
        "original_sentence": tf.string, "original_label": tf.int32,
        "negation_category": tf.int32},
    "kobest_wic": {
        "idx": tf.int32, "word": tf.string, "context_1": tf.string,
        "context_2": tf.string},
}


def _raw_dataset(dataset: KobestDataset) -> base.RawDataset:
  def read(split, split_paths):
    del split  # One file per split.
    yield from dataset.reader(split_paths[0])
  return base.RawDataset(
      name=dataset.name,
      split_files={split: (f"{dataset.folder}/{name}",)
                   for split, name in dataset.split_files.items()},
      read=read,
      features={**_FEATURES[dataset.name],
                "label": base.label_feature(dataset.name)})


for _dataset in KOBEST_DATASETS.values():
  base.register(_raw_dataset(_dataset))
