"""Tests of the KoBEST TFDS builders and `KoraniTfdsSource`.

All five builders are prepared once per session into a tmp TFDS folder; tests
that change source files work on a tmp copy of one KoBEST folder.
"""

import logging
import os
import shutil

import numpy as np
import pytest
import seqio
import tensorflow_datasets as tfds

from korani_tasks import checksums
from korani_tasks import sources
from korani_tasks.errors import MissingDataError
from korani_tasks.readers import kobest
from korani_tasks.tfds_builders import raw as raw_builders

NAMES = sorted(kobest.KOBEST_DATASETS)
SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="session")
def prepared(kobest_dir, tmp_path_factory):
  """Sources over all five builders, prepared into one tmp TFDS folder."""
  tfds_dir = tmp_path_factory.mktemp("tfds")
  result = {name: sources.KoraniTfdsSource(name, SPLITS, tfds_data_dir=tfds_dir)
            for name in NAMES}
  for source in result.values():
    assert source.builder.is_prepared()
  return result


def _as_python(example):
  return {k: v.decode("utf-8") if isinstance(v, bytes) else int(v)
          for k, v in example.items()}


def _reader_records(raw_data_dir, name, split):
  dataset = kobest.KOBEST_DATASETS[name]
  return [r for _, r in dataset.reader(dataset.path(raw_data_dir, split))]


@pytest.mark.parametrize("name", NAMES)
def test_counts_match_readers(prepared, raw_data_dir, name):
  for split in SPLITS:
    assert prepared[name].num_input_examples(split) == len(
        _reader_records(raw_data_dir, name, split))


@pytest.mark.parametrize("name", NAMES)
def test_validation_records_match_reader(prepared, raw_data_dir, name):
  ds = prepared[name].get_dataset("validation", shuffle=False)
  got = sorted((_as_python(ex) for ex in ds.as_numpy_iterator()),
               key=lambda r: r["idx"])
  want = sorted(_reader_records(raw_data_dir, name, "validation"),
                key=lambda r: r["idx"])
  assert got == want


@pytest.mark.parametrize("name", NAMES)
def test_dataset_info(prepared, raw_data_dir, name):
  builder = prepared[name].builder
  info = builder.info
  assert str(info.version) == "1.0.0"
  assert set(info.splits) == set(SPLITS)
  assert info.features["label"].names == list(
      kobest.KOBEST_DATASETS[name].label_names)
  assert info.redistribution_info.license == "CC-BY-SA-4.0"
  assert "KoBEST_datarepo" in info.homepage
  checksums = builder.source_checksums(raw_data_dir)
  assert len(checksums) == 3
  assert builder.prepared_source_checksums() == checksums
  assert "KORANI_DATA_DIR" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_sentineg_test_split_types(prepared):
  ex = next(prepared["kobest_sentineg"].get_dataset(
      "test", shuffle=False).as_numpy_iterator())
  assert ex["original_label"].dtype == np.int32
  assert ex["negation_category"] in (1, 2, 3)
  assert ex["original_sentence"] != ex["sentence"]


def test_seed_fixes_order_and_shards_cover_split(prepared):
  source = prepared["kobest_copa"]
  ids = lambda ds: [int(ex["idx"]) for ex in ds.as_numpy_iterator()]
  first = ids(source.get_dataset("train", shuffle=True, seed=7))
  assert first == ids(source.get_dataset("train", shuffle=True, seed=7))
  assert len(source.list_shards("train")) == 1
  shard = source.get_dataset("train", shuffle=False,
                             shard_info=seqio.ShardInfo(index=0, num_shards=1))
  assert sorted(ids(shard)) == sorted(first)


def test_sliced_split(prepared):
  source = sources.KoraniTfdsSource(
      "kobest_wic", {"validation": "validation[:10]"},
      tfds_data_dir=prepared["kobest_wic"].builder.data_dir_root)
  assert source.splits == ("validation",)
  assert source.num_input_examples("validation") == 10
  with pytest.raises(ValueError, match="no split 'train'"):
    source.get_dataset("train")


def test_construction_reads_nothing_and_use_needs_data_dir(
    monkeypatch, tmp_path):
  monkeypatch.delenv("KORANI_DATA_DIR", raising=False)
  source = sources.KoraniTfdsSource("kobest_copa", ["validation"],
                                    tfds_data_dir=tmp_path)
  assert source.splits == ("validation",)
  with pytest.raises(MissingDataError, match="KORANI_DATA_DIR is not set"):
    source.get_dataset("validation", shuffle=False)
  assert list(tmp_path.iterdir()) == []


def test_missing_file_is_named(monkeypatch, tmp_path):
  copa = tmp_path / "raw" / "kobest" / "COPA"
  copa.mkdir(parents=True)
  for name in ("train.tsv", "dev.tsv"):
    (copa / name).write_text("ID\tsentence\tquestion\t1\t2\tAnswer\n"
                             "1\t전제\t원인\t가\t나\t1\n", encoding="utf-8")
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path / "raw"))
  source = sources.KoraniTfdsSource("kobest_copa", ["train", "test"],
                                    tfds_data_dir=tmp_path / "tfds")
  assert source.num_input_examples("train") == 1  # Present splits work.
  with pytest.raises(MissingDataError) as e:
    source.num_input_examples("test")
  assert str(copa / "test.tsv") in str(e.value)
  assert "KORANI_DATA_DIR" in str(e.value)


def test_no_source_file_at_all_is_an_error(monkeypatch, tmp_path):
  (tmp_path / "raw").mkdir()
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path / "raw"))
  source = sources.KoraniTfdsSource("kobest_copa", ["train"],
                                    tfds_data_dir=tmp_path / "tfds")
  with pytest.raises(MissingDataError, match="kobest/COPA/train.tsv"):
    source.num_input_examples("train")


def _prepared_sentineg_copy(kobest_dir, monkeypatch, tmp_path):
  """A prepared copy of KoBEST SentiNeg from a tmp copy of its files;
  returns (the raw folder, a function making a new source over it)."""
  raw = tmp_path / "raw"
  shutil.copytree(kobest_dir / "SentiNeg", raw / "kobest" / "SentiNeg")
  monkeypatch.setenv("KORANI_DATA_DIR", str(raw))
  new_source = lambda: sources.KoraniTfdsSource(
      "kobest_sentineg", SPLITS, tfds_data_dir=tmp_path / "tfds")
  assert new_source().num_input_examples("validation") == 400
  return raw, new_source


def test_changed_source_file_is_prepared_again(
    kobest_dir, monkeypatch, tmp_path, caplog):
  raw, new_source = _prepared_sentineg_copy(kobest_dir, monkeypatch, tmp_path)
  tfds_dir = tmp_path / "tfds"

  caplog.set_level(logging.INFO, logger=sources.__name__)
  caplog.clear()
  assert new_source().num_input_examples("validation") == 400
  assert not [r for r in caplog.records if r.name == sources.__name__]

  dev = raw / "kobest" / "SentiNeg" / "dev.tsv"
  dev.chmod(0o644)
  with open(dev, "ab") as f:
    f.write("\r\n9001\t1\t아주 좋아요".encode("utf-8"))
  source = new_source()
  assert source.num_input_examples("validation") == 401
  assert "source files changed" in caplog.text
  assert "kobest/SentiNeg/dev.tsv" in caplog.text
  ids = {int(ex["idx"]) for ex in
         source.get_dataset("validation", shuffle=False).as_numpy_iterator()}
  assert 9001 in ids
  assert source.builder.prepared_source_checksums() == (
      tfds.builder_cls("kobest_sentineg").source_checksums(raw))
  leftovers = [p.name for p in (tfds_dir / "kobest_sentineg").iterdir()
               if p.name.startswith("incomplete")]
  assert leftovers == []


def test_prepared_copy_is_not_hashed_again_and_stands_alone(
    kobest_dir, monkeypatch, tmp_path, caplog):
  raw, new_source = _prepared_sentineg_copy(kobest_dir, monkeypatch, tmp_path)
  hashed = []
  real_sha256 = checksums.file_sha256
  monkeypatch.setattr(checksums, "file_sha256",
                      lambda path: hashed.append(path) or real_sha256(path))
  # Unchanged files: sizes and mtimes only.
  assert new_source().num_input_examples("validation") == 400
  assert hashed == []
  # Touched, same content: that file alone is hashed; not prepared again.
  dev = raw / "kobest" / "SentiNeg" / "dev.tsv"
  dev.chmod(0o644)
  os.utime(dev, ns=(dev.stat().st_atime_ns, dev.stat().st_mtime_ns + 10**9))
  caplog.set_level(logging.INFO, logger=sources.__name__)
  caplog.clear()
  assert new_source().num_input_examples("validation") == 400
  assert hashed == [dev] and "Preparing" not in caplog.text
  # Raw files gone, data folder unset: the prepared copy serves alone.
  shutil.rmtree(raw)
  for unset in (False, True):
    if unset:
      monkeypatch.delenv("KORANI_DATA_DIR")
    source = new_source()
    rows = list(source.get_dataset("validation", shuffle=False)
                .as_numpy_iterator())
    assert len(rows) == 400


def test_builders_are_registered():
  for name in NAMES:
    assert issubclass(tfds.builder_cls(name), raw_builders.RawSourceBuilder)
