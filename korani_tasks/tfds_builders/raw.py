"""One TFDS builder per raw KORANI source, made from its `RawDataset`.

For every entry of `korani_tasks.readers.RAW_DATASETS` this module defines a
builder named after the dataset key (``kobest_copa``, ``beep_hate``, ...;
version 1.0.0) whose features and splits are those of the entry. The files are
not downloaded by the builder: it reads them from the manual dir, which is
``$KORANI_DATA_DIR``::

    builder = tfds.builder("beep_hate", data_dir="/tmp/tfds")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.environ["KORANI_DATA_DIR"], try_download_gcs=False))

(`korani_tasks.sources.KoraniTfdsSource` does this on first use; ``korani data
download`` fetches the files.) A split whose files are absent is left out of
the prepared dataset, with a warning naming the files (the shared test data
lacks e.g. KLUE's train files); a source with no file at all raises
MissingDataError. The sha256 of each source file is kept in the prepared
dataset's metadata, so a copy prepared from other files is detected
(`source_checksums` against `prepared_source_checksums`).
"""

import logging
import os
import pathlib
from typing import ClassVar

import tensorflow_datasets as tfds

from korani_tasks import checksums
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks import readers
from korani_tasks.readers import base
from korani_tasks import storage

_log = logging.getLogger(__name__)

# Key of `DatasetInfo.metadata` that maps each source file (relative to the
# manual dir) to its sha256 at preparation time.
SOURCE_SHA256 = "source_sha256"
# And to its [size, mtime in ns]: what `sources.prepare` compares on each use
# (hashing only a file whose size or mtime changed).
SOURCE_STAT = "source_stat"


file_stat = storage.file_stat  # ``[size, mtime_ns]``: a sign of a change.


class RawSourceBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the raw-source builders; a subclass sets `RAW`."""

  RAW: ClassVar[base.RawDataset]

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Read from the canonical source files."}

  def _info(self) -> tfds.core.DatasetInfo:
    info = self.RAW.info
    description = info.name + (f"\n\n{self.RAW.split_note}"
                               if self.RAW.split_note else "")
    return tfds.core.DatasetInfo(
        builder=self,
        description=description,
        features=tfds.features.FeaturesDict(dict(self.RAW.features)),
        homepage=info.homepage,
        license=info.license,
        metadata=tfds.core.MetadataDict(),
    )

  @classmethod
  def source_files(
      cls, manual_dir: os.PathLike | str) -> dict[str, tuple[pathlib.Path, ...]]:
    """The files of each split whose files are all present, by split name.

    Raises:
      MissingDataError: no split has all its files; the message names them.
    """
    present = {}
    for split in cls.RAW.splits:
      split_paths = cls.RAW.paths(manual_dir, split)
      missing = [p for p in split_paths if not p.is_file()]
      if missing:
        _log.info("%s: split %s left out, missing %s", cls.name, split,
                  ", ".join(map(str, missing)))
      else:
        present[split] = split_paths
    if not present:
      raise errors.MissingDataError(
          f"{cls.name}: none of its source files is in {manual_dir}; expected "
          + ", ".join(cls.RAW.files()) + ".\n"
          + cls.MANUAL_DOWNLOAD_INSTRUCTIONS + "\n"
          + paths.MISSING_DATA_HELP.format(env=paths.DATA_DIR_ENV))
    return present

  @classmethod
  def source_checksums(cls, manual_dir: os.PathLike | str,
                       digest=None) -> dict[str, str]:
    """The sha256 of each present source file, by path relative to `manual_dir`.

    Example: ``{"kobest/COPA/dev.tsv": "3f2a...", ...}``. `digest` replaces
    sha256 (`file_stat`: sizes and mtimes).

    Raises:
      MissingDataError: no split has all its files.
    """
    files = dict.fromkeys(
        p for ps in cls.source_files(manual_dir).values() for p in ps)
    digest = digest or checksums.file_sha256
    manual_dir = storage.path(manual_dir)
    return {p.relative_to(manual_dir).as_posix(): digest(p) for p in files}

  def prepared_source_checksums(self) -> dict[str, str]:
    """`source_checksums` as recorded when this copy was prepared, or {}."""
    return dict(self.info.metadata.get(SOURCE_SHA256, {}))

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = storage.path(dl_manager.manual_dir)
    files = self.source_files(manual_dir)
    left_out = [s for s in self.RAW.splits if s not in files]
    if left_out:
      _log.warning("%s: preparing without split(s) %s: their files are not in "
                   "%s", self.name, ", ".join(left_out), manual_dir)
    self.info.metadata[SOURCE_SHA256] = self.source_checksums(manual_dir)
    self.info.metadata[SOURCE_STAT] = self.source_checksums(
        manual_dir, digest=file_stat)
    return {split: self._generate_examples(split, split_paths)
            for split, split_paths in files.items()}

  def _generate_examples(self, split: str, split_paths):
    yield from self.RAW.read(split, split_paths)


def _class_name(key: str) -> str:
  return "".join(part.capitalize() for part in key.split("_")) + "Builder"


def _manual_download_instructions(raw: base.RawDataset) -> str:
  files = "\n".join(f"    $KORANI_DATA_DIR/{f}" for f in raw.files())
  return (f"Download {raw.info.name} from {raw.info.homepage} (or run `korani "
          f"data download {raw.name}`) and place the files, unmodified, as\n"
          f"{files}\nthen pass manual_dir=$KORANI_DATA_DIR.")


def _make_builder(raw: base.RawDataset) -> type[RawSourceBuilder]:
  return type(_class_name(raw.name), (RawSourceBuilder,), {
      "name": raw.name,
      "RAW": raw,
      "MANUAL_DOWNLOAD_INSTRUCTIONS": _manual_download_instructions(raw),
      "__doc__": raw.info.name,
      "__module__": __name__,
  })


BUILDERS: dict[str, type[RawSourceBuilder]] = {
    name: _make_builder(raw) for name, raw in readers.RAW_DATASETS.items()}
