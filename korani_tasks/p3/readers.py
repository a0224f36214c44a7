"""Readers of the P3 (T0) source files, registered as `base.P3Source`s.

Importing this module registers one source per promptsource dataset key
(``super_glue/rte``, ``anli``, ``trec``, ...) in `base.P3_SOURCES`. Each
reader takes the canonical files of its dataset (the official release, as a
user downloads it; paths relative to ``$KORANI_DATA_DIR``) and yields
``(key, record)`` pairs, where ``key`` is ``"<file name>:<line>"`` (the line a
row starts on) and ``record`` has exactly the fields and value types of the
Hugging Face dataset that the promptsource 0.2.3 templates were written for::

    source = base.P3_SOURCES["super_glue/rte"]
    for key, record in source.read("validation",
                                   source.paths(data_dir, "validation")):
      ...  # "val.jsonl:1", {"premise": "Dana Reeve, ...", "hypothesis": ...,
           #                 "idx": 0, "label": 1}

Where the Hugging Face builder changes the data, the reader does the same
(e.g. WSC's span fix-up, ``label`` as a string for HellaSwag, TREC's label
ids); where the file has fields the Hugging Face dataset does not (ANLI's
``genre``, WinoGrande's ``qID``), they are left out. Unlabeled test files
(SuperGLUE, WinoGrande, HellaSwag) are not registered: Hugging Face gives them
label -1 or '', which the templates would render as a wrong target.

Reading is strict: a row that is not valid JSON / CSV, lacks a field, has a
field of the wrong type or an unknown label raises
`korani_tasks.errors.DataFormatError` naming the file and line; no row is
dropped.

Splits listed for files that the shared data folder lacks (e.g. COPA train,
ANLI train) are for users who have them; `P3Source.present_splits` leaves
them out where the files are absent.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
import csv
import io
import json
import os
import pathlib
from typing import Any, TypeVar

from korani_tasks.errors import DataFormatError
from korani_tasks.p3 import base
from korani_tasks.readers import tsv
from korani_tasks import storage

Record = dict[str, Any]
_T = TypeVar("_T")

# Label names by label id, as in the Hugging Face datasets (ClassLabel order).
RTE_LABELS = ("entailment", "not_entailment")
CB_LABELS = ("entailment", "contradiction", "neutral")
COPA_LABELS = ("choice1", "choice2")
BOOL_LABELS = ("False", "True")  # BoolQ, WiC, WSC.
ANLI_LABELS = ("entailment", "neutral", "contradiction")  # file: e, n, c
AG_NEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
ROTTEN_TOMATOES_LABELS = ("negative", "positive")

# TREC as in the Hugging Face `trec` dataset that promptsource 0.2.3 was
# written for, whose fields were 'label-coarse'/'label-fine' (the templates
# name them label_coarse/label_fine; a later version renamed them
# coarse_label/fine_label and reordered the labels): the ids are the order in
# which the labels first occur in the training file. The templates index
# their answer choices by these ids (e.g. `label_coarse == 5` is LOC,
# `label_mapping = {21:0, 18:1, ...}` maps city, country, ...). Fine labels
# are the part after the colon, so 'desc' (DESC:desc, HUM:desc) and 'other'
# (ENTY:other, LOC:other, NUM:other) are shared: 47 fine labels.
TREC_COARSE_LABELS = ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC")
TREC_FINE_LABELS = (
    "manner", "cremat", "animal", "exp", "ind", "gr", "title", "def", "date",
    "reason", "event", "state", "desc", "count", "other", "letter",
    "religion", "food", "country", "color", "termeq", "city", "body",
    "dismed", "mount", "money", "product", "period", "substance", "sport",
    "plant", "techmeth", "volsize", "instru", "abb", "speed", "word", "lang",
    "perc", "code", "dist", "temp", "symbol", "ord", "veh", "weight",
    "currency")
# The 50 COARSE:fine classes of the TREC question classification task.
TREC_CLASSES = frozenset({
    "ABBR:abb", "ABBR:exp",
    "DESC:def", "DESC:desc", "DESC:manner", "DESC:reason",
    "ENTY:animal", "ENTY:body", "ENTY:color", "ENTY:cremat", "ENTY:currency",
    "ENTY:dismed", "ENTY:event", "ENTY:food", "ENTY:instru", "ENTY:lang",
    "ENTY:letter", "ENTY:other", "ENTY:plant", "ENTY:product",
    "ENTY:religion", "ENTY:sport", "ENTY:substance", "ENTY:symbol",
    "ENTY:techmeth", "ENTY:termeq", "ENTY:veh", "ENTY:word",
    "HUM:desc", "HUM:gr", "HUM:ind", "HUM:title",
    "LOC:city", "LOC:country", "LOC:mount", "LOC:other", "LOC:state",
    "NUM:code", "NUM:count", "NUM:date", "NUM:dist", "NUM:money", "NUM:ord",
    "NUM:other", "NUM:perc", "NUM:period", "NUM:speed", "NUM:temp",
    "NUM:volsize", "NUM:weight",
})

_STORY_CLOZE_COLUMNS = (
    "InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3",
    "InputSentence4", "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2",
    "AnswerRightEnding")
_AG_NEWS_HEADER = ["Class Index", "Title", "Description"]


def _key(path: os.PathLike | str, line: int) -> str:
  return f"{pathlib.Path(path).name}:{line}"


# --- File formats. ---


def read_jsonl(path: os.PathLike | str) -> Iterator[tuple[int, dict]]:
  """Yields ``(line number, object)`` for each line of a JSON-lines file.

  Lines are read as `tsv.read_lines` does (UTF-8, a BOM and CRs removed,
  blank lines only at the end, at least one line).

  Raises:
    DataFormatError: a line is not valid JSON or not a JSON object.
  """
  for line, text in tsv.read_lines(path):
    try:
      value = json.loads(text)
    except json.JSONDecodeError as e:
      raise DataFormatError(
          path, line, f"not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(value, dict):
      raise DataFormatError(
          path, line, f"expected a JSON object, got {type(value).__name__}")
    yield line, value


def read_csv(
    path: os.PathLike | str, *, skipinitialspace: bool = False
) -> Iterator[tuple[int, list[str]]]:
  """Yields ``(first line number, fields)`` for each row of a CSV file.

  Standard CSV (Excel dialect): fields in double quotes may hold commas,
  doubled quotes and line breaks, so a row can span several lines; its line
  number is the one it starts on. The file must be UTF-8 (a BOM is removed);
  blank lines are allowed only at the end.

  Raises:
    DataFormatError: not UTF-8, malformed quoting, a blank line in the middle,
      or no rows.
  """
  data = storage.path(path).read_bytes()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise DataFormatError(
        path, data.count(b"\n", 0, e.start) + 1,
        f"not valid UTF-8 (bad byte 0x{data[e.start]:02x}); the file must be "
        "UTF-8") from None
  reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""),
                      skipinitialspace=skipinitialspace, strict=True)
  count = 0
  first_blank = None
  next_line = 1
  while True:
    start = next_line
    try:
      row = next(reader, None)
    except csv.Error as e:
      raise DataFormatError(path, start, f"malformed CSV: {e}") from None
    if row is None:
      break
    next_line = reader.line_num + 1
    if not row:
      first_blank = first_blank or start
      continue
    if first_blank:
      raise DataFormatError(
          path, first_blank, "blank line in the middle of the data")
    count += 1
    yield start, row
  if not count:
    raise DataFormatError(path, 1, "empty file: expected CSV rows")


class _Fields:
  """Typed access to one JSON object's fields, with errors naming the row."""

  def __init__(self, values: Mapping[str, Any], path, line: int,
               prefix=""):
    self.values, self.path, self.line, self.prefix = values, path, line, prefix

  def _present(self, name: str):
    if name not in self.values:
      raise DataFormatError(
          self.path, self.line,
          f"missing field {self.prefix + name!r}; the row has "
          f"{sorted(self.values)}")
    return self.values[name]

  def _get(self, name: str, kinds: tuple[type, ...], kind_name: str):
    value = self._present(name)
    # bool is a subclass of int: `true` is not an integer label here.
    if not isinstance(value, kinds) or (
        isinstance(value, bool) and bool not in kinds):
      raise DataFormatError(
          self.path, self.line,
          f"field {self.prefix + name!r} must be {kind_name}, got "
          f"{json.dumps(value, ensure_ascii=False)[:80]}")
    return value

  def string(self, name: str) -> str:
    return self._get(name, (str,), "a string")

  def integer(self, name: str) -> int:
    return self._get(name, (int,), "an integer")

  def boolean(self, name: str) -> bool:
    return self._get(name, (bool,), "true or false")

  def strings(self, name: str, length: int) -> list[str]:
    value = self._get(name, (list,), "a list")
    if len(value) != length or not all(isinstance(v, str) for v in value):
      raise DataFormatError(
          self.path, self.line,
          f"field {self.prefix + name!r} must be a list of {length} strings, "
          f"got {json.dumps(value, ensure_ascii=False)[:80]}")
    return value

  def fields(self, name: str) -> "_Fields":
    return _Fields(self._get(name, (dict,), "an object"), self.path,
                   self.line, prefix=f"{self.prefix}{name}.")

  def choice(self, name: str, allowed: Mapping[Any, _T]) -> _T:
    """``allowed[value]``; values are compared with their JSON type, so
    ``true`` is not 1 and ``"1"`` is not 1."""
    value = self._present(name)
    for key, label in allowed.items():
      if type(value) is type(key) and value == key:
        return label
    raise DataFormatError(
        self.path, self.line,
        f"unknown label {json.dumps(value, ensure_ascii=False)} in field "
        f"{self.prefix + name!r} (expected one of: "
        f"{', '.join(json.dumps(k) for k in allowed)})")


def _jsonl_reader(
    build: Callable[[_Fields], Record]) -> base.ReadFn:
  """A `base.ReadFn` that reads JSON-lines files, one record per line."""
  def read(split: str, paths: Sequence[pathlib.Path]):
    del split  # The same format in every split.
    for path in paths:
      for line, obj in read_jsonl(path):
        yield _key(path, line), build(_Fields(obj, path, line))
  return read


def _labels(names: Sequence[str]) -> dict[str, int]:
  return {name: i for i, name in enumerate(names)}


# --- SuperGLUE (jsonl from super.gluebenchmark.com). ---


def _rte(row: _Fields) -> Record:
  return {"premise": row.string("premise"),
          "hypothesis": row.string("hypothesis"),
          "idx": row.integer("idx"),
          "label": row.choice("label", _labels(RTE_LABELS))}


def _cb(row: _Fields) -> Record:
  return {"premise": row.string("premise"),
          "hypothesis": row.string("hypothesis"),
          "idx": row.integer("idx"),
          "label": row.choice("label", _labels(CB_LABELS))}


def _copa(row: _Fields) -> Record:
  return {"premise": row.string("premise"), "choice1": row.string("choice1"),
          "choice2": row.string("choice2"),
          "question": row.choice(
              "question", {"cause": "cause", "effect": "effect"}),
          "idx": row.integer("idx"), "label": row.choice("label", {0: 0, 1: 1})}


def _wic(row: _Fields) -> Record:
  return {"word": row.string("word"), "sentence1": row.string("sentence1"),
          "sentence2": row.string("sentence2"),
          **{k: row.integer(k) for k in ("start1", "start2", "end1", "end2")},
          "idx": row.integer("idx"), "label": int(row.boolean("label"))}


def _boolq(row: _Fields) -> Record:
  return {"question": row.string("question"), "passage": row.string("passage"),
          "idx": row.integer("idx"), "label": int(row.boolean("label"))}


def _fix_wsc_spans(record: Record, row: _Fields) -> Record:
  """Hugging Face's ``_fix_wst`` for super_glue/wsc.fixed, step for step.

  Where a span text is not a substring of ``text`` it is made one: the case
  of its first letter is matched to the word at its index, a trailing '.' is
  removed and line breaks become spaces. Two spans (Kamenev ...) cannot be
  fixed and are kept. The 'theyscold' branch sets span2_index to 10 and,
  as in Hugging Face (``str.replace`` result unused), leaves the text as is.
  """
  for span in ("span1", "span2"):
    text, index = record[f"{span}_text"], record[f"{span}_index"]
    if text in record["text"] or text in (
        "Kamenev and Zinoviev", "Kamenev, Zinoviev, and Stalin"):
      continue
    if "theyscold" in text:
      record["span2_index"] = 10
    words = record["text"].split()
    if not 0 <= index < len(words):
      raise DataFormatError(
          row.path, row.line,
          f"target.{span}_index {index} is not a word index of the text "
          f"({len(words)} words)")
    if words[index][0].islower():
      text = text[0].lower() + text[1:]
    else:
      text = text[0].upper() + text[1:]
    text = text.rstrip(".").replace("\n", " ")
    if text not in record["text"]:
      raise DataFormatError(
          row.path, row.line,
          f"target.{span}_text {record[f'{span}_text']!r} is not in the text, "
          "even after the wsc.fixed fix-ups")
    record[f"{span}_text"] = text
  return record


def _wsc(row: _Fields) -> Record:
  target = row.fields("target")
  record = {"text": row.string("text"),
            "span1_index": target.integer("span1_index"),
            "span2_index": target.integer("span2_index"),
            "span1_text": target.string("span1_text"),
            "span2_text": target.string("span2_text")}
  record = _fix_wsc_spans(record, row)
  record["idx"] = row.integer("idx")
  record["label"] = int(row.boolean("label"))
  return record


# --- ANLI (official jsonl, github.com/facebookresearch/anli v1.0). ---


def _anli(row: _Fields) -> Record:
  return {"uid": row.string("uid"), "premise": row.string("context"),
          "hypothesis": row.string("hypothesis"),
          "label": row.choice("label", {"e": 0, "n": 1, "c": 2}),
          "reason": row.string("reason")}


# --- HellaSwag (official jsonl, github.com/rowanz/hellaswag). ---


def _hellaswag(row: _Fields) -> Record:
  # Hugging Face's `label` is a string ("0".."3"); the templates use
  # `label | int` and `label == instance | string`, so it must stay one.
  return {"ind": row.integer("ind"),
          "activity_label": row.string("activity_label"),
          "ctx_a": row.string("ctx_a"), "ctx_b": row.string("ctx_b"),
          "ctx": row.string("ctx"), "endings": row.strings("endings", 4),
          "source_id": row.string("source_id"), "split": row.string("split"),
          "split_type": row.string("split_type"),
          "label": str(row.choice("label", {0: 0, 1: 1, 2: 2, 3: 3}))}


# --- WinoGrande (official jsonl, github.com/allenai/winogrande). ---


def _winogrande(row: _Fields) -> Record:
  # `answer` stays the string "1"/"2", as in Hugging Face and the templates
  # (`answer == '1'`, `answer | int - 1`); qID is not a Hugging Face field.
  return {"sentence": row.string("sentence"), "option1": row.string("option1"),
          "option2": row.string("option2"),
          "answer": row.choice("answer", {"1": "1", "2": "2"})}


# --- MetaICL jsonl (rotten_tomatoes). ---


def _rotten_tomatoes(row: _Fields) -> Record:
  task = row.string("task")
  if task != "rotten_tomatoes":
    raise DataFormatError(row.path, row.line,
                          f"field 'task' is {task!r}, not 'rotten_tomatoes'")
  options = row.strings("options", 2)
  if tuple(options) != ROTTEN_TOMATOES_LABELS:
    raise DataFormatError(
        row.path, row.line,
        f"field 'options' is {options}, expected "
        f"{list(ROTTEN_TOMATOES_LABELS)}")
  return {"text": row.string("input"),
          "label": row.choice("output", _labels(ROTTEN_TOMATOES_LABELS))}


# --- Story Cloze 2016 (official CSV, cs.rochester.edu/nlp/rocstories). ---


def read_story_cloze(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  """Reads the Story Cloze Test CSV (a header row, then one story a row).

  Columns are found by header name. Example record::

      {"story_id": "138d5bfb-...", "input_sentence_1": "Rick grew up ...",
       ..., "input_sentence_4": "...", "sentence_quiz1": "He is happy now.",
       "sentence_quiz2": "He joined a gang.",
       "answer_right_ending": 1}  # 1 or 2, as in the file
  """
  del split
  for path in paths:
    rows = read_csv(path, skipinitialspace=True)
    _, header = next(rows)
    missing = [c for c in _STORY_CLOZE_COLUMNS if c not in header]
    if missing or len(set(header)) != len(header):
      raise DataFormatError(
          path, 1, f"header must name the columns {list(_STORY_CLOZE_COLUMNS)}"
          f" once each; it is {header}")
    for line, fields in rows:
      if len(fields) != len(header):
        raise DataFormatError(
            path, line, f"expected {len(header)} fields, got {len(fields)}")
      row = dict(zip(header, fields))
      yield _key(path, line), {
          "story_id": row["InputStoryid"],
          **{f"input_sentence_{i}": row[f"InputSentence{i}"]
             for i in range(1, 5)},
          "sentence_quiz1": row["RandomFifthSentenceQuiz1"],
          "sentence_quiz2": row["RandomFifthSentenceQuiz2"],
          "answer_right_ending": tsv.parse_choice(
              row["AnswerRightEnding"], {"1": 1, "2": 2}, path, line,
              "AnswerRightEnding"),
      }


# --- AG News (CSV of github.com/mhjabreel/CharCnn_Keras, ag_news_csv). ---


def read_ag_news(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  """Reads AG News CSV rows ``class index (1-4), title, description``.

  The original files have no header; a first row ``Class Index,Title,
  Description`` (the Kaggle copy) is skipped. As in Hugging Face, ``text`` is
  title and description joined by a space (the '\\' line-break marks of the
  original are kept) and ``label`` is the class index minus 1 (0 World,
  1 Sports, 2 Business, 3 Sci/Tech).
  """
  del split
  for path in paths:
    for line, fields in read_csv(path, skipinitialspace=True):
      if line == 1 and fields == _AG_NEWS_HEADER:
        continue
      if len(fields) != 3:
        raise DataFormatError(
            path, line,
            f"expected 3 fields (class index, title, description), got "
            f"{len(fields)}")
      label = tsv.parse_choice(fields[0], {"1": 0, "2": 1, "3": 2, "4": 3},
                               path, line, "Class Index")
      yield _key(path, line), {"text": " ".join(fields[1:]), "label": label}


# --- TREC (cogcomp.seas.upenn.edu/Data/QA/QC, train_5500/TREC_10.label). ---


def _decode_trec_line(raw: bytes, path: os.PathLike | str, line: int) -> str:
  """A line of a TREC file as text; a stray 0xF0 byte becomes a space.

  Only a 0xF0 that does not start a UTF-8 character is replaced (the
  original's "sister\\xf0city"): in a UTF-8 copy, 0xF0 starts every
  4-byte character (emoji, rare CJK), which are kept; one cut short by the
  end of the file (a truncated copy) is an error.
  """
  while True:
    try:
      return raw.decode("utf-8")
    except UnicodeDecodeError as e:
      if raw[e.start] != 0xF0 or e.end == len(raw):
        raise DataFormatError(
            path, line, f"not valid UTF-8 (bad byte 0x{raw[e.start]:02x})"
        ) from None
      raw = raw[:e.start] + b" " + raw[e.start + 1:]


def read_trec(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  """Reads TREC question classification lines ``COARSE:fine question``.

  Example: ``DESC:manner How did serfdom develop in and then leave Russia ?``
  gives ``{"text": "How did serfdom develop in and then leave Russia ?",
  "label_coarse": 0, "label_fine": 0}`` (ids: `TREC_COARSE_LABELS`,
  `TREC_FINE_LABELS`; field names with '_', as the templates use them). As
  in Hugging Face, the one non-ASCII byte of the original training file (0xF0
  in "sister\\xf0city") becomes a space; so does U+FFFD, which copies that
  decoded the file with replacement have in its place.
  """
  del split
  for path in paths:
    with storage.open_binary(path) as f:
      raw_lines = list(f)
    count = 0
    first_blank = None
    for line, raw in enumerate(raw_lines, start=1):
      text = _decode_trec_line(raw, path, line)
      text = text.removeprefix("\ufeff" if line == 1 else "")
      text = text.replace("\ufffd", " ").strip()
      if not text:
        first_blank = first_blank or line
        continue
      if first_blank:
        raise DataFormatError(
            path, first_blank, "blank line in the middle of the data")
      label, _, question = text.partition(" ")
      if label not in TREC_CLASSES:
        raise DataFormatError(
            path, line,
            f"unknown label {label!r}: expected 'COARSE:fine question' with "
            "one of the 50 TREC classes (e.g. 'LOC:city')")
      if not question.strip():
        raise DataFormatError(path, line, f"label {label!r} but no question")
      coarse, _, fine = label.partition(":")
      count += 1
      yield _key(path, line), {
          "text": question,
          "label_coarse": TREC_COARSE_LABELS.index(coarse),
          "label_fine": TREC_FINE_LABELS.index(fine),
      }
    if not count:
      raise DataFormatError(path, 1, "empty file: expected question lines")


# --- Registration. ---


def _superglue(subset: str, folder: str, build, note: str = ""):
  return base.P3Source(
      dataset="super_glue", subset=subset,
      split_files={"train": (f"superglue/{folder}/train.jsonl",),
                   "validation": (f"superglue/{folder}/val.jsonl",)},
      read=_jsonl_reader(build),
      note=("SuperGLUE jsonl; the unlabeled test.jsonl is not read. " + note
            ).strip())


base.register(_superglue(
    "rte", "RTE", _rte, "label entailment 0, not_entailment 1."))
base.register(_superglue(
    "cb", "CB", _cb, "label entailment 0, contradiction 1, neutral 2."))
base.register(_superglue(
    "copa", "COPA", _copa, "label 0 choice1, 1 choice2 (as in the file)."))
base.register(_superglue(
    "wic", "WiC", _wic, "label false 0, true 1; the file's 'version' is not "
    "a Hugging Face field."))
base.register(_superglue(
    "wsc.fixed", "WSC", _wsc, "target's span fields flattened and fixed as "
    "in Hugging Face's wsc.fixed; label false 0, true 1."))
base.register(_superglue(
    "boolq", "BoolQ", _boolq, "label false 0, true 1."))

base.register(base.P3Source(
    dataset="anli", subset=None,
    split_files={f"{kind}_r{n}": (f"anli/R{n}/{kind}.jsonl",)
                 for n in (1, 2, 3) for kind in ("train", "dev", "test")},
    read=_jsonl_reader(_anli),
    note="Official ANLI v1.0 jsonl; premise = context, label e 0, n 1, c 2; "
         "model_label, emturk, genre and tag are not Hugging Face fields."))

base.register(base.P3Source(
    dataset="hellaswag", subset=None,
    split_files={"train": ("hellaswag/hellaswag_train.jsonl",),
                 "validation": ("hellaswag/hellaswag_val.jsonl",)},
    read=_jsonl_reader(_hellaswag),
    note="Official HellaSwag jsonl; label as the string '0'-'3' (Hugging "
         "Face); the unlabeled hellaswag_test.jsonl is not read."))

base.register(base.P3Source(
    dataset="story_cloze", subset="2016",
    split_files={
        "validation": ("story_cloze/cloze_test_val__spring2016.csv",),
        "test": ("story_cloze/cloze_test_test__spring2016.csv",)},
    read=read_story_cloze,
    note="Official Story Cloze Test (spring 2016) CSV; answer_right_ending "
         "1 or 2."))

base.register(base.P3Source(
    dataset="winogrande", subset="winogrande_xl",
    split_files={"train": ("winogrande/train_xl.jsonl",),
                 "validation": ("winogrande/dev.jsonl",)},
    read=_jsonl_reader(_winogrande),
    note="Official WinoGrande 1.1 jsonl; answer the string '1'/'2'; the "
         "unlabeled test.jsonl is not read."))

base.register(base.P3Source(
    dataset="trec", subset=None,
    split_files={"train": ("trec/train.txt",), "test": ("trec/test.txt",)},
    read=read_trec,
    note="TREC 'COARSE:fine question' lines (train_5500.label and "
         "TREC_10.label, renamed); label ids as in the pre-2022 Hugging Face "
         "trec that the templates index."))

base.register(base.P3Source(
    dataset="ag_news", subset=None,
    split_files={"train": ("ag_news/train.csv",),
                 "test": ("ag_news/test.csv",)},
    read=read_ag_news,
    note="AG News CSV; text = title + ' ' + description; label = class "
         "index - 1."))

base.register(base.P3Source(
    dataset="rotten_tomatoes", subset=None,
    # MetaICL's files of the Hugging Face dataset: its dev.jsonl is all of
    # Hugging Face's train split (8530 rows, shuffled), its test.jsonl is
    # Hugging Face's validation split (1066 rows, in order): MetaICL's
    # preprocessing takes "validation" as its test set. Hugging Face's own
    # test split (also 1066 rows) is not among these files.
    split_files={"train": ("rotten_tomatoes/dev.jsonl",),
                 "validation": ("rotten_tomatoes/test.jsonl",)},
    read=_jsonl_reader(_rotten_tomatoes),
    note="MetaICL jsonl {task, input, output, options}: dev.jsonl is Hugging "
         "Face's train split (shuffled), test.jsonl its validation split; "
         "text = input, label = options.index(output), 0 negative, "
         "1 positive."))
