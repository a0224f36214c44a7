"""Benchmark: length-sorted, bucketed scoring against padding to the longest.

seqio.Evaluator pads every example of an evaluation to the longest one; the
`scoring.ChoiceScorer` sorts a task's examples by length and cuts each batch
to a bucketed length. Both give the same scores (tests/test_scoring.py);
this measures the speed, in choices per second, on the real held-out KoBEST
score-eval tasks with a tiny mT5 (random weights: speed does not depend on
them), in one run on the same machine.

    KORANI_DATA_DIR=../shared/data/raw .venv/bin/python bench/bench_eval_scoring.py

Prints a table and the ratio; add the line to bench/RESULTS.md.
"""

import argparse
import os
import platform
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import seqio
import tensorflow_datasets as tfds

import mixtures  # pylint: disable=unused-import
from korani_tasks import text
from korani_tasks import vocab
from t5x_runs import losses
from t5x_runs import partitioning
from t5x_runs import scoring
from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config


def _padded_scores(score, params, features, batch_size):
  """The plain path: fixed batches padded to the eval set's longest example."""
  num = len(features["encoder_input_tokens"])
  out = []
  for start in range(0, num, batch_size):
    batch = {k: v[start:start + batch_size] for k, v in features.items()}
    rows = len(batch["encoder_input_tokens"])
    batch = {k: np.pad(v, [(0, batch_size - rows), (0, 0)])
             for k, v in batch.items()}
    out.append(np.asarray(score(params, batch))[:rows])
  return np.concatenate(out)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="korani_kobest_heldout_score_eval")
  parser.add_argument("--tasks", type=int, default=6,
                      help="score the first N tasks of the mixture")
  parser.add_argument("--batch_size", type=int, default=64)
  args = parser.parse_args()

  os.environ[vocab.VOCAB_ENV] = str(
      text.trained_vocabulary("korani_kobest_train"))
  config = trainer.resolve_model_config(
      mt5_config("tiny", vocab_size=None),
      seqio.SentencePieceVocabulary(vocab.vocabulary_path()))
  model = MT5(config)
  dummy = jnp.ones((1, 8), jnp.int32)
  params = nn.unbox(model.init(jax.random.PRNGKey(0), dummy, dummy)["params"])
  mesh = partitioning.make_mesh(1)
  ev = seqio.Evaluator(args.mixture, seqio.EncDecFeatureConverter(pack=False),
                       eval_split="validation")
  names = sorted(ev.cached_model_datasets)[:args.tasks]

  def score(p, batch):
    logits = model.apply({"params": p}, batch["encoder_input_tokens"],
                         batch["decoder_input_tokens"],
                         batch["decoder_target_tokens"])
    return losses.sequence_log_likelihood(
        logits, batch["decoder_target_tokens"], batch["decoder_loss_weights"])
  plain = jax.jit(score)
  scorer = scoring.ChoiceScorer(model, params, mesh, args.batch_size,
                                max_input_length=4096, max_target_length=512)

  totals = {"padded to longest": 0.0, "sorted + bucketed": 0.0}
  num_choices = 0
  print(f"{'task':62s} {'choices':>7s} {'padded/s':>9s} {'bucketed/s':>10s}")
  for name in names:
    ds = ev.cached_model_datasets[name]
    chunks = list(tfds.as_numpy(ds.batch(4096)))
    features = {k: np.concatenate([c[1][k] for c in chunks]) for k in chunks[0][1]}
    n = len(features["encoder_input_tokens"])
    # Warm up both paths (compilation is not what we measure).
    _padded_scores(plain, params, {k: v[:args.batch_size] for k, v in features.items()},
                   args.batch_size)
    scorer(ds)
    tick = time.perf_counter()
    a = _padded_scores(plain, params, features, args.batch_size)
    t_plain = time.perf_counter() - tick
    tick = time.perf_counter()
    b = dict(scorer(ds))
    t_bucket = time.perf_counter() - tick
    np.testing.assert_allclose([b[i] for i in range(n)], a, rtol=1e-4, atol=1e-3)
    totals["padded to longest"] += t_plain
    totals["sorted + bucketed"] += t_bucket
    num_choices += n
    print(f"{name:62s} {n:7d} {n / t_plain:9.1f} {n / t_bucket:10.1f}")
  ratio = totals["padded to longest"] / totals["sorted + bucketed"]
  print(f"\n{num_choices} choices: padded {num_choices / totals['padded to longest']:.1f}/s, "
        f"sorted+bucketed {num_choices / totals['sorted + bucketed']:.1f}/s, "
        f"ratio {ratio:.2f}x")
  print(f"machine: {platform.processor() or platform.machine()}, "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), "
        f"jax {jax.__version__}")


if __name__ == "__main__":
  main()
