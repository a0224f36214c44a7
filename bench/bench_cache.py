"""Benchmark: the input pipeline from seqio's offline cache vs on the fly.

The tasks of a mixture or task (default ``korani_kobest_train``) are cached
with seqio's standard Beam job on the DirectRunner (``--cache_dir``; skipped
for tasks already cached there), then ``trainer.train_batches`` (packed,
1024/256, batch 8) is read ``--batches`` batches at a time after
``--warmup_batches``, alternately on the fly (templates rendered in
``tf.py_function``) and from the cache (``use_cached=True``), ``--rounds``
times each, in this one process::

    KORANI_DATA_DIR=../shared/data/raw .venv/bin/python bench/bench_cache.py \\
        --cache_dir /tmp/korani_cache

prints one JSON line: examples/s (packed segments) of each and their ratio
(median over rounds), the cache job's wall time.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (REPO, os.path.dirname(os.path.abspath(__file__))):
  if _path not in sys.path:
    sys.path.insert(0, _path)

import bench_packing  # pylint: disable=wrong-import-position


def cache_tasks(tasks: list[str], cache_dir: str) -> float:
  """Runs seqio's cache job for `tasks` into `cache_dir`; returns seconds."""
  start = time.perf_counter()
  subprocess.run(
      [sys.executable, "-m", "seqio.scripts.cache_tasks_main",
       "--module_import=korani_tasks", "--module_import=mixtures",
       "--tasks=" + ",".join(tasks), f"--output_cache_dir={cache_dir}",
       "--pipeline_options=--runner=DirectRunner", "--min_shards=4"],
      check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return time.perf_counter() - start


def examples_per_second(mixture: str, use_cached: bool, batches: int,
                        warmup: int, seed: int) -> float:
  """Packed examples (segments) per second read from train_batches."""
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  ds = trainer.train_batches(
      mixture, {"inputs": 1024, "targets": 256}, batch_size=8, seed=seed,
      use_cached=use_cached)
  it = ds.as_numpy_iterator()
  for _ in range(warmup):
    next(it)
  start, examples = time.perf_counter(), 0
  for _ in range(batches):
    examples += bench_packing.batch_counts(next(it))[1]
  return examples / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="korani_kobest_train")
  parser.add_argument("--cache_dir", required=True)
  parser.add_argument("--batches", type=int, default=50)
  parser.add_argument("--warmup_batches", type=int, default=20)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--vocab_size", type=int, default=2000)
  args = parser.parse_args()

  import seqio  # pylint: disable=import-outside-toplevel
  import mixtures  # pylint: disable=import-outside-toplevel,unused-import
  from korani_tasks import text, vocab  # pylint: disable=import-outside-toplevel
  vocab_path = text.trained_vocabulary(args.mixture, vocab_size=args.vocab_size)
  # The tasks' vocabulary, here and in the cache job's processes.
  os.environ[vocab.VOCAB_ENV] = str(vocab_path)
  tasks = [t.name for t in seqio.get_subtasks(
      seqio.get_mixture_or_task(args.mixture))]
  missing = [t for t in tasks if not os.path.exists(
      os.path.join(args.cache_dir, t, "COMPLETED"))]
  job_s = cache_tasks(missing, args.cache_dir) if missing else None
  seqio.add_global_cache_dirs([args.cache_dir])

  rates = {"on_the_fly": [], "cached": []}
  for round_ in range(args.rounds):
    for name, use_cached in (("on_the_fly", False), ("cached", True)):
      rates[name].append(examples_per_second(
          args.mixture, use_cached, args.batches, args.warmup_batches,
          seed=round_))
  fly = statistics.median(rates["on_the_fly"])
  cached = statistics.median(rates["cached"])
  print(json.dumps({
      "mixture": args.mixture, "tasks": len(tasks),
      "tasks_cached_now": len(missing), "cache_job_s": job_s,
      "batches": args.batches, "warmup_batches": args.warmup_batches,
      "rounds": args.rounds, "on_the_fly_examples_per_s": fly,
      "cached_examples_per_s": cached, "ratio": cached / fly,
      "all": rates}))


if __name__ == "__main__":
  main()
