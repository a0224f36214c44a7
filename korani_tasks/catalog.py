"""The dataset catalog (catalog.yaml): what each KORANI dataset is.

    >>> info = catalog.get("kobest_copa")
    >>> info.cluster, info.kind, info.labels
    ('sentence_completion', 'nlu', ('alternative_1', 'alternative_2'))
"""

import dataclasses
import functools
import pathlib
import types
from typing import Mapping

import yaml

from korani_tasks import errors

CATALOG_PATH = pathlib.Path(__file__).with_name("catalog.yaml")
KINDS = ("nlu", "nlg")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  key: str
  name: str
  cluster: str
  kind: str
  license: str
  homepage: str
  splits: tuple[str, ...]
  labels: tuple[str, ...] = ()
  builder: str | None = None
  language: str = "ko"


@functools.cache
def load(path: pathlib.Path = CATALOG_PATH) -> Mapping[str, DatasetInfo]:
  """Reads and validates the catalog; returns {key: DatasetInfo}."""
  doc = yaml.safe_load(path.read_text(encoding="utf-8"))
  entries = (doc or {}).get("datasets")
  if not isinstance(entries, dict) or not entries:
    raise errors.ConfigError(f"{path}: expected a non-empty 'datasets' mapping")
  fields = {f.name for f in dataclasses.fields(DatasetInfo)} - {"key"}
  result = {}
  for key, entry in entries.items():
    unknown = set(entry) - fields
    if unknown:
      raise errors.ConfigError(f"{path}: {key}: unknown fields {sorted(unknown)}")
    try:
      info = DatasetInfo(key=key, **{
          k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()})
    except TypeError as e:
      raise errors.ConfigError(f"{path}: {key}: {e}") from e
    if info.kind not in KINDS:
      raise errors.ConfigError(
          f"{path}: {key}: kind {info.kind!r} is not one of {KINDS}")
    result[key] = info
  return types.MappingProxyType(result)


def get(key: str) -> DatasetInfo:
  """The catalog entry of a dataset; a clear error for an unknown key."""
  entries = load()
  if key not in entries:
    raise errors.ConfigError(
        f"unknown dataset {key!r}; the catalog ({CATALOG_PATH}) has: "
        f"{sorted(entries)}")
  return entries[key]
