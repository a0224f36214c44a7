"""Benchmark: a training step on 1 host CPU device against 8 (1-D and 2-D).

The trainer shards with a ('data', 'model') mesh (t5x_runs/partitioning.py).
This times the trainer's sharded step (``trainer.init_train_state``, which
places the parameters with ``partitioning.param_shardings`` and the
Adafactor state like them, and ``ShardedTrainState.compile_step``: the
trainer's step jit-compiled with explicit in/out shardings, the batch split
with ``partitioning.batch_sharding``, parameters and state donated) with the
same global batch on three meshes of ``partitioning.make_mesh``:

    1     one device, no sharding (the baseline)
    8x1   8 host devices, pure data parallelism (batch split 8 ways)
    4x2   8 host devices, 4-way data x 2-way model parallelism (heads, mlp,
          vocabulary split in two)

mT5-Small runs its 8-device meshes with 2-D parameter sharding ('embed' of
the parameters split over 'data' too): replicated 8 times, its parameters,
gradients and update temporaries need 25.6 GiB (`korani plan`), more than
the 24 GiB development machine, where 8x1 was killed for memory.

Each mesh runs in its own interpreter, because the device count
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``) must be set before
jax is imported. Per mesh: compile with the first step, a warm-up step, then
the median of ``--steps`` steps. The first step's loss is printed too: the
same batch and initialization give the same loss on every mesh.

    .venv/bin/python bench/bench_sharded_step.py --steps 2

With 2 physical cores, 8 host devices share them: the 8-device meshes add
the collectives (all-reduce of the gradients; all-gather/reduce-scatter for
the model axis and for 2-D sharding) and split already small matrix
products into smaller ones, with no compute to gain, so they are expected
to be slower; they can win back time where a single device leaves a core
idle (XLA:CPU runs much of the elementwise work, such as the optimizer
update, on one thread per device). The ratio records the net cost of the
sharding machinery on CPU; it says nothing about accelerators. Add the
output to bench/RESULTS.md.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# name: (size, vocab_size or None, global batch, inputs, targets,
#        2-D parameter sharding on the 8-device meshes)
SHAPES = {
    "tiny-demo": ("tiny", 4096, 24, 384, 8, False),
    "small": ("small", None, 8, 64, 16, True),
}
# name: (devices, num_partitions)
MESHES = {"1": (1, 1), "8x1": (8, 1), "4x2": (8, 2)}


def _worker(shape: str, mesh_name: str, steps: int) -> dict:
  """Runs in a fresh interpreter with the device count already set."""
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel

  from bench_planner_memory import synthetic_batch  # pylint: disable=import-outside-toplevel
  from t5x_runs import partitioning  # pylint: disable=import-outside-toplevel
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  from t5x_runs.models import MT5, mt5_config  # pylint: disable=import-outside-toplevel

  size, vocab_size, batch_size, inputs, targets, two_d = SHAPES[shape]
  num_devices, num_partitions = MESHES[mesh_name]
  two_d = two_d and num_devices > 1
  devices = jax.devices()
  if len(devices) != num_devices:
    raise RuntimeError(f"mesh {mesh_name} needs {num_devices} devices, "
                       f"jax has {len(devices)}")
  config = mt5_config(size, **({} if vocab_size is None
                               else {"vocab_size": vocab_size}))
  lengths = {"inputs": inputs, "targets": targets}
  model = MT5(config)
  optimizer = trainer.make_optimizer()
  mesh = partitioning.make_mesh(num_partitions, devices)
  rules = partitioning.standard_logical_axis_rules(two_d)
  state = trainer.init_train_state(model, optimizer, mesh, rules, lengths,
                                   seed=0)
  step = state.compile_step(model, optimizer, z_loss=1e-4)
  params, opt_state = state.params, state.opt_state
  batch = jax.device_put(synthetic_batch(config, batch_size, lengths),
                         partitioning.batch_sharding(mesh))
  times, losses = [], []
  with mesh, nn.logical_axis_rules(rules):
    for i in range(steps + 2):  # compile + warm-up, then the timed steps
      tick = time.perf_counter()
      params, opt_state, metrics = step(params, opt_state, batch,
                                        jax.random.PRNGKey(i))
      losses.append(float(metrics["loss"]))  # waits for the step
      times.append(time.perf_counter() - tick)
  return {"shape": shape, "mesh": mesh_name + ("/2d" if two_d else ""),
          "devices": len(devices),
          "data": mesh.shape[partitioning.DATA_AXIS],
          "model": mesh.shape[partitioning.MODEL_AXIS],
          "compile_and_first_s": times[0], "step_s": times[2:],
          "median_s": statistics.median(times[2:]), "first_loss": losses[0],
          "jax": jax.__version__}


def _run(shape: str, mesh_name: str, steps: int) -> dict:
  env = dict(os.environ)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  num_devices = MESHES[mesh_name][0]
  if num_devices > 1:
    flags.append(f"--xla_force_host_platform_device_count={num_devices}")
  env["XLA_FLAGS"] = " ".join(flags)
  result = subprocess.run(
      [sys.executable, __file__, "--worker", shape, mesh_name,
       "--steps", str(steps)],
      env=env, capture_output=True, text=True, check=False)
  if result.returncode:
    raise RuntimeError(
        f"{shape} on mesh {mesh_name} failed with exit code "
        f"{result.returncode} (-9: killed, e.g. for memory):\n"
        f"{result.stderr[-3000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=2,
                      help="timed steps per mesh (after a warm-up step)")
  parser.add_argument("--shapes", nargs="+", default=list(SHAPES),
                      choices=list(SHAPES))
  parser.add_argument("--worker", nargs=2, metavar=("SHAPE", "MESH"),
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    print(json.dumps(_worker(*args.worker, args.steps)))
    return

  header = (f"{'shape':10s} {'mesh':7s} {'data x model':>12s} "
            f"{'first loss':>10s} {'compile+1st s':>13s} {'median step s':>13s} "
            f"{'vs 1 device':>11s}")
  print(header)
  print("-" * len(header))
  tick = time.perf_counter()
  rows = []
  for shape in args.shapes:
    base = None
    for mesh_name in MESHES:
      row = _run(shape, mesh_name, args.steps)
      rows.append(row)
      base = base or row["median_s"]
      print(f"{shape:10s} {row['mesh']:7s} {row['data']:>7d} x {row['model']:d} "
            f"{row['first_loss']:10.4f} {row['compile_and_first_s']:13.1f} "
            f"{row['median_s']:13.3f} {row['median_s'] / base:10.2f}x",
            flush=True)
  for shape in args.shapes:
    first = [r["first_loss"] for r in rows if r["shape"] == shape]
    print(f"{shape}: first-step losses differ by at most "
          f"{max(first) - min(first):.2e} across meshes")
  print("\ntimed steps (s):")
  for row in rows:
    times = " ".join(f"{t:.3f}" for t in row["step_s"])
    print(f"  {row['shape']} {row['mesh']}: {times}")
  print(f"total {time.perf_counter() - tick:.0f} s; machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores, jax {rows[0]['jax'] if rows else '?'}")


if __name__ == "__main__":
  main()
