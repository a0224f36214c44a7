"""How long a checkpoint save blocks the training loop: synchronous vs async.

The state is mT5-Small's (300M parameters, float32, with its Adafactor state)
as `trainer.init_train_state` creates it on one device. Each mode saves it
`--saves` times through `checkpoints.CheckpointStore`, as the trainer does:

* sync (the store before async saving: ``async_save=False`` and one hashing
  thread): orbax writes the step while `save` waits, then process 0 hashes
  it into manifest.json;
* async (``async_save=True``, the default): `save` returns once the arrays
  are on the host; orbax writes them and the manifest is built in a
  background thread.

Per save it records the time `save` blocked the caller and the time until
the step was final (manifest written, folder renamed), then waits for it
before the next save, so the two modes write the same bytes under the same
conditions. Prints JSON (medians and every save's times)::

    python bench/bench_checkpoint_save.py --saves 3 [--dir /tmp/x]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from t5x_runs import checkpoints  # pylint: disable=wrong-import-position
from t5x_runs import partitioning  # pylint: disable=wrong-import-position
from t5x_runs import trainer  # pylint: disable=wrong-import-position
from t5x_runs.models import MT5, mt5_config  # pylint: disable=wrong-import-position

MT5_VOCAB_SIZE = 250112


def small_state():
  model = MT5(mt5_config("small", vocab_size=MT5_VOCAB_SIZE))
  state = trainer.init_train_state(
      model, trainer.make_optimizer(), partitioning.make_mesh(1),
      partitioning.standard_logical_axis_rules(), {"inputs": 8, "targets": 4},
      seed=0)
  jax.block_until_ready((state.params, state.opt_state))
  return state


def state_bytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def time_saves(directory, state, async_save: bool, saves: int):
  checkpoints._HASH_THREADS = 8 if async_save else 1  # pylint: disable=protected-access
  store = checkpoints.CheckpointStore(directory, max_to_keep=1,
                                      async_save=async_save)
  blocked, final = [], []
  try:
    for step in range(1, saves + 1):
      tick = time.perf_counter()
      store.save(step, state.params, state.opt_state, {"bench": True})
      blocked.append(time.perf_counter() - tick)
      store.wait_until_finished()
      final.append(time.perf_counter() - tick)
      manifest = os.path.join(store.step_dir(step), checkpoints.MANIFEST)
      assert os.path.exists(manifest), manifest
  finally:
    store.close()
  return {"blocked_s": blocked, "final_s": final,
          "median_blocked_s": float(np.median(blocked)),
          "median_final_s": float(np.median(final))}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--saves", type=int, default=3)
  parser.add_argument("--dir", default=None,
                      help="where to write (default: a temporary folder)")
  args = parser.parse_args()
  root = tempfile.mkdtemp(dir=args.dir, prefix="bench_checkpoint_")
  try:
    tick = time.perf_counter()
    state = small_state()
    results = {"state_bytes": state_bytes((state.params, state.opt_state)),
               "init_s": time.perf_counter() - tick}
    for name, async_save in (("sync", False), ("async", True)):
      results[name] = time_saves(os.path.join(root, name), state, async_save,
                                 args.saves)
      print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    results["blocked_ratio_async_vs_sync"] = (
        results["async"]["median_blocked_s"]
        / results["sync"]["median_blocked_s"])
    print(json.dumps(results, indent=1))
  finally:
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
