"""Cross-lingual P3: Korean templates on English data, and one grid cell end
to end (train on KORANI, score English held-out sets in both languages)."""

import dataclasses
import itertools

import pytest
import seqio

import mixtures  # pylint: disable=unused-import
from korani_tasks import sources
from korani_tasks import tasks
from korani_tasks.p3 import base
from korani_tasks.p3 import promptsource_yaml
from korani_tasks.p3 import tasks as p3_tasks
from t5x_runs import compare
from t5x_runs import evaluator
from t5x_runs import trainer
from t5x_runs.models import mt5_config

HELD_OUT = ("super_glue/rte", "super_glue/cb", "anli", "super_glue/copa",
            "hellaswag", "story_cloze/2016", "super_glue/wic",
            "super_glue/wsc.fixed", "winogrande/winogrande_xl")
FIRST_ROWS = 12
EVAL_EXAMPLES = 16


def _first_records(raw_data_dir, key):
  source = base.P3_SOURCES[key]
  split = next(s for s in ("validation", "dev_r1") if s in source.splits)
  paths = source.paths(raw_data_dir, split)
  return [r for _, r in itertools.islice(source.read(split, paths),
                                         FIRST_ROWS)]


@pytest.mark.parametrize("key", HELD_OUT)
def test_korean_templates_render_english_data_like_their_twins(
    raw_data_dir, key):
  english = {t.template_id: t for t in promptsource_yaml.load(key)}
  korean = p3_tasks.korean_templates(key)
  assert {t.template_id for t in korean} == set(english)  # every template
  records = _first_records(raw_data_dir, key)
  rendered = 0
  for ko_template in korean:
    en = english[ko_template.template_id].to_prompt_template("en")
    ko = ko_template.to_prompt_template("ko")
    for record in records:
      en_in, en_target, en_choices = en.render_parts(record)
      ko_in, ko_target, ko_choices = ko.render_parts(record)
      where = (key, ko_template.name, record.get("idx"))
      assert bool(en_in) == bool(ko_in), where  # Both apply, or neither.
      if not en_in:
        continue
      assert len(ko_choices) == len(en_choices), where
      if en_choices and en_target in en_choices:
        assert ko_choices.index(ko_target) == en_choices.index(en_target), where
      assert ko_in != en_in or not en_in.strip("{}: \n"), where
      rendered += 1
  assert rendered > 0


def _sliced(name: str) -> str:
  """A copy of a P3 score-eval task that reads the first validation rows."""
  sliced = f"{name}_first{EVAL_EXAMPLES}"
  if sliced not in seqio.TaskRegistry.names():
    p3 = p3_tasks.p3_task_info(name)
    split = p3.entry.split_map(p3.round)["validation"]
    task = seqio.get_mixture_or_task(name)
    source = sources.KoraniTfdsSource(
        task.source._name,  # pylint: disable=protected-access
        {"validation": f"{split}[:{EVAL_EXAMPLES}]"}, example_index=True)
    tasks.register_task(dataclasses.replace(p3.info, name=sliced), source,
                        render=task.preprocessors[0])
  return sliced


@pytest.mark.slow
def test_ko_to_en_cross_lingual_cell_end_to_end(raw_data_dir, session_vocab,
                                                tmp_path, capsys):
  """Ko->En: a tiny model trained on a KORANI mixture scores English held-out
  tasks with English (monolingual) and Korean (cross-lingual) templates."""
  trainer.train(
      model_dir=str(tmp_path / "model"),
      mixture_or_task_name="korani_kobest_train",
      task_feature_lengths={"inputs": 256, "targets": 16}, batch_size=8,
      num_train_steps=20, model_config=mt5_config("tiny", vocab_size=None),
      vocabulary=str(session_vocab), checkpoint_period=20, progress=False)
  reports = {}
  for setting, mixture in (("ko_to_en", "p3_heldout_score_eval"),
                           ("ko_to_en_cross", "p3_heldout_score_eval_ko")):
    # The first (original-task) template of each held-out set present here.
    first = {}
    for task in seqio.get_mixture_or_task(mixture).tasks:
      p3 = p3_tasks.p3_task_info(task.name)
      first.setdefault(p3.eval_set, task.name)
    names = [_sliced(n) for n in first.values()]
    seqio.MixtureRegistry.add(f"test_{setting}_eval", names, default_rate=1.0)
    out = tmp_path / setting
    rows = evaluator.evaluate(
        model_dir=str(tmp_path / "model"),
        mixture_or_task_name=f"test_{setting}_eval",
        output_dir=str(out), batch_size=64, max_input_length=256,
        progress=False)
    accuracy = [r for r in rows if r.metric == "accuracy"]
    assert len(accuracy) == len(first) == 11  # T0's 11 held-out sets
    assert all(0 <= r.value <= 100 and r.num_examples <= EVAL_EXAMPLES
               for r in accuracy)
    assert {r.template_lang for r in accuracy} == {
        "en" if setting == "ko_to_en" else "ko"}
    reports[setting] = str(out)
  markdown = compare.compare(reports, str(tmp_path / "comparison"),
                             title="Ko->En, tiny model, 20 steps")
  assert "| ko_to_en [en] | ko_to_en_cross [ko] |" in markdown
  with capsys.disabled():
    print("\n" + markdown)
  assert (tmp_path / "comparison" / compare.COMPARISON_MD).is_file()
