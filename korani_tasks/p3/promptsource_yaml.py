"""The promptsource 0.2.3 templates, read from the installed package's YAML.

promptsource keeps one file per dataset/subset,
``promptsource/templates/<dataset>[/<subset>]/templates.yaml``::

    dataset: super_glue
    subset: rte
    templates:
      8fb1c6aa-20e9-438c-bece-c6af1c746449: !Template
        answer_choices: True ||| False
        id: 8fb1c6aa-20e9-438c-bece-c6af1c746449
        jinja: '{{premise}}

          Question: {{hypothesis}} True or False? ||| {% if label != -1 %}{{
          answer_choices[label] }}{% endif %}'
        metadata: !TemplateMetadata
          choices_in_prompt: true
          metrics:
          - Accuracy
          original_task: true
        name: GPT-3 style
        reference: Same as reported in Figure G31 of the GPT-3 paper.

This module finds that folder without importing promptsource (whose import
pulls in streamlit, pandas and the `datasets` library) and reads the files
with a YAML loader of its own that turns ``!Template`` and
``!TemplateMetadata`` into `P3Template` and `TemplateMetadata`::

    >>> rte = load("super_glue/rte")          # templates sorted by name
    >>> t = next(t for t in rte if t.name == "GPT-3 style")
    >>> t.template_id, t.answer_choices, t.original_task
    ('8fb1c6aa-...', 'True ||| False', True)
    >>> t.t0_name
    'super_glue_rte_GPT_3_style'
    >>> t.to_prompt_template().target
    ' {% if label != -1 %}{{ answer_choices[label]  | string | truncate(2048) }}{% endif %}'

Dataset keys are the template folders relative to the templates folder
(``super_glue/rte``, ``anli``, ``Zaid/coqa_expanded``), which is what
promptsource calls ``<dataset>/<subset>``.

Conversion to the project's `PromptTemplate` (`P3Template.to_prompt_template`)
reproduces promptsource's ``Template.apply`` (with its default
``truncate=True``) as T0 used it:

* every ``}}`` of the jinja becomes ``| string | truncate(2048) }}``, so
  each substituted value is cut to about 2048 characters (at a word
  boundary, with "..."), as promptsource does for T0's inputs and targets;
* promptsource renders the whole template and splits the *rendered* text on
  ``|||`` into input and target; T0 drops an example whose text does not
  split in exactly two parts or whose input or target is empty. Here input
  and target are separate jinja (`split_jinja`), chosen to render exactly
  what promptsource's split gives:

  - ``simple``: the two halves of the jinja around its one '|||', where
    both are complete jinja alone and the target half uses no name that the
    input half may set or change (1665 of the package's 2085 templates; 347
    of the 423 of the catalog's datasets);
  - ``structured``: templates of the form ``{% set x = ... %}{% if C %} A
    ||| B {% endif %}`` get the sets and ifs copied into both halves (209;
    68, e.g. the ``{% if label == 1 %}`` and ``{% if metadata.split !=
    "test" %}`` templates, trec's fine_grained_* templates);
  - ``whole``: the rest (the separator in several branches, or state that
    the input half builds and the target uses: 211; 8: cos_e/v1.11's three
    ``*_option_id`` templates, wiki_bio's comprehension and guess_person,
    wiki_hop/original's explain_relation, generate_subject and
    generate_subject_and_object) render the whole template in both halves
    and keep part 0 or 1 of its split (empty where it does not split in
    two);

  The choice is made from the tags with regular expressions (registration
  parses no jinja) and errs towards the more general kinds; tests check on
  every template of the package that input and target equal promptsource's
  render-then-split;
* the answer choices are not truncated (promptsource does not truncate them).
"""

from collections.abc import Mapping
import dataclasses
import functools
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import types
from typing import Any

import yaml

from korani_tasks import errors
from korani_tasks.p3 import fetch_templates
from korani_tasks.templates import prompt

PROMPTSOURCE_VERSION = "0.2.3"
PIP_INSTALL = (f"pip install --no-deps --ignore-requires-python "
               f"promptsource=={PROMPTSOURCE_VERSION}")
# Optional: a templates folder to use instead of the installed package's
# (e.g. a promptsource git checkout's promptsource/templates).
TEMPLATES_DIR_ENV = "PROMPTSOURCE_TEMPLATES_DIR"
TEMPLATE_FILE = "templates.yaml"
SEPARATOR = prompt.CHOICE_SEPARATOR  # "|||", between input and target too.
# promptsource.templates.TEXT_VAR_LENGTH: Template.apply truncates every
# substituted value to this many characters.
TEXT_VAR_LENGTH = 2048

_MISSING_HELP = (
    "The P3 tasks read the prompt templates of the promptsource "
    f"{PROMPTSOURCE_VERSION} package (never imported, only its YAML files). "
    f"Install it with\n    {PIP_INSTALL}\n(its Requires-Python says <3.10, "
    "but the templates work on any Python), or, from a wheel install, fetch "
    "only its templates from the package index with\n"
    "    korani p3 fetch-templates\n"
    "(into $KORANI_CACHE_DIR/promptsource-0.2.3/templates, found there), or "
    f"set {TEMPLATES_DIR_ENV} to a promptsource/templates folder.")


@dataclasses.dataclass(frozen=True)
class TemplateMetadata:
  """promptsource's ``!TemplateMetadata``."""
  original_task: bool | None = None
  choices_in_prompt: bool | None = None
  metrics: tuple[str, ...] = ()
  # Not in promptsource 0.2.3's files (later versions add it).
  languages: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class P3Template:
  """One promptsource template (a ``!Template`` entry).

  Attributes:
    dataset_key: promptsource's dataset key, e.g. 'super_glue/rte', 'anli'.
    template_id: promptsource's uuid of the template.
    name: promptsource's (per dataset unique) name, e.g. 'GPT-3 style'.
    jinja: the template, input and target separated by '|||'.
    answer_choices: jinja of the choices separated by '|||'; None for
      templates without choices (generation).
    reference: who wrote it or where it comes from.
    original_task: whether it asks the dataset's original task (T0
      evaluates only those).
    choices_in_prompt: whether the input lists the choices.
    metrics: promptsource's metric names, e.g. ('Accuracy',).
    languages: the metadata's languages; () in promptsource 0.2.3, whose
      templates are English.
  """
  dataset_key: str
  template_id: str
  name: str
  jinja: str
  answer_choices: str | None
  reference: str = ""
  original_task: bool = False
  choices_in_prompt: bool = False
  metrics: tuple[str, ...] = ()
  languages: tuple[str, ...] = ()

  @property
  def t0_name(self) -> str:
    """T0's task name, e.g. 'super_glue_rte_GPT_3_style' (`t0_task_name`)."""
    return t0_task_name(self.dataset_key, self.name)

  @property
  def sanitized_name(self) -> str:
    """The name as in task names: 'GPT-3 style' -> 'GPT_3_style'."""
    return sanitize(self.name)

  @property
  def fixed_choices(self) -> tuple[str, ...] | None:
    """The answer choices where they are fixed text (no jinja), else None.

    Like promptsource's ``get_fixed_answer_choices_list``: 'Yes ||| No' ->
    ('Yes', 'No'); '{{choice1}} ||| {{choice2}}' -> None.
    """
    if self.answer_choices is None or any(
        d in self.answer_choices for d in ("{{", "{%", "{#")):
      return None
    return tuple(c.strip() for c in self.answer_choices.split(SEPARATOR))

  @property
  def num_choices(self) -> int | None:
    """Number of fixed answer choices; None without choices or where they
    come from the record (their number is then known per record only)."""
    fixed = self.fixed_choices
    return None if fixed is None else len(fixed)

  def split(self, truncate: bool = True) -> tuple[str, str]:
    """``(input jinja, target jinja)``; see `split_jinja`."""
    return split_jinja(self.jinja, truncate=truncate)

  def to_prompt_template(self, lang: str = "en", *, truncate: bool = True,
                         check_syntax: bool = False) -> prompt.PromptTemplate:
    """The template as a `PromptTemplate` (promptsource dialect).

    Args:
      lang: the language of the template text ('en'; 'ko' for the Korean
        versions, which are `P3Template`s too).
      truncate: truncate substituted values as promptsource's
        ``Template.apply`` does by default (T0 did); see the module docstring.
      check_syntax: parse the jinja now (see `PromptTemplate`).

    The `PromptTemplate`'s ``template_id`` is `sanitized_name` (the part of
    the task names that names the template, the same in every language),
    its ``dataset`` the promptsource key.
    """
    input_jinja, target_jinja = self.split(truncate=truncate)
    return prompt.PromptTemplate(
        dataset=self.dataset_key, template_id=self.sanitized_name, lang=lang,
        input=input_jinja, target=target_jinja,
        answer_choices=self.answer_choices,
        original_task=self.original_task,
        choices_in_prompt=self.choices_in_prompt,
        dialect="promptsource", check_syntax=check_syntax)


# --- Names. ---

# promptsource/seqio_tasks/utils.py (T0): runs of characters other than
# letters, digits, '.' and '_' become one '_'.
_TASK_NAME_CLEAN = re.compile(r"[^\w\d\._]+")


def sanitize(text: str) -> str:
  """T0's task-name cleaning: 'GPT-3 style' -> 'GPT_3_style'.

  As in T0 (promptsource's ``get_task_name``), every run of characters other
  than letters, digits, '.' and '_' becomes a single '_' ('.' is kept:
  'wsc.fixed', '3.0.0').
  """
  return _TASK_NAME_CLEAN.sub("_", text)


def t0_task_name(dataset_key: str, template_name: str) -> str:
  """``<dataset>_<subset>_<template name>`` cleaned, as T0 names its tasks.

  E.g. ('super_glue/rte', 'GPT-3 style') -> 'super_glue_rte_GPT_3_style';
  ('trec', 'what_category_best_describe') -> 'trec_what_category_best_describe'.
  (T0 appends the ANLI round: 'anli_GPT_3_style_r1'.)
  """
  dataset, _, subset = dataset_key.partition("/")
  stem = f"{dataset}_{subset}_" if subset else f"{dataset}_"
  return sanitize(stem + template_name)


def dataset_stem(dataset_key: str) -> str:
  """'super_glue/rte' -> 'super_glue_rte'; 'anli' -> 'anli'."""
  return sanitize(dataset_key.replace("/", "_"))


# --- Splitting input and target. ---

_WHOLE = "p3_whole"
_PARTS = "p3_parts"


def truncate_values(jinja: str) -> str:
  """promptsource's truncation: each ``}}`` gets ``| string | truncate(N)``."""
  return jinja.replace(
      "}}", f" | string | truncate({TEXT_VAR_LENGTH}) }}}}")


# The split is decided from the tags alone (regular expressions, no jinja
# parse: registering every P3 task at import must stay fast). The analysis is
# conservative: where it cannot tell, a template falls back to a more general
# split, which renders the same text. Tests parse every converted template of
# the package and compare its rendering with promptsource's render-then-split.
_TAG_BODY = r"(?:[^%]|%(?!\}))*"  # up to the next '%}'
_TAG = re.compile(r"\{%[-+]?\s*(\w+)(" + _TAG_BODY + r")%\}")
_OPENERS = {"if", "for", "macro", "call", "filter", "with", "block", "raw",
            "autoescape", "trans"}
_MIDDLES = {"elif", "else", "pluralize"}
# Tags that may change state: their names are "touched".
_STATE_TAGS = {"set", "for", "macro", "call", "with", "filter"}
# A method call on a name: ``x.append(``, ``ns.value.update(``, ``x[0].pop(``.
_METHOD_RECEIVER = re.compile(
    r"(?<![\w.'\"\]])([A-Za-z_]\w*)(?:\.\w+|\[[^\]]*\])*\.\w+\s*\(")
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}|\{%(" + _TAG_BODY + r")%\}", re.S)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _balanced(jinja: str) -> bool:
  """Whether `jinja` is a sequence of complete statements and expressions.

  Its ``{{ }}``, ``{% %}`` and ``{# #}`` delimiters pair up, and its block
  tags nest: every if/for/... is closed, no end tag or else/elif is outside
  its block.
  """
  for opening, closing in (("{{", "}}"), ("{%", "%}"), ("{#", "#}")):
    if jinja.count(opening) != jinja.count(closing):
      return False
  depth = 0
  for match in _TAG.finditer(jinja):
    name, rest = match.group(1), match.group(2)
    if name in _OPENERS or (name == "set" and "=" not in rest):
      depth += 1
    elif name.startswith("end"):
      depth -= 1
      if depth < 0:
        return False
    elif name in _MIDDLES and depth == 0:
      return False
  return depth == 0


def _touched_names(jinja: str) -> set[str]:
  """Names whose value a template may set or change: every identifier of its
  set/for/macro/call/with/filter tags and every receiver of a method call
  (``x.update(...)`` may modify ``x``). A superset, as the analysis needs."""
  names = set()
  for match in _TAG.finditer(jinja):
    if match.group(1) in _STATE_TAGS:
      names |= set(_IDENTIFIER.findall(match.group(2)))
  for match in _EXPRESSION.finditer(jinja):
    code = match.group(1) or match.group(2) or ""
    names |= set(_METHOD_RECEIVER.findall(code))
  return names


def _used_names(jinja: str) -> set[str]:
  """Every identifier in the template's expressions and tags (a superset
  of the names it uses)."""
  names = set()
  for match in _EXPRESSION.finditer(jinja):
    names |= set(_IDENTIFIER.findall(match.group(1) or match.group(2) or ""))
  return names


def simple_split(jinja: str) -> tuple[str, str] | None:
  """The jinja's two halves around its one '|||', if they work alone.

  None where promptsource's render-then-split cannot be reproduced by
  rendering the halves separately: the separator occurs other than once, a
  half is not complete on its own (the separator is inside a block or an
  expression), or the target half may use a name that the input half may
  set or change (`_touched_names`).
  """
  if jinja.count(SEPARATOR) != 1:
    return None
  input_jinja, target_jinja = jinja.split(SEPARATOR)
  if not (_balanced(input_jinja) and _balanced(target_jinja)):
    return None
  if _touched_names(input_jinja) & _used_names(target_jinja):
    return None
  return input_jinja, target_jinja


# Statements that `_structured_split` copies into both halves.
_LEADING_SET = re.compile(r"\s*\{%-?\s*set\s+[\w\s,]+=" + _TAG_BODY + r"%\}")
_LEADING_IF = re.compile(r"\s*\{%-?\s*if\b" + _TAG_BODY + r"%\}")
_TRAILING_ENDIF = re.compile(r"\{%-?\s*endif\s*-?%\}\s*$")


def _structured_split(jinja: str) -> tuple[str, str] | None:
  """`simple_split` inside leading ``{% set x = ... %}`` and ``{% if %}``.

  Many templates are ``{% set x = ... %}{% if C %} A ||| B {% endif %}``.
  The sets and the enclosing ifs are copied into both halves::

      input:  {% set x = ... %}{% if C %} A {% endif %}
      target: {% set x = ... %}{% if C %} B {% endif %}

  which renders as promptsource's render-then-split: where C holds, the
  halves are A and B (a set expression gives the same value twice: `choice`
  is deterministic); where it does not, the whole text is blank (one part,
  dropped by T0) and both halves are empty (skipped here). An ``{% if %}``
  is only peeled where its body is complete alone (so it has no else/elif
  and the leading if and trailing endif are one block). None where this
  does not apply.
  """
  prefix, suffix, rest = "", "", jinja
  while True:
    halves = simple_split(rest)
    if halves is not None:
      return prefix + halves[0] + suffix, prefix + halves[1] + suffix
    if match := _LEADING_SET.match(rest):
      prefix += match.group()
      rest = rest[match.end():]
      continue
    opening = _LEADING_IF.match(rest)
    closing = _TRAILING_ENDIF.search(rest)
    if not opening or not closing or opening.end() > closing.start():
      return None
    body = rest[opening.end():closing.start()]
    if not _balanced(body):
      return None
    prefix += opening.group()
    suffix = closing.group() + suffix
    rest = body


def _part_of_whole(jinja: str, index: int) -> str:
  """Jinja that renders `jinja`, splits it on '|||' and keeps one part.

  Renders empty where the text does not split in exactly two parts (T0
  drops such examples).
  """
  return (f"{{% set {_WHOLE} %}}{jinja}{{% endset %}}"
          f"{{% set {_PARTS} = {_WHOLE}.split('{SEPARATOR}') %}}"
          f"{{% if {_PARTS} | length == 2 %}}{{{{ {_PARTS}[{index}] }}}}"
          "{% endif %}")


SPLIT_SIMPLE, SPLIT_STRUCTURED, SPLIT_WHOLE = "simple", "structured", "whole"


def split_kind(jinja: str, truncate: bool = True) -> str:
  """How `split_jinja` splits a template: 'simple', 'structured' or 'whole'."""
  if truncate:
    jinja = truncate_values(jinja)
  if simple_split(jinja) is not None:
    return SPLIT_SIMPLE
  return SPLIT_STRUCTURED if _structured_split(jinja) else SPLIT_WHOLE


def split_jinja(jinja: str, truncate: bool = True) -> tuple[str, str]:
  """``(input jinja, target jinja)`` of a promptsource template.

  In order of preference: the two halves around '|||' (`simple_split`); the
  halves with leading sets and enclosing ifs copied into both
  (`_structured_split`); else the whole template rendered and split (see
  the module docstring). With `truncate`, values are truncated first as in
  promptsource (`truncate_values`).
  """
  if truncate:
    jinja = truncate_values(jinja)
  halves = simple_split(jinja) or _structured_split(jinja)
  if halves is not None:
    return halves
  return _part_of_whole(jinja, 0), _part_of_whole(jinja, 1)


# --- The YAML loader. ---

_TEMPLATE_KEYS = {"answer_choices", "id", "jinja", "metadata", "name",
                  "reference", "task_template"}
_METADATA_KEYS = {f.name for f in dataclasses.fields(TemplateMetadata)}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
  """yaml's safe loader (libyaml's where available) with promptsource's tags."""


def _mapping(loader: yaml.Loader, node: yaml.Node, allowed: set[str],
             tag: str) -> dict[str, Any]:
  if not isinstance(node, yaml.MappingNode):
    raise yaml.constructor.ConstructorError(
        None, None, f"{tag} must be a mapping", node.start_mark)
  value = loader.construct_mapping(node, deep=True)
  unknown = set(value) - allowed
  if unknown:
    raise yaml.constructor.ConstructorError(
        None, None, f"{tag} has unknown keys {sorted(unknown)} (known: "
        f"{sorted(allowed)})", node.start_mark)
  return value


def _text(value: Any) -> str:
  return "" if value is None else str(value)


def _construct_metadata(loader, node) -> TemplateMetadata:
  value = _mapping(loader, node, _METADATA_KEYS, "!TemplateMetadata")
  return TemplateMetadata(
      original_task=value.get("original_task"),
      choices_in_prompt=value.get("choices_in_prompt"),
      metrics=tuple(value.get("metrics") or ()),
      languages=tuple(value.get("languages") or ()))


def _construct_template(loader, node) -> P3Template:
  """A `P3Template` without its dataset key (filled in by `_load_file`)."""
  value = _mapping(loader, node, _TEMPLATE_KEYS, "!Template")
  for key in ("id", "jinja", "name"):
    if not _text(value.get(key)).strip():
      raise yaml.constructor.ConstructorError(
          None, None, f"!Template lacks {key!r}", node.start_mark)
  metadata = value.get("metadata") or TemplateMetadata()
  if not isinstance(metadata, TemplateMetadata):
    raise yaml.constructor.ConstructorError(
        None, None, "!Template's metadata must be a !TemplateMetadata",
        node.start_mark)
  choices = value.get("answer_choices")
  choices = None if choices is None or not str(choices).strip() else str(choices)
  return P3Template(
      dataset_key="", template_id=_text(value["id"]), name=_text(value["name"]),
      jinja=_text(value["jinja"]), answer_choices=choices,
      reference=_text(value.get("reference")),
      original_task=bool(metadata.original_task),
      choices_in_prompt=bool(metadata.choices_in_prompt),
      metrics=metadata.metrics, languages=metadata.languages)


_Loader.add_constructor("!Template", _construct_template)
_Loader.add_constructor("!TemplateMetadata", _construct_metadata)


def parse_yaml(text: str) -> Any:
  """Parses YAML text with promptsource's tags (`_Loader`)."""
  return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)


# --- Finding and loading the files. ---


def _installed_templates_dir() -> pathlib.Path | None:
  """promptsource/templates of the installed package, found without import."""
  try:
    spec = importlib.util.find_spec("promptsource")
  except (ImportError, ValueError):
    spec = None
  for location in (spec.submodule_search_locations or []) if spec else []:
    candidate = pathlib.Path(location, "templates")
    if candidate.is_dir():
      return candidate
  try:
    files = importlib.metadata.files("promptsource") or []
  except importlib.metadata.PackageNotFoundError:
    return None
  for file in files:
    parts = pathlib.PurePosixPath(file).parts
    if parts[:2] == ("promptsource", "templates") and parts[-1] == TEMPLATE_FILE:
      return pathlib.Path(file.locate()).parents[len(parts) - 3]
  return None


@functools.cache
def templates_dir() -> pathlib.Path:
  """The folder of the promptsource templates.

  ``$PROMPTSOURCE_TEMPLATES_DIR`` where set, else the installed promptsource
  package's ``templates`` folder (found by `importlib.util.find_spec`, or the
  distribution's file list; promptsource is not imported), else the folder
  that ``korani p3 fetch-templates`` fills (`fetch_templates.default_dir`).

  Raises:
    MissingDataError: promptsource is not installed (the message gives the
      pip command) or the folder named by the variable does not exist.
  """
  value = os.environ.get(TEMPLATES_DIR_ENV)
  if value:
    path = pathlib.Path(value).expanduser()
    if not path.is_dir():
      raise errors.MissingDataError(
          f"{TEMPLATES_DIR_ENV}={value} is not a folder.\n" + _MISSING_HELP)
    return path
  path = _installed_templates_dir()
  if path is None:
    fetched = fetch_templates.default_dir()
    if fetched.is_dir():
      return fetched
    raise errors.MissingDataError(
        "the promptsource package is not installed.\n" + _MISSING_HELP)
  return path


@functools.cache
def dataset_keys() -> tuple[str, ...]:
  """Every dataset key with a template file, sorted ('acronym_identification',
  ..., 'super_glue/rte', ...)."""
  root = templates_dir()
  return tuple(sorted(p.parent.relative_to(root).as_posix()
                      for p in root.rglob(TEMPLATE_FILE)))


def template_file(dataset_key: str) -> pathlib.Path:
  """The template file of a dataset key.

  Raises:
    MissingDataError: promptsource has no templates for the key.
  """
  path = templates_dir() / dataset_key / TEMPLATE_FILE
  if not path.is_file():
    raise errors.MissingDataError(
        f"promptsource {PROMPTSOURCE_VERSION} has no templates for "
        f"{dataset_key!r}: {path} does not exist")
  return path


def _load_file(path: pathlib.Path, dataset_key: str) -> tuple[P3Template, ...]:
  try:
    doc = parse_yaml(path.read_text(encoding="utf-8"))
  except yaml.YAMLError as e:
    raise errors.ConfigError(f"{path}: not a promptsource template file: {e}"
                             ) from e
  if not isinstance(doc, dict) or "templates" not in doc:
    raise errors.ConfigError(f"{path}: expected keys 'dataset' and 'templates'")
  entries = doc["templates"] or {}
  if not isinstance(entries, dict):
    raise errors.ConfigError(f"{path}: 'templates' must map ids to !Template")
  result = []
  for key, template in entries.items():
    if not isinstance(template, P3Template):
      raise errors.ConfigError(f"{path}: template {key!r} is not a !Template")
    if str(key) != template.template_id:
      raise errors.ConfigError(
          f"{path}: template {key!r} has id {template.template_id!r}")
    result.append(dataclasses.replace(template, dataset_key=dataset_key))
  names = [t.name for t in result]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise errors.ConfigError(f"{path}: duplicate template names {duplicates}")
  # promptsource's DatasetTemplates.all_template_names order (T0's).
  return tuple(sorted(result, key=lambda t: t.name))


@functools.cache
def load(dataset_key: str) -> tuple[P3Template, ...]:
  """The templates of one dataset key, sorted by name (as promptsource).

  Raises:
    MissingDataError: promptsource is not installed or has no such key.
    ConfigError: the file is malformed (the message names it).
  """
  return _load_file(template_file(dataset_key), dataset_key)


@functools.cache
def load_all() -> Mapping[str, tuple[P3Template, ...]]:
  """``{dataset key: templates}`` for every template file of the package."""
  return types.MappingProxyType({key: load(key) for key in dataset_keys()})


def get(dataset_key: str, name_or_id: str) -> P3Template:
  """One template of a dataset by name or id.

  Raises:
    KeyError: no such template (the message lists the names).
  """
  for template in load(dataset_key):
    if name_or_id in (template.name, template.template_id):
      return template
  raise KeyError(
      f"{dataset_key} has no promptsource template {name_or_id!r}; names: "
      f"{[t.name for t in load(dataset_key)]}")
