"""Aligned Korean/English prompt templates, stored as YAML data files.

One file per dataset, ``<dataset>.yaml`` in this folder::

    dataset: kobest_boolq
    templates:
      - id: gpt3_style                        # [a-z0-9_]+, used in task names
        note: where the wording comes from    # optional, not rendered
        original_task: true                   # optional, default true
        choices_in_prompt: false              # optional, default false
        target: "{{ answer_choices[label] }}" # shared by both languages
        ko:
          input: "{{ paragraph }}\\n질문: {{ question }}\\n답:"
          answer_choices: 아니요 ||| 예
        en:
          input: "{{ paragraph }}\\nQuestion: {{ question }}\\nAnswer:"
          answer_choices: No ||| Yes

Every template must exist in every language of ``LANGUAGES`` (an aligned
pair), and aligned versions must have the same number of answer choices.
``input``, ``target`` and ``answer_choices`` may be given per language or once
for all languages.
"""

import functools
import pathlib
import re
import types
from typing import Any, Mapping

import yaml

from korani_tasks import errors
from korani_tasks.templates.prompt import PromptTemplate, RenderedExample, CHOICE_SEPARATOR

__all__ = [
    "LANGUAGES", "PromptTemplate", "RenderedExample", "available_datasets",
    "load_templates", "parse_template_file",
]

# libyaml's loader where PyYAML has it (10x faster), else the pure one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LANGUAGES = ("ko", "en")
TEMPLATE_DIR = pathlib.Path(__file__).parent
_ID_PATTERN = re.compile(r"^[a-z0-9_]+$")
_TEMPLATE_KEYS = {"id", "note", "original_task", "choices_in_prompt", "input",
                  "target", "answer_choices", *LANGUAGES}
_TEXT_KEYS = ("input", "target", "answer_choices")


def available_datasets() -> list[str]:
  """Keys of the datasets that have a template file."""
  return sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))


@functools.cache
def load_templates(dataset: str) -> Mapping[str, tuple[PromptTemplate, ...]]:
  """Returns {lang: (template, ...)} for a dataset, in file order.

  Raises:
    MissingDataError: if the dataset has no template file.
    ConfigError: if the file is malformed (the message names file and entry).
  """
  path = TEMPLATE_DIR / f"{dataset}.yaml"
  if not path.is_file():
    raise errors.MissingDataError(
        f"no template file for dataset {dataset!r}: {path} does not exist "
        f"(datasets with templates: {available_datasets()})")
  return parse_template_file(path)


def parse_template_file(
    path: pathlib.Path) -> Mapping[str, tuple[PromptTemplate, ...]]:
  """Parses and validates one template file (see the module docstring)."""
  try:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
  except yaml.YAMLError as e:
    raise errors.ConfigError(f"{path}: not valid YAML: {e}") from e
  if not isinstance(doc, dict) or "dataset" not in doc or "templates" not in doc:
    raise errors.ConfigError(f"{path}: expected keys 'dataset' and 'templates'")
  dataset = doc["dataset"]
  if dataset != path.stem:
    raise errors.ConfigError(
        f"{path}: 'dataset: {dataset}' does not match the file name")
  by_lang = {lang: [] for lang in LANGUAGES}
  seen_ids = set()
  for i, entry in enumerate(doc["templates"] or []):
    where = f"{path}: template #{i + 1}"
    if not isinstance(entry, dict) or "id" not in entry:
      raise errors.ConfigError(f"{where}: each template needs an 'id'")
    template_id = str(entry["id"])
    where = f"{path}: template {template_id!r}"
    if not _ID_PATTERN.match(template_id):
      raise errors.ConfigError(f"{where}: id must match {_ID_PATTERN.pattern}")
    if template_id in seen_ids:
      raise errors.ConfigError(f"{where}: duplicate id")
    seen_ids.add(template_id)
    unknown = set(entry) - _TEMPLATE_KEYS
    if unknown:
      raise errors.ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(entry.get("note", ""), str):
      raise errors.ConfigError(f"{where}: 'note' must be text")
    versions = {lang: _language_version(entry, lang, where)
                for lang in LANGUAGES}
    _check_aligned(versions, where)
    for lang, fields in versions.items():
      by_lang[lang].append(PromptTemplate(
          dataset=dataset, template_id=template_id, lang=lang,
          input=fields["input"], target=fields["target"],
          answer_choices=fields["answer_choices"],
          original_task=bool(entry.get("original_task", True)),
          choices_in_prompt=bool(entry.get("choices_in_prompt", False))))
  if not seen_ids:
    raise errors.ConfigError(f"{path}: no templates")
  return types.MappingProxyType(
      {lang: tuple(ts) for lang, ts in by_lang.items()})


def _language_version(entry: Mapping[str, Any], lang: str, where: str) -> dict:
  """The text fields of one language version, with shared fields filled in."""
  own = entry.get(lang)
  if not isinstance(own, dict):
    raise errors.ConfigError(
        f"{where}: missing the '{lang}' version (every template needs "
        f"aligned {' and '.join(LANGUAGES)} versions)")
  unknown = set(own) - set(_TEXT_KEYS)
  if unknown:
    raise errors.ConfigError(f"{where}, {lang}: unknown keys {sorted(unknown)}")
  fields = {k: own.get(k, entry.get(k)) for k in _TEXT_KEYS}
  for k in ("input", "target"):
    if not fields[k] or not str(fields[k]).strip():
      raise errors.ConfigError(f"{where}, {lang}: '{k}' is missing or empty")
  return {k: (None if v is None else str(v)) for k, v in fields.items()}


def _check_aligned(versions: Mapping[str, Mapping[str, str | None]], where: str):
  """Aligned versions agree on having choices and on how many."""
  counts = {lang: (None if f["answer_choices"] is None
                   else f["answer_choices"].count(CHOICE_SEPARATOR) + 1)
            for lang, f in versions.items()}
  if len(set(counts.values())) != 1:
    raise errors.ConfigError(
        f"{where}: language versions are not aligned: number of answer "
        f"choices per language is {counts}")
