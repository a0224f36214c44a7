"""Tests of the mT5 network: shapes, masking, parameter layout, training."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from flax.traverse_util import flatten_dict

from t5x_runs import losses
from t5x_runs.models import MT5, PRESETS, mt5, mt5_config, param_count
from t5x_runs.models.mt5 import (projection_dot, relative_position_bucket,
                                  softmax_context, toeplitz)

VOCAB = 100

# One unpacked example plus one shorter, padded one (token 0 is padding; the
# decoder inputs are the targets shifted right behind a 0).
ENC = jnp.array([[3, 4, 5, 6, 7, 8], [9, 10, 11, 0, 0, 0]], jnp.int32)
DEC_TARGETS = jnp.array([[20, 21, 22, 23, 1], [24, 25, 1, 0, 0]], jnp.int32)
DEC_INPUTS = jnp.array([[0, 20, 21, 22, 23], [0, 24, 25, 0, 0]], jnp.int32)

# One row holding two packed examples (segments 1 and 2) and padding.
PACKED = dict(
    encoder_input_tokens=jnp.array([[3, 4, 5, 6, 7, 8, 0, 0]], jnp.int32),
    encoder_segment_ids=jnp.array([[1, 1, 1, 2, 2, 2, 0, 0]], jnp.int32),
    encoder_positions=jnp.array([[0, 1, 2, 0, 1, 2, 0, 0]], jnp.int32),
    decoder_input_tokens=jnp.array([[0, 20, 21, 0, 22, 23, 0]], jnp.int32),
    decoder_target_tokens=jnp.array([[20, 21, 1, 22, 23, 1, 0]], jnp.int32),
    decoder_segment_ids=jnp.array([[1, 1, 1, 2, 2, 2, 0]], jnp.int32),
    decoder_positions=jnp.array([[0, 1, 2, 0, 1, 2, 0]], jnp.int32),
)
SEGMENT_1 = slice(0, 3)  # Decoder positions of the first packed example.
SEGMENT_2 = slice(3, 6)


@pytest.fixture(scope="module")
def model():
  return MT5(mt5_config("tiny", vocab_size=VOCAB))


@pytest.fixture(scope="module")
def variables(model):
  return model.init(jax.random.key(0), ENC, DEC_INPUTS)


@pytest.fixture(scope="module")
def apply(model):
  """The jit-compiled forward pass, without dropout."""
  return jax.jit(model.apply)


def _replace(tokens, index, value):
  return tokens.at[index].set(value)


def test_forward_shape_dtype_and_jit(model, variables, apply):
  logits = apply(variables, ENC, DEC_INPUTS, DEC_TARGETS)
  assert logits.shape == (2, 5, VOCAB)
  assert logits.dtype == jnp.float32
  assert np.isfinite(logits).all()
  eager = model.apply(variables, ENC, DEC_INPUTS, DEC_TARGETS)
  np.testing.assert_allclose(eager, logits, atol=1e-5)


def test_logical_constraints_without_mesh_are_no_ops(apply, variables):
  rules = [("batch", "data"), ("embed", None), ("mlp", "model"),
           ("heads", "model"), ("vocab", "model")]
  expected = apply(variables, ENC, DEC_INPUTS, DEC_TARGETS)
  with nn.logical_axis_rules(rules):
    logits = apply(variables, ENC, DEC_INPUTS, DEC_TARGETS)
  np.testing.assert_allclose(logits, expected, atol=1e-6)


def test_bfloat16_activations_give_float32_logits():
  model = MT5(mt5_config("tiny", vocab_size=VOCAB, dtype="bfloat16"))
  variables = model.init(jax.random.key(0), ENC, DEC_INPUTS)
  logits = model.apply(variables, ENC, DEC_INPUTS, DEC_TARGETS)
  assert logits.dtype == jnp.float32 and np.isfinite(logits).all()
  for leaf in jax.tree.leaves(nn.unbox(variables)):
    assert leaf.dtype == jnp.float32


def test_packed_segments_do_not_see_each_other(apply, variables):
  base = apply(variables, **PACKED)
  tokens = PACKED["encoder_input_tokens"]
  cases = [
      # (changed input, new value, decoder positions that must not change)
      ("encoder_input_tokens", _replace(tokens, (0, 4), 50), SEGMENT_1),
      ("encoder_input_tokens", _replace(tokens, (0, 1), 50), SEGMENT_2),
      ("decoder_input_tokens",
       _replace(PACKED["decoder_input_tokens"], (0, 1), 50), SEGMENT_2),
  ]
  for name, value, unchanged in cases:
    logits = apply(variables, **{**PACKED, name: value})
    np.testing.assert_allclose(logits[:, unchanged], base[:, unchanged],
                               atol=1e-5, err_msg=name)
    # ... while the edited segment itself does change.
    assert not np.allclose(logits, base, atol=1e-5), name


def test_decoder_is_causal(apply, variables):
  base = apply(variables, ENC, DEC_INPUTS, DEC_TARGETS)
  changed = apply(variables, ENC, _replace(DEC_INPUTS, (0, 3), 50),
                  DEC_TARGETS)
  np.testing.assert_allclose(changed[0, :3], base[0, :3], atol=1e-5)
  assert not np.allclose(changed[0, 3], base[0, 3], atol=1e-5)
  np.testing.assert_allclose(changed[1], base[1], atol=1e-5)


def test_encoder_padding_does_not_change_logits(apply, variables):
  short = ENC[1:, :3]  # [[9, 10, 11]], no padding.
  base = apply(variables, short, DEC_INPUTS[1:], DEC_TARGETS[1:])
  padded = apply(variables, ENC[1:], DEC_INPUTS[1:], DEC_TARGETS[1:])
  real = DEC_TARGETS[1] > 0  # Padded decoder positions have no loss.
  np.testing.assert_allclose(padded[:, real], base[:, real], atol=1e-5)


def test_encode_then_decode_equals_call(model, variables, apply):
  for batch in (dict(encoder_input_tokens=ENC, decoder_input_tokens=DEC_INPUTS,
                     decoder_target_tokens=DEC_TARGETS), PACKED):
    encoded = model.apply(variables, batch["encoder_input_tokens"],
                          batch.get("encoder_segment_ids"), method=MT5.encode)
    assert encoded.shape == batch["encoder_input_tokens"].shape + (64,)
    decode_args = {k: v for k, v in batch.items() if k != "encoder_positions"}
    logits = model.apply(variables, encoded, **decode_args, method=MT5.decode)
    np.testing.assert_allclose(logits, apply(variables, **batch), atol=1e-5)


def test_segment_ids_must_come_in_pairs(model, variables):
  with pytest.raises(ValueError, match="encoder_segment_ids"):
    model.apply(variables, ENC, DEC_INPUTS, DEC_TARGETS,
                encoder_segment_ids=jnp.ones_like(ENC))


@pytest.mark.parametrize("size, expected, paper", [
    ("small", 300_176_768, 300e6),
    ("base", 582_401_280, 580e6),
    ("large", None, 1.23e9),
    ("xl", None, 3.74e9),
    ("xxl", None, 12.9e9),
])
def test_param_count_matches_published_sizes(size, expected, paper):
  count = param_count(PRESETS[size])
  if expected is not None:
    assert count == expected  # Hugging Face's google/mt5-{size}.
  assert abs(count - paper) / paper < 0.01


def test_parameter_names_shapes_and_logical_axes(variables):
  params = variables["params"]
  boxes = flatten_dict(params, sep="/",
                       is_leaf=lambda _, x: isinstance(x, nn.Partitioned))
  assert all(isinstance(box, nn.LogicallyPartitioned)
             for box in boxes.values())
  specs = flatten_dict(nn.get_partition_spec(params), sep="/")
  shapes = {name: box.value.shape for name, box in boxes.items()}
  expected = {
      "token_embedder/embedding": ((VOCAB, 64), ("vocab", "embed")),
      "encoder/relpos_bias/rel_embedding": ((4, 32),
                                            ("heads", "relpos_buckets")),
      "encoder/layers_1/pre_attention_layer_norm/scale": ((64,), ("embed",)),
      "encoder/layers_0/attention/query/kernel": ((64, 64),
                                                  ("embed", "joined_kv")),
      "encoder/layers_0/attention/out/kernel": ((64, 64),
                                                ("joined_kv", "embed")),
      "encoder/layers_0/mlp/wi_0/kernel": ((64, 128), ("embed", "mlp")),
      "encoder/layers_0/mlp/wi_1/kernel": ((64, 128), ("embed", "mlp")),
      "encoder/layers_0/mlp/wo/kernel": ((128, 64), ("mlp", "embed")),
      "encoder/encoder_norm/scale": ((64,), ("embed",)),
      "decoder/relpos_bias/rel_embedding": ((4, 32),
                                            ("heads", "relpos_buckets")),
      "decoder/layers_1/pre_self_attention_layer_norm/scale": ((64,),
                                                               ("embed",)),
      "decoder/layers_1/self_attention/value/kernel": ((64, 64),
                                                       ("embed", "joined_kv")),
      "decoder/layers_1/pre_cross_attention_layer_norm/scale": ((64,),
                                                                ("embed",)),
      "decoder/layers_1/encoder_decoder_attention/key/kernel": (
          (64, 64), ("embed", "joined_kv")),
      "decoder/layers_1/pre_mlp_layer_norm/scale": ((64,), ("embed",)),
      "decoder/layers_1/mlp/wo/kernel": ((128, 64), ("mlp", "embed")),
      "decoder/decoder_norm/scale": ((64,), ("embed",)),
      "decoder/logits_dense/kernel": ((64, VOCAB), ("embed", "vocab")),
  }
  for name, (shape, axes) in expected.items():
    assert shapes[name] == shape, name
    assert tuple(specs[name]) == axes, name
  # Per layer: encoder 4 attention + 3 mlp + 2 norms, decoder 8 + 3 + 3;
  # plus embedding, 2 relpos tables, 2 final norms and logits_dense.
  assert len(boxes) == 2 * 9 + 2 * 14 + 6


def test_relative_position_buckets_match_t5():
  offsets = np.array([0, -1, 1, -7, -8, -9, -127, -128, -1000, 5, 1000])
  bidirectional = relative_position_bucket(offsets, True, 32, 128)
  np.testing.assert_array_equal(
      bidirectional, [0, 1, 17, 7, 8, 8, 15, 15, 15, 21, 31])
  causal = relative_position_bucket(offsets, False, 32, 128)
  np.testing.assert_array_equal(
      causal, [0, 1, 0, 7, 8, 9, 31, 31, 31, 0, 0])


@pytest.mark.parametrize("query_length, key_length",
                         [(2, 3), (6, 6), (9, 4), (1, 5), (5, 1), (64, 48)])
def test_toeplitz_and_its_gradient_equal_the_gather(query_length, key_length):
  """The position bias layout, and its hand-written gradient (diagonal sums)
  against autodiff of the plain gather, on 2 heads."""
  per_offset = jax.random.normal(jax.random.key(0),
                                 (2, query_length + key_length - 1))
  index = (np.arange(key_length)[None, :] - np.arange(query_length)[:, None]
           + query_length - 1)

  def gather(x):
    return jnp.take(x, index, axis=-1)

  got, got_vjp = jax.vjp(lambda x: toeplitz(x, query_length, key_length),
                         per_offset)
  want, want_vjp = jax.vjp(gather, per_offset)
  np.testing.assert_array_equal(got, want)
  grad = jax.random.normal(jax.random.key(1), want.shape)
  np.testing.assert_allclose(got_vjp(grad)[0], want_vjp(grad)[0], rtol=1e-6,
                             atol=1e-5)
  np.testing.assert_array_equal(toeplitz(jnp.arange(4.0), 2, 3),
                                [[1, 2, 3], [0, 1, 2]])


@pytest.mark.parametrize("dtype, rtol", [(jnp.float32, 1e-6),
                                         (jnp.bfloat16, 1e-2)])
def test_projection_dot_and_its_gradient_equal_the_dot(dtype, rtol):
  """nn.Dense's dot with the hand-written kernel gradient (one dot over the
  inputs' leading axes) against autodiff of lax.dot_general, jit-compiled."""
  keys = jax.random.split(jax.random.key(0), 3)
  inputs = jax.random.normal(keys[0], (3, 7, 16), dtype)
  kernel = jax.random.normal(keys[1], (16, 24), dtype)
  numbers = (((2,), (0,)), ((), ()))

  def plain(x, k):
    return jax.lax.dot_general(x, k, numbers)

  got, got_vjp = jax.vjp(jax.jit(lambda x, k: projection_dot(x, k, numbers)),
                         inputs, kernel)
  want, want_vjp = jax.vjp(jax.jit(plain), inputs, kernel)
  np.testing.assert_allclose(np.float32(got), np.float32(want), rtol=rtol)
  grad = jax.random.normal(keys[2], want.shape, dtype)
  for got_grad, want_grad in zip(got_vjp(grad), want_vjp(grad)):
    assert (got_grad.dtype, got_grad.shape) == (want_grad.dtype,
                                                want_grad.shape)
    np.testing.assert_allclose(np.float32(got_grad), np.float32(want_grad),
                               rtol=rtol, atol=rtol)
  with pytest.raises(ValueError, match="nn.Dense's dot only"):
    projection_dot(inputs, kernel, (((2,), (1,)), ((), ())))


def test_softmax_context_and_its_gradient_equal_dropout_softmax_value():
  """The context with the normalization and the key dropout applied after
  the weights, against the textbook dropout(softmax(logits)) @ value, with a
  fully masked query row (uniform weights in both), values and gradients."""
  keys = jax.random.split(jax.random.key(0), 4)
  logits = 3 * jax.random.normal(keys[0], (2, 3, 5, 7))
  logits = logits.at[1, :, 4, :].set(-1e10)
  value = jax.random.normal(keys[1], (2, 7, 3, 4))
  keep = jax.random.bernoulli(keys[2], 0.8, (2, 3, 1, 7)) / 0.8

  def want(logits, value):
    weights = jax.nn.softmax(logits) * keep
    return jnp.einsum("bhqk,bkhd->bqhd", weights, value)

  def got(logits, value):
    return softmax_context(logits, value, lambda ones: ones * keep)

  got_out, got_vjp = jax.vjp(jax.jit(got), logits, value)
  want_out, want_vjp = jax.vjp(want, logits, value)
  np.testing.assert_allclose(got_out, want_out, rtol=1e-5, atol=1e-6)
  grad = jax.random.normal(keys[3], want_out.shape)
  for got_grad, want_grad in zip(got_vjp(grad), want_vjp(grad)):
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-6)


def test_dropout_is_random_only_when_enabled(model, variables, apply):
  train = jax.jit(functools.partial(model.apply, enable_dropout=True))
  args = (variables, ENC, DEC_INPUTS, DEC_TARGETS)
  first = train(*args, rngs={"dropout": jax.random.key(1)})
  second = train(*args, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(first, second)
  np.testing.assert_array_equal(apply(*args), apply(*args))


def test_mt5_config_overrides_and_errors():
  config = mt5_config("small", dropout_rate=0.0, dtype="bfloat16")
  assert (config.emb_dim, config.dropout_rate, config.dtype) == (
      512, 0.0, "bfloat16")
  with pytest.raises(ValueError, match="'huge'.*small"):
    mt5_config("huge")
  with pytest.raises(ValueError, match="'emb_size'.*emb_dim"):
    mt5_config("tiny", emb_size=8)
  with pytest.raises(ValueError, match="float64"):
    mt5_config("tiny", dtype="float64")


def test_a_few_adam_steps_reduce_the_loss(model, variables):
  params = variables["params"]
  optimizer = optax.adam(3e-3)
  weights = (DEC_TARGETS > 0).astype(jnp.float32)

  def loss_fn(params):
    logits = model.apply({"params": params}, ENC, DEC_INPUTS, DEC_TARGETS)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits,
                                                             DEC_TARGETS)
    return (losses * weights).sum() / weights.sum()

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  opt_state = optimizer.init(params)
  losses = []
  for _ in range(5):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
  assert losses[-1] < 0.8 * losses[0], losses


def _dropout_loss_fn(model):
  """params -> the loss of one dropout-enabled step (fixed dropout key)."""

  def loss_fn(params):
    logits = model.apply({"params": params}, ENC, DEC_INPUTS, DEC_TARGETS,
                         enable_dropout=True,
                         rngs={"dropout": jax.random.key(7)})
    return losses.cross_entropy_loss(logits, DEC_TARGETS, DEC_TARGETS > 0)[0]

  return loss_fn


def _loss_and_grads(remat_policy):
  """Loss and gradients of one dropout-enabled step, and the boxed params."""
  model = MT5(mt5_config("tiny", vocab_size=VOCAB, remat_policy=remat_policy))
  boxed = model.init(jax.random.key(0), ENC, DEC_INPUTS)["params"]
  loss, grads = jax.jit(jax.value_and_grad(_dropout_loss_fn(model)))(
      nn.unbox(boxed))
  return float(loss), flatten_dict(grads, sep="/"), boxed


def _remat_equations(remat_policy):
  """The checkpoint (remat) equations of the forward pass's jaxpr."""
  model = MT5(mt5_config("tiny", vocab_size=VOCAB, remat_policy=remat_policy))
  params = nn.unbox(model.init(jax.random.key(0), ENC, DEC_INPUTS)["params"])
  jaxpr = jax.make_jaxpr(
      lambda p: model.apply({"params": p}, ENC, DEC_INPUTS).sum())(params)
  return [e for e in jaxpr.jaxpr.eqns
          if {"policy", "prevent_cse"} <= set(e.params)]


def test_remat_policies_give_the_same_loss_gradients_and_parameters():
  loss, grads, boxed = _loss_and_grads("none")
  names = flatten_dict(nn.get_partition_spec(boxed), sep="/")
  values = flatten_dict(nn.unbox(boxed), sep="/")
  for policy in ("full", "minimal"):
    remat_loss, remat_grads, remat_boxed = _loss_and_grads(policy)
    # Same parameter names, logical axes and initial values ...
    assert flatten_dict(nn.get_partition_spec(remat_boxed), sep="/") == names
    remat_values = flatten_dict(nn.unbox(remat_boxed), sep="/")
    for name, value in values.items():
      np.testing.assert_array_equal(remat_values[name], value, err_msg=name)
    # ... and, with the same dropout masks, the same loss and gradients.
    np.testing.assert_allclose(remat_loss, loss, rtol=1e-5, atol=1e-5)
    assert remat_grads.keys() == grads.keys()
    for name, grad in grads.items():
      np.testing.assert_allclose(remat_grads[name], grad, rtol=1e-5,
                                 atol=1e-5, err_msg=f"{policy}: {name}")


def test_remat_policies_wrap_each_layer_with_their_checkpoint_policy():
  assert not _remat_equations("none")
  full = _remat_equations("full")
  minimal = _remat_equations("minimal")
  assert len(full) == len(minimal) == 2 + 2  # encoder and decoder layers
  assert all(e.params["policy"] is None for e in full)
  assert all(e.params["policy"] is mt5._CHECKPOINT_POLICIES["minimal"]
             for e in minimal)


def _gradient_flops(remat_policy):
  """XLA's FLOP count of the compiled gradient of one dropout-enabled step."""
  model = MT5(mt5_config("tiny", vocab_size=VOCAB, remat_policy=remat_policy))
  params = nn.unbox(model.init(jax.random.key(0), ENC, DEC_INPUTS)["params"])
  cost = jax.jit(jax.grad(_dropout_loss_fn(model))).lower(
      params).compile().cost_analysis()
  return (cost[0] if isinstance(cost, list) else cost)["flops"]


def test_minimal_remat_recomputes_no_projection():
  """'minimal' saves every projection's output (query ... wo, logits): its
  backward recomputes only the attention products, less than half of what
  'full' recomputes (which is every layer's forward pass)."""
  none, minimal, full = map(_gradient_flops, ("none", "minimal", "full"))
  assert none < minimal < full
  assert minimal - none < 0.5 * (full - none), (none, minimal, full)


def test_remat_policy_is_a_config_field_with_a_clear_error():
  assert mt5_config("tiny").remat_policy == "none"
  assert mt5_config("xl", remat_policy="full").remat_policy == "full"
  with pytest.raises(ValueError, match=r"remat_policy='everything'.*"
                     r"none, full, minimal"):
    mt5_config("tiny", remat_policy="everything")
