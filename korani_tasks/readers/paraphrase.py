"""Readers for the paraphrase sources KorSS, Question Pair and ParaKQC.

Every record is a sentence pair with ``label`` 1 (paraphrase: the two
sentences mean the same) or 0 (not_paraphrase), the catalog's label order.
Text is kept exactly as in the files (quotes, trailing spaces and, in one
Question Pair test row, a trailing TAB inside a quoted field included).

KorSS (https://github.com/yoongi0428/Kor-Sentence-Similarity, ``data/``):
``test_data`` has one pair ``sentence1<TAB>sentence2`` per line and
``test_label`` the pair's label (``0``/``1``) on the same line; both files have
15,304 lines, no header and no line end after the last line. ``1`` means the
same meaning: all 102 pairs whose sentences are equal up to spaces and a final
``?``/``.`` are labelled 1 (e.g. ``신용불량 해제에 대해..`` /
``신용불량해제에 대해서....``). Example record::

    {"sentence1": "화폐와 통화의 차이", "sentence2": "화폐와 통화의 차이를 알려주세요",
     "label": 1}

The source is one set without a split. The same question is paired with
several others (11,359 distinct sentences in 15,304 pairs), so rows are split
by *group*: pairs that share a sentence (whitespace collapsed), directly or
through other pairs, form a group (1,977 groups of 1-54 pairs), and a group
goes to train/validation/test 80/10/10 by `splits.assign_split` of its
smallest sentence. No sentence is in two splits (split by line number,
3,055 of the 3,065 validation/test pairs would share a sentence with train).
Keys: ``"test_data:<line>"``.

Question Pair (https://github.com/songys/Question_pair): the CSV files
``kor_pair_train.csv`` (UTF-8 with BOM; ``id,qid1,qid2,question1,question2,
is_duplicate``; 6,888 rows) and ``kor_Pair_test.csv`` (``test_id,question1,
question2,is_duplicate,`` -- the trailing comma makes a fifth, unnamed column;
688 rows). In this source ``is_duplicate`` 0 means the two questions mean the
SAME (label 1) and 1 means they differ (label 0): of the pairs whose two
questions are identical strings, 937 of 939 in the train CSV and all 7 in the
test CSV have is_duplicate 0, and the first train rows (``1000일 만난
여자친구와 이별`` / ``10년 연예의끝``) have 1. The repository's ``*.txt`` files
(another distribution: TSV ``question1 question2 is_duplicate``, 6,136 / 682 /
758 rows) use the same encoding (944 of their 946 pairs of identical
questions have 0); they are not read. The unnamed fifth column of the test
CSV is ignored: it is empty but in one row (test_id 684, ``1``, beside
is_duplicate 0). The train CSV gives
train and validation 90/10 by groups of pairs sharing a question, as for
KorSS (`splits.assign_split` of the group's smallest question, 6,705 groups);
the test CSV is the test split. Example record::

    {"id": 3, "question1": "10년만나다 헤어지네",
     "question2": "14년된 여자친구랑 이별", "label": 0}

ParaKQC (https://github.com/warnikchow/paraKQC, ``data/paraKQC_v1.txt``):
10,000 lines ``topic<TAB>act<TAB>utterance`` (CRLF, no header), 1,000 *sets*
of 10 paraphrases in consecutive lines: set ``s`` is lines ``10s+1`` to
``10s+10``. There is no set id column: ``topic`` (0 e-mail, 1 scheduling,
2 smart home, 3 weather) and ``act`` (0 alternative question, 1 wh-question,
2 prohibition, 3 strong requirement) are constant within a set and shared by
50-100 sets (the dataset's own pair builder, ``mkdata.py``, uses the same
10-line sets). The reader builds pairs:

* the usable utterances of a set are its distinct texts (whitespace collapsed)
  that occur in no other set -- the file has four pairs of sets that share
  utterances by a copying slip (sets 29/36, 125/126, 607/608, and 301/399,
  which ask the same question), so such a text could be either label;
* with ``n`` usable utterances in a fixed pseudo-random order ``u_0..u_n-1``,
  the positives are ``(u_k, u_k+1 mod n)``: ``n`` pairs, every utterance in two
  of them (one pair if ``n`` is 2);
* as many negatives: ``u_k`` with an utterance of another set of the same
  split, preferably one of the same topic and act (a hard negative: e.g. "is
  Gmail or Naver bigger?" against "shall I use Gmail or Naver?"), else of the
  same topic, else any; sets that share an utterance are never paired;
* the order of the two sentences of every pair is drawn too.

So a set gives ``2n`` pairs: 20 for the 987 sets of 10 usable utterances, 18
for the 11 with 9 (5 sets repeat an utterance, 6 share one with another set)
and 10 for sets 607/608 (5 each): 19,958 pairs, 15,924 / 1,960 / 2,074 in
train/validation/test, half of them positive in every split; 9,969 of the
9,979 negatives share topic and act. Every choice is drawn from
``sha256("korani-v1:parakqc:<set>:<what>:<k>")``, so the pairs are the same
on every machine and Python version. Sets go to train/validation/test 80/10/10
by `splits.assign_split("parakqc-set:<set>")` (798 / 98 / 104 sets); both
sentences of a pair come from that split's sets. Keys: ``"set<set>:pos<k>"``
and ``"set<set>:neg<k>"``.
Example record::

    {"sentence1": "메일은 다 지울수도 있고, 안읽은거만 지울 수도 있어. 어떻게 할래?",
     "sentence2": "네이버에서 메일이랑 쪽지 중 뭐가 더 오래 보관 돼?",
     "set_1": 0, "set_2": 27, "topic_1": 0, "act_1": 0, "topic_2": 0,
     "act_2": 0, "label": 0}  # key "set0:neg0"; 0 = not_paraphrase

Every malformed line (wrong field count, unknown label or id, empty text,
files of different lengths, a set whose lines disagree on topic/act) raises
`korani_tasks.errors.DataFormatError` naming the file and line.
"""

from collections.abc import Iterable, Iterator, Sequence
import csv
import dataclasses
import hashlib
import io
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

KORSS_FILES = ("korss/test_data", "korss/test_label")
QUESTION_PAIR_TRAIN = "question_pair/kor_pair_train.csv"
QUESTION_PAIR_TEST = "question_pair/kor_Pair_test.csv"
PARAKQC_FILE = "parakqc/paraKQC_v1.txt"

KORSS_SPLIT_NOTE = (
    "The source has no split: pairs that share a sentence (directly or "
    "through other pairs) form a group, and groups are assigned "
    "train/validation/test 80/10/10 by sha256('korani-v1:<smallest sentence "
    "of the group>') (korani_tasks.readers.splits), so no sentence is in two "
    "splits.")
QUESTION_PAIR_SPLIT_NOTE = (
    "train and validation are kor_pair_train.csv split 90/10 by groups of "
    "pairs that share a question, by sha256('korani-v1:<smallest question of "
    "the group>'); test is kor_Pair_test.csv.")
PARAKQC_SPLIT_NOTE = (
    "Pairs built from the 1,000 paraphrase sets of 10 consecutive lines: per "
    "set, n positive pairs within the set and n negatives with another set "
    "of the same split (same topic and act where possible), drawn by "
    "sha256; sets are assigned train/validation/test 80/10/10 by "
    "sha256('korani-v1:parakqc-set:<set>') (korani_tasks.readers.splits).")

QUESTION_PAIR_FRACTIONS = (("train", 0.9), ("validation", 0.1))
PARAKQC_SET_SIZE = 10

_BINARY = {"0": 0, "1": 1}
# Question Pair's is_duplicate: 0 = the same meaning (see the docstring).
_IS_DUPLICATE = {"0": 1, "1": 0}
_PARAKQC_IDS = {str(i): i for i in range(4)}
_BOM = "\ufeff"


def _lines(path: os.PathLike | str) -> list[tuple[int, str]]:
  """(1-based line number, text) of every line (see `tsv.read_lines`)."""
  return list(tsv.read_lines(path))


def _norm(text: str) -> str:
  """A text with its whitespace collapsed, for comparing sentences."""
  return " ".join(text.split())


def sentence_groups(pairs: Sequence[tuple[str, str]]) -> list[str]:
  """For each pair, the id of its group of pairs linked by shared sentences.

  Sentences are compared with whitespace collapsed; a group's id is its
  smallest such sentence, so it does not depend on the order of the pairs.
  """
  parent: dict[str, str] = {}

  def find(x: str) -> str:
    root = x
    while parent.setdefault(root, root) != root:
      root = parent[root]
    while parent[x] != root:
      parent[x], x = root, parent[x]
    return root

  normalized = [(_norm(a), _norm(b)) for a, b in pairs]
  for a, b in normalized:
    root_a, root_b = find(a), find(b)
    if root_a != root_b:
      parent[max(root_a, root_b)] = min(root_a, root_b)
  smallest: dict[str, str] = {}
  for a, b in normalized:
    root = find(a)
    smallest[root] = min(smallest.get(root, root), a, b)
  return [smallest[find(a)] for a, _ in normalized]


# --- KorSS. ---


def read_korss(
    data_path: os.PathLike | str,
    label_path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads every KorSS pair (all splits), in file order.

  Yields:
    ``("test_data:<line>", {"sentence1", "sentence2", "label"})``.

  Raises:
    DataFormatError: a line of ``test_data`` without exactly one TAB or with
      an empty sentence, a label other than 0/1, or files of different
      lengths.
  """
  data = _lines(data_path)
  labels = _lines(label_path)
  for (line, text), (label_line, label) in zip(data, labels):
    if line != label_line:
      raise DataFormatError(
          label_path, label_line,
          f"line numbers of {data_path} and {label_path} disagree")
    fields = text.split("\t")
    if len(fields) != 2:
      raise DataFormatError(
          data_path, line,
          f"expected 2 tab-separated sentences, got {len(fields)} fields")
    if not all(f.strip() for f in fields):
      raise DataFormatError(data_path, line, "empty sentence")
    yield base.file_key(data_path, line), {
        "sentence1": fields[0],
        "sentence2": fields[1],
        "label": tsv.parse_choice(label.strip(), _BINARY, label_path, line,
                                  "label", shown=label),
    }
  if len(data) != len(labels):
    shorter, longer = ((data_path, labels) if len(data) < len(labels)
                       else (label_path, data))
    raise DataFormatError(
        shorter, longer[min(len(data), len(labels))][0],
        f"{data_path} has {len(data)} lines but {label_path} has "
        f"{len(labels)}: every pair needs one label")


def _read_korss_split(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  rows = list(read_korss(*paths))
  groups = sentence_groups(
      [(r["sentence1"], r["sentence2"]) for _, r in rows])
  for (key, record), group in zip(rows, groups):
    if splits.assign_split(group) == split:
      yield key, record


# --- Question Pair. ---


def _read_csv(
    path: os.PathLike | str, required_columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
  """Yields ``(line, row)`` of a CSV file with a header, row by header name.

  The line is where the record starts (a quoted field may span lines). An
  unnamed column is allowed (the trailing comma of kor_Pair_test.csv) and
  keyed ''.

  Raises:
    DataFormatError: not UTF-8, bad quoting, a missing or repeated column, a
      row with another number of fields than the header, a blank line
      followed by data, or no data rows.
  """
  data = storage.path(path).read_bytes()
  try:
    text = data.decode("utf-8").removeprefix(_BOM)
  except UnicodeDecodeError as e:
    raise DataFormatError(
        path, data[:e.start].count(b"\n") + 1,
        f"not valid UTF-8 (bad byte 0x{data[e.start]:02x})") from None
  reader = csv.reader(io.StringIO(text, newline=""), strict=True)
  try:
    header = next(reader, None)
    if not header:
      raise DataFormatError(path, 1, "empty file: expected a header row")
    tsv.check_header(header, required_columns, path)
    num_rows = 0
    first_blank = None
    previous_end = reader.line_num
    for fields in reader:
      line, previous_end = previous_end + 1, reader.line_num
      if not fields:
        first_blank = first_blank or line
        continue
      if first_blank:
        raise DataFormatError(path, first_blank,
                              "blank line in the middle of the data")
      if len(fields) != len(header):
        raise DataFormatError(
            path, line,
            f"expected {len(header)} comma-separated fields, got "
            f"{len(fields)}")
      num_rows += 1
      yield line, dict(zip(header, fields))
  except csv.Error as e:
    raise DataFormatError(path, reader.line_num, f"bad CSV: {e}") from None
  if not num_rows:
    raise DataFormatError(path, 1, "header but no data rows")


def read_question_pair(
    path: os.PathLike | str) -> Iterator[tuple[str, Record]]:
  """Reads kor_pair_train.csv (``id``) or kor_Pair_test.csv (``test_id``).

  Yields:
    ``("<file name>:<line>", {"id", "question1", "question2", "label"})``,
    label 1 where is_duplicate is 0 (see the module docstring).

  Raises:
    DataFormatError: as `_read_csv`; no ``id``/``test_id`` column, a
      non-integer id, an empty question or an is_duplicate other than 0/1.
  """
  rows = _read_csv(path, ("question1", "question2", "is_duplicate"))
  id_column = None
  for line, row in rows:
    if id_column is None:
      id_column = next((c for c in ("id", "test_id") if c in row), None)
      if id_column is None:
        raise DataFormatError(path, 1, "no 'id' or 'test_id' column")
    for column in ("question1", "question2"):
      if not row[column].strip():
        raise DataFormatError(path, line, f"empty {column}")
    yield base.file_key(path, line), {
        "id": tsv.parse_int(row[id_column], path, line, id_column),
        "question1": row["question1"],
        "question2": row["question2"],
        "label": tsv.parse_choice(row["is_duplicate"], _IS_DUPLICATE, path,
                                  line, "is_duplicate"),
    }


def _read_question_pair_split(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  if split == "test":
    yield from read_question_pair(paths[0])
    return
  rows = list(read_question_pair(paths[0]))
  groups = sentence_groups([(r["question1"], r["question2"]) for _, r in rows])
  for (key, record), group in zip(rows, groups):
    if splits.assign_split(group, fractions=QUESTION_PAIR_FRACTIONS) == split:
      yield key, record


# --- ParaKQC. ---


@dataclasses.dataclass(frozen=True)
class ParaSet:
  """One ParaKQC set: 10 consecutive lines that paraphrase each other."""
  set_id: int
  topic: int
  act: int
  lines: tuple[int, ...]  # 1-based line numbers
  texts: tuple[str, ...]


def read_parakqc_sets(path: os.PathLike | str) -> list[ParaSet]:
  """Reads paraKQC_v1.txt into its sets (see the module docstring).

  Raises:
    DataFormatError: a line without 3 fields, a topic or act not in 0-3, an
      empty utterance, a line count that is not a multiple of 10, or a set
      whose lines disagree on topic or act.
  """
  rows = []
  for line, text in _lines(path):
    fields = text.split("\t")
    if len(fields) != 3:
      raise DataFormatError(
          path, line,
          f"expected 3 tab-separated fields (topic, act, utterance), got "
          f"{len(fields)}")
    topic, act, utterance = fields
    if not utterance.strip():
      raise DataFormatError(path, line, "empty utterance")
    rows.append((
        line,
        tsv.parse_choice(topic, _PARAKQC_IDS, path, line, "topic"),
        tsv.parse_choice(act, _PARAKQC_IDS, path, line, "act"),
        utterance))
  if len(rows) % PARAKQC_SET_SIZE:
    raise DataFormatError(
        path, rows[-1][0],
        f"{len(rows)} utterances is not a multiple of {PARAKQC_SET_SIZE}: "
        "the file must be whole sets of 10 consecutive paraphrases")
  sets = []
  for set_id in range(len(rows) // PARAKQC_SET_SIZE):
    block = rows[set_id * PARAKQC_SET_SIZE:(set_id + 1) * PARAKQC_SET_SIZE]
    for line, topic, act, _ in block:
      if (topic, act) != block[0][1:3]:
        raise DataFormatError(
            path, line,
            f"topic/act {topic}/{act} differs from {block[0][1]}/"
            f"{block[0][2]} on line {block[0][0]}, the first line of set "
            f"{set_id} (lines {block[0][0]}-{block[-1][0]})")
    sets.append(ParaSet(
        set_id=set_id, topic=block[0][1], act=block[0][2],
        lines=tuple(r[0] for r in block), texts=tuple(r[3] for r in block)))
  return sets


def _draw(*parts: Any) -> int:
  """A stable pseudo-random number from ``sha256("korani-v1:parakqc:...")``."""
  seed = ":".join([splits.SEED, "parakqc", *map(str, parts)])
  return int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8],
                        "big")


def parakqc_set_split(set_id: int) -> str:
  return splits.assign_split(f"parakqc-set:{set_id}")


def usable_utterances(sets: Sequence[ParaSet]) -> dict[int, list[str]]:
  """Per set, its distinct utterances that occur in no other set, in order."""
  owners: dict[str, set[int]] = {}
  for s in sets:
    for text in s.texts:
      owners.setdefault(_norm(text), set()).add(s.set_id)
  usable = {}
  for s in sets:
    seen = set()
    usable[s.set_id] = []
    for text in s.texts:
      key = _norm(text)
      if key not in seen and owners[key] == {s.set_id}:
        seen.add(key)
        usable[s.set_id].append(text)
  return usable


def _linked_sets(sets: Sequence[ParaSet]) -> dict[int, set[int]]:
  """Per set, the other sets that share an utterance with it."""
  owners: dict[str, set[int]] = {}
  for s in sets:
    for text in s.texts:
      owners.setdefault(_norm(text), set()).add(s.set_id)
  linked = {s.set_id: set() for s in sets}
  for ids in owners.values():
    for i in ids:
      linked[i] |= ids - {i}
  return linked


def build_parakqc_pairs(
    sets: Sequence[ParaSet],
    path: os.PathLike | str = PARAKQC_FILE,
) -> Iterator[tuple[str, str, Record]]:
  """All ParaKQC pairs as ``(split, key, record)``, set by set.

  See the module docstring for how pairs are chosen.

  Raises:
    DataFormatError: (naming `path`) a set has no other set in its split to
      draw negatives from (only possible for a tiny file).
  """
  usable = usable_utterances(sets)
  linked = _linked_sets(sets)
  split_of = {s.set_id: parakqc_set_split(s.set_id) for s in sets}
  for s in sets:
    texts = usable[s.set_id]
    n = len(texts)
    if n < 2:
      continue
    order = sorted(range(n), key=lambda i, s=s: (_draw(s.set_id, "order", i),
                                                 i))
    num_pairs = n if n > 2 else 1
    split = split_of[s.set_id]
    others = [t for t in sets
              if t.set_id != s.set_id and split_of[t.set_id] == split
              and t.set_id not in linked[s.set_id] and usable[t.set_id]]
    candidates = (
        [t for t in others if (t.topic, t.act) == (s.topic, s.act)]
        or [t for t in others if t.topic == s.topic] or others)
    if not candidates:
      raise DataFormatError(
          path, s.lines[0],
          f"set {s.set_id} has no other set in split {split} to draw "
          "negatives from")
    for k in range(num_pairs):
      first, second = texts[order[k]], texts[order[(k + 1) % n]]
      if _draw(s.set_id, "pos_swap", k) % 2:
        first, second = second, first
      yield split, f"set{s.set_id}:pos{k}", _pair_record(
          first, second, s, s, 1)
    for k in range(num_pairs):
      other = candidates[_draw(s.set_id, "partner", k) % len(candidates)]
      pool = usable[other.set_id]
      other_text = pool[_draw(s.set_id, "utterance", k) % len(pool)]
      record = (_pair_record(texts[order[k]], other_text, s, other, 0)
                if _draw(s.set_id, "neg_swap", k) % 2 == 0 else
                _pair_record(other_text, texts[order[k]], other, s, 0))
      yield split, f"set{s.set_id}:neg{k}", record


def _pair_record(text_1: str, text_2: str, set_1: ParaSet, set_2: ParaSet,
                 label: int) -> Record:
  return {
      "sentence1": text_1, "sentence2": text_2,
      "set_1": set_1.set_id, "set_2": set_2.set_id,
      "topic_1": set_1.topic, "act_1": set_1.act,
      "topic_2": set_2.topic, "act_2": set_2.act,
      "label": label,
  }


def _read_parakqc_split(
    split: str, paths: Sequence[pathlib.Path]) -> Iterator[tuple[str, Record]]:
  for pair_split, key, record in build_parakqc_pairs(
      read_parakqc_sets(paths[0]), paths[0]):
    if pair_split == split:
      yield key, record


def _same_files(files: Iterable[str]) -> dict[str, tuple[str, ...]]:
  return {split: tuple(files) for split, _ in splits.DEFAULT_FRACTIONS}


_PAIR_FEATURES = {"sentence1": tf.string, "sentence2": tf.string}

base.register(base.RawDataset(
    name="kor_ss",
    split_files=_same_files(KORSS_FILES),
    read=_read_korss_split,
    features={**_PAIR_FEATURES, "label": base.label_feature("kor_ss")},
    split_note=KORSS_SPLIT_NOTE,
))

base.register(base.RawDataset(
    name="question_pair",
    split_files={"train": (QUESTION_PAIR_TRAIN,),
                 "validation": (QUESTION_PAIR_TRAIN,),
                 "test": (QUESTION_PAIR_TEST,)},
    read=_read_question_pair_split,
    features={"id": tf.int32, "question1": tf.string, "question2": tf.string,
              "label": base.label_feature("question_pair")},
    split_note=QUESTION_PAIR_SPLIT_NOTE,
))

base.register(base.RawDataset(
    name="parakqc",
    split_files=_same_files((PARAKQC_FILE,)),
    read=_read_parakqc_split,
    features={**_PAIR_FEATURES,
              **{f: tf.int32 for f in ("set_1", "set_2", "topic_1", "act_1",
                                       "topic_2", "act_2")},
              "label": base.label_feature("parakqc")},
    split_note=PARAKQC_SPLIT_NOTE,
))
