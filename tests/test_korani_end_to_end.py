"""Every raw KORANI source in the data folder trains and evaluates via seqio.

One tiny mT5 is trained for a few steps on a mixture of one Korean and one
English template of every raw dataset whose files are present, then scored
by rank classification on the first validation examples of every present
NLU dataset (Korean and English templates), through the project's trainer
and evaluator. NLG datasets train here; their scoring (ROUGE) is elsewhere.
"""

import math

import pytest
import seqio

import mixtures  # pylint: disable=unused-import
from korani_tasks import catalog
from korani_tasks import readers
from korani_tasks import sources
from korani_tasks import tasks
from t5x_runs import evaluator
from t5x_runs import trainer
from t5x_runs.models import mt5_config

EVAL_EXAMPLES = 12


def _present_raw_datasets(raw_data_dir):
  return sorted(name for name, raw in readers.RAW_DATASETS.items()
                if "validation" in raw.present_splits(raw_data_dir)
                and "train" in raw.present_splits(raw_data_dir))


def _first_task(dataset, lang, kind):
  names = sorted(i.name for i in tasks.all_task_infos().values()
                 if i.dataset == dataset and i.template_lang == lang
                 and i.kind == kind and i.source == "raw")
  return names[0]


def _sliced_eval_task(name: str) -> str:
  """A copy of a score-eval task reading only the first validation rows."""
  sliced = f"{name}_first{EVAL_EXAMPLES}"
  if sliced not in seqio.TaskRegistry.names():
    task = seqio.get_mixture_or_task(name)
    dataset = tasks.task_info(name).dataset
    seqio.TaskRegistry.add(
        sliced,
        source=sources.KoraniTfdsSource(
            dataset, {"validation": f"validation[:{EVAL_EXAMPLES}]"},
            example_index=True),
        preprocessors=task.preprocessors,
        output_features=task.output_features,
        postprocess_fn=task.postprocessor,
        metric_fns=task.metric_fns)
  return sliced


@pytest.mark.slow
def test_every_present_raw_dataset_trains_and_evaluates(
    raw_data_dir, session_vocab, tmp_path):
  datasets = _present_raw_datasets(raw_data_dir)
  # The shared data folder has train and validation files of these.
  assert {"kobest_copa", "beep_hate", "curse_detection", "unsmile",
          "sae4k", "stylekqc", "parakqc", "question_pair", "kor_sts",
          "kor_ss", "apeach"} <= set(datasets)
  train_tasks = [_first_task(d, lang, tasks.TRAIN)
                 for d in datasets for lang in ("ko", "en")]
  seqio.MixtureRegistry.add("test_present_raw_train", train_tasks,
                            default_rate=1.0)
  result = trainer.train(
      model_dir=str(tmp_path), mixture_or_task_name="test_present_raw_train",
      task_feature_lengths={"inputs": 128, "targets": 16}, batch_size=8,
      num_train_steps=3, model_config=mt5_config("tiny", vocab_size=None),
      vocabulary=str(session_vocab), checkpoint_period=3, log_period=1,
      progress=False)
  assert result.final_step == 3
  assert all(math.isfinite(loss) for _, loss in result.losses)

  nlu = [d for d in datasets if catalog.get(d).kind == "nlu"]
  eval_tasks = [_sliced_eval_task(_first_task(d, lang, tasks.SCORE_EVAL))
                for d in nlu for lang in ("ko", "en")]
  seqio.MixtureRegistry.add("test_present_raw_score_eval", eval_tasks,
                            default_rate=1.0)
  rows = evaluator.evaluate(model_dir=str(tmp_path),
                            mixture_or_task_name="test_present_raw_score_eval",
                            batch_size=64, max_input_length=256,
                            progress=False)
  accuracy = {r.task: r for r in rows if r.metric == "accuracy"}
  assert set(accuracy) == set(eval_tasks)
  for row in accuracy.values():
    assert row.num_examples == EVAL_EXAMPLES, row
    assert 0.0 <= row.value <= 100.0
