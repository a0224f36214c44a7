"""Cached decoding: equal to naive decoding, beam search, and evaluate()."""

import itertools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio

from korani_tasks import sources
from korani_tasks import tasks
from t5x_runs import decoding
from t5x_runs import evaluator
from t5x_runs import losses
from t5x_runs.models import MT5
from t5x_runs.models import mt5_config

MAX_LENGTH = 12


@pytest.fixture(scope="module")
def tiny():
  """A random tiny model, 3 inputs (one padded), and its greedy decoding.

  With this seed row 2 emits EOS at step 3 and rows 0 and 1 never do, so the
  loop runs to MAX_LENGTH with one row finished early.
  """
  model = MT5(mt5_config("tiny", vocab_size=64, dropout_rate=0.0))
  inputs = np.random.RandomState(0).randint(2, 64, (3, 10)).astype(np.int32)
  inputs[1, 6:] = 0
  params = nn.unbox(model.init(jax.random.key(0), inputs, inputs[:, :4])
                    ["params"])
  tokens, logits = jax.jit(
      lambda p, x: decoding.greedy_decode(model, p, x, MAX_LENGTH,
                                          return_logits=True))(params, inputs)
  return model, params, inputs, np.asarray(tokens), np.asarray(logits)


def _length(row: np.ndarray) -> int:
  """Decoded length: through the first EOS, else the whole row."""
  eos = np.flatnonzero(row == decoding.EOS_ID)
  return int(eos[0]) + 1 if len(eos) else len(row)


def _shift_right(tokens: np.ndarray) -> np.ndarray:
  return np.pad(tokens, [(0, 0), (1, 0)])[:, :-1]


def test_cached_greedy_equals_naive_greedy(tiny):
  model, params, inputs, tokens, _ = tiny
  # Naive: rerun the whole decoder on the prefix, argmax of the last position.
  prefix = np.zeros((len(inputs), 1), np.int32)
  for step in range(MAX_LENGTH):
    logits = model.apply({"params": params}, inputs, prefix)
    chosen = np.argmax(np.asarray(logits[:, step]), axis=-1).astype(np.int32)
    prefix = np.concatenate([prefix, chosen[:, None]], axis=1)
  naive = prefix[:, 1:]
  assert [_length(row) for row in tokens] == [MAX_LENGTH, MAX_LENGTH, 3]
  for row, naive_row in zip(tokens, naive):
    n = _length(naive_row)
    np.testing.assert_array_equal(row[:n], naive_row[:n])
    assert not row[n:].any()  # zeros after EOS


def test_step_logits_equal_teacher_forced_logits(tiny):
  model, params, inputs, tokens, step_logits = tiny
  assert (tokens[:, :2] > 0).all()
  forced = np.asarray(model.apply({"params": params}, inputs,
                                  _shift_right(tokens), tokens))
  for row in range(len(tokens)):
    n = _length(tokens[row])
    np.testing.assert_allclose(step_logits[row, :n], forced[row, :n],
                               atol=1e-5, rtol=0)


def test_beam_of_one_without_penalty_is_greedy(tiny):
  model, params, inputs, tokens, _ = tiny
  beam_tokens, scores = decoding.beam_search(model, params, inputs,
                                             MAX_LENGTH, beam_size=1, alpha=0.0)
  beam_tokens = np.asarray(beam_tokens)
  # Row 2 ends with EOS greedily; a beam of one finds the same sequence.
  np.testing.assert_array_equal(beam_tokens[2], tokens[2])
  # Every returned score is the teacher-forced log-likelihood of its tokens.
  logits = model.apply({"params": params}, inputs,
                       _shift_right(beam_tokens), beam_tokens)
  likelihood = losses.sequence_log_likelihood(
      logits, beam_tokens, (beam_tokens > 0).astype(np.float32))
  np.testing.assert_allclose(scores, likelihood, atol=1e-4)


def test_wide_beam_finds_the_exact_best_sequence():
  """Vocabulary 5, length 3, 25 beams: the search is exhaustive, so it must
  return the best of all 21 finished sequences, by the length-penalized
  score, found here by brute force."""
  vocab, length, alpha = 5, 3, 0.6
  model = MT5(mt5_config("tiny", vocab_size=vocab, dropout_rate=0.0))
  inputs = np.array([[3, 4, 2, 3], [2, 2, 0, 0]], np.int32)
  params = nn.unbox(model.init(jax.random.key(1), inputs, inputs)["params"])
  tokens, scores = decoding.beam_search(model, params, inputs, length,
                                        beam_size=vocab ** (length - 1),
                                        alpha=alpha)
  non_eos = [t for t in range(vocab) if t != decoding.EOS_ID]
  candidates = [list(prefix) + [decoding.EOS_ID]
                for n in range(length)
                for prefix in itertools.product(non_eos, repeat=n)]
  assert len(candidates) == 21
  for row in range(len(inputs)):
    padded = np.array([c + [0] * (length - len(c)) for c in candidates],
                      np.int32)
    # No targets: every position is real, as in decoding (0 can be a token).
    logits = model.apply({"params": params},
                         np.repeat(inputs[row:row + 1], len(padded), 0),
                         _shift_right(padded))
    log_probs = np.asarray(jax.nn.log_softmax(logits))
    sums = np.array([
        sum(log_probs[i, t, tok] for t, tok in enumerate(c))
        for i, c in enumerate(candidates)])
    penalized = sums / np.array([
        float(decoding.brevity_penalty(alpha, len(c))) for c in candidates])
    best = int(np.argmax(penalized))
    np.testing.assert_array_equal(tokens[row], padded[best])
    assert float(scores[row]) == pytest.approx(penalized[best], abs=1e-4)


def test_predictor_batches_by_length_and_compiles_once_per_bucket(tiny):
  model, params, inputs, tokens, _ = tiny
  predictor = decoding.Predictor(model, params, batch_size=2,
                                 max_input_length=16,
                                 max_decode_length=MAX_LENGTH)
  # Wider and shuffled inputs: rows are sorted, cut to the bucket (8 or 12
  # tokens here), padded to the batch size, and returned in input order.
  order = [2, 1, 0, 1]
  wide = np.pad(inputs, [(0, 0), (0, 6)])[order]
  np.testing.assert_array_equal(predictor.predict(wide), tokens[order])
  # Row 1 has 6 tokens (bucket 8), rows 0 and 2 have 10 (bucket 12): two
  # batches, two compilations. One row more: padded to a batch, no new one.
  assert predictor._decode._cache_size() == 2  # pylint: disable=protected-access
  np.testing.assert_array_equal(predictor.predict(wide[:1]), tokens[[2]])
  assert predictor._decode._cache_size() == 2  # pylint: disable=protected-access
  assert predictor.num_truncated == 0


def _first_examples_task(name: str, num_examples: int) -> str:
  """A copy of a generation task reading its first validation examples."""
  sliced = f"{name}_first{num_examples}"
  if sliced not in seqio.TaskRegistry.names():
    task = seqio.get_mixture_or_task(name)
    seqio.TaskRegistry.add(
        sliced,
        source=sources.KoraniTfdsSource(
            tasks.task_info(name).dataset,
            {"validation": f"validation[:{num_examples}]"}),
        preprocessors=task.preprocessors,
        output_features=task.output_features,
        metric_fns=task.metric_fns)
  return sliced


@pytest.mark.slow
def test_evaluate_decodes_a_generation_task(sentineg_run, raw_data_dir,
                                            tmp_path):
  if not (raw_data_dir / "korquad1" / "KorQuAD_v1.0_dev.json").exists():
    pytest.skip("KorQuAD 1.0 dev file not in the data folder")
  model_dir, _ = sentineg_run
  name = _first_examples_task("korani_korquad1_ko_context_question_answer", 4)
  rows = evaluator.evaluate(model_dir=str(model_dir),
                            mixture_or_task_name=name,
                            output_dir=str(tmp_path), max_decode_length=8,
                            batch_size=4, progress=False)
  assert [(r.task, r.metric, r.num_examples) for r in rows] == [
      (name, "rougeL", 4)]
  assert 0.0 <= rows[0].value <= 100.0
  written = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
  assert [row["metric"] for row in written] == ["rougeL"]
