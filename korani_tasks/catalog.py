"""The dataset catalog (catalog.yaml): what each KORANI dataset is.

    >>> info = catalog.get("kobest_copa")
    >>> info.cluster, info.kind, info.source, info.labels
    ('sentence_completion', 'nlu', 'raw', ('alternative_1', 'alternative_2'))
    >>> info.files[0].path, info.files[0].url
    ('kobest/COPA/train.tsv', 'https://github.com/SKT-LSL/.../COPA/train.tsv')
"""

import dataclasses
import functools
import pathlib
import types
from typing import Mapping

import yaml

from korani_tasks import errors

# libyaml's loader where PyYAML has it (10x faster), else the pure one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CATALOG_PATH = pathlib.Path(__file__).with_name("catalog.yaml")
KINDS = ("nlu", "nlg")
SOURCES = ("raw", "release")
SPLITS = ("train", "validation", "test")
CLUSTERS = (
    "sentiment", "hate_speech", "topic_classification", "intent",
    "paraphrase_identification", "nli", "paraphrasing", "wsd",
    "sentence_completion", "structure_to_text", "summarization",
    "extractive_qa", "multiple_choice_qa", "dialogue", "translation",
    "coreference", "closed_book_qa",
)


@dataclasses.dataclass(frozen=True)
class SourceFile:
  """One canonical source file: where it goes and where it comes from."""
  path: str  # relative to $KORANI_DATA_DIR
  url: str
  sha256: str | None = None  # of the published file, where checked
  size: int | None = None  # bytes


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  key: str
  name: str
  cluster: str
  kind: str
  license: str
  homepage: str
  source: str
  splits: tuple[str, ...]
  official_task: str = ""  # Task column of the official README's table
  key_verified: bool = True
  labels: tuple[str, ...] = ()
  files: tuple[SourceFile, ...] = ()
  note: str = ""
  language: str = "ko"


def _parse_official_tasks(path: pathlib.Path, doc) -> dict[str, str]:
  """The ``official_tasks.clusters`` mapping: official Task -> our cluster."""
  section = (doc or {}).get("official_tasks")
  mapping = section.get("clusters") if isinstance(section, dict) else None
  if not isinstance(mapping, dict) or not section.get("source"):
    raise errors.ConfigError(
        f"{path}: expected 'official_tasks' with a 'source' and a 'clusters' "
        "mapping (the official README's Task names to our clusters)")
  unknown = sorted(set(mapping.values()) - set(CLUSTERS))
  if unknown:
    raise errors.ConfigError(
        f"{path}: official_tasks maps to unknown clusters {unknown}")
  return dict(mapping)


def _parse_entry(path: pathlib.Path, key: str, entry) -> DatasetInfo:
  if not isinstance(entry, dict):
    raise errors.ConfigError(f"{path}: {key}: expected a mapping")
  fields = {f.name for f in dataclasses.fields(DatasetInfo)} - {"key"}
  unknown = set(entry) - fields
  if unknown:
    raise errors.ConfigError(f"{path}: {key}: unknown fields {sorted(unknown)}")
  values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
  try:
    values["files"] = tuple(SourceFile(**f) for f in values.get("files", ()))
    info = DatasetInfo(key=key, **values)
  except TypeError as e:
    raise errors.ConfigError(f"{path}: {key}: {e}") from e
  for field, allowed in (("kind", KINDS), ("source", SOURCES),
                         ("cluster", CLUSTERS)):
    if getattr(info, field) not in allowed:
      raise errors.ConfigError(
          f"{path}: {key}: {field} {getattr(info, field)!r} is not one of "
          f"{allowed}")
  bad_splits = [s for s in info.splits if s not in SPLITS]
  if bad_splits or not info.splits:
    raise errors.ConfigError(
        f"{path}: {key}: splits {list(info.splits)} must be a non-empty subset "
        f"of {SPLITS}")
  if info.source == "raw" and not info.files:
    raise errors.ConfigError(f"{path}: {key}: a raw source needs 'files'")
  return info


@functools.cache
def load(path: pathlib.Path = CATALOG_PATH) -> Mapping[str, DatasetInfo]:
  """Reads and validates the catalog; returns {key: DatasetInfo}."""
  doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
  entries = (doc or {}).get("datasets")
  if not isinstance(entries, dict) or not entries:
    raise errors.ConfigError(f"{path}: expected a non-empty 'datasets' mapping")
  infos = {key: _parse_entry(path, key, entry) for key, entry in entries.items()}
  official = _parse_official_tasks(path, doc)
  for info in infos.values():
    if official.get(info.official_task) != info.cluster:
      raise errors.ConfigError(
          f"{path}: {info.key}: cluster {info.cluster!r} does not follow its "
          f"official_task {info.official_task!r} (official_tasks maps it to "
          f"{official.get(info.official_task)!r})")
  return types.MappingProxyType(infos)


def get(key: str) -> DatasetInfo:
  """The catalog entry of a dataset; a clear error for an unknown key."""
  entries = load()
  if key not in entries:
    raise errors.ConfigError(
        f"unknown dataset {key!r}; the catalog ({CATALOG_PATH}) has: "
        f"{sorted(entries)}")
  return entries[key]
