"""Benchmark: the planner's per-device memory against XLA's, on CPU.

`korani plan` (t5x_runs/planner.py) estimates a training step's memory per
device before anything runs. This compiles the trainer's real step
(``trainer.make_train_step`` with ``trainer.make_optimizer()``, parameters
and optimizer state donated, a packed batch) for each shape on one device,
takes XLA's figure for it (``compiled.memory_analysis()``: arguments +
outputs + temporaries - aliased outputs; ``planner.compiled_peak_bytes``),
runs the step once on real arrays (timing it, and reading the allocator's
``peak_bytes_in_use`` where the backend has one: XLA:CPU has none) and
prints, per shape, the planner's total, the measured bytes and their ratio.
Goal: within 20% for the rematerialization-free rows.

    .venv/bin/python bench/bench_planner_memory.py

Shapes (one device, float32 activations, dropout 0.1 as the model files):

    tiny-demo   the demo's run: tiny mT5, 4,096-piece vocabulary, batch 24,
                384 input / 8 target tokens (gin/demo.gin)
    tiny-short  tiny mT5, 512-piece vocabulary, batch 8, 64 / 16 tokens
    small       mT5-Small (300M parameters), batch 4, 128 / 32 tokens

The ``--remat`` rows (tiny-demo with 'full' and 'minimal') are printed for
the record, not held to the goal: XLA:CPU recomputes every rematerialized
layer at the start of the backward pass, so its memory barely changes with
the policy, while the planner (and XLA on accelerators) count one layer's
recomputation at a time. Add the output to bench/RESULTS.md.
"""

import argparse
import platform
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from t5x_runs import planner
from t5x_runs.models import MT5, mt5_config

MIB = 1024 ** 2

# name: (size, vocab_size or None for the preset's, batch, inputs, targets)
SHAPES = {
    "tiny-demo": ("tiny", 4096, 24, 384, 8),
    "tiny-short": ("tiny", 512, 8, 64, 16),
    "small": ("small", None, 4, 128, 32),
}
GOAL = 0.2


def _config(size, vocab_size, remat_policy):
  overrides = {"remat_policy": remat_policy}
  if vocab_size is not None:
    overrides["vocab_size"] = vocab_size
  return mt5_config(size, **overrides)


def synthetic_batch(config, batch_size, lengths, seed=0):
  """A packed-looking batch: two segments a row, targets shifted right."""
  rng = np.random.default_rng(seed)
  batch = {}
  for prefix, length in (("encoder", lengths["inputs"]),
                         ("decoder", lengths["targets"])):
    half = length // 2
    segments = np.where(np.arange(length) < half, 1, 2)
    batch[f"{prefix}_segment_ids"] = np.tile(segments, (batch_size, 1))
    batch[f"{prefix}_positions"] = np.tile(
        np.where(segments == 1, np.arange(length), np.arange(length) - half),
        (batch_size, 1))
  batch["encoder_input_tokens"] = rng.integers(
      2, config.vocab_size, (batch_size, lengths["inputs"]))
  targets = rng.integers(2, config.vocab_size, (batch_size, lengths["targets"]))
  inputs = np.concatenate([np.zeros((batch_size, 1), int), targets[:, :-1]], 1)
  inputs[batch["decoder_positions"] == 0] = 0  # each segment starts with 0
  batch["decoder_target_tokens"] = targets
  batch["decoder_input_tokens"] = inputs
  batch["decoder_loss_weights"] = np.ones_like(targets)
  return {k: jnp.asarray(v, jnp.int32) for k, v in batch.items()}


def measure(name, remat_policy):
  """One row: the planner's total, XLA's figure and a real step's time."""
  size, vocab_size, batch_size, inputs, targets = SHAPES[name]
  config = _config(size, vocab_size, remat_policy)
  lengths = {"inputs": inputs, "targets": targets}
  plan = planner.plan(config, batch_size=batch_size,
                      task_feature_lengths=lengths, num_devices=1)
  tick = time.perf_counter()
  compiled = planner.compile_train_step(
      config, batch_size=batch_size, task_feature_lengths=lengths)
  compile_s = time.perf_counter() - tick
  stats = compiled.memory_analysis()

  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  model = MT5(config)
  dummy = jnp.ones((1, 1), jnp.int32)
  params = jax.jit(lambda r: nn.unbox(model.init(r, dummy, dummy)["params"]))(
      jax.random.PRNGKey(0))
  opt_state = jax.jit(trainer.make_optimizer().init)(params)
  batch = synthetic_batch(config, batch_size, lengths)
  tick = time.perf_counter()
  params, opt_state, metrics = compiled(params, opt_state, batch,
                                        jax.random.PRNGKey(1))
  loss = float(metrics["loss"])
  step_s = time.perf_counter() - tick
  assert np.isfinite(loss), loss
  allocator = jax.devices()[0].memory_stats() or {}
  return {
      "shape": name, "remat": remat_policy, "batch": batch_size,
      "lengths": f"{inputs}/{targets}", "params": plan.param_count,
      "plan": plan.total, "plan_acts": plan.activations,
      "plan_update": plan.update_temporaries,
      "measured": planner.compiled_peak_bytes(compiled),
      "temp": stats.temp_size_in_bytes,
      "allocator_peak": allocator.get("peak_bytes_in_use"),
      "compile_s": compile_s, "step_s": step_s, "loss": loss,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--shapes", nargs="+", default=list(SHAPES),
                      choices=list(SHAPES))
  parser.add_argument("--remat", action=argparse.BooleanOptionalAction,
                      default=True,
                      help="also tiny-demo with remat 'full' and 'minimal'")
  args = parser.parse_args()
  runs = [(name, "none") for name in args.shapes]
  if args.remat and "tiny-demo" in args.shapes:
    runs += [("tiny-demo", "full"), ("tiny-demo", "minimal")]

  header = (f"{'shape':11s} {'remat':8s} {'batch':>5s} {'lengths':>8s} "
            f"{'params':>11s} {'plan MiB':>9s} {'XLA MiB':>9s} "
            f"{'plan/XLA':>8s} {'goal':>5s} {'compile s':>9s} {'step s':>7s}")
  print(header)
  print("-" * len(header))
  rows = []
  for name, policy in runs:
    row = measure(name, policy)
    rows.append(row)
    ratio = row["plan"] / row["measured"]
    held = policy == "none"
    verdict = ("ok" if abs(ratio - 1) <= GOAL else "MISS") if held else "-"
    print(f"{name:11s} {policy:8s} {row['batch']:5d} {row['lengths']:>8s} "
          f"{row['params']:11,d} {row['plan'] / MIB:9.1f} "
          f"{row['measured'] / MIB:9.1f} {ratio:8.2f} {verdict:>5s} "
          f"{row['compile_s']:9.1f} {row['step_s']:7.2f}", flush=True)
  print()
  for row in rows:
    print(f"{row['shape']} {row['remat']}: planner activations "
          f"{row['plan_acts'] / MIB:.1f} MiB, update temporaries "
          f"{row['plan_update'] / MIB:.1f} MiB; XLA temporaries "
          f"{row['temp'] / MIB:.1f} MiB; allocator peak "
          f"{'n/a' if row['allocator_peak'] is None else row['allocator_peak']}"
          f"; first-step loss {row['loss']:.3f}")
  print(f"\nmeasured: compiled.memory_analysis() (argument + output + temp - "
        f"alias); the {jax.devices()[0].platform} backend "
        f"{'has no' if rows and rows[0]['allocator_peak'] is None else 'has'}"
        f" allocator statistics (memory_stats)")
  print(f"machine: {platform.processor() or platform.machine()}, "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), "
        f"jax {jax.__version__}")


if __name__ == "__main__":
  main()
