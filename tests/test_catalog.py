"""The catalog: all 51 KORANI datasets, consistent with readers and data."""

import hashlib

import pytest

from korani_tasks import catalog
from korani_tasks import errors
from korani_tasks import readers
from korani_tasks import templates

RAW = sorted(readers.RAW_DATASETS)


def test_all_51_datasets_in_17_clusters():
  entries = catalog.load()
  assert len(entries) == 51
  assert {e.cluster for e in entries.values()} == set(catalog.CLUSTERS)
  assert len(catalog.CLUSTERS) == 17
  # Keys named in the issue and seen in the KORANI release sample.
  for key in ("naver_movie", "klue_sts", "kobest_copa", "aihub_minwon",
              "beep_hate", "kor_ss", "etri_qa", "nikl_coref",
              "aihub_korean_dialog2018", "similar_corpus"):
    assert key in entries, key


def test_raw_sources_are_exactly_the_registered_readers():
  raw_in_catalog = sorted(k for k, e in catalog.load().items()
                          if e.source == "raw")
  assert raw_in_catalog == RAW
  assert set(RAW) <= set(templates.available_datasets())


@pytest.mark.parametrize("dataset", RAW)
def test_reader_matches_its_catalog_entry(dataset):
  raw = readers.RAW_DATASETS[dataset]
  info = catalog.get(dataset)
  assert raw.splits == info.splits
  assert sorted(raw.files()) == sorted(f.path for f in info.files)
  label = raw.features.get("label")
  if info.labels:
    assert list(label.names) == list(info.labels)
  assert info.homepage.startswith("https://")
  assert all(f.url.startswith("https://") for f in info.files)


def test_recorded_checksums_match_the_shared_files(raw_data_dir):
  checked = 0
  for info in catalog.load().values():
    for f in info.files:
      path = raw_data_dir / f.path
      if f.sha256 and path.is_file():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256, f
        assert path.stat().st_size == f.size, f
        checked += 1
  assert checked >= 30


def test_malformed_catalog_names_the_entry(tmp_path):
  bad = tmp_path / "catalog.yaml"
  bad.write_text("datasets:\n  x:\n    name: X\n    cluster: poetry\n"
                 "    kind: nlu\n    license: MIT\n    homepage: h\n"
                 "    source: release\n    splits: [train]\n", encoding="utf-8")
  with pytest.raises(errors.ConfigError, match="x: cluster 'poetry'"):
    catalog.load(bad)
  with pytest.raises(errors.ConfigError, match="unknown dataset 'nsmc'"):
    catalog.get("nsmc")
