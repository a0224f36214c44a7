"""Orbax checkpoints of a training run, checked before a run resumes from one.

Layout under ``<model_dir>``, one folder per saved step::

    checkpoints/
      200/
        params/        parameters (orbax StandardSave, sharded arrays)
        opt_state/     optimizer state
        metadata/      JSON: step, model config, vocabulary, data settings
        data/          the training data iterator of each process
          process_0.index, process_0.data-00000-of-00001   (tf.train.Checkpoint)
        manifest.json  written last: size and sha256 of every file (see below)
    checkpoints_unusable/
      300/             a step found damaged at start-up, set aside with
        unusable.txt   what was wrong with it

Saving: orbax writes a step to a temporary folder and renames it when every
process has written its part, so a run killed while saving leaves no
half-written step; then process 0 writes ``manifest.json`` (atomically).

Resuming (`CheckpointStore.restore_latest`): steps are tried newest first.
A step is unusable when a file listed in its manifest is missing, has
another size or another sha256, or when orbax or TensorFlow
fails to restore it; the trainer logs what is wrong, sets the step aside
and uses the one before. A step without a manifest (the run was killed
between orbax's rename and the manifest, or an older version wrote it) is
complete as far as orbax knows and is checked by restoring it.

What the manifest covers, and why: the damage a disk or a copy does to a
checkpoint (a full disk, an interrupted ``gsutil cp`` or rsync, a lost tail
after a crash) truncates files, which sizes catch for free. Damage that
keeps a file's size is caught only by a hash: orbax's array files carry no
checksum, and a restore of an OCDBT data file with 100 bytes flipped in its
middle succeeds with wrong numbers. So every file of a step of at most
2 GiB is hashed (sha256 reads about 1 GB/s: seconds, at each save and at
start-up; this covers the tiny and small models), while a bigger step
hashes only its files of at most 1 MiB (orbax's metadata, OCDBT manifests,
the data iterators' index files, the JSON metadata: the files that say how
to read the rest) and sizes the others: hashing all of mT5-XXL's 52 GB of
parameters would read the checkpoint once more at every save and every
start.

The evaluator restores ``params`` alone (`restore`).
"""

import dataclasses
import hashlib
import json
import logging
import os
from typing import Any

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


def checkpoint_dir(model_dir: str | os.PathLike) -> str:
  return os.path.join(os.fspath(model_dir), "checkpoints")


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


class CheckpointStore:
  """Saves and restores (params, opt_state, metadata, data iterator) by step."""

  def __init__(self, model_dir: str | os.PathLike, max_to_keep: int | None = 3,
               read_only: bool = False):
    directory = os.path.abspath(checkpoint_dir(model_dir))
    if read_only and not os.path.isdir(directory):
      raise errors.MissingDataError(
          f"no checkpoints in {model_dir}: {directory} does not exist")
    self.directory = directory
    self.unusable_directory = os.path.join(os.path.dirname(directory),
                                           UNUSABLE_DIR)
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=not read_only,
            read_only=read_only, enable_async_checkpointing=False,
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
           metadata: dict[str, Any], data_iterator: Any = None) -> None:
    """Saves a step; `data_iterator` (a tf.data iterator) saves its position."""
    items = {
        PARAMS: ocp.args.StandardSave(params),
        OPT_STATE: ocp.args.StandardSave(opt_state),
        METADATA: ocp.args.JsonSave(dict(metadata, step=step)),
    }
    if data_iterator is not None:
      items[DATA] = DataIteratorArgs(data_iterator)
    self._manager.save(step, args=ocp.args.Composite(**items))
    self._manager.wait_until_finished()
    if jax.process_index() == 0:
      write_manifest(self.step_dir(step))
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

    A checkpoint written by a different number of processes holds iterators
    of other data shards, which cannot continue this process's shard.
    """
    if metadata.get("process_count", 1) != jax.process_count():
      logging.warning(
          "Checkpoint %d was written by %s processes, this run has %d: its "
          "data iterators do not fit this run's data shards",
          step, metadata.get("process_count", 1), jax.process_count())
      return False
    prefix = _data_prefix(epath.Path(self.step_dir(step)) / DATA,
                          jax.process_index())
    return tf.io.gfile.exists(prefix + ".index")

  def restore_latest(self, abstract_params: Any, abstract_opt_state: Any,
                     data_iterator: Any = None) -> Resumed | None:
    """Restores the newest usable step; None when there is no checkpoint.

    Steps that are unusable (see the module docstring) are logged and set
    aside into ``checkpoints_unusable/`` once an older step restored; where
    none is usable nothing is moved and MissingDataError lists every step's
    problem. The data iterator is restored when the step holds this
    process's (`data_restored`); otherwise the caller positions it.
    """
    problems: dict[int, str] = {}
    for step in reversed(self.all_steps()):
      problem = check_manifest(self.step_dir(step))
      resumed = None
      if problem is None:
        try:
          metadata = self.metadata(step)
          with_data = (data_iterator is not None
                       and self.has_data_iterator(step, metadata))
          restored = self.restore(step, abstract_params, abstract_opt_state,
                                  data_iterator if with_data else None)
          resumed = Resumed(step, restored[PARAMS], restored.get(OPT_STATE),
                            restored[METADATA], with_data)
        except Exception as e:  # pylint: disable=broad-except
          first_line = (str(e).strip().splitlines() or [""])[0][:500]
          problem = f"restoring it failed: {type(e).__name__}: {first_line}"
      problem = _agree_on_problem(problem, step)
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
    """Moves an unusable step out of orbax's sight, with a note of why.

    Where the folder cannot be renamed (some object stores) the step is
    deleted instead: it must go, or saving it again after the re-trained
    steps would fail.
    """
    moved = False
    if jax.process_index() == 0:
      source = epath.Path(self.step_dir(step))
      target = epath.Path(self.unusable_directory) / str(step)
      suffix = 0
      while target.exists():
        suffix += 1
        target = epath.Path(self.unusable_directory) / f"{step}.{suffix}"
      try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
        (target / UNUSABLE_NOTE).write_text(problem + "\n")
        moved = True
        logging.warning("Moved unusable checkpoint %d to %s", step, target)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("Could not move unusable checkpoint %d to %s (%s); "
                        "deleting it", step, target, e)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
      moved = bool(multihost_utils.broadcast_one_to_all(np.int32(moved)))
    self._manager.reload()
    if not moved and step in self._manager.all_steps():
      self._manager.delete(step)  # on every process: orbax syncs them

  def close(self) -> None:
    self._manager.close()


def _agree_on_problem(problem: str | None, step: int) -> str | None:
  """All processes use a step only if it restored on every one of them."""
  if jax.process_count() == 1:
    return problem
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  failed = np.asarray(multihost_utils.process_allgather(
      np.int32(problem is not None)))
  if problem is None and failed.any():
    problem = (f"process(es) {np.flatnonzero(failed).tolist()} could not "
               f"restore step {step} (see their logs)")
  return problem


def _file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def _files_under(directory: str) -> dict[str, int]:
  """{path relative to `directory`: size in bytes} of every file below it."""
  files = {}
  for root, _, names in tf.io.gfile.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      files[os.path.relpath(path, directory)] = tf.io.gfile.stat(path).length
  return files


def write_manifest(step_dir: str) -> None:
  """Writes ``manifest.json`` of a saved step (atomically).

  Example (a step over 2 GiB: its large files are only sized)::

      {"files": {"params/manifest.ocdbt": {"bytes": 237, "sha256": "9f2c…"},
                 "params/ocdbt.process_0/d/8a1e…": {"bytes": 269734211},
                 ...}}
  """
  sizes = {name: size for name, size in _files_under(step_dir).items()
           if name not in (MANIFEST, MANIFEST + ".tmp")}
  hash_all = sum(sizes.values()) <= FULLY_HASHED_STEP_BYTES
  files = {}
  for name, size in sorted(sizes.items()):
    entry = {"bytes": size}
    if hash_all or size <= HASHED_FILE_BYTES:
      entry["sha256"] = _file_sha256(os.path.join(step_dir, name))
    files[name] = entry
  path = os.path.join(step_dir, MANIFEST)
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    json.dump({"files": files}, f, indent=1)
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def check_manifest(step_dir: str) -> str | None:
  """What is wrong with a step's files, or None if they match its manifest.

  A step without a manifest cannot be checked here (None, with a log line).
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
  problems = []
  for name, entry in expected.items():
    if name not in found:
      problems.append(f"{name} is missing")
    elif found[name] != entry["bytes"]:
      problems.append(f"{name} has {found[name]} bytes, {entry['bytes']} were "
                      "written")
    elif "sha256" in entry and _file_sha256(
        os.path.join(step_dir, name)) != entry["sha256"]:
      problems.append(f"{name} differs from what was written (sha256)")
  if not problems:
    return None
  more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
  return "; ".join(problems[:3]) + more


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) for a tree of jax arrays."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      tree)
