"""The KORANI paper's English training side: p3_train_paper(_ko).

The official list is the ``dataset_name`` column of the English sample of the
official KORANI release: CHLee0801/KORANI-Instruction-Tuning,
data/sample_en/train.csv at commit bb9df95 (51 names; its dev.csv has 49 of
them). Checked against t-zero's t0/datasets.csv (bigscience-workshop/t-zero at
0892110) for T0's training sets and the T0+/T0++ ones (do_train GPT_EVAL,
SGLUE), and against the templates of the installed promptsource 0.2.3.
"""

import json

import pytest
import seqio

import mixtures  # noqa: F401  (registers the mixtures)
from korani_tasks import errors
from korani_tasks import heldout
from korani_tasks.p3 import catalog
from korani_tasks.p3 import promptsource_yaml as ps
from korani_tasks.p3 import tasks as p3_tasks
from mixtures import p3 as p3_mixtures

OFFICIAL_EN = (
    "adversarial_qa", "ag_news", "amazon", "app_reviews", "arc", "art",
    "boolq", "cbt", "cnn_daily_mail", "common_gen", "cos_e", "cosmos_qa",
    "dbpedia", "dream", "drop", "duorc", "emo", "emotion", "gigaword", "imdb",
    "mrpc", "multi_news", "multirc", "openbookqa", "paws", "piqa",
    "pubmed_qa", "qasc", "qqp", "quail", "quarel", "quartz", "quoref", "race",
    "record", "ropes", "rotten_tomatoes", "samsum", "sciq", "social_iqa",
    "squad", "trec", "triviaqa", "webquestions", "wiki_bio", "wiki_hop",
    "wiki_qa", "wiqa", "xsum", "yahoo_answers_topics", "yelp")
# T0+ / T0++ training sets the paper adds (t-zero datasets.csv) and the seven
# outside T0's lists, by their promptsource keys.
ADDED = {
    "arc": ("ai2_arc/ARC-Challenge", "ai2_arc/ARC-Easy"),
    "openbookqa": ("openbookqa/main",), "piqa": ("piqa",),
    "race": ("race/high", "race/middle"), "squad": ("squad",),
    "triviaqa": ("trivia_qa/unfiltered",), "webquestions": ("web_questions",),
    "boolq": ("super_glue/boolq",), "multirc": ("super_glue/multirc",),
    "record": ("super_glue/record",), "art": ("art",), "cbt": ("cbt/CN",),
    "drop": ("drop",), "emo": ("emo",), "emotion": ("emotion",),
    "pubmed_qa": ("pubmed_qa/pqa_labeled",),
    "yahoo_answers_topics": ("yahoo_answers_topics",)}
WITHOUT_KOREAN = ("app_reviews", "pubmed_qa", "record")
LENGTHS = {"inputs": 256, "targets": 32}


def _keys(mixture):
  return {p3_tasks.p3_task_info(t.name).entry.key
          for t in seqio.get_mixture_or_task(mixture).tasks}


def test_catalog_names_are_the_official_english_list():
  named = catalog.by_korani_name()
  assert sorted(named) == list(OFFICIAL_EN) and len(named) == 51
  t0 = {e.key for e in catalog.by_role("train")}
  # T0's training sets except HotpotQA: 34 names for 37 dataset/subsets.
  from_t0 = {n for n, entries in named.items()
             if {e.key for e in entries} <= t0}
  assert len(from_t0) == 34
  assert {e.key for n in from_t0 for e in named[n]} == (
      t0 - {"kilt_tasks/hotpotqa"})
  assert {n: tuple(e.key for e in named[n]) for n in ADDED} == ADDED
  assert set(from_t0) | set(ADDED) == set(OFFICIAL_EN)


def test_release_sample_names_are_catalogued(release_excerpt_names):
  names = release_excerpt_names("sample_en")
  assert names and names <= set(catalog.by_korani_name())


def test_paper_mixture_has_every_template_of_the_list():
  keys = set(p3_mixtures.paper_dataset_keys())
  assert len(keys) == 56
  assert _keys("p3_train_paper_t0") == keys  # t0 holds none of them out
  tasks = seqio.get_mixture_or_task("p3_train_paper_t0").tasks
  per_key = {}
  for task in tasks:
    p3 = p3_tasks.p3_task_info(task.name)
    assert p3.lang == "en" and p3.kind == p3_tasks.TRAIN
    per_key[p3.entry.key] = per_key.get(p3.entry.key, 0) + 1
  # Every promptsource template, as T0 trains on them.
  assert per_key == {key: len(ps.load(key)) for key in keys}
  assert per_key["super_glue/record"] == 20 and per_key["emo"] == 10
  assert len(tasks) == 458


@pytest.mark.parametrize("setting", sorted(heldout.settings()))
def test_paper_mixtures_follow_the_held_out_setting(setting):
  s = heldout.get(setting)
  expected = {k for k in p3_mixtures.paper_dataset_keys()
              if not s.is_held_out_cluster(catalog.get(k).cluster)}
  assert _keys(f"p3_train_paper_{setting}") == expected
  with_korean = {k for k in expected if p3_tasks.korean_templates(k)}
  assert _keys(f"p3_train_paper_ko_{setting}") == with_korean
  for task in seqio.get_mixture_or_task(f"p3_train_paper_ko_{setting}").tasks:
    assert p3_tasks.p3_task_info(task.name).lang == "ko"
  assert "kilt_tasks/hotpotqa" not in _keys(f"p3_train_paper_{setting}")
  if setting == heldout.default().name:
    assert _keys("p3_train_paper") == expected


def test_datasets_without_korean_versions_are_listed():
  assert p3_mixtures.paper_names_without_korean() == list(WITHOUT_KOREAN)
  ko = _keys("p3_train_paper_ko_t0")
  assert {catalog.get(k).korani_name for k in ko} == (
      set(OFFICIAL_EN) - set(WITHOUT_KOREAN))


def test_absent_data_is_named(tmp_path, monkeypatch, session_vocab):
  """Without the files, building the mixture names the folder to fill; with
  Hugging Face-style records there, a new dataset reads and renders them."""
  del session_vocab
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path))
  monkeypatch.setenv("P3_DATA_DIR", str(tmp_path / "p3"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  with pytest.raises(errors.MissingDataError, match=str(tmp_path / "p3")):
    seqio.get_mixture_or_task("p3_train_paper_t0").get_dataset(
        LENGTHS, split="train")
  name = "p3_emotion_answer_question_with_emotion_label"
  with pytest.raises(errors.MissingDataError, match=str(tmp_path / "p3" /
                                                        "emotion")):
    seqio.get_mixture_or_task(name).get_dataset(LENGTHS, split="validation")
  folder = tmp_path / "p3" / "emotion"
  folder.mkdir(parents=True)
  rows = [{"text": "i feel so happy today", "label": 1},
          {"text": "i am scared of the dark", "label": 4}]
  (folder / "validation.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
  task = seqio.get_mixture_or_task(name)
  examples = list(task.get_dataset(LENGTHS, split="validation",
                                   shuffle=False).as_numpy_iterator())
  rendered = {e["targets_pretokenized"].decode():
              e["inputs_pretokenized"].decode() for e in examples}
  assert sorted(rendered) == ["fear", "joy"]  # emotion's labels 4 and 1
  assert "i feel so happy today" in rendered["joy"]
  assert "i am scared of the dark" in rendered["fear"]
