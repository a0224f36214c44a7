"""Tests of the KorSS, Question Pair and ParaKQC readers (paraphrase.py).

The real-file tests read the shared files (skipped where absent) and check,
besides counts, which source label means "the same meaning" and that the
splits made here are deterministic, disjoint and keep every sentence (KorSS,
Question Pair validation) or paraphrase set (ParaKQC) in one split. The
malformed-input tests write small files of their own.
"""

import collections
import csv
import re

import pytest

from korani_tasks import sources
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import RAW_DATASETS
from korani_tasks.readers import paraphrase
from korani_tasks.readers import splits

SPLITS = ("train", "validation", "test")
NAMES = ("kor_ss", "question_pair", "parakqc")

ROWS = {
    "kor_ss": {"train": 12055, "validation": 1529, "test": 1720},
    "question_pair": {"train": 6183, "validation": 705, "test": 688},
    "parakqc": {"train": 15924, "validation": 1960, "test": 2074},
}
LABELS = {  # (not_paraphrase, paraphrase) per split.
    "kor_ss": {"train": (6971, 5084), "validation": (835, 694),
               "test": (953, 767)},
    "question_pair": {"train": (1922, 4261), "validation": (216, 489),
                      "test": (329, 359)},
    "parakqc": {"train": (7962, 7962), "validation": (980, 980),
                "test": (1037, 1037)},
}
FRACTIONS = {
    "kor_ss": {"train": 0.8, "validation": 0.1, "test": 0.1},
    "question_pair": {"train": 0.9, "validation": 0.1},
}


def _read(raw_data_dir, name, split):
  raw = RAW_DATASETS[name]
  return list(raw.read(split, raw.paths(raw_data_dir, split)))


@pytest.fixture(scope="module")
def rows(raw_data_dir):
  """{name: {split: [(key, record)]}} of the shared files, read once."""
  return {name: {split: _read(raw_data_dir, name, split) for split in SPLITS}
          for name in NAMES}


def _norm(text):
  return " ".join(text.split())


def _sentences(record):
  return {_norm(v) for k, v in record.items()
          if k.startswith(("sentence", "question"))}


def _write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(text.encode("utf-8"))
  return path


def _assert_error_at(excinfo, path, line):
  assert (excinfo.value.path, excinfo.value.line) == (str(path), line)


# --- All three. ---


@pytest.mark.parametrize("name", NAMES)
def test_counts_and_labels(rows, name):
  for split in SPLITS:
    records = [r for _, r in rows[name][split]]
    assert len(records) == ROWS[name][split], split
    counts = collections.Counter(r["label"] for r in records)
    assert (counts[0], counts[1]) == LABELS[name][split], split
  assert RAW_DATASETS[name].info.labels == ("not_paraphrase", "paraphrase")


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_deterministic_and_disjoint(raw_data_dir, rows, name):
  keys = {}
  for split in SPLITS:
    again = _read(raw_data_dir, name, split)
    assert again == rows[name][split]
    keys[split] = [k for k, _ in again]
    assert len(set(keys[split])) == len(keys[split])
  if name != "question_pair":  # Its test split is another file.
    assert not set(keys["train"]) & set(keys["validation"])
    assert not set(keys["train"]) & set(keys["test"])
    assert not set(keys["validation"]) & set(keys["test"])


@pytest.mark.parametrize("name", ("kor_ss", "question_pair"))
def test_split_proportions(rows, name):
  sizes = {s: len(rows[name][s]) for s in FRACTIONS[name]}
  total = sum(sizes.values())
  for split, fraction in FRACTIONS[name].items():
    assert abs(sizes[split] / total - fraction) <= 0.02, (split, sizes)


@pytest.mark.parametrize("name", ("kor_ss", "question_pair"))
def test_no_sentence_in_two_made_splits(rows, name):
  made = [s for s in SPLITS if s in FRACTIONS[name]]
  seen = {s: set().union(*(_sentences(r) for _, r in rows[name][s]))
          for s in made}
  for i, a in enumerate(made):
    for b in made[i + 1:]:
      assert not seen[a] & seen[b], (a, b)


def test_sentence_groups_do_not_depend_on_order():
  pairs = [("a", "b"), ("c", "d"), ("b ", "e"), ("f", "c"), ("g", "g")]
  assert paraphrase.sentence_groups(pairs) == ["a", "c", "a", "c", "g"]
  assert paraphrase.sentence_groups(pairs[::-1]) == ["g", "c", "a", "c", "a"]


@pytest.fixture(scope="module")
def prepared(raw_data_dir, tmp_path_factory):
  tfds_dir = tmp_path_factory.mktemp("tfds")
  return {name: sources.KoraniTfdsSource(name, SPLITS, tfds_data_dir=tfds_dir)
          for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_prepares_through_tfds(prepared, name):
  assert {s: prepared[name].num_input_examples(s) for s in SPLITS} == (
      ROWS[name])


def test_parakqc_tfds_records_match_reader(prepared, rows):
  got = sorted(
      tuple(v.decode() if isinstance(v, bytes) else int(v)
            for _, v in sorted(ex.items()))
      for ex in prepared["parakqc"].get_dataset(
          "validation", shuffle=False).as_numpy_iterator())
  want = sorted(tuple(v for _, v in sorted(r.items()))
                for _, r in rows["parakqc"]["validation"])
  assert got == want


# --- KorSS. ---


def test_korss_one_means_same_meaning(rows):
  """Pairs equal up to spaces and final ?/. punctuation are all label 1."""
  strip = lambda s: re.sub(r"[?.]+$", "", s.replace(" ", ""))
  near = [r["label"] for split in SPLITS for _, r in rows["kor_ss"][split]
          if strip(r["sentence1"]) == strip(r["sentence2"])]
  assert collections.Counter(near) == {1: 102}
  first = rows["kor_ss"]
  records = {k: r for split in SPLITS for k, r in first[split]}
  assert records["test_data:1"] == {
      "sentence1": "시각디자인, 산업디자인 차이점",
      "sentence2": "시각디자인 산업디자인 차이점!", "label": 1}
  assert records["test_data:2"]["label"] == 0


def test_korss_keys_cover_every_line(rows):
  keys = {k for split in SPLITS for k, _ in rows["kor_ss"][split]}
  assert keys == {f"test_data:{line}" for line in range(1, 15305)}


def test_korss_quotes_are_kept(raw_data_dir, rows):
  text = (raw_data_dir / "korss" / "test_data").read_text(encoding="utf-8")
  quotes = sum(r["sentence1"].count('"') + r["sentence2"].count('"')
               for split in SPLITS for _, r in rows["kor_ss"][split])
  assert quotes == text.count('"') > 0


def _korss_files(tmp_path, data, labels):
  return (_write(tmp_path / "test_data", data),
          _write(tmp_path / "test_label", labels))


def test_korss_crlf_and_trailing_newline(tmp_path):
  data, labels = _korss_files(tmp_path, "가\t나\r\n다\t라\r\n", "1\r\n0")
  assert list(paraphrase.read_korss(data, labels)) == [
      ("test_data:1", {"sentence1": "가", "sentence2": "나", "label": 1}),
      ("test_data:2", {"sentence1": "다", "sentence2": "라", "label": 0})]


@pytest.mark.parametrize("data, labels, bad_file, line, message", [
    ("가\t나\n다\t라", "1\n2", "test_label", 2, "unknown label '2'"),
    ("가\t나\n다라", "1\n0", "test_data", 2, "expected 2 tab-separated"),
    ("가\t나\n다\t라\t마", "1\n0", "test_data", 2, "got 3 fields"),
    ("가\t나\n\t라", "1\n0", "test_data", 2, "empty sentence"),
    ("가\t나\n다\t라\n마\t바", "1\n0", "test_label", 3, "has 3 lines but"),
    ("가\t나", "1\n0", "test_data", 2, "has 1 lines but"),
    ("가\t나\n\n다\t라", "1\n0\n1", "test_data", 2, "blank line"),
])
def test_korss_malformed(tmp_path, data, labels, bad_file, line, message):
  data_path, label_path = _korss_files(tmp_path, data, labels)
  with pytest.raises(DataFormatError, match=message) as e:
    list(paraphrase.read_korss(data_path, label_path))
  _assert_error_at(e, tmp_path / bad_file, line)


# --- Question Pair. ---


def _csv_rows(path):
  with open(path, encoding="utf-8-sig", newline="") as f:
    return list(csv.reader(f))


def test_question_pair_zero_means_same_meaning(raw_data_dir, rows):
  """Identical questions have is_duplicate 0 in the CSVs (read raw here)."""
  folder = raw_data_dir / "question_pair"
  train = _csv_rows(folder / "kor_pair_train.csv")
  test = _csv_rows(folder / "kor_Pair_test.csv")
  assert train[0] == ["id", "qid1", "qid2", "question1", "question2",
                      "is_duplicate"]
  assert test[0] == ["test_id", "question1", "question2", "is_duplicate", ""]
  identical = collections.Counter(r[5] for r in train[1:] if r[3] == r[4])
  assert identical == {"0": 937, "1": 2}
  identical = collections.Counter(r[3] for r in test[1:] if r[1] == r[2])
  assert identical == {"0": 7}
  # The reader maps them to label 1 (paraphrase).
  labels = collections.Counter(
      r["label"] for split in SPLITS for _, r in rows["question_pair"][split]
      if r["question1"] == r["question2"])
  assert labels == {1: 944, 0: 2}


def test_question_pair_txt_files_use_the_same_encoding(raw_data_dir):
  folder = raw_data_dir / "question_pair"
  counts = collections.Counter()
  for name, size in (("train.txt", 6136), ("validation.txt", 682),
                     ("test.txt", 758)):
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "question1\tquestion2\tis_duplicate"
    fields = [line.split("\t") for line in lines[1:]]
    assert len(fields) == size and all(len(f) == 3 for f in fields)
    counts.update(f[2] for f in fields if f[0] == f[1])
  assert counts == {"0": 944, "1": 2}


def test_question_pair_records(rows):
  train = dict(rows["question_pair"]["train"] + rows["question_pair"][
      "validation"])
  assert train["kor_pair_train.csv:4"] == {
      "id": 3, "question1": "10년만나다 헤어지네",
      "question2": "14년된 여자친구랑 이별", "label": 0}
  ids = sorted(r["id"] for r in train.values())
  assert ids == list(range(1, 6889))
  test = [r for _, r in rows["question_pair"]["test"]]
  assert [r["id"] for r in test] == list(range(1, 689))
  assert test[1] == {"id": 2, "question1": "2년 가량의 연애",
                     "question2": "2년 만났어", "label": 1}
  # A TAB inside a quoted field is kept (test_id 285).
  assert test[284]["question2"] == '가족끼리 "사랑해요"라는말 하는거 어색해\t'


def test_question_pair_unnamed_column_is_ignored(raw_data_dir, rows):
  test = _csv_rows(raw_data_dir / "question_pair" / "kor_Pair_test.csv")
  filled = [r for r in test[1:] if r[4]]
  assert filled == [["684", "회사에서 짤릴 필이 와",
                     "나 회사 짤릴 거 같은데 어떻게 만회하지", "0", "1"]]
  record = rows["question_pair"]["test"][683][1]
  assert (record["id"], record["label"]) == (684, 1)


TRAIN_HEADER = "\ufeffid,qid1,qid2,question1,question2,is_duplicate\n"


def test_question_pair_multiline_field(tmp_path):
  path = _write(tmp_path / "kor_pair_train.csv", TRAIN_HEADER
                + '1,1,2,"가,\n나",다,0\n2,3,4,라,"""마""",1\n')
  assert list(paraphrase.read_question_pair(path)) == [
      ("kor_pair_train.csv:2", {"id": 1, "question1": "가,\n나",
                                "question2": "다", "label": 1}),
      ("kor_pair_train.csv:4", {"id": 2, "question1": "라",
                                "question2": '"마"', "label": 0})]


@pytest.mark.parametrize("text, line, message", [
    (TRAIN_HEADER + "1,1,2,가,나,0\n2,3,4,다,라,2\n", 3,
     "unknown label '2' in column 'is_duplicate'"),
    (TRAIN_HEADER + "1,1,2,가,나,0\n2,3,4,다,0\n", 3,
     "expected 6 comma-separated fields, got 5"),
    (TRAIN_HEADER + "x,1,2,가,나,0\n", 2, "integer in column 'id'"),
    (TRAIN_HEADER + "1,1,2,가, ,0\n", 2, "empty question2"),
    (TRAIN_HEADER + '1,1,2,"가"나,다,0\n', 2, "bad CSV"),
    ("id,question1,is_duplicate\n1,가,0\n", 1, "missing column 'question2'"),
    (TRAIN_HEADER, 1, "no data rows"),
])
def test_question_pair_malformed(tmp_path, text, line, message):
  path = _write(tmp_path / "kor_pair_train.csv", text)
  with pytest.raises(DataFormatError, match=message) as e:
    list(paraphrase.read_question_pair(path))
  _assert_error_at(e, path, line)


# --- ParaKQC. ---


@pytest.fixture(scope="module")
def parakqc_sets(raw_data_dir):
  return paraphrase.read_parakqc_sets(
      raw_data_dir / "parakqc" / "paraKQC_v1.txt")


def test_parakqc_sets(parakqc_sets):
  assert len(parakqc_sets) == 1000
  assert sum(len(s.texts) for s in parakqc_sets) == 10000
  assert parakqc_sets[1].lines == tuple(range(11, 21))
  assert parakqc_sets[1].texts[0] == "지메일 쓸래, 네이버 메일 쓸래"
  assert collections.Counter(s.topic for s in parakqc_sets) == {
      0: 250, 1: 250, 2: 250, 3: 250}
  assert collections.Counter(s.act for s in parakqc_sets) == {
      0: 200, 1: 400, 2: 200, 3: 200}
  usable = paraphrase.usable_utterances(parakqc_sets)
  assert collections.Counter(len(u) for u in usable.values()) == {
      10: 987, 9: 11, 5: 2}


def test_parakqc_pairs_follow_the_sets(rows, parakqc_sets):
  texts = {s.set_id: set(s.texts) for s in parakqc_sets}
  by_id = {s.set_id: s for s in parakqc_sets}
  set_split = {}
  per_set = collections.Counter()
  for split in SPLITS:
    for key, r in rows["parakqc"][split]:
      assert r["sentence1"] in texts[r["set_1"]]
      assert r["sentence2"] in texts[r["set_2"]]
      assert r["sentence1"] != r["sentence2"]
      assert r["label"] == (r["set_1"] == r["set_2"])
      assert (r["topic_1"], r["act_1"]) == (by_id[r["set_1"]].topic,
                                            by_id[r["set_1"]].act)
      for set_id in (r["set_1"], r["set_2"]):
        assert set_split.setdefault(set_id, split) == split  # One split.
      owner = int(re.fullmatch(r"set(\d+):(pos|neg)\d", key).group(1))
      assert owner in (r["set_1"], r["set_2"])
      per_set[owner, r["label"]] += 1
  assert len(set_split) == 1000
  assert collections.Counter(set_split.values()) == {
      "train": 798, "validation": 98, "test": 104}
  assert all(set_split[i] == paraphrase.parakqc_set_split(i) for i in by_id)
  # Balanced per set: as many negatives as positives.
  assert all(per_set[i, 0] == per_set[i, 1] for i in by_id)
  assert collections.Counter(per_set[i, 1] for i in by_id) == {
      10: 987, 9: 11, 5: 2}


def test_parakqc_negatives_are_hard_and_never_linked_sets(rows):
  negatives = [r for split in SPLITS for _, r in rows["parakqc"][split]
               if r["label"] == 0]
  assert len(negatives) == 9979
  same = sum((r["topic_1"], r["act_1"]) == (r["topic_2"], r["act_2"])
             for r in negatives)
  assert same == 9969
  linked = {frozenset(p) for p in ((29, 36), (125, 126), (301, 399),
                                   (607, 608))}
  assert not [r for r in negatives
              if frozenset((r["set_1"], r["set_2"])) in linked]
  shared = {"남자친구 생일이 언제야?", "경재 메일은 열어보지마",
            "아버지, 거실이랑 안방 중에 조명 어디꺼 켜고 싶으신 거에요?"}
  assert not [r for split in SPLITS for _, r in rows["parakqc"][split]
              if {r["sentence1"], r["sentence2"]} & shared]


def test_parakqc_pairs_are_pinned(rows):
  """The drawn pairs do not change across runs, machines or Pythons."""
  train = dict(rows["parakqc"]["train"])
  assert train["set0:neg0"] == {
      "sentence1": "메일은 다 지울수도 있고, 안읽은거만 지울 수도 있어. 어떻게 할래?",
      "sentence2": "네이버에서 메일이랑 쪽지 중 뭐가 더 오래 보관 돼?",
      "set_1": 0, "set_2": 27, "topic_1": 0, "act_1": 0, "topic_2": 0,
      "act_2": 0, "label": 0}
  assert [k for k, _ in rows["parakqc"]["train"][:3]] == [
      "set0:pos0", "set0:pos1", "set0:pos2"]


def _parakqc_file(tmp_path, lines):
  return _write(tmp_path / "paraKQC_v1.txt", "\r\n".join(lines))


def _parakqc_lines(num_sets, topic=0, act=0):
  return [f"{topic}\t{act}\t세트{s} 문장{i}" for s in range(num_sets)
          for i in range(10)]


def test_parakqc_small_file(tmp_path):
  path = _parakqc_file(tmp_path, _parakqc_lines(30))
  sets = paraphrase.read_parakqc_sets(path)
  pairs = list(paraphrase.build_parakqc_pairs(sets, path))
  assert pairs == list(paraphrase.build_parakqc_pairs(sets, path))
  assert len(pairs) == 30 * 20
  for split, _, record in pairs:
    for set_id in (record["set_1"], record["set_2"]):
      assert paraphrase.parakqc_set_split(set_id) == split
  assert sum(splits.assign_split(f"parakqc-set:{i}") == "train"
             for i in range(30)) * 20 == sum(s == "train" for s, _, _ in pairs)


@pytest.mark.parametrize("change, line, message", [
    ({3: "4\t0\t문장"}, 4, "unknown label '4' in column 'topic'"),
    ({3: "0\tx\t문장"}, 4, "unknown label 'x' in column 'act'"),
    ({3: "0\t0"}, 4, "expected 3 tab-separated fields"),
    ({3: "0\t0\t "}, 4, "empty utterance"),
    ({13: "0\t1\t문장"}, 14, "differs from 0/0 on line 11"),
])
def test_parakqc_malformed(tmp_path, change, line, message):
  lines = _parakqc_lines(2)
  for index, text in change.items():
    lines[index] = text
  path = _parakqc_file(tmp_path, lines)
  with pytest.raises(DataFormatError, match=message) as e:
    paraphrase.read_parakqc_sets(path)
  _assert_error_at(e, path, line)


def test_parakqc_incomplete_set(tmp_path):
  path = _parakqc_file(tmp_path, _parakqc_lines(2)[:15])
  with pytest.raises(DataFormatError, match="not a multiple of 10") as e:
    paraphrase.read_parakqc_sets(path)
  _assert_error_at(e, path, 15)


def test_parakqc_split_with_one_set_cannot_draw_negatives(tmp_path):
  # Of sets 0-19, only set 6 goes to test: it has no set to pair with.
  path = _parakqc_file(tmp_path, _parakqc_lines(20))
  sets = paraphrase.read_parakqc_sets(path)
  assert [i for i in range(20)
          if paraphrase.parakqc_set_split(i) == "test"] == [6]
  with pytest.raises(DataFormatError, match="no other set in split test"):
    list(paraphrase.build_parakqc_pairs(sets, path))
