"""Fuzzed source files through every reader (hypothesis).

Each reader of korani_tasks/readers/ and korani_tasks/p3/ (readers.py,
hf_folder.py) has a `Spec` here: its canonical file format (TSV with a
header, headerless lines, CSV, JSON lines or one JSON document), a strategy
of valid rows (text fields with Hangul, combining marks, RTL, emoji, NUL and
control characters, quotes, separators, jinja-looking text) and the record
each row must give. Files are written in that format, with the variations the
readers accept (UTF-8 BOM, CRLF, no final line end, extra columns, any column
order where columns are found by name), and then:

* valid rows must read back as written: the same records, keys, count and
  order; rows the reader skips on purpose (empty NSMC/Naver Shopping texts,
  SNLI's '-' gold label, KLUE MRC's unanswerable questions) must be the ones
  it reports as skipped (rows in = records out + rows reported skipped);
* faults are injected (a row the reader must reject, truncation at a random
  byte, an invalid UTF-8 byte, UTF-16, an empty or header-only file, a blank
  line in the middle, a row with a field too many or too few): the reader
  must either give the right records or raise `DataFormatError` naming the
  file and, where the format is line-based, the line; never another
  exception, never fewer records without an error;
* reading every split of a dataset whose splits share files gives every row
  of those files exactly once (no row lost or duplicated by the split
  assignment).

The Parquet and Arrow files of `korani_tasks.p3.hf_folder` are written with
pyarrow and truncated at random bytes.
"""

from collections.abc import Callable
import contextlib
import csv
import dataclasses
import io
import json
import logging
import pathlib
import tempfile
from typing import Any

import hypothesis
from hypothesis import strategies as st
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from korani_tasks.errors import DataFormatError
from korani_tasks import readers
from korani_tasks.p3 import base as p3_base
from korani_tasks.p3 import hf_folder
from korani_tasks.p3 import readers as p3_readers
from korani_tasks.readers import base
from korani_tasks.readers import hate_speech
from korani_tasks.readers import intent
from korani_tasks.readers import klue
from korani_tasks.readers import kobest
from korani_tasks.readers import kornlu
from korani_tasks.readers import korquad
from korani_tasks.readers import paraphrase
from korani_tasks.readers import release_csv
from korani_tasks.readers import sentiment

SKIP = object()  # A row the reader skips on purpose (and reports).

# --- Text. ---

_NASTY = (
    "", " ", "  ", "\x00", "\x07", "\x1b[31m", "\x7f", "\x1c", "\x85",
    "\u2028", "\u200b", "\u200f", "\u202e", "\xa0", "\t", "\n",
    "{{ x }}", "{% if %}", "{#", "|||", "|", ",", ";", '"', '""', "'",
    "\\", "\\n", "\\t", "[1]", "{}", "null", "-", "0", "1", "True",
    "한국어 문장", "\u1100\u1161\u11a8", "e\u0301", "\u0301", "\u0e01\u0e33",
    "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f600",
    "\u4e2d\u6587", "\U00020000",
)
_HANGUL = st.text(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
                  min_size=1, max_size=8)


def text(exclude: str = "", nonblank: bool = False, fragments: int = 4):
  """Strings of nasty fragments, random characters and Hangul.

  Args:
    exclude: characters the format cannot hold in a field (e.g. TAB and LF
      in TSV). U+FEFF is always left out: a BOM at the start of a file is
      removed by design.
    nonblank: whether the text must have a non-whitespace character.
    fragments: at most this many pieces joined.
  """
  bad = set(exclude) | {"\ufeff"}
  pieces = st.one_of(
      st.sampled_from([f for f in _NASTY if not set(f) & bad]),
      st.text(st.characters(blacklist_categories=("Cs",),
                            blacklist_characters="".join(bad)), max_size=8),
      _HANGUL)
  result = st.lists(pieces, max_size=fragments).map("".join)
  if nonblank:
    result = result.map(lambda t: t if t.strip() else t + "가")
  return result


TSV_TEXT = text("\t\n\r")
TSV_NONBLANK = text("\t\n\r", nonblank=True)
CSV_TEXT = text("\r")
CSV_NONBLANK = text("\r", nonblank=True)
JSON_TEXT = text()
INTS = st.integers(-10**6, 10**9)
NATURALS = st.integers(0, 10**9)


def cases(value: str):
  """The spellings of 'true'/'false' the readers accept (any case)."""
  return st.sampled_from([value, value.upper(), value.capitalize(),
                          f" {value}", f"{value.capitalize()} "])


# --- Specs. ---


@dataclasses.dataclass(frozen=True)
class Spec:
  """A reader and the format of its files.

  Attributes:
    name: the test id.
    kind: "tsv" (header row, TAB-separated), "lines" (headerless, one row a
      line), "csv" (header row unless `header` gives None), "jsonl" or
      "json" (one document built by `document`).
    file_name: the name of the file written (readers name keys after it).
    rows: the valid rows of one file (a list: dicts by column for tsv/csv,
      strings for lines, objects for jsonl/json).
    expect: ``expect(row, index, header, path)`` -> the record of a row,
      or SKIP.
    read: ``read(path)`` -> ``(pairs, skipped)``: the (key, record) pairs
      and the number of rows the reader reports as skipped.
    header: the header rows written (tsv/csv); None for no header.
    bad_rows: rows the reader must reject (with the row's line).
    key: ``key(path, line, record)`` -> the record's key.
    fixed_fields: a row with a field more or less is an error.
    quote_all: quote every CSV field (readers with skipinitialspace).
    document: the JSON document of the rows (kind "json").
    companions: writes the other files of the reader (KorSS labels).
    error_paths: files an error may name besides the main file.
  """
  name: str
  kind: str
  file_name: str
  rows: st.SearchStrategy
  expect: Callable[..., Any]
  read: Callable[[pathlib.Path], tuple[list, int]]
  header: st.SearchStrategy = st.none()
  bad_rows: st.SearchStrategy | None = None
  key: Callable[..., str] = lambda path, line, record: base.file_key(
      path, line)
  fixed_fields: bool = True
  quote_all: bool = False
  document: Callable[[list], Any] | None = None
  companions: Callable[..., None] | None = None
  error_paths: Callable[[pathlib.Path], set[str]] = lambda path: set()

  @property
  def line_based(self) -> bool:
    return self.kind != "json"


def _pairs(pairs):
  return list(pairs), 0


def _lines_reader(read):
  """Adapts a reader that yields ``(line, record)`` to (key, record)."""
  def adapted(path):
    return [(base.file_key(path, line), record)
            for line, record in read(path)], 0
  return adapted


def _with_bad(rows: st.SearchStrategy, column, values):
  """A valid row with `column` set to one of `values`."""
  return st.tuples(rows, st.sampled_from(values)).map(
      lambda rv: {**rv[0], column: rv[1]})


def _without(rows: st.SearchStrategy, *columns):
  return rows.map(lambda r: {k: v for k, v in r.items() if k not in columns})


def _list(row, min_size=1, max_size=5):
  return st.lists(row, min_size=min_size, max_size=max_size)


SPECS: dict[str, Spec] = {}


def spec(**kwargs) -> Spec:
  s = Spec(**kwargs)
  SPECS[s.name] = s
  return s


# KoBEST.

_BOOLQ = st.fixed_dictionaries({
    "ID": INTS.map(str), "Text": TSV_TEXT, "Question": TSV_TEXT,
    "Answer": st.one_of(cases("true"), cases("false"))})
spec(name="kobest_boolq", kind="tsv", file_name="dev.tsv",
     header=st.sampled_from([("ID", "Text", "Question", "Answer"),
                             ("Answer", "Question", "ID", "Text", "Extra")]),
     rows=_list(_BOOLQ),
     expect=lambda r, i, h, p: {
         "idx": int(r["ID"]), "paragraph": r["Text"],
         "question": r["Question"],
         "label": int(r["Answer"].strip().lower() == "true")},
     read=lambda p: _pairs(kobest.read_kobest_boolq(p)),
     bad_rows=st.one_of(
         _with_bad(_BOOLQ, "Answer", ["maybe", "1", "", "yes", "T"]),
         _with_bad(_BOOLQ, "ID", ["x", "1.5", "+1", " 1", ""])))

_COPA = st.fixed_dictionaries({
    "ID": INTS.map(str), "sentence": TSV_TEXT,
    "question": st.sampled_from(["원인", "결과", "원인 "]),
    "1": TSV_TEXT, "2": TSV_TEXT, "Answer": st.sampled_from(["1", "2"])})
spec(name="kobest_copa", kind="tsv", file_name="train.tsv",
     header=st.just(("ID", "sentence", "question", "1", "2", "Answer")),
     rows=_list(_COPA),
     expect=lambda r, i, h, p: {
         "idx": int(r["ID"]), "premise": r["sentence"],
         "question": r["question"].strip(), "alternative_1": r["1"],
         "alternative_2": r["2"], "label": int(r["Answer"]) - 1},
     read=lambda p: _pairs(kobest.read_kobest_copa(p)),
     bad_rows=st.one_of(
         _with_bad(_COPA, "question", ["이유", "cause", ""]),
         _with_bad(_COPA, "Answer", ["0", "3", "1.0"])))

_HELLASWAG = st.fixed_dictionaries({
    "context": TSV_TEXT, **{f"choice{i}": TSV_TEXT for i in range(1, 5)},
    "label": st.sampled_from("0123")})
spec(name="kobest_hellaswag", kind="tsv", file_name="test.tsv",
     header=st.just(("context", "choice1", "choice2", "choice3", "choice4",
                     "label")),
     rows=_list(_HELLASWAG),
     expect=lambda r, i, h, p: {
         "idx": i, "context": r["context"],
         **{f"ending_{k}": r[f"choice{k}"] for k in range(1, 5)},
         "label": int(r["label"])},
     read=lambda p: _pairs(kobest.read_kobest_hellaswag(p)),
     bad_rows=_with_bad(_HELLASWAG, "label", ["4", "-1", "a", ""]))

_SENTINEG = st.fixed_dictionaries({
    "ID": INTS.map(str), "Text": TSV_TEXT, "Label": st.sampled_from("01"),
    "Text_origin": TSV_TEXT, "Label_origin": st.sampled_from("01"),
    "Category_neg": INTS.map(str)})
_SENTINEG_TEST = ("ID", "Label_origin", "Text_origin", "Label", "Text",
                  "Category_neg")


def _sentineg_record(r, i, header, path):
  record = {"idx": int(r["ID"]), "sentence": r["Text"],
            "label": int(r["Label"]), "original_sentence": "",
            "original_label": -1, "negation_category": -1}
  if "Text_origin" in header:
    record.update(original_sentence=r["Text_origin"],
                  original_label=int(r["Label_origin"]),
                  negation_category=int(r["Category_neg"]))
  return record


spec(name="kobest_sentineg", kind="tsv", file_name="test.tsv",
     header=st.sampled_from([("ID", "Text", "Label"), ("ID", "Label", "Text"),
                             _SENTINEG_TEST]),
     rows=_list(_SENTINEG), expect=_sentineg_record,
     read=lambda p: _pairs(kobest.read_kobest_sentineg(p)),
     bad_rows=st.one_of(
         _with_bad(_SENTINEG, "Label", ["2", "", "positive"]),
         _with_bad(_SENTINEG, "ID", ["id", "-"])))

_WIC = st.fixed_dictionaries({
    "ID": INTS.map(str), "Target": TSV_TEXT, "SENTENCE1": TSV_TEXT,
    "SENTENCE2": TSV_TEXT,
    "ANSWER": st.one_of(cases("true"), cases("false"))})
spec(name="kobest_wic", kind="tsv", file_name="dev.tsv",
     header=st.just(("ID", "Target", "SEN1", "SENTENCE1", "SEN2", "SENTENCE2",
                     "ANSWER")),
     rows=_list(_WIC),
     expect=lambda r, i, h, p: {
         "idx": int(r["ID"]), "word": r["Target"], "context_1": r["SENTENCE1"],
         "context_2": r["SENTENCE2"],
         "label": int(r["ANSWER"].strip().lower() == "true")},
     read=lambda p: _pairs(kobest.read_kobest_wic(p)),
     bad_rows=_with_bad(_WIC, "ANSWER", ["1", "N", ""]))

# Hate speech.

_BEEP = st.fixed_dictionaries({
    "comments": TSV_TEXT,
    "contain_gender_bias": st.one_of(cases("true"), cases("false")),
    "bias": st.sampled_from(["none", "gender", "others"]),
    "hate": st.sampled_from(["none", "offensive", "hate"])})
spec(name="beep", kind="tsv", file_name="dev.tsv",
     header=st.just(("comments", "contain_gender_bias", "bias", "hate")),
     rows=_list(_BEEP),
     expect=lambda r, i, h, p: {
         "comments": r["comments"],
         "contain_gender_bias": int(
             r["contain_gender_bias"].strip().lower() == "true"),
         "bias": r["bias"],
         "label": ("none", "offensive", "hate").index(r["hate"])},
     read=lambda p: _pairs(hate_speech.read_beep(p)),
     bad_rows=st.one_of(
         _with_bad(_BEEP, "hate", ["Hate", "", "2"]),
         _with_bad(_BEEP, "bias", ["None", "race"])))

_CURSE_TEXT = text("\n\r", nonblank=True)
spec(name="curse_detection", kind="lines", file_name="data.txt",
     rows=_list(st.tuples(_CURSE_TEXT, st.sampled_from("01")).map("|".join)),
     expect=lambda r, i, h, p: {"text": r.rpartition("|")[0],
                                "label": int(r.rpartition("|")[2])},
     read=_lines_reader(hate_speech.read_curse_detection),
     fixed_fields=False,
     bad_rows=st.one_of(
         st.tuples(_CURSE_TEXT, st.sampled_from(["2", "", "01", " 1"])).map(
             "|".join),
         st.sampled_from(["|0", " |1", "no bar at all"])))


@st.composite
def _unsmile_rows(draw):
  clean = draw(st.booleans())
  flags = {c: "0" if clean else draw(st.sampled_from("01"))
           for c in hate_speech.UNSMILE_CATEGORIES}
  return {"문장": draw(TSV_TEXT), **flags, "clean": "1" if clean else "0",
          "개인지칭": draw(st.sampled_from("01"))}


_UNSMILE_COLUMNS = ("문장", *hate_speech.UNSMILE_CATEGORIES, "clean", "개인지칭")
spec(name="unsmile", kind="tsv", file_name="unsmile_valid_v1.0.tsv",
     header=st.just(_UNSMILE_COLUMNS), rows=_list(_unsmile_rows()),
     expect=lambda r, i, h, p: {
         "sentence": r["문장"],
         "categories": [c for c in hate_speech.UNSMILE_CATEGORIES
                        if r[c] == "1"],
         "personal_reference": int(r["개인지칭"]),
         "label": 1 - int(r["clean"])},
     read=lambda p: _pairs(hate_speech.read_unsmile(p)),
     bad_rows=st.one_of(
         _with_bad(_unsmile_rows(), "clean", ["2", "", "true"]),
         _unsmile_rows().map(lambda r: {**r, "clean": "1", "남성": "1"})))

_APEACH_COLUMNS = ("text", "user_age", "user_gender", "text_topic", "class",
                   "age", "text_topic_eng")
_APEACH = st.fixed_dictionaries({
    "text": CSV_NONBLANK, "user_age": CSV_TEXT, "user_gender": CSV_TEXT,
    "text_topic": CSV_TEXT, "class": st.sampled_from(["Default", "Spoiled"]),
    "age": CSV_TEXT, "text_topic_eng": CSV_TEXT})
spec(name="apeach", kind="csv", file_name="test.csv",
     header=st.just(_APEACH_COLUMNS), rows=_list(_APEACH),
     expect=lambda r, i, h, p: {
         "text": r["text"], "topic": r["text_topic"],
         "topic_en": r["text_topic_eng"],
         "label": ("Default", "Spoiled").index(r["class"])},
     read=_lines_reader(hate_speech.read_apeach),
     bad_rows=st.one_of(
         _with_bad(_APEACH, "class", ["default", "", "1"]),
         _with_bad(_APEACH, "text", ["", " ", "\n"])))

# Intent.

_SAE4K_FIELD = text("\t\n\r", nonblank=True)
_SAE4K = st.tuples(_SAE4K_FIELD, _SAE4K_FIELD, st.sampled_from("012345"))
spec(name="sae4k", kind="lines", file_name="sae4k_v1.txt",
     rows=_list(_SAE4K.map("\t".join)),
     expect=lambda r, i, h, p: dict(zip(
         ("sentence", "argument", "label"),
         (*r.split("\t")[:2], int(r.split("\t")[2])))),
     read=lambda p: _pairs(intent.read_sae4k(p)),
     bad_rows=st.one_of(
         st.tuples(_SAE4K_FIELD, _SAE4K_FIELD,
                   st.sampled_from(["6", "", "-1"])).map("\t".join),
         st.tuples(st.sampled_from(["", " "]), _SAE4K_FIELD,
                   st.just("0")).map("\t".join)))

_STYLEKQC = st.fixed_dictionaries({
    "act": st.sampled_from("0123"), "sentence": TSV_NONBLANK})
spec(name="stylekqc", kind="tsv", file_name="dev.tsv",
     header=st.sampled_from([("act", "sentence"), ("sentence", "act")]),
     rows=_list(_STYLEKQC),
     expect=lambda r, i, h, p: {"sentence": r["sentence"],
                                "label": int(r["act"])},
     read=lambda p: _pairs(intent.read_stylekqc(p)),
     bad_rows=st.one_of(_with_bad(_STYLEKQC, "act", ["4", "", "a"]),
                        _with_bad(_STYLEKQC, "sentence", ["", "  "])))

# KLUE (JSON).


def _unique_guids(rows, key="guid"):
  seen, result = set(), []
  for row in rows:
    if row[key] not in seen:
      seen.add(row[key])
      result.append(row)
  return result


_GUID = st.text("abc-_0123456789가", min_size=1, max_size=6)
_KLUE_NLI = st.fixed_dictionaries({
    "guid": _GUID, "source": JSON_TEXT, "premise": JSON_TEXT,
    "hypothesis": JSON_TEXT,
    "gold_label": st.sampled_from(list(klue.NLI_LABELS)),
    "label": st.just(["entailment"])})
_klue_key = lambda path, line, record: record["guid"]
spec(name="klue_nli", kind="json", file_name="klue-nli-v1.1_dev.json",
     rows=_list(_KLUE_NLI).map(_unique_guids), document=lambda rows: rows,
     expect=lambda r, i, h, p: {
         "guid": r["guid"], "source": r["source"], "premise": r["premise"],
         "hypothesis": r["hypothesis"],
         "label": klue.NLI_LABELS[r["gold_label"]]},
     read=lambda p: _pairs(klue.read_klue_nli(p)), key=_klue_key,
     bad_rows=st.one_of(
         _with_bad(_KLUE_NLI, "gold_label", ["maybe", 0, None]),
         _with_bad(_KLUE_NLI, "premise", [1, None, ["a"]]),
         _without(_KLUE_NLI, "hypothesis")))

_SCORE = st.one_of(st.floats(0, 5), st.integers(0, 5))
_KLUE_STS = st.fixed_dictionaries({
    "guid": _GUID, "source": JSON_TEXT, "sentence1": JSON_TEXT,
    "sentence2": JSON_TEXT,
    "labels": st.fixed_dictionaries({
        "label": _SCORE, "real-label": _SCORE,
        "binary-label": st.sampled_from([0, 1])})})
spec(name="klue_sts", kind="json", file_name="klue-sts-v1.1_dev.json",
     rows=_list(_KLUE_STS).map(_unique_guids), document=lambda rows: rows,
     expect=lambda r, i, h, p: {
         "guid": r["guid"], "source": r["source"],
         "sentence1": r["sentence1"], "sentence2": r["sentence2"],
         "score": float(r["labels"]["label"]),
         "real_score": float(r["labels"]["real-label"]),
         "label": r["labels"]["binary-label"]},
     read=lambda p: _pairs(klue.read_klue_sts(p)), key=_klue_key,
     bad_rows=st.one_of(
         _KLUE_STS.map(lambda r: {**r, "labels": {
             **r["labels"], "label": 5.5}}),
         _KLUE_STS.map(lambda r: {**r, "labels": {
             **r["labels"], "binary-label": True}}),
         _with_bad(_KLUE_STS, "labels", [[], "5", None])))

_KLUE_TC = st.fixed_dictionaries({
    "guid": _GUID, "title": JSON_TEXT,
    "label": st.sampled_from(list(klue.TC_LABELS)), "url": JSON_TEXT,
    "date": JSON_TEXT})
spec(name="klue_tc", kind="json", file_name="ynat-v1.1_dev.json",
     rows=_list(_KLUE_TC).map(_unique_guids), document=lambda rows: rows,
     expect=lambda r, i, h, p: {**r, "label": klue.TC_LABELS[r["label"]]},
     read=lambda p: _pairs(klue.read_klue_tc(p)), key=_klue_key,
     bad_rows=_with_bad(_KLUE_TC, "label", ["연예", 0, "IT"]))


def _squad_document(rows):
  """One article per row (a question with its article's title and context);
  consecutive rows with the same title share an article."""
  data = []
  for row in rows:
    if data and data[-1]["title"] == row["title"]:
      data[-1]["paragraphs"].append(
          {"context": row["context"], "qas": [row["qa"]]})
    else:
      data.append({"title": row["title"], "paragraphs": [
          {"context": row["context"], "qas": [row["qa"]]}]})
  return {"version": "fuzz", "data": data}


@st.composite
def _squad_row(draw, id_key, impossible):
  context = draw(JSON_TEXT)
  answers = []
  skip = impossible and draw(st.booleans())
  for _ in range(0 if skip else draw(st.integers(1, 3))):
    start = draw(st.integers(0, len(context)))
    end = draw(st.integers(start, len(context)))
    # Mostly the real span; sometimes a text not at answer_start (kept).
    answer = draw(st.one_of(st.just(context[start:end]), JSON_TEXT))
    answers.append({"text": answer, "answer_start": start})
  qa = {id_key: draw(_GUID), "question": draw(JSON_TEXT), "answers": answers}
  if impossible:
    qa.update(question_type=draw(st.sampled_from([1, 2, 3])),
              is_impossible=skip)
    if skip:
      qa["plausible_answers"] = [{"text": "x", "answer_start": 0}]
  return {"title": draw(st.sampled_from(["t", "제목", ""])),
          "context": context, "qa": qa}


def _unique_qids(id_key):
  def unique(rows):
    seen, result = set(), []
    for row in rows:
      if row["qa"][id_key] not in seen:
        seen.add(row["qa"][id_key])
        result.append(row)
    return result
  return unique


def _mrc_record(r, i, h, p):
  qa = r["qa"]
  if qa["is_impossible"]:
    return SKIP
  return {"guid": qa["guid"], "title": r["title"], "context": r["context"],
          "question": qa["question"], "question_type": qa["question_type"],
          "is_impossible": 0,
          "answers": [a["text"] for a in qa["answers"]],
          "answer_start": [a["answer_start"] for a in qa["answers"]]}


@contextlib.contextmanager
def logged(logger_name: str):
  """The log records of a logger (INFO and up) while in the block."""
  records = []
  handler = logging.Handler(logging.INFO)
  handler.emit = records.append
  logger = logging.getLogger(logger_name)
  level = logger.level
  logger.setLevel(logging.INFO)
  logger.addHandler(handler)
  try:
    yield records
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)


def _read_mrc(path):
  """KLUE MRC pairs and the number of questions it logs as skipped."""
  with logged(klue.__name__) as records:
    pairs = list(klue.read_klue_mrc(path))
  skipped = [r.args[0] for r in records if "skipped" in r.msg]
  assert len(skipped) == 1, [r.getMessage() for r in records]
  return pairs, skipped[0]


def _bad_squad_qa(row_strategy, id_key):
  def bad(args):
    row, (field, value) = args
    qa = dict(row["qa"])
    if value is _MISSING:
      qa.pop(field, None)
    else:
      qa[field] = value
    return {**row, "qa": qa}
  return st.tuples(row_strategy, st.sampled_from([
      ("answers", [{"text": "a", "answer_start": -1}]),
      ("answers", [{"text": 1, "answer_start": 0}]),
      ("answers", "a"), ("question", _MISSING), ("question", None),
      (id_key, 7)])).map(bad)


_MISSING = object()
_MRC_ROW = _squad_row("guid", impossible=True)
spec(name="klue_mrc", kind="json", file_name="klue-mrc-v1.1_dev.json",
     rows=_list(_MRC_ROW).map(_unique_qids("guid")), document=_squad_document,
     expect=_mrc_record, read=_read_mrc,
     key=_klue_key,
     bad_rows=st.one_of(
         _bad_squad_qa(_MRC_ROW, "guid"),
         _MRC_ROW.map(lambda r: {**r, "qa": {
             **r["qa"], "is_impossible": False, "answers": []}})))

_KORQUAD_ROW = _squad_row("id", impossible=False)
spec(name="korquad1", kind="json", file_name="KorQuAD_v1.0_dev.json",
     rows=_list(_KORQUAD_ROW).map(_unique_qids("id")),
     document=_squad_document,
     expect=lambda r, i, h, p: {
         "id": r["qa"]["id"], "title": r["title"], "context": r["context"],
         "question": r["qa"]["question"],
         "answers": [a["text"] for a in r["qa"]["answers"]],
         "answer_start": [a["answer_start"] for a in r["qa"]["answers"]]},
     read=lambda p: _pairs(korquad.read_korquad1(p)),
     key=lambda path, line, record: record["id"],
     bad_rows=st.one_of(
         _bad_squad_qa(_KORQUAD_ROW, "id"),
         _KORQUAD_ROW.map(lambda r: {**r, "qa": {**r["qa"], "answers": []}})))

# KorNLU.

_NLI_LABEL_TEXT = st.sampled_from(
    ["entailment", "neutral", "contradiction", " neutral", "entailment "])
_KORNLI = st.fixed_dictionaries({
    "sentence1": TSV_TEXT, "sentence2": TSV_TEXT,
    "gold_label": _NLI_LABEL_TEXT})


def _kornli_record(r, i, h, p):
  if r["gold_label"].strip() == kornlu.NO_GOLD_LABEL:
    return SKIP
  return {"premise": r["sentence1"], "hypothesis": r["sentence2"],
          "label": ("entailment", "neutral",
                    "contradiction").index(r["gold_label"].strip())}


def _read_kornli(allow_no_gold):
  def read(path):
    skipped = kornlu.SkipCounter()
    pairs = list(kornlu.read_kornli(path, allow_no_gold=allow_no_gold,
                                    skipped=skipped))
    return pairs, skipped[path.name]
  return read


spec(name="kornli_train", kind="tsv", file_name="snli_1.0_train.ko.tsv",
     header=st.just(("sentence1", "sentence2", "gold_label")),
     rows=_list(_with_bad(_KORNLI, "gold_label", ["-", " - "]) | _KORNLI),
     expect=_kornli_record, read=_read_kornli(True),
     bad_rows=_with_bad(_KORNLI, "gold_label", ["", "entails", "--"]))
spec(name="kornli_dev", kind="tsv", file_name="xnli.dev.ko.tsv",
     header=st.just(("sentence1", "sentence2", "gold_label")),
     rows=_list(_KORNLI), expect=_kornli_record, read=_read_kornli(False),
     bad_rows=_with_bad(_KORNLI, "gold_label", ["-", "", "Neutral"]))

_STS_SCORE = st.one_of(
    st.integers(0, 5).map(str),
    st.floats(0, 5).map(lambda f: f"{f:.3f}"))
_KORSTS = st.fixed_dictionaries({
    "genre": TSV_TEXT, "filename": TSV_TEXT, "year": TSV_TEXT,
    "id": TSV_TEXT, "score": _STS_SCORE, "sentence1": TSV_TEXT,
    "sentence2": TSV_TEXT})
spec(name="korsts", kind="tsv", file_name="sts-dev.tsv",
     header=st.just(kornlu._STS_COLUMNS),  # pylint: disable=protected-access
     rows=_list(_KORSTS),
     expect=lambda r, i, h, p: {
         "genre": r["genre"], "score": float(r["score"]),
         "sentence1": r["sentence1"], "sentence2": r["sentence2"],
         "label": int(float(r["score"]) >= 3.0),
         "score_bucket": kornlu.score_bucket(float(r["score"]))},
     read=lambda p: _pairs(kornlu.read_korsts(p)),
     bad_rows=_with_bad(_KORSTS, "score",
                        ["5.5", "-1", "abc", "", "3.", ".5", "1e1"]))

# Sentiment.

_NSMC = st.fixed_dictionaries({
    "id": INTS.map(str), "document": TSV_TEXT, "label": st.sampled_from("01")})


def _read_nsmc(path):
  rows = list(sentiment.read_nsmc(path))
  return ([(base.file_key(path, line), record)
           for line, _, record in rows if record is not None],
          sum(record is None for _, _, record in rows))


spec(name="nsmc", kind="tsv", file_name="ratings_test.txt",
     header=st.just(("id", "document", "label")), rows=_list(_NSMC),
     expect=lambda r, i, h, p: SKIP if not r["document"].strip() else {
         "id": int(r["id"]), "document": r["document"],
         "label": int(r["label"])},
     read=_read_nsmc,
     bad_rows=st.one_of(_with_bad(_NSMC, "id", ["x", "", "1.0"]),
                        _with_bad(_NSMC, "label", ["2", "", "positive"])))

_SHOPPING = st.tuples(st.sampled_from("1245"), text("\n\r"))


def _read_shopping(path):
  rows = list(sentiment.read_naver_shopping(path))
  return ([(base.file_key(path, line), record)
           for line, record in rows if record is not None],
          sum(record is None for _, record in rows))


def _shopping_record(r, i, h, p):
  rating, _, review = r.partition("\t")
  if not review.strip():
    return SKIP
  return {"rating": int(rating), "review": review,
          "label": int(int(rating) > 3)}


spec(name="naver_shopping", kind="lines", file_name="naver_shopping.txt",
     rows=_list(_SHOPPING.map("\t".join)), expect=_shopping_record,
     read=_read_shopping, fixed_fields=False,
     bad_rows=st.one_of(
         st.tuples(st.sampled_from(["3", "0", "", "5 "]),
                   text("\n\r")).map("\t".join),
         st.sampled_from(["5", "좋아요"])))

# Paraphrase.

_KORSS_SENTENCE = text("\t\n\r", nonblank=True)
_KORSS_LABEL = st.sampled_from(["0", "1", " 1", "0 "])


def _write_korss_labels(folder, rows, eol, final_eol):
  labels = [row[1] for row in rows]
  (folder / "test_label").write_bytes(
      (eol.join(labels) + (eol if final_eol else "")).encode("utf-8"))


spec(name="korss", kind="lines", file_name="test_data",
     # A row is (data line, label line).
     rows=_list(st.tuples(
         st.tuples(_KORSS_SENTENCE, _KORSS_SENTENCE).map("\t".join),
         _KORSS_LABEL)),
     expect=lambda r, i, h, p: {
         "sentence1": r[0].split("\t")[0], "sentence2": r[0].split("\t")[1],
         "label": int(r[1])},
     read=lambda p: _pairs(paraphrase.read_korss(p, p.with_name("test_label"))),
     companions=_write_korss_labels,
     error_paths=lambda p: {str(p.with_name("test_label"))},
     bad_rows=st.one_of(
         st.tuples(_KORSS_SENTENCE.map(lambda s: s + "\t "), _KORSS_LABEL),
         st.tuples(_KORSS_SENTENCE, _KORSS_LABEL),
         st.tuples(st.tuples(_KORSS_SENTENCE, _KORSS_SENTENCE).map("\t".join),
                   st.sampled_from(["2", "", "yes"]))))

_QUESTION_PAIR = st.fixed_dictionaries({
    "id": NATURALS.map(str), "test_id": NATURALS.map(str),
    "qid1": CSV_TEXT, "qid2": CSV_TEXT, "question1": CSV_NONBLANK,
    "question2": CSV_NONBLANK, "is_duplicate": st.sampled_from("01"),
    "": st.sampled_from(["", "1"])})


def _question_pair_record(r, i, header, path):
  id_column = "id" if "id" in header else "test_id"
  return {"id": int(r[id_column]), "question1": r["question1"],
          "question2": r["question2"], "label": 1 - int(r["is_duplicate"])}


spec(name="question_pair_train", kind="csv", file_name="kor_pair_train.csv",
     header=st.just(("id", "qid1", "qid2", "question1", "question2",
                     "is_duplicate")),
     rows=_list(_QUESTION_PAIR), expect=_question_pair_record,
     read=lambda p: _pairs(paraphrase.read_question_pair(p)),
     bad_rows=st.one_of(
         _with_bad(_QUESTION_PAIR, "is_duplicate", ["2", "", "True"]),
         _with_bad(_QUESTION_PAIR, "question2", ["", " "]),
         _with_bad(_QUESTION_PAIR, "id", ["x", "1.0"])))
spec(name="question_pair_test", kind="csv", file_name="kor_Pair_test.csv",
     header=st.just(("test_id", "question1", "question2", "is_duplicate", "")),
     rows=_list(_QUESTION_PAIR), expect=_question_pair_record,
     read=lambda p: _pairs(paraphrase.read_question_pair(p)),
     bad_rows=_with_bad(_QUESTION_PAIR, "test_id", ["", "a"]))


_UTTERANCE = text("\t\n\r", nonblank=True, fragments=2)


@st.composite
def _parakqc_rows(draw):
  """Whole sets: 10 lines that share topic and act."""
  rows = []
  for _ in range(draw(st.integers(1, 2))):
    topic, act = draw(st.sampled_from("0123")), draw(st.sampled_from("0123"))
    for _ in range(paraphrase.PARAKQC_SET_SIZE):
      rows.append(f"{topic}\t{act}\t{draw(_UTTERANCE)}")
  return rows


def _read_parakqc(path):
  return [(base.file_key(path, line), {"set": s.set_id, "topic": s.topic,
                                       "act": s.act, "utterance": text_})
          for s in paraphrase.read_parakqc_sets(path)
          for line, text_ in zip(s.lines, s.texts)], 0


spec(name="parakqc", kind="lines", file_name="paraKQC_v1.txt",
     rows=_parakqc_rows(),
     expect=lambda r, i, h, p: {
         "set": i // paraphrase.PARAKQC_SET_SIZE,
         "topic": int(r.split("\t")[0]), "act": int(r.split("\t")[1]),
         "utterance": r.split("\t", 2)[2]},
     read=_read_parakqc,
     bad_rows=st.sampled_from(["4\t0\t문장", "0\tx\t문장", "0\t0\t ",
                               "0\t0", "0\t0\t문장\t더"]))

# The KORANI release CSVs.

_CHOICE = text("\r|", nonblank=True, fragments=2)


@st.composite
def _release_rows(draw):
  choices = draw(st.lists(_CHOICE, max_size=4))
  separator = draw(st.sampled_from(["|||", " ||| "]))
  # An empty output is a bad row (bad_rows), never a valid one.
  output = draw(st.one_of(st.sampled_from(choices), CSV_NONBLANK)
                if choices else CSV_NONBLANK)
  return {"input": draw(CSV_NONBLANK), "output": output,
          "choices": separator.join(choices) if choices else draw(
              st.sampled_from(["", " "])),
          "dataset_name": draw(CSV_TEXT), "id": draw(CSV_TEXT)}


def _release_record(r, i, h, path):
  choices = ([c.strip() for c in r["choices"].split("|||")]
             if r["choices"].strip() else [])
  output = r["output"].strip()
  return {**r, "choices": choices,
          "answer_index": choices.index(output) if output in choices else -1,
          "template": pathlib.Path(path).stem}


spec(name="release_csv", kind="csv", file_name="dev_template0.csv",
     header=st.sampled_from([release_csv.COLUMNS,
                             tuple(f" {c}" for c in release_csv.COLUMNS)]),
     rows=_list(_release_rows()), expect=_release_record,
     read=lambda p: _pairs(release_csv.read_release_csv(p)),
     key=lambda path, line, record: f"{path.name}:{line}",
     bad_rows=st.one_of(
         _with_bad(_release_rows(), "input", ["", " ", "\n"]),
         _with_bad(_release_rows(), "output", ["", " "]),
         _with_bad(_release_rows(), "choices", ["a|||", "|||b", "a||| |||b"])))

# P3 readers (korani_tasks/p3/readers.py).


def _p3_read(source_key, split="validation"):
  source = p3_base.P3_SOURCES[source_key]
  return lambda path: _pairs(source.read(split, [path]))


def _jsonl_spec(name, source_key, row, expect, bad_rows, split="validation",
                optional=()):
  """A P3 JSON-lines reader; a row without any field but the `optional`
  ones (not Hugging Face fields) is bad."""
  spec(name=name, kind="jsonl", file_name="val.jsonl", rows=_list(row),
       expect=lambda r, i, h, p: expect(r), read=_p3_read(source_key, split),
       bad_rows=st.one_of(
           bad_rows, st.sampled_from([[1], "row", 1, None]),
           row.flatmap(lambda r: st.sampled_from(
               [{k: v for k, v in r.items() if k != key}
                for key in r if key not in optional]))))


def _typo(row, field, values):
  return _with_bad(row, field, values)


_RTE = st.fixed_dictionaries({
    "premise": JSON_TEXT, "hypothesis": JSON_TEXT, "idx": INTS,
    "label": st.sampled_from(p3_readers.RTE_LABELS)})
_jsonl_spec("p3_rte", "super_glue/rte", _RTE,
            lambda r: {**r, "label": p3_readers.RTE_LABELS.index(r["label"])},
            st.one_of(_typo(_RTE, "label", ["Entailment", 0, None]),
                      _typo(_RTE, "idx", ["1", 1.5, True])))
_CB = st.fixed_dictionaries({
    "premise": JSON_TEXT, "hypothesis": JSON_TEXT, "idx": INTS,
    "label": st.sampled_from(p3_readers.CB_LABELS)})
_jsonl_spec("p3_cb", "super_glue/cb", _CB,
            lambda r: {**r, "label": p3_readers.CB_LABELS.index(r["label"])},
            _typo(_CB, "label", ["not_entailment", 2]))
_COPA_P3 = st.fixed_dictionaries({
    "premise": JSON_TEXT, "choice1": JSON_TEXT, "choice2": JSON_TEXT,
    "question": st.sampled_from(["cause", "effect"]), "idx": INTS,
    "label": st.sampled_from([0, 1])})
_jsonl_spec("p3_copa", "super_glue/copa", _COPA_P3, lambda r: r,
            st.one_of(_typo(_COPA_P3, "label", [2, "0", True, 0.0]),
                      _typo(_COPA_P3, "question", ["Cause", ""])))
_WIC_P3 = st.fixed_dictionaries({
    "word": JSON_TEXT, "sentence1": JSON_TEXT, "sentence2": JSON_TEXT,
    **{k: INTS for k in ("start1", "start2", "end1", "end2", "idx")},
    "label": st.booleans(), "version": st.just(1.1)})
_jsonl_spec("p3_wic", "super_glue/wic", _WIC_P3,
            lambda r: {**{k: v for k, v in r.items() if k != "version"},
                       "label": int(r["label"])},
            _typo(_WIC_P3, "label", [0, "true", None]), optional=("version",))


@st.composite
def _wsc_rows(draw):
  words = draw(st.lists(_HANGUL | st.sampled_from(["The", "dog", "it"]),
                        min_size=1, max_size=6))
  sentence = " ".join(words)
  spans = {}
  for span in ("span1", "span2"):
    index = draw(st.integers(0, len(words) - 1))
    spans[f"{span}_index"] = index
    spans[f"{span}_text"] = words[index]
  return {"text": sentence, "target": spans, "idx": draw(INTS),
          "label": draw(st.booleans())}


_jsonl_spec("p3_wsc", "super_glue/wsc.fixed", _wsc_rows(),
            lambda r: {"text": r["text"], **r["target"], "idx": r["idx"],
                       "label": int(r["label"])},
            st.one_of(
                _typo(_wsc_rows(), "target", [None, [], {"span1_index": 0}]),
                _wsc_rows().map(lambda r: {**r, "target": {
                    **r["target"], "span1_index": 99,
                    "span1_text": "absent words"}})))
_BOOLQ_P3 = st.fixed_dictionaries({
    "question": JSON_TEXT, "passage": JSON_TEXT, "idx": INTS,
    "label": st.booleans()})
_jsonl_spec("p3_boolq", "super_glue/boolq", _BOOLQ_P3,
            lambda r: {**r, "label": int(r["label"])},
            _typo(_BOOLQ_P3, "label", [1, "False"]))
_ANLI = st.fixed_dictionaries({
    "uid": JSON_TEXT, "context": JSON_TEXT, "hypothesis": JSON_TEXT,
    "label": st.sampled_from("enc"), "reason": JSON_TEXT,
    "model_label": st.just("e"), "genre": JSON_TEXT})
_jsonl_spec("p3_anli", "anli", _ANLI,
            lambda r: {"uid": r["uid"], "premise": r["context"],
                       "hypothesis": r["hypothesis"],
                       "label": "enc".index(r["label"]), "reason": r["reason"]},
            _typo(_ANLI, "label", ["entailment", "E", 0]), split="dev_r1",
            optional=("model_label", "genre"))
_HELLASWAG_P3 = st.fixed_dictionaries({
    "ind": INTS, "activity_label": JSON_TEXT, "ctx_a": JSON_TEXT,
    "ctx_b": JSON_TEXT, "ctx": JSON_TEXT,
    "endings": st.lists(JSON_TEXT, min_size=4, max_size=4),
    "source_id": JSON_TEXT, "split": st.sampled_from(["train", "val"]),
    "split_type": JSON_TEXT, "label": st.sampled_from([0, 1, 2, 3])})
_jsonl_spec("p3_hellaswag", "hellaswag", _HELLASWAG_P3,
            lambda r: {**r, "label": str(r["label"])},
            st.one_of(_typo(_HELLASWAG_P3, "label", ["0", 4, None]),
                      _typo(_HELLASWAG_P3, "endings", [["a"], "abcd",
                                                       [1, 2, 3, 4]])))
_WINOGRANDE = st.fixed_dictionaries({
    "qID": JSON_TEXT, "sentence": JSON_TEXT, "option1": JSON_TEXT,
    "option2": JSON_TEXT, "answer": st.sampled_from(["1", "2"])})
_jsonl_spec("p3_winogrande", "winogrande/winogrande_xl", _WINOGRANDE,
            lambda r: {k: v for k, v in r.items() if k != "qID"},
            _typo(_WINOGRANDE, "answer", [1, "3", ""]), optional=("qID",))
_ROTTEN = st.fixed_dictionaries({
    "task": st.just("rotten_tomatoes"), "input": JSON_TEXT,
    "output": st.sampled_from(p3_readers.ROTTEN_TOMATOES_LABELS),
    "options": st.just(list(p3_readers.ROTTEN_TOMATOES_LABELS))})
_jsonl_spec("p3_rotten_tomatoes", "rotten_tomatoes", _ROTTEN,
            lambda r: {"text": r["input"], "label":
                       p3_readers.ROTTEN_TOMATOES_LABELS.index(r["output"])},
            st.one_of(_typo(_ROTTEN, "task", ["sst2"]),
                      _typo(_ROTTEN, "output", ["Positive", 1]),
                      _typo(_ROTTEN, "options", [["positive", "negative"]])))

# pylint: disable-next=protected-access
_STORY_COLUMNS = p3_readers._STORY_CLOZE_COLUMNS
_STORY = st.fixed_dictionaries({
    **{c: CSV_TEXT for c in _STORY_COLUMNS[:-1]},
    "AnswerRightEnding": st.sampled_from("12")})
spec(name="p3_story_cloze", kind="csv",
     file_name="cloze_test_val__spring2016.csv",
     header=st.permutations(_STORY_COLUMNS).map(tuple),
     rows=_list(_STORY), quote_all=True,
     expect=lambda r, i, h, p: {
         "story_id": r["InputStoryid"],
         **{f"input_sentence_{k}": r[f"InputSentence{k}"] for k in range(1, 5)},
         "sentence_quiz1": r["RandomFifthSentenceQuiz1"],
         "sentence_quiz2": r["RandomFifthSentenceQuiz2"],
         "answer_right_ending": int(r["AnswerRightEnding"])},
     read=_p3_read("story_cloze/2016"),
     bad_rows=_with_bad(_STORY, "AnswerRightEnding", ["3", "", "1.0"]))

_AG_NEWS = st.tuples(st.sampled_from("1234"), CSV_TEXT, CSV_TEXT).map(list)
# pylint: disable-next=protected-access
_KAGGLE_HEADER = tuple(p3_readers._AG_NEWS_HEADER)
spec(name="p3_ag_news", kind="csv", file_name="test.csv",
     header=st.sampled_from([None, _KAGGLE_HEADER]),
     rows=_list(_AG_NEWS), quote_all=True,
     expect=lambda r, i, h, p: {"text": f"{r[1]} {r[2]}",
                                "label": int(r[0]) - 1},
     read=_p3_read("ag_news", "test"),
     bad_rows=_AG_NEWS.flatmap(lambda r: st.sampled_from(
         [["5", *r[1:]], ["0", *r[1:]], r[:2]])))

_TREC_QUESTION = text("\n\r\ufffd", fragments=3).map(str.rstrip).map(
    lambda q: q if q.strip() else q + "what")
_TREC_CLASS = st.sampled_from(sorted(p3_readers.TREC_CLASSES))


def _trec_record(line):
  label, _, question = line.partition(" ")
  coarse, _, fine = label.partition(":")
  return {"text": question,
          "label_coarse": p3_readers.TREC_COARSE_LABELS.index(coarse),
          "label_fine": p3_readers.TREC_FINE_LABELS.index(fine)}


spec(name="p3_trec", kind="lines", file_name="test.txt",
     rows=_list(st.tuples(_TREC_CLASS, _TREC_QUESTION).map(" ".join)),
     expect=lambda r, i, h, p: _trec_record(r),
     read=_p3_read("trec", "test"), fixed_fields=False,
     bad_rows=st.one_of(
         st.tuples(st.sampled_from(["LOC:town", "loc:city", "LOC", ""]),
                   _TREC_QUESTION).map(" ".join),
         _TREC_CLASS))

# Hugging Face-style JSON lines (korani_tasks/p3/hf_folder.py).

_JSON_VALUE = st.recursive(
    st.none() | st.booleans() | INTS | JSON_TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(JSON_TEXT, children, max_size=3), max_leaves=8)
spec(name="hf_jsonl", kind="jsonl", file_name="validation.jsonl",
     rows=_list(st.dictionaries(JSON_TEXT, _JSON_VALUE, max_size=4)),
     expect=lambda r, i, h, p: r,
     read=lambda p: _pairs(hf_folder.read_hf_files("validation", [p])),
     key=lambda path, line, record: "/".join(path.parts[-3:]) + f":{line}",
     bad_rows=st.sampled_from(["[1]", '"row"', "1", "null", "{", "{'a': 1}"]))


# --- Writing files. ---


@dataclasses.dataclass
class Written:
  """A file written from rows.

  Attributes:
    path: the file.
    header: the header written (None: none).
    spans: each row's first and last line (None for "json").
    eol: the line end used ("\\n" or "\\r\\n").
  """
  path: pathlib.Path
  header: tuple[str, ...] | None
  spans: list[tuple[int, int]] | None
  eol: str


@dataclasses.dataclass(frozen=True)
class Style:
  """How a valid file is written: the variations the readers accept."""
  crlf: bool
  bom: bool
  final_eol: bool
  ensure_ascii: bool
  indent: int | None


STYLES = st.builds(Style, st.booleans(), st.booleans(), st.booleans(),
                   st.booleans(), st.sampled_from([None, 1]))


def write(sp: Spec, folder: pathlib.Path, rows: list, header, style: Style,
          file_name: str | None = None) -> Written:
  """Writes `rows` in the format of `sp` (see `Style`)."""
  path = folder / (file_name or sp.file_name)
  eol = "\r\n" if style.crlf else "\n"
  spans = []
  if sp.kind == "json":
    body = json.dumps(sp.document(rows), ensure_ascii=style.ensure_ascii,
                      indent=style.indent).replace("\n", eol)
    spans = None
  elif sp.kind == "csv":
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=eol, quoting=(
        csv.QUOTE_ALL if sp.quote_all else csv.QUOTE_MINIMAL))
    if header is not None:
      writer.writerow(header)
    for row in rows:
      start = buffer.getvalue().count("\n") + 1
      writer.writerow(row if isinstance(row, list) else
                      [row.get(c.strip(), "x") for c in header])
      spans.append((start, buffer.getvalue().count("\n")))
    body = buffer.getvalue().removesuffix(eol)
  else:
    if sp.kind == "tsv":
      lines = ["\t".join(header)] + [
          "\t".join(row.get(c, "x") for c in header) for row in rows]
    elif sp.kind == "jsonl":
      lines = [row if isinstance(row, str) else
               json.dumps(row, ensure_ascii=style.ensure_ascii)
               for row in rows]
    else:  # lines
      lines = [row if isinstance(row, str) else row[0] for row in rows]
    first = 2 if header is not None else 1
    spans = [(first + i, first + i) for i in range(len(rows))]
    body = eol.join(lines)
  if style.final_eol and rows:
    body += eol
  path.write_bytes((b"\xef\xbb\xbf" if style.bom else b"")
                   + body.encode("utf-8"))
  if sp.companions:
    sp.companions(folder, rows, eol, style.final_eol)
  return Written(path, header, spans, eol)


def expected_pairs(sp: Spec, written: Written, rows: list, line_shift=None):
  """``(pairs, skipped)`` the reader must give for `rows` as written."""
  pairs, skipped = [], 0
  for i, row in enumerate(rows):
    record = sp.expect(row, i, written.header, written.path)
    if record is SKIP:
      skipped += 1
      continue
    line = None if written.spans is None else written.spans[i][0]
    if line is not None and line_shift is not None:
      line += line_shift(line)
    pairs.append((sp.key(written.path, line, record), record))
  return pairs, skipped


def read(sp: Spec, path: pathlib.Path):
  """The reader's ``(pairs, skipped)``, or the DataFormatError it raised
  (any other exception fails the test)."""
  try:
    return sp.read(path)
  except DataFormatError as e:
    return e


def assert_names_file(sp: Spec, error, path: pathlib.Path, line="any"):
  """`error` is a DataFormatError naming `path` (or a companion file) and,
  for line-based formats, `line` ("any": some line number)."""
  assert isinstance(error, DataFormatError), error
  assert error.path in {str(path)} | sp.error_paths(path), (error, path)
  if not sp.line_based:
    return
  if line == "any":
    assert isinstance(error.line, int) and error.line >= 1, error
  else:
    assert error.line == line, (str(error), line)


@contextlib.contextmanager
def folder():
  """A fresh folder (not pytest's tmp_path: hypothesis runs many examples
  in one test call)."""
  with tempfile.TemporaryDirectory() as name:
    yield pathlib.Path(name)


def _draw_file(data, sp: Spec, min_rows: int = 0):
  rows = data.draw(sp.rows, label="rows")
  hypothesis.assume(len(rows) >= min_rows)
  header = data.draw(sp.header, label="header")
  style = data.draw(STYLES, label="style")
  return rows, header, style


# --- Valid files. ---


@pytest.mark.parametrize("name", sorted(SPECS))
@hypothesis.given(data=st.data())
def test_valid_rows_read_back_as_written(name, data):
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp)
  with folder() as d:
    written = write(sp, d, rows, header, style)
    result = read(sp, written.path)
    expected, skipped = expected_pairs(sp, written, rows)
    assert not isinstance(result, DataFormatError), result
    pairs, reported = result
    assert pairs == expected
    assert reported == skipped  # Rows in = records out + reported skipped.
    assert len(pairs) + reported == len(rows)


# --- Faults. ---


@pytest.mark.parametrize(
    "name", sorted(n for n in SPECS if SPECS[n].bad_rows is not None))
@hypothesis.given(data=st.data())
def test_a_bad_row_is_an_error_naming_its_line(name, data):
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp)
  bad = data.draw(sp.bad_rows, label="bad row")
  position = data.draw(st.integers(0, len(rows)), label="position")
  rows = rows[:position] + [bad] + rows[position:]
  with folder() as d:
    written = write(sp, d, rows, header, style)
    line = "any" if written.spans is None else written.spans[position][0]
    assert_names_file(sp, read(sp, written.path), written.path, line)


def _utf8_complete(data: bytes) -> bool:
  try:
    data.decode("utf-8")
  except UnicodeDecodeError:
    return False
  return True


def check_truncated(sp: Spec, rows, header, style: Style, cut=None, data=None):
  """Cuts the file of `rows` at byte `cut` (drawn from `data` if None): an
  error, or the rows before the cut."""
  with folder() as d:
    written = write(sp, d, rows, header, style)
    content = written.path.read_bytes()
    if cut is None:
      cut = data.draw(st.integers(0, len(content) - 1), label="cut")
    written.path.write_bytes(content[:cut])
    result = read(sp, written.path)
    expected, _ = expected_pairs(sp, written, rows)
    rest = content[:cut].removeprefix(b"\xef\xbb\xbf")
    last_line = content[:cut].count(b"\n") + 1
    if not rest.strip():
      assert_names_file(sp, result, written.path)
    elif not _utf8_complete(content[:cut]):
      assert_names_file(sp, result, written.path,
                        last_line if sp.line_based else "any")
    elif sp.kind == "csv" and rest.count(b'"') % 2:
      assert_names_file(sp, result, written.path)  # Inside a quoted field.
    elif isinstance(result, DataFormatError):
      assert_names_file(sp, result, written.path)
    else:
      pairs, _ = result
      assert len(pairs) <= len(expected)
      if sp.kind == "json":  # Only trailing white space was cut.
        assert pairs == expected
      elif sp.kind == "jsonl" or rest.endswith(b"\n"):
        assert pairs == expected[:len(pairs)]
      elif pairs:  # The last row may have lost the end of its last field.
        assert pairs[:-1] == expected[:len(pairs) - 1]


@pytest.mark.parametrize("name", sorted(SPECS))
@hypothesis.given(data=st.data())
def test_a_truncated_file_is_an_error_or_a_prefix(name, data):
  """Cut at a random byte: mid-character and mid-quote cuts are errors;
  otherwise an error, or the rows before the cut (the last one may be cut
  short where the format cannot tell, e.g. inside a TSV text field)."""
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp, min_rows=1)
  check_truncated(sp, rows, header, style, data=data)


def test_a_file_cut_inside_its_header_reads_no_rows():
  """Found by 100 examples: a CSV cut one byte before the header's end
  reads as a header without rows ([]), which the check above took for a
  short read (it compared [] with all rows but the last)."""
  row = {"input": "가", "output": "가", "choices": "", "dataset_name": "",
         "id": ""}
  header = ("input", "output", "choices", "dataset_name", "id")
  check_truncated(SPECS["release_csv"], [row, row], header,
                  Style(False, False, False, False, None), cut=36)


@pytest.mark.parametrize("name", sorted(SPECS))
@hypothesis.given(data=st.data())
def test_an_invalid_utf8_byte_is_an_error_naming_its_line(name, data):
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp, min_rows=1)
  with folder() as d:
    written = write(sp, d, rows, header, style)
    content = written.path.read_bytes()
    at = data.draw(st.integers(0, len(content)), label="at")
    byte = data.draw(st.sampled_from([b"\xff", b"\xc0", b"\x80", b"\xed\xa0"]))
    written.path.write_bytes(content[:at] + byte + content[at:])
    line = content[:at].count(b"\n") + 1 if sp.line_based else "any"
    assert_names_file(sp, read(sp, written.path), written.path, line)


@pytest.mark.parametrize("name", sorted(SPECS))
@hypothesis.given(data=st.data())
def test_utf16_and_empty_files_are_errors(name, data):
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp, min_rows=1)
  with folder() as d:
    written = write(sp, d, rows, header, style)
    utf16 = written.path.read_bytes().decode("utf-8-sig").encode("utf-16")
    written.path.write_bytes(utf16)
    assert_names_file(sp, read(sp, written.path), written.path,
                      1 if sp.line_based else "any")
    written.path.write_bytes(b"")
    assert_names_file(sp, read(sp, written.path), written.path)


@pytest.mark.parametrize(
    "name", sorted(n for n in SPECS if SPECS[n].kind in ("tsv", "csv")))
@hypothesis.given(data=st.data())
def test_a_header_only_file_is_an_error_or_empty(name, data):
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp)
  hypothesis.assume(header is not None)
  with folder() as d:
    written = write(sp, d, [], header, style)
    result = read(sp, written.path)
    if isinstance(result, DataFormatError):
      assert_names_file(sp, result, written.path)
    else:
      assert result == ([], 0)
    if sp.kind == "tsv":  # Documented: read_tsv wants data rows.
      assert isinstance(result, DataFormatError)


def _insert_line(content: bytes, line: int, text: bytes) -> bytes:
  """`content` with `text` inserted as line number `line` (1-based)."""
  lines = content.split(b"\n")
  return b"\n".join(lines[:line - 1] + [text] + lines[line - 1:])


@pytest.mark.parametrize(
    "name", sorted(n for n in SPECS if SPECS[n].kind != "json"))
@hypothesis.given(data=st.data())
def test_a_blank_line_in_the_middle_is_an_error_or_ignored(name, data):
  """TSV, line and JSON-lines files: an error naming the blank line; CSV
  readers may skip it (the rows after it keep their own line numbers)."""
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp, min_rows=2)
  position = data.draw(st.integers(1, len(rows) - 1), label="position")
  with folder() as d:
    written = write(sp, d, rows, header, style)
    blank_line = written.spans[position][0]
    content = written.path.read_bytes()
    blank = data.draw(st.sampled_from(
        [b"", b"\r"] if written.eol == "\r\n" else [b""]))
    written.path.write_bytes(_insert_line(content, blank_line, blank))
    result = read(sp, written.path)
    if sp.kind != "csv" or isinstance(result, DataFormatError):
      assert_names_file(sp, result, written.path, blank_line)
    else:
      assert result == expected_pairs(
          sp, written, rows, line_shift=lambda line: line >= blank_line)


@pytest.mark.parametrize("name", sorted(
    n for n in SPECS if SPECS[n].fixed_fields and SPECS[n].kind in (
        "tsv", "csv", "lines")))
@hypothesis.given(data=st.data())
def test_a_row_with_a_field_too_many_or_few_is_an_error(name, data):
  sp = SPECS[name]
  rows, header, style = _draw_file(data, sp, min_rows=1)
  position = data.draw(st.integers(0, len(rows) - 1), label="position")
  more = data.draw(st.booleans(), label="one more") or sp.kind == "csv"
  with folder() as d:
    written = write(sp, d, rows, header, style)
    start, end = written.spans[position]
    lines = written.path.read_bytes().split(b"\n")
    row_end = lines[end - 1]
    cr = b"\r" if row_end.endswith(b"\r") else b""
    row_end = row_end.removesuffix(cr)
    separator = b"," if sp.kind == "csv" else b"\t"
    if more:
      row_end += separator + b"x"
    else:  # TSV and line rows are one line: drop the last field.
      row_end = row_end.rpartition(separator)[0]
    lines[end - 1] = row_end + cr
    written.path.write_bytes(b"\n".join(lines))
    assert_names_file(sp, read(sp, written.path), written.path, start)


# --- Splits that share files: every row in exactly one split. ---

# The spec of each file of the datasets whose splits share files.
_FILE_SPECS = {
    "data.txt": "curse_detection", "test.csv": "apeach",
    "sae4k_v1.txt": "sae4k", "ratings_train.txt": "nsmc",
    "ratings_test.txt": "nsmc", "naver_shopping.txt": "naver_shopping",
    "test_data": "korss", "kor_pair_train.csv": "question_pair_train",
    "kor_Pair_test.csv": "question_pair_test",
}
_SHARED = ("curse_detection", "apeach", "sae4k", "naver_movie",
           "naver_shopping", "kor_ss", "question_pair")


@pytest.mark.parametrize("dataset", _SHARED)
@hypothesis.given(data=st.data())
def test_splits_that_share_files_keep_every_row_once(dataset, data):
  raw = readers.RAW_DATASETS[dataset]
  with folder() as d:
    expected, skipped = {}, set()
    for relative in raw.files():
      name = pathlib.PurePath(relative).name
      if name == "test_label":
        continue  # Written with test_data.
      sp = SPECS[_FILE_SPECS[name]]
      rows, header, style = _draw_file(data, sp, min_rows=1)
      (d / relative).parent.mkdir(parents=True, exist_ok=True)
      written = write(sp, (d / relative).parent, rows, header, style, name)
      for i, row in enumerate(rows):
        key = base.file_key(written.path, written.spans[i][0])
        record = sp.expect(row, i, written.header, written.path)
        if record is SKIP:
          skipped.add((relative, key))
        else:
          expected[relative, key] = record
    seen = {}
    for split in raw.splits:
      paths = raw.paths(d, split)
      keys = list(raw.read(split, paths))
      if dataset in ("naver_movie", "naver_shopping"):
        for key in sentiment.skipped_rows(dataset, split, paths):
          where = paths[0].relative_to(d).as_posix(), key
          assert where not in seen, (where, split)
          seen[where] = SKIP
      for key, record in keys:
        where = paths[0].relative_to(d).as_posix(), key
        assert where not in seen, (where, split)  # In one split only.
        seen[where] = record
    assert {k: v for k, v in seen.items() if v is not SKIP} == expected
    assert {k for k, v in seen.items() if v is SKIP} == skipped


# --- Parquet and Arrow files (korani_tasks/p3/hf_folder.py). ---

_TABLE_ROWS = st.lists(st.fixed_dictionaries({
    "text": JSON_TEXT, "n": INTS, "tags": st.lists(JSON_TEXT, max_size=3)}),
    min_size=1, max_size=30)


def _write_table(path: pathlib.Path, rows, file_format: str) -> None:
  table = pa.Table.from_pylist(rows)
  if file_format == "parquet":
    pq.write_table(table, path, row_group_size=7)
  else:
    with pa.OSFile(str(path), "wb") as sink:
      new = pa.ipc.new_stream if file_format == "stream" else pa.ipc.new_file
      with new(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=7):
          writer.write_batch(batch)


def _read_table(path: pathlib.Path):
  try:
    return [record for _, record in hf_folder.read_hf_files("train", [path])]
  except DataFormatError as e:
    return e


@pytest.mark.parametrize("file_format", ["parquet", "stream", "file"])
@hypothesis.given(rows=_TABLE_ROWS, data=st.data())
def test_parquet_and_arrow_read_back_or_fail_when_truncated(
    file_format, rows, data):
  suffix = ".parquet" if file_format == "parquet" else ".arrow"
  with folder() as d:
    path = d / f"train{suffix}"
    _write_table(path, rows, file_format)
    assert _read_table(path) == rows
    content = path.read_bytes()
    cut = data.draw(st.integers(0, len(content) - 1), label="cut")
    path.write_bytes(content[:cut])
    result = _read_table(path)
    assert isinstance(result, DataFormatError), (cut, len(content), result)
    assert result.path == str(path)


def test_every_reader_has_a_spec():
  """Every raw dataset's files and every P3 reader are fuzzed here."""
  covered = {"kobest_boolq", "kobest_copa", "kobest_hellaswag",
             "kobest_sentineg", "kobest_wic", "beep_hate", "curse_detection",
             "unsmile", "apeach", "sae4k", "stylekqc", "klue_nli", "klue_sts",
             "klue_tc", "klue_mrc", "korquad1", "kornli", "kor_sts",
             "naver_movie", "naver_shopping", "kor_ss", "question_pair",
             "parakqc"}
  assert covered == set(readers.RAW_DATASETS)
  p3_covered = {"super_glue/rte", "super_glue/cb", "super_glue/copa",
                "super_glue/wic", "super_glue/wsc.fixed", "super_glue/boolq",
                "anli", "hellaswag", "winogrande/winogrande_xl",
                "rotten_tomatoes", "story_cloze/2016", "ag_news", "trec"}
  with_reader = {k for k, s in p3_base.P3_SOURCES.items()
                 if not isinstance(s, hf_folder.HfFolderSource)}
  assert p3_covered == with_reader
