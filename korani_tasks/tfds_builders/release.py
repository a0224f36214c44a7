"""The TFDS builder of the official KORANI release CSVs: ``korani_release``.

One builder config per catalog dataset, named after its key (51 configs; e.g.
``korani_release/aihub_minwon``), read from the release folder (the manual
dir; `korani_tasks.paths.release_dir`: ``$KORANI_RELEASE_DIR``, else
``$KORANI_DATA_DIR/KORANI``) by `korani_tasks.readers.release_csv`::

    builder = tfds.builder("korani_release/stylekqc", data_dir="/tmp/tfds")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.environ["KORANI_RELEASE_DIR"], try_download_gcs=False))

(`korani_tasks.sources.KoraniTfdsSource("korani_release/stylekqc", ...)`
does this on first use, taking the manual dir from `default_manual_dir`.)

Splits: ``train`` is ``<cluster>/<key>/train.csv``; ``validation`` is every
other CSV of that folder (one per template), in sorted file order. A split
with no file is left out. Records::

    {"input": "...", "output": "선택", "choices": ["질문", "선택", "금지",
     "부탁"], "answer_index": 1, "template": "dev_template0", "id": "5074"}

``answer_index`` is -1 for generation rows and for the release's rows whose
output is not among their choices ("unscorable"; their number per split is in
``info.metadata["unscorable_rows"]``, that of rows without choices in
``info.metadata["rows_without_choices"]``). The sha256 of each source CSV, by
path relative to the release folder, is in ``info.metadata["source_sha256"]``,
so a copy prepared from other files is detected (`source_checksums` against
`prepared_source_checksums`).
"""

import logging
import os
import pathlib

import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import catalog
from korani_tasks import checksums
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks.readers import release_csv
from korani_tasks.tfds_builders import raw
from korani_tasks import storage

_log = logging.getLogger(__name__)

NAME = "korani_release"
SPLITS = ("train", "validation")
SOURCE_SHA256 = raw.SOURCE_SHA256
_UNSCORABLE = "unscorable_rows"
_WITHOUT_CHOICES = "rows_without_choices"

_MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Get the KORANI release from its authors (Han et al., 2024) and pass its "
    "KORANI folder, unmodified, as manual_dir (korani_tasks finds it at "
    f"${paths.RELEASE_DIR_ENV}, else ${paths.DATA_DIR_ENV}/"
    f"{paths.RELEASE_SUBDIR}). A dataset is read from "
    "KORANI/<any cluster folder>/<dataset key>/: train.csv is the train "
    "split, every other *.csv the validation split (one file per template).")


def builder_name(key: str) -> str:
  """The TFDS name of a dataset's release config, e.g. 'korani_release/x'."""
  return f"{NAME}/{key}"


def warn_unknown_dataset_dirs(release_dir: os.PathLike | str) -> list[str]:
  """Logs a warning naming each release folder that no catalog key names.

  Returns their paths relative to `release_dir` (e.g.
  ``["summarization/book_summary"]``).
  """
  unknown = [p.relative_to(release_dir).as_posix()
             for p in release_csv.unknown_dataset_dirs(release_dir,
                                                       catalog.load())]
  if unknown:
    _log.warning(
        "KORANI release folder %s: dataset folder(s) %s match no catalog key "
        "(the release's dataset_name) and are not read", release_dir,
        ", ".join(unknown))
  return unknown


class KoraniRelease(tfds.core.GeneratorBasedBuilder):
  """The official KORANI release CSVs, one config per dataset key."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Read from the official KORANI release CSVs."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name=key, description=info.name)
      for key, info in catalog.load().items()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

  @classmethod
  def default_manual_dir(cls) -> pathlib.Path:
    """The folder `korani_tasks.sources.prepare` reads the CSVs from."""
    return paths.release_dir()

  @property
  def dataset_key(self) -> str:
    return self.builder_config.name

  def _info(self) -> tfds.core.DatasetInfo:
    info = catalog.get(self.dataset_key)
    return tfds.core.DatasetInfo(
        builder=self,
        description=(f"{info.name}, as rendered with the KORANI templates in "
                     "the official KORANI release (Han et al., 2024)."),
        features=tfds.features.FeaturesDict({
            "input": tf.string,
            "output": tf.string,
            "choices": tfds.features.Sequence(tf.string),
            "answer_index": tf.int32,
            "template": tf.string,
            "id": tf.string,
        }),
        homepage=info.homepage,
        license=info.license,
        metadata=tfds.core.MetadataDict(),
    )

  def dataset_dir(self, manual_dir: os.PathLike | str) -> pathlib.Path:
    """The dataset's folder ``<manual_dir>/<cluster>/<key>``.

    Raises:
      MissingDataError: there is no such folder; the message says what to do.
      DataFormatError: two cluster folders hold one.
    """
    manual_dir = storage.path(manual_dir)
    if not manual_dir.is_dir():
      raise errors.MissingDataError(
          f"{builder_name(self.dataset_key)}: the KORANI release folder "
          f"{manual_dir} does not exist.\n" + paths.MISSING_RELEASE_HELP)
    found = release_csv.find_dataset_dir(manual_dir, self.dataset_key)
    if found is None:
      raise errors.MissingDataError(
          f"{builder_name(self.dataset_key)}: no folder "
          f"{manual_dir}/<cluster>/{self.dataset_key}/ (with train.csv and "
          "the evaluation CSVs) in the KORANI release folder.\n"
          + paths.MISSING_RELEASE_HELP)
    return found

  def source_files(
      self, manual_dir: os.PathLike | str) -> dict[str, list[pathlib.Path]]:
    """The CSVs of each split that has any, e.g. ``{"train": [...]}``.

    Raises:
      MissingDataError: the dataset's folder is absent or has no CSV.
    """
    dataset_dir = self.dataset_dir(manual_dir)
    files = release_csv.split_files(dataset_dir)
    if not files:
      raise errors.MissingDataError(
          f"{builder_name(self.dataset_key)}: {dataset_dir} has no CSV file; "
          "expected train.csv and one evaluation CSV per template.\n"
          + paths.MISSING_RELEASE_HELP)
    return files

  def source_checksums(self, manual_dir: os.PathLike | str,
                       digest=None) -> dict[str, str]:
    """The sha256 of each source CSV, by path relative to `manual_dir`.

    Example: ``{"intent/stylekqc/train.csv": "3f2a...", ...}``. `digest`
    replaces sha256 (`raw.file_stat`: sizes and mtimes).
    """
    digest = digest or checksums.file_sha256
    return {p.relative_to(manual_dir).as_posix(): digest(p)
            for files in self.source_files(manual_dir).values()
            for p in files}

  def prepared_source_checksums(self) -> dict[str, str]:
    """`source_checksums` as recorded when this copy was prepared, or {}."""
    return dict(self.info.metadata.get(SOURCE_SHA256, {}))

  def prepared_unscorable_rows(self) -> dict[str, int]:
    """Rows per split whose output is not among their choices."""
    return dict(self.info.metadata.get(_UNSCORABLE, {}))

  def prepared_rows_without_choices(self) -> dict[str, int]:
    """Rows per split with no choices (all of a generation dataset's)."""
    return dict(self.info.metadata.get(_WITHOUT_CHOICES, {}))

  def missing_split_message(self, split: str) -> str:
    """Why `split` is not prepared (for `KoraniTfdsSource`)."""
    file_names = ("train.csv" if split == "train"
                  else "evaluation CSVs (any *.csv other than train.csv)")
    return (f"{builder_name(self.dataset_key)}: split {split!r} is not "
            f"available: its folder <cluster>/{self.dataset_key}/ had no "
            f"{file_names} when the dataset was prepared.\n"
            + paths.MISSING_RELEASE_HELP)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = storage.path(dl_manager.manual_dir)
    files = self.source_files(manual_dir)
    warn_unknown_dataset_dirs(manual_dir)
    left_out = [s for s in SPLITS if s not in files]
    if left_out:
      _log.warning("%s: preparing without split(s) %s: no such CSV in %s",
                   builder_name(self.dataset_key), ", ".join(left_out),
                   self.dataset_dir(manual_dir))
    self.info.metadata[SOURCE_SHA256] = self.source_checksums(manual_dir)
    self.info.metadata[raw.SOURCE_STAT] = self.source_checksums(
        manual_dir, digest=raw.file_stat)
    # Counted while the examples are generated (in this process).
    self.info.metadata[_UNSCORABLE] = dict.fromkeys(files, 0)
    self.info.metadata[_WITHOUT_CHOICES] = dict.fromkeys(files, 0)
    return {split: self._generate_examples(split, split_paths)
            for split, split_paths in files.items()}

  def _generate_examples(self, split: str, split_paths):
    unscorable = self.info.metadata[_UNSCORABLE]
    without_choices = self.info.metadata[_WITHOUT_CHOICES]
    for path in split_paths:
      other_names = set()
      for key, record in release_csv.read_release_csv(path):
        name = record.pop("dataset_name")
        if name != self.dataset_key:
          other_names.add(name)
        if not record["choices"]:
          without_choices[split] += 1
        elif record["answer_index"] < 0:
          unscorable[split] += 1
        yield key, record
      if other_names:
        _log.warning("%s: rows with dataset_name %s in the folder of %s",
                     path, sorted(other_names), self.dataset_key)
