"""Tests of the strict TSV reader and the KoBEST readers.

The real-file tests read the shared KoBEST files (skipped where absent); the
malformed-input tests write small files of their own to a tmp folder.
"""

import collections
import re

import pytest

from korani_tasks.errors import DataFormatError
from korani_tasks.readers import kobest
from korani_tasks.readers import tsv

SPLITS = ("train", "validation", "test")

ROWS = {
    "kobest_boolq": {"train": 3665, "validation": 700, "test": 1404},
    "kobest_copa": {"train": 3076, "validation": 500, "test": 1000},
    "kobest_hellaswag": {"train": 2029, "validation": 500, "test": 500},
    "kobest_sentineg": {"train": 3649, "validation": 400, "test": 397},
    "kobest_wic": {"train": 3318, "validation": 610, "test": 1260},
}

LABELS = {
    ("kobest_boolq", "train"): {0: 1834, 1: 1831},
    ("kobest_boolq", "validation"): {0: 374, 1: 326},
    ("kobest_boolq", "test"): {0: 699, 1: 705},
    ("kobest_copa", "train"): {0: 1671, 1: 1405},
    ("kobest_copa", "validation"): {0: 248, 1: 252},
    ("kobest_copa", "test"): {0: 517, 1: 483},
    ("kobest_hellaswag", "train"): {0: 533, 1: 511, 2: 487, 3: 498},
    ("kobest_hellaswag", "validation"): {0: 111, 1: 125, 2: 145, 3: 119},
    ("kobest_hellaswag", "test"): {0: 124, 1: 137, 2: 121, 3: 118},
    ("kobest_sentineg", "train"): {0: 1811, 1: 1838},
    ("kobest_sentineg", "validation"): {0: 200, 1: 200},
    ("kobest_sentineg", "test"): {0: 197, 1: 200},
    ("kobest_wic", "train"): {0: 1638, 1: 1680},
    ("kobest_wic", "validation"): {0: 349, 1: 261},
    ("kobest_wic", "test"): {0: 645, 1: 615},
}

_HANGUL = re.compile("[\uac00-\ud7a3]")


def _read(raw_data_dir, name, split):
  dataset = kobest.KOBEST_DATASETS[name]
  return list(dataset.reader(dataset.path(raw_data_dir, split)))


def _raw_rows(raw_data_dir, name, split):
  """The file's rows as plain strings, by header name."""
  path = kobest.KOBEST_DATASETS[name].path(raw_data_dir, split)
  return [row for _, row in tsv.read_tsv(path, [])]


# --- The real KoBEST files. ---


@pytest.mark.parametrize("name", sorted(ROWS))
@pytest.mark.parametrize("split", SPLITS)
def test_row_counts_and_keys(kobest_dir, raw_data_dir, name, split):
  pairs = _read(raw_data_dir, name, split)
  file_name = kobest.SPLIT_FILES[split]
  assert len(pairs) == ROWS[name][split]
  assert [key for key, _ in pairs] == [
      f"{file_name}:{line}" for line in range(2, len(pairs) + 2)]


@pytest.mark.parametrize("name, split", sorted(LABELS))
def test_label_distribution(kobest_dir, raw_data_dir, name, split):
  records = [record for _, record in _read(raw_data_dir, name, split)]
  assert collections.Counter(r["label"] for r in records) == LABELS[name, split]
  label_names = kobest.KOBEST_DATASETS[name].label_names
  assert len(label_names) == len(LABELS[name, split])


@pytest.mark.parametrize("name", sorted(ROWS))
@pytest.mark.parametrize("split", SPLITS)
def test_text_fields_have_no_line_endings(
    kobest_dir, raw_data_dir, name, split):
  for _, record in _read(raw_data_dir, name, split):
    for value in record.values():
      if isinstance(value, str):
        assert "\r" not in value and "\n" not in value and "\t" not in value


@pytest.mark.parametrize("name, column", [("kobest_boolq", "Answer"),
                                          ("kobest_wic", "ANSWER")])
def test_mixed_case_booleans(kobest_dir, raw_data_dir, name, column):
  spellings = set()
  for split in SPLITS:
    raw = [row[column] for row in _raw_rows(raw_data_dir, name, split)]
    labels = [r["label"] for _, r in _read(raw_data_dir, name, split)]
    spellings.update(raw)
    assert labels == [int(value.lower() == "true") for value in raw]
  assert spellings == {"True", "False", "TRUE", "FALSE"}


def test_boolq_booleans_differ_per_split(kobest_dir, raw_data_dir):
  spellings = {split: {row["Answer"] for row in
                       _raw_rows(raw_data_dir, "kobest_boolq", split)}
               for split in SPLITS}
  assert spellings == {"train": {"TRUE", "FALSE"},
                       "validation": {"True", "False"},
                       "test": {"True", "False", "TRUE", "FALSE"}}


def test_sentineg_columns_differ_per_split(kobest_dir):
  headers = {}
  for split, file_name in kobest.SPLIT_FILES.items():
    with open(kobest_dir / "SentiNeg" / file_name, encoding="utf-8") as f:
      headers[split] = f.readline().rstrip("\r\n").split("\t")
  assert headers == {
      "train": ["ID", "Text", "Label"],
      "validation": ["ID", "Label", "Text"],
      "test": ["ID", "Label_origin", "Text_origin", "Label", "Text",
               "Category_neg"],
  }


@pytest.mark.parametrize("split, idx, label", [("train", 1, 0),
                                               ("validation", 1, 1),
                                               ("test", 3394, 1)])
def test_sentineg_known_first_row(kobest_dir, raw_data_dir, split, idx, label):
  key, record = _read(raw_data_dir, "kobest_sentineg", split)[0]
  assert key == f"{kobest.SPLIT_FILES[split]}:2"
  assert (record["idx"], record["label"]) == (idx, label)
  assert _HANGUL.search(record["sentence"])


@pytest.mark.parametrize("split", SPLITS)
def test_sentineg_sentence_is_the_text_column(kobest_dir, raw_data_dir, split):
  raw = _raw_rows(raw_data_dir, "kobest_sentineg", split)
  records = [r for _, r in _read(raw_data_dir, "kobest_sentineg", split)]
  assert [r["sentence"] for r in records] == [row["Text"] for row in raw]
  assert all(_HANGUL.search(r["sentence"]) for r in records)


def test_sentineg_train_and_dev_have_no_negation_fields(
    kobest_dir, raw_data_dir):
  for split in ("train", "validation"):
    for _, record in _read(raw_data_dir, "kobest_sentineg", split):
      assert (record["original_sentence"], record["original_label"],
              record["negation_category"]) == ("", -1, -1)


def test_sentineg_test_keeps_negation_columns(kobest_dir, raw_data_dir):
  records = [r for _, r in _read(raw_data_dir, "kobest_sentineg", "test")]
  first = records[0]
  assert (first["original_label"], first["negation_category"]) == (0, 1)
  # Negation flips the sentiment of every test sentence.
  assert all(r["label"] == 1 - r["original_label"] for r in records)
  assert all(r["sentence"] != r["original_sentence"] for r in records)
  assert all(_HANGUL.search(r["original_sentence"]) for r in records)
  assert collections.Counter(r["negation_category"] for r in records) == {
      1: 104, 2: 169, 3: 124}


def test_copa_question_trailing_space_is_stripped(kobest_dir, raw_data_dir):
  raw = _raw_rows(raw_data_dir, "kobest_copa", "train")
  records = [r for _, r in _read(raw_data_dir, "kobest_copa", "train")]
  spaced = [i for i, row in enumerate(raw) if row["question"].endswith(" ")]
  assert len(spaced) == 6
  assert {raw[i]["question"] for i in spaced} == {"원인 ", "결과 "}
  assert [records[i]["question"] for i in spaced] == [
      raw[i]["question"].strip() for i in spaced]
  for split in SPLITS:
    questions = {r["question"] for _, r in _read(raw_data_dir, "kobest_copa",
                                                 split)}
    assert questions == {"원인", "결과"}


def test_copa_label_is_answer_minus_one(kobest_dir, raw_data_dir):
  raw = _raw_rows(raw_data_dir, "kobest_copa", "validation")
  records = [r for _, r in _read(raw_data_dir, "kobest_copa", "validation")]
  assert [r["label"] for r in records] == [
      int(row["Answer"]) - 1 for row in raw]
  assert [r["alternative_2"] for r in records] == [row["2"] for row in raw]


@pytest.mark.parametrize("name, fields, count", [
    ("kobest_boolq", ("paragraph", "question"), 320),
    ("kobest_hellaswag",
     ("context", "ending_1", "ending_2", "ending_3", "ending_4"), 12),
])
def test_quotes_are_kept_literally(kobest_dir, raw_data_dir, name, fields,
                                   count):
  fields_with_quotes = 0
  for split in SPLITS:
    path = kobest.KOBEST_DATASETS[name].path(raw_data_dir, split)
    records = [r for _, r in _read(raw_data_dir, name, split)]
    quotes = sum(r[f].count('"') for r in records for f in fields)
    assert quotes == path.read_text(encoding="utf-8").count('"')
    fields_with_quotes += sum('"' in r[f] for r in records for f in fields)
  assert fields_with_quotes == count


def test_surrounding_spaces_are_kept(kobest_dir, raw_data_dir):
  records = [r for _, r in _read(raw_data_dir, "kobest_boolq", "train")]
  assert sum(r["paragraph"] != r["paragraph"].strip() for r in records) == 577


@pytest.mark.parametrize("split", SPLITS)
def test_hellaswag_idx_is_row_number(kobest_dir, raw_data_dir, split):
  pairs = _read(raw_data_dir, "kobest_hellaswag", split)
  assert [r["idx"] for _, r in pairs] == list(range(len(pairs)))
  assert pairs[0][0] == f"{kobest.SPLIT_FILES[split]}:2"


def test_wic_keeps_bracketed_target(kobest_dir, raw_data_dir):
  unmarked = 0
  for split in SPLITS:
    raw = _raw_rows(raw_data_dir, "kobest_wic", split)
    records = [r for _, r in _read(raw_data_dir, "kobest_wic", split)]
    assert [(r["context_1"], r["context_2"]) for r in records] == [
        (row["SENTENCE1"], row["SENTENCE2"]) for row in raw]
    assert all(f"[{r['word']}]" in r["context_1"] for r in records)
    unmarked += sum("[" not in r["context_2"] for r in records)
  assert unmarked == 1  # One train row has no brackets in SENTENCE2.


@pytest.mark.parametrize("name", sorted(ROWS))
def test_ids_are_unique(kobest_dir, raw_data_dir, name):
  for split in SPLITS:
    ids = [r["idx"] for _, r in _read(raw_data_dir, name, split)]
    assert len(set(ids)) == len(ids)


# --- Malformed input. ---

BOOLQ_HEADER = "ID\tText\tQuestion\tAnswer\n"


def _write(tmp_path, text, name="dev.tsv", encoding="utf-8"):
  path = tmp_path / name
  path.write_bytes(text.encode(encoding))
  return path


def _assert_error_at(excinfo, path, line):
  error = excinfo.value
  assert (error.path, error.line) == (str(path), line)
  assert str(error).startswith(f"{path}:{line}: ")


def test_missing_column(tmp_path):
  path = _write(tmp_path, "ID\tText\tAnswer\n1\t본문\tTrue\n")
  with pytest.raises(DataFormatError, match="missing column 'Question'") as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 1)
  assert "['ID', 'Text', 'Answer']" in str(e.value)


def test_repeated_column(tmp_path):
  path = _write(tmp_path, "ID\tText\tText\n1\ta\tb\n")
  with pytest.raises(DataFormatError, match="repeats") as e:
    list(tsv.read_tsv(path, ["ID"]))
  _assert_error_at(e, path, 1)


def test_unknown_boolean_label(tmp_path):
  path = _write(tmp_path, BOOLQ_HEADER + "1\t본문\t질문\tTrue\n"
                "2\t본문\t질문\tmaybe\n")
  with pytest.raises(DataFormatError) as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 3)
  assert "'maybe'" in str(e.value) and "'Answer'" in str(e.value)
  assert "false, true" in str(e.value)


def test_unknown_choice_label(tmp_path):
  path = _write(tmp_path, "ID\tsentence\tquestion\t1\t2\tAnswer\r\n"
                "1\t전제\t원인\t가\t나\t3\r\n")
  with pytest.raises(DataFormatError) as e:
    list(kobest.read_kobest_copa(path))
  _assert_error_at(e, path, 2)
  assert "'3'" in str(e.value) and "'Answer'" in str(e.value)
  assert "1, 2" in str(e.value)


def test_unknown_copa_question(tmp_path):
  path = _write(tmp_path, "ID\tsentence\tquestion\t1\t2\tAnswer\n"
                "1\t전제\t결과\t가\t나\t1\n1\t전제\t이유\t가\t나\t1\n")
  with pytest.raises(DataFormatError, match="'이유' in column 'question'") as e:
    list(kobest.read_kobest_copa(path))
  _assert_error_at(e, path, 3)


def test_non_integer_id(tmp_path):
  path = _write(tmp_path, BOOLQ_HEADER + "x1\t본문\t질문\tTrue\n")
  with pytest.raises(DataFormatError, match="integer in column 'ID'") as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 2)


def test_wrong_field_count(tmp_path):
  path = _write(tmp_path, BOOLQ_HEADER + "1\t본문\t질문\tTrue\n"
                "2\t본문\tTrue\n3\t본문\t질문\tFalse\n")
  with pytest.raises(DataFormatError, match="expected 4 .* got 3") as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 3)


def test_empty_file(tmp_path):
  path = _write(tmp_path, "")
  with pytest.raises(DataFormatError, match="empty file") as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 1)


@pytest.mark.parametrize("text", [BOOLQ_HEADER, BOOLQ_HEADER + "\r\n\n"])
def test_header_only(tmp_path, text):
  path = _write(tmp_path, text)
  with pytest.raises(DataFormatError, match="no data rows") as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 1)


def test_cp949_file(tmp_path):
  path = _write(tmp_path, BOOLQ_HEADER + "1\t본문\t질문\tTrue\n",
                encoding="cp949")
  with pytest.raises(DataFormatError, match="not valid UTF-8") as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 2)


def test_blank_line_in_the_middle(tmp_path):
  path = _write(tmp_path, BOOLQ_HEADER + "1\t본문\t질문\tTrue\n\r\n"
                "2\t본문\t질문\tFalse\n")
  with pytest.raises(DataFormatError, match="blank line") as e:
    list(kobest.read_kobest_boolq(path))
  _assert_error_at(e, path, 3)


def test_sentineg_partial_negation_columns(tmp_path):
  path = _write(tmp_path, "ID\tLabel\tText\tText_origin\n1\t1\t문장\t원문\n")
  with pytest.raises(DataFormatError, match="Label_origin") as e:
    list(kobest.read_kobest_sentineg(path))
  _assert_error_at(e, path, 1)


def test_bom_crlf_quotes_and_trailing_blank_lines(tmp_path):
  path = _write(tmp_path, "\ufeff" + BOOLQ_HEADER.replace("\n", "\r\n")
                + '7\t"인용" 본문 \t질문?\t true\r\n\r\n\n')
  assert list(kobest.read_kobest_boolq(path)) == [
      ("dev.tsv:2", {"idx": 7, "paragraph": '"인용" 본문 ', "question": "질문?",
                     "label": 1})]


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("TRUE", True), ("True", True), (" false\t", False),
    ("FALSE", False)])
def test_parse_bool(value, expected):
  assert tsv.parse_bool(value, "f.tsv", 2, "Answer") is expected


@pytest.mark.parametrize("value", ["yes", "1", "", "tru"])
def test_parse_bool_rejects(value):
  with pytest.raises(DataFormatError, match=f"unknown label {value!r}"):
    tsv.parse_bool(value, "f.tsv", 2, "Answer")


def test_parse_choice_is_exact():
  assert tsv.parse_choice("2", {"1": 0, "2": 1}, "f.tsv", 5, "Answer") == 1
  with pytest.raises(DataFormatError, match=r"f.tsv:5: .*' 2'"):
    tsv.parse_choice(" 2", {"1": 0, "2": 1}, "f.tsv", 5, "Answer")
