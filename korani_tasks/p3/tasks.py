"""Registers the P3 tasks: T0's datasets with promptsource's templates.

For every dataset of the P3 catalog (`korani_tasks.p3.catalog`) and every
promptsource 0.2.3 template of it, one task per evaluation set (one per
dataset; ANLI one per round)::

    p3_<T0 task name>                         inputs/targets (training)
    p3_<T0 task name>_score_eval              one example per answer choice
                                              (templates with answer choices)

where the T0 task name is ``<dataset>_<subset>_<template name>`` cleaned as
T0 cleans it (`promptsource_yaml.t0_task_name`), with ANLI's round after it
as in T0: ``p3_super_glue_rte_GPT_3_style``,
``p3_anli_GPT_3_style_r1_score_eval``, ``p3_trec_what_category_best_describe``.

For every Korean template version in
``korani_tasks/p3/templates_ko/<dataset>[__<subset>].yaml`` (the format is in
that folder's files: ``dataset``, then ``templates`` with the English
template's exact ``id`` and ``name``, the Korean ``jinja`` and
``answer_choices``)::

    p3_<dataset>_<subset>_ko_<template name>[_<round>][_score_eval]

e.g. ``p3_super_glue_rte_ko_GPT_3_style``: the same English data rendered
with the Korean version of the template (cross-lingual).

Tasks read the ``p3_records`` TFDS builder (`korani_tasks.p3.tfds_builder`)
and render with `korani_tasks.p3.preprocessors.apply_p3_template`, which
skips records the template does not apply to (as T0) and, in score-eval
tasks, records whose target is not among the choices. Their splits are ours
(``train``, ``validation``, ``test``, as far as the source has them; see the
catalog's ``splits``); T0 evaluates ``validation``.

Registration reads the catalog and the template files only (no data, no
jinja parse of the English templates; the Korean ones are parsed to report
errors with their file): ``import korani_tasks.p3.tasks``.

Helpers: `p3_task_infos` (by dataset, evaluation set, role, language,
kind, original task), `p3_task_info`, `task_name`, `korean_templates`.
"""

from collections.abc import Iterable, Mapping
import dataclasses
import functools
import logging
import pathlib
import types

import yaml

from korani_tasks import errors
from korani_tasks import sources
from korani_tasks import tasks
from korani_tasks.p3 import base
from korani_tasks.p3 import catalog
from korani_tasks.p3 import preprocessors
from korani_tasks.p3 import promptsource_yaml
from korani_tasks.p3 import tfds_builder
from korani_tasks.p3.promptsource_yaml import P3Template

_log = logging.getLogger(__name__)

TRAIN = tasks.TRAIN
SCORE_EVAL = tasks.SCORE_EVAL
PREFIX = "p3_"
SOURCE = "p3"  # TaskInfo.source of P3 tasks.
LANGUAGES = ("en", "ko")
KO_TEMPLATE_DIR = pathlib.Path(__file__).with_name("templates_ko")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KO_ENTRY_KEYS = {"id", "name", "jinja", "answer_choices"}


@dataclasses.dataclass(frozen=True)
class P3TaskInfo:
  """A registered P3 task: its `tasks.TaskInfo` and where it comes from.

  Attributes:
    info: the TaskInfo (name, dataset = the evaluation set, cluster, the
      `PromptTemplate`, data_lang 'en', kind, source 'p3').
    entry: the catalog entry.
    eval_set: 'super_glue_rte'; 'anli_r1'.
    round: the ANLI round ('r1'), else None.
    template: the promptsource template rendered (Korean: the Korean
      version, a `P3Template` with the English template's id and name).
    lang: the template language, 'en' or 'ko'.
  """
  info: tasks.TaskInfo
  entry: catalog.P3Dataset
  eval_set: str
  round: str | None
  template: P3Template
  lang: str

  @property
  def name(self) -> str:
    return self.info.name

  @property
  def kind(self) -> str:
    return self.info.kind

  @property
  def role(self) -> str:
    return self.entry.role

  @property
  def original_task(self) -> bool:
    return self.template.original_task


_P3_TASKS: dict[str, P3TaskInfo] = {}
# Why no P3 task is registered (promptsource missing), else None.
unavailable: str | None = None


# --- Names. ---


def task_name(dataset_key: str, template_name: str, lang: str = "en",
              round_: str | None = None, kind: str = TRAIN) -> str:
  """The name of a P3 task.

  >>> task_name("super_glue/rte", "GPT-3 style")
  'p3_super_glue_rte_GPT_3_style'
  >>> task_name("anli", "GPT-3 style", "ko", "r1", SCORE_EVAL)
  'p3_anli_ko_GPT_3_style_r1_score_eval'
  """
  if lang not in LANGUAGES:
    raise ValueError(f"lang {lang!r} is not one of {LANGUAGES}")
  if lang == "en":
    name = promptsource_yaml.t0_task_name(dataset_key, template_name)
  else:
    name = promptsource_yaml.sanitize(
        f"{dataset_key.replace('/', '_')}_{lang}_{template_name}")
  name = PREFIX + name + (f"_{round_}" if round_ else "")
  return name if kind == TRAIN else f"{name}_{SCORE_EVAL}"


# --- Korean template versions. ---


def korean_template_file(dataset_key: str) -> pathlib.Path:
  """templates_ko/<dataset>[__<subset>].yaml of a promptsource key."""
  return KO_TEMPLATE_DIR / f"{dataset_key.replace('/', '__')}.yaml"


def korean_template_keys() -> list[str]:
  """The dataset keys that have a Korean template file."""
  return sorted(p.stem.replace("__", "/")
                for p in KO_TEMPLATE_DIR.glob("*.yaml"))


@functools.cache
def korean_templates(dataset_key: str) -> tuple[P3Template, ...]:
  """The Korean versions of a dataset's templates, as `P3Template`s.

  Each has the English template's id, name, reference and metadata, and the
  Korean jinja and answer choices; () where the dataset has no file.

  The jinja is not parsed here (registration stays fast): a syntax error
  shows when the template first renders (ConfigError naming the template)
  and in tests/test_p3_templates.py, which parses every Korean template.

  Raises:
    ConfigError: the file is malformed, names an id or name that the
      English templates do not have, or has answer choices where the English
      template has none (or the reverse) or another number of fixed answer
      choices (choices computed from the record are compared in
      tests/test_p3_templates.py on synthetic records); the message names
      the file and template.
  """
  path = korean_template_file(dataset_key)
  if not path.is_file():
    return ()
  try:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
  except yaml.YAMLError as e:
    raise errors.ConfigError(f"{path}: not valid YAML: {e}") from e
  if not isinstance(doc, dict) or set(doc) != {"dataset", "templates"}:
    raise errors.ConfigError(
        f"{path}: expected exactly the keys 'dataset' and 'templates'")
  if doc["dataset"] != dataset_key:
    raise errors.ConfigError(
        f"{path}: 'dataset: {doc['dataset']}' does not match the file name "
        f"(expected {dataset_key!r})")
  english = {t.template_id: t for t in promptsource_yaml.load(dataset_key)}
  result, seen = [], set()
  for i, entry in enumerate(doc["templates"] or []):
    where = f"{path}: template #{i + 1}"
    if not isinstance(entry, dict):
      raise errors.ConfigError(f"{where}: expected a mapping")
    unknown = set(entry) - _KO_ENTRY_KEYS
    missing = {"id", "name", "jinja"} - set(entry)
    if unknown or missing:
      raise errors.ConfigError(
          f"{where}: unknown keys {sorted(unknown)}, missing keys "
          f"{sorted(missing)} (keys: id, name, jinja, answer_choices)")
    template_id, name = str(entry["id"]), str(entry["name"])
    where = f"{path}: template {name!r} ({template_id})"
    en = english.get(template_id)
    if en is None:
      raise errors.ConfigError(
          f"{where}: promptsource has no template with this id for "
          f"{dataset_key} (ids: {sorted(english)})")
    if en.name != name:
      raise errors.ConfigError(
          f"{where}: the English template with this id is named "
          f"{en.name!r}, not {name!r}")
    if template_id in seen:
      raise errors.ConfigError(f"{where}: listed twice")
    seen.add(template_id)
    choices = entry.get("answer_choices")
    choices = None if choices is None else str(choices)
    ko = dataclasses.replace(en, jinja=str(entry["jinja"]),
                             answer_choices=choices, languages=("ko",))
    if (ko.answer_choices is None) != (en.answer_choices is None):
      raise errors.ConfigError(
          f"{where}: {'has no' if ko.answer_choices is None else 'has'} "
          "answer_choices, the English template "
          f"{'has' if en.answer_choices is not None else 'has none'} "
          f"({en.answer_choices!r})")
    if (ko.num_choices is not None and en.num_choices is not None
        and ko.num_choices != en.num_choices):
      raise errors.ConfigError(
          f"{where}: {ko.num_choices} answer choices, the English template "
          f"has {en.num_choices} ({en.answer_choices!r})")
    result.append(ko)
  return tuple(sorted(result, key=lambda t: t.name))


# --- Registration. ---


def _source(entry: catalog.P3Dataset, round_: str | None
            ) -> sources.KoraniTfdsSource | None:
  """The task source of one evaluation set: our splits -> source splits."""
  source = base.P3_SOURCES.get(entry.key)
  if source is None:
    return None
  split_map = {ours: theirs for ours, theirs in entry.split_map(round_).items()
               if theirs in source.splits}
  if not split_map:
    return None
  return sources.KoraniTfdsSource(tfds_builder.builder_name(entry.key),
                                  splits=split_map, example_index=True)


@functools.cache
def prompt_template(template: P3Template, lang: str):
  """``template.to_prompt_template(lang)``, once per template (ANLI's
  templates serve three rounds)."""
  return template.to_prompt_template(lang)


def _register(entry: catalog.P3Dataset, eval_set: str, round_: str | None,
              source: sources.KoraniTfdsSource, template: P3Template,
              lang: str) -> list[str]:
  prompt = prompt_template(template, lang)
  kinds = [TRAIN] + ([SCORE_EVAL] if template.answer_choices else [])
  names = []
  for kind in kinds:
    name = task_name(entry.key, template.name, lang, round_, kind)
    info = tasks.TaskInfo(
        name=name, dataset=eval_set, cluster=entry.cluster, template=prompt,
        data_lang="en", kind=kind, source=SOURCE)
    tasks.register_task(info, source, functools.partial(
        preprocessors.apply_p3_template, template=prompt, kind=kind,
        task_name=name))
    _P3_TASKS[name] = P3TaskInfo(info=info, entry=entry, eval_set=eval_set,
                                 round=round_, template=template, lang=lang)
    names.append(name)
  return names


def register_dataset(entry: catalog.P3Dataset) -> list[str]:
  """Registers the English and Korean tasks of one catalog dataset."""
  versions = {"en": promptsource_yaml.load(entry.key),
              "ko": korean_templates(entry.key)}
  names = []
  for eval_set, round_ in zip(entry.eval_sets(), entry.rounds or [None]):
    source = _source(entry, round_)
    if source is None:
      continue
    for lang, lang_templates in versions.items():
      for template in lang_templates:
        names += _register(entry, eval_set, round_, source, template, lang)
  return names


def register_all() -> None:
  """Registers the tasks of every catalog dataset; checks the Korean files.

  Without the promptsource package (it is not an install requirement: its
  metadata says Python <3.10) no P3 task is registered and a warning says
  how to install it; the KORANI tasks are not affected.
  """
  global unavailable
  try:
    promptsource_yaml.templates_dir()
  except errors.MissingDataError as e:
    unavailable = str(e)
    _log.warning("P3 tasks are not registered: %s", e)
    return
  entries = catalog.load()
  stray = [k for k in korean_template_keys() if k not in entries]
  if stray:
    raise errors.ConfigError(
        f"{KO_TEMPLATE_DIR}: Korean templates for datasets outside the P3 "
        f"catalog ({', '.join(stray)}); add them to "
        f"{catalog.CATALOG_PATH} or remove the files")
  for entry in entries.values():
    register_dataset(entry)


# --- Queries. ---


def p3_task_info(name: str) -> P3TaskInfo:
  """The P3TaskInfo of a registered P3 task; KeyError for others."""
  try:
    return _P3_TASKS[name]
  except KeyError:
    why = f" (no P3 task is registered: {unavailable})" if unavailable else ""
    raise KeyError(f"{name!r} is not a P3 task{why}") from None


def all_p3_task_infos() -> Mapping[str, P3TaskInfo]:
  return types.MappingProxyType(_P3_TASKS)


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
  if value is None:
    return None
  return {value} if isinstance(value, str) else set(value)


def p3_task_infos(
    dataset: str | Iterable[str] | None = None,
    *,
    role: str | Iterable[str] | None = None,
    lang: str | Iterable[str] | None = None,
    kind: str | Iterable[str] | None = None,
    original_task: bool | None = None,
    cluster: str | Iterable[str] | None = None,
) -> list[P3TaskInfo]:
  """P3 tasks matching every filter given, sorted by name.

  Args:
    dataset: promptsource keys ('super_glue/rte', 'anli') or evaluation sets
      ('super_glue_rte', 'anli_r1').
    role: 'train', 'heldout', 'extra' (catalog roles).
    lang: template language, 'en' or 'ko'.
    kind: TRAIN or SCORE_EVAL.
    original_task: promptsource's flag (T0 evaluates only True).
    cluster: T0 clusters in the project's names ('nli', ...).

  Example: T0's held-out evaluation in English::

      p3_task_infos(role="heldout", lang="en", kind=SCORE_EVAL,
                    original_task=True)
  """
  datasets, roles = _as_set(dataset), _as_set(role)
  langs, kinds, clusters = _as_set(lang), _as_set(kind), _as_set(cluster)
  found = []
  for p3 in _P3_TASKS.values():
    if datasets is not None and not datasets & {p3.entry.key, p3.eval_set}:
      continue
    if roles is not None and p3.role not in roles:
      continue
    if langs is not None and p3.lang not in langs:
      continue
    if kinds is not None and p3.kind not in kinds:
      continue
    if clusters is not None and p3.entry.cluster not in clusters:
      continue
    if original_task is not None and p3.original_task != original_task:
      continue
    found.append(p3)
  return sorted(found, key=lambda p3: p3.name)


def p3_task_names(*args, **kwargs) -> list[str]:
  """Names of `p3_task_infos(*args, **kwargs)`."""
  return [p3.name for p3 in p3_task_infos(*args, **kwargs)]


register_all()
