"""Raw folders and prepared datasets on a non-local filesystem (ram://).

TensorFlow's in-memory ``ram://`` filesystem goes through ``tf.io.gfile``
like gs://, offline: real KoBEST files copied there are read by the readers
and prepared by TFDS (into a local data dir: ram:// cannot hold one).
"""

import os
import threading
import uuid

import pytest
import tensorflow as tf

from korani_tasks import errors
from korani_tasks import readers
from korani_tasks import sources
from korani_tasks import storage
from korani_tasks.tfds_builders import raw as raw_builders

DATASET = "kobest_copa"


@pytest.fixture
def ram_raw(raw_data_dir):
  """A ram:// copy of the KoBEST COPA files; removed afterwards."""
  root = f"ram://raw_{uuid.uuid4().hex}"
  for name in readers.RAW_DATASETS[DATASET].files():
    tf.io.gfile.makedirs(os.path.dirname(f"{root}/{name}"))
    tf.io.gfile.copy(os.path.join(raw_data_dir, name), f"{root}/{name}")
  yield root
  tf.io.gfile.rmtree(root)


def test_readers_read_ram_files_as_local_ones(raw_data_dir, ram_raw):
  raw = readers.RAW_DATASETS[DATASET]
  local = list(raw.read("validation", raw.paths(raw_data_dir, "validation")))
  remote = list(raw.read("validation", raw.paths(ram_raw, "validation")))
  assert len(local) == 500 and remote == local
  assert raw.present_splits(ram_raw) == raw.present_splits(raw_data_dir)


def test_a_dataset_is_prepared_from_ram(raw_data_dir, ram_raw, monkeypatch,
                                        tmp_path):
  """KORANI_DATA_DIR on ram://: the prepared copy records the files'
  hashes, a second use finds it current, and a ram:// TFDS data dir (which
  cannot work: ram:// renames no folder's files) is refused by name."""
  monkeypatch.setenv("KORANI_DATA_DIR", ram_raw)
  builder_cls = raw_builders.BUILDERS[DATASET]
  builder = sources.prepare(builder_cls, tmp_path)
  assert builder.prepared_source_checksums() == (
      builder_cls.source_checksums(raw_data_dir))
  assert builder.info.metadata[raw_builders.SOURCE_STAT] == {
      name: storage.file_stat(f"{ram_raw}/{name}")
      for name in builder.prepared_source_checksums()}
  assert len(list(builder.as_dataset(split="validation"))) == 500
  assert not list(tmp_path.glob(f"{DATASET}/.*.preparing"))
  assert sources.prepare(builder_cls, tmp_path).info.splits[
      "validation"].num_examples == 500
  with pytest.raises(errors.ConfigError, match="ram://tfds.*renames"):
    sources.prepare(builder_cls, "ram://tfds")


def test_an_unsupported_scheme_is_named():
  with pytest.raises(errors.ConfigError, match=r"ftp://.*supported: .*gs://"):
    storage.path("ftp://host/raw")


def test_prepare_once_waits_for_the_marker_owner(tmp_path):
  """A second process finding the marker waits for the result; with the
  owner gone and no result, the error names the marker."""
  marker = tmp_path / ".1.0.0.preparing"
  marker.write_text("another host pid 1\n")
  done = threading.Event()
  prepared = []
  threading.Timer(0.3, done.set).start()
  storage.prepare_once(marker, done.is_set, lambda: prepared.append(1),
                       poll=0.05)
  assert not prepared and marker.exists()
  with pytest.raises(errors.MissingDataError, match=str(marker)):
    storage.prepare_once(marker, lambda: False, lambda: None, timeout=0.1,
                         poll=0.05)
  marker.unlink()
  storage.prepare_once(marker, lambda: False, lambda: prepared.append(1))
  assert prepared == [1] and not marker.exists()


def test_on_cloud_storage_process_0_prepares_and_the_others_wait(monkeypatch):
  marker = f"ram://prep_{uuid.uuid4().hex}/.1.0.0.preparing"
  prepared = []
  monkeypatch.setenv(storage.PROCESS_INDEX_ENV, "1")
  with pytest.raises(errors.MissingDataError, match="process 0"):
    storage.prepare_once(marker, lambda: False, lambda: prepared.append(1),
                         timeout=0.1, poll=0.05)
  monkeypatch.setenv(storage.PROCESS_INDEX_ENV, "0")
  storage.prepare_once(marker, lambda: False, lambda: prepared.append(1))
  assert prepared == [1]
