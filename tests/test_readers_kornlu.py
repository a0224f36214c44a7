"""Tests of the KorNLI and KorSTS readers (korani_tasks/readers/kornlu.py).

The real-file tests read the shared KorNLI (XNLI dev/test only) and KorSTS
files, skipped where absent; the KorNLI train files are not shared, so their
reading is tested on small files in the canonical format, and the
malformed-input tests write small files of their own.
"""

import collections
import logging
import math
import shutil

import pytest

from korani_tasks import sources
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import RAW_DATASETS
from korani_tasks.readers import kornlu

SPLITS = ("train", "validation", "test")
NLI_HEADER = "sentence1\tsentence2\tgold_label\n"
STS_HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"


def _read(raw_data_dir, name, split):
  raw = RAW_DATASETS[name]
  return list(raw.read(split, raw.paths(raw_data_dir, split)))


def _write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(text.encode("utf-8"))
  return path


def _assert_error_at(excinfo, path, line):
  assert (excinfo.value.path, excinfo.value.line) == (str(path), line)


# --- KorNLI. ---


@pytest.mark.parametrize("split, file_name, rows", [
    ("validation", "xnli.dev.ko.tsv", 2490),
    ("test", "xnli.test.ko.tsv", 5010)])
def test_kornli_counts_keys_and_labels(raw_data_dir, split, file_name, rows):
  pairs = _read(raw_data_dir, "kornli", split)
  assert len(pairs) == rows
  assert [k for k, _ in pairs] == [
      f"{file_name}:{line}" for line in range(2, rows + 2)]
  labels = collections.Counter(r["label"] for _, r in pairs)
  assert labels == {0: rows // 3, 1: rows // 3, 2: rows // 3}


def test_kornli_first_rows_and_label_order(raw_data_dir):
  records = [r for _, r in _read(raw_data_dir, "kornli", "validation")]
  assert records[0]["premise"] == '그리고 그가 말했다, "엄마, 저 왔어요."'
  assert records[0]["label"] == 1  # neutral
  assert records[1]["hypothesis"] == "그는 한마디도 하지 않았다."
  assert records[1]["label"] == 2  # contradiction
  assert RAW_DATASETS["kornli"].info.labels == (
      "entailment", "neutral", "contradiction")


def test_kornli_shared_data_has_no_train(raw_data_dir):
  assert RAW_DATASETS["kornli"].present_splits(raw_data_dir) == (
      "validation", "test")


def test_kornli_quotes_are_kept(raw_data_dir):
  path = raw_data_dir / "kornli" / "xnli.dev.ko.tsv"
  records = [r for _, r in _read(raw_data_dir, "kornli", "validation")]
  quotes = sum(r[f].count('"') for r in records
               for f in ("premise", "hypothesis"))
  assert quotes == path.read_text(encoding="utf-8").count('"') > 0


def _train_files(root, snli_rows):
  _write(root / "kornli" / "multinli.train.ko.tsv", NLI_HEADER
         + '그는 "안녕"이라고 말했다.\t그는 인사했다.\tentailment\n'
         + "비가 온다.\t해가 쨍쨍하다.\tcontradiction\n")
  _write(root / "kornli" / "snli_1.0_train.ko.tsv", NLI_HEADER + snli_rows)


SNLI_ROWS = ("개가 달린다.\t동물이 움직인다.\tentailment\r\n"
             "남자가 서 있다.\t남자가 기다린다.\t-\r\n"
             "설명할 그림을 볼 수 없습니다.\tN/A\tneutral\r\n")


def test_kornli_train_reads_both_files_and_skips_no_gold(tmp_path, caplog):
  _train_files(tmp_path, SNLI_ROWS)
  caplog.set_level(logging.INFO, logger=kornlu.__name__)
  pairs = _read(tmp_path, "kornli", "train")
  assert [k for k, _ in pairs] == [
      "multinli.train.ko.tsv:2", "multinli.train.ko.tsv:3",
      "snli_1.0_train.ko.tsv:2", "snli_1.0_train.ko.tsv:4"]
  assert pairs[0][1] == {"premise": '그는 "안녕"이라고 말했다.',
                         "hypothesis": "그는 인사했다.", "label": 0}
  assert [r["label"] for _, r in pairs] == [0, 2, 0, 1]
  assert pairs[3][1]["hypothesis"] == "N/A"
  assert "skipped 1 rows with gold_label '-'" in caplog.text
  skipped = kornlu.SkipCounter()
  list(kornlu.read_kornli(tmp_path / "kornli" / "snli_1.0_train.ko.tsv",
                          allow_no_gold=True, skipped=skipped))
  assert skipped == {"snli_1.0_train.ko.tsv": 1}


def test_kornli_no_gold_label_is_an_error_outside_train(tmp_path):
  path = _write(tmp_path / "kornli" / "xnli.dev.ko.tsv",
                NLI_HEADER + "가\t나\tneutral\n다\t라\t-\n")
  with pytest.raises(DataFormatError, match="unknown label '-'") as e:
    _read(tmp_path, "kornli", "validation")
  _assert_error_at(e, path, 3)


@pytest.mark.parametrize("row, message", [
    ("가\t나\tentails\n", "unknown label 'entails' in column 'gold_label'"),
    ("가\t나\n", "expected 3 tab-separated fields, got 2"),
    ('"가\t나"\t다\tneutral\n', "expected 3 tab-separated fields, got 4"),
])
def test_kornli_malformed_rows(tmp_path, row, message):
  _train_files(tmp_path, "개\t동물\tentailment\n" + row)
  with pytest.raises(DataFormatError, match=message) as e:
    _read(tmp_path, "kornli", "train")
  _assert_error_at(e, tmp_path / "kornli" / "snli_1.0_train.ko.tsv", 3)


def test_kornli_prepares_through_tfds(raw_data_dir, tmp_path, monkeypatch):
  root = tmp_path / "raw"
  _train_files(root, SNLI_ROWS)
  for name in ("xnli.dev.ko.tsv", "xnli.test.ko.tsv"):
    shutil.copy(raw_data_dir / "kornli" / name, root / "kornli" / name)
  monkeypatch.setenv("KORANI_DATA_DIR", str(root))
  source = sources.KoraniTfdsSource("kornli", SPLITS,
                                    tfds_data_dir=tmp_path / "tfds")
  assert {s: source.num_input_examples(s) for s in SPLITS} == {
      "train": 4, "validation": 2490, "test": 5010}


# --- KorSTS. ---

STS_ROWS = {"train": 5749, "validation": 1500, "test": 1379}
STS_SIMILAR = {"train": 2994, "validation": 629, "test": 673}
STS_FILES = {"train": "sts-train.tsv", "validation": "sts-dev.tsv",
             "test": "sts-test.tsv"}


@pytest.mark.parametrize("split", SPLITS)
def test_korsts_counts_keys_and_labels(raw_data_dir, split):
  pairs = _read(raw_data_dir, "kor_sts", split)
  assert len(pairs) == STS_ROWS[split]
  assert [k for k, _ in pairs] == [
      f"{STS_FILES[split]}:{line}" for line in range(2, len(pairs) + 2)]
  records = [r for _, r in pairs]
  assert collections.Counter(r["label"] for r in records) == {
      1: STS_SIMILAR[split], 0: STS_ROWS[split] - STS_SIMILAR[split]}
  assert all(r["label"] == (r["score"] >= 3.0) for r in records)
  assert all(0.0 <= r["score"] <= 5.0 for r in records)
  assert all(r["score_bucket"] == math.floor(r["score"] + 0.5)
             for r in records)
  assert set(r["score_bucket"] for r in records) == set(range(6))
  assert all(r["sentence1"] and r["sentence2"] for r in records)


def test_korsts_genres_as_written(raw_data_dir):
  genres = {split: collections.Counter(
      r["genre"] for _, r in _read(raw_data_dir, "kor_sts", split))
            for split in SPLITS}
  assert genres == {
      "train": {"main-news": 3299, "main-captions": 2000, "main-forum": 450},
      "validation": {"main-captions": 625, "main-news": 500,
                     "main-forums": 375},
      "test": {"main-captions": 625, "main-news": 500, "main-forums": 254},
  }


def test_korsts_first_rows(raw_data_dir):
  records = [r for _, r in _read(raw_data_dir, "kor_sts", "train")]
  assert records[1] == {
      "genre": "main-captions", "score": 3.8,
      "sentence1": "한 남자가 큰 플루트를 연주하고 있다.",
      "sentence2": "남자가 플루트를 연주하고 있다.",
      "label": 1, "score_bucket": 4}
  test = [r for _, r in _read(raw_data_dir, "kor_sts", "test")]
  assert (test[0]["score"], test[0]["label"], test[0]["score_bucket"]) == (
      2.5, 0, 3)


def test_korsts_quotes_are_kept(raw_data_dir):
  for split in SPLITS:
    path = raw_data_dir / "korsts" / STS_FILES[split]
    records = [r for _, r in _read(raw_data_dir, "kor_sts", split)]
    quotes = sum(r[f].count('"') for r in records
                 for f in ("sentence1", "sentence2"))
    assert quotes == path.read_text(encoding="utf-8").count('"') > 0


@pytest.mark.parametrize("score, bucket", [
    (0.0, 0), (0.49, 0), (0.5, 1), (2.5, 3), (2.999, 3), (4.6, 5), (5.0, 5)])
def test_score_bucket_rounds_half_up(score, bucket):
  assert kornlu.score_bucket(score) == bucket


def test_korsts_integer_score_and_threshold(tmp_path):
  path = _write(tmp_path / "sts-dev.tsv", STS_HEADER
                + "main-news\theadlines\t2016\t1\t3\t가\t나\n"
                + 'main-news\theadlines\t2016\t2\t2.999\t"가\t나\n')
  records = [r for _, r in kornlu.read_korsts(path)]
  assert [(r["score"], r["label"]) for r in records] == [(3.0, 1), (2.999, 0)]
  assert records[1]["sentence1"] == '"가'


@pytest.mark.parametrize("score, message", [
    ("5.5", "outside 0-5"), ("-1", "expected a decimal score"),
    ("abc", "expected a decimal score"), ("", "expected a decimal score"),
    ("nan", "expected a decimal score")])
def test_korsts_bad_scores(tmp_path, score, message):
  path = _write(tmp_path / "sts-train.tsv", STS_HEADER
                + "main-news\th\t2016\t1\t1.0\t가\t나\n"
                + f"main-news\th\t2016\t2\t{score}\t가\t나\n")
  with pytest.raises(DataFormatError, match=message) as e:
    list(kornlu.read_korsts(path))
  _assert_error_at(e, path, 3)


def test_korsts_missing_column(tmp_path):
  path = _write(tmp_path / "sts-train.tsv",
                "genre\tscore\tsentence1\tsentence2\nmain-news\t1\t가\t나\n")
  with pytest.raises(DataFormatError, match="missing column 'filename'"):
    list(kornlu.read_korsts(path))


@pytest.fixture(scope="module")
def korsts_source(raw_data_dir, tmp_path_factory):
  return sources.KoraniTfdsSource(
      "kor_sts", SPLITS, tfds_data_dir=tmp_path_factory.mktemp("tfds"))


def test_korsts_prepares_through_tfds(raw_data_dir, korsts_source):
  assert {s: korsts_source.num_input_examples(s) for s in SPLITS} == (
      STS_ROWS)
  got = sorted(
      ((ex["sentence1"].decode(), ex["sentence2"].decode(),
        float(ex["score"]), int(ex["label"]), int(ex["score_bucket"]))
       for ex in korsts_source.get_dataset(
           "test", shuffle=False).as_numpy_iterator()))
  want = sorted((r["sentence1"], r["sentence2"], r["score"], r["label"],
                 r["score_bucket"])
                for _, r in _read(raw_data_dir, "kor_sts", "test"))
  assert [g[:2] + g[3:] for g in got] == [w[:2] + w[3:] for w in want]
  assert all(math.isclose(g[2], w[2], rel_tol=1e-6)
             for g, w in zip(got, want))
