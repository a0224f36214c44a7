"""Benchmark: shared-encoder rank scoring against one full pass per choice.

`t5x_runs.scoring.ChoiceScorer` (the naive path, t5x's `score_batch`) runs
the encoder and decoder on every (input, choice) row; `SharedEncoderScorer`
runs the encoder once per distinct input and scores the input's choices
against it. This measures both, in examples (not choices) per second, on
4-choice tasks (KoBEST HellaSwag score-eval templates, Korean and English)
with an mT5 of the `small` shape, randomly initialized (speed does not
depend on the weights), in one run on the same machine, and checks that the
scores agree. Compilation is not timed: every batch shape is compiled before
the clock starts, and of two passes over each task the faster counts.

    KORANI_DATA_DIR=../shared/data/raw .venv/bin/python \\
        bench/bench_shared_encoder.py [--vocab PATH] [--tasks 4] \\
        [--max_examples 48]

Without --vocab it trains (once, then cached) the 4000-piece vocabulary of
`korani_kobest_train`, as the demo does. Prints a table, the ratio and the
XLA FLOP ratio of the two batch schedules (independent of a busy CPU); add
the result to bench/RESULTS.md.
"""

import argparse
import contextlib
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
from t5x_runs import batch_eval
from t5x_runs import partitioning
from t5x_runs import scoring
from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config

HELLASWAG = "korani_kobest_hellaswag_"
SCORE_RTOL, SCORE_ATOL = 1e-5, 1e-4  # As tests/test_scoring.py.


@contextlib.contextmanager
def _compile_only(scorer, flops: dict):
  """Within: the scorer compiles each batch shape it meets, runs nothing.

  `flops[name]` sums XLA's FLOP estimate of every call the scorer makes.
  """
  names = [n for n in ("_encode", "_score_batch") if hasattr(scorer, n)]
  real = {n: getattr(scorer, n) for n in names}
  compiled = {}

  def stand_in(name):
    def call(*args):
      key = (name, str(jax.tree.map(lambda a: (a.shape, str(a.dtype)),
                                    args[1:])))
      if key not in compiled:
        compiled[key] = real[name].lower(*args).compile()
      cost = compiled[key].cost_analysis()
      cost = cost[0] if isinstance(cost, list) else cost
      flops[name] = flops.get(name, 0.0) + cost.get("flops", 0.0)
      out = jax.eval_shape(real[name], *args)
      return jnp.zeros(out.shape, out.dtype)
    return call

  for name in names:
    setattr(scorer, name, stand_in(name))
  try:
    yield
  finally:
    for name in names:
      setattr(scorer, name, real[name])


def _features(dataset):
  chunks = list(tfds.as_numpy(dataset.batch(4096)))
  return {k: np.concatenate([c[1][k] for c in chunks]) for k in chunks[0][1]}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--vocab", default=None,
                      help="SentencePiece model (default: trained on "
                      "korani_kobest_train, 4000 pieces)")
  parser.add_argument("--size", default="small")
  parser.add_argument("--mixture", default="korani_kobest_heldout_score_eval")
  parser.add_argument("--tasks", type=int, default=4,
                      help="HellaSwag templates, spread over the mixture's "
                      "sorted HellaSwag tasks")
  parser.add_argument("--max_examples", type=int, default=48,
                      help="first N examples (4 choices each) per task")
  parser.add_argument("--passes", type=int, default=2,
                      help="timed passes per task and scorer; the fastest "
                      "counts (the first may still trace and dispatch)")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--max_input_length", type=int, default=1024)
  args = parser.parse_args()

  os.environ[vocab.VOCAB_ENV] = str(
      args.vocab or text.trained_vocabulary("korani_kobest_train"))
  config = trainer.resolve_model_config(
      mt5_config(args.size, vocab_size=None, dropout_rate=0.0),
      seqio.SentencePieceVocabulary(vocab.vocabulary_path()))
  model = MT5(config)
  mesh = partitioning.make_mesh(1)
  dummy = jnp.ones((1, 8), jnp.int32)
  params = jax.device_put(
      nn.unbox(model.init(jax.random.PRNGKey(0), dummy, dummy)["params"]),
      partitioning.replicated(mesh))
  tasks = sorted(t.name for t in seqio.get_subtasks(
      seqio.get_mixture_or_task(args.mixture)) if t.name.startswith(HELLASWAG))
  stride = max(1, len(tasks) // args.tasks)
  tasks = tasks[::stride][:args.tasks]
  scorers = {
      "naive": scoring.ChoiceScorer(model, params, mesh, args.batch_size,
                                    args.max_input_length, 512),
      "shared": scoring.SharedEncoderScorer(
          model, params, mesh, args.batch_size, args.max_input_length, 512)}

  seconds = {name: 0.0 for name in scorers}
  flops = {name: {} for name in scorers}
  examples = choices = 0
  print(f"mT5 {args.size} (vocab {config.vocab_size}), batch "
        f"{args.batch_size}, first {args.max_examples} examples per task")
  print(f"{'task':58s} {'ex':>4s} {'in len':>6s} {'naive ex/s':>10s} "
        f"{'shared ex/s':>11s} {'ratio':>6s} {'FLOPs':>6s}")
  for name in tasks:
    evaluator = batch_eval.task_evaluator(name, "validation",
                                          args.max_examples)
    features = _features(evaluator.cached_model_datasets[name])
    rows = len(features["encoder_input_tokens"])
    num = len({int(ex["idx"][0]) for ex in
               tfds.as_numpy(evaluator.cached_task_datasets[name])})
    scores, took = {}, {}
    before = {k: sum(v.values()) for k, v in flops.items()}
    for label, scorer in scorers.items():
      with _compile_only(scorer, flops[label]):
        scorer.score_features(features)
      took[label] = float("inf")
    for _ in range(args.passes):  # Alternating: a busy spell hits both.
      for label, scorer in scorers.items():
        tick = time.perf_counter()
        scores[label] = scorer.score_features(features)
        took[label] = min(took[label], time.perf_counter() - tick)
    for label in scorers:
      seconds[label] += took[label]
    np.testing.assert_allclose(scores["shared"], scores["naive"],
                               rtol=SCORE_RTOL, atol=SCORE_ATOL)
    examples += num
    choices += rows
    length = (features["encoder_input_tokens"] > 0).sum(axis=1).mean()
    task_flops = {k: sum(v.values()) - before[k] for k, v in flops.items()}
    print(f"{name:58s} {num:4d} {length:6.0f} {num / took['naive']:10.2f} "
          f"{num / took['shared']:11.2f} "
          f"{took['naive'] / took['shared']:5.2f}x "
          f"{task_flops['naive'] / task_flops['shared']:5.2f}x", flush=True)
  ratio = seconds["naive"] / seconds["shared"]
  total_flops = {k: sum(v.values()) for k, v in flops.items()}
  print(f"\n{examples} examples ({choices} choices) of {len(tasks)} tasks: "
        f"naive {examples / seconds['naive']:.2f} ex/s, shared "
        f"{examples / seconds['shared']:.2f} ex/s: ratio {ratio:.2f}x "
        "(scores agree)")
  print(f"XLA FLOPs of the batch schedules: naive "
        f"{total_flops['naive'] / 1e12:.2f} T, shared "
        f"{total_flops['shared'] / 1e12:.2f} T: ratio "
        f"{total_flops['naive'] / total_flops['shared']:.2f}x")
  print(f"machine: {platform.processor() or platform.machine()}, "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), "
        f"jax {jax.__version__}")


if __name__ == "__main__":
  main()
