"""Every raw dataset's templates: ten aligned ko/en pairs that render its data.

For each dataset read from raw files (korani_tasks.readers.RAW_DATASETS), every
template is rendered in both languages on the first rows of every split whose
files are in $KORANI_DATA_DIR; datasets whose files are all absent are skipped.
"""

import itertools
import re

import pytest

from korani_tasks import catalog
from korani_tasks import readers
from korani_tasks import templates

RAW = sorted(readers.RAW_DATASETS)
NUM_TEMPLATES = 10  # The paper's count per dataset.
FIRST_ROWS = 8
HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.mark.parametrize("dataset", RAW)
def test_ten_aligned_templates(dataset):
  by_lang = templates.load_templates(dataset)
  assert set(by_lang) == set(templates.LANGUAGES)
  ids = [t.template_id for t in by_lang["ko"]]
  assert ids == [t.template_id for t in by_lang["en"]]
  assert len(ids) == NUM_TEMPLATES and len(set(ids)) == NUM_TEMPLATES, ids
  nlu = catalog.get(dataset).kind == "nlu"
  for ko, en in zip(by_lang["ko"], by_lang["en"]):
    assert bool(ko.answer_choices) == nlu, (ko.name, "nlu needs choices")
    assert ko.original_task == en.original_task
    assert ko.choices_in_prompt == en.choices_in_prompt
    ko_text = re.sub(r"{[{%#].*?[%}#]}", "", ko.input, flags=re.S)
    en_text = re.sub(r"{[{%#].*?[%}#]}", "", en.input, flags=re.S)
    assert HANGUL.search(ko_text), f"{ko.name}: no Korean instruction"
    assert not HANGUL.search(en_text), f"{en.name}: Korean in the instruction"


def _first_rows(raw_data_dir, dataset):
  raw = readers.RAW_DATASETS[dataset]
  present = raw.present_splits(raw_data_dir)
  if not present:
    pytest.skip(f"no file of {dataset} in {raw_data_dir}")
  for split in present:
    rows = itertools.islice(raw.read(split, raw.paths(raw_data_dir, split)),
                            FIRST_ROWS)
    for key, record in rows:
      yield split, key, record


@pytest.mark.parametrize("dataset", RAW)
def test_every_template_renders_the_first_rows(raw_data_dir, dataset):
  by_lang = templates.load_templates(dataset)
  labels = catalog.get(dataset).labels
  count = 0
  for split, key, record in _first_rows(raw_data_dir, dataset):
    for ko, en in zip(by_lang["ko"], by_lang["en"]):
      rendered = {t.lang: t.render(record) for t in (ko, en)}
      for lang, r in rendered.items():
        where = (dataset, split, key, ko.template_id, lang)
        assert r.inputs.strip(), where
        assert r.targets.strip(), where
        assert all(c.strip() for c in r.answer_choices), where
        if r.answer_choices:
          assert 0 <= r.label_index < len(r.answer_choices), where
          assert r.targets == r.answer_choices[r.label_index], where
          if "label" in record and labels:
            assert len(r.answer_choices) in (len(labels), 2), where
      assert (len(rendered["ko"].answer_choices)
              == len(rendered["en"].answer_choices)), (dataset, key, ko.name)
      count += 1
  assert count > 0
