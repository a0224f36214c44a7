"""Held-out settings (heldout.yaml): the clusters kept out of training.

    >>> setting = heldout.get("t0")
    >>> setting.held_out_clusters
    ('nli', 'coreference', 'sentence_completion', 'wsd')
    >>> setting.is_held_out("kobest_copa"), setting.is_held_out("kobest_boolq")
    (True, False)

A dataset is held out when its catalog cluster is; a held-out dataset never
appears in a training mixture of that setting. ``default()`` is the setting
of the mixtures without a ``_<setting>`` suffix: the one named by
``$KORANI_HELDOUT_SPLIT``, else the file's ``default``, read once per
process (the mixtures are registered once, at import); runs record it
(`mixture_setting`).
"""

import dataclasses
import functools
import os
import pathlib
import types
from typing import Mapping, Sequence

import yaml

from korani_tasks import catalog
from korani_tasks import errors

HELDOUT_PATH = pathlib.Path(__file__).with_name("heldout.yaml")
SPLIT_ENV = "KORANI_HELDOUT_SPLIT"


@dataclasses.dataclass(frozen=True)
class HeldOutSetting:
  name: str
  description: str
  held_out_clusters: tuple[str, ...]

  def is_held_out(self, dataset: str) -> bool:
    """Whether a KORANI dataset (catalog key) is held out."""
    return self.is_held_out_cluster(catalog.get(dataset).cluster)

  def is_held_out_cluster(self, cluster: str) -> bool:
    """Whether a cluster is held out (KORANI and P3 share cluster names)."""
    return cluster in self.held_out_clusters

  def held_out_datasets(self) -> tuple[str, ...]:
    return tuple(k for k in catalog.load() if self.is_held_out(k))

  def training_datasets(self) -> tuple[str, ...]:
    return tuple(k for k in catalog.load() if not self.is_held_out(k))


@functools.cache
def _load(path: pathlib.Path = HELDOUT_PATH):
  doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
  settings = {}
  for name, entry in (doc.get("settings") or {}).items():
    clusters = tuple(entry.get("held_out_clusters") or ())
    unknown = [c for c in clusters if c not in catalog.CLUSTERS]
    if unknown or not clusters:
      raise errors.ConfigError(
          f"{path}: {name}: held_out_clusters {list(clusters)} must be a "
          f"non-empty list of clusters from {catalog.CLUSTERS}")
    settings[name] = HeldOutSetting(
        name=name, description=" ".join(entry.get("description", "").split()),
        held_out_clusters=clusters)
  default = doc.get("default")
  if default not in settings:
    raise errors.ConfigError(
        f"{path}: default {default!r} is not one of {sorted(settings)}")
  return types.MappingProxyType(settings), default


def settings() -> Mapping[str, HeldOutSetting]:
  return _load()[0]


def get(name: str) -> HeldOutSetting:
  """A held-out setting by name; ConfigError names the known ones."""
  if name not in settings():
    raise errors.ConfigError(
        f"unknown held-out setting {name!r}; {HELDOUT_PATH} defines "
        f"{sorted(settings())}")
  return settings()[name]


@functools.cache
def default() -> HeldOutSetting:
  """The setting of ``$KORANI_HELDOUT_SPLIT``, else the file's default."""
  name = os.environ.get(SPLIT_ENV) or _load()[1]
  try:
    return get(name)
  except errors.ConfigError as e:
    raise errors.ConfigError(f"{SPLIT_ENV}={name}: {e}") from None


def mixture_setting(name: str, registered: Sequence[str]) -> str:
  """The held-out setting of a mixture among the `registered` names.

  ``korani_train_t0`` is ``t0``'s; ``korani_train`` (no suffix) is the
  default setting's when ``korani_train_<default>`` is registered; "" for a
  name of no setting (a single task).
  """
  for setting in settings():
    if name.endswith(f"_{setting}"):
      return setting
  if f"{name}_{default().name}" in registered:
    return default().name
  return ""
