"""The TFDS builder of the P3 records: ``p3_records``, one config per dataset.

Each P3 source (`korani_tasks.p3.base.P3_SOURCES`: the canonical-file readers
of `korani_tasks.p3.readers` and the Hugging Face-folder sources of
`korani_tasks.p3.hf_folder`) becomes a builder config named after its
promptsource key with '/' as '__' (``p3_records/super_glue__rte``,
``p3_records/anli``, ``p3_records/cnn_dailymail__3.0.0``). Records are kept
as JSON strings, so nested Hugging Face records need no TFDS schema::

    {"key": "val.jsonl:3",
     "record": '{"premise": "...", "hypothesis": "...", "idx": 2, "label": 1}'}

Splits are the source's (Hugging Face) split names (``validation``,
``dev_r1``, ...). The manual dir is ``$KORANI_DATA_DIR`` (the Hugging
Face-folder sources read ``$P3_DATA_DIR``, default ``$KORANI_DATA_DIR/p3``)::

    builder = tfds.builder("p3_records/super_glue__rte", data_dir="/tmp/tfds")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.environ["KORANI_DATA_DIR"], try_download_gcs=False))

(`korani_tasks.sources.KoraniTfdsSource("p3_records/super_glue__rte", ...)`
does this on first use.) A split whose files are absent is left out, with a
warning naming them; a source with no file at all raises MissingDataError.
The sha256 of each source file is kept in the prepared dataset's metadata
(``source_sha256``, by path relative to the manual dir, or absolute where a
file lies outside it), so a copy prepared from other files is detected.
"""

import json
import logging
import os
import pathlib

import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import checksums
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks.p3 import base
from korani_tasks.p3 import catalog
from korani_tasks.p3 import hf_folder  # Registers the sources (readers first).
from korani_tasks.tfds_builders import raw
from korani_tasks import storage

_log = logging.getLogger(__name__)

NAME = "p3_records"
SOURCE_SHA256 = raw.SOURCE_SHA256

_MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Put the canonical files of the P3 datasets under $KORANI_DATA_DIR as "
    "korani_tasks/p3/readers.py lists them (e.g. superglue/RTE/val.jsonl), "
    "and the Hugging Face records of the other datasets under $P3_DATA_DIR "
    "(default $KORANI_DATA_DIR/p3) as korani_tasks/p3/hf_folder.py "
    "describes (e.g. p3/cos_e/v1.11/train.jsonl); pass "
    "manual_dir=$KORANI_DATA_DIR.")


def config_name(key: str) -> str:
  """'super_glue/rte' -> 'super_glue__rte' (a TFDS config name)."""
  return key.replace("/", "__")


def builder_name(key: str) -> str:
  """'super_glue/rte' -> 'p3_records/super_glue__rte'."""
  return f"{NAME}/{config_name(key)}"


def _json_default(value):
  """JSON for the few non-JSON values Arrow/Parquet rows may hold."""
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  return str(value)  # datetime, Decimal, ...


def record_json(record: base.Record) -> str:
  return json.dumps(record, ensure_ascii=False, default=_json_default)


def _relative(path: pathlib.Path, root: pathlib.Path) -> str:
  try:
    return path.relative_to(root).as_posix()
  except ValueError:
    return path.as_posix()


class P3Records(tfds.core.GeneratorBasedBuilder):
  """P3 records as JSON strings, one config per P3 source."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "P3 records (Hugging Face fields) as JSON."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name=config_name(key), description=key)
      for key in sorted(base.P3_SOURCES)]
  MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

  @classmethod
  def default_manual_dir(cls) -> pathlib.Path:
    """``$KORANI_DATA_DIR`` (MissingDataError where unset)."""
    return paths.data_dir()

  @property
  def source_key(self) -> str:
    """The promptsource key of this config ('super_glue/rte')."""
    name = self.builder_config.name
    for key in base.P3_SOURCES:
      if config_name(key) == name:
        return key
    raise KeyError(f"{NAME}: no P3 source for config {name!r}")

  @property
  def source(self) -> base.P3Source:
    return base.P3_SOURCES[self.source_key]

  def _info(self) -> tfds.core.DatasetInfo:
    entry = catalog.load().get(self.source_key)
    note = self.source.note
    return tfds.core.DatasetInfo(
        builder=self,
        description=(f"P3 records of {self.source_key} (promptsource's "
                     "dataset key), as JSON." + (f"\n\n{note}" if note else "")),
        features=tfds.features.FeaturesDict({
            "key": tf.string,
            "record": tf.string,
        }),
        homepage=entry.homepage if entry else None,
        license=entry.license if entry else None,
        metadata=tfds.core.MetadataDict(),
    )

  def _expected(self, manual_dir, split: str) -> str:
    expected = getattr(self.source, "expected_files", None)
    if expected is not None:
      return expected(manual_dir, split)
    return ", ".join(map(str, self.source.paths(manual_dir, split)))

  def source_files(
      self, manual_dir: os.PathLike | str) -> dict[str, tuple[pathlib.Path, ...]]:
    """The files of each split whose files are all present, by split name.

    Raises:
      MissingDataError: no split has its files; the message names them.
    """
    manual_dir = storage.path(manual_dir)
    present = {}
    for split in self.source.splits:
      split_paths = self.source.paths(manual_dir, split)
      if split_paths and all(p.is_file() for p in split_paths):
        present[split] = split_paths
      else:
        _log.info("%s: split %s left out, missing %s",
                  builder_name(self.source_key), split,
                  self._expected(manual_dir, split))
    if not present:
      expected = "; ".join(f"{s}: {self._expected(manual_dir, s)}"
                           for s in self.source.splits)
      raise errors.MissingDataError(
          f"{builder_name(self.source_key)}: none of its source files is "
          f"there; expected {expected}.\n{_MANUAL_DOWNLOAD_INSTRUCTIONS}\n"
          + paths.MISSING_DATA_HELP.format(env=paths.DATA_DIR_ENV))
    return present

  def source_checksums(self, manual_dir: os.PathLike | str,
                       digest=None) -> dict[str, str]:
    """The sha256 of each present source file, by path relative to
    `manual_dir` (absolute for a file outside it). `digest` replaces sha256
    (`raw.file_stat`: sizes and mtimes)."""
    manual_dir = storage.path(manual_dir)
    files = dict.fromkeys(
        p for ps in self.source_files(manual_dir).values() for p in ps)
    digest = digest or checksums.file_sha256
    return {_relative(p, manual_dir): digest(p) for p in files}

  def prepared_source_checksums(self) -> dict[str, str]:
    """`source_checksums` as recorded when this copy was prepared, or {}."""
    return dict(self.info.metadata.get(SOURCE_SHA256, {}))

  def missing_split_message(self, split: str) -> str:
    """Why `split` is not prepared (for `KoraniTfdsSource`)."""
    try:
      manual_dir = self.default_manual_dir()
      expected = self._expected(manual_dir, split)
    except errors.MissingDataError:
      expected = ", ".join(self.source.split_files.get(split, ()))
    return (f"{builder_name(self.source_key)}: split {split!r} is not "
            f"available: it needs {expected}, which were not there when the "
            f"dataset was prepared.\n{_MANUAL_DOWNLOAD_INSTRUCTIONS}")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = storage.path(dl_manager.manual_dir)
    files = self.source_files(manual_dir)
    left_out = [s for s in self.source.splits if s not in files]
    if left_out:
      _log.warning("%s: preparing without split(s) %s: their files are not "
                   "there", builder_name(self.source_key), ", ".join(left_out))
    self.info.metadata[SOURCE_SHA256] = self.source_checksums(manual_dir)
    self.info.metadata[raw.SOURCE_STAT] = self.source_checksums(
        manual_dir, digest=raw.file_stat)
    return {split: self._generate_examples(split, split_paths)
            for split, split_paths in files.items()}

  def _generate_examples(self, split: str, split_paths):
    for key, record in self.source.read(split, split_paths):
      yield key, {"key": key, "record": record_json(record)}
