"""Benchmark: registering every KORANI task and mixture at import.

Target (issue 3): importing ``korani_tasks`` and ``mixtures`` registers every
task and mixture in under 2 seconds on the development machine, reading no
data. Importing seqio imports TensorFlow, which is most of the wall time and
not ours to shorten, so each run, in a fresh interpreter, times

    reference     ``import seqio, tensorflow_datasets``  (what any seqio user pays)
    registration  then ``import korani_tasks, mixtures`` (our modules, catalog,
                  templates, ~1000 task and mixture registrations)

and prints the medians over the runs, their sum (the cold import) and the
ratio registration / reference. The runs use an empty ``$KORANI_DATA_DIR``,
``TFDS_DATA_DIR`` and cache folder and check afterwards that nothing was
written there.

    .venv/bin/python bench/bench_import.py --runs 5
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

_CODE = """
import time; t = time.perf_counter()
import seqio, tensorflow_datasets
reference = time.perf_counter() - t
t = time.perf_counter()
import korani_tasks, mixtures
registration = time.perf_counter() - t
from korani_tasks import tasks
print({"reference": reference, "registration": registration,
       "tasks": len(tasks.all_task_infos()),
       "seqio_tasks": len(seqio.TaskRegistry.names()),
       "mixtures": len(seqio.MixtureRegistry.names())})
"""


def _run(code: str, env: dict[str, str]) -> dict:
  out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                       capture_output=True, text=True).stdout
  return eval(out.strip().splitlines()[-1])  # pylint: disable=eval-used


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", type=int, default=5)
  args = parser.parse_args()
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with tempfile.TemporaryDirectory() as tmp:
    dirs = {name: os.path.join(tmp, name) for name in ("data", "tfds", "cache")}
    for d in dirs.values():
      os.makedirs(d)
    env = dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="3",
               KORANI_DATA_DIR=dirs["data"], TFDS_DATA_DIR=dirs["tfds"],
               KORANI_CACHE_DIR=dirs["cache"])
    results = [_run(_CODE, env) for _ in range(args.runs)]
    written = [os.path.join(r, f) for d in dirs.values()
               for r, _, fs in os.walk(d) for f in fs]
  result = results[-1]
  ref = statistics.median(r["reference"] for r in results)
  reg = statistics.median(r["registration"] for r in results)
  print(f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
  print(f"runs: {args.runs} (fresh interpreters, medians)")
  print(f"{'import':52s} {'seconds':>8s}")
  print(f"{'seqio, tensorflow_datasets (reference)':52s} {ref:8.2f}")
  print(f"{'then korani_tasks, mixtures (registration)':52s} {reg:8.2f}")
  print(f"{'cold import of korani_tasks, mixtures (sum)':52s} {ref + reg:8.2f}")
  print(f"registered {result['tasks']} KORANI tasks ({result['seqio_tasks']} "
        f"seqio tasks) and {result['mixtures']} mixtures; "
        f"registration/reference = {reg / ref:.2f}")
  print(f"files written under the data/TFDS/cache dirs: {len(written)}")
  print(json.dumps({"reference_s": ref, "registration_s": reg,
                    **{k: result[k] for k in ("tasks", "seqio_tasks",
                                              "mixtures")}}))


if __name__ == "__main__":
  main()
