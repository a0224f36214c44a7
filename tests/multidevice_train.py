"""Trains the tiny model under several meshes, in a process of its own.

Run by tests/test_sharding.py in a subprocess, because the number of host
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and JAX's
distributed runtime are fixed when JAX starts. Two modes:

    # One process, 8 host devices: train once per mesh ("4x2" = 4 data x 2
    # model; "8x1/2d" = 8 x 1 with 2-D parameter sharding).
    python tests/multidevice_train.py meshes --meshes 8x1/2d,4x2,1x8 \\
        --model_dir DIR --vocabulary V --output result.json

    # One of several processes on 127.0.0.1 (gloo collectives), running
    # phases NAME:NUM_PARTITIONS in turn: "train" (STEPS steps), "resume"
    # (STEPS - 1 steps, then resumed to STEPS), "sigterm" (process 1 gets
    # SIGTERM after step 2), "fail" (the last process fails; must not
    # return), "kill" (the last process is SIGKILLed; must not return).
    python tests/multidevice_train.py process --process_index 0 \\
        --process_count 2 --coordinator 127.0.0.1:PORT --model_dir DIR \\
        --vocabulary V --output result0.json --phases resume:4,train:2,fail:4

Each writes JSON: per run the logged losses, and (meshes mode) the shardings
and per-device shard shapes of the parameters, or (process mode) per phase
the digests of the host batches read, the final parameters' sha256 and
path to an .npz copy, and what each checkpoint's manifest covers.
"""

import argparse
import hashlib
import json
import logging
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASK = "korani_kobest_sentineg_ko_review_sentiment"
LENGTHS = {"inputs": 64, "targets": 8}
BATCH_SIZE = 8
STEPS = 4
# The tiny shape with 8 heads (of 8), so that a 1x8 mesh can split them.
MODEL = {"num_heads": 8, "head_dim": 8}


def _train(model_dir, vocabulary, steps, batch_size=BATCH_SIZE,
           checkpoint_period=2, **kwargs):
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  from t5x_runs.models import mt5_config  # pylint: disable=import-outside-toplevel
  return trainer.train(
      model_dir=model_dir, mixture_or_task_name=TASK,
      task_feature_lengths=LENGTHS, batch_size=batch_size,
      num_train_steps=steps,
      model_config=mt5_config("tiny", vocab_size=None, **MODEL),
      vocabulary=vocabulary, checkpoint_period=checkpoint_period, log_period=1,
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


def _microbatched_updates(mesh_shape=(4, 2)):
  """One step of the sharded train step with NUM_MICROBATCHES 1 and 2.

  On a data x model mesh, with plain SGD (its update is the gradient, so
  the accumulated gradient itself is compared). Returns the largest
  absolute difference of the updates and of the metrics, and the largest
  update.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from flax import linen as nn  # pylint: disable=import-outside-toplevel
  from t5x_runs import partitioning, trainer  # pylint: disable=import-outside-toplevel
  from t5x_runs.models import MT5, mt5_config  # pylint: disable=import-outside-toplevel
  data, model_parallel = mesh_shape
  mesh = partitioning.make_mesh(model_parallel)
  assert mesh.shape == {"data": data, "model": model_parallel}, mesh.shape
  model = MT5(mt5_config("tiny", vocab_size=256, dropout_rate=0.0, **MODEL))
  optimizer = optax.sgd(1.0)
  rules = partitioning.standard_logical_axis_rules()
  rng = np.random.RandomState(0)
  targets = rng.randint(2, 256, (BATCH_SIZE, 6)).astype(np.int32)
  for row in range(BATCH_SIZE):  # rows with 1..6 target tokens
    targets[row, 1 + row % 6:] = 0
  batch = {"encoder_input_tokens": rng.randint(2, 256, (BATCH_SIZE, 12)
                                               ).astype(np.int32),
           "decoder_input_tokens": np.pad(targets, [(0, 0), (1, 0)])[:, :-1],
           "decoder_target_tokens": targets,
           "decoder_loss_weights": (targets > 0).astype(np.float32)}
  updates, metrics = {}, {}
  for n in (1, 2):
    state = trainer.init_train_state(model, optimizer, mesh, rules,
                                     {"inputs": 12, "targets": 6}, seed=0)
    before = jax.tree.map(np.asarray, state.params)
    with mesh, nn.logical_axis_rules(rules):
      step = state.compile_step(model, optimizer, 1e-4, num_microbatches=n)
      params, _, metrics[n] = step(
          state.params, state.opt_state,
          jax.device_put(batch, partitioning.batch_sharding(mesh)),
          jax.random.PRNGKey(1))
    updates[n] = jax.tree.map(lambda a, b: np.asarray(a) - b, params, before)
  return {
      "update_diff": max(float(np.abs(a - b).max()) for a, b in zip(
          jax.tree.leaves(updates[1]), jax.tree.leaves(updates[2]))),
      "largest_update": max(float(np.abs(a).max())
                            for a in jax.tree.leaves(updates[1])),
      "metrics": {k: [float(metrics[1][k]), float(metrics[2][k])]
                  for k in metrics[1]}}


def run_meshes(args):
  import jax  # pylint: disable=import-outside-toplevel
  from korani_tasks import errors  # pylint: disable=import-outside-toplevel
  results = {"device_count": jax.device_count(),
             "microbatches": _microbatched_updates()}
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


_FAIL_AFTER = []  # [n]: reading fails once n batches have been read


def _record_batches():
  """Makes each process note a digest of every host batch it reads."""
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  seen = []
  read = trainer.DataIterator.__next__

  def next_and_record(self):
    if _FAIL_AFTER and len(seen) >= _FAIL_AFTER[0]:
      raise RuntimeError(f"injected failure reading batch {len(seen) + 1}")
    batch = read(self)
    digest = hashlib.sha256()
    for key in sorted(batch):
      digest.update(key.encode() + batch[key].tobytes())
    seen.append(digest.hexdigest())
    return batch
  trainer.DataIterator.__next__ = next_and_record
  return seen


def _signal_at_step(step, process_index, signum=signal.SIGTERM):
  """Sends this process `signum` once the trainer logs `step`."""
  import jax  # pylint: disable=import-outside-toplevel

  class Handler(logging.Handler):
    def emit(self, record):
      if (jax.process_index() == process_index
          and record.getMessage().startswith(f"step {step}/")):
        os.kill(os.getpid(), signum)
  logging.getLogger().addHandler(Handler())
  logging.getLogger().setLevel(logging.INFO)


def _final_params(model_dir, model_config, npz):
  """The last checkpoint's parameters, restored replicated: (path, sha256)."""
  import jax  # pylint: disable=import-outside-toplevel
  from t5x_runs import evaluator, partitioning  # pylint: disable=import-outside-toplevel
  params, _ = evaluator.restore_params(model_dir, model_config,
                                       partitioning.make_mesh(1))
  flat = {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  np.savez(npz, **flat)
  digest = hashlib.sha256()
  for key in sorted(flat):
    digest.update(key.encode() + flat[key].tobytes())
  return npz, digest.hexdigest()


def _manifest_check(step_dir):
  """What a step's manifest covers and whether its files match it."""
  from t5x_runs import checkpoints  # pylint: disable=import-outside-toplevel
  with open(os.path.join(step_dir, checkpoints.MANIFEST)) as f:
    files = json.load(f)["files"]
  written = set()
  for root, _, names in os.walk(step_dir):
    written.update(os.path.relpath(os.path.join(root, n), step_dir)
                   for n in names)
  return {"missing": sorted(written - set(files) - {
              checkpoints.MANIFEST, checkpoints.ORBAX_STEP_METADATA,
              checkpoints.ORBAX_COMMIT_MARK}),
          "unhashed": sorted(n for n, e in files.items() if "sha256" not in e),
          "hashed_by": sorted({e["hashed_by"] for e in files.values()}),
          "problem": checkpoints.check_manifest(step_dir, verify_hashes=True)}


def run_process(args):
  """Runs the phases of `args.phases` (module docstring), writing results."""
  import jax  # pylint: disable=import-outside-toplevel
  from t5x_runs import checkpoints, distributed  # pylint: disable=import-outside-toplevel
  distributed.initialize(args.coordinator, args.process_count,
                         args.process_index)
  batches = _record_batches()
  results = {"process_index": jax.process_index(),
             "process_count": jax.process_count(),
             "device_count": jax.device_count()}
  base = os.path.splitext(args.output)[0]
  for phase in args.phases.split(","):
    name, _, partitions = phase.partition(":")
    partitions = int(partitions or 1)
    model_dir = os.path.join(args.model_dir, phase.replace(":", "_"))
    first = len(batches)
    if name == "resume":
      # STEPS - 1 steps with a checkpoint at 2, then resume to STEPS: every
      # process writes and restores the orbax checkpoints together.
      runs = [_train(model_dir, args.vocabulary, STEPS - 1,
                     num_partitions=partitions),
              _train(model_dir, args.vocabulary, STEPS,
                     num_partitions=partitions)]
    elif name == "train":
      runs = [_train(model_dir, args.vocabulary, STEPS,
                     num_partitions=partitions)]
    elif name == "sigterm":
      # Process 1 gets SIGTERM after step 2 of 1000: all stop at one step
      # (with a grace period that a slow machine cannot run out of).
      _signal_at_step(2, process_index=1)
      runs = [_train(model_dir, args.vocabulary, 1000,
                     num_partitions=partitions, checkpoint_period=1000,
                     preemption_grace_seconds=600)]
    elif name == "fail":
      # The last process fails reading its second batch, while the others
      # wait for it in step 2's collectives.
      if jax.process_index() == jax.process_count() - 1:
        _FAIL_AFTER.append(len(batches) + 1)
      try:
        _train(model_dir, args.vocabulary, STEPS, num_partitions=partitions)
      except RuntimeError as e:
        distributed.report_failure(f"{type(e).__name__}: {e}")
      raise AssertionError("the failure must have stopped every process")
    elif name == "kill":
      # The last process is killed (SIGKILL: no word to the others) after
      # step 1; the others wait for it in step 2's collectives.
      _signal_at_step(1, jax.process_count() - 1, signal.SIGKILL)
      _train(model_dir, args.vocabulary, STEPS, num_partitions=partitions)
      raise AssertionError("the lost process must have stopped every process")
    store = checkpoints.CheckpointStore(model_dir, read_only=True)
    steps = store.all_steps()
    manifests = {step: _manifest_check(store.step_dir(step)) for step in steps}
    store.close()
    npz, digest = _final_params(model_dir, runs[0].model_config,
                                f"{base}_{phase.replace(':', '_')}.npz")
    results[phase] = {
        "losses": [loss for run in runs for _, loss in run.losses],
        "start_steps": [run.start_step for run in runs],
        "final_steps": [run.final_step for run in runs],
        "preempted": [run.preempted for run in runs],
        "checkpoint_steps": steps, "manifests": manifests,
        "batches": batches[first:],
        "params_npz": npz, "params_sha256": digest}
    _write(results, args.output)
  return results


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
  parser.add_argument("--phases", default="resume:1")
  args = parser.parse_args()
  results = run_meshes(args) if args.mode == "meshes" else run_process(args)
  _write(results, args.output)


def _write(results, path):
  with open(path + ".tmp", "w") as f:
    json.dump(results, f)
  os.replace(path + ".tmp", path)


if __name__ == "__main__":
  main()
