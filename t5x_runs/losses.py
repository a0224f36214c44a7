"""Token-level losses and sequence scores from decoder logits.

Shapes: ``logits`` [batch, length, vocab] (float32), ``targets`` and
``weights`` [batch, length], where ``weights`` is seqio's
``decoder_loss_weights`` (1 on real target tokens, 0 on padding).
"""

import jax
import jax.numpy as jnp


def cross_entropy_loss(logits: jax.Array, targets: jax.Array,
                       weights: jax.Array, z_loss: float = 1e-4,
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean cross-entropy per real target token, plus t5x's z-loss.

  The z-loss (``z_loss * log(Z)^2`` per token) keeps the softmax normalizer
  near 1, as in t5x/Mesh TensorFlow. Returns the loss to minimize and a dict
  of the parts for logging (cross_entropy, z_loss, num_tokens, accuracy).
  """
  weights = weights.astype(jnp.float32)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  # The target's logit selected by comparison with the vocabulary ids rather
  # than gathered: its gradient is then elementwise and fuses with the
  # softmax's, where a gather's is a scatter into a [batch, length, vocab]
  # array of zeros.
  is_target = targets[..., None] == jnp.arange(logits.shape[-1])
  target_logits = jnp.sum(jnp.where(is_target, logits, 0.0), axis=-1)
  token_xent = log_z - target_logits
  token_z = z_loss * jnp.square(log_z)
  num_tokens = jnp.maximum(weights.sum(), 1.0)
  xent = (token_xent * weights).sum() / num_tokens
  z = (token_z * weights).sum() / num_tokens
  # A token is right when its target has the largest logit (one max
  # reduction; argmax's index reduction costs more). A target tied with
  # another largest logit counts as right.
  correct = (target_logits >= jnp.max(logits, axis=-1)) * weights
  return xent + z, {
      "cross_entropy": xent,
      "z_loss": z,
      "num_tokens": weights.sum(),
      "token_accuracy": correct.sum() / num_tokens,
  }


def sequence_log_likelihood(logits: jax.Array, targets: jax.Array,
                            weights: jax.Array) -> jax.Array:
  """Summed log-probability of each target sequence, shape [batch].

  This is the score of t5x's `score_batch` and of rank classification.
  """
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  token_log_probs = jnp.take_along_axis(
      log_probs, targets[..., None], axis=-1)[..., 0]
  return (token_log_probs * weights.astype(jnp.float32)).sum(axis=-1)
