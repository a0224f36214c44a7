"""Checkpoint exchange with t5x and Hugging Face.

    hf_mt5           Hugging Face transformers mT5 folders (config.json +
                     safetensors or pytorch_model.bin): import and export
    t5x_checkpoint   t5x checkpoints (msgpack + TensorStore arrays): import

`load_pretrained` picks the format from what the path holds and returns our
parameter tree (t5x_runs/models/mt5.py) as plain arrays; `check_params_match`
compares such a tree with the one the model expects, before training starts
from it. Both formats hold one array per layer (``layers_{i}``); for a
config with ``scan_layers`` the layers are stacked on import
(`StackedArray`, read lazily) and unstacked on export.

Example::

    params, config = load_pretrained("/ckpt/mt5-small")  # HF folder
    params, config = load_pretrained(                    # t5x: no config inside
        "/ckpt/mt5_small/checkpoint_1000000", mt5_config("small"))
    check_params_match(params, jax.eval_shape(init_fn, rng))  # Raises if not.
"""

# The formats' modules are imported when used: importing the package stays
# cheap, and they may import it in turn.
# pylint: disable=import-outside-toplevel

import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from korani_tasks import errors
from t5x_runs.models.config import MT5Config

HF_CONFIG_FILE = "config.json"
T5X_CHECKPOINT_FILE = "checkpoint"  # t5x's msgpack of the parameter tree.
_LISTED = 10  # Paths shown per kind of mismatch.
# MT5Config fields that fix the parameters and the function of the network
# (dropout, dtype and the like are the training run's own).
_ARCHITECTURE = ("vocab_size", "emb_dim", "num_heads", "head_dim", "mlp_dim",
                 "num_encoder_layers", "num_decoder_layers",
                 "relative_attention_num_buckets",
                 "relative_attention_max_distance", "layer_norm_epsilon")


def _isfile(path: str) -> bool:
  if "://" in path:  # gs:// and other remote t5x checkpoints.
    import tensorflow as tf
    try:
      return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)
    except tf.errors.OpError as e:
      raise errors.MissingDataError(f"{path}: cannot be read: {e}") from e
  return os.path.isfile(path)


def _check_same_architecture(loaded: MT5Config, wanted: MT5Config,
                             path: str) -> None:
  diff = {name: (getattr(loaded, name), getattr(wanted, name))
          for name in _ARCHITECTURE
          if getattr(loaded, name) != getattr(wanted, name)}
  if diff:
    raise errors.ConfigError(
        f"{path} holds a different network than the model config (field: "
        f"(checkpoint, config)): {diff}")


def load_pretrained(path: str, config: MT5Config | None = None
                    ) -> tuple[Any, MT5Config]:
  """Parameters (and model config) of a pretrained checkpoint at ``path``.

  ``path`` is a Hugging Face folder (it holds ``config.json``), or a t5x
  checkpoint: a folder such as ``checkpoint_1000000`` holding a
  ``checkpoint`` msgpack file, or that file itself. A t5x checkpoint carries
  no model config, so ``config`` is required for it. For a Hugging Face
  folder the network is read from config.json; a given ``config`` must
  describe the same network (sizes, buckets, layer-norm epsilon; its
  dropout_rate, dtype and the like may differ) and is the one returned.

  Returns:
    (params, config): params a nested dict of arrays in our tree (the
    scanned tree, with `StackedArray` leaves, when ``config.scan_layers``).

  Raises:
    MissingDataError: ``path`` is neither layout.
    ConfigError: a t5x checkpoint without ``config``, or a ``config`` that
      does not match the Hugging Face folder's.
  """
  params, config = _load_unscanned(os.fspath(path), config)
  if config.scan_layers:
    from t5x_runs.models import mt5
    params = mt5.stack_layers(params, stack=StackedArray)
  return params, config


class StackedArray:
  """Per-layer arrays read as one stacked array [layers, ...], lazily.

  ``array[index]`` reads only the selected layers, and of each only the
  selected slice (the per-layer arrays may be lazy readers themselves, such
  as t5x's TensorStore arrays), as ``jax.make_array_from_callback`` needs.
  """

  def __init__(self, layers: Sequence[Any]):
    self.layers = list(layers)
    shapes = {tuple(np.shape(layer)) for layer in self.layers}
    if len(shapes) != 1:
      raise errors.ConfigError(
          f"cannot stack layers of different shapes: {sorted(shapes)}")
    self.shape = (len(self.layers),) + shapes.pop()
    self.dtype = np.dtype(np.float32)

  @property
  def ndim(self) -> int:
    return len(self.shape)

  def __getitem__(self, index) -> np.ndarray:
    if index is Ellipsis:
      index = ()
    index = index if isinstance(index, tuple) else (index,)
    first, rest = (index[0], index[1:]) if index else (slice(None), ())
    if isinstance(first, (int, np.integer)):
      return np.asarray(self.layers[first][rest], np.float32)
    return np.stack([np.asarray(layer[rest], np.float32)
                     for layer in self.layers[first]])

  def __array__(self, dtype=None, copy=None):
    del copy  # Every read makes a new array.
    data = self[...]
    return data if dtype is None else data.astype(dtype)


def _load_unscanned(path: str, config: MT5Config | None
                    ) -> tuple[Any, MT5Config]:
  """`load_pretrained` in the unscanned (per-layer) tree."""
  unscanned = (dataclasses.replace(config, scan_layers=False)
               if config is not None else None)
  if "://" not in path and os.path.isfile(os.path.join(path, HF_CONFIG_FILE)):
    from t5x_runs.exchange import hf_mt5
    params, loaded = hf_mt5.load_hf_checkpoint(path)
    if config is None:
      return params, loaded
    _check_same_architecture(loaded, config, path)
    return params, config
  if (_isfile(os.path.join(path, T5X_CHECKPOINT_FILE))
      or (os.path.basename(path.rstrip("/")) == T5X_CHECKPOINT_FILE
          and _isfile(path))):
    if config is None:
      raise errors.ConfigError(
          f"{path} is a t5x checkpoint, which holds no model config: pass "
          "the MT5Config of the network it was trained as (e.g. "
          "mt5_config('small'))")
    from t5x_runs.exchange import t5x_checkpoint
    return t5x_checkpoint.load_t5x_checkpoint(path, unscanned)[0], config
  raise errors.MissingDataError(
      f"{path}: no pretrained checkpoint found. Expected a Hugging Face "
      f"folder (with {HF_CONFIG_FILE} and model.safetensors, "
      "model.safetensors.index.json or pytorch_model.bin) or a t5x "
      f"checkpoint (a folder with a '{T5X_CHECKPOINT_FILE}' msgpack file, "
      "e.g. checkpoint_1000000, or that file). Hugging Face hub names are "
      "not downloaded: fetch the folder first, e.g. `huggingface-cli "
      "download google/mt5-small --local-dir DIR`")


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  from t5x_runs.exchange import hf_mt5
  return {"/".join(path): tuple(np.shape(leaf))
          for path, leaf in hf_mt5.flatten(hf_mt5.unboxed(tree)).items()}


def check_params_match(params: Any, abstract_params: Any) -> None:
  """Checks a loaded tree against the tree the model expects.

  ``abstract_params`` holds shapes, e.g. ``jax.eval_shape`` of the model's
  init (boxed or unboxed). Paths are '/'-joined, e.g.
  ``encoder/layers_0/attention/query/kernel``.

  Raises:
    ConfigError: listing the missing, unexpected and misshaped entries
      (the first 10 of each).
  """
  have, want = _shapes(params), _shapes(abstract_params)
  missing = [p for p in want if p not in have]
  unexpected = [p for p in have if p not in want]
  misshaped = [f"{p} {list(have[p])} (expected {list(want[p])})"
               for p in want if p in have and have[p] != want[p]]
  if not (missing or unexpected or misshaped):
    return
  parts = []
  for kind, items in (("missing", missing), ("unexpected", unexpected),
                      ("misshaped", misshaped)):
    if items:
      more = len(items) - _LISTED
      parts.append(f"{len(items)} {kind}: " + ", ".join(items[:_LISTED])
                   + (f" and {more} more" if more > 0 else ""))
  raise errors.ConfigError(
      "the pretrained parameters do not match the model's: "
      + "; ".join(parts))
