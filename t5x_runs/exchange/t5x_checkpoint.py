"""Reads and writes t5x checkpoints: the public mT5 checkpoints' layout.

The public mT5 checkpoints (e.g.
``gs://t5-data/pretrained_models/t5x/mt5_xl/checkpoint_1000000``) are folders
written by t5x's ``checkpoints.Checkpointer``: one msgpack file named
``checkpoint`` plus one TensorStore zarr array per large array, in a
sub-folder named by the array's dotted path in the train state::

    checkpoint_1000000/
      checkpoint                                        msgpack, see below
      target.encoder.layers_0.attention.key.kernel/     one zarr array
        .zarray      {"chunks": [2048, 2048], "compressor": {"id": "gzip",
                      "level": 1}, "dtype": "<f4", "shape": [2048, 2048],
                      "fill_value": null, "order": "C", "zarr_format": 2, ...}
        0.0          the gzip-compressed chunk at chunk index (0, 0)
      target.token_embedder.embedding/                  [250112, 2048]
        0.0  1.0  ...  31.0                             32 chunks [7816, 2048]
      state.param_states.encoder.layers_0.attention.key.kernel.v_row/
      ...                                               Adafactor statistics

``checkpoint`` is ``flax.serialization.to_bytes`` of the train state's dict
(``version`` 3 since 2021; version 0 files hold the optimizer dict at the
top level). Each array written to TensorStore is replaced in it by the
``ts.Spec`` it was written with, as a JSON dict whose path is relative to the
checkpoint folder::

    {'version': 3,
     'optimizer': {
         'target': {                                   # the parameters
             'encoder': {'layers_0': {'attention': {'key': {'kernel': {
                 'driver': 'zarr', 'dtype': 'float32',  # or 'bfloat16'
                 'kvstore': {
                     'driver': 'file',
                     'path': 'target.encoder.layers_0.attention.key.kernel/'},
                 'metadata': {'chunks': [2048, 2048],
                              'compressor': {'id': 'gzip', 'level': 1},
                              'shape': [2048, 2048]}}}}}},
             ...},
         'state': {'step': array(1000000, dtype=int32),
                   'param_states': {...}}}}             # same tree, Adafactor

t5x ignores the recorded ``kvstore`` driver and bucket (written as ``file``,
``gfile``, or ``gcs`` with the bucket ``t5x-dummy-bucket``) and resolves the
path against the folder the ``checkpoint`` file is read from; so do we, with
TensorStore's ``gcs`` driver under ``gs://`` and ``file`` otherwise.
Specs from tensorstore < 0.1.14 keep ``path`` next to ``kvstore`` instead of
inside it. Two other leaf forms are accepted: a numpy array stored inline in
the msgpack (t5x does this for arrays it does not partition), and the string
``'PLACEHOLDER://<name>'`` that orbax's msgpack-based
``PyTreeCheckpointHandler`` (used by t5x's orbax ``CheckpointManager``)
writes, whose zarr array is the folder ``<name>``. Checkpoints in orbax's
newer OCDBT format have no per-array folders and are not read here.

How the trainer uses it: with ``init_checkpoint`` set, the trainer calls
``t5x_runs.exchange.load_pretrained(path, config)``, which calls
``load_t5x_checkpoint`` when the folder holds a ``checkpoint`` file. Only
``target`` (the parameters) is imported: every array is checked against the
shapes ``MT5(config)`` expects, but nothing is read until the trainer fills
each device's shard::

    params, config = load_t5x_checkpoint(path, config)
    kernel = params['encoder']['layers_0']['attention']['key']['kernel']
    array = jax.make_array_from_callback(
        kernel.shape, sharding, lambda index: kernel[index])  # reads a slice

The optimizer state and the step are not imported: fine-tuning here starts
at step 0 with a fresh Adafactor state. This differs from upstream t5x, whose
default ``RestoreCheckpointConfig`` restores the whole train state, the
pre-training Adafactor statistics and step included (hence its fine-tuning
configs' ``TRAIN_STEPS = 1_020_000``: 1,000,000 pre-training steps plus
20,000); t5x starts from fresh statistics only when told to, with an
``assignment_map`` that drops ``state/param_states.*`` and
``fallback_to_scratch=True``.

``save_t5x_checkpoint`` writes the same layout (every parameter to
TensorStore, the step, an empty ``param_states``), for handing a model
trained here to t5x; since it holds no optimizer statistics, t5x must
restore it with such an ``assignment_map`` and ``fallback_to_scratch``.
"""

import math
import os
import posixpath
import re
import shutil
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
import tensorstore as ts
from flax import serialization, traverse_util

from korani_tasks import errors
from t5x_runs.models.config import MT5Config
from t5x_runs.models import mt5
from t5x_runs.models.mt5 import MT5

CHECKPOINT_FILE = "checkpoint"
# The train-state format t5x writes (version 3: bfloat16 stored natively).
VERSION = 3
# t5x splits arrays into chunks of at most 64 MiB.
_CHUNK_BYTES = 64 * 1024 * 1024
_PLACEHOLDER_PREFIX = "PLACEHOLDER://"
_SAVE_DTYPES = ("float32", "bfloat16")
# TensorStore error codes that mean the stored bytes are not a valid array.
_FORMAT_ERROR_CODES = ("FAILED_PRECONDITION", "INVALID_ARGUMENT", "DATA_LOSS",
                       "OUT_OF_RANGE")


class TensorStoreArray:
  """A float32 view of one zarr array; indexing reads only what it selects.

  ``array[index]`` takes numpy basic indexing (the tuples of slices that
  ``jax.make_array_from_callback`` passes) and returns a float32 numpy array,
  cast from the stored dtype (float32 or bfloat16). Errors name ``folder``.
  """

  def __init__(self, store: ts.TensorStore, folder: str):
    self._store = store
    self.folder = folder
    self.shape = tuple(int(n) for n in store.shape)
    self.dtype = np.dtype(np.float32)
    self.stored_dtype = np.dtype(store.dtype.numpy_dtype)

  @property
  def ndim(self) -> int:
    return len(self.shape)

  def __getitem__(self, index) -> np.ndarray:
    view = self._store[index]
    try:
      data = view.read().result()
    except ValueError as e:
      _raise_tensorstore_error(self.folder, e)
      raise
    return np.asarray(data, np.float32)

  def __array__(self, dtype=None, copy=None):
    del copy  # Every read makes a new array.
    data = self[...]
    return data if dtype is None else data.astype(dtype)

  def __repr__(self) -> str:
    return (f"TensorStoreArray({self.folder!r}, shape={self.shape}, "
            f"stored_dtype={self.stored_dtype})")


def load_t5x_checkpoint(path: str | os.PathLike,
                        config: MT5Config) -> tuple[dict[str, Any], MT5Config]:
  """Opens the parameters of a t5x checkpoint for ``MT5(config)``.

  Args:
    path: the checkpoint folder (``.../checkpoint_1000000``) or its
      ``checkpoint`` file; local or ``gs://bucket/...``.
    config: the network the parameters are for. A t5x checkpoint records no
      hyperparameters, so this must be the matching size preset.

  Returns:
    ``(params, config)``: ``params`` is the model's parameter tree (plain
    nested dicts, keys as in ``t5x_runs/models/mt5.py``) whose leaves are
    ``TensorStoreArray``s, or float32 numpy arrays for arrays stored inline;
    ``config`` is returned unchanged.

  Raises:
    MissingDataError: the checkpoint file, an expected parameter, a zarr
      folder or one of its chunks is missing.
    ConfigError: a parameter's shape differs from what ``config`` expects,
      or the checkpoint has parameters that ``MT5(config)`` does not.
    DataFormatError: the ``checkpoint`` file or a zarr array cannot be read.
  """
  directory, checkpoint_file = _locate(path)
  contents = _read_msgpack(checkpoint_file)
  target = _target(contents, checkpoint_file)
  found = {_dotted(keys): leaf
           for keys, leaf in _flatten_target(target, checkpoint_file).items()}
  expected = {_dotted(keys): (keys, shape)
              for keys, shape in _expected_shapes(config).items()}

  missing = sorted(set(expected) - set(found))
  if missing:
    raise errors.MissingDataError(
        f"{checkpoint_file}: the checkpoint has no parameter "
        f"{_listing(missing)}, which MT5 needs with this config (is the "
        f"config's size preset the checkpoint's?)")
  extra = sorted(set(found) - set(expected))
  if extra:
    raise errors.ConfigError(
        f"{checkpoint_file}: the checkpoint has parameters that MT5 with "
        f"this config does not: {_listing(extra)} (is the config's size "
        f"preset the checkpoint's?)")

  arrays = _open_arrays(directory, checkpoint_file, found)
  wrong = [f"{name}: checkpoint {arrays[name].shape}, expected {shape}"
           for name, (_, shape) in sorted(expected.items())
           if arrays[name].shape != shape]
  if wrong:
    raise errors.ConfigError(
        f"{checkpoint_file}: {len(wrong)} parameter(s) have another shape "
        f"than MT5 with this config expects (is the config's size preset "
        f"the checkpoint's?): {_listing(wrong)}")

  params = traverse_util.unflatten_dict(
      {keys: arrays[name] for name, (keys, _) in expected.items()})
  return params, config


def save_t5x_checkpoint(params: Any, output_dir: str | os.PathLike,
                        step: int = 0, dtype: str = "float32") -> str:
  """Writes ``params`` as t5x's ``<output_dir>/checkpoint_<step>`` folder.

  The layout is the one described in this module's docstring: every
  parameter goes to a gzip-compressed zarr array stored as ``dtype``
  (t5x's ``SaveCheckpointConfig.dtype``: 'float32' or 'bfloat16'), and the
  ``checkpoint`` msgpack holds their specs, the step and no optimizer
  state. As in t5x, everything is written to ``checkpoint_<step>.tmp-<time>``
  first and renamed when complete, so a failed save leaves no checkpoint.

  Args:
    params: the model's parameter tree (boxed or not), with arrays that
      this process can read whole (numpy, or fully addressable jax arrays);
      a scanned tree (``scan_layers``) is written per layer, as t5x's mT5.
    output_dir: a local folder (t5x's model or checkpoints folder); created
      if missing.
    step: the training step recorded in the checkpoint and its folder name.
    dtype: the stored dtype.

  Returns:
    The checkpoint folder written.

  Raises:
    ConfigError: ``output_dir`` is a ``gs://`` path, ``dtype`` is not
      supported, or the checkpoint folder exists already.
  """
  output_dir = os.fspath(output_dir)
  if output_dir.startswith("gs://"):
    raise errors.ConfigError(
        f"save_t5x_checkpoint writes local folders, not {output_dir}; write "
        f"locally, then copy the checkpoint folder (gsutil -m cp -r)")
  if dtype not in _SAVE_DTYPES:
    raise errors.ConfigError(
        f"save_t5x_checkpoint dtype={dtype!r} is not supported; use one of: "
        f"{', '.join(_SAVE_DTYPES)}")
  final_dir = os.path.join(os.path.abspath(output_dir), f"checkpoint_{step}")
  if os.path.exists(final_dir):
    raise errors.ConfigError(
        f"{final_dir} exists already; remove it or save another step")
  tmp_dir = f"{final_dir}.tmp-{time.time_ns()}"
  os.makedirs(tmp_dir)
  try:
    target = {}
    flat = traverse_util.flatten_dict(
        mt5.unstack_layers(nn.meta.unbox(params)))
    for keys, value in flat.items():
      name = _dotted(keys)
      target[keys] = _write_array(tmp_dir, name, _host_array(value, name),
                                  dtype)
    contents = {
        "version": VERSION,
        "optimizer": {
            "target": traverse_util.unflatten_dict(target),
            "state": {"step": np.asarray(step, np.int32), "param_states": {}},
        },
    }
    with open(os.path.join(tmp_dir, CHECKPOINT_FILE), "wb") as f:
      f.write(serialization.msgpack_serialize(contents))
    os.rename(tmp_dir, final_dir)
  except BaseException:
    shutil.rmtree(tmp_dir, ignore_errors=True)
    raise
  return final_dir


def _locate(path: str) -> tuple[str, str]:
  """Returns (checkpoint folder, ``checkpoint`` file) for either of them."""
  path = os.fspath(path).rstrip("/")
  if tf.io.gfile.isdir(path):
    directory, checkpoint_file = path, posixpath.join(path, CHECKPOINT_FILE)
  else:
    directory, checkpoint_file = posixpath.dirname(path), path
  if not tf.io.gfile.exists(checkpoint_file):
    raise errors.MissingDataError(
        f"{checkpoint_file} not found: a t5x checkpoint is a folder such as "
        f"'<model_dir>/checkpoint_1000000' holding a file named "
        f"'{CHECKPOINT_FILE}'")
  return directory, checkpoint_file


def _read_msgpack(checkpoint_file: str) -> dict[str, Any]:
  with tf.io.gfile.GFile(checkpoint_file, "rb") as f:
    raw = f.read()
  if raw.startswith(b"model_checkpoint_path"):
    raise errors.DataFormatError(
        checkpoint_file, None,
        "this is the index of a TensorFlow (Mesh TensorFlow) checkpoint, not "
        "a t5x msgpack checkpoint; use the t5x version of the checkpoint")
  try:
    contents = serialization.msgpack_restore(raw)
  except (ValueError, TypeError) as e:
    raise errors.DataFormatError(
        checkpoint_file, None,
        f"not a complete flax msgpack file ({len(raw)} bytes; truncated "
        f"copy?): {e}") from e
  if not isinstance(contents, dict):
    raise errors.DataFormatError(
        checkpoint_file, None,
        f"expected a msgpack map, found {type(contents).__name__}")
  return contents


def _target(contents: dict[str, Any], checkpoint_file: str) -> dict[str, Any]:
  """The parameters: ``optimizer.target`` (or ``target`` in version 0)."""
  optimizer = contents.get("optimizer", contents)
  target = optimizer.get("target") if isinstance(optimizer, dict) else None
  if not isinstance(target, dict):
    raise errors.DataFormatError(
        checkpoint_file, None,
        f"no parameters: expected a map at 'optimizer.target' (t5x train "
        f"state), found top-level keys {sorted(contents)}")
  return target


def _is_spec(value: Any) -> bool:
  """Whether a msgpack dict is a TensorStore spec rather than a subtree."""
  return isinstance(value, dict) and {"driver", "kvstore"} <= set(value)


def _flatten_target(target: dict[str, Any],
                    checkpoint_file: str) -> dict[tuple[str, ...], Any]:
  """{key path: spec dict, placeholder string or numpy array}."""
  flat = {}

  def visit(keys, value):
    if isinstance(value, dict) and not _is_spec(value):
      for key, child in value.items():
        visit(keys + (key,), child)
    elif (_is_spec(value) or isinstance(value, np.ndarray) or
          (isinstance(value, str) and value.startswith(_PLACEHOLDER_PREFIX))):
      flat[keys] = value
    else:
      raise errors.DataFormatError(
          checkpoint_file, None,
          f"parameter {_dotted(keys)} is a {type(value).__name__}, not an "
          f"array, a TensorStore spec or a placeholder")

  visit((), target)
  return flat


def _expected_shapes(
    config: MT5Config) -> dict[tuple[str, ...], tuple[int, ...]]:
  """{key path: shape} of ``MT5(config)``'s parameters, from shapes only."""
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  variables = jax.eval_shape(MT5(config).init, jax.random.key(0), tokens,
                             tokens)
  params = nn.meta.unbox(variables["params"])
  return {keys: tuple(leaf.shape)
          for keys, leaf in traverse_util.flatten_dict(params).items()}


def _dotted(keys: tuple[str, ...]) -> str:
  """The name t5x gives a parameter's folder: 'target.encoder....kernel'."""
  return ".".join(("target",) + tuple(keys))


def _listing(names: list[str], limit: int = 8) -> str:
  shown = "; ".join(names[:limit])
  more = len(names) - limit
  return shown + (f"; and {more} more" if more > 0 else "")


def _kvstore(directory: str, relative: str) -> dict[str, str]:
  """TensorStore kvstore for ``relative`` under the checkpoint folder."""
  match = re.fullmatch(r"gs://([^/]+)/?(.*)", directory, re.DOTALL)
  if match:
    bucket, prefix = match.groups()
    return {"driver": "gcs", "bucket": bucket,
            "path": posixpath.join(prefix, relative)}
  return {"driver": "file",
          "path": os.path.join(os.path.abspath(directory), relative)}


def _relative_path(leaf: Any) -> str:
  """The zarr folder of a spec dict or placeholder, relative to the folder."""
  if isinstance(leaf, str):
    relative = leaf[len(_PLACEHOLDER_PREFIX):]
  else:
    kvstore = leaf["kvstore"] if isinstance(leaf["kvstore"], dict) else {}
    relative = kvstore.get("path") or leaf.get("path") or ""
  return relative.rstrip("/")


def _open_arrays(directory: str, checkpoint_file: str,
                 found: dict[str, Any]) -> dict[str, Any]:
  """Opens the TensorStore leaves (concurrently); inline ones become float32."""
  arrays, futures = {}, {}
  for name, leaf in found.items():
    if isinstance(leaf, np.ndarray):
      if not jnp.issubdtype(leaf.dtype, jnp.floating):
        raise errors.DataFormatError(
            checkpoint_file, None,
            f"parameter {name} is stored inline as {leaf.dtype}, not as "
            f"floating point")
      arrays[name] = np.asarray(leaf, np.float32)
      continue
    relative = _relative_path(leaf)
    if not relative:
      raise errors.DataFormatError(
          checkpoint_file, None,
          f"the TensorStore spec of parameter {name} has no path: {leaf}")
    folder = posixpath.join(directory, relative)
    spec = {"driver": leaf.get("driver", "zarr") if isinstance(leaf, dict)
                      else "zarr",
            "kvstore": _kvstore(directory, relative),
            # A missing chunk is an error, not a silent block of zeros.
            "fill_missing_data_reads": False}
    futures[name] = (folder, ts.open(spec, open=True, read=True))
  for name, (folder, future) in futures.items():
    try:
      store = future.result()
    except ValueError as e:
      _raise_tensorstore_error(folder, e)
      raise
    if not jnp.issubdtype(store.dtype.numpy_dtype, jnp.floating):
      raise errors.DataFormatError(
          folder, None,
          f"stored as {store.dtype.name}; parameters must be float32 or "
          f"bfloat16 (t5x checkpoints of version < 3 store bfloat16 as "
          f"uint16)")
    arrays[name] = TensorStoreArray(store, folder)
  return arrays


def _raise_tensorstore_error(folder: str, error: ValueError) -> None:
  """Raises MissingDataError or DataFormatError for a data error of TensorStore.

  Returns for other errors (e.g. UNAVAILABLE, PERMISSION_DENIED), which are
  not the data's fault; the caller re-raises them as they are.
  """
  message = str(error)
  if message.startswith("NOT_FOUND"):
    raise errors.MissingDataError(
        f"{folder}: zarr array missing or incomplete: {message}") from error
  if message.startswith(_FORMAT_ERROR_CODES):
    raise errors.DataFormatError(
        folder, None, f"cannot read the zarr array: {message}") from error


def _host_array(value: Any, name: str) -> np.ndarray:
  if isinstance(value, jax.Array) and not value.is_fully_addressable:
    raise ValueError(
        f"{name} is sharded across processes; save_t5x_checkpoint writes "
        f"from one process: gather it first (e.g. "
        f"jax.experimental.multihost_utils.process_allgather)")
  array = np.asarray(value)
  if not jnp.issubdtype(array.dtype, jnp.floating):
    raise ValueError(f"{name} is {array.dtype}, not a floating-point array")
  return array


def _chunk_shape(shape: tuple[int, ...], itemsize: int) -> list[int]:
  """Largest chunk of at most 64 MiB whose sides divide the array's sides.

  Like t5x: repeatedly shrink the currently largest side to its next smaller
  divisor. Example: [250112, 4096] float32 (3.8 GiB) -> [3908, 4096].
  """
  target = max(1, _CHUNK_BYTES // itemsize)
  divisors = [[d for d in range(1, n + 1) if n % d == 0] or [1] for n in shape]
  while math.prod(d[-1] for d in divisors) > target:
    largest = max(range(len(shape)), key=lambda i: divisors[i][-1])
    divisors[largest].pop()
  return [d[-1] for d in divisors]


def _write_array(directory: str, name: str, array: np.ndarray,
                 dtype: str) -> dict[str, Any]:
  """Writes one zarr array; returns the spec t5x records for it."""
  stored = array.astype(jnp.dtype(dtype))
  spec = {
      "driver": "zarr",
      "dtype": dtype,
      "kvstore": {"driver": "file", "path": name},
      "metadata": {
          "compressor": {"id": "gzip"},
          "shape": list(array.shape),
          "chunks": _chunk_shape(array.shape, stored.dtype.itemsize),
      },
  }
  absolute = dict(spec, kvstore={"driver": "file",
                                 "path": os.path.join(directory, name)})
  store = ts.open(absolute, create=True, open=True).result()
  store.write(stored).result()
  return ts.Spec(spec).to_json()
