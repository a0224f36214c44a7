"""Microbatched gradient accumulation (gin NUM_MICROBATCHES).

Checked against t5x's ``accumulate_grads_microbatched`` (google-research/t5x
t5x/trainer.py at 49e5ebdae1ac1755b438ebfc9ff4c6cf9b882f83), which also
accumulates inside the jitted step; unlike t5x, each microbatch's loss is
normalized by the whole batch's token count, so the update equals the full
batch's exactly (to float32 rounding).
"""

import jax
import numpy as np
import optax
import pytest
from flax import linen as nn

from korani_tasks import errors
from t5x_runs import partitioning
from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config

BATCH, INPUTS, TARGETS, VOCAB = 8, 12, 6, 128


def _packed_batch(seed: int = 0) -> dict[str, np.ndarray]:
  """A batch whose rows hold different numbers of real target tokens (so
  microbatches differ in token count, which the normalization must handle)."""
  rng = np.random.RandomState(seed)
  enc = rng.randint(2, VOCAB, (BATCH, INPUTS)).astype(np.int32)
  targets = rng.randint(2, VOCAB, (BATCH, TARGETS)).astype(np.int32)
  for row in range(BATCH):
    targets[row, 1 + row % TARGETS:] = 0
    enc[row, 3 + row:] = 0
  weights = (targets > 0).astype(np.float32)
  inputs = np.pad(targets, [(0, 0), (1, 0)])[:, :-1]
  return {"encoder_input_tokens": enc, "decoder_input_tokens": inputs,
          "decoder_target_tokens": targets, "decoder_loss_weights": weights}


def test_accumulated_update_equals_the_full_batch_update():
  model = MT5(mt5_config("tiny", vocab_size=VOCAB, dropout_rate=0.0))
  batch = _packed_batch()
  params = nn.unbox(model.init(jax.random.key(0),
                               batch["encoder_input_tokens"][:1],
                               batch["decoder_input_tokens"][:1])["params"])
  # Plain SGD: its update is the gradient, so this compares the accumulated
  # gradient itself (Adafactor's first step, g / sqrt(g^2), would magnify
  # float32 rounding in near-zero gradients).
  optimizer = optax.sgd(1.0)
  opt_state = optimizer.init(params)
  rng = jax.random.key(1)
  results = {
      n: jax.jit(trainer.make_train_step(model, optimizer, 1e-4, n))(
          params, opt_state, batch, rng)
      for n in (1, 4)}
  full_params, _, full_metrics = results[1]
  new_params, _, metrics = results[4]
  for a, b, before in zip(jax.tree.leaves(new_params),
                          jax.tree.leaves(full_params),
                          jax.tree.leaves(params)):
    np.testing.assert_allclose(np.asarray(a) - before,
                               np.asarray(b) - before, rtol=1e-4, atol=1e-6)
  assert metrics.keys() == full_metrics.keys()
  for key, value in full_metrics.items():
    np.testing.assert_allclose(metrics[key], value, rtol=1e-5, err_msg=key)
  assert full_metrics["grad_norm"] > 1e-3  # the update is not trivial


def test_a_batch_that_does_not_divide_names_the_setting_and_numbers():
  mesh = partitioning.make_mesh(1, jax.devices()[:1])
  trainer._check_microbatches(8, mesh, 4)  # pylint: disable=protected-access
  with pytest.raises(errors.ConfigError,
                     match=r"batch_size=6 .*num_microbatches=4 "
                           r"\(gin NUM_MICROBATCHES\) x the 1 data-parallel "
                           r"replicas = 4"):
    trainer._check_microbatches(6, mesh, 4)  # pylint: disable=protected-access
  with pytest.raises(errors.ConfigError, match="num_microbatches=0"):
    trainer._check_microbatches(8, mesh, 0)  # pylint: disable=protected-access
