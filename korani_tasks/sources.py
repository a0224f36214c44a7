"""A seqio DataSource over a KORANI TFDS builder, prepared from local files.

KORANI's TFDS builders read canonical files that the user has put under
``$KORANI_DATA_DIR``; nothing is downloaded. Source folders and the TFDS data
dir may be local or on cloud storage (gs://; `korani_tasks.storage`). `KoraniTfdsSource` prepares its
builder on first use (not at construction, since tasks are registered at
import time, where the data may be absent)::

    source = KoraniTfdsSource("kobest_copa", ["train", "validation"])
    ds = source.get_dataset("validation", shuffle=False)
    # {"idx": 1, "premise": b"...", "question": b"...", ..., "label": 1}

A builder with configs is named ``<builder>/<config>``, e.g. the KORANI
release (`korani_tasks.tfds_builders.release`)::

    source = KoraniTfdsSource("korani_release/aihub_minwon", ["train"])

`prepare` writes the dataset to the TFDS data dir (``tfds_data_dir``, else
``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``) and prepares it again when
the source files' sha256 differ from those recorded at preparation. Files are
hashed when a dataset is prepared (and by ``korani data verify``); on later
uses a file is hashed again only if its size or mtime changed, and a prepared
copy whose source files are gone (or whose data folder is unset) is used as it
is.

A builder used here must provide, besides the TFDS interface,
``source_checksums(manual_dir)`` (sha256 of each current source file, called on
the builder instance; raises MissingDataError for a missing one) and
``prepared_source_checksums()`` (those recorded in its prepared copy), with
``source_checksums(manual_dir, digest=raw.file_stat)`` for sizes and mtimes
(recorded as ``raw.SOURCE_STAT`` in its metadata), as
`korani_tasks.tfds_builders.raw.RawSourceBuilder` does. It may provide
``default_manual_dir()`` (classmethod: the folder its files are read from;
default ``$KORANI_DATA_DIR``) and ``missing_split_message(split)`` (why a split
is absent from the prepared copy).
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
import logging
import os
import threading

import numpy as np
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import checksums
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks import storage
# Importing the builders registers them with TFDS (see tfds.builder_cls).
from korani_tasks.tfds_builders import raw as _raw  # noqa: F401
from korani_tasks.tfds_builders import release as _release  # noqa: F401

_log = logging.getLogger(__name__)

# The field `KoraniTfdsSource(..., example_index=True)` adds to each record:
# the record's position in its whole split (int64), the same whichever file
# or shard it is read from.
EXAMPLE_INDEX = "example_index"
# A TFDS example id: "<dataset>-<split>.<format>-<shard>-of-<shards>__<index>".
_TFDS_ID_PATTERN = r"^.*-([0-9]+)-of-[0-9]+__([0-9]+)$"


def example_index(tfds_id: tf.Tensor, shard_lengths: Sequence[int]
                  ) -> tf.Tensor:
  """The position in its split of the example with TFDS id `tfds_id`.

  With shard lengths [5, 4], ``kobest_copa-validation.tfrecord-00001-of-00002__3``
  (example 3 of shard 1) is example 5 + 3 = 8 of the split.
  """
  offsets = tf.constant(np.cumsum([0] + list(shard_lengths[:-1])), tf.int64)
  shard = tf.strings.to_number(
      tf.strings.regex_replace(tfds_id, _TFDS_ID_PATTERN, r"\1"), tf.int64)
  offset = tf.strings.to_number(
      tf.strings.regex_replace(tfds_id, _TFDS_ID_PATTERN, r"\2"), tf.int64)
  return tf.gather(offsets, shard) + offset


def manual_dir_of(builder_cls: type[tfds.core.DatasetBuilder]) -> os.PathLike:
  """The folder a KORANI builder reads its source files from.

  ``builder_cls.default_manual_dir()`` where the builder defines it (the KORANI
  release: `paths.release_dir`), else ``$KORANI_DATA_DIR``.

  Raises:
    MissingDataError: the folder is not set or does not exist.
  """
  default = getattr(builder_cls, "default_manual_dir", None)
  return default() if default else paths.data_dir()


def _full_name(builder: tfds.core.DatasetBuilder) -> str:
  config = builder.builder_config
  return f"{builder.name}/{config.name}" if config else builder.name


def _is_current(builder: tfds.core.DatasetBuilder,
                manual_dir: os.PathLike) -> bool:
  """Whether a prepared copy was made from the source files as they are now.

  Compares sizes and mtimes with those recorded at preparation, and hashes
  only the files where they differ (a file touched but not changed is still
  current). No source file in `manual_dir`: the copy stands alone (current).
  """
  try:
    stats = builder.source_checksums(manual_dir, digest=storage.file_stat)
  except errors.MissingDataError:
    _log.info("%s: no source file in %s; using the prepared copy in %s",
              _full_name(builder), manual_dir, builder.data_dir)
    return True
  recorded_sha = builder.prepared_source_checksums()
  recorded_stats = dict(builder.info.metadata.get(_raw.SOURCE_STAT, {}))
  if set(stats) != set(recorded_sha):
    return False
  changed = [name for name, stat in stats.items()
             if list(recorded_stats.get(name, [])) != list(stat)]
  return all(checksums.file_sha256(storage.path(manual_dir) / name)
             == recorded_sha[name] for name in changed)


def prepare(
    builder_cls: type[tfds.core.DatasetBuilder],
    tfds_data_dir: str | os.PathLike | None = None,
    config: str | None = None,
) -> tfds.core.DatasetBuilder:
  """Prepares a KORANI builder from its source files unless it is current.

  The prepared copy is current if it exists and was made from source files with
  the same sha256 as now (`_is_current`: checked by size and mtime, hashing
  only changed files), or if it exists and its source files are not there
  (the data folder unset, or without them). Otherwise one process (re)writes
  it (`storage.prepare_once`: the marker
  ``<tfds_data_dir>/<name>[/<config>]/.<version>.preparing`` on a local
  folder, process 0 on cloud storage) while the others wait; TFDS writes into a temporary folder and
  renames it when complete, so a failure leaves no partial dataset.
  Re-preparing deletes the stale copy first, so a process still reading that
  copy fails.

  Args:
    builder_cls: a registered KORANI builder class (see the module docstring).
    tfds_data_dir: where prepared datasets go; default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``; a local folder or a gs:// (`storage`) one.
    config: the builder config's name, for a builder with configs.

  Returns:
    A builder for the current prepared copy, ready for `as_dataset`.

  Raises:
    MissingDataError: the dataset is not prepared and the manual dir
      (`manual_dir_of`, e.g. ``$KORANI_DATA_DIR``) is unset or lacks a
      source file.
  """
  data_dir = os.fspath(
      tfds_data_dir or tfds.core.constants.get_default_data_dir())
  if data_dir.startswith("ram://"):
    raise errors.ConfigError(
        f"TFDS data dir {data_dir}: TensorFlow's ram:// filesystem cannot "
        "hold prepared datasets: TFDS writes a dataset into a temporary "
        "folder and renames it, and ram:// renames a folder's entry without "
        "its files. Use a local folder or gs:// (raw folders and seqio "
        "caches may be on ram://).")
  new_builder = lambda: builder_cls(data_dir=data_dir, config=config)
  builder = new_builder()
  try:
    manual_dir = manual_dir_of(builder_cls)
  except errors.MissingDataError:
    if builder.is_prepared():  # Stands alone: nothing to compare with.
      return builder
    raise
  if builder.is_prepared() and _is_current(builder, manual_dir):
    return builder
  checksums = builder.source_checksums(manual_dir)

  # <data_dir>/<name>[/<config>]/<version> is the prepared copy.
  marker = (storage.path(builder.data_dir).parent
            / f".{builder.version}.preparing")

  def ready() -> bool:
    fresh = new_builder()
    return (fresh.is_prepared()
            and fresh.prepared_source_checksums() == checksums)

  def write() -> None:
    fresh = new_builder()
    if not fresh.is_prepared():
      mode = tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
      _log.info("Preparing %s in %s from %s", _full_name(fresh),
                fresh.data_dir, manual_dir)
    else:
      mode = tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS  # Overwrites.
      recorded = fresh.prepared_source_checksums()
      changed = sorted(name for name in checksums.keys() | recorded.keys()
                       if checksums.get(name) != recorded.get(name))
      _log.warning(
          "Preparing %s in %s again: its source files changed since it was "
          "prepared (%s)", _full_name(fresh), fresh.data_dir,
          ", ".join(changed))
    fresh.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=os.fspath(manual_dir), download_mode=mode,
            try_download_gcs=False))

  storage.prepare_once(marker, ready, write)
  return new_builder()


class KoraniTfdsSource(seqio.DataSource):
  """Examples of a KORANI TFDS builder, prepared from local files on first use.

  Unlike `seqio.TfdsDataSource` this never asks GCS or the network: it
  prepares the builder from its manual dir (`manual_dir_of`: the KORANI
  release folder for ``korani_release/<key>``, else ``$KORANI_DATA_DIR``) with
  `prepare` on the first `get_dataset`, `num_input_examples` or
  `list_shards`, and re-prepares it if the source files changed. Construction
  reads no file.
  """

  def __init__(
      self,
      builder_name: str,
      splits: Iterable[str] | Mapping[str, str],
      *,
      tfds_data_dir: str | os.PathLike | None = None,
      caching_permitted: bool = True,
      example_index: bool = False,
  ):
    """Constructor.

    Args:
      builder_name: a registered KORANI builder, e.g. 'kobest_boolq', or
        ``<builder>/<config>``, e.g. 'korani_release/aihub_minwon'.
      splits: the split names to offer, or a mapping from each to a TFDS split
        or slice, e.g. ``{"validation": "validation[:50%]"}``.
      tfds_data_dir: where prepared datasets go; default ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``.
      caching_permitted: whether seqio may cache this source.
      example_index: add `EXAMPLE_INDEX`, the record's position in its split,
        to every record (what score-eval tasks number examples by: stable
        when the files of a split are read separately, as Beam does).
    """
    name, _, config = builder_name.partition("/")
    self._builder_cls = tfds.builder_cls(name)
    self._config = config or None
    if self._config is not None:
      configs = getattr(self._builder_cls, "builder_configs", {}) or {}
      if self._config not in configs:
        raise ValueError(
            f"{name} has no builder config {self._config!r}; configs: "
            f"{sorted(configs)}")
    self._name = builder_name
    self._split_map = (dict(splits) if isinstance(splits, Mapping)
                       else {split: split for split in splits})
    self._tfds_data_dir = tfds_data_dir
    self._example_index = example_index
    self._builder: tfds.core.DatasetBuilder | None = None
    self._builder_lock = threading.Lock()
    super().__init__(
        splits=self._split_map, caching_permitted=caching_permitted)

  @property
  def version_id(self) -> str:
    """The builder, config and version, e.g. ``"kobest_copa@1.0.0"``."""
    return f"{self._name}@{self._builder_cls.VERSION}"

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return False

  @property
  def builder(self) -> tfds.core.DatasetBuilder:
    """The prepared builder (prepared now if this is the first use)."""
    with self._builder_lock:
      if self._builder is None:
        self._builder = prepare(self._builder_cls, self._tfds_data_dir,
                                config=self._config)
      return self._builder

  def _tfds_split(self, split: str) -> str:
    """The TFDS split of `split`, which must have been prepared.

    Raises:
      ValueError: this source does not offer `split`.
      MissingDataError: the split's source files were absent when the builder
        was prepared; the message names them.
    """
    if split not in self._split_map:
      raise ValueError(
          f"{self._name} has no split {split!r} here; "
          f"splits: {list(self._split_map)}")
    tfds_split = self._split_map[split]
    base_split = tfds_split.split("[")[0]
    if base_split not in self.builder.info.splits:
      message = getattr(self.builder, "missing_split_message", None)
      if message:
        raise errors.MissingDataError(message(base_split))
      raw = getattr(self._builder_cls, "RAW", None)
      files = (", ".join(map(str, raw.paths(paths.data_dir(), base_split)))
               if raw else "its files")
      raise errors.MissingDataError(
          f"{self._builder_cls.name}: split {base_split!r} is not available: "
          f"it needs {files}, which were not in {paths.DATA_DIR_ENV} when the "
          "dataset was prepared.\n"
          + paths.MISSING_DATA_HELP.format(env=paths.DATA_DIR_ENV))
    return tfds_split

  def get_dataset(
      self,
      split: str = tfds.Split.TRAIN,
      shuffle: bool = True,
      seed: int | None = None,
      shard_info: seqio.ShardInfo | None = None,
      *,
      sequence_length: Mapping[str, int] | None = None,  # Unused
      use_cached: bool = False,  # Unused
      num_epochs: int | None = 1,  # Unused
  ) -> tf.data.Dataset:
    """The examples of `split`; the file order is fixed by `seed`.

    `shard_info` may ask for at most `len(list_shards(split))` shards (one per
    file; `seqio.Task` shards the examples itself when there are fewer).
    """
    tfds_split = self._tfds_split(split)
    input_context = None
    if shard_info:
      input_context = tf.distribute.InputContext(
          num_input_pipelines=shard_info.num_shards,
          input_pipeline_id=shard_info.index)
    read_config = tfds.ReadConfig(
        shuffle_seed=seed, input_context=input_context, skip_prefetch=True,
        add_tfds_id=self._example_index)
    ds = self.builder.as_dataset(
        split=tfds_split, shuffle_files=shuffle, read_config=read_config)
    if self._example_index:
      ds = self._with_example_index(ds, tfds_split)
    return ds

  def _with_example_index(self, ds: tf.data.Dataset,
                          tfds_split: str) -> tf.data.Dataset:
    """Replaces TFDS's ``tfds_id`` by `EXAMPLE_INDEX` (`example_index`)."""
    base_split = tfds_split.split("[")[0]
    lengths = self.builder.info.splits[base_split].shard_lengths

    def add_index(ex):
      ex = dict(ex)
      ex[EXAMPLE_INDEX] = example_index(ex.pop("tfds_id"), lengths)
      return ex

    return ds.map(add_index, num_parallel_calls=tf.data.AUTOTUNE)

  def num_input_examples(self, split: str) -> int:
    return self.builder.info.splits[self._tfds_split(split)].num_examples

  def list_shards(self, split: str) -> Sequence[str]:
    split_info = self.builder.info.splits[self._tfds_split(split)]
    return [os.fspath(f.filename) for f in split_info.file_instructions]

  def __repr__(self) -> str:
    return (f"{type(self).__name__}({self._name!r}, "
            f"splits={self._split_map}, tfds_data_dir={self._tfds_data_dir!r})")
