"""The offline cache of KORANI tasks: rendered text, checked when read.

Every task (tasks.py) places its `seqio.CacheDatasetPlaceholder` after
template rendering and before tokenization, so seqio's standard Beam job
caches text, which serves every vocabulary::

    python -m seqio.scripts.cache_tasks_main \\
        --module_import=korani_tasks --module_import=mixtures \\
        --tasks='korani_kobest_copa_ko_.*' --output_cache_dir=/data/cache \\
        --pipeline_options=--runner=DirectRunner

and training or evaluation reads it with ``use_cached=True`` (gin
``USE_CACHED_TASKS = True``, ``--seqio_additional_cache_dirs=/data/cache``)
without the raw files. A cached train example is ``{"inputs", "targets",
"task_version"}``; a score-eval one adds ``answer_choices``,
``answer_index`` and ``example_index`` (rank classification runs after the
cache, so the choices of an example stay together).

``task_version`` is a fingerprint of what decides the cached text: the
template, the source's TFDS builder and version, and `CACHE_FORMAT`. Reading
a cache (`check_cache`) requires, for the task's first cache folder among
seqio's cache dirs: the ``COMPLETED`` marker, the split's info and stats
files, all its TFRecord shards, text (not token) features and the task's
current version; otherwise it raises CacheError naming the folder instead of
falling back to on-the-fly preprocessing.
"""

import functools
import hashlib
import json
import os
from typing import Any

import seqio
import tensorflow as tf

from korani_tasks import errors

TASK_VERSION = "task_version"
# Bump when the preprocessing before the cache changes its output.
CACHE_FORMAT = 1
# Features that must be text in a cache of ours.
_TEXT_FEATURES = ("inputs", "targets")

CACHE_COMMAND = (
    "python -m seqio.scripts.cache_tasks_main --module_import=korani_tasks "
    "--module_import=mixtures --tasks={task} --output_cache_dir=DIR "
    "--pipeline_options=--runner=DirectRunner")


class CacheError(errors.KoraniError):
  """A task's offline cache is missing, incomplete or for another version."""


def task_version(*parts: Any) -> str:
  """A short fingerprint of `parts` (their reprs) and `CACHE_FORMAT`.

  ``task_version("kobest_copa@1.0.0", template)`` gives e.g.
  ``"3f9c1e0a27b4d8e1"``.
  """
  text = json.dumps([CACHE_FORMAT] + [repr(p) for p in parts])
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def describe(fn: Any) -> str:
  """A description of a preprocessor that is the same in every process.

  ``functools.partial(apply_prompt_template, template=t)`` gives
  ``"korani_tasks.preprocessors.apply_prompt_template(template=<repr of t>)"``.
  """
  if isinstance(fn, functools.partial):
    arguments = [repr(a) for a in fn.args] + [
        f"{k}={v!r}" for k, v in sorted(fn.keywords.items())]
    return f"{describe(fn.func)}({', '.join(arguments)})"
  return f"{fn.__module__}.{fn.__qualname__}"


class AddTaskVersion:
  """Preprocessor (before the cache): adds `TASK_VERSION` to each example."""

  def __init__(self, version: str):
    self.version = version

  def __call__(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
    version = tf.constant(self.version)
    return dataset.map(lambda ex: dict(ex, **{TASK_VERSION: version}),
                       num_parallel_calls=tf.data.AUTOTUNE)

  def __repr__(self) -> str:
    return f"{type(self).__name__}({self.version!r})"


def drop_task_version(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Preprocessor (after the cache): removes `TASK_VERSION`."""
  return dataset.map(
      lambda ex: {k: v for k, v in ex.items() if k != TASK_VERSION},
      num_parallel_calls=tf.data.AUTOTUNE)


def expected_version(task: seqio.Task) -> str:
  """The version a cache of `task` must carry (from its AddTaskVersion)."""
  for preprocessor in task.preprocessors:
    if isinstance(preprocessor, AddTaskVersion):
      return preprocessor.version
  raise CacheError(f"{task.name} has no {AddTaskVersion.__name__} step")


def _candidate_folders(task_name: str) -> list[str]:
  return [os.path.join(d, seqio.get_task_dir_from_name(task_name))
          for d in seqio.utils.get_global_cache_dirs()]


def _first_record(pattern: str) -> tf.train.Example | None:
  files = sorted(tf.io.gfile.glob(pattern))
  for path in files:
    for record in tf.data.TFRecordDataset(path).take(1):
      return tf.train.Example.FromString(record.numpy())
  return None


def check_cache(task: seqio.Task, split: str) -> str:
  """Checks the cache folder seqio would read `task`'s `split` from.

  Returns:
    The folder.

  Raises:
    CacheError: no cache dir is set, the task is not cached in any, or its
      first folder is incomplete (no COMPLETED marker, missing info, stats
      or shards), holds token ids, or was made by another task version.
  """
  folders = _candidate_folders(task.name)
  if not folders:
    raise CacheError(
        f"{task.name}: reading cached tasks but no cache folder is set; give "
        "--seqio_additional_cache_dirs=DIR (the --output_cache_dir of "
        + CACHE_COMMAND.format(task=task.name) + ")")
  present = [f for f in folders if tf.io.gfile.isdir(f)]
  if not present:
    raise CacheError(
        f"{task.name} is not cached in any of {folders}; cache it with "
        + CACHE_COMMAND.format(task=task.name))
  folder = present[0]
  redo = ("; delete it and cache the task again ("
          + CACHE_COMMAND.format(task=task.name) + ")")
  if not tf.io.gfile.exists(os.path.join(folder, "COMPLETED")):
    raise CacheError(
        f"{folder}: incomplete cache of {task.name} (no COMPLETED marker: "
        "the caching job did not finish)" + redo)
  info_path = seqio.utils.get_cached_info_path(folder, split)
  stats_path = seqio.utils.get_cached_stats_path(folder, split)
  for path in (info_path, stats_path):
    if not tf.io.gfile.exists(path):
      raise CacheError(f"{folder}: no {os.path.basename(path)}: the cache has "
                       f"no {split!r} split or is half-written" + redo)
  with tf.io.gfile.GFile(info_path) as f:
    info = json.load(f)
  features = info.get("features", {})
  pattern = "%s-*-of-*%d" % (
      seqio.utils.get_cached_tfrecord_prefix(folder, split), info["num_shards"])
  shards = tf.io.gfile.glob(pattern)
  if len(shards) != info["num_shards"]:
    raise CacheError(
        f"{folder}: {len(shards)} of the {info['num_shards']} {split} shards "
        "are there (half-written cache)" + redo)
  tokenized = [k for k in _TEXT_FEATURES
               if k in features and features[k]["dtype"] != "string"]
  if tokenized or TASK_VERSION not in features:
    raise CacheError(
        f"{folder}: cached by another version of {task.name} ("
        + (f"{', '.join(tokenized)} hold token ids of some vocabulary, "
           if tokenized else "")
        + f"no {TASK_VERSION} feature); this version caches text" + redo)
  expected = expected_version(task)
  example = _first_record(pattern)
  if example is not None:
    found = example.features.feature[TASK_VERSION].bytes_list.value
    found = found[0].decode("utf-8") if found else "(none)"
    if found != expected:
      raise CacheError(
          f"{folder}: cached by another version of {task.name} "
          f"({TASK_VERSION} {found}, expected {expected}: its template, "
          "source or preprocessing changed)" + redo)
  return folder


class KoraniTask(seqio.Task):
  """A seqio.Task whose cached reads are checked first (`check_cache`)."""

  def _get_cached_source(self, split: str,
                         file_shuffle_buffer_size: int | None = None):
    check_cache(self, split)
    return super()._get_cached_source(split, file_shuffle_buffer_size)
