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


def test_korani_setting_follows_the_official_clusters():
  # KoBEST BoolQ is extractive QA in the official README's table, so the
  # `korani` setting (which holds out multiple-choice QA) trains on it.
  korani = heldout.get("korani")
  assert not korani.is_held_out("kobest_boolq")
  assert "korani_kobest_boolq_ko_gpt3_style" in _names("korani_train_korani")
  assert not any(i.dataset == "kobest_boolq"
                 for i in _infos("korani_heldout_score_eval_korani"))
  assert korani.is_held_out("document_qa")
  assert not korani.is_held_out("daily_chat")


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


def test_a_mixtures_held_out_setting_is_named_for_the_run():
  registered = seqio.MixtureRegistry.names()
  default = heldout.default().name
  assert heldout.mixture_setting("korani_train_t0", registered) == "t0"
  assert heldout.mixture_setting("korani_heldout_score_eval_en_korani",
                                 registered) == "korani"
  assert heldout.mixture_setting("korani_train", registered) == default
  assert heldout.mixture_setting("korani_kobest_boolq_ko_gpt3_style",
                                 registered) == ""


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


# --- The experiment grid: KORANI and P3 (mixtures/p3.py, mixtures/grid.py). ---

GRID_TRAINING = {  # mixture: {(source, template language)}
    "korani_train": {("raw", "ko")},
    "korani_train_en": {("raw", "en")},
    "p3_train": {("p3", "en")},
    "p3_train_ko": {("p3", "ko")},
    "bilingual_train": {("raw", "ko"), ("p3", "en")},
    "bilingual_train_ko": {("raw", "ko"), ("p3", "ko")},
    "bilingual_train_en": {("raw", "en"), ("p3", "en")},
    "bilingual_train_cross": {("raw", "en"), ("p3", "ko")},
}
GRID_EVALUATION = {
    "korani_heldout_score_eval": {("raw", "ko")},
    "korani_heldout_score_eval_en": {("raw", "en")},
    "p3_heldout_score_eval": {("p3", "en")},
    "p3_heldout_score_eval_ko": {("p3", "ko")},
    "bilingual_heldout_score_eval": {("raw", "ko"), ("p3", "en")},
    "bilingual_heldout_score_eval_cross": {("raw", "en"), ("p3", "ko")},
}
T0_HELD_OUT_SETS = {
    "super_glue_rte", "super_glue_cb", "anli_r1", "anli_r2", "anli_r3",
    "super_glue_copa", "hellaswag", "story_cloze_2016", "super_glue_wic",
    "super_glue_wsc.fixed", "winogrande_winogrande_xl"}


@pytest.mark.parametrize("setting", SETTINGS)
def test_grid_mixtures_hold_out_their_clusters_in_both_languages(setting):
  s = heldout.get(setting)
  for mixture, sources in GRID_TRAINING.items():
    infos = _infos(f"{mixture}_{setting}")
    assert {(i.source, i.template_lang) for i in infos} == sources, mixture
    assert all(i.kind == tasks.TRAIN for i in infos)
    leaked = {i.dataset for i in infos if i.cluster in s.held_out_clusters}
    assert not leaked, (mixture, leaked)
  for mixture, sources in GRID_EVALUATION.items():
    infos = _infos(f"{mixture}_{setting}")
    assert {(i.source, i.template_lang) for i in infos} == sources, mixture
    assert all(i.kind == tasks.SCORE_EVAL for i in infos)
    assert all(i.cluster in s.held_out_clusters for i in infos), mixture


def test_p3_held_out_evaluation_is_t0s():
  from korani_tasks.p3 import tasks as p3_tasks  # pylint: disable=g-import-not-at-top
  for lang in ("en", "ko"):
    names = [t.name for t in seqio.get_mixture_or_task(
        "p3_heldout_score_eval" + ("" if lang == "en" else "_ko")).tasks]
    infos = [p3_tasks.p3_task_info(n) for n in names]
    assert {p3.eval_set for p3 in infos} == T0_HELD_OUT_SETS
    assert all(p3.original_task and p3.lang == lang and p3.role == "heldout"
               for p3 in infos)
  # Every English template has its Korean version.
  en = {n.replace("_score_eval", "") for n in _names("p3_heldout_score_eval")}
  ko = {n.replace("_ko_", "_", 1).replace("_score_eval", "")
        for n in _names("p3_heldout_score_eval_ko")}
  assert len(en) == 116 and ko == en


def _names(mixture):
  return [t.name for t in seqio.get_mixture_or_task(mixture).tasks]


def test_t0_setting_trains_on_all_38_t0_datasets():
  from korani_tasks.p3 import tasks as p3_tasks  # pylint: disable=g-import-not-at-top
  trained = {p3_tasks.p3_task_info(n).eval_set
             for n in _names("p3_train_t0")}
  assert len(trained) == 38
  # Under `korani`, P3's sentiment/summarization/MCQA sets are held out too.
  korani_trained = {p3_tasks.p3_task_info(n).entry.cluster
                    for n in _names("p3_train_korani")}
  assert not korani_trained & set(heldout.get("korani").held_out_clusters)
  assert korani_trained == {"extractive_qa", "closed_book_qa",
                            "structure_to_text", "topic_classification",
                            "paraphrase_identification"}


def test_every_grid_cell_has_a_gin_file_naming_registered_mixtures():
  import pathlib  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  folder = pathlib.Path(__file__).parents[1] / "gin" / "experiments"
  files = sorted(folder.glob("*.gin"))
  # 5 settings x (monolingual, cross-lingual), and the 4 En-> cells trained
  # on the paper's English training sets (p3_train_paper).
  assert len(files) == 14
  for path in files:
    text = path.read_text(encoding="utf-8")
    for macro in ("MIXTURE_OR_TASK_NAME", "EVAL_MIXTURE_OR_TASK_NAME"):
      name = re.search(rf"^{macro} = '(\w+)'$", text, re.M).group(1)
      assert name in seqio.MixtureRegistry.names(), (path.name, name)


def test_heldout_generation_datasets_are_decoded_with_rouge_l():
  from korani_tasks import catalog, rouge  # pylint: disable=import-outside-toplevel
  mixture = seqio.get_mixture_or_task(
      "korani_heldout_release_generate_eval_korani")
  names = sorted(t.name for t in mixture.tasks)
  entries = catalog.load()
  # The five summarization datasets (held out in the korani setting) and
  # NIKL coreference (a generation dataset of the held-out coreference
  # cluster), from the release CSVs.
  assert names == sorted(
      [f"korani_{key}_ko_release" for key, e in entries.items()
       if e.cluster == "summarization"] + ["korani_nikl_coref_ko_release"])
  assert len(names) == 6
  for task in mixture.tasks:
    assert task.predict_metric_fns == [rouge.rouge_l], task.name
  train = {t.name for t in seqio.get_mixture_or_task(
      "korani_train_release_korani").tasks}
  assert not train & set(names)
