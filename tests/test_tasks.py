"""SeqIO task and mixture registration, and the score-eval format."""

import collections
import os
import subprocess
import sys

import pytest
import seqio

import mixtures  # pylint: disable=unused-import
from korani_tasks import catalog
from korani_tasks import readers
from korani_tasks import tasks
from korani_tasks import templates
from mixtures import kobest as kobest_mixtures

KOBEST = ["kobest_boolq", "kobest_copa", "kobest_hellaswag", "kobest_sentineg",
          "kobest_wic"]


def test_one_task_and_one_score_eval_per_dataset_language_template():
  for dataset in KOBEST:
    for lang, lang_templates in templates.load_templates(dataset).items():
      for template in lang_templates:
        name = f"korani_{dataset}_{lang}_{template.template_id}"
        for task_name in (name, name + "_score_eval"):
          assert task_name in seqio.TaskRegistry.names()
          info = tasks.task_info(task_name)
          assert (info.dataset, info.template_lang, info.template_id) == (
              dataset, lang, template.template_id)
          assert info.data_lang == "ko"
        assert tasks.task_name(dataset, lang, template.template_id) == name


def test_importing_registers_without_reading_data(tmp_path):
  """A fresh interpreter registers every task with no data folder at all."""
  tfds_dir = tmp_path / "tfds"
  env = dict(os.environ, KORANI_DATA_DIR=str(tmp_path / "absent"),
             TFDS_DATA_DIR=str(tfds_dir), TF_CPP_MIN_LOG_LEVEL="3")
  code = ("import seqio, mixtures\n"
          "print(len([n for n in seqio.TaskRegistry.names() "
          "if n.startswith('korani_')]))\n"
          "print(len(seqio.get_mixture_or_task("
          "'korani_kobest_heldout_score_eval').tasks))")
  out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                       capture_output=True, text=True).stdout.split()
  entries = catalog.load()
  nlu = {k for k, e in entries.items() if e.kind == "nlu"}
  raw_tasks = sum(len(templates.load_templates(d)["ko"]) * 2  # ko and en
                  * (2 if d in nlu else 1)  # train (+ score eval for NLU)
                  for d in readers.RAW_DATASETS)
  release_tasks = len(entries) + len(nlu)  # every dataset; NLU score evals
  assert int(out[0]) == raw_tasks + release_tasks
  held_out_kobest = ("kobest_copa", "kobest_hellaswag", "kobest_wic")
  assert int(out[1]) == sum(len(templates.load_templates(d)["ko"])
                            for d in held_out_kobest) * 2  # ko and en
  assert not tfds_dir.exists() or not any(tfds_dir.iterdir())


def test_kobest_mixtures_split_by_cluster():
  def datasets(mixture):
    return {tasks.task_info(t.name).dataset
            for t in seqio.get_mixture_or_task(mixture).tasks}

  def langs(mixture):
    return {tasks.task_info(t.name).template_lang
            for t in seqio.get_mixture_or_task(mixture).tasks}

  assert datasets("korani_kobest_train") == {"kobest_boolq", "kobest_sentineg"}
  assert langs("korani_kobest_train") == {"ko"}
  assert langs("korani_kobest_train_en") == {"en"}
  held_out = datasets("korani_kobest_heldout_score_eval")
  assert held_out == {"kobest_copa", "kobest_hellaswag", "kobest_wic"}
  assert langs("korani_kobest_heldout_score_eval") == {"ko", "en"}
  assert not held_out & datasets("korani_kobest_train")
  quick = {t.name for t in seqio.get_mixture_or_task(
      "korani_kobest_heldout_score_eval_quick").tasks}
  assert len(quick) == 3 * 3 * 2  # COPA, HellaSwag, WiC x 3 x (ko, en)
  assert quick < {t.name for t in seqio.get_mixture_or_task(
      "korani_kobest_heldout_score_eval").tasks}
  assert "korani_kobest_copa_en_best_option_score_eval" in quick  # first
  for t in seqio.get_mixture_or_task("korani_kobest_heldout_score_eval").tasks:
    assert tasks.task_info(t.name).cluster in kobest_mixtures.SETTING.held_out_clusters
    assert t.name.endswith("_score_eval")


@pytest.mark.parametrize("task_name, num_choices", [
    ("korani_kobest_copa_en_best_option_score_eval", 2),
    ("korani_kobest_hellaswag_ko_which_ending_score_eval", 4),
])
def test_score_eval_yields_one_example_per_choice(session_vocab, task_name,
                                                  num_choices):
  task = seqio.get_mixture_or_task(task_name)
  ds = task.get_dataset(None, split="validation", shuffle=False)
  by_example = collections.defaultdict(list)
  for ex in ds.as_numpy_iterator():
    by_example[int(ex["idx"][0])].append(ex)
  num_records = task.num_input_examples("validation")
  assert sorted(by_example) == list(range(num_records))
  info = tasks.task_info(task_name)
  records = task.source.get_dataset("validation", shuffle=False)
  for example, record in zip(sorted(by_example), records.as_numpy_iterator()):
    choices = by_example[example]
    assert [int(c["idx"][1]) for c in choices] == list(range(num_choices))
    assert sum(bool(c["is_correct"]) for c in choices) == 1
    # All choices share the input; the correct one is the record's label.
    assert len({c["inputs_pretokenized"] for c in choices}) == 1
    assert bool(choices[int(record["label"])]["is_correct"])
    rendered = info.template.render(
        {k: v.decode() if isinstance(v, bytes) else int(v)
         for k, v in record.items()})
    assert [c["targets_pretokenized"].decode() for c in choices] == list(
        rendered.answer_choices)
    # Tokenized with the session vocabulary and ended with EOS (id 1).
    assert all(c["targets"][-1] == 1 and c["inputs"][-1] == 1 for c in choices)


def test_training_task_has_inputs_and_targets_only(session_vocab):
  task = seqio.get_mixture_or_task("korani_kobest_sentineg_en_review_sentiment")
  ex = next(task.get_dataset(None, split="train", shuffle=False)
            .as_numpy_iterator())
  assert set(ex) == {"inputs", "targets", "inputs_pretokenized",
                     "targets_pretokenized"}
  assert ex["targets_pretokenized"].decode() in ("negative", "positive")
  assert ex["inputs_pretokenized"].decode().endswith(
      "Is this review positive or negative?")
