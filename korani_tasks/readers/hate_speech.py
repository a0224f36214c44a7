"""Readers for the four hate-speech sources: BEEP!, Curse Detection, UnSmile
and APEACH, in their canonical files.

Each reader yields ``(key, record)`` pairs with ``key = "<file name>:<line>"``
(for a CSV record that spans several lines, the line it starts on). Text
fields are exactly as in the file (surrounding spaces and quotes kept); every
label is parsed strictly, so an unknown value raises
`korani_tasks.errors.DataFormatError` naming the file and line.

* ``beep_hate`` (kocohub/korean-hate-speech, ``labeled/{train,dev}.tsv``):
  TSV ``comments contain_gender_bias bias hate``. ``hate`` none / offensive /
  hate gives ``label`` 0 / 1 / 2.
* ``curse_detection`` (2runo/Curse-detection-v2, ``data.txt``): one
  ``text|label`` line per row, no header, CRLF line ends; label 0 clean,
  1 curse. The text may itself contain ``|``, so a line is split on its
  *last* ``|``. No split of its own: rows are assigned by
  `splits.assign_split` on ``"data.txt:<line>"``.
* ``unsmile`` (smilegate-ai/korean_unsmile_dataset, ``unsmile_{train,valid}
  _v1.0.tsv``): TSV ``문장``, nine 0/1 hate-category columns, ``clean`` and
  ``개인지칭``. ``label`` is 1 (hateful) where ``clean`` is 0.
* ``apeach`` (jason9693/APEACH, ``test.csv``): CSV ``text user_age
  user_gender text_topic class age text_topic_eng`` (quoted fields may span
  lines); class Default / Spoiled gives ``label`` 0 / 1. Only ``test.csv`` is
  published, so it is split train/validation/test by `splits.assign_split` on
  ``"test.csv:<line>"``.
"""

from collections.abc import Iterator, Sequence
import csv
import os
import pathlib
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import splits
from korani_tasks.readers import tsv
from korani_tasks import storage

Record = dict[str, Any]

# --- BEEP! ---

BEEP_FILES = {"train": "beep/labeled/train.tsv",
              "validation": "beep/labeled/dev.tsv"}
_BEEP_LABELS = {"none": 0, "offensive": 1, "hate": 2}
_BEEP_BIASES = {"none": "none", "gender": "gender", "others": "others"}


def read_beep(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads one BEEP! labeled file (``comments contain_gender_bias bias hate``).

  ``contain_gender_bias`` is 'True'/'False' (any case) and becomes 1/0;
  ``bias`` is one of none, gender, others. Example record::

      {"comments": "1,2화 어설펐는데 3,4화 지나서부터는 갈수록 너무 재밌던데",
       "contain_gender_bias": 0, "bias": "none",
       "label": 0}  # 0 none, 1 offensive, 2 hate
  """
  columns = ("comments", "contain_gender_bias", "bias", "hate")
  for line, row in tsv.read_tsv(path, columns):
    yield base.file_key(path, line), {
        "comments": row["comments"],
        "contain_gender_bias": int(tsv.parse_bool(
            row["contain_gender_bias"], path, line, "contain_gender_bias")),
        "bias": tsv.parse_choice(row["bias"], _BEEP_BIASES, path, line, "bias"),
        "label": tsv.parse_choice(row["hate"], _BEEP_LABELS, path, line,
                                  "hate"),
    }


# --- Headerless line files. ---


# --- Curse Detection. ---

CURSE_FILE = "curse_detection/data.txt"
_CURSE_LABELS = {"0": 0, "1": 1}


def read_curse_detection(
    path: os.PathLike | str) -> Iterator[tuple[int, Record]]:
  """Reads Curse Detection ``data.txt``: yields ``(line, record)``.

  The label follows the last ``|`` of the line; the text before it is kept
  as is (378 texts start with a space, one contains a ``|``). Example::

      (4, {"text": "세탁이라고 봐도 된다", "label": 0})  # 0 clean, 1 curse

  Raises:
    DataFormatError: a line without ``|``, an empty text or a label other
      than 0/1.
  """
  for line, text in tsv.read_lines(path):
    body, bar, label = text.rpartition("|")
    if not bar:
      raise DataFormatError(path, line, "expected 'text|label', found no '|'")
    if not body.strip():
      raise DataFormatError(path, line, "empty text before '|'")
    yield line, {
        "text": body,
        "label": tsv.parse_choice(label, _CURSE_LABELS, path, line, "label"),
    }


# --- UnSmile. ---

UNSMILE_FILES = {"train": "unsmile/unsmile_train_v1.0.tsv",
                 "validation": "unsmile/unsmile_valid_v1.0.tsv"}
# The hate-category columns, in file order (악플/욕설 = abuse/profanity).
UNSMILE_CATEGORIES = ("여성/가족", "남성", "성소수자", "인종/국적", "연령",
                      "지역", "종교", "기타 혐오", "악플/욕설")
_FLAG = {"0": 0, "1": 1}


def read_unsmile(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads one UnSmile file.

  ``categories`` lists the category columns set to 1 (names as in the
  header), ``personal_reference`` is the ``개인지칭`` flag, and ``label`` is 0
  (clean) where ``clean`` is 1, else 1 (hateful). A row with ``clean`` 1 and
  a category is contradictory and raises DataFormatError (v1.0 has none).
  Two train rows of v1.0 have every flag 0 (``clean`` too): they are kept,
  as the ``clean`` column says, as hateful with no category. Example::

      {"sentence": "일안하는 시간은 쉬고싶어서 그런게 아닐까",
       "categories": [], "personal_reference": 0, "label": 0}
  """
  columns = ("문장", *UNSMILE_CATEGORIES, "clean", "개인지칭")
  for line, row in tsv.read_tsv(path, columns):
    flags = {c: tsv.parse_choice(row[c], _FLAG, path, line, c)
             for c in columns[1:]}
    categories = [c for c in UNSMILE_CATEGORIES if flags[c]]
    if flags["clean"] and categories:
      raise DataFormatError(
          path, line, f"'clean' is 1 but so are categories {categories}")
    yield base.file_key(path, line), {
        "sentence": row["문장"],
        "categories": categories,
        "personal_reference": flags["개인지칭"],
        "label": 1 - flags["clean"],
    }


# --- APEACH. ---

APEACH_FILE = "apeach/test.csv"
_APEACH_LABELS = {"Default": 0, "Spoiled": 1}
_APEACH_COLUMNS = ("text", "text_topic", "text_topic_eng", "class")


def read_apeach(path: os.PathLike | str) -> Iterator[tuple[int, Record]]:
  """Reads APEACH ``test.csv``: yields ``(first line of the row, record)``.

  ``topic`` and ``topic_en`` are the Korean and English names of the topic
  the writer was given (``text_topic``, ``text_topic_eng``); the writers'
  age and gender are not kept. Example::

      (2, {"text": "내년에 네이버 게임회사 같은데서 사람 엄청 뽑드만. ...",
           "topic": "학력이나 전공에 따라 차별하는 발언",
           "topic_en": "Education", "label": 0})  # 0 Default, 1 Spoiled

  Raises:
    DataFormatError: not UTF-8 (naming the first bad line), a missing
      column, a row with the wrong number of fields, bad quoting, an empty
      text or an unknown class.
  """
  try:
    with storage.open_text(path) as f:
      reader = csv.reader(f, strict=True)
      header = next(reader, None)
      if not header:
        raise DataFormatError(path, 1, "empty file: expected a header row")
      tsv.check_header(header, _APEACH_COLUMNS, path)
      count = 0
      start = reader.line_num + 1
      for fields in reader:
        if fields:  # csv gives [] for a blank line.
          if len(fields) != len(header):
            raise DataFormatError(
                path, start,
                f"expected {len(header)} comma-separated fields, got "
                f"{len(fields)}")
          row = dict(zip(header, fields))
          if not row["text"].strip():
            raise DataFormatError(path, start, "empty 'text'")
          count += 1
          yield start, {
              "text": row["text"],
              "topic": row["text_topic"],
              "topic_en": row["text_topic_eng"],
              "label": tsv.parse_choice(row["class"], _APEACH_LABELS, path,
                                        start, "class"),
          }
        start = reader.line_num + 1
  except csv.Error as e:
    raise DataFormatError(path, reader.line_num, f"bad CSV: {e}") from None
  except UnicodeDecodeError:
    raise tsv.utf8_error(path) from None
  if not count:
    raise DataFormatError(path, 1, "header but no data rows")


# --- Registration. ---


def _one_file_per_split(reader):
  def read(split, split_paths: Sequence[pathlib.Path]):
    del split  # One file per split.
    yield from reader(split_paths[0])
  return read


def _assigned_split(reader):
  """Reads the one file of a source without a split, keeping `split`'s rows."""
  def read(split, split_paths: Sequence[pathlib.Path]):
    path = split_paths[0]
    for line, record in reader(path):
      key = base.file_key(path, line)
      if splits.assign_split(key) == split:
        yield key, record
  return read


_ALL_SPLITS = ("train", "validation", "test")

base.register(base.RawDataset(
    name="beep_hate",
    split_files={s: (f,) for s, f in BEEP_FILES.items()},
    read=_one_file_per_split(read_beep),
    features={"comments": tf.string, "contain_gender_bias": tf.int32,
              "bias": tf.string, "label": base.label_feature("beep_hate")}))

base.register(base.RawDataset(
    name="curse_detection",
    split_files={s: (CURSE_FILE,) for s in _ALL_SPLITS},
    read=_assigned_split(read_curse_detection),
    features={"text": tf.string,
              "label": base.label_feature("curse_detection")},
    split_note=splits.DEFAULT_NOTE.replace(
        "<row id>", "data.txt:<line>")))

base.register(base.RawDataset(
    name="unsmile",
    split_files={s: (f,) for s, f in UNSMILE_FILES.items()},
    read=_one_file_per_split(read_unsmile),
    features={"sentence": tf.string,
              "categories": tfds.features.Sequence(tf.string),
              "personal_reference": tf.int32,
              "label": base.label_feature("unsmile")}))

base.register(base.RawDataset(
    name="apeach",
    split_files={s: (APEACH_FILE,) for s in _ALL_SPLITS},
    read=_assigned_split(read_apeach),
    features={"text": tf.string, "topic": tf.string, "topic_en": tf.string,
              "label": base.label_feature("apeach")},
    split_note=(
        "APEACH publishes only test.csv; "
        + splits.DEFAULT_NOTE.replace("<row id>", "test.csv:<line>")
        .replace("The source has no split: rows", "its rows")
        + " <line> is the line a CSV row starts on.")))
