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
correct choice is the one equal to the rendered target.
"""

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import jinja2
import jinja2.sandbox

from korani_tasks import errors

CHOICE_SEPARATOR = "|||"

# One environment for all templates: sandboxed (templates may come from
# third-party files such as promptsource's) and strict about undefined names,
# so that a misspelled field is an error instead of an empty string.
_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


@functools.lru_cache(maxsize=None)
def _compile(source: str) -> jinja2.Template:
  """Compiles jinja2 source once; rendering a dataset reuses it."""
  return _ENV.from_string(source)


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
  """
  dataset: str
  template_id: str
  lang: str
  input: str
  target: str
  answer_choices: str | None = None
  original_task: bool = True
  choices_in_prompt: bool = False

  def __post_init__(self):
    # Parsing checks the syntax now; compiling waits for the first render
    # (a fifth of the cost, which matters when 900 tasks register at import).
    for name in ("input", "target", "answer_choices"):
      source = getattr(self, name)
      if source is None:
        continue
      try:
        _ENV.parse(source)
      except jinja2.TemplateSyntaxError as e:
        raise errors.ConfigError(
            f"template {self.name}: {name} is not valid jinja2 "
            f"(line {e.lineno}: {e.message})") from e

  @property
  def name(self) -> str:
    return f"{self.dataset}/{self.lang}/{self.template_id}"

  def _render(self, source: str, context: Mapping[str, Any], what: str) -> str:
    try:
      return _compile(source).render(**context).strip()
    except jinja2.UndefinedError as e:
      raise errors.ConfigError(
          f"template {self.name}: {what} uses an undefined name ({e.message}); "
          f"record fields are: {sorted(k for k in context if k != 'answer_choices')}"
      ) from e

  def render_answer_choices(self, record: Mapping[str, Any]) -> list[str]:
    """Renders and splits the answer choices; [] for generation templates."""
    if self.answer_choices is None:
      return []
    rendered = self._render(self.answer_choices, record, "answer_choices")
    return [c.strip() for c in rendered.split(CHOICE_SEPARATOR)]

  def render(self, record: Mapping[str, Any]) -> RenderedExample:
    """Applies the template to a record (a mapping of field name to value).

    Raises:
      ConfigError: if the template uses a field the record lacks.
      ValueError: if the rendered target is not one of the answer choices, or
        a choice or the input renders empty.
    """
    choices = self.render_answer_choices(record)
    context = dict(record, answer_choices=choices)
    inputs = self._render(self.input, context, "input")
    targets = self._render(self.target, context, "target")
    if not inputs:
      raise ValueError(f"template {self.name}: input renders empty")
    label_index = None
    if choices:
      if any(not c for c in choices):
        raise ValueError(
            f"template {self.name}: an answer choice renders empty: {choices}")
      if targets not in choices:
        raise ValueError(
            f"template {self.name}: target {targets!r} is not one of the "
            f"answer choices {choices}")
      label_index = choices.index(targets)
    return RenderedExample(inputs, targets, choices, label_index)
