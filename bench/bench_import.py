"""Benchmark: registering every KORANI task and mixture at import.

Target (issue 3): importing ``korani_tasks`` and ``mixtures`` registers every
task and mixture in under 2 seconds on the development machine, reading no
data. Importing seqio alone imports TensorFlow, which is most of the wall
time and is not ours to shorten, so each run measures, in fresh interpreters
on the same machine:

    reference  ``import seqio, tensorflow_datasets``   (what any seqio user pays)
    korani     ``import korani_tasks, mixtures``       (reference + registration)

and prints the medians, the registration overhead (korani - reference) and
the ratio. The korani runs use an empty ``$KORANI_DATA_DIR``, ``TFDS_DATA_DIR``
and cache folder and check afterwards that nothing was written or read there.

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

_REFERENCE = """
import time; t = time.perf_counter()
import seqio, tensorflow_datasets
print({"seconds": time.perf_counter() - t})
"""
_KORANI = """
import time; t = time.perf_counter()
import korani_tasks, mixtures
seconds = time.perf_counter() - t
import seqio
from korani_tasks import tasks
print({"seconds": seconds, "tasks": len(tasks.all_task_infos()),
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
    reference, korani = [], []
    for _ in range(args.runs):  # Interleaved, so drift hits both alike.
      reference.append(_run(_REFERENCE, env)["seconds"])
      result = _run(_KORANI, env)
      korani.append(result["seconds"])
    written = [os.path.join(r, f) for d in dirs.values()
               for r, _, fs in os.walk(d) for f in fs]
  ref, kor = statistics.median(reference), statistics.median(korani)
  print(f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
  print(f"runs: {args.runs} (fresh interpreters, medians)")
  print(f"{'import':44s} {'seconds':>8s}")
  print(f"{'seqio, tensorflow_datasets (reference)':44s} {ref:8.2f}")
  print(f"{'korani_tasks, mixtures':44s} {kor:8.2f}")
  print(f"registration overhead: {kor - ref:.2f} s for {result['tasks']} "
        f"KORANI tasks ({result['seqio_tasks']} seqio tasks) and "
        f"{result['mixtures']} mixtures; korani/reference = {kor / ref:.2f}x")
  print(f"files written or needed under data/TFDS/cache dirs: {len(written)}")
  print(json.dumps({"reference_s": ref, "korani_s": kor,
                    "overhead_s": kor - ref, **result}))


if __name__ == "__main__":
  main()
