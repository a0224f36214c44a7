"""Tests of the training loss against the textbook formulas."""

import jax
import jax.numpy as jnp
import numpy as np

from t5x_runs import losses

Z_LOSS = 1e-2  # large enough for the z-loss to change the gradients visibly


def _reference_loss(logits, targets, weights):
  """Cross-entropy by gather from log_softmax, plus z-loss; weighted mean."""
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  token_xent = -jnp.take_along_axis(log_probs, targets[..., None],
                                    axis=-1)[..., 0]
  token_z = Z_LOSS * jnp.square(jax.nn.logsumexp(logits, axis=-1))
  return ((token_xent + token_z) * weights).sum() / weights.sum()


def _example(vocab=37):
  logits = 4.0 * jax.random.normal(jax.random.key(0), (3, 5, vocab))
  targets = jax.random.randint(jax.random.key(1), (3, 5), 0, vocab)
  weights = jnp.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]],
                      jnp.float32)
  return logits, targets, weights


def test_loss_and_gradient_equal_the_gathered_log_softmax():
  logits, targets, weights = _example()

  def loss(x):
    return losses.cross_entropy_loss(x, targets, weights, z_loss=Z_LOSS)[0]

  got, got_grad = jax.value_and_grad(loss)(logits)
  want, want_grad = jax.value_and_grad(_reference_loss)(logits, targets,
                                                        weights)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-7)
  # Padding (weight 0) gets no gradient.
  np.testing.assert_array_equal(got_grad[1, 2:], 0.0)


def test_metrics_count_the_real_tokens_and_argmax_hits():
  logits, targets, weights = _example()
  # Make the target the best logit at two real tokens and one padding one.
  for row, col in ((0, 0), (1, 1), (2, 3)):
    logits = logits.at[row, col, targets[row, col]].set(100.0)
  _, parts = losses.cross_entropy_loss(logits, targets, weights,
                                       z_loss=Z_LOSS)
  hits = (np.argmax(logits, axis=-1) == np.asarray(targets)) * weights
  assert float(parts["num_tokens"]) == 8.0
  assert hits.sum() >= 2  # the two real tokens set above
  np.testing.assert_allclose(parts["token_accuracy"], hits.sum() / 8.0)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  xent = -(jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
           * weights).sum() / 8.0
  np.testing.assert_allclose(parts["cross_entropy"], xent, rtol=1e-6)
