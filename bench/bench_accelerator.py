"""Benchmark: the trainer's step at mT5-Base and -Large shapes on an accelerator.

Times the training step exactly as ``t5x_runs.trainer.train`` builds it
(``train_step.init_train_state`` on a one-device mesh, then
``ShardedTrainState.compile_step`` with ``make_optimizer()``: forward,
cross-entropy + z-loss, gradients, Adafactor update, parameters and state
donated), with bfloat16 activations and float32 parameters as t5x trains,
on the first JAX device present (GPU, TPU, or CPU for a check). Per shape
it prints

* the median step time and tokens/s;
* model FLOPs/s (bench_throughput.model_flops: 6 x weights in matmuls x
  tokens through them + attention) and the model FLOPs utilization against
  the device's dense bfloat16 peak (`PEAK_BF16_FLOPS`; a device not in the
  table gets FLOP/s only, and says so);
* the planner's per-device memory (t5x_runs/planner.py, what `korani plan`
  prints) against XLA's figure for the compiled step
  (``compiled.memory_analysis()``; ``planner.compiled_peak_bytes``).

It imports only JAX, Flax, optax and this project's step modules (no
TensorFlow, seqio or PyTorch): an accelerator machine needs nothing else.

    python bench/bench_accelerator.py       # base and large, batch 32, 512/128
    python bench/bench_accelerator.py --shape base --batch 64 --steps 20
    python bench/bench_accelerator.py --shape large --inputs 1024 \\
        --targets 256 --remat full
    python bench/bench_accelerator.py --shape tiny --batch 2 --inputs 32 \\
        --targets 8 --steps 1                               # a CPU check

The last line of the output is the JSON of every measurement.
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings

import flax.linen as nn
import jax

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
for path in (REPO, BENCH_DIR):
  if path not in sys.path:
    sys.path.insert(0, path)

# pylint: disable=wrong-import-position
from bench_throughput import model_flops, synthetic_batch
from t5x_runs import partitioning, planner, train_step
from t5x_runs.models import MT5, MT5Config, mt5_config
from t5x_runs.models.config import REMAT_POLICIES
# pylint: enable=wrong-import-position

GIB = 1024 ** 3

# Dense (no sparsity) bfloat16 matmul peaks, FLOP/s, by a substring of
# ``device.device_kind``; the first match counts. Vendors' data sheets.
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),    # SXM
    ("H200", 989e12),
    ("H800", 989e12),
    ("A100", 312e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5e", 197e12),
    ("TPU v5p", 459e12),
    ("TPU v5", 459e12),
    ("TPU v4", 275e12),
)

SHAPES = ("tiny", "base", "large")


def peak_flops(device_kind: str) -> float | None:
  """The device's dense bfloat16 peak in FLOP/s, or None if unknown."""
  for name, flops in PEAK_BF16_FLOPS:
    if name.lower() in device_kind.lower():
      return flops
  return None


def bench_config(shape: str, remat_policy: str = "none") -> MT5Config:
  """The mT5 preset `shape` (full 250,112 vocabulary) in bfloat16."""
  if shape not in SHAPES:
    raise ValueError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
  return mt5_config(shape, dtype="bfloat16", remat_policy=remat_policy)


def measure(shape: str, *, batch_size: int, inputs: int, targets: int,
            warmup: int, steps: int, remat_policy: str, seed: int = 0) -> dict:
  """Builds, compiles and times the step for one shape; returns its numbers."""
  device = jax.devices()[0]
  config = bench_config(shape, remat_policy)
  lengths = {"inputs": inputs, "targets": targets}
  mesh = partitioning.make_mesh(1, devices=[device])
  rules = partitioning.standard_logical_axis_rules()
  model = MT5(config)
  optimizer = train_step.make_optimizer()
  plan = planner.plan(config, batch_size=batch_size,
                      task_feature_lengths=lengths, num_devices=1,
                      optimizer=optimizer)
  result = {"shape": shape, "batch_size": batch_size, "lengths": lengths,
            "dtype": config.dtype, "remat_policy": remat_policy,
            "param_count": plan.param_count, "planner_bytes": plan.total,
            # What the allocator may use (None where it keeps no count).
            "device_bytes_limit": (device.memory_stats() or {}).get(
                "bytes_limit")}
  state = train_step.init_train_state(model, optimizer, mesh, rules, lengths,
                                      seed=seed)
  host_batch = synthetic_batch(config.vocab_size, batch_size, inputs, targets)
  batch = jax.device_put(host_batch, partitioning.batch_sharding(mesh))
  rng = jax.random.PRNGKey(seed)
  # Under the mesh and rules, as the trainer compiles it (newer jax
  # deprecates `with mesh`, which the trainer still uses).
  with warnings.catch_warnings(), mesh, nn.logical_axis_rules(rules):
    warnings.simplefilter("ignore", DeprecationWarning)
    start = time.perf_counter()
    compiled = state.compile_step(model, optimizer, z_loss=1e-4).lower(
        state.params, state.opt_state, batch, rng).compile()
    result["compile_s"] = time.perf_counter() - start
  result["xla_bytes"] = planner.compiled_peak_bytes(compiled)
  cost = compiled.cost_analysis()
  if isinstance(cost, list):  # older jax: one dict per computation
    cost = cost[0]
  result["xla_flops"] = float((cost or {}).get("flops", float("nan")))

  params, opt_state = state.params, state.opt_state
  times, loss = [], float("nan")
  for step in range(warmup + steps):
    start = time.perf_counter()
    params, opt_state, metrics = compiled(
        params, opt_state, batch, jax.random.fold_in(rng, step))
    loss = float(jax.block_until_ready(metrics)["loss"])
    if step >= warmup:
      times.append(time.perf_counter() - start)
  median = statistics.median(times)
  flops = model_flops(config, batch_size, inputs, targets)["total"]
  peak = peak_flops(device.device_kind)
  result.update(
      times=times, median_s=median, final_loss=loss,
      tokens_per_s=batch_size * (inputs + targets) / median,
      model_flops=flops, model_flops_per_s=flops / median,
      peak_flops=peak, mfu=None if peak is None else flops / median / peak)
  return result


def _gib(n: float) -> str:
  return f"{n / GIB:.2f} GiB"


def format_result(r: dict) -> str:
  """One shape's numbers as a few readable lines."""
  if "error" in r:
    return f"{r['shape']}: could not run: {r['error']}"
  mfu = ("no peak known for this device: FLOP/s only" if r["mfu"] is None
         else f"MFU {100 * r['mfu']:.1f}% of {r['peak_flops'] / 1e12:.0f} "
              "TFLOP/s")
  return "\n".join([
      f"{r['shape']} ({r['param_count'] / 1e6:.0f}M parameters, batch "
      f"{r['batch_size']}, {r['lengths']['inputs']}/{r['lengths']['targets']}"
      f", {r['dtype']}, remat {r['remat_policy']}):",
      f"  step {r['median_s'] * 1e3:.1f} ms (median of {len(r['times'])}; "
      f"compiled in {r['compile_s']:.0f} s), {r['tokens_per_s']:,.0f} "
      f"tokens/s, loss {r['final_loss']:.3f}",
      f"  {r['model_flops_per_s'] / 1e12:.2f} model TFLOP/s "
      f"({r['model_flops'] / 1e9:.1f} GFLOP per step; XLA counts "
      f"{r['xla_flops'] / 1e9:.1f}); {mfu}",
      f"  memory per device: planner {_gib(r['planner_bytes'])}, XLA "
      f"{_gib(r['xla_bytes'])} (planner / XLA = "
      f"{r['planner_bytes'] / r['xla_bytes']:.2f})"
      + (f"; the allocator may use {_gib(r['device_bytes_limit'])}"
         if r["device_bytes_limit"] else "")])


def main(argv: list[str] | None = None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--shape", default="base,large",
                      help=f"comma-separated subset of {','.join(SHAPES)}")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--inputs", type=int, default=512,
                      help="encoder length (tokens)")
  parser.add_argument("--targets", type=int, default=128,
                      help="decoder length (tokens)")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--steps", type=int, default=10, help="timed steps")
  parser.add_argument("--remat", default="none", choices=REMAT_POLICIES,
                      help="the model's remat_policy")
  args = parser.parse_args(argv)
  shapes = [s for s in args.shape.split(",") if s]
  unknown = sorted(set(shapes) - set(SHAPES))
  if unknown:
    parser.error(f"unknown shape(s) {', '.join(unknown)}; use "
                 f"{', '.join(SHAPES)}")
  if min(args.batch, args.inputs, args.targets, args.steps) < 1:
    parser.error("--batch, --inputs, --targets and --steps must be >= 1")

  device = jax.devices()[0]
  print(f"device: {device.device_kind} ({device.platform}), "
        f"jax {jax.__version__}", flush=True)
  results = []
  for shape in shapes:
    try:
      result = measure(shape, batch_size=args.batch, inputs=args.inputs,
                       targets=args.targets, warmup=args.warmup,
                       steps=args.steps, remat_policy=args.remat)
    except jax.errors.JaxRuntimeError as e:  # out of memory, most often
      result = {"shape": shape, "error": str(e).splitlines()[0][:500]}
    results.append(result)
    print(format_result(result), flush=True)
  print(json.dumps({"device_kind": device.device_kind,
                    "platform": device.platform, "jax": jax.__version__,
                    "results": results}))


if __name__ == "__main__":
  main()
