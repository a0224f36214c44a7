"""Batch evaluation jobs: resumable, with the results of an uninterrupted job.

The job runs as a real subprocess (`python -m t5x_runs.batch_eval`), is
killed with SIGKILL as soon as its first task file appears, and is started
again with the same command.
"""

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import gin
import pytest

from t5x_runs import batch_eval
from t5x_runs import cli
from t5x_runs import evaluator
from t5x_runs import results

TASKS = ["korani_kobest_copa_ko_c1_or_c2_score_eval",
         "korani_kobest_hellaswag_ko_continue_the_text_score_eval",
         "korani_kobest_wic_ko_same_sense_score_eval"]
STEPS = (100, 200)
MAX_EXAMPLES = 12


def _command(model_dir, output_dir):
  command = [sys.executable, "-m", "t5x_runs.batch_eval",
             *[f"{model_dir}:{step}" for step in STEPS],
             "--output", str(output_dir),
             "--max_examples_per_task", str(MAX_EXAMPLES),
             "--gin.EVAL_BATCH_SIZE=16"]
  for task in TASKS:
    command += ["--mixture", task]
  return command


def _env():
  # conftest put KORANI_DATA_DIR, TFDS_DATA_DIR (KoBEST prepared once for the
  # session) and KORANI_CACHE_DIR in os.environ.
  return dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")


def _run(command):
  result = subprocess.run(command, env=_env(), capture_output=True, text=True,
                          timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  return result.stderr


def _task_files(output_dir: pathlib.Path) -> set[tuple[int, str]]:
  return {(int(p.parent.parent.name.split("_")[1]), p.stem)
          for p in output_dir.glob("*/checkpoint_*/tasks/*.json")}


def _ledger(output_dir: pathlib.Path) -> list[dict]:
  path = output_dir / batch_eval.LEDGER
  return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_killed_job_restarts_to_the_uninterrupted_results(sentineg_run,
                                                          tmp_path):
  model_dir, _ = sentineg_run
  name = pathlib.Path(model_dir).name
  all_pairs = {(step, task) for step in STEPS for task in TASKS}

  whole = tmp_path / "whole"
  _run(_command(model_dir, whole))
  assert _task_files(whole) == all_pairs

  killed = tmp_path / "killed"
  job = subprocess.Popen(_command(model_dir, killed), env=_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 300
  while not _task_files(killed) and job.poll() is None:
    assert time.monotonic() < deadline, "no task file after 300 s"
    time.sleep(0.02)
  job.send_signal(signal.SIGKILL)
  assert job.wait(timeout=60) == -signal.SIGKILL
  finished = _task_files(killed)
  assert finished and finished != all_pairs  # Killed in the middle.
  first_run = _ledger(killed)

  # Debris that must never count as a result: a half-written temp file and
  # an unparsable task file of two pairs the killed job had not finished.
  pending = sorted(all_pairs - finished)
  for (step, task), debris in zip(pending, ('{"rows": [', "not json")):
    tasks_dir = killed / name / f"checkpoint_{step}" / "tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".json.tmp" if debris.startswith("{") else ".json"
    (tasks_dir / f"{task}{suffix}").write_text(debris)

  log = _run(_command(model_dir, killed))
  assert f"{len(finished)} already done (skipped)" in log
  assert f"{len(all_pairs) - len(finished)} to score" in log

  for step in STEPS:
    folder = f"{name}/checkpoint_{step}"
    assert (results.read_results(str(killed / folder))
            == results.read_results(str(whole / folder)))
    assert (killed / folder / "results.md").read_text() == (
        whole / folder / "results.md").read_text()
  assert _task_files(killed) == all_pairs

  # No task was scored twice: the restart scored exactly what was missing.
  ledger = _ledger(killed)
  pairs = [(e["checkpoint_step"], e["task"]) for e in ledger]
  assert len(pairs) == len(set(pairs)) == len(all_pairs)
  first_pid = {e["pid"] for e in first_run}
  restarted = {(e["checkpoint_step"], e["task"]) for e in ledger
               if e["pid"] not in first_pid}
  assert restarted == all_pairs - finished
  row = results.read_results(str(killed / name / "checkpoint_200"))[0]
  assert row.num_examples == MAX_EXAMPLES and row.checkpoint_step == 200


@pytest.fixture
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def test_unknown_mixture_is_a_usage_error(sentineg_run, tmp_path, capsys,
                                          _clean_gin):
  model_dir, _ = sentineg_run
  code = cli.main(["eval-batch", f"{model_dir}:100", "--mixture",
                   "korani_no_such_mixture", "--output", str(tmp_path)])
  assert code == 2
  err = capsys.readouterr().err
  assert "korani eval-batch: error: unknown mixture or task " \
         "'korani_no_such_mixture'" in err
  assert not list(tmp_path.iterdir())


def test_missing_checkpoint_is_a_usage_error(sentineg_run, tmp_path, capsys,
                                             _clean_gin):
  model_dir, _ = sentineg_run
  code = batch_eval.main([f"{model_dir}:999", "--mixture", TASKS[0],
                          "--output", str(tmp_path)])
  assert code == 2
  err = capsys.readouterr().err
  assert "no checkpoint for step 999" in err and "[100, 200, 300]" in err
  gin.clear_config()
  code = batch_eval.main([str(tmp_path / "no_run"), "--mixture", TASKS[0],
                          "--output", str(tmp_path / "out")])
  assert code == 2
  assert "no checkpoints in" in capsys.readouterr().err


def test_checkpoint_entries(sentineg_run):
  model_dir, _ = sentineg_run
  refs = batch_eval.resolve_checkpoints([str(model_dir), f"{model_dir}:200"])
  assert [r.step for r in refs] == [100, 200, 300]  # 200 once.
  assert refs[0].label == f"{pathlib.Path(model_dir).name}:100"
  split = batch_eval._split_entry  # pylint: disable=protected-access
  assert split("gs://bucket/run:40") == ("gs://bucket/run", 40)
  assert split("gs://bucket/run") == ("gs://bucket/run", None)


def test_invalid_task_files_do_not_count(tmp_path):
  ref = batch_eval.Checkpoint(str(tmp_path), 100, "run")
  settings = {"split": "validation", "max_examples_per_task": None,
              "max_input_length": 1024, "max_target_length": 256}
  path = ref.task_path(str(tmp_path), TASKS[0])
  row = results.ResultRow(
      task=TASKS[0], dataset="kobest_copa", cluster="sentence_completion",
      template="c1_or_c2", template_lang="ko", data_lang="ko",
      metric="accuracy", value=50.0, num_examples=10, num_truncated=0,
      split="validation", checkpoint_step=100,
      template_version=evaluator.template_version(TASKS[0]))
  assert len(row.template_version) == 12
  assert batch_eval.read_task_result(path, ref, TASKS[0], settings) is None
  batch_eval.write_task_result(path, ref, TASKS[0], settings, [row])
  assert batch_eval.read_task_result(path, ref, TASKS[0], settings) == [row]
  # Scored with another version of the template (or before versions were
  # recorded): stale.
  for version in ("0123456789ab", ""):
    batch_eval.write_task_result(path, ref, TASKS[0], settings, [
        dataclasses.replace(row, template_version=version)])
    assert batch_eval.read_task_result(path, ref, TASKS[0], settings) is None
  batch_eval.write_task_result(path, ref, TASKS[0], settings, [row])
  other = dict(settings, max_examples_per_task=5)
  assert batch_eval.read_task_result(path, ref, TASKS[0], other) is None
  assert batch_eval.read_task_result(
      path, batch_eval.Checkpoint(str(tmp_path), 200, "run"), TASKS[0],
      settings) is None
  text = pathlib.Path(path).read_text()
  pathlib.Path(path).write_text(text[:len(text) // 2])  # Cut short.
  assert batch_eval.read_task_result(path, ref, TASKS[0], settings) is None


@pytest.mark.slow
def test_generation_tasks_are_decoded_and_keyed_by_decode_settings(
    sentineg_run, raw_data_dir, tmp_path):
  if not (raw_data_dir / "korquad1" / "KorQuAD_v1.0_dev.json").exists():
    pytest.skip("KorQuAD 1.0 dev file not in the data folder")
  model_dir, _ = sentineg_run
  task = "korani_korquad1_ko_context_question_answer"
  assert batch_eval.resolve_tasks([task], "validation") == [task]
  assert batch_eval.rows_of_first_examples(task, "validation", 3) == 3

  def job(max_decode_length):
    return batch_eval.evaluate_checkpoints(
        checkpoints=[f"{model_dir}:300"], mixtures=[TASKS[0], task],
        output_dir=str(tmp_path), max_examples_per_task=3, batch_size=4,
        max_decode_length=max_decode_length, progress=False)

  rows = next(iter(job(6).values()))
  assert [(r.task, r.metric, r.num_examples) for r in rows] == [
      (TASKS[0], "accuracy", 3), (TASKS[0], "length_normalized_accuracy", 3),
      (task, "rougeL", 3)]
  record = json.loads(next(tmp_path.glob(f"*/checkpoint_300/tasks/{task}.json"
                                         )).read_text(encoding="utf-8"))
  assert record["settings"]["max_decode_length"] == 6
  assert len(_ledger(tmp_path)) == 2
  job(6)  # Nothing left to do.
  assert len(_ledger(tmp_path)) == 2
  job(10)  # Other decode settings: only the generation task runs again.
  assert [e["task"] for e in _ledger(tmp_path)][2:] == [task]
