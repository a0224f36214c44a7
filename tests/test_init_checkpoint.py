"""Fine-tuning from a pretrained checkpoint (t5x or Hugging Face layout).

A tiny model trained on KoBEST SentiNeg (the session's `sentineg_run`) plays
the public mT5 checkpoint: it is exported with `korani checkpoint export-t5x`
and `export-hf`, and a new run starts from each export.
"""

import jax
import numpy as np
import pytest

from korani_tasks import errors
from t5x_runs import cli
from t5x_runs import evaluator
from t5x_runs import partitioning
from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config

from conftest import SENTINEG

LENGTHS = {"inputs": 64, "targets": 4}


def _flat(tree):
  return {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def exported(sentineg_run, tmp_path_factory):
  """(trained params, t5x checkpoint folder, HF folder) of the SentiNeg run."""
  model_dir, result = sentineg_run
  out = tmp_path_factory.mktemp("exported")
  assert cli.main(["checkpoint", "export-t5x", str(model_dir),
                   "--output", str(out / "t5x")]) == 0
  assert cli.main(["checkpoint", "export-hf", str(model_dir),
                   "--output", str(out / "hf")]) == 0
  params, _ = evaluator.restore_params(str(model_dir), result.model_config,
                                       partitioning.make_mesh(1))
  return _flat(params), out / "t5x" / "checkpoint_300", out / "hf"


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["t5x", "hf"])
def test_initial_state_is_the_checkpoint(exported, sentineg_run, layout):
  trained, t5x_dir, hf_dir = exported
  config = sentineg_run[1].model_config
  state = trainer.init_train_state(
      MT5(config), trainer.make_optimizer(), partitioning.make_mesh(1),
      partitioning.standard_logical_axis_rules(), LENGTHS, seed=7,
      init_checkpoint=str(t5x_dir if layout == "t5x" else hf_dir))
  got = _flat(state.params)
  assert got.keys() == trained.keys()
  for key, value in trained.items():
    np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.slow
def test_fine_tuning_starts_from_the_pretrained_model(exported, sentineg_run,
                                                      session_vocab, tmp_path):
  """A run started from the trained model starts at its (low) loss."""
  _, t5x_dir, _ = exported
  base_result = sentineg_run[1]

  def first_loss(model_dir, init_checkpoint):
    result = trainer.train(
        model_dir=str(model_dir), mixture_or_task_name=SENTINEG,
        task_feature_lengths=LENGTHS, batch_size=32, num_train_steps=2,
        model_config=mt5_config("tiny", vocab_size=None),
        vocabulary=str(session_vocab), init_checkpoint=init_checkpoint,
        log_period=1, progress=False)
    return result.losses[0][1]

  scratch = first_loss(tmp_path / "scratch", None)
  pretrained = first_loss(tmp_path / "pretrained", str(t5x_dir))
  # From scratch the first loss is an untrained model's (ln 2048 = 7.6 for
  # uniform predictions); from the checkpoint it is about the loss where the
  # SentiNeg run ended (the mean of its last 20 steps).
  assert scratch > 6.0
  assert pretrained < 0.5 * scratch
  assert pretrained == pytest.approx(base_result.losses[-1][1], abs=0.5)


def test_wrong_size_checkpoint_is_a_clear_error(exported, sentineg_run):
  _, t5x_dir, _ = exported
  config = mt5_config("tiny", vocab_size=sentineg_run[1].model_config.vocab_size,
                      mlp_dim=256)
  with pytest.raises(errors.ConfigError, match="mlp"):
    trainer.init_train_state(
        MT5(config), trainer.make_optimizer(), partitioning.make_mesh(1),
        partitioning.standard_logical_axis_rules(), LENGTHS, seed=0,
        init_checkpoint=str(t5x_dir))
