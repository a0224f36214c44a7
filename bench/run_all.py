"""`make bench`: the CPU benchmarks of issues 7 and 17 in one run, appended to RESULTS.md.

Measures on this machine, one benchmark process at a time (so that no two
compete for the cores; within the throughput process our step, the matmul
and the PyTorch peers' steps are timed in interleaved rounds, so that they
see the same load), and compares:

  throughput  training tokens/s of our trainer's compiled step against
              three PyTorch peers with the same settings (dropout, no
              z-loss, Adafactor's options; bench_throughput.py says which
              cannot be matched): transformers' MT5ForConditionalGeneration
              with transformers' Adafactor, with torch.optim.Adafactor
              (foreach), and that under torch.compile; batch 8, lengths
              512/128, at the tiny shape (target >= 2x the strongest peer)
              and at the mT5-small shape with a 32k vocabulary (>= 1.2x); a
              peer that cannot run gets a row saying why. And our model
              FLOPs utilization against a measured float32 matmul peak
              (>= 65% at small)                    [bench_throughput.py]
  packing     useful (non-padding) tokens/s on korani_kobest_train, packed
              1024/256 against padded 768/256 (>= 3x); input pipeline
              examples/s against the trainer's consumption at tiny (>= 10x)
                                                   [bench_packing.py]
  import      time to import and register every task and mixture (< 2 s)
                                                   [bench_import.py]

then prints a table (measurement, ours, reference, ratio, target, met) and
appends a dated entry with the machine, versions and command to
bench/RESULTS.md (``--results``; ``--results ''`` writes nothing).

    make bench                                    # everything (~10-20 min)
    .venv/bin/python bench/run_all.py --quick     # fewer steps, noisier
    .venv/bin/python bench/run_all.py --quick --shapes tiny --parts throughput

The JAX processes run with ``XLA_FLAGS`` plus ``--xla_flags`` (default
``DEFAULT_XLA_FLAGS``; ``--xla_flags ''`` for XLA's defaults), recorded in
the entry. Timings on a machine shared with other jobs are noisy; the entry
records the load average before and during the run and says so when it was
loaded.
"""

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
if BENCH_DIR not in sys.path:
  sys.path.insert(0, BENCH_DIR)

import bench_throughput  # pylint: disable=wrong-import-position

if REPO not in sys.path:
  sys.path.insert(0, REPO)
from t5x_runs import xla_flags  # pylint: disable=wrong-import-position
PARTS = ("throughput", "packing", "import")
SHAPES = ("tiny", "small")
VERSION_PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "transformers",
                    "tensorflow", "seqio")

# The trainer's own XLA flags (t5x_runs/xla_flags.py, which `korani train`
# applies too), so that the benchmark times the step as users run it.
DEFAULT_XLA_FLAGS = xla_flags.with_defaults("")

# Step counts: (warm-up steps, most timed steps, seconds of timed steps);
# at least bench_throughput.MIN_TIMED_STEPS are timed whatever the budget.
# For throughput the counts are rounds of (our step, matmul, PyTorch step).
FULL = {"tiny": (2, 20, 40.0), "small": (1, 10, 150.0),
        "packing": (1, 10, 20.0), "pipeline_batches": 100, "import_runs": 3}
QUICK = {"tiny": (1, 3, 0.0), "small": (1, 3, 0.0),
         "packing": (1, 3, 0.0), "pipeline_batches": 20, "import_runs": 1}


@dataclasses.dataclass
class Row:
  """One line of the results table."""
  measurement: str
  ours: str
  reference: str
  ratio: str
  target: str
  met: str  # 'yes', 'no' or '' (no target)


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def memory_gib() -> float:
  """Total memory in GiB from /proc/meminfo (0 where unknown)."""
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("MemTotal:"):
          return int(line.split()[1]) / 2**20
  except OSError:
    pass
  return 0.0


def load_average() -> float:
  """The 1-minute load average (0 where unknown)."""
  try:
    return os.getloadavg()[0]
  except OSError:
    return 0.0


def package_versions() -> dict[str, str]:
  versions = {}
  for name in VERSION_PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = "not installed"
  return versions


class Runner:
  """Runs the benchmark scripts one at a time; samples the load between."""

  def __init__(self, xla_flags: str, verbose: bool):
    self.verbose = verbose
    self.loads = [load_average()]
    self.xla_flags = " ".join(
        f for f in (os.environ.get("XLA_FLAGS", ""), xla_flags) if f)
    self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                    XLA_FLAGS=self.xla_flags,
                    PYTHONPATH=os.pathsep.join(
                        p for p in (REPO, os.environ.get("PYTHONPATH")) if p))

  def json(self, script: str, *args: str) -> dict:
    """Runs bench/`script` with `args`; returns its last output line as JSON."""
    command = [sys.executable, os.path.join(BENCH_DIR, script), *args]
    label = shlex.join([script, *args])
    print(f"[bench] {label} ...", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(command, env=self.env, cwd=REPO, text=True,
                          capture_output=True, check=False)
    self.loads.append(load_average())
    if proc.returncode:
      tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
      raise RuntimeError(f"{label} failed (exit {proc.returncode}):\n{tail}")
    if self.verbose:
      print(proc.stderr[-4000:], file=sys.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"[bench]   done in {time.perf_counter() - start:.0f} s", flush=True)
    return result


def _steps_args(steps: tuple[int, int, float]) -> list[str]:
  warmup, most, budget = steps
  return ["--warmup", str(warmup), "--steps", str(most),
          "--budget_s", str(budget)]


def measure(parts: list[str], shapes: list[str], settings: dict,
            runner: Runner) -> dict:
  """Runs the chosen parts; returns their JSON results by name."""
  results = {}
  if "throughput" in parts:
    for shape in shapes:
      results[f"throughput_{shape}"] = runner.json(
          "bench_throughput.py", "--shape", shape,
          *_steps_args(settings[shape]))
  if "packing" in parts:
    warmup, most, budget = settings["packing"]
    results["packing"] = runner.json(
        "bench_packing.py", "--step_warmup", str(warmup), "--steps",
        str(most), "--budget_s", str(budget), "--pipeline_batches",
        str(settings["pipeline_batches"]))
  if "import" in parts:
    results["import"] = runner.json("bench_import.py", "--runs",
                                    str(settings["import_runs"]))
    results["import"]["runs"] = settings["import_runs"]
  return results


def _met(ok: bool) -> str:
  return "yes" if ok else "no"


# Ours against the strongest PyTorch peer, by shape (issue 17).
STEP_TARGETS = {"tiny": 2.0, "small": 1.2}


def _peers(run: dict) -> dict[str, dict]:
  """The run's PyTorch peers in bench_throughput.PEERS order: name -> entry
  (with 'tokens_per_s', or 'error' for a peer that could not run)."""
  return {name: run[name] for name in bench_throughput.PEERS if name in run}


def strongest_peer(run: dict) -> str | None:
  """The name of the fastest peer that ran, or None if none did."""
  ran = {n: p for n, p in _peers(run).items() if "tokens_per_s" in p}
  return max(ran, key=lambda n: ran[n]["tokens_per_s"]) if ran else None


def _step_cell(entry: dict) -> str:
  return f"{entry['tokens_per_s']:,.0f} ({entry['median_s']:.3g} s/step)"


def table_rows(results: dict) -> list[Row]:
  """The table's rows for whatever `results` holds."""
  rows = []
  if any(k.startswith("throughput_") for k in results):
    rows.append(Row("machine", f"{cpu_model()}, {os.cpu_count()} cores",
                    "", "", "", ""))
  for shape in SHAPES:
    run = results.get(f"throughput_{shape}")
    if not run:
      continue
    ours, target = run["jax"], STEP_TARGETS[shape]
    best = strongest_peer(run)
    if best is None:
      rows.append(Row(
          f"train step tokens/s, {shape} (b8, 512/128)", _step_cell(ours),
          "no PyTorch peer could run", "n/a", f">= {target}x", ""))
    else:
      ratio = ours["tokens_per_s"] / run[best]["tokens_per_s"]
      rows.append(Row(
          f"train step tokens/s, {shape} (b8, 512/128)", _step_cell(ours),
          f"strongest peer: {run[best]['label']} {_step_cell(run[best])}",
          f"{ratio:.2f}x", f">= {target}x", _met(ratio >= target)))
    for name, peer in _peers(run).items():
      if "error" in peer:
        rows.append(Row(f"  vs peer {name}, {shape}", "",
                        f"{peer['label']}: could not run ({peer['error']})",
                        "n/a", "", ""))
      else:
        rows.append(Row(
            f"  vs peer {name}, {shape}", "", f"{peer['label']} "
            f"{_step_cell(peer)}",
            f"{ours['tokens_per_s'] / peer['tokens_per_s']:.2f}x", "", ""))
  for shape in SHAPES:
    if f"throughput_{shape}" not in results:
      continue
    run = results[f"throughput_{shape}"]
    flops = run["model_flops"]["total"] / 1e9
    for clock, key, peak_key, unit in (
        ("wall", "median_s", "gflops", "GFLOP/s"),
        ("CPU time", "median_cpu_s", "gflops_per_cpu_s", "GFLOP/CPU-s")):
      achieved, peak = flops / run["jax"][key], run["peak"][peak_key]
      mfu = achieved / peak
      rows.append(Row(
          f"model FLOPs utilization, {shape} ({clock})",
          f"{achieved:.1f} {unit}", f"matmul peak {peak:.1f} {unit}",
          f"{100 * mfu:.0f}%", ">= 65%" if shape == "small" else "(none)",
          _met(mfu >= 0.65) if shape == "small" else ""))
  if "packing" in results:
    pk = results["packing"]
    packed, padded = pk.get("packed"), pk.get("padded")
    if packed and padded:
      ratio = packed["useful_tokens_per_s"] / padded["useful_tokens_per_s"]
      rows.append(Row(
          "useful tokens/s, packed 1024/256 vs padded 768/256",
          f"{packed['useful_tokens_per_s']:,.0f} ({100 * packed['fill']:.0f}%"
          " fill)",
          f"padded {padded['useful_tokens_per_s']:,.0f} "
          f"({100 * padded['fill']:.0f}% fill)", f"{ratio:.2f}x", ">= 3x",
          _met(ratio >= 3.0)))
    if packed:
      ratio = (packed["pipeline_examples_per_s"]
               / packed["consumption_examples_per_s"])
      rows.append(Row(
          "input pipeline examples/s vs step consumption (tiny, packed)",
          f"{packed['pipeline_examples_per_s']:,.0f}",
          f"step {packed['consumption_examples_per_s']:,.1f}",
          f"{ratio:.1f}x", ">= 10x", _met(ratio >= 10.0)))
  if "import" in results:
    imp = results["import"]
    rows.append(Row(
        f"import + register {imp['tasks']} tasks, {imp['mixtures']} mixtures",
        f"{imp['registration_s']:.2f} s",
        f"import seqio, tfds {imp['reference_s']:.2f} s",
        f"{imp['registration_s'] / imp['reference_s']:.2f}x", "< 2 s",
        _met(imp["registration_s"] < 2.0)))
  return rows


def format_table(rows: list[Row]) -> str:
  """A Markdown table (readable as plain text too)."""
  header = Row("measurement", "ours", "reference", "ratio", "target", "met")
  cells = [dataclasses.astuple(r) for r in [header, *rows]]
  widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
  lines = []
  for n, cell in enumerate(cells):
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cell, widths))
                 + " |")
    if n == 0:
      lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
  return "\n".join(lines)


def detail_lines(results: dict) -> list[str]:
  """Bullets with how each number was obtained."""
  lines = []
  for shape in SHAPES:
    run = results.get(f"throughput_{shape}")
    if not run:
      continue
    jax_, peak = run["jax"], run["peak"]
    f = run["model_flops"]
    peers = "; ".join(
        f"{p['label']}: could not run" if "error" in p else
        f"{p['label']} ({p['median_s']:.3g} s, {p['median_cpu_s']:.3g} "
        f"CPU-s, {p['threads']} threads)" for p in _peers(run).values())
    lines.append(
        f"Throughput, {shape}: {len(jax_['times'])} rounds after "
        f"{run['warmup']} warm-up calls each, one process, each round = our "
        f"step ({jax_['median_s']:.3g} s median; compiled ahead in "
        f"{jax_['compile_s']:.0f} s; {jax_['median_cpu_s']:.3g} CPU-s), "
        f"{peak['repeats']} float32 {peak['size']}x{peak['size']} jnp.dots "
        f"({peak['median_s'] * 1e3:.0f} ms = {peak['gflops']:.1f} GFLOP/s; "
        f"{peak['gflops_per_cpu_s']:.1f} GFLOP per CPU-s), then each PyTorch "
        f"peer: {peers}; tokens = 8 x (512 + 128) = 5,120 per step. Model "
        f"FLOPs per step {f['total'] / 1e9:.1f} G (matmuls "
        f"{f['matmul'] / 1e9:.1f} G + attention {f['attention'] / 1e9:.1f} "
        f"G; XLA counts {jax_['xla_flops'] / 1e9:.1f} G in the compiled "
        "step).")
  if any(k.startswith("throughput_") for k in results):
    lines.append(
        "Peers' settings, as ours: dropout 0.1 on every side; no z-loss on "
        "any (our step built with z_loss=0; transformers' MT5 has none); "
        "Adafactor with constant lr 1e-3, second-moment decay 1 - t^-0.8, "
        "update clipping at RMS 1.0, updates multiplied by the parameter's "
        "RMS (>= 1e-3), no momentum, no weight decay (transformers: "
        "`Adafactor(lr=1e-3, scale_parameter=True, relative_step=False, "
        "decay_rate=-0.8, clip_threshold=1.0, beta1=None)`; torch: "
        "`torch.optim.Adafactor(lr=1e-3, beta2_decay=-0.8, eps=(1e-15, "
        "1e-3), d=1.0, foreach=True)`). Not matched: torch's step size "
        "min(lr, 1/sqrt(t)) (= lr for 10^6 steps); optax factors only arrays "
        "with both largest dimensions >= 128, the peers every matrix; the "
        "epsilon's placement (bench/bench_throughput.py). Ratios are ours / "
        "peer tokens per second; the target is against the strongest peer.")
  pk = results.get("packing")
  if pk:
    parts = []
    for name in ("packed", "padded"):
      r = pk.get(name)
      if r:
        parts.append(
            f"{name} {r['lengths']['inputs']}/{r['lengths']['targets']}: "
            f"{r['useful_tokens_per_batch']:,.0f} of "
            f"{r['token_slots_per_batch']:,} tokens per batch of "
            f"{r['batch_size']} are real ({r['examples_per_batch']:.1f} "
            f"examples), step {r['median_step_s']:.3g} s")
    lines.append(
        f"Packing: `{pk['mixture']}`, model vocabulary {pk['vocab_size']} "
        f"({pk['vocabulary_pieces']} trained pieces), tiny model; "
        + "; ".join(parts) + ".")
    packed = pk.get("packed")
    if packed and "pipeline_s" in packed:
      lines.append(
          f"Pipeline: {packed['pipeline_batches']} packed batches read from "
          f"`train_batches(...).as_numpy_iterator()` in "
          f"{packed['pipeline_s']:.2f} s after warm-up "
          f"({packed['pipeline_rows_per_s']:.0f} rows/s); the step consumes "
          f"{packed['consumption_rows_per_s']:.2f} rows/s.")
  imp = results.get("import")
  if imp:
    lines.append(
        f"Import: `bench/bench_import.py --runs {imp.get('runs', '?')}` "
        "(fresh interpreters, medians); reference = `import seqio, "
        "tensorflow_datasets`, ours = `import korani_tasks, mixtures` on "
        "top of it.")
  return lines


def command_line(argv: list[str]) -> str:
  """The command as typed, with paths relative to the repository."""
  python = os.path.relpath(sys.executable, REPO)
  if python.startswith(".." + os.sep + ".."):
    python = sys.executable
  script = os.path.relpath(os.path.abspath(__file__), REPO)
  command = shlex.join([python, script, *argv])
  if os.environ.get("MAKELEVEL"):
    return f"`make bench` (runs `{command}`)"
  return f"`{command}`"


def results_entry(date: str, rows: list[Row], results: dict, argv: list[str],
                  loads: list[float], wall_s: float, xla_flags: str) -> str:
  """The Markdown section appended to RESULTS.md."""
  cores = os.cpu_count() or 0
  versions = package_versions()
  loaded = max(loads[0], max(loads[1:], default=0) - cores) > 0.5 * cores
  lines = [
      f"## {date} — `make bench`: trainer vs PyTorch peers, packing, "
      "input pipeline, import",
      "",
      f"- Machine: {cpu_model()}, {cores} cores, {memory_gib():.0f} GiB, "
      f"{platform.machine()}, no accelerator; Python "
      f"{platform.python_version()}.",
      "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())
      + ".",
      f"- Command: {command_line(argv)}; wall time {wall_s / 60:.1f} min; "
      f"XLA_FLAGS=`{xla_flags or '(none)'}`.",
      f"- Load (1-min average): {loads[0]:.1f} before the run, up to "
      f"{max(loads):.1f} during it (the run itself adds about {cores}). "
      + ("**Measured on a shared, loaded machine: timings are noisy.**"
         if loaded else "Quiet machine."),
      "",
      format_table(rows),
      "",
  ]
  lines += [f"- {line}" for line in detail_lines(results)]
  return "\n".join(lines) + "\n"


def append_entry(path: str, entry: str) -> None:
  with open(path, "a", encoding="utf-8") as f:
    f.write("\n" + entry)


def main(argv: list[str] | None = None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="fewest steps and runs (a smoke test, not numbers "
                           "to report)")
  parser.add_argument("--parts", default=",".join(PARTS),
                      help=f"comma-separated subset of {','.join(PARTS)}")
  parser.add_argument("--shapes", default=",".join(SHAPES),
                      help="throughput shapes: tiny,small")
  parser.add_argument("--results",
                      default=os.path.join(BENCH_DIR, "RESULTS.md"),
                      help="Markdown file to append the entry to ('' = none)")
  parser.add_argument("--json", default="",
                      help="also write every raw measurement to this file")
  parser.add_argument("--xla_flags", default=DEFAULT_XLA_FLAGS,
                      help="XLA flags added to $XLA_FLAGS for the JAX runs")
  parser.add_argument("--verbose", action="store_true",
                      help="show the benchmarks' logs")
  args = parser.parse_args(argv)
  parts = [p for p in args.parts.split(",") if p]
  shapes = [s for s in args.shapes.split(",") if s]
  unknown = sorted(set(parts) - set(PARTS)) + sorted(set(shapes) - set(SHAPES))
  if unknown:
    parser.error(f"unknown part(s)/shape(s): {', '.join(unknown)}")

  start = time.perf_counter()
  date = datetime.date.today().isoformat()
  runner = Runner(args.xla_flags, args.verbose)
  results = measure(parts, shapes, QUICK if args.quick else FULL, runner)
  wall_s = time.perf_counter() - start
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"results": results, "loads": runner.loads, "wall_s": wall_s,
                 "xla_flags": runner.xla_flags}, f, indent=1)
  rows = table_rows(results)
  print()
  print(format_table(rows))
  entry = results_entry(date, rows, results, argv, runner.loads, wall_s,
                        runner.xla_flags)
  if args.results:
    append_entry(args.results, entry)
    print(f"\nappended to {args.results} ({wall_s / 60:.1f} min)")


if __name__ == "__main__":
  main()
