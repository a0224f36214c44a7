"""Trains the tiny model under several meshes, in a process of its own.

Run by tests/test_sharding.py in a subprocess, because the number of host
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and JAX's
distributed runtime are fixed when JAX starts. Two modes:

    # One process, 8 host devices: train once per mesh ("4x2" = 4 data x 2
    # model; "8x1/2d" = 8 x 1 with 2-D parameter sharding).
    python tests/multidevice_train.py meshes --meshes 8x1/2d,4x2,1x8 \\
        --model_dir DIR --vocabulary V --output result.json

    # One of several processes on 127.0.0.1 (gloo collectives).
    python tests/multidevice_train.py process --process_index 0 \\
        --process_count 2 --coordinator 127.0.0.1:PORT --model_dir DIR \\
        --vocabulary V --output result0.json

Each writes JSON: per run the logged losses, and (meshes mode) the shardings
and per-device shard shapes of the parameters, or (process mode) the final
parameters' sha256 and path to an .npz copy.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASK = "korani_kobest_sentineg_ko_review_sentiment"
LENGTHS = {"inputs": 64, "targets": 8}
BATCH_SIZE = 8
STEPS = 4
# The tiny shape with 8 heads (of 8), so that a 1x8 mesh can split them.
MODEL = {"num_heads": 8, "head_dim": 8}


def _train(model_dir, vocabulary, steps, batch_size=BATCH_SIZE, **kwargs):
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  from t5x_runs.models import mt5_config  # pylint: disable=import-outside-toplevel
  return trainer.train(
      model_dir=model_dir, mixture_or_task_name=TASK,
      task_feature_lengths=LENGTHS, batch_size=batch_size,
      num_train_steps=steps,
      model_config=mt5_config("tiny", vocab_size=None, **MODEL),
      vocabulary=vocabulary, checkpoint_period=2, log_period=1,
      progress=False, **kwargs)


def _shardings(num_partitions, parameter_2d_sharding, vocab_size):
  """{param path: (spec, shard shape)} of the trainer's initial state."""
  import jax  # pylint: disable=import-outside-toplevel
  from t5x_runs import partitioning, trainer  # pylint: disable=import-outside-toplevel
  from t5x_runs.models import MT5, mt5_config  # pylint: disable=import-outside-toplevel
  mesh = partitioning.make_mesh(num_partitions)
  rules = partitioning.standard_logical_axis_rules(parameter_2d_sharding)
  model = MT5(mt5_config("tiny", vocab_size=vocab_size, **MODEL))
  state = trainer.init_train_state(model, trainer.make_optimizer(), mesh,
                                   rules, LENGTHS, seed=0)
  out = {}
  for tree, kind in ((state.params, "params"), (state.opt_state, "opt_state")):
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      name = kind + jax.tree_util.keystr(path)
      out[name] = {"spec": str(leaf.sharding.spec),
                   "shape": list(leaf.shape),
                   "shard_shape": list(leaf.addressable_shards[0].data.shape),
                   "devices": len(leaf.sharding.device_set)}
  return out


def run_meshes(args):
  import jax  # pylint: disable=import-outside-toplevel
  from korani_tasks import errors  # pylint: disable=import-outside-toplevel
  results = {"device_count": jax.device_count()}
  try:
    _train(os.path.join(args.model_dir, "uneven"), args.vocabulary, 1,
           batch_size=12)
  except errors.ConfigError as e:
    results["uneven_batch_error"] = str(e)
  for name in args.meshes.split(","):
    shape, _, option = name.partition("/")
    data, model = (int(n) for n in shape.split("x"))
    assert data * model == jax.device_count(), (name, jax.device_count())
    two_d = option == "2d"
    model_dir = os.path.join(args.model_dir, name.replace("/", "_"))
    result = _train(model_dir, args.vocabulary, STEPS, num_partitions=model,
                    parameter_2d_sharding=two_d)
    results[name] = {
        "model_dir": model_dir, "losses": result.losses,
        "shardings": _shardings(model, two_d, result.model_config.vocab_size)}
  return results


def run_process(args):
  import jax  # pylint: disable=import-outside-toplevel
  from t5x_runs import distributed  # pylint: disable=import-outside-toplevel
  distributed.initialize(args.coordinator, args.process_count,
                         args.process_index)
  # STEPS - 1 steps with a checkpoint at 2, then resume to STEPS: every
  # process writes and restores the orbax checkpoints together.
  first = _train(args.model_dir, args.vocabulary, STEPS - 1)
  second = _train(args.model_dir, args.vocabulary, STEPS)

  from t5x_runs import checkpoints  # pylint: disable=import-outside-toplevel
  store = checkpoints.CheckpointStore(args.model_dir, read_only=True)
  steps = store.all_steps()
  store.close()
  # Restore the last step into replicated arrays and take this process's copy.
  from t5x_runs import evaluator, partitioning  # pylint: disable=import-outside-toplevel
  mesh = partitioning.make_mesh(1)
  params, _ = evaluator.restore_params(args.model_dir, first.model_config,
                                       mesh)
  flat = {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  npz = os.path.splitext(args.output)[0] + ".npz"
  np.savez(npz, **flat)
  digest = hashlib.sha256()
  for key in sorted(flat):
    digest.update(key.encode() + flat[key].tobytes())
  return {"process_index": jax.process_index(),
          "process_count": jax.process_count(),
          "device_count": jax.device_count(),
          "losses": first.losses + second.losses,
          "start_steps": [first.start_step, second.start_step],
          "checkpoint_steps": steps, "params_npz": npz,
          "params_sha256": digest.hexdigest()}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("mode", choices=["meshes", "process"])
  parser.add_argument("--meshes", default="8x1/2d,4x2,1x8")
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--vocabulary", required=True)
  parser.add_argument("--output", required=True)
  parser.add_argument("--coordinator")
  parser.add_argument("--process_count", type=int)
  parser.add_argument("--process_index", type=int)
  args = parser.parse_args()
  results = run_meshes(args) if args.mode == "meshes" else run_process(args)
  with open(args.output + ".tmp", "w") as f:
    json.dump(results, f)
  os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
  main()
