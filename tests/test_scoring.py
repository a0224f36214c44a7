"""Shared-encoder rank scoring gives the naive path's scores.

`SharedEncoderScorer` runs the encoder once per distinct input;
`ChoiceScorer` runs the whole network once per (input, choice) row. On real
held-out KoBEST tasks (2 and 4 choices, Korean and English templates) with a
tiny mT5 they must agree per (index, score) to

    |shared - naive| <= SCORE_ATOL + SCORE_RTOL * |naive|

with SCORE_RTOL = 1e-5, SCORE_ATOL = 1e-4: both compute in float32, but
with other shapes (each input encoded once at its block's padded length,
other rows in each decoder batch), so XLA sums in another order; observed
differences are ~1e-7 relative (6e-5 on scores near -400 at the small
shape).
"""

import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio
import tensorflow as tf

from t5x_runs import evaluator
from t5x_runs import losses
from t5x_runs import partitioning
from t5x_runs import scoring
from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config

SCORE_RTOL = 1e-5
SCORE_ATOL = 1e-4
COPA_KO = "korani_kobest_copa_ko_c1_or_c2_score_eval"
HELLASWAG_KO = "korani_kobest_hellaswag_ko_continue_the_text_score_eval"
HELLASWAG_EN_NUMBERED = (
    "korani_kobest_hellaswag_en_how_ends_numbered_score_eval")


def _tiny(vocabulary, **overrides):
  config = trainer.resolve_model_config(
      mt5_config("tiny", vocab_size=None, **overrides),
      seqio.SentencePieceVocabulary(str(vocabulary)))
  model = MT5(config)
  dummy = jnp.ones((1, 8), jnp.int32)
  mesh = partitioning.make_mesh(1)
  params = jax.device_put(
      nn.unbox(model.init(jax.random.PRNGKey(7), dummy, dummy)["params"]),
      partitioning.replicated(mesh))
  return model, params, mesh


@pytest.fixture(scope="module")
def tiny(session_vocab):
  return _tiny(session_vocab)


_SCORERS = {}  # Reused across tests: their compiled batch shapes too.


def _scorer(tiny_model, share, batch_size, max_input_length):
  key = (id(tiny_model), share, batch_size, max_input_length)
  if key not in _SCORERS:  # Holding tiny_model keeps its id unique.
    model, params, mesh = tiny_model
    _SCORERS[key] = tiny_model, scoring.make_scorer(
        model, params, mesh, batch_size, max_input_length, 64, share)
  return _SCORERS[key][1]


def _model_dataset(task: str, rows: int) -> tf.data.Dataset:
  ev = evaluator.make_evaluator(task, "validation", num_rows=rows)
  return ev.cached_model_datasets[task]


def _both(tiny_model, dataset, batch_size=16, max_input_length=1024):
  """({index: score} of each scorer, num_truncated of each)."""
  scores, truncated = {}, {}
  for share in (False, True):
    scorer = _scorer(tiny_model, share, batch_size, max_input_length)
    before = scorer.num_truncated
    scores[share] = dict(scorer(dataset))
    truncated[share] = scorer.num_truncated - before
  return scores, truncated


def _assert_same(scores):
  naive, shared = scores[False], scores[True]
  assert sorted(shared) == sorted(naive) and naive
  index = sorted(naive)
  np.testing.assert_allclose([shared[i] for i in index],
                             [naive[i] for i in index],
                             rtol=SCORE_RTOL, atol=SCORE_ATOL)


@pytest.mark.parametrize("task, rows", [
    (COPA_KO, 64), (HELLASWAG_KO, 96), (HELLASWAG_EN_NUMBERED, 48)])
def test_shared_scores_equal_naive_on_heldout_tasks(tiny, task, rows):
  dataset = _model_dataset(task, rows)
  scores, truncated = _both(tiny, dataset)
  assert len(scores[True]) == rows
  _assert_same(scores)
  assert truncated == {False: 0, True: 0}
  # Scores are real log-likelihoods, not a constant: choices differ.
  assert len({round(s, 3) for s in scores[True].values()}) > rows // 2


def test_truncated_inputs_score_the_same(tiny):
  """Inputs cut to 12 tokens: counted alike, scored alike."""
  dataset = _model_dataset(HELLASWAG_KO, 48)
  scores, truncated = _both(tiny, dataset, max_input_length=12)
  _assert_same(scores)
  assert truncated[True] == truncated[False] == 48  # Every input is longer.


@pytest.mark.parametrize("batch_size", [
    pytest.param(2, marks=pytest.mark.slow), 12])
def test_ragged_choices_score_the_same(tiny, batch_size):
  """Inputs with 1 to 4 choices; at batch_size 2 an input has more choices
  than a decoder batch holds, at 12 blocks end with partly filled batches."""
  # Example n (rows 4n..4n+3) keeps its choices c >= n % 4: 4, 3, 2, 1, ...
  dataset = _model_dataset(HELLASWAG_KO, 48).filter(
      lambda index, _: index % 4 >= (index // 4) % 4)
  features = next(dataset.batch(1000).as_numpy_iterator())[1]
  _, input_of_row = scoring.distinct_inputs(features["encoder_input_tokens"])
  assert set(np.bincount(input_of_row).tolist()) == {1, 2, 3, 4}
  scores, _ = _both(tiny, dataset, batch_size=batch_size)
  _assert_same(scores)


@pytest.mark.slow
def test_remat_model_scores_the_same(session_vocab):
  """The cross-attention projections are shared through nn.remat too."""
  dataset = _model_dataset(COPA_KO, 24)
  scores, _ = _both(_tiny(session_vocab, remat_policy="full"), dataset)
  _assert_same(scores)


def test_each_distinct_input_is_encoded_once(tiny):
  model, params, mesh = tiny
  dataset = _model_dataset(HELLASWAG_KO, 200)
  features = next(dataset.batch(1000).as_numpy_iterator())[1]
  first_rows, input_of_row = scoring.distinct_inputs(
      features["encoder_input_tokens"])
  assert len(first_rows) == 50  # 4 choices per example, one input each.
  scorer = scoring.SharedEncoderScorer(model, params, mesh, 16, 1024, 64)
  lengths = (features["encoder_input_tokens"] > 0).sum(axis=1)
  targets = (features["decoder_target_tokens"] > 0).sum(axis=1)
  blocks, capacity = scorer.blocks(lengths, targets, input_of_row)
  encoded = np.concatenate(blocks)
  assert sorted(encoded.tolist()) == list(range(50))  # Each exactly once.
  assert capacity == 4  # 16 rows / 4 choices.
  assert all(len(b) == 4 for b in blocks[:-1])


def test_distinct_inputs_numbers_in_order_of_appearance():
  first, input_of_row = scoring.distinct_inputs(
      np.array([[5, 1, 0], [5, 1, 0], [7, 1, 0], [5, 1, 0], [7, 2, 1]]))
  assert first.tolist() == [0, 2, 4]
  assert input_of_row.tolist() == [0, 0, 1, 0, 2]


def test_a_choice_longer_than_max_target_length_is_a_config_error(tiny):
  model, params, mesh = tiny
  scorer = scoring.SharedEncoderScorer(model, params, mesh, 8, 64, 4)
  features = {k: np.ones((2, 6), np.int32) for k in (
      "encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
      "decoder_loss_weights")}
  with pytest.raises(scoring.errors.ConfigError, match="max_target_length=4"):
    scorer.score_features(features)


# Run in a subprocess with 4 host devices: (4 data x 1 model) and (2 data x
# 2 model) meshes; decoding is compared with one device's too.
@pytest.mark.slow
def test_sorted_bucketed_scores_equal_plain_scores(sentineg_run):
  """The scorer's length sorting and cutting changes nothing but speed."""
  model_dir, _ = sentineg_run
  config = trainer.load_model_config(str(model_dir))
  mesh = partitioning.make_mesh(1)
  params, _ = evaluator.restore_params(str(model_dir), config, mesh)
  ev = seqio.Evaluator(
      "korani_kobest_copa_ko_c1_or_c2_score_eval",
      feature_converter=seqio.EncDecFeatureConverter(pack=False),
      eval_split="validation")
  model_ds = next(iter(ev.cached_model_datasets.values())).take(100)
  scorer = scoring.ChoiceScorer(MT5(config), params, mesh, batch_size=16,
                                max_input_length=1024, max_target_length=256)
  got = dict(scorer(model_ds))
  model = MT5(config)
  for index, ex in model_ds.batch(100).as_numpy_iterator():
    logits = model.apply({"params": params}, ex["encoder_input_tokens"],
                         ex["decoder_input_tokens"], ex["decoder_target_tokens"])
    want = losses.sequence_log_likelihood(
        logits, jnp.asarray(ex["decoder_target_tokens"]),
        jnp.asarray(ex["decoder_loss_weights"]))
  np.testing.assert_allclose([got[i] for i in index.tolist()], np.asarray(want),
                             rtol=1e-5, atol=1e-4)
  assert scorer.num_truncated == 0


def test_bucket_lengths():
  assert [scoring.bucket_length(n, 1024) for n in (1, 9, 13, 17, 33, 200, 900, 5000)] == [
      8, 12, 16, 24, 48, 256, 1024, 1024]
  assert [scoring.bucket_length(n, 64, fine=False) for n in (1, 9, 17, 40, 99)] == [
      8, 16, 32, 64, 64]


_MULTIDEVICE = """
import flax.linen as nn, jax, jax.numpy as jnp, numpy as np
from t5x_runs import decoding, partitioning, scoring
from t5x_runs.models import MT5, mt5_config
assert jax.device_count() == 4
model = MT5(mt5_config("tiny", vocab_size=512))
dummy = jnp.ones((1, 8), jnp.int32)
boxed = model.init(jax.random.PRNGKey(3), dummy, dummy)["params"]
rng = np.random.default_rng(0)
inputs = rng.integers(2, 512, (30, 40)) * (np.arange(40) < rng.integers(
    5, 41, (30, 1)))
rows = np.repeat(np.arange(30), 3)  # 3 choices per input, 90 rows.
targets = rng.integers(2, 512, (90, 9)) * (np.arange(9) < rng.integers(
    1, 10, (90, 1)))
features = {"encoder_input_tokens": inputs[rows].astype(np.int32),
            "decoder_target_tokens": targets.astype(np.int32),
            "decoder_input_tokens": np.pad(targets, [(0, 0), (1, 0)])[
                :, :-1].astype(np.int32),
            "decoder_loss_weights": (targets > 0).astype(np.int32)}
scores = {}
for partitions in (1, 2):
  mesh = partitioning.make_mesh(partitions)
  with mesh, nn.logical_axis_rules(partitioning.standard_logical_axis_rules()):
    params = jax.device_put(nn.unbox(boxed), partitioning.param_shardings(
        boxed, mesh))
    for share in (False, True):
      scorer = scoring.make_scorer(model, params, mesh, 8, 32, 16, share)
      scores[(partitions, share)] = scorer.score_features(features)
reference = scores[(1, False)]
for key, got in scores.items():
  np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-4,
                             err_msg=str(key))
# Decoding: 16 inputs of 16 tokens (one length bucket), greedy on three
# meshes, beam search on two.
decode_inputs = rng.integers(2, 512, (16, 16)).astype(np.int32)
tokens = {}
for name, mesh, beams in (
    ("1", partitioning.make_mesh(1, jax.devices()[:1]), (1, 2)),
    ("4x1", partitioning.make_mesh(1), (1,)),
    ("2x2", partitioning.make_mesh(2), (1, 2))):
  with mesh, nn.logical_axis_rules(partitioning.standard_logical_axis_rules()):
    params = jax.device_put(nn.unbox(boxed), partitioning.param_shardings(
        boxed, mesh))
    for beam in beams:
      predictor = decoding.Predictor(model, params, 8, 16, 5, beam_size=beam,
                                     mesh=mesh)
      tokens[(name, beam)] = predictor.predict(decode_inputs)
for (name, beam), got in tokens.items():
  np.testing.assert_array_equal(got, tokens[("1", beam)],
                                err_msg=f"mesh {name}, beam {beam}")
assert (tokens[("1", 1)] > 0).any()
print("OK", len(reference), float(reference.min()), "decoded", len(tokens))
"""


@pytest.mark.slow
def test_scorers_and_decoding_on_sharded_meshes_equal_one_device():
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  result = subprocess.run([sys.executable, "-c", _MULTIDEVICE], env=env,
                          capture_output=True, text=True, timeout=600,
                          check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  assert result.stdout.startswith("OK 90")
