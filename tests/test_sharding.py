"""Sharded training: meshes of 8 host devices and two processes agree with one.

The runs on several devices happen in subprocesses (tests/multidevice_train.py)
because the device count and JAX's distributed runtime are fixed when JAX
starts; this process trains the single-device references.

Tolerances: a sharded step sums the same numbers in another order (partial
sums per device, then an all-reduce), so float32 results differ in the last
bits and Adafactor's normalized updates carry that on: after 4 steps the
losses agree to rtol 1e-5 and the parameters to atol 2e-5 (they are O(1),
and the updates are O(1e-3)).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
import seqio
from jax.sharding import PartitionSpec as P

from t5x_runs import distributed
from t5x_runs import evaluator
from t5x_runs import partitioning
from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config

import multidevice_train as script

SCRIPT = pathlib.Path(script.__file__)
LOSS_RTOL = 1e-5
PARAM_ATOL = 2e-5


def _run(args, env_extra=None, timeout=600):
  env = dict(os.environ, **(env_extra or {}))
  return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)],
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def _wait(proc, timeout=600):
  out, _ = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, out[-4000:]
  return out


def _params(model_dir, config):
  mesh = partitioning.make_mesh(1)
  params, _ = evaluator.restore_params(str(model_dir), config, mesh)
  return {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}


def _assert_close_params(got, want):
  assert got.keys() == want.keys()
  for key in want:
    np.testing.assert_allclose(got[key], want[key], rtol=0, atol=PARAM_ATOL,
                               err_msg=key)


def test_optimizer_state_follows_the_parameters():
  """Adafactor's factored moments keep the sharding of the dims they keep."""
  mesh = partitioning.make_mesh(1)
  rules = partitioning.standard_logical_axis_rules()
  # Adafactor factors arrays whose two largest dims are >= 128: with an
  # embedding width of 128 the [vocab, embed] and [embed, mlp] arrays are.
  model = MT5(mt5_config("tiny", vocab_size=512, emb_dim=128))
  state = trainer.init_train_state(model, trainer.make_optimizer(), mesh,
                                   rules, {"inputs": 8, "targets": 4}, seed=0)
  wi = state.param_shardings["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
  assert wi.spec == P(None, "model")  # [embed 128, mlp 128]
  specs = {jax.tree_util.keystr(path): leaf.sharding.spec
           for path, leaf in jax.tree_util.tree_flatten_with_path(
               state.opt_state)[0]}
  # [vocab 512, embed 128]: factored into v_row [embed 128] (replicated, as
  # 'embed') and v_col [vocab 512] (split like 'vocab'); v is a [1]
  # placeholder.
  emb = "['token_embedder']['embedding']"
  row = [s for k, s in specs.items() if k.endswith(emb) and ".v_row" in k]
  col = [s for k, s in specs.items() if k.endswith(emb) and ".v_col" in k]
  full = [s for k, s in specs.items() if k.endswith(emb) and ".v" in k
          and ".v_" not in k]
  assert row == [P(None)] and col == [P("model")] and full == [P()]
  # [embed 128] scales are not factored: v has their (replicated) spec.
  scale = "['encoder']['encoder_norm']['scale']"
  assert [s for k, s in specs.items() if k.endswith(scale) and ".v" in k
          and ".v_" not in k] == [P(None)]


@pytest.mark.slow
def test_meshes_of_8_devices_match_one_device(session_vocab, tmp_path):
  base = script._train(str(tmp_path / "one_device"), str(session_vocab),
                       script.STEPS)
  want = _params(tmp_path / "one_device", base.model_config)
  proc = _run(["meshes", "--meshes", "8x1/2d,4x2,1x8",
               "--model_dir", tmp_path, "--vocabulary", session_vocab,
               "--output", tmp_path / "meshes.json"],
              {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  _wait(proc)
  results = json.loads((tmp_path / "meshes.json").read_text())
  assert results["device_count"] == 8
  assert "batch_size=12 must be divisible by the 8 data-parallel" in (
      results["uneven_batch_error"])
  base_losses = [loss for _, loss in base.losses]
  assert len(base_losses) == script.STEPS
  for mesh_name in ("8x1/2d", "4x2", "1x8"):
    run = results[mesh_name]
    losses = [loss for _, loss in run["losses"]]
    np.testing.assert_allclose(losses, base_losses, rtol=LOSS_RTOL,
                               err_msg=mesh_name)
    _assert_close_params(_params(run["model_dir"], base.model_config), want)

  def shard(mesh_name, name):
    return results[mesh_name]["shardings"][name]

  wi = "params['encoder']['layers_0']['mlp']['wi_0']['kernel']"  # [64, 128]
  emb = "params['token_embedder']['embedding']"  # [vocab, 64]
  assert shard("1x8", wi)["shard_shape"] == [64, 16]
  assert shard("4x2", wi)["shard_shape"] == [64, 64]
  assert shard("8x1/2d", wi)["shard_shape"] == [8, 128]  # embed over 'data'
  vocab = shard("1x8", emb)["shape"][0]
  assert shard("1x8", emb)["shard_shape"] == [vocab // 8, 64]
  assert shard("4x2", emb)["spec"] == "P('model', None)"
  # Adam-free Adafactor state is sharded too: the full second moment of an
  # unfactored [64] scale and the factored rows/columns of the embedding.
  sharded_state = [v for k, v in results["1x8"]["shardings"].items()
                   if k.startswith("opt_state") and v["shard_shape"] != v["shape"]]
  assert sharded_state, "no optimizer state array is sharded on 1x8"
  for run in ("4x2", "1x8"):
    sharded = [k for k, v in results[run]["shardings"].items()
               if k.startswith("params") and v["shard_shape"] != v["shape"]]
    # Everything but the 'embed'-only layer-norm scales is split.
    assert len(sharded) == sum(1 for k in results[run]["shardings"]
                               if k.startswith("params")
                               and not k.endswith("['scale']")), run


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _reference_two_shard_run(vocabulary, steps):
  """One process, one device, each step on the two hosts' batches joined."""
  from korani_tasks import vocab as vocab_lib  # pylint: disable=import-outside-toplevel
  vocab_lib.use_vocabulary(str(vocabulary))
  config = trainer.resolve_model_config(
      mt5_config("tiny", vocab_size=None, **script.MODEL),
      seqio.SentencePieceVocabulary(str(vocabulary)))
  model, optimizer = MT5(config), trainer.make_optimizer()
  mesh = partitioning.make_mesh(1)
  state = trainer.init_train_state(
      model, optimizer, mesh, partitioning.standard_logical_axis_rules(),
      script.LENGTHS, seed=0)
  step_fn = state.compile_step(model, optimizer, z_loss=1e-4)
  hosts = [trainer.train_batches(
      script.TASK, script.LENGTHS, script.BATCH_SIZE // 2, seed=0,
      shard_info=seqio.ShardInfo(index=i, num_shards=2)).as_numpy_iterator()
           for i in range(2)]
  params, opt_state, losses = state.params, state.opt_state, []
  for step in range(1, steps + 1):
    parts = [next(h) for h in hosts]
    batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    batch = distributed.global_batch(batch, partitioning.batch_sharding(mesh))
    rng = jax.random.fold_in(jax.random.PRNGKey(0), step)
    params, opt_state, metrics = step_fn(params, opt_state, batch, rng)
    losses.append(float(metrics["loss"]))
  flat = {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  return losses, flat


@pytest.mark.slow
def test_two_processes_train_together(session_vocab, tmp_path):
  # The reference also prepares the TFDS data before the processes read it.
  ref_losses, ref_params = _reference_two_shard_run(session_vocab,
                                                    script.STEPS)
  port = _free_port()
  procs = [_run(["process", "--process_index", i, "--process_count", 2,
                 "--coordinator", f"127.0.0.1:{port}",
                 "--model_dir", tmp_path / "run", "--vocabulary", session_vocab,
                 "--output", tmp_path / f"process{i}.json"])
           for i in range(2)]
  try:
    for proc in procs:
      _wait(proc)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  results = [json.loads((tmp_path / f"process{i}.json").read_text())
             for i in range(2)]
  assert [r["process_index"] for r in results] == [0, 1]
  assert all(r["process_count"] == 2 and r["device_count"] == 2
             for r in results)
  # Trained to step 3, then resumed from the orbax checkpoint written by both.
  assert results[0]["start_steps"] == [0, 3]
  assert results[0]["checkpoint_steps"][-1] == script.STEPS
  # The processes agree exactly (replicated parameters after all-reduces)...
  assert results[0]["losses"] == results[1]["losses"]
  assert results[0]["params_sha256"] == results[1]["params_sha256"]
  # ... and with one process stepping on both hosts' batches.
  losses = [loss for _, loss in results[0]["losses"]]
  np.testing.assert_allclose(losses, ref_losses, rtol=LOSS_RTOL)
  with np.load(results[0]["params_npz"]) as got:
    _assert_close_params(dict(got), ref_params)


def test_distributed_flags_are_checked():
  from korani_tasks import errors  # pylint: disable=import-outside-toplevel
  from t5x_runs import entrypoint  # pylint: disable=import-outside-toplevel
  settings, rest = entrypoint.parse_distributed_flags(
      ["--coordinator_address=10.0.0.2:1234", "--process_count=4",
       "--process_index=3", "--gin.X=1"])
  assert settings == {"coordinator_address": "10.0.0.2:1234",
                      "process_count": 4, "process_index": 3}
  assert rest == ["--gin.X=1"]
  with pytest.raises(errors.ConfigError, match="--process_count='four'"):
    entrypoint.parse_distributed_flags(["--process_count=four"])
  with pytest.raises(errors.ConfigError, match="--process_index=4"):
    distributed.initialize("10.0.0.2:1234", 4, 4)
  with pytest.raises(errors.ConfigError, match="need --coordinator_address"):
    distributed.initialize(None, 4, 0)
  with pytest.raises(errors.ConfigError, match="HOST:PORT"):
    distributed.initialize("10.0.0.2", 2, 0)
  # One host, no flags: nothing to initialize.
  assert distributed.initialize() is False
  assert distributed.shard_info() is None
  assert distributed.host_batch_size(8) == 8
