"""Readers for four KLUE v1.1 tasks (NLI, STS, TC, MRC) in their JSON files.

KLUE (Park et al., 2021) is released at https://github.com/KLUE-benchmark/KLUE
(``klue_benchmark/<task>-v1.1/<task>-v1.1_{train,dev}.json``). NLI, STS and
YNAT files are a JSON list of records; MRC is SQuAD-like (``{"version": ...,
"data": [{"title", "paragraphs": [{"context", "qas": [...]}], ...}]}``). The
dev file is the ``validation`` split; KLUE's test sets are not public.

Each reader yields ``(key, record)`` pairs where ``key`` is the record's
``guid`` (unique within a file; a repeated guid is an error) and ``record``
uses the field names of the Hugging Face ``klue`` dataset where it has them.
Text is kept exactly as in the file. Every malformed record (missing key,
wrong type, unknown label) raises `korani_tasks.errors.DataFormatError`
naming the file and the record by its JSON path and guid, e.g.::

    .../klue-nli-v1.1_dev.json: [17] (guid 'klue-nli-v1_dev_00017'): unknown
    label 'maybe' in 'gold_label' (expected one of: entailment, neutral,
    contradiction)

JSON has no meaningful line number for a record, so the error's ``line`` is
None, except for invalid JSON, where it is the line of the syntax error.

KLUE MRC has unanswerable questions (``is_impossible`` true, no answer, only
``plausible_answers``). They cannot give an extractive target, so the reader
skips them, logs how many it skipped per file, and says so in the split note
(``MRC_SPLIT_NOTE``); every record it yields has at least one answer, and an
answerable question without answers is an error. An answer whose
``answer_start`` does not point at its text in the context is kept and
counted: the reader logs a warning with the count (`SpanCheck`).
"""

from collections.abc import Iterator, Mapping, Sequence
import json
import logging
import os
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import catalog
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks import storage

_log = logging.getLogger(__name__)

Record = dict[str, Any]

# KLUE file name of each split, by TFDS/seqio split name.
SPLIT_FILES = {"train": "train", "validation": "dev"}

NLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}
STS_BINARY_LABELS = {0: 0, 1: 1}  # dissimilar, similar
# YNAT's Korean topic names, in the catalog's label order: it_science,
# economy, society, culture, world, sports, politics (also the order of the
# Hugging Face `klue/ynat` ClassLabel).
TC_LABELS = {"IT과학": 0, "경제": 1, "사회": 2, "생활문화": 3, "세계": 4,
             "스포츠": 5, "정치": 6}

MRC_SPLIT_NOTE = (
    "KLUE's own train/dev split (dev = validation). Unanswerable questions "
    "(is_impossible: true, which have no answer span) are left out, and "
    "their number is logged per file; every record has at least one answer, "
    "so is_impossible is always 0.")

_JSON_TYPES = {str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", list: "a list", dict: "an object"}


# --- JSON helpers, shared with the KorQuAD reader. ---


def load_json(path: os.PathLike | str) -> Any:
  """Parses a UTF-8 JSON file (a BOM is accepted).

  Raises:
    DataFormatError: the file is not UTF-8 or not valid JSON (with the line
      of the syntax error).
  """
  try:
    text = storage.path(path).read_bytes().decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise DataFormatError(
        path, None,
        f"not valid UTF-8 (bad byte at offset {e.start}); the file must be "
        "UTF-8") from None
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise DataFormatError(
        path, e.lineno, f"not valid JSON: {e.msg} (column {e.colno})") from None


def load_json_list(path: os.PathLike | str) -> list[Any]:
  """Parses a JSON file that must be a non-empty list of objects."""
  data = load_json(path)
  if not isinstance(data, list):
    raise DataFormatError(
        path, None, f"expected a JSON list of records, got "
        f"{_JSON_TYPES.get(type(data), type(data).__name__)}")
  if not data:
    raise DataFormatError(path, None, "the list of records is empty")
  return data


def get(obj: Any, key: str, kind: type, path: os.PathLike | str,
        where: str) -> Any:
  """``obj[key]``, which must exist and be of JSON type `kind`.

  `kind` is str, int, float (an int is accepted and converted), bool, list or
  dict; a JSON boolean is never accepted as a number.

  Raises:
    DataFormatError: naming the file, the record (`where`) and the key.
  """
  if not isinstance(obj, dict):
    raise DataFormatError(
        path, None, f"{where}: expected an object, got "
        f"{_JSON_TYPES.get(type(obj), type(obj).__name__)}")
  if key not in obj:
    raise DataFormatError(
        path, None, f"{where}: missing key {key!r}; the record has "
        f"{sorted(obj)}")
  value = obj[key]
  ok = isinstance(value, kind) and not (
      kind in (int, float) and isinstance(value, bool))
  if kind is float and isinstance(value, int) and not isinstance(value, bool):
    ok, value = True, float(value)
  if not ok:
    raise DataFormatError(
        path, None, f"{where}: {key!r} must be {_JSON_TYPES[kind]}, got "
        f"{value!r}")
  return value


def choice(value: Any, allowed: Mapping[Any, int], path: os.PathLike | str,
           where: str, key: str) -> int:
  """``allowed[value]``; an unknown value raises DataFormatError."""
  if isinstance(value, bool) or value not in allowed:
    raise DataFormatError(
        path, None, f"{where}: unknown label {value!r} in {key!r} "
        f"(expected one of: {', '.join(map(str, allowed))})")
  return allowed[value]


def _records(path: os.PathLike | str) -> Iterator[tuple[str, str, Record]]:
  """Yields (guid, where, record) for each record of a KLUE JSON list."""
  seen = set()
  for index, record in enumerate(load_json_list(path)):
    guid = get(record, "guid", str, path, f"[{index}]")
    where = f"[{index}] (guid {guid!r})"
    if guid in seen:
      raise DataFormatError(path, None, f"{where}: repeated guid")
    seen.add(guid)
    yield guid, where, record


def iter_squad(
    path: os.PathLike | str, id_key: str
) -> Iterator[tuple[str, str, Mapping[str, Any], Mapping[str, Any],
                    Mapping[str, Any]]]:
  """Walks a SQuAD-format file: yields (id, where, article, paragraph, qa).

  `id_key` names the question id ('id' in SQuAD/KorQuAD, 'guid' in KLUE MRC);
  ids must be unique in the file. ``where`` is the question's JSON path and
  id, e.g. ``"data[3].paragraphs[1].qas[0] (id '6548850-0-0')"``.
  """
  data = load_json(path)
  articles = get(data, "data", list, path, "top level")
  if not articles:
    raise DataFormatError(path, None, "'data' is an empty list")
  seen = set()
  for a, article in enumerate(articles):
    where_a = f"data[{a}]"
    for p, paragraph in enumerate(
        get(article, "paragraphs", list, path, where_a)):
      where_p = f"{where_a}.paragraphs[{p}]"
      for q, qa in enumerate(get(paragraph, "qas", list, path, where_p)):
        where_q = f"{where_p}.qas[{q}]"
        qid = get(qa, id_key, str, path, where_q)
        where = f"{where_q} ({id_key} {qid!r})"
        if qid in seen:
          raise DataFormatError(path, None, f"{where}: repeated {id_key}")
        seen.add(qid)
        yield qid, where, article, paragraph, qa


def answer_spans(
    qa: Mapping[str, Any], path: os.PathLike | str, where: str,
    key: str = "answers") -> tuple[list[str], list[int]]:
  """The texts and answer_start offsets of ``qa[key]`` (a list of objects)."""
  texts, starts = [], []
  for i, answer in enumerate(get(qa, key, list, path, where)):
    where_i = f"{where}: {key}[{i}]"
    texts.append(get(answer, "text", str, path, where_i))
    start = get(answer, "answer_start", int, path, where_i)
    if start < 0:
      raise DataFormatError(
          path, None, f"{where_i}: negative answer_start {start}")
    starts.append(start)
  return texts, starts


def check_answer_spans(context: str, texts: Sequence[str],
                       starts: Sequence[int]) -> int:
  """How many answers do not occur in `context` at their answer_start."""
  return sum(context[s:s + len(t)] != t for t, s in zip(texts, starts))


class SpanCheck:
  """Counts the answers of a file that are not at their answer_start."""

  def __init__(self, dataset: str, path: os.PathLike | str):
    self.dataset = dataset
    self.path = path
    self.num_answers = 0
    self.num_mismatched = 0
    self.ids: list[str] = []  # Of the questions with a mismatched answer.

  def add(self, qid: str, context: str, texts: Sequence[str],
          starts: Sequence[int]) -> None:
    self.num_answers += len(texts)
    mismatched = check_answer_spans(context, texts, starts)
    if mismatched:
      self.num_mismatched += mismatched
      self.ids.append(qid)

  def log(self) -> None:
    """Logs a warning if some answers are not at their answer_start."""
    if self.num_mismatched:
      _log.warning(
          "%s: %d of %d answers in %s are not at their answer_start in the "
          "context (kept as they are); question ids: %s%s", self.dataset,
          self.num_mismatched, self.num_answers, self.path,
          ", ".join(self.ids[:10]), ", ..." if len(self.ids) > 10 else "")


# --- The KLUE readers. ---


def read_klue_nli(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KLUE NLI; ``label`` is gold_label (annotators' labels not kept).

  Example record (key ``"klue-nli-v1_dev_00000"``)::

      {"guid": "klue-nli-v1_dev_00000", "source": "airbnb",
       "premise": "흡연자분들은 발코니가 있는 방이면 발코니에서 흡연이 가능합니다.",
       "hypothesis": "어떤 방에서도 흡연은 금지됩니다.",
       "label": 2}  # 0 entailment, 1 neutral, 2 contradiction
  """
  for guid, where, r in _records(path):
    yield guid, {
        "guid": guid,
        "source": get(r, "source", str, path, where),
        "premise": get(r, "premise", str, path, where),
        "hypothesis": get(r, "hypothesis", str, path, where),
        "label": choice(get(r, "gold_label", str, path, where), NLI_LABELS,
                        path, where, "gold_label"),
    }


def read_klue_sts(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KLUE STS; the annotations are not kept.

  ``score`` is ``labels.label`` (the rounded mean of the annotators' 0-5
  scores), ``real_score`` is ``labels.real-label`` (the exact mean) and
  ``label`` is ``labels.binary-label`` (1 where score >= 3). Example record::

      {"guid": "klue-sts-v1_dev_00000", "source": "airbnb-rtt",
       "sentence1": "무엇보다도 호스트분들이 너무 친절하셨습니다.",
       "sentence2": "무엇보다도, 호스트들은 매우 친절했습니다.",
       "score": 4.9, "real_score": 4.857142857142857,
       "label": 1}  # 0 dissimilar, 1 similar
  """
  for guid, where, r in _records(path):
    labels = get(r, "labels", dict, path, where)
    where_l = f"{where}: labels"
    score = get(labels, "label", float, path, where_l)
    real_score = get(labels, "real-label", float, path, where_l)
    for name, value in (("label", score), ("real-label", real_score)):
      if not 0.0 <= value <= 5.0:
        raise DataFormatError(
            path, None, f"{where_l}: {name!r} is {value}, not in [0, 5]")
    yield guid, {
        "guid": guid,
        "source": get(r, "source", str, path, where),
        "sentence1": get(r, "sentence1", str, path, where),
        "sentence2": get(r, "sentence2", str, path, where),
        "score": score,
        "real_score": real_score,
        "label": choice(get(labels, "binary-label", int, path, where_l),
                        STS_BINARY_LABELS, path, where_l, "binary-label"),
    }


def read_klue_tc(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads KLUE TC (YNAT, news headline topics); annotations are not kept.

  ``label`` is the Korean topic name in the file mapped to the catalog order
  (`TC_LABELS`). Example record::

      {"guid": "ynat-v1_dev_00000",
       "title": "5억원 무이자 융자는 되고 7천만원 이사비는 안된다",
       "label": 2,  # 사회 = society
       "url": "https://news.naver.com/...", "date": "2016.05.10. 오후 3:28"}
  """
  for guid, where, r in _records(path):
    yield guid, {
        "guid": guid,
        "title": get(r, "title", str, path, where),
        "label": choice(get(r, "label", str, path, where), TC_LABELS, path,
                        where, "label"),
        "url": get(r, "url", str, path, where),
        "date": get(r, "date", str, path, where),
    }


def read_klue_mrc(path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads the answerable questions of KLUE MRC (see the module docstring).

  ``answers``/``answer_start`` list every gold answer (dev questions may have
  several, e.g. '5개' and '5' at the same offset). ``question_type`` is 1
  (paraphrase), 2 (multi-sentence reasoning) or 3 (unanswerable, which are
  skipped). Example record::

      {"guid": "klue-mrc-v1_dev_00001", "title": "...", "context": "...",
       "question": "...", "question_type": 1, "is_impossible": 0,
       "answers": ["5개", "5"], "answer_start": [318, 318]}
  """
  num_questions, skipped = 0, 0
  spans = SpanCheck("klue_mrc", path)
  for guid, where, article, paragraph, qa in iter_squad(path, "guid"):
    num_questions += 1
    title = get(article, "title", str, path, where)
    context = get(paragraph, "context", str, path, where)
    question = get(qa, "question", str, path, where)
    question_type = get(qa, "question_type", int, path, where)
    is_impossible = get(qa, "is_impossible", bool, path, where)
    texts, starts = answer_spans(qa, path, where)
    if is_impossible:
      skipped += 1
      continue
    if not texts:
      raise DataFormatError(
          path, None, f"{where}: an answerable question (is_impossible: "
          "false) with no answers")
    spans.add(guid, context, texts, starts)
    yield guid, {
        "guid": guid,
        "title": title,
        "context": context,
        "question": question,
        "question_type": question_type,
        "is_impossible": int(is_impossible),
        "answers": texts,
        "answer_start": starts,
    }
  _log.info("klue_mrc: skipped %d of %d questions in %s: unanswerable "
            "(is_impossible)", skipped, num_questions, path)
  spans.log()


_READERS = {
    "klue_nli": ("klue-nli-v1.1", read_klue_nli, {
        "guid": tf.string, "source": tf.string, "premise": tf.string,
        "hypothesis": tf.string}),
    "klue_sts": ("klue-sts-v1.1", read_klue_sts, {
        "guid": tf.string, "source": tf.string, "sentence1": tf.string,
        "sentence2": tf.string, "score": tf.float32,
        "real_score": tf.float32}),
    "klue_tc": ("ynat-v1.1", read_klue_tc, {
        "guid": tf.string, "title": tf.string, "url": tf.string,
        "date": tf.string}),
    "klue_mrc": ("klue-mrc-v1.1", read_klue_mrc, {
        "guid": tf.string, "title": tf.string, "context": tf.string,
        "question": tf.string, "question_type": tf.int32,
        "is_impossible": tf.int32,
        "answers": tfds.features.Sequence(tf.string),
        "answer_start": tfds.features.Sequence(tf.int32)}),
}


def split_files(name: str) -> dict[str, tuple[str, ...]]:
  """The file of each split, as in the catalog.

  Example: ``split_files("klue_nli")["validation"]`` is
  ``("klue_nli/klue-nli-v1.1_dev.json",)``.
  """
  stem = _READERS[name][0]
  return {split: (f"{name}/{stem}_{suffix}.json",)
          for split, suffix in SPLIT_FILES.items()}


def _raw_dataset(name: str) -> base.RawDataset:
  _, reader, features = _READERS[name]

  def read(split, split_paths):
    del split  # One file per split.
    yield from reader(split_paths[0])

  if catalog.get(name).labels:  # NLU: a ClassLabel named by the catalog.
    features = {**features, "label": base.label_feature(name)}
  return base.RawDataset(
      name=name, split_files=split_files(name), read=read, features=features,
      split_note=MRC_SPLIT_NOTE if name == "klue_mrc" else "")


for _name in _READERS:
  base.register(_raw_dataset(_name))
