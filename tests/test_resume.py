"""Exact resume: runs killed with SIGKILL, damaged checkpoints, data iterators.

The training runs are real `python -m t5x_runs.train` processes of the tiny
model on KoBEST SentiNeg: 12 steps, a checkpoint every 2 steps (so that
kills land both between checkpoints and while one is being written), and
dropout on. Every resumed run must end with parameters bit-identical to
one uninterrupted run.
"""

import builtins
import errno
import itertools
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest
import tensorflow as tf
from etils import epath

from korani_tasks import errors
from t5x_runs import checkpoints
from t5x_runs import evaluator
from t5x_runs import partitioning
from t5x_runs import trainer
from t5x_runs.models import MT5

from conftest import REPO_ROOT, SENTINEG

STEPS = 12
CHECKPOINT_PERIOD = 2
LENGTHS = {"inputs": 64, "targets": 4}
# Three different steps to kill at, drawn once from a seeded generator.
KILL_STEPS = sorted(random.Random(10).sample(range(1, STEPS), 3))  # 1, 7, 10
_PROGRESS = re.compile(rf"(?:\b(\d+)/{STEPS}\b|Saved checkpoint (\d+))")
_RESUMED = re.compile(r"Resuming from checkpoint (\d+) in \S+ \(data: ([^)]*)\)")


def _command(model_dir, vocabulary):
  return [sys.executable, "-m", "t5x_runs.train",
          "--gin_file=models/mt5_tiny.gin", "--gin_file=runs/finetune.gin",
          f"--gin.MODEL_DIR={model_dir}",
          f"--gin.MIXTURE_OR_TASK_NAME={SENTINEG}",
          f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
          "--gin.BATCH_SIZE=8", f"--gin.TRAIN_STEPS={STEPS}",
          f"--gin.CHECKPOINT_PERIOD={CHECKPOINT_PERIOD}",
          "--gin.DROPOUT_RATE=0.1", f"--gin.VOCABULARY={vocabulary}"]


def _run(command, env) -> str:
  """Runs a training command to the end; returns its stderr."""
  done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True,
                        text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stderr


def _run_and_kill(command, env, kill_after_step: int) -> str:
  """Starts a training command and SIGKILLs it once it reports a step
  >= kill_after_step (tqdm's 'k/12' or 'Saved checkpoint k'); returns
  what it wrote to stderr."""
  process = subprocess.Popen(command, cwd=REPO_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  output = []

  def watch():
    text = ""
    while chunk := os.read(process.stderr.fileno(), 4096):
      text += chunk.decode("utf-8", "replace")
      output.append(chunk.decode("utf-8", "replace"))
      reported = [int(a or b) for a, b in _PROGRESS.findall(text)]
      if reported and max(reported) >= kill_after_step:
        process.send_signal(signal.SIGKILL)
        break
    while os.read(process.stderr.fileno(), 4096):
      pass

  watcher = threading.Thread(target=watch, daemon=True)
  watcher.start()
  try:
    process.wait(timeout=600)
  finally:
    if process.poll() is None:
      process.kill()
  watcher.join(timeout=10)
  process.stderr.close()
  stderr = "".join(output)
  assert process.returncode == -signal.SIGKILL, (
      f"the run ended (status {process.returncode}) before the kill after "
      f"step {kill_after_step}: {stderr[-2000:]}")
  return stderr


def _saved_steps(model_dir) -> list[int]:
  directory = pathlib.Path(checkpoints.checkpoint_dir(model_dir))
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def _final_params(model_dir) -> list[np.ndarray]:
  config = trainer.load_model_config(str(model_dir))
  params, step = evaluator.restore_params(str(model_dir), config,
                                          partitioning.make_mesh(1))
  assert step == STEPS
  return [np.asarray(x) for x in jax.tree.leaves(params)]


def _assert_bit_identical(a, b):
  assert len(a) == len(b)
  differ = [i for i, (x, y) in enumerate(zip(a, b)) if not np.array_equal(x, y)]
  assert not differ, f"{len(differ)} of {len(a)} parameter arrays differ"


def _largest_file(directory: pathlib.Path) -> pathlib.Path:
  return max((p for p in directory.rglob("*") if p.is_file()),
             key=lambda p: p.stat().st_size)


def _truncate(path: pathlib.Path) -> None:
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


@pytest.fixture(scope="module")
def train_env(tmp_path_factory) -> dict[str, str]:
  """The training processes' environment: JAX's compilation cache, shared
  by the module's runs, spares all but the first run the compile."""
  cache = tmp_path_factory.mktemp("jax_cache")
  return dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache))


@pytest.fixture(scope="module")
def straight_run(session_vocab, train_env, tmp_path_factory):
  """One uninterrupted run: (model dir, final parameters)."""
  model_dir = tmp_path_factory.mktemp("straight")
  _run(_command(model_dir, session_vocab), train_env)
  assert _saved_steps(model_dir) == [8, 10, 12]  # keep_checkpoints=3
  return model_dir, _final_params(model_dir)


@pytest.mark.slow
def test_killed_runs_resume_bit_identical(straight_run, session_vocab,
                                          train_env, tmp_path):
  """Killed with SIGKILL after three random steps and started again with the
  same command each time, a run resumes from its newest checkpoint (and its
  data iterator) and ends where the uninterrupted run did, bit for bit.
  The last two starts save only the data position (a 1-byte limit on the
  iterator's state, as a mixture of many tasks exceeds 50 MB): the last one
  resumes by skipping the batches read, as exactly."""
  assert len(set(KILL_STEPS)) == 3
  model_dir = tmp_path / "killed"
  command = _command(model_dir, session_vocab)
  position_only = command + ["--gin.trainer.train.max_data_iterator_bytes=1"]
  resumed_from, data_resumes = [], []
  for kill_step in KILL_STEPS + [None]:
    saved = _saved_steps(model_dir)
    if kill_step == KILL_STEPS[-1]:
      command = position_only
    if kill_step is None:
      stderr = _run(command, train_env)
    else:
      stderr = _run_and_kill(command, train_env, kill_step)
      assert _saved_steps(model_dir)[-1:] != [STEPS]
    match = _RESUMED.search(stderr)
    print(f"checkpoints {saved} at the start; killed after step {kill_step}; "
          f"{match.group(0) if match else 'started afresh'}")
    if not saved:  # killed before its first checkpoint: starts afresh
      assert match is None, stderr[-2000:]
      continue
    assert match and int(match.group(1)) == saved[-1], stderr[-2000:]
    resumed_from.append(saved[-1])
    data_resumes.append(match.group(2))
  assert resumed_from, f"no kill (after steps {KILL_STEPS}) left a checkpoint"
  # The run killed after step 10 saved 8 (and maybe 10) without iterators.
  assert data_resumes[-1] == f"skipping the {resumed_from[-1]} batches read before"
  assert all(d == "its saved iterator position" for d in data_resumes[:-1])
  _assert_bit_identical(_final_params(model_dir), straight_run[1])


@pytest.mark.slow
def test_truncated_latest_checkpoint_is_reported_and_the_one_before_used(
    straight_run, session_vocab, train_env, tmp_path):
  """Half of the latest step's largest parameter file cut off: the run says
  which file of which step is damaged, sets the step aside, resumes from
  the step before and re-trains the lost steps to the same parameters."""
  model_dir = tmp_path / "truncated"
  shutil.copytree(straight_run[0], model_dir)
  step_dir = model_dir / "checkpoints" / str(STEPS)
  damaged = _largest_file(step_dir / "params")
  _truncate(damaged)
  stderr = _run(_command(model_dir, session_vocab), train_env)

  name = re.escape(str(damaged.relative_to(step_dir)))
  assert re.search(rf"Checkpoint {STEPS} in \S+ is unusable: {name} has \d+ "
                   r"bytes, \d+ were written", stderr), stderr[-3000:]
  resumed = _RESUMED.search(stderr)
  assert resumed and int(resumed.group(1)) == STEPS - CHECKPOINT_PERIOD
  note = (model_dir / checkpoints.UNUSABLE_DIR / str(STEPS)
          / checkpoints.UNUSABLE_NOTE)
  assert str(damaged.relative_to(step_dir)) in note.read_text()
  _assert_bit_identical(_final_params(model_dir), straight_run[1])


@pytest.fixture(scope="module")
def abstract_state(straight_run):
  """Abstract (params, opt_state) of the runs' model, to restore into."""
  config = trainer.load_model_config(str(straight_run[0]))
  state = trainer.init_train_state(
      MT5(config), trainer.make_optimizer(), partitioning.make_mesh(1),
      partitioning.standard_logical_axis_rules(), LENGTHS, seed=0)
  return (checkpoints.abstract_like(state.params),
          checkpoints.abstract_like(state.opt_state))


@pytest.fixture
def run_copy(straight_run, tmp_path):
  model_dir = tmp_path / "copy"
  shutil.copytree(straight_run[0], model_dir)
  return model_dir


def _restore_latest(model_dir, abstract_state, **store_options):
  store = checkpoints.CheckpointStore(model_dir, **store_options)
  try:
    return store.restore_latest(*abstract_state), store.all_steps()
  finally:
    store.close()


@pytest.mark.slow
def test_damage_without_a_manifest_is_found_by_restoring(
    run_copy, abstract_state, caplog):
  """A step whose manifest is missing (the run stopped right after orbax's
  rename) is checked by restoring it: a truncated array file fails."""
  step_dir = run_copy / "checkpoints" / str(STEPS)
  (step_dir / checkpoints.MANIFEST).unlink()
  _truncate(_largest_file(step_dir / "params"))
  resumed, steps_left = _restore_latest(run_copy, abstract_state)
  assert resumed.step == STEPS - CHECKPOINT_PERIOD
  assert steps_left == [STEPS - 2 * CHECKPOINT_PERIOD, resumed.step]
  assert f"Checkpoint {STEPS} in" in caplog.text
  assert "is unusable: restoring it failed" in caplog.text


@pytest.mark.slow
def test_damage_that_keeps_the_size_is_caught_by_the_hash_on_request(
    run_copy, abstract_state, caplog, monkeypatch):
  """Orbax restores an array file with flipped bytes without complaint;
  start-up checks only sizes (and small files' hashes) by default, the
  manifest's sha256 catches it when hashes are verified. (The tiny model's
  files are small: here files over 1 KiB count as large.)"""
  monkeypatch.setattr(checkpoints, "HASHED_FILE_BYTES", 1 << 10)
  step_dir = run_copy / "checkpoints" / str(STEPS)
  damaged = _largest_file(step_dir / "params")
  assert damaged.stat().st_size > checkpoints.HASHED_FILE_BYTES
  data = bytearray(damaged.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 100] = bytes(b ^ 0xFF for b in data[middle:middle + 100])
  damaged.write_bytes(bytes(data))
  assert checkpoints.check_manifest(str(step_dir)) is None
  problem = (f"{damaged.relative_to(step_dir)} differs from what was written "
             "(sha256)")
  assert checkpoints.check_manifest(str(step_dir), verify_hashes=True) == problem
  # Two processes' shares: one of them hashes the file.
  assert {checkpoints.check_manifest(str(step_dir), True, (i, 2))
          for i in range(2)} == {None, problem}
  resumed, _ = _restore_latest(run_copy, abstract_state, verify_hashes=True)
  assert resumed.step == STEPS - CHECKPOINT_PERIOD
  assert problem in caplog.text


@pytest.mark.slow
def test_korani_checkpoint_verify(run_copy, monkeypatch, capsys):
  """`korani checkpoint verify` checks sizes; --hash every sha256."""
  from t5x_runs import cli  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(checkpoints, "HASHED_FILE_BYTES", 1 << 10)
  assert cli.main(["checkpoint", "verify", str(run_copy)]) == 0
  out = capsys.readouterr().out
  assert out.count(": ok (sizes, sha256 of the files up to 1 MiB)") == 3
  step_dir = run_copy / "checkpoints" / str(STEPS)
  damaged = _largest_file(step_dir / "params")
  data = bytearray(damaged.read_bytes())
  data[-10:] = bytes(b ^ 0xFF for b in data[-10:])
  damaged.write_bytes(bytes(data))
  assert cli.main(["checkpoint", "verify", str(run_copy),
                   f"--step={STEPS}"]) == 0
  assert cli.main(["checkpoint", "verify", str(run_copy), "--hash"]) == 1
  out = capsys.readouterr().out
  assert (f"step {STEPS}: {damaged.relative_to(step_dir)} differs from what "
          "was written (sha256)") in out
  assert "step 10: ok (every sha256)" in out


def _fail_reads(monkeypatch, suffix: str, times: int) -> list[str]:
  """Makes Python's open() of a file whose path ends with `suffix` fail
  with EIO the first `times` times (orbax reads its JSON metadata through
  it); returns the paths it failed."""
  real_open = builtins.open
  failed = []

  def flaky_open(file, *args, **kwargs):
    if str(file).endswith(suffix) and len(failed) < times:
      failed.append(str(file))
      raise OSError(errno.EIO, os.strerror(errno.EIO), str(file))
    return real_open(file, *args, **kwargs)

  monkeypatch.setattr(builtins, "open", flaky_open)
  return failed


@pytest.mark.slow
def test_a_transient_read_error_is_retried_and_the_step_used(
    run_copy, abstract_state, monkeypatch, caplog):
  """An I/O error reading the newest step (once) costs a retry, not the
  step: it is restored and stays where it is."""
  failed = _fail_reads(
      monkeypatch, f"checkpoints/{STEPS}/{checkpoints.METADATA}/metadata", 1)
  resumed, steps_left = _restore_latest(
      run_copy, abstract_state, retry=checkpoints.RetryPolicy(3, 0.01))
  assert len(failed) == 1
  assert resumed.step == STEPS
  assert steps_left == [8, 10, 12]
  assert not (run_copy / checkpoints.UNUSABLE_DIR).exists()
  assert (f"Reading checkpoint {STEPS} failed (attempt 1 of 3) with a "
          "transient error, OSError: [Errno 5]") in caplog.text
  assert "unusable" not in caplog.text


@pytest.mark.slow
def test_a_persistent_read_error_stops_and_keeps_every_step(
    run_copy, abstract_state, monkeypatch):
  failed = _fail_reads(
      monkeypatch, f"checkpoints/{STEPS}/{checkpoints.METADATA}/metadata", 99)
  with pytest.raises(checkpoints.CheckpointUnreadableError) as raised:
    _restore_latest(run_copy, abstract_state,
                    retry=checkpoints.RetryPolicy(3, 0.01))
  assert len(failed) == 3
  message = str(raised.value)
  assert f"could not read checkpoint {STEPS}" in message
  assert "after 3 attempts: OSError: [Errno 5]" in message
  assert "left in place" in message
  assert _saved_steps(run_copy) == [8, 10, 12]
  assert not (run_copy / checkpoints.UNUSABLE_DIR).exists()


def test_transient_and_damage_errors_are_told_apart():
  transient = [
      OSError(errno.EIO, "Input/output error"), TimeoutError("timed out"),
      ConnectionResetError(), PermissionError(errno.EACCES, "denied"),
      tf.errors.UnavailableError(None, None, "socket closed"),
      ValueError("UNAVAILABLE: Error reading gs://b/x: 503 Service "
                 "Unavailable"),
      ValueError("DEADLINE_EXCEEDED: deadline exceeded"),
  ]
  wrapped = RuntimeError("restore failed")
  wrapped.__cause__ = tf.errors.DeadlineExceededError(None, None, "slow")
  transient.append(wrapped)
  damage = [
      FileNotFoundError(errno.ENOENT, "No such file"),
      errors.MissingDataError("no data iterator"),
      ValueError("DATA_LOSS: Error reading local file: unexpected EOF"),
      ValueError("FAILED_PRECONDITION: Error decoding manifest"),
      tf.errors.DataLossError(None, None, "truncated record"),
      json.JSONDecodeError("Expecting value", "", 0),
      KeyError("params"),
  ]
  assert [checkpoints.is_transient(e) for e in transient] == [True] * len(
      transient)
  assert [checkpoints.is_transient(e) for e in damage] == [False] * len(damage)


@pytest.mark.slow
def test_a_step_that_cannot_be_renamed_is_copied_aside(
    run_copy, abstract_state, monkeypatch):
  """Where folders cannot be renamed (object stores) a damaged step is
  copied aside and removed only after the copy is checked; where even that
  fails the run stops and nothing is deleted."""
  _truncate(_largest_file(run_copy / "checkpoints" / str(STEPS) / "params"))
  real_rename = tf.io.gfile.rename

  def rename_files_only(source, target, overwrite=False):
    if tf.io.gfile.isdir(source):
      raise tf.errors.UnimplementedError(None, None, "no folder renames")
    return real_rename(source, target, overwrite)

  monkeypatch.setattr(tf.io.gfile, "rename", rename_files_only)
  copy = run_copy.parent / "copy_before"
  shutil.copytree(run_copy, copy)
  resumed, steps_left = _restore_latest(run_copy, abstract_state)
  assert resumed.step == STEPS - CHECKPOINT_PERIOD
  assert steps_left == [8, 10]
  aside = run_copy / checkpoints.UNUSABLE_DIR / str(STEPS)
  assert (aside / checkpoints.UNUSABLE_NOTE).exists()
  assert (aside / checkpoints.MANIFEST).exists()

  monkeypatch.setattr(tf.io.gfile, "copy", _raise_unavailable)
  with pytest.raises(checkpoints.CheckpointUnreadableError) as raised:
    _restore_latest(copy, abstract_state)
  assert "could not be moved" in str(raised.value)
  assert "nothing was deleted" in str(raised.value)
  assert _saved_steps(copy) == [8, 10, 12]


def _raise_unavailable(*args, **kwargs):
  raise tf.errors.UnavailableError(None, None, "storage unavailable")


@pytest.mark.slow
def test_every_checkpoint_unusable_is_a_clear_error(run_copy, abstract_state):
  for step in _saved_steps(run_copy):
    _truncate(_largest_file(run_copy / "checkpoints" / str(step) / "params"))
  with pytest.raises(errors.MissingDataError) as raised:
    _restore_latest(run_copy, abstract_state)
  message = str(raised.value)
  assert "every checkpoint in" in message and "is unusable" in message
  for step in (8, 10, 12):
    assert f"step {step}: params/" in message
  # Nothing is moved when there is nothing to fall back to.
  assert _saved_steps(run_copy) == [8, 10, 12]
  assert not (run_copy / checkpoints.UNUSABLE_DIR).exists()


@pytest.mark.slow
def test_a_mixtures_data_iterator_restores_exactly(session_vocab, tmp_path):
  """Mixture sampling, per-task shuffle buffers, packing and prefetching:
  a fresh pipeline restored from a saved iterator gives the very batches
  the saved one went on to give."""
  def pipeline():
    return trainer.DataIterator(trainer.train_batches(
        "korani_kobest_train", {"inputs": 128, "targets": 8}, 4, seed=3))

  handler = checkpoints.DataIteratorHandler()
  args = checkpoints.DataIteratorArgs
  saved = pipeline()
  for _ in range(3):
    next(saved)
  handler.save(epath.Path(tmp_path), args(saved.tf_iterator))
  expected = list(itertools.islice(saved, 3))
  del saved
  restored = pipeline()
  handler.restore(epath.Path(tmp_path), args(restored.tf_iterator))
  got = list(itertools.islice(restored, 3))
  del restored
  for want, have in zip(expected, got):
    assert want.keys() == have.keys()
    for key in want:
      np.testing.assert_array_equal(have[key], want[key], err_msg=key)


def test_a_data_iterator_over_the_limit_is_saved_as_its_position(
    session_vocab, tmp_path):
  """`data_iterator_bytes` is what the handler writes; a state over the
  limit is not saved, from then on, and the position (batches read) that
  replaces it resumes the same batches."""
  def pipeline(start_step=0):
    return trainer.DataIterator(trainer.train_batches(
        SENTINEG, LENGTHS, 8, seed=5, start_step=start_step))

  data = pipeline()
  next(data), next(data)
  size = checkpoints.data_iterator_bytes(data.tf_iterator)
  checkpoints.DataIteratorHandler().save(
      epath.Path(tmp_path), checkpoints.DataIteratorArgs(data.tf_iterator))
  written = sum(p.stat().st_size for p in tmp_path.iterdir())
  # Equal but for the prefetched batches, filled in the background.
  assert size == pytest.approx(written, rel=0.1) and size > 100_000
  # The prefetched batches vary a little between measurements: the limits
  # are set well clear of the state's size.
  assert checkpoints.DataPositionSaver(2 * size).iterator_to_save(
      data.tf_iterator) is data.tf_iterator
  saver = checkpoints.DataPositionSaver(size // 2)
  assert saver.iterator_to_save(data.tf_iterator) is None
  saver.max_bytes = None
  assert saver.iterator_to_save(data.tf_iterator) is None  # For the run.
  want, have = next(data), next(pipeline(start_step=2))
  del data
  for key in want:
    np.testing.assert_array_equal(have[key], want[key], err_msg=key)


@pytest.mark.slow
def test_evaluating_a_damaged_checkpoint_names_the_file(run_copy):
  """Evaluation checks a step against its manifest before restoring it."""
  step_dir = run_copy / "checkpoints" / str(STEPS)
  damaged = _largest_file(step_dir / "params")
  _truncate(damaged)
  config = trainer.load_model_config(str(run_copy))
  mesh = partitioning.make_mesh(1)
  with pytest.raises(errors.MissingDataError) as raised:
    evaluator.restore_params(str(run_copy), config, mesh)
  message = str(raised.value)
  assert f"checkpoint {STEPS} in" in message and "is damaged" in message
  assert str(damaged.relative_to(step_dir)) in message
  _, step = evaluator.restore_params(str(run_copy), config, mesh,
                                     STEPS - CHECKPOINT_PERIOD)
  assert step == STEPS - CHECKPOINT_PERIOD


@pytest.mark.slow
def test_a_data_iterator_of_another_layout_is_not_restored(straight_run):
  """A checkpoint's data iterators continue only the layout that wrote them:
  with another batch size (or NUM_PARTITIONS, which moves the processes'
  shards) the run skips the batches read instead."""
  store = checkpoints.CheckpointStore(straight_run[0], read_only=True)
  try:
    metadata = store.metadata(STEPS)
    assert metadata["data_layout"] == {"batch_size": 8, "data_shards": [0]}
    store.data_layout = {"batch_size": 8, "data_shards": [0]}
    assert store.has_data_iterator(STEPS, metadata)
    store.data_layout = {"batch_size": 16, "data_shards": [0]}
    assert not store.has_data_iterator(STEPS, metadata)
  finally:
    store.close()
