"""Benchmark: bytes of data-iterator state per process per checkpoint save.

Before: a checkpoint saves each process's tf.data iterator of
``trainer.train_batches`` (packed 1024/256, batch 8 per process); its state
is mostly one shuffle buffer per task. After: ``trainer.train`` saves the
iterator only while it is at most ``max_data_iterator_bytes`` (50 MB), else
the data position (the checkpoint's step; `checkpoints.DataPositionSaver`).

Building the on-the-fly pipeline of all 140 (280) tasks and filling every
shuffle buffer is too slow on a small machine, so the state is measured on
``--tasks`` tasks of each mixture that have training data here (equal
rates), after ``--batches`` batches (each task
sampled: its buffer filled), and extrapolated per task to the whole mixture;
half the tasks come from each half of the mixture's order (for
bilingual_train, KORANI and P3 tasks).
Also timed, alternately in this process: restoring a saved iterator (before)
against skipping ``--batches`` batches of a fresh pipeline (the fast-forward
of a position-only resume, after), per batch::

    KORANI_DATA_DIR=../shared/data/raw KORANI_VOCAB=spm.model \\
        .venv/bin/python bench/bench_iterator_state.py

prints one JSON line per mixture.
"""

import argparse
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

LENGTHS = {"inputs": 1024, "targets": 256}
LIMIT = 50 << 20


def subset_mixture(mixture: str, tasks: int) -> tuple[str, int]:
  """A mixture of `tasks` tasks of `mixture` whose train split can be read
  here, the first of each half of the mixture's order (the KORANI and the
  P3 halves of a bilingual mixture), equal rates; returns its name and the number of
  tasks of `mixture`."""
  import seqio  # pylint: disable=import-outside-toplevel
  from korani_tasks import errors  # pylint: disable=import-outside-toplevel
  everything = seqio.get_subtasks(seqio.get_mixture_or_task(mixture))
  half = len(everything) // 2
  kept = []
  for part, wanted in ((everything[:half], tasks // 2),
                       (everything[half:], tasks - tasks // 2)):
    readable = []
    for task in part:
      if len(readable) == wanted:
        break
      try:
        task.source.num_input_examples("train")
      except (errors.MissingDataError, ValueError):
        continue
      readable.append(task)
    kept += readable
  name = f"{mixture}_bench_{len(kept)}_tasks"
  if name not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add(name, [(t.name, 1.0) for t in kept])
  print(f"{mixture}: measuring {[t.name for t in kept]}", file=sys.stderr)
  return name, len(everything)


def measure(mixture: str, tasks: int, batches: int, seed: int) -> dict:
  from t5x_runs import checkpoints  # pylint: disable=import-outside-toplevel
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  from etils import epath  # pylint: disable=import-outside-toplevel
  subset, total = subset_mixture(mixture, tasks)
  pipeline = lambda skip=0: trainer.DataIterator(trainer.train_batches(
      subset, LENGTHS, 8, seed=seed, start_step=skip))
  data = pipeline()
  for _ in range(batches):
    next(data)
  size = checkpoints.data_iterator_bytes(data.tf_iterator)
  handler, args = checkpoints.DataIteratorHandler(), checkpoints.DataIteratorArgs
  with tempfile.TemporaryDirectory() as folder:
    handler.save(epath.Path(folder), args(data.tf_iterator))
    del data
    restore_s, skip_s = [], []
    for _ in range(2):  # Alternately, twice each.
      start = time.perf_counter()
      restored = pipeline()
      handler.restore(epath.Path(folder), args(restored.tf_iterator))
      next(restored)
      restore_s.append(time.perf_counter() - start)
      del restored
      start = time.perf_counter()
      next(pipeline(skip=batches))
      skip_s.append(time.perf_counter() - start)
  per_task = size / tasks
  whole = per_task * total
  return {
      "mixture": mixture, "tasks_in_mixture": total,
      "tasks_measured": tasks, "batches_read": batches,
      "subset_state_mb": round(size / 1e6, 1),
      "per_task_mb": round(per_task / 1e6, 2),
      "before_mb_per_host_per_save": round(whole / 1e6),
      "after_mb_per_host_per_save": 0 if whole > LIMIT else round(whole / 1e6),
      "restore_s": round(min(restore_s), 2),
      "fast_forward_s": round(min(skip_s), 2),
      "fast_forward_s_per_batch": round(min(skip_s) / batches, 3),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixtures", nargs="+",
                      default=["korani_train", "bilingual_train"])
  parser.add_argument("--tasks", type=int, default=6)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  import korani_tasks  # pylint: disable=import-outside-toplevel,unused-import
  import mixtures  # pylint: disable=import-outside-toplevel,unused-import
  for mixture in args.mixtures:
    print(json.dumps(measure(mixture, args.tasks, args.batches, args.seed)),
          flush=True)


if __name__ == "__main__":
  main()
