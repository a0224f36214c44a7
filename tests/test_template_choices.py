"""Answer choices that rank cleanly, for every template with choices.

Rank classification sums the log-likelihood of each answer choice and takes
the argmax. A choice that is a string prefix of another ("it does" / "it does
not") shares its every token with the longer one, duplicate choices cannot be
told apart, and a target outside the choices cannot be scored. These tests
fail on any of the three:

* the KORANI pairs (korani_tasks/templates, ko and en): the first
  `FIRST_ROWS` records of every split in $KORANI_DATA_DIR, read by the
  dataset's reader;
* our Korean versions of the P3 templates (korani_tasks/p3/templates_ko;
  promptsource's English originals stay as T0 has them): the first
  `FIRST_ROWS` records of every split in $KORANI_DATA_DIR, skipping the
  records a template does not apply to, as T0 does; and, with or without
  data, the choices of every template whose choices do not depend on the
  record.

Without local files (the tests print which): a KORANI dataset renders one
synthetic record per label of the catalog's label set, shaped by the reader's
features; a Korean P3 template with fixed choices renders a synthetic record
of its fields per choice index (`test_p3_templates.synthetic_record`), and
its target is checked where the English template's target is one of its
choices on that record; a P3 template whose choices come from the record
cannot be checked without data.
"""

import collections
import functools
import itertools

import jinja2.meta
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import catalog
from korani_tasks import readers
from korani_tasks import templates
from korani_tasks.p3 import base as p3_base
from korani_tasks.p3 import preprocessors as p3_preprocessors
from korani_tasks.p3 import promptsource_yaml
from korani_tasks.p3 import tasks as p3_tasks
from korani_tasks.templates import prompt
from test_p3_templates import synthetic_record

FIRST_ROWS = 5
RAW = sorted(readers.RAW_DATASETS)
KOREAN_P3 = p3_tasks.korean_template_keys()


def choice_problems(choices, target) -> list[str]:
  """What keeps `choices` and `target` from ranking cleanly ([] if nothing).

  >>> choice_problems(["it does not", "it does"], "it does")
  ["'it does' is a prefix of 'it does not'"]
  """
  counts = collections.Counter(choices)
  problems = [f"{c!r} is there {n} times" for c, n in counts.items() if n > 1]
  problems += [f"{a!r} is a prefix of {b!r}"
               for a, b in itertools.permutations(counts, 2)
               if b.startswith(a)]
  if target not in choices:
    problems.append(f"target {target!r} is not one of the choices")
  return problems


class Failures:
  """The problems found, each listed once per template with where it first
  showed and on how many renderings."""

  def __init__(self):
    self._found = {}

  def check(self, name: str, where: str, choices, target) -> None:
    for problem in choice_problems(choices, target):
      first, count = self._found.get((name, problem), (None, 0))
      self._found[(name, problem)] = (first or f"{where}, choices {choices}",
                                      count + 1)

  def __str__(self) -> str:
    return "\n".join(f"{name}: {problem} (first at {first}; {count} "
                     "renderings)"
                     for (name, problem), (first, count) in self._found.items())

  def __bool__(self) -> bool:
    return bool(self._found)


def test_choice_problems():
  assert choice_problems(["아니요", "예"], "예") == []
  assert choice_problems(["중복 아님", "중복"], "중복") == [
      "'중복' is a prefix of '중복 아님'"]
  assert choice_problems(["a", "b", "a"], "c") == [
      "'a' is there 2 times", "target 'c' is not one of the choices"]
  failures = Failures()
  for i in range(3):
    failures.check("t", f"row {i}", ["x", "xy"], "x")
  assert str(failures) == ("t: 'x' is a prefix of 'xy' (first at row 0, "
                           "choices ['x', 'xy']; 3 renderings)")


# --- KORANI pairs. ---


@functools.cache
def _korani_records(raw_data_dir, dataset):
  """{split: first records} of the splits whose files are present."""
  raw = readers.RAW_DATASETS[dataset]
  return {split: [r for _, r in itertools.islice(
      raw.read(split, raw.paths(raw_data_dir, split)), FIRST_ROWS)]
          for split in raw.present_splits(raw_data_dir)}


def _synthetic_korani_records(dataset):
  """One record per label of the catalog's label set, shaped by the reader's
  features (text fields hold their name, other numbers are 1)."""
  features = readers.RAW_DATASETS[dataset].features
  labels = catalog.get(dataset).labels
  records = []
  for label in range(len(labels)):
    record = {}
    for name, feature in features.items():
      if isinstance(feature, tfds.features.ClassLabel):
        assert feature.num_classes == len(labels), (dataset, name)
        record[name] = label
      elif isinstance(feature, tfds.features.Sequence):
        string = feature.feature.dtype == tf.string
        record[name] = [f"{name} 예시" if string else 1]
      elif feature == tf.string:
        record[name] = f"{name} 예시"
      else:
        record[name] = 1
    records.append(record)
  return records


def _with_choices(dataset):
  return [t for lang in templates.LANGUAGES
          for t in templates.load_templates(dataset)[lang] if t.answer_choices]


@pytest.mark.parametrize("dataset", RAW)
def test_korani_choices_rank_cleanly(raw_data_dir, dataset):
  by_split = _korani_records(raw_data_dir, dataset)
  if not by_split and _with_choices(dataset):
    print(f"\n{dataset}: no local data; checked on a synthetic record per "
          "label")
    by_split = {"synthetic": _synthetic_korani_records(dataset)}
  failures, checked = Failures(), 0
  for template in _with_choices(dataset):
    for split, records in by_split.items():
      for i, record in enumerate(records):
        inputs, target, choices = template.render_parts(record)
        assert inputs, (template.name, split, i)
        failures.check(template.name, f"{split} #{i}", choices, target)
        checked += 1
  assert not failures, str(failures)
  assert checked or catalog.get(dataset).kind == "nlg"


# --- Korean P3 versions. ---


def _fixed_choices(template) -> bool:
  """Whether the choices are the same for every record."""
  env = prompt._ENVIRONMENTS["promptsource"]  # pylint: disable=protected-access
  return not (jinja2.meta.find_undeclared_variables(
      env.parse(template.answer_choices)) - set(env.globals))


@functools.cache
def _p3_records(raw_data_dir, key):
  """``(split, index, record)`` of the first records of every present split
  of a P3 source; () where there is none."""
  source = p3_base.P3_SOURCES.get(key)
  if source is None:
    return ()
  return tuple(
      (split, i, record) for split in source.present_splits(raw_data_dir)
      for i, (_, record) in enumerate(itertools.islice(
          source.read(split, source.paths(raw_data_dir, split)), FIRST_ROWS)))


def _korean_with_choices(key):
  return [t for t in p3_tasks.korean_templates(key) if t.answer_choices]


def _check_synthetic(key, template, failures) -> int:
  """Checks a Korean template on a synthetic record per choice index where
  the English template's target is one of its choices on the same record (a
  synthetic record holds no real answer: 'answerKey text'); returns how many
  records it checked."""
  en_template = promptsource_yaml.get(key, template.name)
  english = en_template.to_prompt_template()
  korean = p3_tasks.prompt_template(template, "ko")
  sources = (en_template.jinja, en_template.answer_choices, template.jinja,
             template.answer_choices)
  checked = 0
  for index in range(korean.answer_choices.count(prompt.CHOICE_SEPARATOR) + 1):
    record = synthetic_record(sources, index)
    try:
      status = p3_preprocessors.render_p3(english, record,
                                          p3_preprocessors.SCORE_EVAL)[-1]
    except ValueError:
      # The template looks the answer up among the record's own fields
      # (cos_e: ``choices.index(answer)``), which a synthetic record cannot
      # satisfy: its target stays unchecked (listed by the caller).
      continue
    if status != p3_preprocessors.KEPT:
      continue
    inputs, target, choices, _, _ = p3_preprocessors.render_p3(korean, record)
    assert inputs and target, (key, template.name, record)
    failures.check(f"{key} / {template.name}", f"synthetic #{index}", choices,
                   target)
    checked += 1
  return checked


@pytest.mark.parametrize("key", KOREAN_P3)
def test_korean_p3_choices_rank_cleanly(raw_data_dir, key):
  records = _p3_records(raw_data_dir, key)
  failures, checked = Failures(), collections.Counter()
  targets_unchecked = []
  for template in _korean_with_choices(key):
    converted = p3_tasks.prompt_template(template, "ko")
    name = f"{key} / {template.name}"
    if _fixed_choices(template):
      choices = converted.render_answer_choices({})
      failures.check(name, "the choices", choices, choices[0])
      checked[template.name] += 1
      if not records and not _check_synthetic(key, template, failures):
        targets_unchecked.append(template.name)
    for split, i, record in records:
      inputs, target, choices, _, _ = p3_preprocessors.render_p3(
          converted, record)
      if inputs and target:  # T0 skips the records a template skips.
        failures.check(name, f"{split} #{i}", choices, target)
        checked[template.name] += 1
  assert not failures, str(failures)
  unchecked = [t.name for t in _korean_with_choices(key)
               if not checked[t.name]]
  if records:
    assert not unchecked, f"no record of {key} renders {unchecked}"
  elif checked or unchecked:
    print(f"\n{key}: no local data; fixed choices checked: "
          f"{sorted(checked)}, their targets on synthetic records except "
          f"{targets_unchecked}; choices from the record, not checked: "
          f"{unchecked}")
