"""Template files: structure, alignment, and rendering on real records."""

import dataclasses
import re
import textwrap

import pytest

from korani_tasks import errors
from korani_tasks import templates
from korani_tasks.readers import kobest

KOBEST = sorted(kobest.KOBEST_DATASETS)
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _records(raw_data_dir, dataset, split):
  info = kobest.KOBEST_DATASETS[dataset]
  return [r for _, r in info.reader(info.path(raw_data_dir, split))]


def test_every_kobest_dataset_has_at_least_three_aligned_templates():
  assert set(KOBEST) <= set(templates.available_datasets())
  for dataset in KOBEST:
    by_lang = templates.load_templates(dataset)
    assert set(by_lang) == {"ko", "en"}
    ko_ids = [t.template_id for t in by_lang["ko"]]
    assert ko_ids == [t.template_id for t in by_lang["en"]]
    assert len(ko_ids) >= 3 and len(set(ko_ids)) == len(ko_ids)


@pytest.mark.parametrize("dataset", KOBEST)
def test_instructions_are_in_the_template_language(dataset):
  for ko, en in zip(*templates.load_templates(dataset).values()):
    # Remove jinja expressions (data fields), keep the instruction text.
    ko_text = re.sub(r"{[{%].*?[%}]}", "", ko.input)
    en_text = re.sub(r"{[{%].*?[%}]}", "", en.input)
    assert HANGUL.search(ko_text), ko.name
    assert not HANGUL.search(en_text), en.name
    assert ko.original_task == en.original_task
    assert ko.choices_in_prompt == en.choices_in_prompt


@pytest.mark.parametrize("dataset", KOBEST)
@pytest.mark.parametrize("split", ["train", "validation"])
def test_every_template_renders_every_record(raw_data_dir, dataset, split):
  records = _records(raw_data_dir, dataset, split)
  labels = kobest.KOBEST_DATASETS[dataset].label_names
  for lang, lang_templates in templates.load_templates(dataset).items():
    for template in lang_templates:
      for record in records:
        r = template.render(record)
        assert r.inputs.strip(), template.name
        assert len(r.answer_choices) == len(labels), template.name
        assert all(c.strip() for c in r.answer_choices), template.name
        assert r.label_index == record["label"], (template.name, record["idx"])
        assert r.targets == r.answer_choices[record["label"]]


def test_aligned_versions_translate_static_choices():
  boolq = templates.load_templates("kobest_boolq")
  record = {"paragraph": "p", "question": "q", "label": 1}
  ko = boolq["ko"][0].render(record)
  en = boolq["en"][0].render(record)
  assert (ko.answer_choices, ko.targets) == (["아니요", "예"], "예")
  assert (en.answer_choices, en.targets) == (["No", "Yes"], "Yes")


def test_copa_english_template_reads_korean_question_values():
  copa = {t.template_id: t for t in templates.load_templates("kobest_copa")["en"]}
  record = {"premise": "비가 왔다.", "question": "원인", "alternative_1": "a",
            "alternative_2": "b", "label": 0}
  assert "a cause" in copa["best_option"].render(record).inputs
  record["question"] = "결과"
  assert "an effect" in copa["best_option"].render(record).inputs


def test_jinja_looking_data_is_not_evaluated():
  template = templates.load_templates("kobest_sentineg")["ko"][0]
  record = {"sentence": "{{ 7 * 7 }} {% if true %}x{% endif %}", "label": 1}
  assert "{{ 7 * 7 }} {% if true %}x{% endif %}" in template.render(record).inputs


def _write(tmp_path, body):
  path = tmp_path / "kobest_boolq.yaml"
  path.write_text(textwrap.dedent(body), encoding="utf-8")
  return path


GOOD = """\
    dataset: kobest_boolq
    templates:
      - id: t1
        target: "{{ answer_choices[label] }}"
        ko: {input: "{{ question }} 예?", answer_choices: "아니요 ||| 예"}
        en: {input: "{{ question }} yes?", answer_choices: "No ||| Yes"}
    """


def test_parse_a_good_file(tmp_path):
  parsed = templates.parse_template_file(_write(tmp_path, GOOD))
  assert [t.template_id for t in parsed["en"]] == ["t1"]


@pytest.mark.parametrize("change, message", [
    (("en: {input: \"{{ question }} yes?\", answer_choices: \"No ||| Yes\"}", ""),
     "missing the 'en' version"),
    (("\"No ||| Yes\"", "\"No ||| Yes ||| Maybe\""), "not aligned"),
    (("id: t1", "id: T-1"), "id must match"),
    (("target:", "targett:"), "unknown keys"),
    (("{{ question }} 예?", "{% if %}"), "not valid jinja2"),
    (("dataset: kobest_boolq", "dataset: kobest_copa"), "does not match the file name"),
    (("id: t1", "id: t1\n        note: [a, b]"), "'note' must be text"),
])
def test_malformed_template_files_are_clear_errors(tmp_path, change, message):
  body = GOOD.replace(*change)
  with pytest.raises(errors.ConfigError, match=message) as info:
    templates.parse_template_file(_write(tmp_path, body))
  assert "kobest_boolq" in str(info.value)


def test_undefined_field_and_target_outside_choices(tmp_path):
  template = templates.parse_template_file(_write(tmp_path, GOOD))["ko"][0]
  with pytest.raises(errors.ConfigError, match="undefined name"):
    template.render({"label": 1})
  with pytest.raises(ValueError, match="not one of the answer choices"):
    bad = template.__class__(**{**template.__dict__, "target": "아마"})
    bad.render({"question": "q", "label": 1})


def test_version_is_a_digest_of_the_rendered_text(tmp_path):
  """What the template renders from enters the version; the id, the note and
  the metadata flags do not."""
  ko, en = (templates.parse_template_file(_write(tmp_path, GOOD))[lang][0]
            for lang in ("ko", "en"))
  assert len(ko.version) == 12 and ko.version != en.version
  noted = GOOD.replace("id: t1", "id: t2\n        note: where it comes from")
  again = templates.parse_template_file(_write(tmp_path, noted))["ko"][0]
  assert again.template_id == "t2" and again.version == ko.version
  for field, value in (("input", ko.input + " "), ("target", "예"),
                       ("answer_choices", "아니 ||| 예"),
                       ("dialect", "promptsource")):
    assert dataclasses.replace(ko, **{field: value}).version != ko.version
