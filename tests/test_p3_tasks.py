"""P3 tasks: catalog, registration, sources and pipelines through seqio.

Pipelines on the shared data (tests skip without it) run one held-out
score-eval task (SuperGLUE RTE, English and Korean templates) and one
training task (TREC); a Hugging Face-folder dataset (glue/mrpc) runs from
fixture files written here.
"""

import collections
import json
import logging
import os
import re
import subprocess
import sys

import pytest
import seqio

import korani_tasks  # noqa: F401  (registers every task)
from korani_tasks import errors
from korani_tasks import sources
from korani_tasks import tasks
from korani_tasks.p3 import base
from korani_tasks.p3 import catalog
from korani_tasks.p3 import hf_folder
from korani_tasks.p3 import preprocessors
from korani_tasks.p3 import promptsource_yaml as ps
from korani_tasks.p3 import tasks as p3_tasks
from korani_tasks.p3 import tfds_builder

LENGTHS = {"inputs": 512, "targets": 64}

# T0's held-out evaluation: promptsource original-task templates per
# evaluation set (English).
T0_EVAL_TEMPLATES = {
    "super_glue_rte": 10, "super_glue_cb": 15, "anli_r1": 15, "anli_r2": 15,
    "anli_r3": 15, "super_glue_copa": 12, "hellaswag": 4,
    "story_cloze_2016": 5, "super_glue_wic": 10, "super_glue_wsc.fixed": 10,
    "winogrande_winogrande_xl": 5,
}


# --- Catalog. ---


def test_catalog_has_t0s_datasets():
  entries = catalog.load()
  assert len(catalog.by_role("train")) == 38
  heldout = {e.key: e.cluster for e in catalog.by_role("heldout")}
  assert heldout == {
      "super_glue/rte": "nli", "super_glue/cb": "nli", "anli": "nli",
      "super_glue/copa": "sentence_completion",
      "hellaswag": "sentence_completion",
      "story_cloze/2016": "sentence_completion", "super_glue/wic": "wsd",
      "super_glue/wsc.fixed": "coreference",
      "winogrande/winogrande_xl": "coreference"}
  assert catalog.get("super_glue/boolq").role == "extra"
  assert catalog.get("cos_e/v1.11").role == "train"
  clusters = collections.Counter(e.cluster for e in catalog.by_role("train"))
  assert clusters == {
      "multiple_choice_qa": 11, "extractive_qa": 7, "closed_book_qa": 2,
      "structure_to_text": 2, "sentiment": 5, "summarization": 5,
      "topic_classification": 3, "paraphrase_identification": 3}
  for entry in entries.values():
    assert entry.key in ps.dataset_keys(), entry.key
    if entry.role == "heldout":
      assert entry.eval_split == "validation"
  anli = catalog.get("anli")
  assert anli.eval_sets() == ("anli_r1", "anli_r2", "anli_r3")
  assert anli.split_map("r2") == {"train": "train_r2", "validation": "dev_r2",
                                  "test": "test_r2"}
  assert catalog.get("anli_r3") is anli
  assert catalog.eval_set_round("anli_r3") == (anli, "r3")
  assert catalog.get("wiki_bio").split_map()["validation"] == "val"


# --- Registration. ---


def test_rte_tasks_and_twins():
  name = "p3_super_glue_rte_GPT_3_style"
  info = tasks.task_info(name)
  assert (info.dataset, info.cluster, info.data_lang, info.kind,
          info.source) == ("super_glue_rte", "nli", "en", tasks.TRAIN, "p3")
  assert info.template.lang == "en"
  assert info.template.dialect == "promptsource"
  assert info.template_id == "GPT_3_style"
  twin = tasks.task_info(name + "_score_eval")
  assert twin.kind == tasks.SCORE_EVAL
  assert seqio.get_mixture_or_task(name + "_score_eval").metric_fns
  ko = tasks.task_info("p3_super_glue_rte_ko_GPT_3_style")
  assert ko.template.lang == "ko" and ko.data_lang == "en"
  assert ko.template_id == info.template_id
  assert "p3_super_glue_rte_ko_GPT_3_style_score_eval" in tasks.all_task_infos()
  p3 = p3_tasks.p3_task_info(name)
  assert p3.template.template_id == "8fb1c6aa-20e9-438c-bece-c6af1c746449"
  assert p3.eval_set == "super_glue_rte" and p3.round is None


def test_every_template_has_tasks():
  infos = p3_tasks.all_p3_task_infos()
  for entry in catalog.load().values():
    for template in ps.load(entry.key):
      for eval_set, round_ in zip(entry.eval_sets(), entry.rounds or [None]):
        name = p3_tasks.task_name(entry.key, template.name, "en", round_)
        assert name == "p3_" + template.t0_name + (
            f"_{round_}" if round_ else "")
        assert infos[name].eval_set == eval_set
        twin = name + "_score_eval"
        assert (twin in infos) == bool(template.answer_choices), twin
  names = list(infos)
  assert len(names) == len(set(names))
  assert all(re.match(r"^[\w\d\.\:_#]+$", n) for n in names)


def test_anli_tasks_per_round():
  for r, split in (("r1", "dev_r1"), ("r2", "dev_r2"), ("r3", "dev_r3")):
    name = f"p3_anli_GPT_3_style_{r}_score_eval"
    assert tasks.task_info(name).dataset == f"anli_{r}"
    task = seqio.get_mixture_or_task(name)
    assert task.source._split_map["validation"] == split  # pylint: disable=protected-access
    assert f"p3_anli_ko_GPT_3_style_{r}" in tasks.all_task_infos()


def test_heldout_counts_match_t0():
  infos = p3_tasks.p3_task_infos(role="heldout", lang="en",
                                 kind=p3_tasks.SCORE_EVAL, original_task=True)
  counts = collections.Counter(p3.eval_set for p3 in infos)
  assert counts == T0_EVAL_TEMPLATES
  all_en = collections.Counter(
      p3.eval_set for p3 in p3_tasks.p3_task_infos(
          role="heldout", lang="en", kind=p3_tasks.TRAIN))
  print("English templates per held-out evaluation set:", dict(all_en))
  assert all_en["super_glue_rte"] == len(ps.load("super_glue/rte")) == 10
  by_key = p3_tasks.p3_task_names("anli", lang="en", kind=p3_tasks.TRAIN)
  assert len(by_key) == 3 * len(ps.load("anli"))
  assert set(p3_tasks.p3_task_names("anli_r2", lang="ko")) <= set(
      p3_tasks.p3_task_names("anli", lang="ko"))


def test_task_names():
  assert p3_tasks.task_name("super_glue/rte", "GPT-3 style") == \
      "p3_super_glue_rte_GPT_3_style"
  assert p3_tasks.task_name("anli", "GPT-3 style", "ko", "r1",
                            p3_tasks.SCORE_EVAL) == \
      "p3_anli_ko_GPT_3_style_r1_score_eval"
  assert p3_tasks.task_name("story_cloze/2016", "Answer Given options",
                            "ko") == "p3_story_cloze_2016_ko_Answer_Given_options"
  assert p3_tasks.task_name("amazon_polarity", "Is this review negative?",
                            kind=p3_tasks.SCORE_EVAL) == \
      "p3_amazon_polarity_Is_this_review_negative__score_eval"


def test_korean_tasks_pair_english_templates():
  for p3 in p3_tasks.p3_task_infos(lang="ko"):
    en = ps.get(p3.entry.key, p3.template.template_id)
    assert en.name == p3.template.name
    assert p3.original_task == en.original_task
    english_twin = p3_tasks.task_name(p3.entry.key, en.name, "en", p3.round,
                                      p3.kind)
    assert english_twin in tasks.all_task_infos()


def _write_korean(tmp_path, text):
  (tmp_path / "super_glue__rte.yaml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("body, message", [
    ("  - id: not-an-id\n    name: GPT-3 style\n    jinja: '{{premise}} ||| x'\n",
     "no template with this id"),
    ("  - id: 8fb1c6aa-20e9-438c-bece-c6af1c746449\n    name: GPT3\n"
     "    jinja: '{{premise}} ||| x'\n    answer_choices: 참 ||| 거짓\n",
     "is named 'GPT-3 style'"),
    ("  - id: 8fb1c6aa-20e9-438c-bece-c6af1c746449\n    name: GPT-3 style\n"
     "    jinja: '{{premise}} ||| x'\n    answer_choices: 참 ||| 거짓 ||| 몰라\n",
     "3 answer choices, the English template has 2"),
    ("  - id: 8fb1c6aa-20e9-438c-bece-c6af1c746449\n    name: GPT-3 style\n"
     "    jinja: '{{premise}} ||| x'\n",
     "has no answer_choices"),
])
def test_korean_file_errors_name_the_file(monkeypatch, tmp_path, body,
                                          message):
  monkeypatch.setattr(p3_tasks, "KO_TEMPLATE_DIR", tmp_path)
  p3_tasks.korean_templates.cache_clear()
  try:
    _write_korean(tmp_path, "dataset: super_glue/rte\ntemplates:\n" + body)
    with pytest.raises(errors.ConfigError) as e:
      p3_tasks.korean_templates("super_glue/rte")
    assert "super_glue__rte.yaml" in str(e.value)
    assert message in str(e.value)
  finally:
    p3_tasks.korean_templates.cache_clear()


def test_registration_reads_no_data(tmp_path):
  """Importing the P3 tasks registers them all and reads and writes no data
  (its time is measured in bench/bench_import.py)."""
  code = ("import seqio\n"
          "from korani_tasks.p3 import tasks\n"
          "names = set(seqio.TaskRegistry.names())\n"
          "infos = tasks.all_p3_task_infos()\n"
          "print(len(infos), set(infos) <= names,\n"
          "      'p3_super_glue_rte_ko_GPT_3_style_score_eval' in names)")
  env = dict(os.environ, KORANI_DATA_DIR=str(tmp_path / "data"),
             TFDS_DATA_DIR=str(tmp_path / "tfds"), TF_CPP_MIN_LOG_LEVEL="3")
  (tmp_path / "data").mkdir()
  out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                       capture_output=True, env=env).stdout.split()
  assert int(out[-3]) > 1000 and out[-2:] == ["True", "True"]
  assert not list((tmp_path / "data").iterdir())
  assert not (tmp_path / "tfds").exists() or not list(
      (tmp_path / "tfds").iterdir())


def test_without_promptsource_korani_still_imports(tmp_path):
  code = ("from korani_tasks import tasks\n"
          "from korani_tasks.p3 import tasks as p3\n"
          "print(len(p3.all_p3_task_infos()), "
          "len(tasks.all_task_infos()) > 900, bool(p3.unavailable))")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PROMPTSOURCE_TEMPLATES_DIR=str(tmp_path / "absent"))
  result = subprocess.run([sys.executable, "-c", code], check=True,
                          text=True, capture_output=True, env=env)
  assert result.stdout.split()[-3:] == ["0", "True", "True"]
  assert ps.PIP_INSTALL in result.stderr


# --- Sources. ---


def test_every_catalog_dataset_has_a_source():
  for key in catalog.load():
    assert key in base.P3_SOURCES, key
  assert not isinstance(base.P3_SOURCES["super_glue/rte"],
                        hf_folder.HfFolderSource)  # The reader's.
  assert isinstance(base.P3_SOURCES["glue/mrpc"], hf_folder.HfFolderSource)
  assert hf_folder.register_missing() == []  # No double registration.
  assert tfds_builder.builder_name("cnn_dailymail/3.0.0") == \
      "p3_records/cnn_dailymail__3.0.0"


def _write_jsonl(path, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(json.dumps(r) + "\n" for r in rows),
                  encoding="utf-8")


def test_hf_folder_file_layouts(tmp_path, monkeypatch):
  pa = pytest.importorskip("pyarrow")
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv(hf_folder.P3_DATA_DIR_ENV, str(tmp_path))
  folder = tmp_path / "glue" / "mrpc"
  rows = [{"sentence1": f"a{i}", "sentence2": f"b{i}", "label": i % 2,
           "idx": i} for i in range(5)]
  _write_jsonl(folder / "train.jsonl", rows[:2])
  table = pa.Table.from_pylist(rows[2:])
  pq.write_table(table, folder / "validation-00000-of-00001.parquet")
  with pa.OSFile(str(folder / "glue-test.arrow"), "wb") as sink:
    with pa.ipc.new_stream(sink, table.schema) as writer:
      writer.write_table(table)
  (folder / "val").mkdir()  # Not 'validation'.
  source = base.P3_SOURCES["glue/mrpc"]
  data_dir = tmp_path / "unused"
  assert source.present_splits(data_dir) == ("train", "validation", "test")
  read = lambda s: list(source.read(s, source.paths(data_dir, s)))  # noqa: E731
  assert [r for _, r in read("train")] == rows[:2]
  assert [r for _, r in read("validation")] == rows[2:]
  assert [r for _, r in read("test")] == rows[2:]
  key, _ = read("validation")[0]
  assert key == "glue/mrpc/validation-00000-of-00001.parquet:1"
  # save_to_disk's layout: a folder per split, Arrow file format too.
  other = tmp_path / "paws" / "labeled_final" / "train"
  other.mkdir(parents=True)
  with pa.OSFile(str(other / "data-00000-of-00001.arrow"), "wb") as sink:
    with pa.ipc.new_file(sink, table.schema) as writer:
      writer.write_table(table)
  paws = base.P3_SOURCES["paws/labeled_final"]
  assert paws.present_splits(data_dir) == ("train",)
  assert [r for _, r in paws.read("train", paws.paths(data_dir, "train"))] \
      == rows[2:]
  # One format per split; malformed rows name file and line.
  _write_jsonl(folder / "validation.jsonl", rows)
  with pytest.raises(errors.DataFormatError, match="several formats"):
    source.paths(data_dir, "validation")
  (folder / "train.jsonl").write_text('{"a": 1}\nnot json\n')
  with pytest.raises(errors.DataFormatError, match=r"train.jsonl:2"):
    read("train")


def test_p3_data_dir_defaults_to_korani_data_dir(monkeypatch, tmp_path):
  monkeypatch.delenv(hf_folder.P3_DATA_DIR_ENV, raising=False)
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path))
  assert hf_folder.p3_data_dir() == tmp_path / "p3"


def test_builder_names_missing_files(monkeypatch, tmp_path):
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path))
  monkeypatch.delenv(hf_folder.P3_DATA_DIR_ENV, raising=False)
  source = sources.KoraniTfdsSource(
      "p3_records/glue__mrpc", ["validation"], tfds_data_dir=tmp_path / "t")
  with pytest.raises(errors.MissingDataError) as e:
    source.get_dataset("validation")
  assert str(tmp_path / "p3" / "glue" / "mrpc" / "validation") in str(e.value)


# --- Pipelines. ---


def _group(examples):
  by_example = collections.defaultdict(list)
  for ex in examples:
    by_example[int(ex["idx"][0])].append(bool(ex["is_correct"]))
  return by_example


def _score_eval(name, split="validation"):
  task = seqio.get_mixture_or_task(name)
  ds = task.get_dataset(LENGTHS, split=split, shuffle=False)
  return list(ds.as_numpy_iterator())


@pytest.mark.parametrize("name", ["p3_super_glue_rte_GPT_3_style_score_eval",
                                  "p3_super_glue_rte_ko_GPT_3_style_score_eval"])
def test_heldout_score_eval_pipeline(raw_data_dir, session_vocab, name):
  del session_vocab
  examples = _score_eval(name)
  by_example = _group(examples)
  assert len(by_example) == 277  # Every RTE validation record (labeled).
  for correct in by_example.values():
    assert len(correct) == 2 and sum(correct) == 1
  first = examples[0]
  assert first["targets_pretokenized"].decode() in (
      ("True", "False") if "_ko_" not in name else ("참", "거짓"))
  assert first["inputs_pretokenized"].decode().endswith(
      "True or False?" if "_ko_" not in name else "참인가요, 거짓인가요?")


def test_heldout_score_eval_copa_choices_from_data(raw_data_dir,
                                                   session_vocab):
  del session_vocab
  examples = _score_eval("p3_super_glue_copa_best_option_score_eval")
  by_example = _group(examples)
  assert len(by_example) == 100
  assert all(sum(c) == 1 and len(c) == 2 for c in by_example.values())


def test_training_pipeline(raw_data_dir, session_vocab):
  del session_vocab
  task = seqio.get_mixture_or_task("p3_trec_what_category_best_describe")
  ds = task.get_dataset(LENGTHS, split="train", shuffle=False)
  first = list(ds.take(3).as_numpy_iterator())
  assert set(first[0]) >= {"inputs", "targets", "inputs_pretokenized",
                           "targets_pretokenized"}
  assert first[0]["targets_pretokenized"].decode() in (
      "Description", "Entity", "Abbreviation", "Person", "Quantity",
      "Location")
  assert first[0]["inputs_pretokenized"].decode().startswith("Categories: ")


def test_empty_renders_are_skipped_and_logged(raw_data_dir, session_vocab,
                                              caplog):
  del session_vocab
  caplog.set_level(logging.INFO, logger=preprocessors.__name__)
  task = seqio.get_mixture_or_task("p3_trec_fine_grained_LOC")
  examples = list(task.get_dataset(LENGTHS, split="test", shuffle=False)
                  .as_numpy_iterator())
  loc = sum(1 for _, r in base.P3_SOURCES["trec"].read(
      "test", base.P3_SOURCES["trec"].paths(raw_data_dir, "test"))
            if r["label_coarse"] == 5)
  assert len(examples) == loc
  assert any(f"skipped {500 - loc} of 500 records" in m
             for m in caplog.messages), caplog.messages


def test_hf_folder_pipeline(tmp_path, monkeypatch, session_vocab, caplog):
  """glue/mrpc from fixture jsonl: training and score-eval tasks; HF test
  rows (label -1) and templates that do not apply are skipped."""
  del session_vocab
  monkeypatch.setenv(hf_folder.P3_DATA_DIR_ENV, str(tmp_path / "p3"))
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path))
  rows = [{"sentence1": f"First sentence {i}.",
           "sentence2": f"Second sentence {i}.", "label": i % 2, "idx": i}
          for i in range(6)]
  _write_jsonl(tmp_path / "p3" / "glue" / "mrpc" / "validation.jsonl", rows)
  _write_jsonl(tmp_path / "p3" / "glue" / "mrpc" / "test.jsonl",
               [dict(r, label=-1) for r in rows])
  caplog.set_level(logging.INFO, logger=preprocessors.__name__)

  def fresh(name):  # A copy whose source prepares into tmp_path.
    task = seqio.get_mixture_or_task(name)
    copy = f"{name}_{tmp_path.name}"
    seqio.TaskRegistry.add(
        copy, source=sources.KoraniTfdsSource(
            "p3_records/glue__mrpc", {"validation": "validation",
                                      "test": "test"},
            tfds_data_dir=tmp_path / "tfds", example_index=True),
        preprocessors=task.preprocessors, output_features=task.output_features,
        metric_fns=task.metric_fns)
    return seqio.get_mixture_or_task(copy)

  try:
    task = fresh("p3_glue_mrpc_equivalent_score_eval")
    ds = task.get_dataset(LENGTHS, split="validation", shuffle=False)
    by_example = _group(ds.as_numpy_iterator())
    assert len(by_example) == 6
    assert all(sum(c) == 1 for c in by_example.values())
    # A generation template that applies to label 1 only.
    train = fresh("p3_glue_mrpc_generate_paraphrase")
    out = list(train.get_dataset(LENGTHS, split="validation", shuffle=False)
               .as_numpy_iterator())
    # (TFDS orders the records by a hash of their keys.)
    assert sorted(ex["targets_pretokenized"].decode() for ex in out) == [
        f"Second sentence {i}." for i in (1, 3, 5)]
    assert any("skipped 3 of 6 records: 3 where the template renders an "
               "empty" in m for m in caplog.messages), caplog.messages
    # Hugging Face's unlabeled test rows (label -1): nothing applies.
    test = train.get_dataset(LENGTHS, split="test", shuffle=False)
    assert not list(test.as_numpy_iterator())
    assert any("skipped 6 of 6 records" in m for m in caplog.messages)
  finally:
    for name in list(seqio.TaskRegistry.names()):
      if name.endswith(f"_{tmp_path.name}"):
        seqio.TaskRegistry.remove(name)
