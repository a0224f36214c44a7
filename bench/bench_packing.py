"""Benchmark: packing vs padding, and the input pipeline vs the trainer.

On a real KORANI mixture (default ``korani_kobest_train``, with a 2000-piece
vocabulary trained on it) and the tiny model (``mt5_config('tiny')`` sized
to that vocabulary: 2048), two batch recipes of ``trainer.train_batches``:

    packed  pack=True,  lengths 1024/256 (ours: examples packed into rows)
    padded  pack=False, lengths 768/256  (the official recipe: every example
                                          padded to 768 input, 256 target)

For each, ``--pipeline_batches`` batches are read from the numpy iterator
and their non-padding tokens (input tokens > 0 plus target loss weights) and
examples (segments; one per row when padded) counted. For the packed recipe
the reading is timed, after warm-up batches of ``--warmup_examples``
examples (enough to fill the shuffle buffer of every task of the mixture:
until then a task's first example costs a buffer's worth). Then
the trainer's compiled step (``bench_throughput.TrainerStep``) is timed on
the first of those same batches, cycling, and

    useful tokens/s       = mean non-padding tokens per batch / median step s
    pipeline examples/s   = examples in the timed batches / iteration time
    consumption examples/s = mean examples per batch / median step s

    KORANI_DATA_DIR=../shared/data/raw .venv/bin/python bench/bench_packing.py

prints one JSON line with both recipes (``bench/run_all.py`` reads it).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (REPO, os.path.dirname(os.path.abspath(__file__))):
  if _path not in sys.path:
    sys.path.insert(0, _path)

import bench_throughput  # pylint: disable=wrong-import-position

# The input pipeline is timed on the packed recipe only (the one we train
# with); the padded batches are only counted and stepped on.
RECIPES = {
    "packed": {"pack": True, "lengths": {"inputs": 1024, "targets": 256},
               "time_pipeline": True},
    "padded": {"pack": False, "lengths": {"inputs": 768, "targets": 256},
               "time_pipeline": False},
}


def batch_counts(batch: dict[str, np.ndarray]) -> tuple[int, int]:
  """(non-padding tokens, examples) of one batch.

  Non-padding tokens are input tokens > 0 plus target tokens with loss
  weight 1. Examples are the segments of a packed batch (distinct non-zero
  ``decoder_segment_ids`` per row) or the rows with a target when unpacked.
  Example: a packed row with decoder_segment_ids [1, 1, 2, 2, 2, 0] holds 2.
  """
  tokens = int((batch["encoder_input_tokens"] > 0).sum()
               + batch["decoder_loss_weights"].sum())
  if "decoder_segment_ids" in batch:
    examples = sum(len(np.unique(row[row > 0]))
                   for row in batch["decoder_segment_ids"])
  else:
    examples = int((batch["decoder_loss_weights"].sum(axis=1) > 0).sum())
  return tokens, examples


def measure_recipe(mixture: str, config, recipe: dict, batch_size: int,
                   warmup_examples: int, pipeline_batches: int,
                   step_batches: int, step_warmup: int, max_steps: int,
                   budget_s: float) -> dict:
  """Pipeline and step measurements of one recipe (see the module docstring)."""
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  dataset = trainer.train_batches(mixture, recipe["lengths"], batch_size,
                                  seed=0, pack=recipe["pack"])
  iterator = dataset.as_numpy_iterator()
  timed = {}
  try:
    if recipe["time_pipeline"]:
      start, examples = time.perf_counter(), 0
      while examples < warmup_examples:
        examples += batch_counts(next(iterator))[1]
      timed["pipeline_warmup_s"] = time.perf_counter() - start
    start = time.perf_counter()
    batches = [next(iterator) for _ in range(pipeline_batches)]
    pipeline_s = time.perf_counter() - start
  finally:
    del iterator  # free tf.data's workers now (see trainer._TrainLoop.run)
  counts = [batch_counts(b) for b in batches]
  tokens_per_batch = statistics.mean(t for t, _ in counts)
  examples_per_batch = statistics.mean(e for _, e in counts)
  slots = sum(batches[0][k].size for k in ("encoder_input_tokens",
                                           "decoder_target_tokens"))

  step = bench_throughput.TrainerStep(config, batches[0])
  on_device = [step.device_batch(b) for b in batches[:step_batches]]
  times = bench_throughput.time_steps(
      lambda i: step(on_device[i % len(on_device)], i), step_warmup,
      max_steps, budget_s)
  step_s = statistics.median(times)
  if recipe["time_pipeline"]:
    timed.update(
        pipeline_batches=pipeline_batches, pipeline_s=pipeline_s,
        pipeline_examples_per_s=examples_per_batch * pipeline_batches
                                / pipeline_s,
        pipeline_rows_per_s=batch_size * pipeline_batches / pipeline_s)
  return {
      "pack": recipe["pack"], "lengths": recipe["lengths"],
      "batch_size": batch_size,
      "token_slots_per_batch": slots,
      "useful_tokens_per_batch": tokens_per_batch,
      "fill": tokens_per_batch / slots,
      "examples_per_batch": examples_per_batch,
      **timed,
      "compile_s": step.compile_s, "step_times": times,
      "median_step_s": step_s,
      "useful_tokens_per_s": tokens_per_batch / step_s,
      "consumption_examples_per_s": examples_per_batch / step_s,
      "consumption_rows_per_s": batch_size / step_s,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="korani_kobest_train")
  parser.add_argument("--vocab_size", type=int, default=2000)
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--recipes", default="packed,padded")
  parser.add_argument("--warmup_examples", type=int, default=1000,
                      help="examples read before timing the pipeline")
  parser.add_argument("--pipeline_batches", type=int, default=100)
  parser.add_argument("--step_batches", type=int, default=8,
                      help="distinct batches the step cycles over")
  parser.add_argument("--step_warmup", type=int, default=2)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--budget_s", type=float, default=40.0)
  args = parser.parse_args()

  import seqio  # pylint: disable=import-outside-toplevel
  import mixtures  # pylint: disable=import-outside-toplevel,unused-import
  # pylint: disable=import-outside-toplevel
  from korani_tasks import text, vocab
  from t5x_runs import trainer
  from t5x_runs.models import mt5_config
  # pylint: enable=import-outside-toplevel

  start = time.perf_counter()
  os.environ[vocab.VOCAB_ENV] = str(text.trained_vocabulary(
      args.mixture, vocab_size=args.vocab_size))
  vocabulary_s = time.perf_counter() - start
  config = trainer.resolve_model_config(
      mt5_config("tiny", vocab_size=None),
      seqio.SentencePieceVocabulary(vocab.vocabulary_path()))
  result = {"mixture": args.mixture, "vocab_size": config.vocab_size,
            "vocabulary_pieces": args.vocab_size,
            "vocabulary_s": vocabulary_s}
  for name in args.recipes.split(","):
    result[name] = measure_recipe(
        args.mixture, config, RECIPES[name], args.batch_size,
        args.warmup_examples, args.pipeline_batches, args.step_batches,
        args.step_warmup, args.steps, args.budget_s)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
