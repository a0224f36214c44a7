"""Fuzzed records through the real prompt templates (hypothesis).

Every template of the 23 raw KORANI datasets (korani_tasks/templates/*.yaml,
ko and en) and the promptsource templates of the P3 datasets with readers
(korani_tasks.p3) render records whose text fields are arbitrary Unicode:
Hangul (also as conjoining jamo), combining marks, RTL text and marks, emoji
sequences, NUL and other control characters, empty and 100k-character
fields, and text that looks like jinja or like the choice separator
(``{{ x }}``, ``{% if %}``, ``{#``, ``|||``). Records are drawn from each
dataset's TFDS features (`korani_tasks.readers.RAW_DATASETS`), as the readers
give them.

What must hold, for the KORANI templates: the rendering is the template's
text with every field inserted literally. Each free text field is first
replaced by a marker (a private-use character pair), the template rendered,
and the markers then replaced by the field values: `PromptTemplate.render`
must give exactly that (inputs, target, choices, label index), or raise the
ValueError that names the template when that text leaves the input or a
choice empty. A record without a field the template uses, or with a field
of another type, is a ConfigError naming the template (and the missing
field), never a raw jinja2 error or TypeError.

For the P3 templates (whose jinja transforms values, e.g.
``sentence.split('_')``): no error, data never evaluated, and '|||' inside a
field (also inside a list field) never changes the number of answer
choices.
"""

import functools

import hypothesis
from hypothesis import strategies as st
import jinja2.meta
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import errors
from korani_tasks import readers
from korani_tasks import templates
from korani_tasks.p3 import preprocessors
from korani_tasks.p3 import promptsource_yaml
from korani_tasks.p3 import tasks as p3_tasks
from korani_tasks.templates import prompt

RAW = sorted(readers.RAW_DATASETS)
LONG = 100_000  # Characters of a "very long" field.

# Markers that stand in for field values; the fuzzed text never has them.
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"

# Text known to trip up templating and text handling.
_NASTY = (
    "", " ", "  ", "\t", "\n", "\r\n", "\x00", "\x07", "\x1b[31m", "\x7f",
    "\x1c", "\x85", "\u2028", "\ufeff", "\u200b", "\u200f", "\u202e",
    "{{ x }}", "{{ 6 * 7 }}", "{{", "}}", "{%", "%}", "{#", "#}",
    "{% if %}", "{% if true %}y{% endif %}", "{% raw %}", "{% endraw %}",
    "{{ answer_choices[0] }}", "{{ label }}", "{% for x in y %}",
    "|||", " ||| ", "||||", "|", "\\", "'", '"', "<b>", "&amp;",
    "한국어 문장", "\u1100\u1161\u11a8", "e\u0301", "\u0301", "\u0e01\u0e33",
    "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1f0\U0001f1f7",
    "\U0001f600", "\u4e2d\u6587", "\U00020000",
)
_CHARS = st.characters(
    blacklist_categories=("Cs",),  # No lone surrogates (not valid text).
    blacklist_characters=_MARK_OPEN + _MARK_CLOSE)
_FRAGMENT = st.one_of(
    st.sampled_from(_NASTY),
    st.sampled_from(("|||", " ||| ", "{{ x }}", "{% if %}", "{#")),
    st.text(_CHARS, max_size=12),
    st.text(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
            min_size=1, max_size=12))
TEXT = st.lists(_FRAGMENT, max_size=6).map("".join)


def long_text(piece: str) -> str:
  """`piece` repeated to `LONG` characters (at least one character)."""
  piece = piece or "가"
  return (piece * (LONG // len(piece) + 1))[:LONG]


LONG_TEXT = TEXT.map(long_text)

# Fields whose values the readers restrict (parse_choice or the source's
# closed sets); the templates test them, so they are drawn from those sets.
_CLOSED_STRINGS = {
    ("kobest_copa", "question"): ("원인", "결과"),
    ("beep_hate", "bias"): ("none", "gender", "others"),
}
_CLOSED_INTS = {
    "contain_gender_bias": (0, 1), "personal_reference": (0, 1),
    "score_bucket": tuple(range(6)), "act_1": tuple(range(4)),
    "act_2": tuple(range(4)), "topic_1": tuple(range(4)),
    "topic_2": tuple(range(4)), "question_type": (1, 2),
    "is_impossible": (0,), "original_label": (-1, 0, 1),
    "negation_category": (-1, 1, 2, 3), "rating": (1, 2, 4, 5),
}
UNSMILE_CATEGORIES = readers.hate_speech.UNSMILE_CATEGORIES


@functools.cache
def _field_kinds(dataset: str) -> tuple[tuple[str, str, object], ...]:
  """``(field, kind, detail)`` of each feature of `dataset`, read from its
  TFDS features once (no TF in the examples' loop)."""
  kinds = []
  for name, feature in readers.RAW_DATASETS[dataset].features.items():
    if isinstance(feature, tfds.features.ClassLabel):
      kinds.append((name, "class", feature.num_classes))
    elif isinstance(feature, tfds.features.Sequence):
      if name == "categories":
        kinds.append((name, "categories", None))
      elif feature.feature.dtype == tf.string:
        kinds.append((name, "texts", None))
      else:
        kinds.append((name, "ints", None))
    elif feature == tf.string:
      closed = _CLOSED_STRINGS.get((dataset, name))
      kinds.append((name, "closed", closed) if closed else (name, "text", None))
    elif feature.is_floating:
      kinds.append((name, "float", None))
    else:
      kinds.append((name, "int", _CLOSED_INTS.get(name)))
  return tuple(kinds)


@st.composite
def records(draw, dataset: str, text=TEXT):
  """A record of `dataset` as its reader gives it, free text from `text`.

  Returns ``(record, free)``: ``free`` lists the free text fields, as
  ``(field, None)`` or ``(field, list index)``.
  """
  record, free = {}, []
  for name, kind, detail in _field_kinds(dataset):
    if kind == "class":
      record[name] = draw(st.integers(0, detail - 1))
    elif kind == "categories":
      record[name] = draw(st.lists(st.sampled_from(UNSMILE_CATEGORIES),
                                   unique=True, max_size=3))
    elif kind == "texts":
      record[name] = draw(st.lists(text, min_size=1, max_size=3))
      free += [(name, i) for i in range(len(record[name]))]
    elif kind == "ints":
      record[name] = draw(st.lists(st.integers(0, 10**6), min_size=1,
                                   max_size=3))
    elif kind == "closed":
      record[name] = draw(st.sampled_from(detail))
    elif kind == "text":
      record[name] = draw(text)
      free.append((name, None))
    elif kind == "float":
      record[name] = draw(st.floats(0.0, 5.0))
    else:
      record[name] = draw(st.sampled_from(detail) if detail
                          else st.integers(0, 10**6))
  if dataset == "unsmile":  # label 0 (clean) has no category (the reader).
    record["categories"] = record["categories"] if record["label"] else []
  return record, free


def _marker(i: int, kind: str = "f") -> str:
  return f"{_MARK_OPEN}{kind}{i}{_MARK_CLOSE}"


def _with_markers(record, free):
  """The record with free field i replaced by `_marker(i)`."""
  marked = {k: list(v) if isinstance(v, list) else v
            for k, v in record.items()}
  for i, (name, index) in enumerate(free):
    if index is None:
      marked[name] = _marker(i)
    else:
      marked[name][index] = _marker(i)
  return marked


def _value(record, field):
  name, index = field
  return record[name] if index is None else record[name][index]


def expected_render(template, record, free):
  """What rendering `record` must give, built from a render with markers.

  The answer choices are rendered with field markers, which are then
  replaced by the field values (each choice stripped, as `render` strips
  it); input and target are rendered with field markers and with choice
  markers in ``answer_choices``, then both kinds are replaced.

  Returns ``(inputs, targets, choices)``.
  """
  marked = _with_markers(record, free)

  def put(text, choices=()):
    for i, field in enumerate(free):
      text = text.replace(_marker(i), _value(record, field))
    for j, choice in enumerate(choices):
      text = text.replace(_marker(j, "c"), choice)
    assert _MARK_OPEN not in text, (template.name, text)
    return text.strip()

  choices = [put(c) for c in template.render_answer_choices(marked)]
  context = dict(marked,
                 answer_choices=[_marker(j, "c") for j in range(len(choices))])
  # pylint: disable-next=protected-access
  compile_ = functools.partial(prompt._compile, dialect=template.dialect)
  inputs, targets = (put(compile_(source).render(**context), choices)
                     for source in (template.input, template.target))
  return inputs, targets, choices


def check_render(template, record, free):
  """`template.render(record)` is the literal rendering, or a clear error."""
  inputs, targets, choices = expected_render(template, record, free)
  problem = None
  if not inputs:
    problem = "input renders empty"
  elif choices and not all(choices):
    problem = "an answer choice renders empty"
  elif choices and targets not in choices:
    problem = "not one of the answer choices"
  if problem:
    with pytest.raises(ValueError, match=problem) as info:
      template.render(record)
    assert template.name in str(info.value)
    return
  rendered = template.render(record)
  assert rendered.inputs == inputs, template.name
  assert rendered.targets == targets, template.name
  assert list(rendered.answer_choices) == choices, template.name
  if choices:
    assert rendered.label_index == choices.index(targets), template.name
    assert rendered.answer_choices[rendered.label_index] == rendered.targets
  else:
    assert rendered.label_index is None


@functools.cache
def _templates(dataset):
  by_lang = templates.load_templates(dataset)
  return tuple(t for lang in templates.LANGUAGES for t in by_lang[lang])


@pytest.mark.parametrize("dataset", RAW)
@hypothesis.given(data=st.data())
def test_korani_templates_render_fuzzed_text_literally(dataset, data):
  record, free = data.draw(records(dataset))
  for template in _templates(dataset):
    check_render(template, record, free)


@pytest.mark.parametrize("dataset", RAW)
@hypothesis.given(data=st.data())
def test_korani_templates_render_very_long_fields(dataset, data):
  record, free = data.draw(records(dataset, text=LONG_TEXT))
  template = data.draw(st.sampled_from(_templates(dataset)))
  check_render(template, record, free)


@pytest.mark.parametrize("dataset", RAW)
@hypothesis.given(data=st.data())
def test_korani_templates_render_empty_fields(dataset, data):
  """Empty and blank text fields: a literal rendering, or the error that
  names the template."""
  record, free = data.draw(records(dataset, text=st.sampled_from(
      ["", " ", "\n", "x"])))
  for template in _templates(dataset):
    check_render(template, record, free)


@functools.cache
def _fields_used(template) -> frozenset[str]:
  """The record fields a template's jinja refers to (parsed once)."""
  env = prompt._ENVIRONMENTS[template.dialect]  # pylint: disable=protected-access
  names = set()
  for source in (template.input, template.target, template.answer_choices):
    if source is not None:
      names |= jinja2.meta.find_undeclared_variables(env.parse(source))
  return frozenset(names - {"answer_choices"} - set(env.globals))


@pytest.mark.parametrize("dataset", RAW)
@hypothesis.given(data=st.data())
def test_a_missing_or_mistyped_field_is_an_error_naming_the_template(
    dataset, data):
  """A field left out, or of another type (text for a number, None, a
  list): a rendering, or ConfigError/ValueError naming the template (and
  the field, where it is missing); never a raw jinja2 or TypeError."""
  record, _ = data.draw(records(dataset))
  field = data.draw(st.sampled_from(sorted(record)), label="field")
  change = data.draw(st.sampled_from(["missing", "text", "none", "list"]))
  if change == "missing":
    del record[field]
  else:
    record[field] = {"text": data.draw(TEXT), "none": None,
                     "list": [1, "a"]}[change]
  for template in _templates(dataset):
    missing = change == "missing" and field in _fields_used(template)
    try:
      template.render(record)
    except errors.ConfigError as e:
      assert template.name in str(e)
      assert not missing or repr(field) in str(e), str(e)
    except ValueError as e:  # Empty input or choice, target not a choice.
      assert template.name in str(e) and not missing
    else:
      assert not missing, (template.name, field)


def test_separator_in_data_does_not_split_choices():
  """A COPA alternative with '|||' is one choice, as written (the bug fixed
  in PromptTemplate.render_parts: it used to split into three)."""
  record = {"idx": 0, "premise": "비가 왔다.", "question": "결과",
            "alternative_1": "a ||| b", "alternative_2": "c", "label": 1}
  for template in _templates("kobest_copa"):
    if template.answer_choices and "alternative_1" in template.answer_choices:
      rendered = template.render(record)
      assert rendered.answer_choices == ["a ||| b", "c"], template.name
      assert (rendered.targets, rendered.label_index) == ("c", 1)


# --- P3 (promptsource) templates on records of the P3 readers. ---

_P3_FIELDS = {
    # dataset key: {field: kind}; kind "text" is free text, a tuple a closed
    # set of values, "int" an integer, ("texts", n) n free texts.
    "super_glue/rte": {"premise": "text", "hypothesis": "text",
                       "idx": "int", "label": (0, 1)},
    "super_glue/cb": {"premise": "text", "hypothesis": "text", "idx": "int",
                      "label": (0, 1, 2)},
    "super_glue/copa": {"premise": "text", "choice1": "text",
                        "choice2": "text", "question": ("cause", "effect"),
                        "idx": "int", "label": (0, 1)},
    "super_glue/wic": {"word": "text", "sentence1": "text",
                       "sentence2": "text", "start1": "int", "start2": "int",
                       "end1": "int", "end2": "int", "idx": "int",
                       "label": (0, 1)},
    "super_glue/wsc.fixed": {"text": "text", "span1_index": "int",
                             "span2_index": "int", "span1_text": "text",
                             "span2_text": "text", "idx": "int",
                             "label": (0, 1)},
    "super_glue/boolq": {"question": "text", "passage": "text", "idx": "int",
                         "label": (0, 1)},
    "anli": {"uid": "text", "premise": "text", "hypothesis": "text",
             "label": (0, 1, 2), "reason": "text"},
    "hellaswag": {"ind": "int", "activity_label": "text", "ctx_a": "text",
                  "ctx_b": "text", "ctx": "text", "endings": ("texts", 4),
                  "source_id": "text", "split": ("train", "val"),
                  "split_type": ("indomain", "zeroshot"),
                  "label": ("0", "1", "2", "3")},
    "story_cloze/2016": {
        "story_id": "text",
        **{f"input_sentence_{i}": "text" for i in range(1, 5)},
        "sentence_quiz1": "text", "sentence_quiz2": "text",
        "answer_right_ending": (1, 2)},
    "winogrande/winogrande_xl": {"sentence": "text", "option1": "text",
                                 "option2": "text", "answer": ("1", "2")},
    "trec": {"text": "text", "label_coarse": tuple(range(6)),
             "label_fine": tuple(range(47))},
    "ag_news": {"text": "text", "label": (0, 1, 2, 3)},
    "rotten_tomatoes": {"text": "text", "label": (0, 1)},
}
# Text that, evaluated as jinja, would give `_EVALUATED`; literally it
# cannot contain it (the quotes and '~' are in the way).
_JINJA_PAYLOAD = '{{ "evalu" ~ "ated!" }}'
_EVALUATED = "evaluated!"
P3_TEXT = st.one_of(TEXT, st.just(_JINJA_PAYLOAD),
                    TEXT.map(lambda t: t + _JINJA_PAYLOAD + t))


@functools.cache
def _p3_templates(dataset_key):
  try:
    english = promptsource_yaml.load(dataset_key)
  except errors.MissingDataError as e:
    pytest.skip(str(e))
  korean = p3_tasks.korean_templates(dataset_key)
  return tuple([t.to_prompt_template("en") for t in english]
               + [t.to_prompt_template("ko") for t in korean])


@st.composite
def p3_records(draw, dataset_key):
  record = {}
  for name, kind in _P3_FIELDS[dataset_key].items():
    if kind == "text":
      record[name] = draw(P3_TEXT)
    elif kind == "int":
      record[name] = draw(st.integers(0, 40))
    elif kind[0] == "texts":
      record[name] = draw(st.lists(P3_TEXT, min_size=kind[1],
                                   max_size=kind[1]))
    else:
      record[name] = draw(st.sampled_from(kind))
  return record


def _without_separator(value):
  if isinstance(value, str):
    return value.replace("|||", "///")
  if isinstance(value, list):
    return [_without_separator(v) for v in value]
  return value


@pytest.mark.parametrize("dataset_key", sorted(_P3_FIELDS))
@hypothesis.given(data=st.data())
def test_p3_templates_render_fuzzed_records(dataset_key, data):
  record = data.draw(p3_records(dataset_key))
  plain = {k: _without_separator(v) for k, v in record.items()}
  for template in _p3_templates(dataset_key):
    for kind in (preprocessors.TRAIN, preprocessors.SCORE_EVAL):
      inputs, targets, choices, index, status = preprocessors.render_p3(
          template, record, kind)
      assert status in (preprocessors.KEPT, preprocessors.EMPTY,
                        preprocessors.UNSCORABLE)
      for text in (inputs, targets, *choices):
        assert isinstance(text, str)
        assert _EVALUATED not in text.casefold(), (template.name, text)
      if status == preprocessors.KEPT and kind == preprocessors.SCORE_EVAL:
        assert index >= 0 and choices[index] == targets, template.name
      if index >= 0:
        assert choices[index] == targets, template.name
    _, _, plain_choices, _, _ = preprocessors.render_p3(template, plain)
    assert len(choices) == len(plain_choices), (template.name, choices)
