"""The P3 catalog (catalog.yaml): T0's English datasets as data.

    >>> rte = catalog.get("super_glue/rte")
    >>> rte.role, rte.cluster, rte.eval_split, rte.eval_sets()
    ('heldout', 'nli', 'validation', ('super_glue_rte',))
    >>> anli = catalog.get("anli")
    >>> anli.eval_sets(), anli.split_map("r2")
    (('anli_r1', 'anli_r2', 'anli_r3'),
     {'train': 'train_r2', 'validation': 'dev_r2', 'test': 'test_r2'})
    >>> len(catalog.by_role("train"))
    38

Keys are promptsource's dataset keys. An *evaluation set* is what results
are reported for: one per dataset, three for ANLI (one per round, as T0
reports), named like T0's task-name stems (``super_glue_rte``, ``anli_r1``,
``cnn_dailymail_3.0.0``).
"""

from collections.abc import Mapping
import dataclasses
import functools
import pathlib
import types

import yaml

from korani_tasks import catalog as korani_catalog
from korani_tasks import errors
from korani_tasks.p3 import promptsource_yaml

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CATALOG_PATH = pathlib.Path(__file__).with_name("catalog.yaml")
ROLES = ("train", "heldout", "extra")
SPLITS = korani_catalog.SPLITS  # ("train", "validation", "test")
CLUSTERS = korani_catalog.CLUSTERS
ROUND = "{round}"
NUM_TRAIN_DATASETS = 38  # T0's training mixture.


@dataclasses.dataclass(frozen=True)
class P3Dataset:
  """One catalog entry (see catalog.yaml for the fields)."""
  key: str
  name: str
  hf_name: str
  role: str
  cluster: str
  license: str
  homepage: str
  splits: Mapping[str, str]
  eval_split: str | None
  hf_subset: str | None = None
  rounds: tuple[str, ...] = ()
  t0_train_size: int | None = None
  korani_name: str | None = None
  note: str = ""

  @property
  def stem(self) -> str:
    """T0's task-name stem, e.g. 'super_glue_rte', 'cnn_dailymail_3.0.0'."""
    return promptsource_yaml.dataset_stem(self.key)

  def eval_sets(self) -> tuple[str, ...]:
    """The evaluation sets: ('super_glue_rte',); ('anli_r1', ..., 'anli_r3')."""
    if self.rounds:
      return tuple(f"{self.stem}_{r}" for r in self.rounds)
    return (self.stem,)

  def split_map(self, round_: str | None = None) -> dict[str, str]:
    """Our split name -> the source's (Hugging Face) split name.

    Raises:
      ValueError: `round_` is missing for a dataset with rounds, or given
        for one without, or unknown.
    """
    if bool(self.rounds) != (round_ is not None) or (
        round_ is not None and round_ not in self.rounds):
      raise ValueError(
          f"{self.key}: round {round_!r}; rounds are {list(self.rounds)}")
    return {split: hf.replace(ROUND, round_ or "")
            for split, hf in self.splits.items()}


def _parse_entry(path: pathlib.Path, key: str, entry) -> P3Dataset:
  where = f"{path}: {key}"
  if not isinstance(entry, dict):
    raise errors.ConfigError(f"{where}: expected a mapping")
  fields = {f.name for f in dataclasses.fields(P3Dataset)} - {"key"}
  unknown = set(entry) - fields
  if unknown:
    raise errors.ConfigError(f"{where}: unknown fields {sorted(unknown)}")
  values = dict(entry)
  if values.get("hf_subset") is not None:
    values["hf_subset"] = str(values["hf_subset"])
  values["rounds"] = tuple(values.get("rounds") or ())
  values["splits"] = types.MappingProxyType(
      {str(k): str(v) for k, v in (values.get("splits") or {}).items()})
  try:
    info = P3Dataset(key=key, **values)
  except TypeError as e:
    raise errors.ConfigError(f"{where}: {e}") from e
  for field, allowed in (("role", ROLES), ("cluster", CLUSTERS)):
    if getattr(info, field) not in allowed:
      raise errors.ConfigError(
          f"{where}: {field} {getattr(info, field)!r} is not one of {allowed}")
  if not info.splits or set(info.splits) - set(SPLITS):
    raise errors.ConfigError(
        f"{where}: splits must map some of {SPLITS} to Hugging Face split "
        f"names; got {dict(info.splits)}")
  if info.eval_split is not None and info.eval_split not in info.splits:
    raise errors.ConfigError(
        f"{where}: eval_split {info.eval_split!r} is not one of its splits "
        f"{list(info.splits)}")
  if info.role == "heldout" and info.eval_split is None:
    raise errors.ConfigError(f"{where}: a held-out dataset needs eval_split")
  with_round = [s for s in info.splits.values() if ROUND in s]
  if info.rounds and len(with_round) != len(info.splits):
    raise errors.ConfigError(
        f"{where}: with rounds, every split name must contain {ROUND}")
  if not info.rounds and with_round:
    raise errors.ConfigError(f"{where}: {ROUND} in a split name needs rounds")
  expected_key = info.hf_name + (f"/{info.hf_subset}" if info.hf_subset else "")
  if expected_key != key:
    raise errors.ConfigError(
        f"{where}: the key must be hf_name[/hf_subset] ({expected_key!r})")
  return info


@functools.cache
def load(path: pathlib.Path = CATALOG_PATH) -> Mapping[str, P3Dataset]:
  """All catalog entries by promptsource key, in file order.

  Raises:
    ConfigError: the file is malformed (the message names the entry).
  """
  try:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
  except yaml.YAMLError as e:
    raise errors.ConfigError(f"{path}: not valid YAML: {e}") from e
  if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), dict):
    raise errors.ConfigError(f"{path}: expected a 'datasets' mapping")
  entries = {str(k): _parse_entry(path, str(k), v)
             for k, v in doc["datasets"].items()}
  train = [k for k, v in entries.items() if v.role == "train"]
  if path == CATALOG_PATH and len(train) != NUM_TRAIN_DATASETS:
    raise errors.ConfigError(
        f"{path}: {len(train)} datasets with role train; T0's mixture has "
        f"{NUM_TRAIN_DATASETS}")
  return types.MappingProxyType(entries)


def get(key: str) -> P3Dataset:
  """The entry of a promptsource key, or of an evaluation set ('anli_r1').

  Raises:
    KeyError: unknown key (the message lists the keys).
  """
  entries = load()
  if key in entries:
    return entries[key]
  for entry in entries.values():
    if key in entry.eval_sets():
      return entry
  raise KeyError(f"{key!r} is not in the P3 catalog; keys: {list(entries)}")


def by_role(role: str) -> tuple[P3Dataset, ...]:
  """The entries with one role ('train', 'heldout' or 'extra')."""
  if role not in ROLES:
    raise ValueError(f"role {role!r} is not one of {ROLES}")
  return tuple(e for e in load().values() if e.role == role)


def by_korani_name() -> dict[str, tuple[P3Dataset, ...]]:
  """{official KORANI name: its entries}: the paper's English training sets.

      >>> [e.key for e in by_korani_name()["adversarial_qa"]]
      ['adversarial_qa/dbidaf', 'adversarial_qa/dbert', 'adversarial_qa/droberta']
  """
  named: dict[str, list[P3Dataset]] = {}
  for entry in load().values():
    if entry.korani_name is not None:
      named.setdefault(entry.korani_name, []).append(entry)
  return {name: tuple(entries) for name, entries in named.items()}


def eval_set_round(eval_set: str) -> tuple[P3Dataset, str | None]:
  """``(entry, round)`` of an evaluation set: 'anli_r2' -> (anli, 'r2')."""
  entry = get(eval_set)
  if not entry.rounds:
    return entry, None
  return entry, entry.rounds[entry.eval_sets().index(eval_set)]
