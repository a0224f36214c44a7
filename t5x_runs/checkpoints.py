"""Orbax checkpoints of a training run, checked before a run resumes from one.

Layout under ``<model_dir>``, one folder per saved step::

    checkpoints/
      200/
        params/        parameters (orbax StandardSave, sharded arrays)
        opt_state/     optimizer state
        metadata/      JSON: step, model config, vocabulary, data settings
        data/          the training data iterator of each process
          process_0.index, process_0.data-00000-of-00001   (tf.train.Checkpoint;
                       absent where the state is too big: `DataPositionSaver`)
        manifest.json  written last: size and sha256 of every file (see below)
    checkpoints_unusable/
      300/             a step found damaged at start-up, set aside with
        unusable.txt   what was wrong with it

Saving (`CheckpointStore.save`) blocks the training loop only while the
arrays are copied to host memory and the data iterators are written; orbax
writes the arrays in a background thread (its async checkpointing) while
training goes on. When every process has written its part, the processes
hash the step together, off the training loop: process 0 (in orbax's
background thread) lists the step's files and gives each process a share
of them, balanced by bytes; each process hashes its share in a thread of its
own (`_ManifestShare`) and posts the digests through the coordination
service's key-value store; process 0 gathers them and writes
``manifest.json`` into orbax's temporary folder, atomically, before orbax
renames the folder to its step: a finalized step carries its manifest, and
a run killed while saving leaves no half-written step (a step that has none
was written by an older version, or its manifest could not be written; it
is checked by restoring it). ``save(..., wait=True)`` (the end of a run, a
save on SIGTERM) returns when the step is final.

Resuming (`CheckpointStore.restore_latest`): steps are tried newest first.
At start-up a step's files are checked against its manifest by size, and the
small files (at most 1 MiB: orbax's metadata, OCDBT manifests, the data
iterators' index files) by sha256; ``verify_hashes`` checks every hash the
manifest holds (each process hashes a share of the files). A step is
damaged when a file is missing, has another size or another sha256, or when
its data does not decode; a damaged step is logged and set aside (moved,
never deleted) and the step before it used. Reading errors that say nothing
about the data (a network timeout from cloud storage, a refused permission,
an I/O error) are retried with backoff; if they persist the run stops with
an error and the step stays where it is.

What the manifest covers, and why: the damage a disk or a copy does to a
checkpoint (a full disk, an interrupted ``gsutil cp`` or rsync, a lost tail
after a crash) truncates files, which sizes catch for free. Damage that
keeps a file's size is caught only by a hash: orbax's array files carry no
checksum, and a restore of an OCDBT data file with 100 bytes flipped in its
middle succeeds with wrong numbers. So every file of a step of at most
2 GiB is hashed when it is saved (sha256 reads about 1 GB/s, in the
background; this covers the tiny and small models), while a bigger step
hashes only its files of at most 1 MiB and sizes the others: hashing all of
mT5-XXL's 52 GB of parameters would read the checkpoint once more at every
save. Start-up checks sizes only (plus the small files' hashes) unless asked
to verify the hashes (``VERIFY_CHECKPOINT_HASHES``, ``korani checkpoint
verify --hash``): every host hashing a multi-GB step at every start would
stall the pod. orbax's step metadata file (``_CHECKPOINT_METADATA``), which
it updates when it renames the step, and its commit mark
(``commit_success.txt``), written after the manifest, are not in it.

The evaluator restores ``params`` alone (`restore`).
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
import time
from typing import Any
import uuid

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorflow as tf
from etils import epath

from korani_tasks import errors

PARAMS = "params"
OPT_STATE = "opt_state"
METADATA = "metadata"
DATA = "data"
MANIFEST = "manifest.json"
UNUSABLE_DIR = "checkpoints_unusable"
UNUSABLE_NOTE = "unusable.txt"
# The manifest hashes every file of a step of at most FULLY_HASHED_STEP_BYTES,
# else only the files of at most HASHED_FILE_BYTES (the others are sized).
FULLY_HASHED_STEP_BYTES = 2 << 30
HASHED_FILE_BYTES = 1 << 20
# orbax's temporary folder of a step being saved: <step><suffix>.
TMP_DIR_SUFFIX = ".orbax-checkpoint-tmp"
# orbax's step metadata, rewritten when orbax renames a saved step, and its
# mark of a finalized step (object stores), written after the manifest.
ORBAX_STEP_METADATA = "_CHECKPOINT_METADATA"
ORBAX_COMMIT_MARK = "commit_success.txt"
_HASH_THREADS = 8
# Coordination-service keys of a save's manifest: <key>/plan, <key>/<process>.
_MANIFEST_KEY = "korani/manifest"
# How long process 0 waits for the others' digests (they hash a share of a
# step that every process has finished writing).
MANIFEST_TIMEOUT_SECONDS = 1800


def checkpoint_dir(model_dir: str | os.PathLike) -> str:
  return os.path.join(os.fspath(model_dir), "checkpoints")


def data_iterator_bytes(iterator: Any) -> int:
  """The bytes `iterator`'s tf.data state takes in a checkpoint.

  Writes the state as `DataIteratorHandler` does, into TensorFlow's
  in-memory ``ram://`` filesystem, and sums the files (then deletes them):
  the shuffle, packing and prefetch buffers are most of it, and their size
  is known only once written.
  """
  folder = f"ram://korani_data_iterator_size/{uuid.uuid4().hex}"
  try:
    tf.train.Checkpoint(iterator=iterator).write(f"{folder}/state")
    return sum(tf.io.gfile.stat(f"{folder}/{name}").length
               for name in tf.io.gfile.listdir(folder))
  finally:
    if tf.io.gfile.exists(folder):
      tf.io.gfile.rmtree(folder)


class DataPositionSaver:
  """What a checkpoint saves of the data: the iterator, or only its position.

  The iterator is saved while its state stays within `max_bytes` per process
  (measured before each save, `data_iterator_bytes`): a resumed run then
  continues it in O(1). A bigger state (a mixture of many tasks: one shuffle
  buffer each) is not saved, from that save on for the rest of the run; the
  checkpoint's step is then the position, and a resumed run skips that many
  batches of the same deterministic pipeline (`trainer.train_batches`,
  ``start_step``): as exact, at the cost of reading them again.
  """

  def __init__(self, max_bytes: int | None):
    self.max_bytes = max_bytes
    self.saves_iterator = True

  def iterator_to_save(self, iterator: Any) -> Any:
    """`iterator`, or None where only the position is to be saved."""
    if self.saves_iterator and self.max_bytes is not None:
      size = data_iterator_bytes(iterator)
      if size > self.max_bytes:
        self.saves_iterator = False
        logging.warning(
            "The data iterator's state is %.1f MB, over the %.1f MB limit "
            "(max_data_iterator_bytes): checkpoints of this run save only "
            "the data position (the step); a resumed run skips the batches "
            "before it", size / 1e6, self.max_bytes / 1e6)
    return iterator if self.saves_iterator else None


def _data_prefix(directory: epath.Path, process_index: int) -> str:
  return str(directory / f"process_{process_index}")


class DataIteratorHandler(ocp.CheckpointHandler):
  """Saves this process's tf.data iterator as ``process_<i>`` in the item.

  Every process calls `save` with its own iterator (each reads its own
  shard of the data) and writes its own files, so a run of N processes
  leaves ``process_0`` ... ``process_<N-1>``; `restore` reads this process's
  back into an iterator of the same pipeline.
  """

  def save(self, directory: epath.Path, args: "DataIteratorArgs") -> None:
    tf.train.Checkpoint(iterator=args.iterator).write(
        _data_prefix(directory, jax.process_index()))

  def restore(self, directory: epath.Path, args: "DataIteratorArgs") -> Any:
    prefix = _data_prefix(directory, jax.process_index())
    if not tf.io.gfile.exists(prefix + ".index"):
      raise errors.MissingDataError(
          f"{prefix}.index not found: no data iterator of process "
          f"{jax.process_index()} in this checkpoint")
    tf.train.Checkpoint(iterator=args.iterator).read(prefix).assert_consumed()
    return args.iterator


@ocp.args.register_with_handler(DataIteratorHandler, for_save=True,
                                for_restore=True)
@dataclasses.dataclass
class DataIteratorArgs(ocp.args.CheckpointArgs):
  """The tf.data iterator to save, or to restore into (in place)."""
  iterator: Any


@dataclasses.dataclass
class Resumed:
  """What `CheckpointStore.restore_latest` restored."""
  step: int
  params: Any
  opt_state: Any
  metadata: dict[str, Any]
  data_restored: bool  # the data iterator now continues after `step`


class CheckpointUnreadableError(errors.KoraniError, OSError):
  """A step could not be read for reasons that say nothing about its data
  (I/O errors that persisted through the retries); it was left in place."""


# Reading errors worth retrying: the storage, not the data, failed. A status
# code opens the message of TensorStore's errors (which orbax raises as
# ValueError) and names TensorFlow's (tf.errors.OpError subclasses).
_TRANSIENT_STATUS = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED",
                     "CANCELLED", "RESOURCE_EXHAUSTED", "PERMISSION_DENIED",
                     "UNAUTHENTICATED", "INTERNAL", "UNKNOWN")
_TRANSIENT_TF_ERRORS = (
    tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
    tf.errors.AbortedError, tf.errors.CancelledError,
    tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError,
    tf.errors.UnauthenticatedError, tf.errors.InternalError,
    tf.errors.UnknownError)
_STATUS_CODES = frozenset(_TRANSIENT_STATUS + (
    "DATA_LOSS", "FAILED_PRECONDITION", "INVALID_ARGUMENT", "NOT_FOUND",
    "OUT_OF_RANGE", "ALREADY_EXISTS", "UNIMPLEMENTED"))
_STATUS_WORD = re.compile(r"\b([A-Z][A-Z_]+[A-Z]):")


def _status_code(message: str) -> str | None:
  """The first absl status code named in an error message, e.g.
  'DATA_LOSS' in "DATA_LOSS: Error reading ...: unexpected EOF"."""
  for word in _STATUS_WORD.findall(message):
    if word in _STATUS_CODES:
      return word
  return None


def is_transient(error: BaseException) -> bool:
  """Whether a reading error may go away when the read is tried again.

  Transient: OSErrors other than a missing file (timeouts, refused
  connections, permissions, EIO), TensorFlow's and TensorStore's
  UNAVAILABLE, DEADLINE_EXCEEDED, PERMISSION_DENIED, INTERNAL and the like;
  the first exception in the chain of causes that says which decides.
  Everything else (a missing file, DATA_LOSS, a value that does not decode)
  is about the data.
  """
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, errors.KoraniError):
      return False
    if isinstance(error, tf.errors.OpError):
      return isinstance(error, _TRANSIENT_TF_ERRORS)
    code = _status_code(str(error))
    if code is not None:
      return code in _TRANSIENT_STATUS
    if isinstance(error, OSError):
      return not isinstance(
          error, (FileNotFoundError, IsADirectoryError, NotADirectoryError))
    error = error.__cause__ or error.__context__
  return False


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
  """How often and how patiently a step's reading is retried.

  Attempt k (from 1) that fails transiently is followed by a pause of
  ``first_delay_s * 2 ** (k - 1)`` seconds: 1, 2, 4, 8 s by default.
  """
  attempts: int = 5
  first_delay_s: float = 1.0

  def delays(self):
    return [self.first_delay_s * 2 ** k for k in range(self.attempts - 1)]


def _first_line(error: BaseException) -> str:
  return (str(error).strip().splitlines() or [""])[0][:500]


class CheckpointStore:
  """Saves and restores (params, opt_state, metadata, data iterator) by step.

  `async_save` (default) writes steps in the background (see the module
  docstring); False writes them while `save` waits, and hashes them after.
  `verify_hashes` makes `restore_latest` check every hash of a step's
  manifest, not only its sizes. `retry` says how a step's reading is
  retried after transient errors.
  """

  def __init__(self, model_dir: str | os.PathLike, max_to_keep: int | None = 3,
               read_only: bool = False, async_save: bool = True,
               verify_hashes: bool = False,
               retry: RetryPolicy = RetryPolicy()):
    directory = os.path.abspath(checkpoint_dir(model_dir))
    if read_only and not os.path.isdir(directory):
      raise errors.MissingDataError(
          f"no checkpoints in {model_dir}: {directory} does not exist")
    self.directory = directory
    self.unusable_directory = os.path.join(os.path.dirname(directory),
                                           UNUSABLE_DIR)
    self.async_save = async_save and not read_only
    self.verify_hashes = verify_hashes
    # The run's data layout ({"batch_size", "data_shards": shard per process});
    # set by the trainer, saved in its metadata, compared on resume.
    self.data_layout: dict[str, Any] | None = None
    self.retry = retry
    self._saving_step: int | None = None
    # Saves so far: every process counts the same (saving is collective),
    # which names each save's manifest keys.
    self._saves = 0
    self._manifest_key = ""
    self._shares: list[_ManifestShare] = []  # this process's hashing
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=not read_only,
            read_only=read_only, enable_async_checkpointing=self.async_save,
            async_options=(ocp.AsyncOptions(
                post_finalization_callback=self._write_manifest_of_saving_step)
                           if self.async_save else None),
            # Temporary folders of saves that a kill interrupted.
            cleanup_tmp_directories=not read_only),
        item_names=(PARAMS, OPT_STATE, METADATA, DATA))

  def step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, params: Any, opt_state: Any,
           metadata: dict[str, Any], data_iterator: Any = None,
           wait: bool = False) -> None:
    """Saves a step; `data_iterator` (a tf.data iterator) saves its position.

    Returns once the arrays are copied to host memory and the iterator is
    written (the caller may then update the arrays in place); with `wait`,
    or without `async_save`, once the step is final. A step already saved
    is not saved again.
    """
    items = {
        PARAMS: ocp.args.StandardSave(params),
        OPT_STATE: ocp.args.StandardSave(opt_state),
        METADATA: ocp.args.JsonSave(dict(metadata, step=step)),
    }
    if data_iterator is not None:
      items[DATA] = DataIteratorArgs(data_iterator)
    # The previous save finishes first (orbax's save would wait for it too):
    # its manifest is written before `_saving_step` names this one.
    self._manager.wait_until_finished()
    if step in self._manager.all_steps():
      # E.g. a save on SIGTERM right after the loop saved this step.
      logging.info("Checkpoint %d is already saved", step)
      return
    self._saving_step = step
    self._saves += 1
    self._manifest_key = f"{_MANIFEST_KEY}/{self._saves}"
    tick = time.perf_counter()
    self._manager.save(step, args=ocp.args.Composite(**items))
    if not self.async_save:
      if jax.process_index() == 0:
        self._manager.wait_until_finished()
        write_manifest(self.step_dir(step), self._manifest_key)
      else:
        _ManifestShare(self._manifest_key).run()
        self._manager.wait_until_finished()
      logging.info("Saved checkpoint %d to %s", step, self.directory)
      return
    if jax.process_index() != 0:
      self._shares.append(_ManifestShare(self._manifest_key).start())
    logging.info("Saving checkpoint %d to %s in the background (the loop "
                 "waited %.2f s)", step, self.directory,
                 time.perf_counter() - tick)
    if wait:
      self.wait_until_finished()

  def wait_until_finished(self) -> None:
    """Waits for a background save (and its manifest) to be final."""
    self._manager.wait_until_finished()
    self._shares = [share for share in self._shares if share.is_alive()]

  def _write_manifest_of_saving_step(self) -> None:
    """orbax's post-finalization callback (process 0, background thread):
    every process has written the step, orbax has not renamed it yet; the
    other processes wait for their shares to hash."""
    step = self._saving_step
    final = self.step_dir(step)
    pending = final + TMP_DIR_SUFFIX
    # On object stores orbax writes into the final folder (a commit file
    # marks it complete) instead of renaming a temporary one.
    step_dir = pending if tf.io.gfile.isdir(pending) else final
    try:
      write_manifest(step_dir, self._manifest_key)
    except Exception as e:  # pylint: disable=broad-except
      logging.error("Could not write the manifest of checkpoint %d (%s: %s); "
                    "it will be checked by restoring it", step,
                    type(e).__name__, _first_line(e))
      return
    logging.info("Saved checkpoint %d to %s", step, self.directory)

  def restore(self, step: int, abstract_params: Any,
              abstract_opt_state: Any | None = None,
              data_iterator: Any = None) -> dict[str, Any]:
    """Restores a step into arrays shaped (and sharded) like the abstract trees.

    `abstract_*` are trees of jax.ShapeDtypeStruct (with `.sharding`), e.g.
    from jax.eval_shape. Without `abstract_opt_state` only the params and the
    metadata are read. With `data_iterator` (an iterator of the same tf.data
    pipeline) its position is restored in place too.
    """
    if step not in self._manager.all_steps():
      raise errors.MissingDataError(
          f"no checkpoint for step {step} in {self.directory} "
          f"(steps: {self.all_steps()})")
    items = {PARAMS: ocp.args.StandardRestore(abstract_params),
             METADATA: ocp.args.JsonRestore()}
    if abstract_opt_state is not None:
      items[OPT_STATE] = ocp.args.StandardRestore(abstract_opt_state)
    if data_iterator is not None:
      items[DATA] = DataIteratorArgs(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return {k: restored[k] for k in items}

  def metadata(self, step: int) -> dict[str, Any]:
    restored = self._manager.restore(
        step, args=ocp.args.Composite(**{METADATA: ocp.args.JsonRestore()}))
    return restored[METADATA]

  def has_data_iterator(self, step: int, metadata: dict[str, Any]) -> bool:
    """Whether `step` holds this process's data iterator of this run's layout.

    A checkpoint written by a different number of processes, or with another
    data layout (NUM_PARTITIONS or BATCH_SIZE changed: each process reads
    another shard, or other rows per step), holds iterators that cannot
    continue this process's data.
    """
    if metadata.get("process_count", 1) != jax.process_count():
      logging.warning(
          "Checkpoint %d was written by %s processes, this run has %d: its "
          "data iterators do not fit this run's data shards",
          step, metadata.get("process_count", 1), jax.process_count())
      return False
    saved_layout = metadata.get("data_layout")
    if (self.data_layout is not None and saved_layout is not None
        and saved_layout != self.data_layout):
      logging.warning(
          "Checkpoint %d was written with data layout %s, this run has %s: "
          "its data iterators read other shards or batch sizes", step,
          saved_layout, self.data_layout)
      return False
    prefix = _data_prefix(epath.Path(self.step_dir(step)) / DATA,
                          jax.process_index())
    return tf.io.gfile.exists(prefix + ".index")

  def _restore_step(self, step: int, abstract_params: Any,
                    abstract_opt_state: Any, data_iterator: Any) -> Resumed:
    metadata = self.metadata(step)
    with_data = (data_iterator is not None
                 and self.has_data_iterator(step, metadata))
    restored = self.restore(step, abstract_params, abstract_opt_state,
                            data_iterator if with_data else None)
    return Resumed(step, restored[PARAMS], restored.get(OPT_STATE),
                   restored[METADATA], with_data)

  def _read_step(self, step: int, *args) -> tuple[
      Resumed | None, str | None, str | None]:
    """Checks and restores a step on every process, retrying transient
    errors: (resumed, damage, unreadable), as all processes agree.

    Every process takes the same steps (check, agree, restore, agree) in
    every attempt, so that none restores while another has given up.
    """
    delays = self.retry.delays() + [None]
    for attempt, delay in enumerate(delays, start=1):
      resumed, problem, failure = None, None, None
      try:
        problem = check_manifest(
            self.step_dir(step), self.verify_hashes,
            (jax.process_index(), jax.process_count()))
      except Exception as e:  # pylint: disable=broad-except
        if not is_transient(e):
          raise
        failure = e
      problem, unreadable = _agree_on_outcome(problem, failure, step)
      if problem is None and unreadable is None:
        try:
          resumed = self._restore_step(step, *args)
        except Exception as e:  # pylint: disable=broad-except
          if is_transient(e):
            failure = e
          else:
            problem = (f"restoring it failed: {type(e).__name__}: "
                       f"{_first_line(e)}")
        problem, unreadable = _agree_on_outcome(problem, failure, step)
      if unreadable is None:
        return (resumed if problem is None else None), problem, None
      if delay is None:
        return None, None, unreadable
      logging.warning(
          "Reading checkpoint %d failed (attempt %d of %d) with a transient "
          "error, %s; trying again in %.3g s", step, attempt,
          self.retry.attempts, unreadable, delay)
      time.sleep(delay)
    raise AssertionError("unreachable")

  def restore_latest(self, abstract_params: Any, abstract_opt_state: Any,
                     data_iterator: Any = None) -> Resumed | None:
    """Restores the newest usable step; None when there is no checkpoint.

    Damaged steps (see the module docstring) are logged and set aside
    into ``checkpoints_unusable/`` once an older step restored; where none is
    usable nothing is moved and MissingDataError lists every step's problem.
    A step that keeps failing with transient reading errors stops the
    search: CheckpointUnreadableError, nothing moved. The data iterator is
    restored when the step holds this process's (`data_restored`);
    otherwise the caller positions it.
    """
    problems: dict[int, str] = {}
    for step in reversed(self.all_steps()):
      resumed, problem, unreadable = self._read_step(
          step, abstract_params, abstract_opt_state, data_iterator)
      if unreadable:
        raise CheckpointUnreadableError(
            f"could not read checkpoint {step} in {self.directory} after "
            f"{self.retry.attempts} attempts: {unreadable}. It was left in "
            "place (nothing about its data says it is damaged); start the "
            "run again when the storage answers")
      if problem is None:
        for bad_step, bad_problem in problems.items():
          self._set_aside(bad_step, bad_problem)
        return resumed
      logging.error("Checkpoint %d in %s is unusable: %s; trying the one "
                    "before it", step, self.directory, problem)
      problems[step] = problem
    if problems:
      listed = "; ".join(f"step {s}: {p}" for s, p in problems.items())
      raise errors.MissingDataError(
          f"every checkpoint in {self.directory} is unusable ({listed}). "
          "Move them away to train from the start, or use a new MODEL_DIR")
    return None

  def _set_aside(self, step: int, problem: str) -> None:
    """Moves a damaged step out of orbax's sight, with a note of why.

    Where the folder cannot be renamed (object stores rename file by file)
    it is copied, the copy checked by size, and only then the original
    removed. If that fails too the run stops with an error naming both
    folders; nothing is deleted (saving the step again after the re-trained
    steps would fail while it is there).
    """
    failure = ""
    if jax.process_index() == 0:
      source = self.step_dir(step)
      target = os.path.join(self.unusable_directory, str(step))
      suffix = 0
      while tf.io.gfile.exists(target):
        suffix += 1
        target = os.path.join(self.unusable_directory, f"{step}.{suffix}")
      try:
        _move_folder(source, target)
        with tf.io.gfile.GFile(os.path.join(target, UNUSABLE_NOTE), "w") as f:
          f.write(problem + "\n")
        logging.warning("Moved unusable checkpoint %d to %s", step, target)
      except Exception as e:  # pylint: disable=broad-except
        failure = (f"checkpoint {step} in {self.directory} is damaged "
                   f"({problem}) but could not be moved to {target} "
                   f"({type(e).__name__}: {_first_line(e)}); nothing was "
                   "deleted. Move it away by hand and start the run again")
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
      failed = bool(multihost_utils.broadcast_one_to_all(np.int32(
          bool(failure))))
      failure = failure or (f"process 0 could not move damaged checkpoint "
                            f"{step} aside (see its log)" if failed else "")
    self._manager.reload()
    if failure:
      raise CheckpointUnreadableError(failure)

  def close(self) -> None:
    self._manager.close()
    for share in self._shares:
      share.stop()


def _move_folder(source: str, target: str) -> None:
  """Renames a folder; else copies it, checks the copy's sizes, removes it."""
  tf.io.gfile.makedirs(os.path.dirname(target))
  try:
    tf.io.gfile.rename(source, target)
    return
  except (tf.errors.OpError, OSError) as e:
    logging.info("Renaming %s failed (%s); copying it", source, e)
  sizes = _files_under(source)
  try:
    for name in sizes:
      tf.io.gfile.makedirs(os.path.dirname(os.path.join(target, name)))
      tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name),
                       overwrite=True)
    copied = _files_under(target)
    if any(copied.get(name) != size for name, size in sizes.items()):
      raise OSError(f"the copy of {source} in {target} differs in size")
  except Exception:
    if tf.io.gfile.exists(target):  # The partial copy; the source is whole.
      tf.io.gfile.rmtree(target)
    raise
  tf.io.gfile.rmtree(source)


def _agree_on_outcome(problem: str | None, failure: BaseException | None,
                      step: int) -> tuple[str | None, str | None]:
  """(damage, unreadable) as every process sees it.

  A step is used only if it restored on every process, set aside if it is
  damaged on one, and left alone if one could not read it.
  """
  unreadable = (f"{type(failure).__name__}: {_first_line(failure)}"
                if failure is not None else None)
  if jax.process_count() == 1:
    return problem, unreadable
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  state = np.int32(2 if failure is not None else int(problem is not None))
  states = np.asarray(multihost_utils.process_allgather(state))
  if unreadable is None and (states == 2).any():
    unreadable = (f"process(es) {np.flatnonzero(states == 2).tolist()} could "
                  "not read it (see their logs)")
  if problem is None and (states == 1).any():
    problem = (f"process(es) {np.flatnonzero(states == 1).tolist()} found "
               f"step {step} damaged (see their logs)")
  return problem, unreadable


def _file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def _hash_files(step_dir: str, names: list[str]) -> dict[str, str]:
  """{name: sha256} of files under `step_dir`, read by a few threads (hashlib
  and file reads release the GIL: several disks' or connections' worth)."""
  if not names:
    return {}
  with concurrent.futures.ThreadPoolExecutor(
      max_workers=min(_HASH_THREADS, len(names))) as pool:
    digests = pool.map(lambda n: _file_sha256(os.path.join(step_dir, n)),
                       names)
    return dict(zip(names, digests))


def _files_under(directory: str) -> dict[str, int]:
  """{path relative to `directory`: size in bytes} of every file below it."""
  files = {}
  for root, _, names in tf.io.gfile.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      files[os.path.relpath(path, directory)] = tf.io.gfile.stat(path).length
  return files


def _shares_by_bytes(sizes: dict[str, int], count: int) -> list[list[str]]:
  """`count` disjoint lists of the files, of about equal bytes: largest
  first, each to the share with the fewest bytes so far."""
  shares, loads = [[] for _ in range(count)], [0] * count
  for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
    lightest = loads.index(min(loads))
    shares[lightest].append(name)
    loads[lightest] += sizes[name]
  return shares


def _coordination_client():
  from jax._src import distributed as jax_distributed  # pylint: disable=import-outside-toplevel
  return jax_distributed.global_state.client


class _ManifestShare(threading.Thread):
  """A process other than 0 hashing its share of a saved step.

  Waits (polling, so that `stop` ends it) for process 0's plan, posted once
  every process has written the step: the step's folder and each process's
  files. Hashes this process's files and posts their digests (or the error
  that stopped it) for process 0 to gather.
  """

  POLL_MS = 1000

  def __init__(self, key: str):
    super().__init__(name=f"korani-manifest-{key}", daemon=True)
    self.key = key
    self.stopping = threading.Event()

  def start(self) -> "_ManifestShare":
    super().start()
    return self

  def stop(self) -> None:
    self.stopping.set()
    self.join()

  def run(self) -> None:
    client = _coordination_client()
    while not self.stopping.is_set():
      try:
        plan = json.loads(client.blocking_key_value_get(f"{self.key}/plan",
                                                        self.POLL_MS))
        break
      except Exception as e:  # pylint: disable=broad-except
        if "DEADLINE_EXCEEDED" not in str(e):
          logging.warning("No plan to hash checkpoint files (%s)",
                          _first_line(e))
          return
    else:
      return
    names = plan["shares"][jax.process_index()]
    try:
      reply = {"sha256": _hash_files(plan["step_dir"], names)}
    except Exception as e:  # pylint: disable=broad-except
      reply = {"error": f"{type(e).__name__}: {_first_line(e)}"}
    client.key_value_set(f"{self.key}/{jax.process_index()}",
                         json.dumps(reply))


def _gather_digests(key: str, step_dir: str, names: dict[str, int]
                    ) -> dict[str, tuple[str, int]]:
  """{name: (sha256, process that hashed it)}, hashed by all processes.

  Process 0 posts the plan (`_ManifestShare`), hashes its own share and
  waits for the others' digests.
  """
  count = jax.process_count() if key else 1
  shares = _shares_by_bytes(names, count)
  if count == 1:
    return {n: (d, 0) for n, d in _hash_files(step_dir, shares[0]).items()}
  client = _coordination_client()
  client.key_value_set(f"{key}/plan", json.dumps(
      {"step_dir": step_dir, "shares": shares}))
  digests = {n: (d, 0) for n, d in _hash_files(step_dir, shares[0]).items()}
  try:
    for process in range(1, count):
      reply = json.loads(client.blocking_key_value_get(
          f"{key}/{process}", MANIFEST_TIMEOUT_SECONDS * 1000))
      if "error" in reply:
        raise OSError(f"process {process} could not hash its share of "
                      f"{step_dir}: {reply['error']}")
      digests.update({n: (d, process) for n, d in reply["sha256"].items()})
  finally:
    for process in range(count):
      try:
        client.key_value_delete(f"{key}/{'plan' if process == 0 else process}")
      except Exception:  # pylint: disable=broad-except
        pass  # a key left behind costs a few bytes in the service
  return digests


def write_manifest(step_dir: str, key: str = "") -> None:
  """Writes ``manifest.json`` of a saved step (atomically).

  With `key` (a save's coordination-service keys, from process 0 of a
  multi-process run) every process hashes a share of the files; without
  it, this process hashes them all. Each hash names the process that
  made it. Example (a step over 2 GiB: its large files are only sized)::

      {"files": {"params/manifest.ocdbt": {"bytes": 237, "sha256": "9f2c…",
                                           "hashed_by": 1},
                 "params/ocdbt.process_0/d/8a1e…": {"bytes": 269734211},
                 ...}}
  """
  sizes = {name: size for name, size in _files_under(step_dir).items()
           if name not in (MANIFEST, MANIFEST + ".tmp", ORBAX_STEP_METADATA,
                           ORBAX_COMMIT_MARK)}
  hash_all = sum(sizes.values()) <= FULLY_HASHED_STEP_BYTES
  digests = _gather_digests(key, step_dir, {
      name: size for name, size in sizes.items()
      if hash_all or size <= HASHED_FILE_BYTES})
  files = {}
  for name, size in sorted(sizes.items()):
    files[name] = {"bytes": size}
    if name in digests:
      files[name]["sha256"], files[name]["hashed_by"] = digests[name]
  path = os.path.join(step_dir, MANIFEST)
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    json.dump({"files": files}, f, indent=1)
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def check_manifest(step_dir: str, verify_hashes: bool = False,
                   share: tuple[int, int] = (0, 1)) -> str | None:
  """What is wrong with a step's files, or None if they match its manifest.

  Sizes are always checked, and the hashes of files of at most 1 MiB;
  `verify_hashes` checks every hash the manifest holds. With `share`
  (process index, process count) a process hashes only every count-th file
  of the larger ones, from its index on (the processes together hash all).
  A step without a manifest cannot be checked here (None, with a log line).
  Reading errors propagate (see `is_transient`).
  """
  path = os.path.join(step_dir, MANIFEST)
  if not tf.io.gfile.exists(path):
    logging.info("%s has no %s: it is checked by restoring it", step_dir,
                 MANIFEST)
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      expected = json.load(f)["files"]
  except (ValueError, KeyError, TypeError) as e:
    return f"{path} is unreadable ({e})"
  found = _files_under(step_dir)
  problems, to_hash = [], []
  index, count = share
  large = 0
  for name, entry in sorted(expected.items()):
    if name not in found:
      problems.append(f"{name} is missing")
    elif found[name] != entry["bytes"]:
      problems.append(f"{name} has {found[name]} bytes, {entry['bytes']} were "
                      "written")
    elif "sha256" in entry and entry["bytes"] <= HASHED_FILE_BYTES:
      to_hash.append(name)
    elif "sha256" in entry and verify_hashes:
      if large % count == index:
        to_hash.append(name)
      large += 1
  if not problems:
    digests = _hash_files(step_dir, to_hash)
    problems = [f"{name} differs from what was written (sha256)"
                for name in to_hash
                if digests[name] != expected[name]["sha256"]]
  if not problems:
    return None
  more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
  return "; ".join(problems[:3]) + more


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) for a tree of jax arrays."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      tree)
