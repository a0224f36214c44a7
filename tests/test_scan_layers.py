"""Scanned layer stacks (MT5Config.scan_layers): same function, stacked params.

Modelled on t5x's layer scan (google-research/t5x
t5x/examples/scalable_t5/network.py at
247d329f4da9506c515a564a52ef385146784fb1: ``scan_with_axes`` over each
layer stack, the 'layers' logical axis, remat inside the scan), with the
stacked axis first (t5x: ``param_scan_axis``) and the decoders' cache kept
batch-first.
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn

from korani_tasks import errors
from t5x_runs import decoding
from t5x_runs import exchange
from t5x_runs import layer_optimizer
from t5x_runs import losses
from t5x_runs import partitioning
from t5x_runs import scoring
from t5x_runs import trainer
from t5x_runs.exchange import hf_mt5
from t5x_runs.exchange import t5x_checkpoint
from t5x_runs.models import MT5, mt5_config
from t5x_runs.models.mt5 import stack_layers, unstack_layers

VOCAB = 128
CONFIG = mt5_config("tiny", vocab_size=VOCAB, dropout_rate=0.0)
SCANNED = dataclasses.replace(CONFIG, scan_layers=True)
ENC = np.random.RandomState(0).randint(2, VOCAB, (3, 10)).astype(np.int32)
ENC[1, 6:] = 0
TARGETS = np.random.RandomState(1).randint(2, VOCAB, (3, 6)).astype(np.int32)
TARGETS[2, 3:] = 0
DEC = np.pad(TARGETS, [(0, 0), (1, 0)])[:, :-1]


@pytest.fixture(scope="module")
def params():
  """Unscanned tiny parameters."""
  return nn.unbox(MT5(CONFIG).init(jax.random.key(0), ENC, DEC)["params"])


def _loss_and_grads(config, params):
  model = MT5(config)

  def loss_fn(p):
    logits = model.apply({"params": p}, ENC, DEC, TARGETS)
    return losses.cross_entropy_loss(logits, TARGETS,
                                     (TARGETS > 0).astype(np.float32))[0]
  return jax.jit(jax.value_and_grad(loss_fn))(params)


@pytest.fixture(scope="module")
def unscanned_loss_and_grads(params):
  return _loss_and_grads(CONFIG, params)


@pytest.mark.parametrize("remat_policy", ["none", "full", "minimal"])
def test_scanned_loss_and_gradients_equal_unscanned(
    params, unscanned_loss_and_grads, remat_policy):
  config = dataclasses.replace(SCANNED, remat_policy=remat_policy)
  loss, grads = _loss_and_grads(config, stack_layers(params))
  expected_loss, expected_grads = unscanned_loss_and_grads
  np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
  flat = jax.tree_util.tree_flatten_with_path(unstack_layers(grads))[0]
  expected = jax.tree.leaves(expected_grads)
  assert len(flat) == len(expected)
  for (path, grad), want in zip(flat, expected):
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-7,
                               err_msg=jax.tree_util.keystr(path))


def test_scanned_parameters_are_stacked_on_a_replicated_layers_axis(params):
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  boxed = jax.eval_shape(
      lambda r, e, d: MT5(SCANNED).init(r, e, d)["params"],
      jax.random.key(0), tokens, tokens)
  kernel = boxed["decoder"]["layers"]["mlp"]["wi_0"]["kernel"]
  assert kernel.names == ("layers", "embed", "mlp")
  assert kernel.value.shape == (2, 64, 128)
  assert "layers_0" not in boxed["encoder"]
  assert (jax.tree.map(np.shape, nn.unbox(boxed))
          == jax.tree.map(np.shape, stack_layers(params)))
  mesh = partitioning.make_mesh(1, jax.devices()[:1])
  shardings = partitioning.param_shardings(boxed, mesh)
  spec = shardings["decoder"]["layers"]["mlp"]["wi_0"]["kernel"].spec
  assert tuple(spec) == (None, None, "model")
  assert unstack_layers(stack_layers(params)).keys() == params.keys()


def test_cached_decoding_of_a_scanned_model_equals_unscanned(params):
  scanned = stack_layers(params)
  tokens, logits = decoding.greedy_decode(MT5(CONFIG), params, ENC, 8,
                                          return_logits=True)
  tokens_s, logits_s = decoding.greedy_decode(MT5(SCANNED), scanned, ENC, 8,
                                              return_logits=True)
  np.testing.assert_array_equal(tokens_s, tokens)
  np.testing.assert_allclose(logits_s, logits, atol=1e-5)
  beams, scores = decoding.beam_search(MT5(CONFIG), params, ENC, 8, 3)
  beams_s, scores_s = decoding.beam_search(MT5(SCANNED), scanned, ENC, 8, 3)
  np.testing.assert_array_equal(beams_s, beams)
  np.testing.assert_allclose(scores_s, scores, atol=1e-5)


def test_adafactor_updates_stacked_layers_one_by_one(params):
  """The trainer's optimizer gives every layer of a stack the update it gets
  unstacked (Adafactor's clipping RMS and parameter scale are per array)."""
  grads = jax.tree.map(
      lambda p: jax.random.normal(jax.random.key(p.size), p.shape), params)
  optimizer = trainer.make_optimizer()
  state = optimizer.init(params)
  updates, _ = optimizer.update(grads, state, params)
  scanned = stack_layers(params)
  state_s = optimizer.init(scanned)
  updates_s, _ = optimizer.update(stack_layers(grads), state_s, scanned)
  for a, b in zip(jax.tree.leaves(unstack_layers(updates_s)),
                  jax.tree.leaves(updates)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
  # An unscanned tree keeps plain Adafactor's state (and checkpoint layout).
  assert not isinstance(state, layer_optimizer.PerLayerState)
  assert isinstance(state_s, layer_optimizer.PerLayerState)
  # Plain Adafactor on the stack would differ (RMS over all layers).
  plain = optax.adafactor(1e-3)
  plain_updates, _ = plain.update(stack_layers(grads), plain.init(scanned),
                                  scanned)
  assert not np.allclose(
      plain_updates["encoder"]["layers"]["mlp"]["wo"]["kernel"],
      updates_s["encoder"]["layers"]["mlp"]["wo"]["kernel"])


def test_checkpoint_exchange_stacks_and_unstacks(params, tmp_path):
  folder = t5x_checkpoint.save_t5x_checkpoint(params, tmp_path / "t5x")
  loaded, _ = exchange.load_pretrained(folder, SCANNED)
  kernel = loaded["encoder"]["layers"]["attention"]["query"]["kernel"]
  assert isinstance(kernel, exchange.StackedArray)
  stacked = stack_layers(params)
  np.testing.assert_array_equal(
      kernel[1:2, 3:5], stacked["encoder"]["layers"]["attention"]["query"]
      ["kernel"][1:2, 3:5])
  exchange.check_params_match(loaded, stacked)
  for a, b in zip(jax.tree.leaves(unstack_layers(
      jax.tree.map(np.asarray, loaded))), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  # Exports write t5x's and Hugging Face's per-layer layout.
  again = t5x_checkpoint.save_t5x_checkpoint(stacked, tmp_path / "again")
  reloaded, _ = exchange.load_pretrained(again, CONFIG)
  assert "layers_1" in reloaded["decoder"]
  hf_mt5.export_hf_checkpoint(stacked, SCANNED, tmp_path / "hf")
  hf_params, hf_config = hf_mt5.load_hf_checkpoint(tmp_path / "hf")
  assert not hf_config.scan_layers
  for a, b in zip(jax.tree.leaves(hf_params), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)


def test_shared_encoder_scores_of_a_scanned_model_equal_unscanned():
  """SharedEncoderScorer intercepts the cross-attention projections: a
  scanned decoder has one such module for all its (here 3) layers."""
  config = dataclasses.replace(CONFIG, num_decoder_layers=3)
  params = nn.unbox(MT5(config).init(jax.random.key(2), ENC, DEC)["params"])
  mesh = partitioning.make_mesh(1, jax.devices()[:1])
  rows = np.repeat(ENC, 2, axis=0)  # two choices per input
  choices = np.concatenate([TARGETS, TARGETS[::-1]])[:len(rows)]
  features = {
      "encoder_input_tokens": rows,
      "decoder_input_tokens": np.pad(choices, [(0, 0), (1, 0)])[:, :-1],
      "decoder_target_tokens": choices,
      "decoder_loss_weights": (choices > 0).astype(np.float32)}
  scores = {}
  for scan in (False, True):
    model = MT5(dataclasses.replace(config, scan_layers=scan))
    p = jax.device_put(stack_layers(params) if scan else params,
                       partitioning.replicated(mesh))
    scores[scan] = scoring.SharedEncoderScorer(
        model, p, mesh, 8, 16, 8).score_features(features)
  np.testing.assert_allclose(scores[True], scores[False], rtol=1e-5)


def test_a_run_resumes_only_with_the_layout_it_started_with(tmp_path):
  saved = dataclasses.asdict(CONFIG)
  del saved["scan_layers"]  # written before the field existed
  (tmp_path / trainer.MODEL_CONFIG_FILE).write_text(json.dumps(saved))
  trainer._check_same_model(str(tmp_path), CONFIG)  # pylint: disable=protected-access
  with pytest.raises(errors.ConfigError, match=r"'scan_layers': \(False, True\)"):
    trainer._check_same_model(str(tmp_path), SCANNED)  # pylint: disable=protected-access
