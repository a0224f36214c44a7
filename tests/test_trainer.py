"""Training: the loss falls, a seen task is learned, run files are written.

Resuming after a kill: tests/test_resume.py; determinism: test_determinism.py.
"""

import hashlib

import pytest

from t5x_runs import checkpoints
from t5x_runs import evaluator
from t5x_runs import trainer
from t5x_runs.models import mt5_config

from conftest import SENTINEG


@pytest.mark.slow
def test_loss_falls(sentineg_run):
  _, result = sentineg_run
  first, last = result.losses[0][1], result.losses[-1][1]
  assert result.final_step == 300 and result.start_step == 0
  assert last < 0.5 * first, f"loss went from {first:.3f} to {last:.3f}"


def _untrained_accuracy(model_dir) -> float:
  """Accuracy on SentiNeg dev of the run's model at its initialization."""
  # pylint: disable=import-outside-toplevel
  import jax
  import jax.numpy as jnp
  from flax import linen as nn
  from korani_tasks import vocab as vocab_lib
  from t5x_runs import partitioning
  from t5x_runs import scoring
  from t5x_runs.models import MT5
  # pylint: enable=import-outside-toplevel
  config = trainer.load_model_config(str(model_dir))
  mesh = partitioning.make_mesh(1)
  rules = partitioning.standard_logical_axis_rules()
  with vocab_lib.using_vocabulary(str(model_dir / trainer.VOCAB_FILE)), \
       mesh, nn.logical_axis_rules(rules):
    trained, _ = evaluator.restore_params(str(model_dir), config, mesh)
    dummy = jnp.ones((1, 8), jnp.int32)
    initial = nn.meta.unbox(MT5(config).init(
        jax.random.PRNGKey(0), dummy, dummy)["params"])
    initial = jax.tree.map(lambda x, t: jax.device_put(x, t.sharding),
                           initial, trained)
    scorer = scoring.make_scorer(MT5(config), initial, mesh, 64, 1024, 256)
    rows = evaluator.evaluate_tasks(
        evaluator.make_evaluator(SENTINEG + "_score_eval", "validation"),
        scorer, step=0, split="validation")
  return {r.metric: r.value for r in rows}["accuracy"]


@pytest.mark.slow
def test_seen_task_beats_the_untrained_model_and_chance_on_dev(sentineg_run):
  model_dir, _ = sentineg_run
  rows = evaluator.evaluate(
      model_dir=str(model_dir),
      mixture_or_task_name=SENTINEG + "_score_eval",
      output_dir=str(model_dir / "eval"), progress=False)
  accuracy = {r.metric: r.value for r in rows}["accuracy"]
  untrained = _untrained_accuracy(model_dir)
  # KoBEST SentiNeg dev is balanced (200/200): chance is 50%, and an
  # untrained model (which may prefer one answer) is near it.
  assert accuracy >= 65.0, (
      f"tiny model after 300 steps: {accuracy:.1f}% on SentiNeg dev "
      "(chance 50%)")
  assert accuracy >= untrained + 10.0, (
      f"trained {accuracy:.1f}% vs untrained {untrained:.1f}% on SentiNeg dev")


@pytest.mark.slow
def test_run_files_and_checkpoints(sentineg_run, session_vocab):
  model_dir, result = sentineg_run
  assert (model_dir / "vocab.model").read_bytes() == session_vocab.read_bytes()
  assert (model_dir / "config.gin").is_file()
  assert trainer.load_model_config(str(model_dir)) == result.model_config
  assert result.model_config.vocab_size == 2048  # 2000 pieces, rounded to 128
  store = checkpoints.CheckpointStore(model_dir, read_only=True)
  assert store.all_steps() == [100, 200, 300]
  metadata = store.metadata(300)
  assert metadata["vocabulary"] == str(model_dir / "vocab.model")
  assert metadata["vocabulary_sha256"] == hashlib.sha256(
      session_vocab.read_bytes()).hexdigest()
  assert metadata["vocabulary_pieces"] == 2000
  assert metadata["heldout_setting"] == ""  # A task, of no held-out setting.
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
