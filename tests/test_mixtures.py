"""KORANI mixtures: held-out settings never leak, rates follow T0's cap rule."""

import pytest
import seqio

import mixtures  # pylint: disable=unused-import
from korani_tasks import catalog
from korani_tasks import errors
from korani_tasks import heldout
from korani_tasks import tasks
from mixtures import korani as korani_mixtures
from mixtures import rates

SETTINGS = sorted(heldout.settings())
TRAIN_MIXTURES = ("korani_train", "korani_train_en", "korani_train_release")
EVAL_MIXTURES = ("korani_heldout_score_eval", "korani_heldout_score_eval_en",
                 "korani_heldout_release_score_eval")


def _infos(mixture):
  return [tasks.task_info(t.name)
          for t in seqio.get_mixture_or_task(mixture).tasks]


def test_settings_are_the_documented_ones():
  assert heldout.get("t0").held_out_clusters == (
      "nli", "coreference", "sentence_completion", "wsd")
  assert set(heldout.get("korani").held_out_clusters) == {
      "sentiment", "summarization", "multiple_choice_qa", "nli",
      "sentence_completion", "wsd", "coreference"}
  with pytest.raises(errors.ConfigError, match="unknown held-out setting"):
    heldout.get("t1")


@pytest.mark.parametrize("setting", SETTINGS)
def test_no_held_out_dataset_in_a_training_mixture(setting):
  s = heldout.get(setting)
  held_out = set(s.held_out_datasets())
  assert held_out and s.training_datasets()
  train = set()
  for mixture in TRAIN_MIXTURES:
    infos = _infos(f"{mixture}_{setting}")
    assert infos, mixture
    assert all(i.kind == tasks.TRAIN for i in infos)
    train |= {i.dataset for i in infos}
    leaked = {i.dataset for i in infos} & held_out
    assert not leaked, (mixture, setting, leaked)
  evaluated = set()
  for mixture in EVAL_MIXTURES:
    infos = _infos(f"{mixture}_{setting}")
    assert all(i.kind == tasks.SCORE_EVAL for i in infos)
    assert all(i.cluster in s.held_out_clusters for i in infos), mixture
    evaluated |= {i.dataset for i in infos}
  assert evaluated and not evaluated & train


@pytest.mark.parametrize("setting", SETTINGS)
def test_template_languages_and_sources(setting):
  for mixture, lang, source in (
      ("korani_train", "ko", "raw"), ("korani_train_en", "en", "raw"),
      ("korani_heldout_score_eval", "ko", "raw"),
      ("korani_heldout_score_eval_en", "en", "raw"),
      ("korani_train_release", "ko", "release")):
    infos = _infos(f"{mixture}_{setting}")
    assert {i.template_lang for i in infos} == {lang}, mixture
    assert {i.source for i in infos} == {source}, mixture
  # Same data in both template languages.
  ko = {(i.dataset, i.template_id) for i in _infos(f"korani_train_{setting}")}
  en = {(i.dataset, i.template_id)
        for i in _infos(f"korani_train_en_{setting}")}
  assert ko == en


def test_every_seen_raw_dataset_with_templates_is_trained_on():
  s = heldout.get("t0")
  trained = {i.dataset for i in _infos("korani_train_t0")}
  raw_with_tasks = {i.dataset for i in tasks.all_task_infos().values()
                    if i.source == "raw"}
  assert trained == {d for d in raw_with_tasks if not s.is_held_out(d)}


def test_unsuffixed_names_are_the_default_setting():
  default = heldout.default().name
  for mixture in TRAIN_MIXTURES + EVAL_MIXTURES:
    assert ({t.name for t in seqio.get_mixture_or_task(mixture).tasks}
            == {t.name for t in
                seqio.get_mixture_or_task(f"{mixture}_{default}").tasks})


def test_rates_follow_the_cap_rule(raw_data_dir):
  mixture = seqio.get_mixture_or_task("korani_train_t0")
  name = "korani_kobest_boolq_ko_gpt3_style"
  task = seqio.get_mixture_or_task(name)
  num_templates = sum(1 for t in mixture.tasks
                      if tasks.task_info(t.name).dataset == "kobest_boolq")
  assert num_templates >= 3
  # 3,665 BoolQ train examples are below the cap of 500,000 / templates.
  assert mixture.get_rate(task) == 3665
  capped = rates.CappedRate(num_templates, maximum=10_000)
  assert capped(task) == pytest.approx(10_000 / num_templates)
  assert rates.CappedRate(1, maximum=100)(task) == 100
  with pytest.raises(ValueError):
    rates.CappedRate(0)


def test_every_training_task_has_a_capped_rate():
  for (name, rate) in korani_mixtures.training_tasks(heldout.get("korani"),
                                                    "ko"):
    info = tasks.task_info(name)
    per_dataset = sum(1 for n, _ in korani_mixtures.training_tasks(
        heldout.get("korani"), "ko") if tasks.task_info(n).dataset
                      == info.dataset)
    assert isinstance(rate, rates.CappedRate)
    assert rate.cap == rates.MAXIMUM_EXAMPLES / per_dataset
    assert catalog.get(info.dataset).cluster not in (
        heldout.get("korani").held_out_clusters)
