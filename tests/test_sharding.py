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
import re
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
import seqio
from jax.sharding import PartitionSpec as P

from korani_tasks import errors
from t5x_runs import distributed
from t5x_runs import evaluator
from t5x_runs import partitioning
from t5x_runs import planner
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


def _cpu_devices(*per_process):
  """Host devices of processes with these device counts (ids as JAX's)."""
  return [planner.PlannedDevice(sum(per_process[:p]) + i, p)
          for p, count in enumerate(per_process) for i in range(count)]


def _layouts(devices, num_partitions, batch_size):
  grid = partitioning.device_grid(num_partitions, devices)
  processes = sorted({d.process_index for d in devices})
  return {p: partitioning.data_layout(grid, batch_size, p) for p in processes}


@pytest.mark.parametrize("per_process, partitions, shards, groups", [
    # model groups inside a process: each process its own replica
    ((2, 2), 2, 2, [(0,), (1,)]),
    # one group across two processes: both read the whole data
    ((2, 2), 4, 1, [(0, 1)]),
    # two replicas, each across two processes
    ((2, 2, 2, 2), 4, 2, [(0, 1), (2, 3)]),
    # two whole replicas per process
    ((4, 4), 2, 2, [(0,), (1,)]),
])
def test_data_layout_by_replica(per_process, partitions, shards, groups):
  """As t5x's get_data_layout (google-research/t5x@aeeced0e,
  t5x/partitioning.py: LocalChunker, DataLayout): a shard per replica group."""
  layouts = _layouts(_cpu_devices(*per_process), partitions, batch_size=8)
  assert {l.num_shards for l in layouts.values()} == {shards}
  assert sorted({l.processes for l in layouts.values()}) == groups
  for p, layout in layouts.items():
    assert p in layout.processes
    assert layout.host_batch_size == 8 // shards
    assert (layout.shard_info() is None) == (shards == 1)
  # The groups' replicas cover every replica exactly once.
  replicas = [r for g in groups for r in layouts[g[0]].replicas]
  assert sorted(replicas) == list(range(layouts[0].num_replicas))


def test_rows_of_a_process_holding_two_replicas():
  layout = _layouts(_cpu_devices(4, 4), 2, batch_size=8)[1]
  assert layout.replicas == (2, 3) and layout.rows_per_replica == 2
  assert [layout.local_row(r) for r in (4, 5, 6, 7)] == [0, 1, 2, 3]


def test_tpu_mesh_follows_the_topology():
  """XXL's layout: NUM_PARTITIONS=8 on TPU v4 hosts of 4 chips (4x4x4).

  jax's mesh_utils puts each model group on 2x4 neighbouring chips of two
  hosts; the two hosts of a group read the same shard.
  """
  devices = planner.planned_devices(64, tpu_topology="4x4x4")
  grid = partitioning.device_grid(8, devices)
  for row in grid:
    coords = np.array([d.coords for d in row])
    spans = coords.max(0) - coords.min(0) + 1
    assert np.prod(spans) == 8, spans  # a compact block, not a scattered row
  layouts = _layouts(devices, 8, batch_size=64)
  assert {l.num_shards for l in layouts.values()} == {8}
  assert all(len(l.processes) == 2 and l.host_batch_size == 8
             for l in layouts.values())


@pytest.mark.parametrize("per_process, partitions, batch, message", [
    ((2, 2, 2), 3, 8, r"replica 0 is held by processes 0 \(replicas 0\) and "
     r"1 \(replicas 0, 1\)"),
    ((2, 2, 2, 2), 1, 12, r"batch_size=12 \(gin BATCH_SIZE\) must be divisible "
     r"by the 8 data-parallel replicas \(8: 4 processes x 2 devices"),
    ((2, 2, 2, 2), 3, 8, r"num_partitions=3 \(gin NUM_PARTITIONS\) must divide "
     r"the number of devices \(8: 4 processes x 2 devices\)"),
    ((4, 2), 2, 6, r"processes hold between 1 and 2 replicas"),
])
def test_layouts_that_cannot_work_are_named(per_process, partitions, batch,
                                            message):
  with pytest.raises(errors.ConfigError, match=message):
    _layouts(_cpu_devices(*per_process), partitions, batch)


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
  # NUM_MICROBATCHES=2 on 4 data x 2 model devices: the update of one step
  # (SGD: the accumulated gradient) and its metrics equal the full batch's.
  micro = results["microbatches"]
  print("microbatches 1 vs 2 on 4x2:", micro)
  assert micro["largest_update"] > 1e-3  # the update is not trivial
  assert micro["update_diff"] <= 1e-6 + 1e-4 * micro["largest_update"], micro
  for key, (full, accumulated) in micro["metrics"].items():
    np.testing.assert_allclose(accumulated, full, rtol=1e-5, err_msg=key)
  assert "batch_size=12 (gin BATCH_SIZE) must be divisible by the 8 data-" in (
      results["uneven_batch_error"])
  base_losses = [loss for _, loss in base.losses]
  assert len(base_losses) == script.STEPS
  for mesh_name in ("8x1/2d", "4x2", "1x8"):
    run = results[mesh_name]
    losses = [loss for _, loss in run["losses"]]
    print(f"losses on mesh {mesh_name}: {losses} (one device: "
          f"{base_losses})")
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


def _reference_run(vocabulary, steps, num_shards):
  """One process, one device, each step on the shards' batches joined."""
  from korani_tasks import vocab as vocab_lib  # pylint: disable=import-outside-toplevel
  with vocab_lib.using_vocabulary(str(vocabulary)):
    return _train_in_one_process(vocabulary, steps, num_shards)


def _train_in_one_process(vocabulary, steps, num_shards):
  config = trainer.resolve_model_config(
      mt5_config("tiny", vocab_size=None, **script.MODEL),
      seqio.SentencePieceVocabulary(str(vocabulary)))
  model, optimizer = MT5(config), trainer.make_optimizer()
  mesh = partitioning.make_mesh(1)
  state = trainer.init_train_state(
      model, optimizer, mesh, partitioning.standard_logical_axis_rules(),
      script.LENGTHS, seed=0)
  step_fn = state.compile_step(model, optimizer, z_loss=1e-4)
  shards = [trainer.train_batches(
      script.TASK, script.LENGTHS, script.BATCH_SIZE // num_shards, seed=0,
      shard_info=(seqio.ShardInfo(index=i, num_shards=num_shards)
                  if num_shards > 1 else None)).as_numpy_iterator()
            for i in range(num_shards)]
  layout = partitioning.data_layout(mesh.devices, script.BATCH_SIZE)
  params, opt_state, losses = state.params, state.opt_state, []
  for step in range(1, steps + 1):
    parts = [next(s) for s in shards]
    batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    batch = distributed.global_batch(batch, partitioning.batch_sharding(mesh),
                                     layout)
    rng = jax.random.fold_in(jax.random.PRNGKey(0), step)
    params, opt_state, metrics = step_fn(params, opt_state, batch, rng)
    losses.append(float(metrics["loss"]))
  flat = {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  return losses, flat


def _launch(tmp_path, vocabulary, name, process_count, devices, phases):
  """Starts `process_count` processes of `devices` host devices each.

  Returns [(process, its log file)].
  """
  port = _free_port()
  env = dict(os.environ,
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  launched = []
  for i in range(process_count):
    log = tmp_path / f"{name}{i}.log"
    with open(log, "w") as out:
      launched.append((subprocess.Popen(
          [sys.executable, str(SCRIPT), "process", "--process_index", str(i),
           "--process_count", str(process_count), "--coordinator",
           f"127.0.0.1:{port}", "--model_dir", str(tmp_path / name),
           "--vocabulary", str(vocabulary), "--output",
           str(tmp_path / f"{name}{i}.json"), "--phases", phases],
          env=env, stdout=out, stderr=subprocess.STDOUT), log))
  return launched


def _finish(launched, timeout=1200):
  """Waits for the processes; returns (exit codes, logs)."""
  try:
    for proc, _ in launched:
      proc.wait(timeout=timeout)
  finally:
    for proc, _ in launched:
      if proc.poll() is None:
        proc.kill()
  return ([proc.returncode for proc, _ in launched],
          [log.read_text() for _, log in launched])


@pytest.mark.slow
def test_processes_train_together(session_vocab, tmp_path):
  """Model groups inside a process, one across processes, several replicas
  each across processes: every layout trains as one process does, and
  writes checkpoints whose manifests all processes hashed.

  Layouts (batch 8, 4 steps): 2 processes x 2 devices with num_partitions=4
  (one replica over both: the whole data in each) and 2 (a replica per
  process, 2 shards); 4 processes x 2 devices with num_partitions=4 (2
  replicas of 2 processes each). Then the last of the 2 processes is
  killed (SIGKILL), and on the 4 one gets SIGTERM, then the last fails:
  the others stop too, naming it.
  """
  # The references also prepare the TFDS data before the processes read it.
  one_losses, one_params = _reference_run(session_vocab, script.STEPS, 1)
  two_losses, two_params = _reference_run(session_vocab, script.STEPS, 2)
  two = _launch(tmp_path, session_vocab, "two", 2, 2, "resume:4,train:2,kill:4")
  four = _launch(tmp_path, session_vocab, "four", 4, 2,
                 "train:4,sigterm:4,fail:4")
  codes, logs = {}, {}
  # The bounds are liveness limits: a survivor that waited for its lost
  # peer forever would hold the test until CI's own timeout.
  codes["two"], logs["two"] = _finish(two)
  codes["four"], logs["four"] = _finish(four)
  # SIGKILL: process 1 is gone without a word; process 0 names it.
  assert codes["two"] == [distributed.EXIT_FAILED, -signal.SIGKILL], (
      codes["two"], logs["two"][0][-3000:])
  assert re.search(r"process 0: stopping because process 1 \(\S+ pid \d+\) "
                   r"stopped responding: no sign of life for \d+ s",
                   logs["two"][0]), logs["two"][0][-3000:]
  # The failure: process 3 reports it, the others stop with it in their logs.
  assert codes["four"] == [distributed.EXIT_FAILED] * 4, [
      log[-3000:] for log in logs["four"]]
  for i in range(3):
    assert re.search(rf"process {i}: stopping because process 3 failed: "
                     r"RuntimeError: injected failure reading batch \d+",
                     logs["four"][i]), logs["four"][i][-3000:]
  two = [json.loads((tmp_path / f"two{i}.json").read_text())
         for i in range(2)]
  four = [json.loads((tmp_path / f"four{i}.json").read_text())
          for i in range(4)]
  assert [r["device_count"] for r in two + four] == [4] * 2 + [8] * 4

  def check(results, phase, groups, ref_losses, ref_params):
    runs = [r[phase] for r in results]
    print(f"{len(runs)} processes, {phase}: losses {runs[0]['losses']} "
          f"(one process: {ref_losses})")
    # The processes agree exactly (replicated results after all-reduces)...
    assert all(r["losses"] == runs[0]["losses"] for r in runs), phase
    assert len({r["params_sha256"] for r in runs}) == 1, phase
    # ... the processes of a replica read the same batches, other replicas
    # other ones ...
    for group in groups:
      assert all(runs[p]["batches"] == runs[group[0]]["batches"]
                 for p in group), (phase, group)
    firsts = [runs[g[0]]["batches"][0] for g in groups]
    assert len(set(firsts)) == len(groups), phase
    # ... and with one process stepping on all shards' batches.
    np.testing.assert_allclose(runs[0]["losses"], ref_losses,
                               rtol=LOSS_RTOL, err_msg=phase)
    with np.load(runs[0]["params_npz"]) as got:
      _assert_close_params(dict(got), ref_params)
    # Every checkpoint's manifest covers all its files, hashed by all the
    # processes (each a share), and the files match it.
    manifests = runs[0]["manifests"]
    assert sorted(map(int, manifests)) == runs[0]["checkpoint_steps"], phase
    for step, manifest in manifests.items():
      assert manifest == {"missing": [], "unhashed": [],
                          "hashed_by": list(range(len(runs))),
                          "problem": None}, (phase, step)
    return runs[0]

  resumed = check(two, "resume:4", [(0, 1)], one_losses, one_params)
  # Trained to step 3, then resumed from the checkpoint written by both.
  assert resumed["start_steps"] == [0, 3]
  assert resumed["checkpoint_steps"][-1] == script.STEPS
  check(two, "train:2", [(0,), (1,)], two_losses, two_params)
  check(four, "train:4", [(0, 1), (2, 3)], two_losses, two_params)
  # SIGTERM to process 1 after step 2: every process saves one step and
  # stops there, long before step 1000.
  stopped = [r["sigterm:4"] for r in four]
  assert all(r["preempted"] == [True] for r in stopped)
  final = {r["final_steps"][0] for r in stopped}
  assert len(final) == 1 and 2 <= final.pop() < 1000
  assert stopped[0]["checkpoint_steps"] == stopped[0]["final_steps"]


def test_a_silent_process_is_named_after_the_limit():
  """The watcher's view of the others' signs of life (no processes)."""
  peers = distributed._Peers(0, 3, lost_after_seconds=5)  # pylint: disable=protected-access
  start = peers.last_look
  key = distributed._ALIVE_KEY  # pylint: disable=protected-access
  signs = [(f"{key}/0", "9 a pid 1"), (f"{key}/1", "1 hostb pid 22"),
           (f"{key}/2", "1 hostc pid 33")]
  assert peers.lost(signs, start + 0.5) is None
  # Process 1 keeps counting, process 2 stops: 2 is lost after 5 s.
  for t in range(1, 6):
    signs[1] = (f"{key}/1", f"{t + 1} hostb pid 22")
    assert peers.lost(signs, start + 0.5 + t) is None
  signs[1] = (f"{key}/1", "7 hostb pid 22")
  assert peers.lost(signs, start + 6.6) == (
      "process 2 (hostc pid 33) stopped responding: no sign of life for 6 s "
      "(killed, out of memory, or its host failed; see its log)")
  # A process that finished (marked done) is never lost.
  signs[2] = (f"{key}/2", distributed._DONE)  # pylint: disable=protected-access
  signs[1] = (f"{key}/1", "8 hostb pid 22")
  assert peers.lost(signs, start + 7.1) is None
  assert peers.lost(signs, start + 7.6) is None
  # This watcher paused for 60 s (starved): the others' clocks stood still.
  signs[1] = (f"{key}/1", "9 hostb pid 22")
  assert peers.lost(signs, start + 8.1) is None
  assert peers.lost(signs, start + 68.1) is None
  # Then, looking twice a second, it finds process 1 silent 5 s later.
  t = 68.1
  while (lost := peers.lost(signs, start + t)) is None:
    t += 0.5
  assert lost.startswith("process 1 (hostb pid 22) stopped responding")
  assert 68.1 + 4 <= t <= 68.1 + 6


def test_distributed_flags_are_checked():
  from korani_tasks import errors  # pylint: disable=import-outside-toplevel
  with pytest.raises(errors.ConfigError, match="--process_index=4"):
    distributed.initialize("10.0.0.2:1234", 4, 4)
  with pytest.raises(errors.ConfigError, match="need --coordinator_address"):
    distributed.initialize(None, 4, 0)
  with pytest.raises(errors.ConfigError, match="HOST:PORT"):
    distributed.initialize("10.0.0.2", 2, 0)
  from t5x_runs import flags  # pylint: disable=import-outside-toplevel
  args = flags.parse(flags.parser("t"), ["--heartbeat_timeout_seconds=20"])
  assert flags.distributed_settings(args) == {"heartbeat_timeout_seconds": 20}
  with pytest.raises(errors.ConfigError,
                     match="--heartbeat_timeout_seconds=1 must be at least 2"):
    distributed.initialize("10.0.0.2:1234", 2, 0, heartbeat_timeout_seconds=1)
  # One host, no flags: nothing to initialize, one data shard.
  assert distributed.initialize() is False
  layout = partitioning.data_layout(partitioning.make_mesh(1).devices, 8)
  assert layout.shard_info() is None and layout.host_batch_size == 8


def test_sigterm_stops_after_the_step():
  """Alone, a process stops after the step it runs; the handler goes after."""
  with distributed.PreemptionHandler(grace_seconds=600) as preemption:
    assert not preemption.should_stop(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert preemption.signalled.wait(60)
    assert preemption.should_stop(2)
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_sigterm_ends_a_stuck_process():
  """A process that cannot begin its checkpoint exits after the grace."""
  code = ("import os, signal, time\n"
          "from t5x_runs import distributed\n"
          "with distributed.PreemptionHandler(grace_seconds=1):\n"
          "  os.kill(os.getpid(), signal.SIGTERM)\n"
          "  time.sleep(300)  # stuck\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=240, check=False,
                        env=dict(os.environ, PYTHONPATH=str(SCRIPT.parents[1])))
  assert proc.returncode == distributed.EXIT_PREEMPTED, proc.stderr[-3000:]
  assert "SIGTERM: no checkpoint begun within 1 s" in proc.stderr
