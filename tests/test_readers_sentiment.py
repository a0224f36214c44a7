"""Tests of the sentiment readers (NSMC and Naver Shopping).

Neither source is in the shared data, so the tests write files in the
canonical formats (NSMC: TSV ``id document label`` with a header; Naver
Shopping: ``rating<TAB>review`` lines) to a tmp folder and point
``KORANI_DATA_DIR`` at it.
"""

import collections
import logging
import random

import pytest

from korani_tasks import catalog
from korani_tasks import sources
from korani_tasks import templates
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import sentiment
from korani_tasks.readers import splits

NAMES = ("naver_movie", "naver_shopping")
SPLITS = ("train", "validation", "test")
NSMC_TRAIN_ROWS = 3000
NSMC_TEST_ROWS = 500
SHOPPING_ROWS = 3000
# Lines (1-based, header included) left empty in the generated files.
NSMC_EMPTY = {"train": {7: "", 1500: "  "}, "test": {20: ""}}
SHOPPING_EMPTY = {11: "", 2999: " "}


def _nsmc_text(rows, empty):
  """An NSMC file: header, then `rows` rows; lines in `empty` get that text."""
  rng = random.Random(len(rows))
  lines = ["id\tdocument\tlabel"]
  for i, review_id in enumerate(rows):
    line = i + 2
    label = rng.randint(0, 1)
    document = empty.get(line, f"{'재밌다' if label else '지루하다'} 리뷰 {i}")
    lines.append(f"{review_id}\t{document}\t{label}")
  return "\n".join(lines) + "\n"


def _shopping_text(count, empty):
  rng = random.Random(count)
  lines = []
  for line in range(1, count + 1):
    rating = rng.choice("1245")
    review = empty.get(line, f"배송 {'빠르고 좋아요' if rating in '45' else '느려요'} "
                       f"{line}")
    lines.append(f"{rating}\t{review}")
  lines[4] = "5\t탭이\t들어간 후기"  # Line 5: the review keeps its TAB.
  return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """Canonical-format files, with KORANI_DATA_DIR pointing at them."""
  root = tmp_path_factory.mktemp("sentiment_raw")
  ids = random.Random(0).sample(range(1_000_000, 10_300_000),
                                NSMC_TRAIN_ROWS + NSMC_TEST_ROWS)
  files = {
      sentiment.NSMC_TRAIN: _nsmc_text(ids[:NSMC_TRAIN_ROWS],
                                       NSMC_EMPTY["train"]),
      sentiment.NSMC_TEST: _nsmc_text(ids[NSMC_TRAIN_ROWS:],
                                      NSMC_EMPTY["test"]),
      sentiment.SHOPPING_FILE: _shopping_text(SHOPPING_ROWS, SHOPPING_EMPTY),
  }
  for name, text in files.items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("KORANI_DATA_DIR", str(root))
    yield root


def _read(data_dir, name, split):
  raw = base.RAW_DATASETS[name]
  return list(raw.read(split, raw.paths(data_dir, split)))


@pytest.mark.parametrize("name", NAMES)
def test_registration_matches_catalog(name):
  raw = base.RAW_DATASETS[name]
  info = catalog.get(name)
  assert raw.splits == info.splits
  assert set(raw.files()) == {f.path for f in info.files}
  assert raw.features["label"].names == list(info.labels)
  assert "skipped" in raw.split_note


def test_nsmc_splits(data_dir):
  pairs = {s: _read(data_dir, "naver_movie", s) for s in SPLITS}
  train_rows = NSMC_TRAIN_ROWS - len(NSMC_EMPTY["train"])
  assert len(pairs["train"]) + len(pairs["validation"]) == train_rows
  assert len(pairs["test"]) == NSMC_TEST_ROWS - len(NSMC_EMPTY["test"])
  assert abs(len(pairs["validation"]) / train_rows - 0.1) <= 0.02
  keys = {s: [k for k, _ in ps] for s, ps in pairs.items()}
  assert not set(keys["train"]) & set(keys["validation"])
  assert all(k.startswith("ratings_train.txt:") for k in
             keys["train"] + keys["validation"])
  assert all(k.startswith("ratings_test.txt:") for k in keys["test"])
  for split in ("train", "validation"):
    assert all(splits.assign_split(
        str(r["id"]), fractions=sentiment.NSMC_VALIDATION_FRACTIONS) == split
               for _, r in pairs[split])
  assert {s: _read(data_dir, "naver_movie", s) for s in SPLITS} == pairs
  for split, ps in pairs.items():
    assert {r["label"] for _, r in ps} == {0, 1}
    assert all(r["document"].strip() for _, r in ps)


def test_nsmc_record(data_dir):
  path = data_dir / sentiment.NSMC_TEST
  first = path.read_text(encoding="utf-8").splitlines()[1].split("\t")
  line, review_id, record = next(sentiment.read_nsmc(path))
  assert (line, review_id) == (2, first[0])
  assert record == {"id": int(first[0]), "document": first[1],
                    "label": int(first[2])}


def test_nsmc_empty_documents_are_counted(data_dir, caplog):
  caplog.set_level(logging.WARNING, logger=sentiment.__name__)
  raw = base.RAW_DATASETS["naver_movie"]
  skipped = {s: sentiment.skipped_rows("naver_movie", s,
                                       raw.paths(data_dir, s))
             for s in SPLITS}
  assert sorted(skipped["train"] + skipped["validation"]) == sorted(
      f"ratings_train.txt:{line}" for line in NSMC_EMPTY["train"])
  assert skipped["test"] == ["ratings_test.txt:20"]
  for split in SPLITS:
    caplog.clear()
    _read(data_dir, "naver_movie", split)
    if skipped[split]:
      assert f"skipped {len(skipped[split])} row(s) of split {split}" in (
          caplog.text)
      assert all(key in caplog.text for key in skipped[split])
    else:
      assert "skipped" not in caplog.text


def test_shopping_splits_and_records(data_dir, caplog):
  caplog.set_level(logging.WARNING, logger=sentiment.__name__)
  pairs = {s: _read(data_dir, "naver_shopping", s) for s in SPLITS}
  total = SHOPPING_ROWS - len(SHOPPING_EMPTY)
  assert sum(map(len, pairs.values())) == total
  keys = [k for ps in pairs.values() for k, _ in ps]
  assert len(set(keys)) == total
  for split, fraction in splits.DEFAULT_FRACTIONS:
    assert abs(len(pairs[split]) / total - fraction) <= 0.02
    assert all(splits.assign_split(k) == split for k, _ in pairs[split])
  assert {s: _read(data_dir, "naver_shopping", s) for s in SPLITS} == pairs
  records = dict(kp for ps in pairs.values() for kp in ps)
  assert all(r["label"] == (r["rating"] >= 4) for r in records.values())
  assert collections.Counter(r["rating"] for r in records.values()).keys() == {
      1, 2, 4, 5}
  assert records["naver_shopping.txt:5"]["review"] == "탭이\t들어간 후기"
  assert "naver_shopping.txt:11" not in records
  assert "with an empty 'review'" in caplog.text
  assert "naver_shopping.txt:2999" in caplog.text


# --- TFDS + seqio. ---


@pytest.mark.parametrize("name", NAMES)
def test_prepares_through_tfds(data_dir, tmp_path_factory, name):
  source = sources.KoraniTfdsSource(
      name, SPLITS, tfds_data_dir=tmp_path_factory.mktemp("tfds_sentiment"))
  for split in SPLITS:
    assert source.num_input_examples(split) == len(
        _read(data_dir, name, split))
  info = source.builder.info
  assert "skipped" in info.description
  ex = next(source.get_dataset("test", shuffle=False).as_numpy_iterator())
  assert ex["label"] in (0, 1)


@pytest.mark.parametrize("name", NAMES)
def test_templates_render(data_dir, name):
  by_lang = templates.load_templates(name)
  assert len(by_lang["ko"]) == len(by_lang["en"]) == 10
  for split in SPLITS:
    for _, record in _read(data_dir, name, split)[:20]:
      for ko, en in zip(by_lang["ko"], by_lang["en"]):
        for t in (ko, en):
          r = t.render(record)
          assert r.inputs.strip() and r.targets in r.answer_choices
          assert len(r.answer_choices) == 2
        assert ko.render(record).label_index == en.render(record).label_index


# --- Malformed input. ---

NSMC_HEADER = "id\tdocument\tlabel\n"


def _write(tmp_path, text, name):
  path = tmp_path / name
  path.write_bytes(text.encode("utf-8"))
  return path


def _assert_error_at(excinfo, path, line):
  assert (excinfo.value.path, excinfo.value.line) == (str(path), line)


@pytest.mark.parametrize("text, line, message", [
    (NSMC_HEADER + "1\t좋다\t1\n2\t별로\t2\n", 3, "unknown label '2'"),
    (NSMC_HEADER + "1\t좋다\t1\nx2\t별로\t0\n", 3, "integer in column 'id'"),
    (NSMC_HEADER + "1\t좋다\t1\n2\t별로\t0\t\n", 3, "expected 3 .* got 4"),
    ("id\treview\tlabel\n1\t좋다\t1\n", 1, "missing column 'document'"),
])
def test_nsmc_malformed(tmp_path, text, line, message):
  path = _write(tmp_path, text, "ratings_train.txt")
  with pytest.raises(DataFormatError, match=message) as e:
    list(sentiment.read_nsmc(path))
  _assert_error_at(e, path, line)


@pytest.mark.parametrize("text, line, message", [
    ("5\t좋아요\n3\t보통이에요\n", 2, "unknown rating '3'"),
    ("5\t좋아요\n10\t최고\n", 2, "unknown rating '10'"),
    ("5\t좋아요\n 1\t별로\n", 2, "unknown rating ' 1'"),
    ("5\t좋아요\n탭 없는 후기\n", 2, "found no TAB"),
    ("5\t좋아요\n\n1\t별로\n", 2, "blank line"),
    ("", 1, "empty file"),
])
def test_shopping_malformed(tmp_path, text, line, message):
  path = _write(tmp_path, text, "naver_shopping.txt")
  with pytest.raises(DataFormatError, match=message) as e:
    list(sentiment.read_naver_shopping(path))
  _assert_error_at(e, path, line)


def test_shopping_crlf_and_bom(tmp_path):
  path = _write(tmp_path, "\ufeff2\t별로예요\r\n4\t좋아요 \r\n",
                "naver_shopping.txt")
  assert list(sentiment.read_naver_shopping(path)) == [
      (1, {"rating": 2, "review": "별로예요", "label": 0}),
      (2, {"rating": 4, "review": "좋아요 ", "label": 1})]
