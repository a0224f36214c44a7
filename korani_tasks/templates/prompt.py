"""A prompt template: jinja2 text that turns a data record into inputs/targets.

A template is written once per language. Rendering a record gives the model
input, the target and the answer choices (for rank classification)::

    >>> t = PromptTemplate(
    ...     dataset="kobest_boolq", template_id="gpt3_style", lang="en",
    ...     input="{{ paragraph }}\\nQuestion: {{ question }}\\nAnswer:",
    ...     target="{{ answer_choices[label] }}",
    ...     answer_choices="No ||| Yes")
    >>> r = t.render({"paragraph": "빵은 ...", "question": "빵을 먹나요?",
    ...               "label": 1})
    >>> r.inputs, r.targets, r.answer_choices, r.label_index
    ('빵은 ...\\nQuestion: 빵을 먹나요?\\nAnswer:', 'Yes', ['No', 'Yes'], 1)

As in promptsource, ``answer_choices`` is itself a jinja template whose
rendering is split on ``|||`` (so choices may come from the record, e.g.
``{{ alternative_1 }} ||| {{ alternative_2 }}``), and the rendered choices are
available to ``input`` and ``target`` as the list ``answer_choices``. The
correct choice is the one equal to the rendered target. Record text is never
evaluated, and ``|||`` inside a record's text (at any depth, e.g. in a list
field) is text, not a separator: as promptsource does for top-level fields
(``Template.pipe_protector``), it is replaced by `PIPE_PROTECTOR` while
rendering and put back in the results, so a COPA alternative ``"a ||| b"``
stays one answer choice.

Templates may use the filters and globals of promptsource's jinja environment
(promptsource/templates.py): the filters ``choice``, ``most_frequent`` and
``highlight`` and the global ``zip``. ``choice`` differs from promptsource's
on purpose: promptsource picks with `random.choice`, so a record renders
differently on every run; here the pick is a function of the record and the
items (see `choice`), so a dataset renders the same way every time.

Two dialects (`PromptTemplate.dialect`):

* ``"korani"`` (the KORANI templates): every undefined name or lookup is an
  error (`jinja2.StrictUndefined`), and templates cannot modify values.
* ``"promptsource"`` (the P3 templates, `korani_tasks.p3`): as in
  promptsource, a missing attribute or item of a value (``answers.text[0]``
  of a record without answers) renders as the empty string (T0 then skips
  the record as empty), and templates may build lists (``x.append(...)``);
  a missing *record field* (a top-level name) is still an error, so that a
  reader that lacks a field the template needs is found. jinja2's ``random``
  filter is `choice` here (deterministic).
"""

import collections
import dataclasses
import functools
import hashlib
import json
from typing import Any, Mapping, Sequence

import jinja2
import jinja2.meta
import jinja2.sandbox
import jinja2.utils

from korani_tasks import errors

CHOICE_SEPARATOR = "|||"
# promptsource's Template.pipe_protector: stands in for '|||' inside record
# text while rendering (see `_protect_separator`).
PIPE_PROTECTOR = "3ed2dface8203c4c9dfb1a5dc58e41e0"
DIALECTS = ("korani", "promptsource")


def _has_separator(value: Any) -> bool:
  if isinstance(value, str):
    return CHOICE_SEPARATOR in value
  if isinstance(value, (list, tuple)):
    return any(_has_separator(v) for v in value)
  if isinstance(value, dict):
    return any(_has_separator(v) for v in value.values())
  return False


def _protect_separator(value: Any) -> Any:
  """`value` (a record) with '|||' in its text protected, at any depth.

  Example: ``{"alternative_1": "a ||| b", "endings": ["c ||| d"]}`` gives
  ``{"alternative_1": "a <PIPE_PROTECTOR> b", "endings": ["c
  <PIPE_PROTECTOR> d"]}``; `_unprotect` turns rendered text back. Values
  without '|||' are returned as they are (not copied). promptsource protects
  only top-level strings, so a list field (HellaSwag's ``endings``) could
  still add answer choices there.
  """
  if not _has_separator(value):
    return value
  if isinstance(value, str):
    return value.replace(CHOICE_SEPARATOR, PIPE_PROTECTOR)
  if isinstance(value, (list, tuple)):
    return [_protect_separator(v) for v in value]
  return {k: _protect_separator(v) for k, v in value.items()}


def _unprotect(text: str) -> str:
  return text.replace(PIPE_PROTECTOR, CHOICE_SEPARATOR)


def _record_fingerprint(context: jinja2.runtime.Context) -> bytes:
  """A stable digest of the record being rendered (the render arguments).

  ``answer_choices`` is left out, so the answer choices, input and target of
  one record all see the same fingerprint; so are the environment's globals.
  """
  env_globals = context.environment.globals
  record = {k: v for k, v in context.parent.items()
            if k != "answer_choices" and k not in env_globals}
  text = json.dumps(record, sort_keys=True, ensure_ascii=False, default=repr)
  return hashlib.sha256(text.encode("utf-8")).digest()


@jinja2.pass_context
def choice(context: jinja2.runtime.Context, items):
  """promptsource's ``choice`` filter, deterministic: one of `items`.

  promptsource returns ``random.choice(items)``. Here the index is
  ``sha256(record fingerprint, items)`` modulo the number of items: the same
  record and items always give the same item (in every process and run), and
  different records spread over the items like a random pick. Consequence:
  two calls with the same items in one template give the same item (they are
  independent draws in promptsource).
  """
  items = list(items)
  if not items:
    raise ValueError("choice: no items to choose from")
  digest = hashlib.sha256(
      _record_fingerprint(context) + b"\x00" + json.dumps(
          items, sort_keys=True, ensure_ascii=False, default=repr
      ).encode("utf-8")).digest()
  return items[int.from_bytes(digest[:8], "big") % len(items)]


def most_frequent(items):
  """promptsource's ``most_frequent`` filter: the items that occur most often.

  Returns the list of those items, in order of first occurrence (ties all
  kept); None for no items.
  """
  if not items:
    return None
  counts = collections.Counter(items).most_common()
  top = counts[0][1]
  return [item for item, count in counts if count == top]


def highlight(text):
  """promptsource's ``highlight`` filter (HTML markup for its web app)."""
  return "<span style='color: #F08080'>" + text + "</span>"


class _PromptsourceUndefined(jinja2.Undefined):
  """Undefined as in promptsource, except for missing top-level names.

  A missing item or attribute of a defined value (``answers.text[0]`` with
  no answers) renders as "" and is empty and false, as jinja2's default
  `Undefined` (promptsource's). A missing top-level name (a record field the
  record lacks) fails like `jinja2.StrictUndefined`.
  """

  __slots__ = ()

  def _is_top_level(self) -> bool:
    return self._undefined_obj is jinja2.utils.missing

  def __str__(self) -> str:
    if self._is_top_level():
      self._fail_with_undefined_error()
    return ""

  def __iter__(self):
    if self._is_top_level():
      self._fail_with_undefined_error()
    yield from ()

  def __bool__(self) -> bool:
    if self._is_top_level():
      self._fail_with_undefined_error()
    return False

  def __len__(self) -> int:
    if self._is_top_level():
      self._fail_with_undefined_error()
    return 0

  def __eq__(self, other) -> bool:
    if self._is_top_level():
      self._fail_with_undefined_error()
    return type(self) is type(other)

  def __ne__(self, other) -> bool:
    return not self.__eq__(other)

  def __hash__(self) -> int:
    return id(type(self))

  def __contains__(self, item) -> bool:
    if self._is_top_level():
      self._fail_with_undefined_error()
    return False


# The KORANI environment: sandboxed (no access to unsafe attributes, no
# modification of values) and strict about undefined names, so that a
# misspelled field is an error instead of an empty string.
_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
# promptsource's semantics (see the module docstring), still sandboxed.
_PROMPTSOURCE_ENV = jinja2.sandbox.SandboxedEnvironment(
    undefined=_PromptsourceUndefined, keep_trailing_newline=False)
_ENVIRONMENTS = {"korani": _ENV, "promptsource": _PROMPTSOURCE_ENV}
for _env in _ENVIRONMENTS.values():
  _env.filters.update(
      choice=choice, most_frequent=most_frequent, highlight=highlight)
  _env.globals.update(zip=zip)
# jinja2's own `random` filter (a few promptsource templates use it) made
# deterministic like `choice`: a P3 template may render twice per record
# (input and target, see korani_tasks.p3.promptsource_yaml.split_jinja), and
# both renders must pick the same.
_PROMPTSOURCE_ENV.filters["random"] = choice


@functools.lru_cache(maxsize=None)
def _compile(source: str, dialect: str = "korani") -> jinja2.Template:
  """Compiles jinja2 source once; rendering a dataset reuses it."""
  return _ENVIRONMENTS[dialect].from_string(source)


@dataclasses.dataclass(frozen=True)
class RenderedExample:
  """The result of applying a template to one record."""
  inputs: str
  targets: str
  answer_choices: Sequence[str]
  # Index of `targets` in `answer_choices`; None when there are no choices.
  label_index: int | None


@dataclasses.dataclass(frozen=True)
class PromptTemplate:
  """One template in one language.

  Attributes:
    dataset: key of the dataset the template is written for.
    template_id: identifier, the same for the aligned versions of a template
      in every language (used in task names, so `[a-z0-9_]+`).
    lang: language of the template text ('ko' or 'en').
    input: jinja2 source of the model input.
    target: jinja2 source of the target.
    answer_choices: jinja2 source of the choices, separated by '|||'; None for
      generation templates.
    original_task: whether the template asks the dataset's original task (as
      promptsource's metadata flag; T0 evaluates only those).
    choices_in_prompt: whether the input lists the answer choices.
    dialect: "korani" or "promptsource" (see the module docstring).
    check_syntax: parse the jinja now, raising ConfigError for a syntax
      error; False defers the parse to the first render (for large sets of
      templates whose syntax is tested elsewhere, e.g. promptsource's).
  """
  dataset: str
  template_id: str
  lang: str
  input: str
  target: str
  answer_choices: str | None = None
  original_task: bool = True
  choices_in_prompt: bool = False
  dialect: str = "korani"
  check_syntax: bool = dataclasses.field(
      default=True, compare=False, repr=False)

  def __post_init__(self):
    if self.dialect not in _ENVIRONMENTS:
      raise errors.ConfigError(
          f"template {self.name}: dialect {self.dialect!r} is not one of "
          f"{DIALECTS}")
    if not self.check_syntax:
      return
    # Parsing checks the syntax now; compiling waits for the first render
    # (a fifth of the cost, which matters when every task registers at import).
    env = _ENVIRONMENTS[self.dialect]
    for name in ("input", "target", "answer_choices"):
      source = getattr(self, name)
      if source is None:
        continue
      try:
        env.parse(source)
      except jinja2.TemplateSyntaxError as e:
        raise errors.ConfigError(
            f"template {self.name}: {name} is not valid jinja2 "
            f"(line {e.lineno}: {e.message})") from e

  @property
  def name(self) -> str:
    return f"{self.dataset}/{self.lang}/{self.template_id}"

  @property
  def version(self) -> str:
    """A digest of what the template renders from (12 hex digits).

    Any change to the input, target, answer choices or dialect changes it;
    the id, language and metadata flags do not enter it. Result files record
    it, so that scores of an edited template (same id) are not taken for
    scores of the old one.
    """
    text = json.dumps([self.dialect, self.input, self.target,
                       self.answer_choices], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

  def _render(self, source: str, context: Mapping[str, Any], what: str) -> str:
    try:
      compiled = _compile(source, self.dialect)
    except jinja2.TemplateSyntaxError as e:
      raise errors.ConfigError(
          f"template {self.name}: {what} is not valid jinja2 "
          f"(line {e.lineno}: {e.message})") from e
    fields = sorted(k for k in context if k != "answer_choices")
    try:
      return compiled.render(**context).strip()
    except jinja2.UndefinedError as e:
      env = _ENVIRONMENTS[self.dialect]
      lacks = sorted(jinja2.meta.find_undeclared_variables(env.parse(source))
                     - set(context) - set(env.globals))
      raise errors.ConfigError(
          f"template {self.name}: {what} uses an undefined name ({e.message})"
          + (f"; the record lacks the field(s) {lacks}" if lacks else "")
          + f"; record fields are: {fields}") from e
    except (TypeError, jinja2.TemplateError) as e:
      # A record field of another type than the template expects, e.g.
      # `score >= 4` with a text score.
      types = {k: type(context[k]).__name__ for k in fields}
      raise errors.ConfigError(
          f"template {self.name}: {what} cannot render this record "
          f"({type(e).__name__}: {e}); record field types are: {types}"
      ) from e

  def render_answer_choices(self, record: Mapping[str, Any]) -> list[str]:
    """Renders and splits the answer choices; [] for generation templates."""
    if self.answer_choices is None:
      return []
    rendered = self._render(self.answer_choices, _protect_separator(record),
                            "answer_choices")
    return [_unprotect(c.strip()) for c in rendered.split(CHOICE_SEPARATOR)]

  def render_parts(
      self, record: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    """``(inputs, targets, answer_choices)`` of a record, unchecked.

    Unlike `render`, empty parts and a target that is not among the choices
    are returned as they are (P3 skips such records, as T0 does).

    Raises:
      ConfigError: if the template uses a field the record lacks, or one of
        another type than it expects.
    """
    # Input and target see the record the choices saw (`choice` picks by it).
    record = _protect_separator(record)
    choices = self.render_answer_choices(record)
    context = dict(record, answer_choices=choices)
    inputs = _unprotect(self._render(self.input, context, "input"))
    targets = _unprotect(self._render(self.target, context, "target"))
    return inputs, targets, choices

  def render(self, record: Mapping[str, Any]) -> RenderedExample:
    """Applies the template to a record (a mapping of field name to value).

    Raises:
      ConfigError: if the template uses a field the record lacks, or one of
        another type than it expects.
      ValueError: if the rendered target is not one of the answer choices, or
        a choice or the input renders empty.
    """
    inputs, targets, choices = self.render_parts(record)
    if not inputs:
      raise ValueError(
          f"template {self.name}: input renders empty (input: {self.input!r};"
          " are the record fields it uses empty?)")
    label_index = None
    if choices:
      if any(not c for c in choices):
        raise ValueError(
            f"template {self.name}: an answer choice renders empty: {choices}"
            f" (answer_choices: {self.answer_choices!r}; are the record fields"
            " it uses empty?)")
      if targets not in choices:
        raise ValueError(
            f"template {self.name}: target {targets!r} is not one of the "
            f"answer choices {choices}")
      label_index = choices.index(targets)
    return RenderedExample(inputs, targets, choices, label_index)
