"""What a P3 source is: the files of one dataset/subset and their reader.

P3 records keep the field names of the Hugging Face dataset that the
promptsource templates were written for (e.g. SuperGLUE RTE records are
``{"premise", "hypothesis", "idx", "label"}`` with label 0 = entailment), so
that every template renders them as promptsource would. A reader turns the
canonical files of one split into ``(key, record)`` pairs::

    source = P3_SOURCES["super_glue/rte"]
    for key, record in source.read("validation", source.paths(data_dir, "validation")):
      ...  # "val.jsonl:3", {"premise": "...", "hypothesis": "...", "idx": 2, "label": 1}

Records may be nested (lists, dicts), as Hugging Face records are; they are
stored as JSON in the TFDS builders, so no per-dataset schema is needed.
``$KORANI_DATA_DIR`` holds the canonical files (paths relative to it).
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
import dataclasses
import pathlib
from typing import Any

from korani_tasks import errors
from korani_tasks.readers import base as readers_base

Record = dict[str, Any]
ReadFn = Callable[[str, Sequence[pathlib.Path]], Iterator[tuple[str, Record]]]


@dataclasses.dataclass(frozen=True)
class P3Source(readers_base.SplitFiles):
  """One P3 dataset/subset read from its canonical files.

  Attributes:
    dataset: the Hugging Face dataset name, e.g. 'super_glue', 'anli'.
    subset: the configuration, e.g. 'rte'; None where there is none.
    split_files: the files each split is read from, relative to
      ``$KORANI_DATA_DIR``, e.g. ``{"validation": ("superglue/RTE/val.jsonl",)}``.
    read: the reader, ``read(split, paths)`` -> ``(key, record)``.
    note: how the files are read, where it is not obvious.
  """

  dataset: str
  subset: str | None
  split_files: Mapping[str, tuple[str, ...]]
  read: ReadFn
  note: str = ""

  @property
  def name(self) -> str:
    """'super_glue/rte', or 'trec' without a subset (promptsource's key)."""
    return f"{self.dataset}/{self.subset}" if self.subset else self.dataset


P3_SOURCES: dict[str, P3Source] = {}


def register(source: P3Source) -> P3Source:
  """Adds a source to `P3_SOURCES` under its name ('super_glue/rte')."""
  if source.name in P3_SOURCES:
    raise errors.ConfigError(f"P3 source {source.name!r} registered twice")
  P3_SOURCES[source.name] = source
  return source
