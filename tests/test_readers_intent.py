"""Tests of the SAE4K and StyleKQC readers (korani_tasks/readers/intent.py).

The real-file tests read the shared files (skipped where absent); the
malformed-input tests write small files in the canonical layout to tmp_path.
"""

import collections
import re

import pytest

from korani_tasks import readers
from korani_tasks import sources
from korani_tasks import templates
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import intent

SPLITS = ("train", "validation", "test")
ROWS = {
    "sae4k": {"train": 24682, "validation": 3023, "test": 3132},
    "stylekqc": {"train": 24000, "validation": 1200, "test": 4800},
}
SAE4K_ROWS = 30837
SAE4K_LABELS = {0: 5718, 1: 227, 2: 11924, 3: 477, 4: 12369, 5: 122}
STYLEKQC_FILES = {"train": "train.tsv", "validation": "dev.tsv",
                  "test": "test.tsv"}
# Alternative-question and negation markers, to check the label order.
_ALTERNATIVE = re.compile(r"중|아니면|아님|혹은|또는")
_NEGATION = re.compile(
    r"마$|마요|마세요|말아|말고|말도록|지 말|않|안 |안되|금지|삼가|없도록")


def _read(raw_data_dir, name, split):
  raw = readers.RAW_DATASETS[name]
  return list(raw.read(split, raw.paths(raw_data_dir, split)))


@pytest.fixture(scope="module")
def sae4k(raw_data_dir):
  path = raw_data_dir / intent.SAE4K_FILE
  if not path.is_file():
    pytest.skip(f"{path} not found")
  return {split: _read(raw_data_dir, "sae4k", split) for split in SPLITS}


@pytest.fixture(scope="module")
def stylekqc(raw_data_dir):
  if not readers.RAW_DATASETS["stylekqc"].present_splits(raw_data_dir):
    pytest.skip(f"no StyleKQC file in {raw_data_dir}")
  return {split: _read(raw_data_dir, "stylekqc", split) for split in SPLITS}


def test_registered_with_catalog_files():
  assert readers.RAW_DATASETS["sae4k"].files() == ("sae4k/sae4k_v1.txt",)
  assert readers.RAW_DATASETS["stylekqc"].files() == (
      "stylekqc/act/train.tsv", "stylekqc/act/dev.tsv",
      "stylekqc/act/test.tsv")
  for name in ROWS:
    raw = readers.RAW_DATASETS[name]
    assert raw.splits == raw.info.splits == SPLITS
    assert set(raw.files()) == {f.path for f in raw.info.files}


# --- SAE4K on the shared file. ---


@pytest.mark.parametrize("split", SPLITS)
def test_sae4k_row_counts(sae4k, split):
  assert len(sae4k[split]) == ROWS["sae4k"][split]


def test_sae4k_every_line_once_with_bom_and_crlf_removed(sae4k):
  pairs = [p for split in SPLITS for p in sae4k[split]]
  keys = sorted(int(key.split(":")[1]) for key, _ in pairs)
  assert keys == list(range(1, SAE4K_ROWS + 1))
  by_key = dict(pairs)
  assert by_key["sae4k_v1.txt:1"]["sentence"] == (
      "최근 한 달 동안 학교에서 메일이 온 적이 있는지 확인해줘")
  assert by_key[f"sae4k_v1.txt:{SAE4K_ROWS}"] == {  # No line end after it.
      "sentence": "비 얼마나 온거니", "argument": "강수량", "label": 2}
  for _, record in pairs:
    for value in (record["sentence"], record["argument"]):
      assert "\r" not in value and "\ufeff" not in value and value.strip()


def test_sae4k_labels_and_their_order(sae4k):
  records = [r for split in SPLITS for _, r in sae4k[split]]
  assert collections.Counter(r["label"] for r in records) == SAE4K_LABELS
  by_label = collections.defaultdict(list)
  for r in records:
    by_label[r["label"]].append(r)

  def share(label, test):
    return sum(bool(test(r)) for r in by_label[label]) / len(by_label[label])

  # Commands (3-5) have to-do arguments ending in -기, questions (0-2) not.
  for label in range(6):
    ends_in_gi = share(label, lambda r: r["argument"].rstrip().endswith("기"))
    assert ends_in_gi > 0.95 if label >= 3 else ends_in_gi < 0.05, label
  # Prohibitions: "...하지 않기"; strong requirements: "X 말고 Y";
  # alternative questions: "A와 B 중 ...".
  assert share(3, lambda r: r["argument"].rstrip().endswith("않기")) > 0.9
  assert share(5, lambda r: re.search("말고|지 말", r["sentence"])) > 0.5
  assert share(1, lambda r: " 중" in r["argument"]) > 0.5


def test_sae4k_split_is_deterministic_grouped_and_80_10_10(raw_data_dir,
                                                           sae4k):
  assert _read(raw_data_dir, "sae4k", "validation") == sae4k["validation"]
  groups = {split: {intent.sae4k_group(r["sentence"]) for _, r in sae4k[split]}
            for split in SPLITS}
  assert not groups["train"] & groups["validation"]
  assert not groups["train"] & groups["test"]
  assert not groups["validation"] & groups["test"]
  for split, fraction in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
    assert abs(len(sae4k[split]) / SAE4K_ROWS - fraction) < 0.02, split


def test_sae4k_duplicate_sentences_exist_in_the_source(sae4k):
  counts = collections.Counter(
      intent.sae4k_group(r["sentence"])
      for split in SPLITS for _, r in sae4k[split])
  assert sum(n > 1 for n in counts.values()) == 1560


# --- StyleKQC on the shared files. ---


@pytest.mark.parametrize("split", SPLITS)
def test_stylekqc_rows_keys_and_balanced_labels(stylekqc, split):
  pairs = stylekqc[split]
  assert len(pairs) == ROWS["stylekqc"][split]
  assert [key for key, _ in pairs] == [
      f"{STYLEKQC_FILES[split]}:{line}" for line in range(2, len(pairs) + 2)]
  quarter = len(pairs) // 4
  assert collections.Counter(r["label"] for _, r in pairs) == {
      0: quarter, 1: quarter, 2: quarter, 3: quarter}


def test_stylekqc_label_order(stylekqc):
  sentences = collections.defaultdict(list)
  for split in SPLITS:
    for _, r in stylekqc[split]:
      sentences[r["label"]].append(r["sentence"])

  def share(label, pattern):
    return sum(bool(pattern.search(s)) for s in sentences[label]) / len(
        sentences[label])

  alternative = [share(label, _ALTERNATIVE) for label in range(4)]
  negation = [share(label, _NEGATION) for label in range(4)]
  assert alternative[0] > 0.6 and max(alternative[1:]) < 0.2  # 선택
  assert negation[2] > 0.6 and max(negation[:2] + negation[3:]) < 0.2  # 금지
  assert any("중에" in s for s in sentences[0][:50])


# --- Malformed input, in the canonical layouts. ---


def _sae4k_file(tmp_path, body: bytes):
  path = tmp_path / "sae4k_v1.txt"
  path.write_bytes(body)
  return path


def test_sae4k_canonical_layout(tmp_path):
  body = "\ufeff다리미 켜져있니\t다리미 켜졌는지\t0\r\n불 끄지 마\t불 끄지 않기\t3"
  got = list(intent.read_sae4k(_sae4k_file(tmp_path, body.encode("utf-8"))))
  assert got == [
      ("sae4k_v1.txt:1", {"sentence": "다리미 켜져있니",
                          "argument": "다리미 켜졌는지", "label": 0}),
      ("sae4k_v1.txt:2", {"sentence": "불 끄지 마",
                          "argument": "불 끄지 않기", "label": 3}),
  ]


@pytest.mark.parametrize("body, line, message", [
    ("a\tb\t0\r\na\tb\t6\r\n", 2, "unknown label '6'"),
    ("a\tb\t0\r\na\tb\r\n", 2, "expected 3 tab-separated fields"),
    ("a\tb\t0\r\na\tb\t1\tx\r\n", 2, "got 4"),
    ("a\tb\t0\r\n \tb\t1\r\n", 2, "empty sentence"),
    ("a\t\t0\r\n", 1, "empty argument"),
    ("a\tb\t0\r\n\r\na\tb\t1\r\n", 2, "blank line"),
    ("", 1, "empty file"),
])
def test_sae4k_malformed(tmp_path, body, line, message):
  path = _sae4k_file(tmp_path, body.encode("utf-8"))
  with pytest.raises(DataFormatError, match=message) as info:
    list(intent.read_sae4k(path))
  assert f"sae4k_v1.txt:{line}:" in str(info.value)


def test_sae4k_not_utf8(tmp_path):
  path = _sae4k_file(tmp_path, "a\tb\t0\r\n".encode("utf-8")
                     + "나\t다\t1\r\n".encode("cp949"))
  with pytest.raises(DataFormatError, match="sae4k_v1.txt:2: not valid UTF-8"):
    list(intent.read_sae4k(path))


@pytest.mark.parametrize("body, line, message", [
    ("act\tsentence\n0\t뭐야\n4\t하지 마\n", 3, "unknown label '4'"),
    ("act\tsentence\n0\t뭐야\t더\n", 2, "expected 2 tab-separated fields"),
    ("topic\tsentence\n0\t뭐야\n", 1, "missing column 'act'"),
    ("act\tsentence\n1\t \n", 2, "empty sentence"),
])
def test_stylekqc_malformed(tmp_path, body, line, message):
  path = tmp_path / "dev.tsv"
  path.write_text(body, encoding="utf-8")
  with pytest.raises(DataFormatError, match=message) as info:
    list(intent.read_stylekqc(path))
  assert f"dev.tsv:{line}:" in str(info.value)


# --- Templates and TFDS/seqio preparation. ---


@pytest.mark.parametrize("name, template_id, labels", [
    ("sae4k", "question_or_command", range(6)),
    ("stylekqc", "question_or_directive", range(4)),
])
def test_question_or_command_templates(name, template_id, labels):
  num_questions = 3 if name == "sae4k" else 2
  for template in templates.load_templates(name)["en"]:
    if template.template_id == template_id:
      break
  targets = [template.render({"sentence": "s", "label": label}).targets
             for label in labels]
  assert targets == (["question"] * num_questions
                     + [targets[-1]] * (len(labels) - num_questions))
  assert targets[-1] in ("command", "directive")


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("intent_tfds")


@pytest.mark.parametrize("name", sorted(ROWS))
def test_prepares_through_tfds_and_seqio(raw_data_dir, tfds_dir, name,
                                         request):
  request.getfixturevalue(name)  # Skips where the files are absent.
  source = sources.KoraniTfdsSource(
      name, readers.RAW_DATASETS[name].splits, tfds_data_dir=tfds_dir)
  for split in SPLITS:
    assert source.num_input_examples(split) == ROWS[name][split]
  example = next(source.get_dataset("validation", shuffle=False)
                 .as_numpy_iterator())
  assert set(example) == set(readers.RAW_DATASETS[name].features)
