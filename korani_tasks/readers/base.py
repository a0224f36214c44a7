"""What a raw KORANI source is: its files, its reader and its record schema.

Every dataset read from canonical source files is described by one
`RawDataset` and registered with `register`; `korani_tasks.readers` imports
every reader module, so ``readers.RAW_DATASETS`` lists them all. A generic TFDS
builder (`korani_tasks.tfds_builders.raw`) is made for each entry, named after
the dataset key.

A reader turns the files of one split into ``(key, record)`` pairs, where
``key`` is unique within the split (by convention ``"<file name>:<line>"``, or
the record's id in the source) and ``record`` is a flat dict whose fields are
those of ``features``::

    raw = RAW_DATASETS["curse_detection"]
    for key, record in raw.read("validation", raw.paths(data_dir, "validation")):
      print(key, record)  # data.txt:17 {'text': '...', 'label': 1}

Where the source has no split of its own, every split names the same files and
the reader keeps the rows that `korani_tasks.readers.splits.assign_split`
gives to the split asked for.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
import dataclasses
import os
import pathlib
from typing import Any

from korani_tasks import catalog
from korani_tasks import errors
from korani_tasks import storage

Record = dict[str, Any]
# (split name, the split's files in `split_files` order) -> (key, record)s.
ReadFn = Callable[[str, Sequence[pathlib.Path]], Iterator[tuple[str, Record]]]


class SplitFiles:
  """Split-file lookups of a source with ``name`` and ``split_files``
  ({split: (path relative to the data folder, ...)}); shared by the KORANI
  `RawDataset` and the P3 sources."""

  name: str
  split_files: Mapping[str, tuple[str, ...]]

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(self.split_files)

  def paths(self, data_dir: os.PathLike | str,
            split: str) -> tuple[pathlib.Path, ...]:
    """The files of `split` under `data_dir`."""
    if split not in self.split_files:
      raise errors.ConfigError(
          f"{self.name} has no split {split!r}; splits: {list(self.split_files)}")
    return tuple(storage.path(data_dir, f) for f in self.split_files[split])

  def files(self) -> tuple[str, ...]:
    """Every source file of every split (relative paths), without repeats."""
    return tuple(dict.fromkeys(f for fs in self.split_files.values() for f in fs))

  def present_splits(self, data_dir: os.PathLike | str) -> tuple[str, ...]:
    """The splits whose files are all in `data_dir`."""
    return tuple(s for s in self.split_files
                 if all(p.is_file() for p in self.paths(data_dir, s)))


@dataclasses.dataclass(frozen=True)
class RawDataset(SplitFiles):
  """One dataset read from its canonical files.

  Attributes:
    name: the KORANI dataset key (in the catalog), also the TFDS builder name.
    split_files: the files each split is read from, relative to
      ``$KORANI_DATA_DIR``, e.g. ``{"validation": ("kobest/COPA/dev.tsv",)}``.
    read: the reader, ``read(split, paths)``.
    features: the record's TFDS features, e.g.
      ``{"text": tf.string, "label": label_feature("curse_detection")}``.
    split_note: how the splits were made when the source has none; shown in
      the TFDS description and in ``korani data list``.
  """

  name: str
  split_files: Mapping[str, tuple[str, ...]]
  read: ReadFn
  features: Mapping[str, Any]
  split_note: str = ""

  @property
  def info(self) -> catalog.DatasetInfo:
    return catalog.get(self.name)



RAW_DATASETS: dict[str, RawDataset] = {}


def register(raw: RawDataset) -> RawDataset:
  """Adds a raw dataset to `RAW_DATASETS`; its key must be in the catalog."""
  if raw.name in RAW_DATASETS:
    raise errors.ConfigError(f"raw dataset {raw.name!r} registered twice")
  catalog.get(raw.name)  # Raises ConfigError for a key not in the catalog.
  RAW_DATASETS[raw.name] = raw
  return raw


def label_feature(dataset: str):
  """A `tfds.features.ClassLabel` named by the catalog's labels of `dataset`."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.features.ClassLabel(names=list(catalog.get(dataset).labels))


def file_key(path: os.PathLike | str, line: int) -> str:
  """The usual record key: ``"<file name>:<line>"``, e.g. ``"dev.tsv:17"``."""
  return f"{pathlib.Path(path).name}:{line}"
