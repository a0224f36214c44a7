"""Tests of the hate-speech readers (BEEP!, Curse Detection, UnSmile, APEACH).

The real-file tests read the shared files (skipped where absent); the
malformed-input tests write small files in the canonical layouts to a tmp
folder.
"""

import collections
import functools
import re

import pytest

from korani_tasks import catalog
from korani_tasks import sources
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import hate_speech
from korani_tasks.readers import splits

NAMES = ("beep_hate", "curse_detection", "unsmile", "apeach")

ROWS = {
    "beep_hate": {"train": 7896, "validation": 471},
    "curse_detection": {"train": 4700, "validation": 559, "test": 566},
    "unsmile": {"train": 15005, "validation": 3737},
    "apeach": {"train": 2982, "validation": 382, "test": 406},
}
TOTAL = {"curse_detection": 5825, "apeach": 3770}

LABELS = {
    ("beep_hate", "train"): {0: 3486, 1: 2499, 2: 1911},
    ("beep_hate", "validation"): {0: 160, 1: 189, 2: 122},
    ("curse_detection", "train"): {0: 3049, 1: 1651},
    ("curse_detection", "validation"): {0: 351, 1: 208},
    ("curse_detection", "test"): {0: 383, 1: 183},
    ("unsmile", "train"): {0: 3739, 1: 11266},
    ("unsmile", "validation"): {0: 935, 1: 2802},
    ("apeach", "train"): {0: 1465, 1: 1517},
    ("apeach", "validation"): {0: 181, 1: 201},
    ("apeach", "test"): {0: 202, 1: 204},
}

_HANGUL = re.compile("[\uac00-\ud7a3]")


@functools.cache
def _read(data_dir, name, split):
  raw = base.RAW_DATASETS[name]
  return tuple(raw.read(split, raw.paths(data_dir, split)))


def _records(data_dir, name, split):
  return [r for _, r in _read(data_dir, name, split)]


# --- The real files. ---


@pytest.mark.parametrize("name", NAMES)
def test_registration_matches_catalog(name):
  raw = base.RAW_DATASETS[name]
  info = catalog.get(name)
  assert raw.splits == info.splits
  assert set(raw.files()) == {f.path for f in info.files}
  assert raw.features["label"].names == list(info.labels)


@pytest.mark.parametrize("name, split", [(n, s) for n in NAMES
                                         for s in ROWS[n]])
def test_row_counts_labels_and_keys(raw_data_dir, name, split):
  pairs = _read(raw_data_dir, name, split)
  assert len(pairs) == ROWS[name][split]
  keys = [k for k, _ in pairs]
  assert len(set(keys)) == len(keys)
  assert all(re.fullmatch(r"[\w.]+:\d+", k) for k in keys)
  records = [r for _, r in pairs]
  assert collections.Counter(r["label"] for r in records) == LABELS[name,
                                                                    split]
  features = set(base.RAW_DATASETS[name].features)
  assert all(set(r) == features for r in records)
  text_field = {"beep_hate": "comments", "unsmile": "sentence"}.get(
      name, "text")
  assert all(r[text_field].strip() for r in records)
  assert sum(bool(_HANGUL.search(r[text_field])) for r in records) > (
      0.9 * len(records))


@pytest.mark.parametrize("name", ["beep_hate", "unsmile"])
def test_keys_are_file_lines(raw_data_dir, name):
  for split, file_path in base.RAW_DATASETS[name].split_files.items():
    file_name = file_path[0].rsplit("/", 1)[-1]
    keys = [k for k, _ in _read(raw_data_dir, name, split)]
    assert keys == [f"{file_name}:{line}"
                    for line in range(2, len(keys) + 2)]


def test_beep_bias_columns(raw_data_dir):
  for split in ROWS["beep_hate"]:
    records = _records(raw_data_dir, "beep_hate", split)
    assert {r["bias"] for r in records} == {"none", "gender", "others"}
    # contain_gender_bias is True exactly where bias is 'gender'.
    assert all(r["contain_gender_bias"] == (r["bias"] == "gender")
               for r in records)
  train = _records(raw_data_dir, "beep_hate", "train")
  assert sum(r["contain_gender_bias"] for r in train) == 1232


def test_curse_file_layout(raw_data_dir):
  data = (raw_data_dir / hate_speech.CURSE_FILE).read_bytes()
  # CRLF line ends and no line end after the last row: 5824 + 1 lines.
  assert data.count(b"\r\n") == data.count(b"\n") == TOTAL[
      "curse_detection"] - 1
  assert not data.endswith(b"\n")


def test_curse_text_is_kept_as_is(raw_data_dir):
  path = raw_data_dir / hate_speech.CURSE_FILE
  rows = dict(hate_speech.read_curse_detection(path))
  assert len(rows) == TOTAL["curse_detection"]
  lines = path.read_bytes().decode("utf-8").split("\r\n")
  assert [rows[i + 1]["text"] + "|" + str(rows[i + 1]["label"])
          for i in range(len(lines))] == lines
  assert sum(r["text"].startswith(" ") for r in rows.values()) == 378
  # One text contains '|' itself: the label is after the last one.
  piped = [line for line, r in rows.items() if "|" in r["text"]]
  assert piped == [456]
  assert rows[456]["label"] == 0
  assert rows[456]["text"].endswith("네이트판")


@pytest.mark.parametrize("name", ["curse_detection", "apeach"])
def test_assigned_splits(raw_data_dir, name):
  raw = base.RAW_DATASETS[name]
  keys = {s: [k for k, _ in _read(raw_data_dir, name, s)] for s in raw.splits}
  # The same rows again (read afresh, not from the cache).
  again = {s: [k for k, _ in raw.read(s, raw.paths(raw_data_dir, s))]
           for s in raw.splits}
  assert again == keys
  all_keys = [k for ks in keys.values() for k in ks]
  assert len(set(all_keys)) == len(all_keys) == TOTAL[name]
  for split, fraction in splits.DEFAULT_FRACTIONS:
    assert abs(len(keys[split]) / TOTAL[name] - fraction) <= 0.02
    assert all(splits.assign_split(k) == split for k in keys[split])
  assert raw.split_note and "sha256" in raw.split_note


def test_unsmile_categories(raw_data_dir):
  names = set(hate_speech.UNSMILE_CATEGORIES)
  counts = collections.Counter()
  for split in ROWS["unsmile"]:
    for r in _records(raw_data_dir, "unsmile", split):
      assert set(r["categories"]) <= names
      assert len(set(r["categories"])) == len(r["categories"])
      if r["label"] == 0:  # Clean rows have no category and no target.
        assert r["categories"] == [] and r["personal_reference"] == 0
      counts[split, "no_category_hateful"] += (
          r["label"] == 1 and not r["categories"])
      counts[split, "personal"] += r["personal_reference"]
  # Two train rows have every flag 0: hateful (clean is 0), no category.
  assert counts["train", "no_category_hateful"] == 2
  assert counts["validation", "no_category_hateful"] == 0
  assert (counts["train", "personal"], counts["validation", "personal"]) == (
      315, 74)
  first = _records(raw_data_dir, "unsmile", "validation")[0]
  assert (first["categories"], first["label"]) == (["남성"], 1)


def test_apeach_multiline_rows_and_topics(raw_data_dir):
  path = raw_data_dir / hate_speech.APEACH_FILE
  rows = list(hate_speech.read_apeach(path))
  assert len(rows) == TOTAL["apeach"]
  assert rows[0][0] == 2
  lines = [line for line, _ in rows]
  assert lines == sorted(set(lines))
  assert sum("\n" in r["text"] for _, r in rows) == 56
  # A multi-line row moves the next row's first line down.
  for (line, r), (next_line, _) in zip(rows, rows[1:]):
    assert next_line == line + 1 + r["text"].count("\n")
  topics = {(r["topic"], r["topic_en"]) for _, r in rows}
  assert len(topics) == 10
  assert ("학력이나 전공에 따라 차별하는 발언", "Education") in topics


# --- TFDS + seqio. ---


@pytest.fixture(scope="module")
def prepared(raw_data_dir, tmp_path_factory):
  tfds_dir = tmp_path_factory.mktemp("tfds_hate")
  return {name: sources.KoraniTfdsSource(
      name, base.RAW_DATASETS[name].splits, tfds_data_dir=tfds_dir)
          for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_prepares_through_tfds(prepared, raw_data_dir, name):
  source = prepared[name]
  for split, count in ROWS[name].items():
    assert source.num_input_examples(split) == count
  assert set(source.builder.info.splits) == set(ROWS[name])
  assert source.builder.info.features["label"].names == list(
      catalog.get(name).labels)


def test_unsmile_categories_through_tfds(prepared, raw_data_dir):
  ds = prepared["unsmile"].get_dataset("validation", shuffle=False)
  got = collections.Counter()
  for ex in ds.as_numpy_iterator():
    got.update(c.decode("utf-8") for c in ex["categories"])
  want = collections.Counter(
      c for r in _records(raw_data_dir, "unsmile", "validation")
      for c in r["categories"])
  assert got == want and got["남성"] > 0


# --- Malformed input. ---

BEEP_HEADER = "comments\tcontain_gender_bias\tbias\thate\n"
UNSMILE_HEADER = "\t".join(
    ("문장", *hate_speech.UNSMILE_CATEGORIES, "clean", "개인지칭")) + "\n"
APEACH_HEADER = ("text,user_age,user_gender,text_topic,class,age,"
                 "text_topic_eng\n")


def _write(tmp_path, text, name):
  path = tmp_path / name
  path.write_bytes(text.encode("utf-8"))
  return path


def _assert_error_at(excinfo, path, line):
  assert (excinfo.value.path, excinfo.value.line) == (str(path), line)


def _unsmile_row(sentence, flags):
  return sentence + "\t" + "\t".join(map(str, flags)) + "\n"


def test_beep_good_rows(tmp_path):
  path = _write(tmp_path, BEEP_HEADER + "좋은 댓글\tFalse\tnone\tnone\n"
                "나쁜 댓글\tTrue\tgender\thate\n", "dev.tsv")
  assert list(hate_speech.read_beep(path)) == [
      ("dev.tsv:2", {"comments": "좋은 댓글", "contain_gender_bias": 0,
                     "bias": "none", "label": 0}),
      ("dev.tsv:3", {"comments": "나쁜 댓글", "contain_gender_bias": 1,
                     "bias": "gender", "label": 2})]


@pytest.mark.parametrize("row, column", [
    ("댓글\tFalse\tnone\thateful\n", "'hate'"),
    ("댓글\tmaybe\tnone\tnone\n", "'contain_gender_bias'"),
    ("댓글\tFalse\tage\tnone\n", "'bias'"),
])
def test_beep_unknown_values(tmp_path, row, column):
  path = _write(tmp_path, BEEP_HEADER + "댓글\tFalse\tnone\tnone\n" + row,
                "train.tsv")
  with pytest.raises(DataFormatError, match=column) as e:
    list(hate_speech.read_beep(path))
  _assert_error_at(e, path, 3)


def test_curse_good_lines(tmp_path):
  path = _write(tmp_path, " 앞 공백|0\r\n가|나 |1\r\n", "data.txt")
  assert list(hate_speech.read_curse_detection(path)) == [
      (1, {"text": " 앞 공백", "label": 0}), (2, {"text": "가|나 ", "label": 1})]


@pytest.mark.parametrize("text, line, message", [
    ("문장|0\r\n파이프 없는 문장\r\n", 2, "no '|'"),
    ("문장|0\r\n문장|2\r\n", 2, "unknown label '2'"),
    ("문장|0\r\n문장| 1\r\n", 2, "unknown label ' 1'"),
    ("문장|0\r\n |1\r\n", 2, "empty text"),
    ("문장|0\r\n\r\n문장|1\r\n", 2, "blank line"),
    ("", 1, "empty file"),
])
def test_curse_malformed_lines(tmp_path, text, line, message):
  path = _write(tmp_path, text, "data.txt")
  with pytest.raises(DataFormatError, match=message) as e:
    list(hate_speech.read_curse_detection(path))
  _assert_error_at(e, path, line)


def test_unsmile_good_rows(tmp_path):
  path = _write(tmp_path, UNSMILE_HEADER
                + _unsmile_row("깨끗한 문장", [0] * 9 + [1, 0])
                + _unsmile_row("나쁜 문장", [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]),
                "unsmile_valid_v1.0.tsv")
  assert [r for _, r in hate_speech.read_unsmile(path)] == [
      {"sentence": "깨끗한 문장", "categories": [], "personal_reference": 0,
       "label": 0},
      {"sentence": "나쁜 문장", "categories": ["여성/가족", "악플/욕설"],
       "personal_reference": 1, "label": 1}]


@pytest.mark.parametrize("flags, message", [
    ([0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0], r"'clean' is 1 but .*'남성'"),
    ([0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0], "unknown label '2' in column '남성'"),
])
def test_unsmile_malformed_rows(tmp_path, flags, message):
  path = _write(tmp_path, UNSMILE_HEADER
                + _unsmile_row("문장", [0] * 9 + [1, 0])
                + _unsmile_row("문장", flags), "unsmile_train_v1.0.tsv")
  with pytest.raises(DataFormatError, match=message) as e:
    list(hate_speech.read_unsmile(path))
  _assert_error_at(e, path, 3)


def test_apeach_good_rows(tmp_path):
  path = _write(tmp_path, APEACH_HEADER
                + '"여러 줄,\n글",30,female,주제,Spoiled,30,Topic\n'
                "한 줄 글,25,male,주제,Default,25,Topic\n", "test.csv")
  assert list(hate_speech.read_apeach(path)) == [
      (2, {"text": "여러 줄,\n글", "topic": "주제", "topic_en": "Topic",
           "label": 1}),
      (4, {"text": "한 줄 글", "topic": "주제", "topic_en": "Topic",
           "label": 0})]


@pytest.mark.parametrize("text, line, message", [
    (APEACH_HEADER + "글,30,female,주제,Default,30,Topic\n"
     "글,30,female,주제,Bad,30,Topic\n", 3, "unknown label 'Bad'"),
    (APEACH_HEADER + "글,30,female,주제,Default,30\n", 2,
     "expected 7 comma-separated fields, got 6"),
    (APEACH_HEADER.replace("class", "label")
     + "글,30,female,주제,Default,30,Topic\n", 1, "missing column 'class'"),
    (APEACH_HEADER + ",30,female,주제,Default,30,Topic\n", 2, "empty 'text'"),
    (APEACH_HEADER, 1, "no data rows"),
    (APEACH_HEADER + '"닫히지 않은 따옴표,30,female,주제,Default,30,Topic\n', 2,
     "bad CSV: unexpected end of data"),
])
def test_apeach_malformed_rows(tmp_path, text, line, message):
  path = _write(tmp_path, text, "test.csv")
  with pytest.raises(DataFormatError, match=message) as e:
    list(hate_speech.read_apeach(path))
  _assert_error_at(e, path, line)


def test_apeach_not_utf8(tmp_path):
  path = tmp_path / "test.csv"
  path.write_bytes((APEACH_HEADER + "글,30,female,주제,Default,30,Topic\n")
                   .encode("cp949"))
  with pytest.raises(DataFormatError, match="not valid UTF-8") as e:
    list(hate_speech.read_apeach(path))
  _assert_error_at(e, path, 2)
