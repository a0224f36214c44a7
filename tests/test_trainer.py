"""Training: the loss falls, a seen task is learned, runs resume exactly."""

import itertools
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from t5x_runs import checkpoints
from t5x_runs import evaluator
from t5x_runs import trainer
from t5x_runs.models import mt5_config

from conftest import SENTINEG


def test_data_order_is_fixed_by_the_seed(session_vocab):
  def batches(seed, start_step=0, count=3):
    ds = trainer.train_batches(SENTINEG, {"inputs": 64, "targets": 4}, 8,
                               seed=seed, start_step=start_step)
    return [b["encoder_input_tokens"]
            for b in itertools.islice(ds.as_numpy_iterator(), count)]

  first, again, other = batches(0), batches(0), batches(1)
  assert all(np.array_equal(x, y) for x, y in zip(first, again))
  assert not all(np.array_equal(x, y) for x, y in zip(first, other))
  # A run resumed at step 2 continues with the third batch.
  assert np.array_equal(batches(0, start_step=2, count=1)[0], first[2])


@pytest.mark.slow
def test_loss_falls(sentineg_run):
  _, result = sentineg_run
  first, last = result.losses[0][1], result.losses[-1][1]
  assert result.final_step == 300 and result.start_step == 0
  assert last < 0.5 * first, f"loss went from {first:.3f} to {last:.3f}"


@pytest.mark.slow
def test_seen_task_beats_chance_on_dev(sentineg_run):
  model_dir, _ = sentineg_run
  rows = evaluator.evaluate(
      model_dir=str(model_dir),
      mixture_or_task_name=SENTINEG + "_score_eval",
      output_dir=str(model_dir / "eval"), progress=False)
  accuracy = {r.metric: r.value for r in rows}["accuracy"]
  # KoBEST SentiNeg dev is balanced (200/200): chance is 50%.
  assert accuracy >= 65.0, (
      f"tiny model after 300 steps: {accuracy:.1f}% on SentiNeg dev "
      "(chance 50%)")


@pytest.mark.slow
def test_run_files_and_checkpoints(sentineg_run, session_vocab):
  model_dir, result = sentineg_run
  assert (model_dir / "vocab.model").read_bytes() == session_vocab.read_bytes()
  assert (model_dir / "config.gin").is_file()
  assert trainer.load_model_config(str(model_dir)) == result.model_config
  assert result.model_config.vocab_size == 2048  # 2000 pieces, rounded to 128
  store = checkpoints.CheckpointStore(model_dir, read_only=True)
  assert store.all_steps() == [100, 200, 300]
  assert store.metadata(300)["vocabulary"] == str(model_dir / "vocab.model")
  store.close()
  assert list((model_dir / "train").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_running_again_after_the_last_step_does_nothing(sentineg_run, session_vocab):
  model_dir, result = sentineg_run
  again = trainer.train(
      model_dir=str(model_dir), mixture_or_task_name=SENTINEG,
      task_feature_lengths={"inputs": 64, "targets": 4}, batch_size=32,
      num_train_steps=300, model_config=mt5_config("tiny", vocab_size=None),
      vocabulary=str(session_vocab), progress=False)
  assert (again.start_step, again.final_step, again.losses) == (300, 300, [])


def _train_command(model_dir, vocab_path, steps):
  return [sys.executable, "-m", "t5x_runs.train",
          "--gin_file=models/mt5_tiny.gin", "--gin_file=runs/finetune.gin",
          f"--gin.MODEL_DIR={model_dir}",
          f"--gin.MIXTURE_OR_TASK_NAME={SENTINEG}",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 4}",
          "--gin.BATCH_SIZE=16", f"--gin.TRAIN_STEPS={steps}",
          "--gin.CHECKPOINT_PERIOD=25", "--gin.DROPOUT_RATE=0.1",
          f"--gin.VOCABULARY={vocab_path}"]


def _final_params(model_dir, step):
  store = checkpoints.CheckpointStore(model_dir, read_only=True)
  config = trainer.load_model_config(str(model_dir))
  mesh = evaluator.partitioning.make_mesh(1)
  params, _ = evaluator.restore_params(str(model_dir), config, mesh, step)
  store.close()
  return jax.tree.map(np.asarray, params)


@pytest.mark.slow
def test_killed_run_resumes_with_identical_parameters(session_vocab, tmp_path):
  """SIGKILL after the first checkpoint; the same command finishes the run
  with parameters bit-identical to an uninterrupted run."""
  steps = 150
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  straight = tmp_path / "straight"
  subprocess.run(_train_command(straight, session_vocab, steps), env=env,
                 check=True, capture_output=True)

  resumed = tmp_path / "resumed"
  command = _train_command(resumed, session_vocab, steps)
  process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  ckpt_dir = pathlib.Path(checkpoints.checkpoint_dir(resumed))
  deadline = time.time() + 300
  while not (ckpt_dir / "25").is_dir() and time.time() < deadline:
    if process.poll() is not None:
      break
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert process.returncode == -signal.SIGKILL, "run ended before the kill"
  saved = sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())
  assert saved and saved[-1] < steps

  restart = subprocess.run(command, env=env, check=True, capture_output=True,
                           text=True)
  assert f"Resuming from checkpoint {saved[-1]}" in restart.stderr
  a, b = _final_params(straight, steps), _final_params(resumed, steps)
  mismatched = [k for k, (x, y) in enumerate(zip(jax.tree.leaves(a),
                                                  jax.tree.leaves(b)))
                if not np.array_equal(x, y)]
  assert not mismatched, f"{len(mismatched)} parameter arrays differ"
