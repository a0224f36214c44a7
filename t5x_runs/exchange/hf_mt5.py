"""Hugging Face transformers mT5 checkpoints <-> our parameter tree.

`transformers.MT5ForConditionalGeneration` computes the same function as our
network (t5x_runs/models/mt5.py): pre-norm RMS layer norms, no attention logit
scaling, gated GELU with the tanh approximation ('gelu_new'), relative
position buckets shared by the layers of a stack, untied output projection
with no scaling. Only the names and the layout of the tensors differ
(HF ``nn.Linear`` weights are [out, in], our kernels [in, out]; (T) marks a
transposed tensor; relative_attention_bias is [buckets, heads], our
rel_embedding [heads, buckets]):

    HF                                        ours
    shared.weight                             token_embedder/embedding
    lm_head.weight                            decoder/logits_dense/kernel (T)
    X.block.0.layer.0.SelfAttention.          X/relpos_bias/rel_embedding (T)
      relative_attention_bias.weight            (X: encoder, decoder)
    encoder.final_layer_norm.weight           encoder/encoder_norm/scale
    decoder.final_layer_norm.weight           decoder/decoder_norm/scale
  encoder.block.{i}.layer. ->                 encoder/layers_{i}/
    0.SelfAttention.{q,k,v,o}.weight          attention/{query,key,value,out}/
                                                kernel (T)
    0.layer_norm.weight                       pre_attention_layer_norm/scale
    1.DenseReluDense.{wi_0,wi_1,wo}.weight    mlp/{wi_0,wi_1,wo}/kernel (T)
    1.layer_norm.weight                       pre_mlp_layer_norm/scale
  decoder.block.{i}.layer. ->                 decoder/layers_{i}/
    0.SelfAttention, 0.layer_norm             self_attention,
                                                pre_self_attention_layer_norm
    1.EncDecAttention, 1.layer_norm           encoder_decoder_attention,
                                                pre_cross_attention_layer_norm
    2.DenseReluDense, 2.layer_norm            mlp, pre_mlp_layer_norm

``encoder.embed_tokens.weight`` and ``decoder.embed_tokens.weight`` are
transformers' tied copies of ``shared.weight``: read when present (they must
equal it), never written. The vocabulary size is kept as is in both
directions (mT5's 250,112 rows, ours padded to a multiple of 128).

Only local folders are read: Hugging Face hub names and ``gs://`` paths are
not fetched (download a hub model first, e.g. ``huggingface-cli download
google/mt5-small --local-dir DIR``).

Example::

    params, config = load_hf_checkpoint("/ckpt/mt5-small")
    logits = MT5(config).apply({"params": params}, enc, dec_in, dec_targets)
    export_hf_checkpoint(params, config, "/tmp/mt5-small-finetuned")
"""

import contextlib
import dataclasses
import json
import os
import shutil
import uuid
from typing import Any, Iterator, Mapping

import jax
# Registers bfloat16 with numpy, so that safetensors' BF16 tensors read.
import ml_dtypes  # pylint: disable=unused-import  # noqa: F401
import numpy as np
import safetensors
import safetensors.numpy
from flax import linen as nn

from korani_tasks import errors
from t5x_runs.models import mt5
from t5x_runs.models.config import MT5Config

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
PYTORCH_INDEX_FILE = "pytorch_model.bin.index.json"
_WEIGHT_FILES = (SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, PYTORCH_FILE,
                 PYTORCH_INDEX_FILE)

_SHARED = "shared.weight"
_LM_HEAD = "lm_head.weight"
# transformers' tied copies of shared.weight (present in pytorch_model.bin).
_EMBEDDING_COPIES = ("encoder.embed_tokens.weight",
                     "decoder.embed_tokens.weight")
# Old T5 checkpoints carry it; transformers ignores it on load, so do we.
_IGNORED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias"
            ".weight",)
_LISTED = 10  # Names shown per kind of problem in error messages.


@dataclasses.dataclass(frozen=True)
class _Tensor:
  """One HF tensor and the parameter it maps to (``shape`` is ours)."""

  hf_name: str
  path: tuple[str, ...]
  shape: tuple[int, ...]
  transpose: bool

  @property
  def hf_shape(self) -> tuple[int, ...]:
    return self.shape[::-1] if self.transpose else self.shape


def _attention(hf: str, ours: tuple[str, ...], cfg: MT5Config) -> list[_Tensor]:
  emb, joined = cfg.emb_dim, cfg.num_heads * cfg.head_dim
  shapes = {"q": (emb, joined), "k": (emb, joined), "v": (emb, joined),
            "o": (joined, emb)}
  names = {"q": "query", "k": "key", "v": "value", "o": "out"}
  return [_Tensor(f"{hf}.{p}.weight", ours + (names[p], "kernel"), shapes[p],
                  True) for p in ("q", "k", "v", "o")]


def _mlp(hf: str, ours: tuple[str, ...], cfg: MT5Config) -> list[_Tensor]:
  emb, mlp = cfg.emb_dim, cfg.mlp_dim
  shapes = {"wi_0": (emb, mlp), "wi_1": (emb, mlp), "wo": (mlp, emb)}
  return [_Tensor(f"{hf}.{name}.weight", ours + (name, "kernel"), shape, True)
          for name, shape in shapes.items()]


def _norm(hf: str, ours: tuple[str, ...], cfg: MT5Config) -> _Tensor:
  return _Tensor(f"{hf}.weight", ours + ("scale",), (cfg.emb_dim,), False)


def _tensor_map(cfg: MT5Config) -> list[_Tensor]:
  """Every tensor of an HF mT5 of shape ``cfg`` and its parameter path."""
  relpos = (cfg.num_heads, cfg.relative_attention_num_buckets)
  tensors = [
      _Tensor(_SHARED, ("token_embedder", "embedding"),
              (cfg.vocab_size, cfg.emb_dim), False),
      _Tensor("encoder.block.0.layer.0.SelfAttention.relative_attention_bias"
              ".weight", ("encoder", "relpos_bias", "rel_embedding"), relpos,
              True),
      _Tensor("decoder.block.0.layer.0.SelfAttention.relative_attention_bias"
              ".weight", ("decoder", "relpos_bias", "rel_embedding"), relpos,
              True),
  ]
  for i in range(cfg.num_encoder_layers):
    hf, ours = f"encoder.block.{i}", ("encoder", f"layers_{i}")
    tensors += _attention(f"{hf}.layer.0.SelfAttention", ours + ("attention",),
                          cfg)
    tensors.append(_norm(f"{hf}.layer.0.layer_norm",
                         ours + ("pre_attention_layer_norm",), cfg))
    tensors += _mlp(f"{hf}.layer.1.DenseReluDense", ours + ("mlp",), cfg)
    tensors.append(_norm(f"{hf}.layer.1.layer_norm",
                         ours + ("pre_mlp_layer_norm",), cfg))
  tensors.append(_norm("encoder.final_layer_norm", ("encoder", "encoder_norm"),
                       cfg))
  for i in range(cfg.num_decoder_layers):
    hf, ours = f"decoder.block.{i}", ("decoder", f"layers_{i}")
    tensors += _attention(f"{hf}.layer.0.SelfAttention",
                          ours + ("self_attention",), cfg)
    tensors.append(_norm(f"{hf}.layer.0.layer_norm",
                         ours + ("pre_self_attention_layer_norm",), cfg))
    tensors += _attention(f"{hf}.layer.1.EncDecAttention",
                          ours + ("encoder_decoder_attention",), cfg)
    tensors.append(_norm(f"{hf}.layer.1.layer_norm",
                         ours + ("pre_cross_attention_layer_norm",), cfg))
    tensors += _mlp(f"{hf}.layer.2.DenseReluDense", ours + ("mlp",), cfg)
    tensors.append(_norm(f"{hf}.layer.2.layer_norm",
                         ours + ("pre_mlp_layer_norm",), cfg))
  tensors.append(_norm("decoder.final_layer_norm", ("decoder", "decoder_norm"),
                       cfg))
  tensors.append(_Tensor(_LM_HEAD, ("decoder", "logits_dense", "kernel"),
                         (cfg.emb_dim, cfg.vocab_size), True))
  return tensors


# -- config.json ---------------------------------------------------------------

# config.json field -> (MT5Config field, default when absent; None: required).
_CONFIG_FIELDS = {
    "vocab_size": ("vocab_size", None),
    "d_model": ("emb_dim", None),
    "num_heads": ("num_heads", None),
    "d_kv": ("head_dim", None),
    "d_ff": ("mlp_dim", None),
    "num_layers": ("num_encoder_layers", None),
    "num_decoder_layers": ("num_decoder_layers", None),  # Default: num_layers.
    "relative_attention_num_buckets": ("relative_attention_num_buckets", 32),
    "relative_attention_max_distance": ("relative_attention_max_distance", 128),
    "layer_norm_epsilon": ("layer_norm_epsilon", 1e-6),
    "dropout_rate": ("dropout_rate", 0.1),
}
_FLOAT_FIELDS = ("layer_norm_epsilon", "dropout_rate")


def mt5_config_from_hf(config: Mapping[str, Any],
                       source: str = CONFIG_FILE) -> MT5Config:
  """The MT5Config of a Hugging Face mT5 ``config.json`` (as a dict).

  Example: ``{"model_type": "mt5", "d_model": 512, "d_kv": 64, "d_ff": 1024,
  "num_heads": 6, "num_layers": 8, "vocab_size": 250112,
  "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false, ...}`` ->
  ``MT5Config(vocab_size=250112, emb_dim=512, num_heads=6, head_dim=64,
  mlp_dim=1024, num_encoder_layers=8, num_decoder_layers=8, ...)``. Absent
  optional fields take transformers' defaults; the activation dtype is
  float32.

  Raises:
    ConfigError: naming the field (and ``source``) when the network is not
      one ours can represent: model_type other than 'mt5', feed_forward_proj
      other than 'gated-gelu', tied word embeddings (transformers' default
      when the field is absent), not an encoder-decoder, or a missing or
      non-positive size. (transformers >= 5 writes tie_word_embeddings
      true for every mT5; `load_hf_checkpoint` reads such a config as
      untied when the weights hold a separate lm_head.weight, as
      transformers does.)
  """

  def refuse(field, why):
    return errors.ConfigError(
        f"{source}: {field}={config.get(field)!r}: {why}")

  if config.get("model_type") != "mt5":
    raise refuse("model_type", "only mT5 checkpoints ('mt5') are supported")
  if config.get("feed_forward_proj", "gated-gelu") != "gated-gelu":
    raise refuse("feed_forward_proj",
                 "our network has the gated GELU feed-forward of T5.1.1/mT5 "
                 "only ('gated-gelu')")
  if config.get("tie_word_embeddings", True):
    raise refuse("tie_word_embeddings",
                 "our network has a separate output projection "
                 "(decoder/logits_dense) and does not scale the decoder "
                 "output as tied T5 models do; mT5 checkpoints set it to "
                 "false")
  if not config.get("is_encoder_decoder", True):
    raise refuse("is_encoder_decoder", "an encoder-decoder is required")
  values = {}
  for hf_field, (field, default) in _CONFIG_FIELDS.items():
    value = config.get(hf_field)
    if value is None and hf_field == "num_decoder_layers":
      value = config.get("num_layers")
    if value is None:
      if default is None:
        raise errors.ConfigError(f"{source}: required field {hf_field} is "
                                 "missing")
      value = default
    if hf_field in _FLOAT_FIELDS:
      ok = isinstance(value, (int, float)) and not isinstance(value, bool)
      ok = ok and value >= 0
    else:
      ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    if not ok:
      raise refuse(hf_field, "not a valid value (expected a "
                   + ("non-negative number)" if hf_field in _FLOAT_FIELDS
                      else "positive integer)"))
    values[field] = float(value) if hf_field in _FLOAT_FIELDS else value
  try:
    return MT5Config(**values)
  except ValueError as e:
    raise errors.ConfigError(f"{source}: {e}") from e


def hf_config_from_mt5(cfg: MT5Config) -> dict[str, Any]:
  """A ``config.json`` dict for ``transformers.MT5Config`` describing ``cfg``.

  Token ids are mT5's: padding and decoder start 0, end of sequence 1.
  """
  return {
      "architectures": ["MT5ForConditionalGeneration"],
      "model_type": "mt5",
      "vocab_size": cfg.vocab_size,
      "d_model": cfg.emb_dim,
      "d_kv": cfg.head_dim,
      "d_ff": cfg.mlp_dim,
      "num_heads": cfg.num_heads,
      "num_layers": cfg.num_encoder_layers,
      "num_decoder_layers": cfg.num_decoder_layers,
      "relative_attention_num_buckets": cfg.relative_attention_num_buckets,
      "relative_attention_max_distance": cfg.relative_attention_max_distance,
      "layer_norm_epsilon": cfg.layer_norm_epsilon,
      "dropout_rate": cfg.dropout_rate,
      "feed_forward_proj": "gated-gelu",
      "dense_act_fn": "gelu_new",
      "is_gated_act": True,
      "tie_word_embeddings": False,
      "is_encoder_decoder": True,
      "initializer_factor": 1.0,
      "decoder_start_token_id": 0,
      "pad_token_id": 0,
      "eos_token_id": 1,
      "use_cache": True,
  }


# -- reading -------------------------------------------------------------------


def _listed(names) -> str:
  names = list(names)
  shown = ", ".join(names[:_LISTED])
  more = len(names) - _LISTED
  return shown + (f" and {more} more" if more > 0 else "")


def _read_json(path: str) -> dict[str, Any]:
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
  except json.JSONDecodeError as e:
    raise errors.DataFormatError(path, e.lineno,
                                 f"not valid JSON: {e.msg}") from e
  if not isinstance(value, dict):
    raise errors.DataFormatError(path, None, "expected a JSON object")
  return value


class _WeightFiles:
  """The tensors of an HF folder: where each one is, its shape, its values.

  Safetensors are read one tensor at a time; a pytorch_model.bin (needing
  torch) is loaded whole.
  """

  def __init__(self, folder: str):
    self.folder = folder
    self.where: dict[str, str] = {}  # Tensor name -> file path.
    self._stack = contextlib.ExitStack()
    self._safetensors: dict[str, Any] = {}  # File path -> open handle.
    self._torch: dict[str, Any] = {}  # Tensor name -> torch tensor.
    try:
      self._index(folder)
    except BaseException:
      self._stack.close()
      raise

  def _index(self, folder: str) -> None:
    """Fills ``where`` and ``source``; opens the safetensors files."""
    present = [name for name in _WEIGHT_FILES
               if os.path.isfile(os.path.join(folder, name))]
    if not present:
      raise errors.MissingDataError(
          f"{folder}: no weights: expected {SAFETENSORS_FILE}, "
          f"{SAFETENSORS_INDEX_FILE}, {PYTORCH_FILE} or {PYTORCH_INDEX_FILE} "
          f"next to {CONFIG_FILE}")
    layout = present[0]
    self.source = os.path.join(folder, layout)  # Named in error messages.
    if layout.endswith(".index.json"):
      weight_map = _read_json(self.source).get("weight_map")
      if not isinstance(weight_map, dict) or not weight_map:
        raise errors.DataFormatError(self.source, None,
                                     "no 'weight_map' of tensor -> file")
      files = list(dict.fromkeys(weight_map.values()))
    else:
      weight_map, files = None, [layout]
    for name in files:
      path = os.path.join(folder, name)
      if not os.path.isfile(path):
        raise errors.MissingDataError(
            f"{path} not found (listed in {self.source})")
      for tensor in self._open(path):
        if tensor in self.where:
          raise errors.DataFormatError(
              path, None, f"tensor {tensor} is also in {self.where[tensor]}")
        self.where[tensor] = path
    if weight_map is not None:
      for tensor, name in weight_map.items():
        actual = self.where.get(tensor)
        if actual != os.path.join(folder, name):
          raise errors.DataFormatError(
              self.source, None, f"weight_map puts {tensor} in {name}, but "
              + (f"it is in {os.path.basename(actual)}" if actual
                 else "that file does not hold it"))

  def _open(self, path: str) -> list[str]:
    if path.endswith(".safetensors"):
      handle = self._stack.enter_context(
          safetensors.safe_open(path, framework="numpy"))
      self._safetensors[path] = handle
      return list(handle.keys())
    try:
      import torch  # pylint: disable=import-outside-toplevel
    except ImportError as e:
      raise errors.MissingDataError(
          f"{path}: reading a PyTorch checkpoint needs torch (pip install "
          "torch), or save the model as safetensors") from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
      raise errors.DataFormatError(path, None, "not a PyTorch state dict")
    self._torch.update(state)
    return list(state)

  def __enter__(self) -> "_WeightFiles":
    return self

  def __exit__(self, *exc) -> None:
    self._stack.close()
    self._torch.clear()

  def shape(self, name: str) -> tuple[int, ...]:
    if name in self._torch:
      return tuple(self._torch[name].shape)
    handle = self._safetensors[self.where[name]]
    return tuple(handle.get_slice(name).get_shape())

  def read(self, name: str) -> np.ndarray:
    """The tensor as a float32 numpy array."""
    if name in self._torch:
      import torch  # pylint: disable=import-outside-toplevel
      return self._torch[name].detach().to(torch.float32).numpy()
    value = self._safetensors[self.where[name]].get_tensor(name)
    return np.asarray(value, dtype=np.float32)

  def describe(self, names) -> str:
    """Where tensors that are absent were looked for."""
    if self.source.endswith(".index.json"):
      return (f"in none of the files listed by {self.source}: "
              f"{_listed(names)}")
    return f"not in {self.source}: {_listed(names)}"


def _local_folder(path: str | os.PathLike) -> str:
  path = os.fspath(path)
  if "://" in path:
    raise errors.MissingDataError(
        f"{path}: only local folders are read; copy the checkpoint folder "
        "to local disk first")
  if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
    hint = ("" if os.path.exists(path) else
            " (Hugging Face hub names are not downloaded: fetch the folder "
            "first, e.g. `huggingface-cli download google/mt5-small "
            "--local-dir DIR`, and pass DIR)")
    raise errors.MissingDataError(
        f"{path}: not a Hugging Face checkpoint folder: no {CONFIG_FILE}"
        + hint)
  return path


def _embedding_name(files: _WeightFiles) -> str:
  """shared.weight, or a tied copy when only that was saved; copies agree."""
  present = [n for n in (_SHARED,) + _EMBEDDING_COPIES if n in files.where]
  if not present:
    return _SHARED  # Reported as missing.
  first = files.read(present[0])
  for name in present[1:]:
    if files.shape(name) != first.shape or not np.array_equal(
        files.read(name), first):
      raise errors.DataFormatError(
          files.where[name], None,
          f"tensor {name} differs from {present[0]}: our network has one "
          "token embedding for the encoder and the decoder")
  return present[0]


def _untied_on_disk(config: Mapping[str, Any], files: _WeightFiles,
                    embedding: str) -> bool:
  """Whether the checkpoint holds its own lm_head despite a tying config.

  transformers >= 5 writes ``tie_word_embeddings: true`` for every mT5
  (its MT5Config forces it) and, on load, keeps an lm_head.weight that
  differs from shared.weight untied and unscaled: such a checkpoint is an
  untied mT5. A tied one has no lm_head.weight, or an equal one.
  """
  if not config.get("tie_word_embeddings", True):
    return False
  if _LM_HEAD not in files.where or embedding not in files.where:
    return False
  if files.shape(_LM_HEAD) != files.shape(embedding):
    return True  # Reported as misshaped below.
  return not np.array_equal(files.read(_LM_HEAD), files.read(embedding))


def _check_tensors(files: _WeightFiles, tensors: list[_Tensor],
                   embedding: str) -> None:
  names = {t.hf_name: t for t in tensors}
  names[embedding] = dataclasses.replace(names.pop(_SHARED),
                                         hf_name=embedding)
  missing = [n for n in names if n not in files.where]
  misshaped = [
      f"{files.where[n]}: tensor {n} has shape {list(files.shape(n))}, "
      f"expected {list(t.hf_shape)}"
      for n, t in names.items() if n in files.where
      and files.shape(n) != t.hf_shape]
  allowed = set(names) | set(_EMBEDDING_COPIES) | {_SHARED} | set(_IGNORED)
  unexpected = [n for n in files.where if n not in allowed]
  if not (missing or misshaped or unexpected):
    return
  lines = []
  if missing:
    lines.append(f"missing tensor(s), {files.describe(missing)}")
  lines += misshaped[:_LISTED]
  if len(misshaped) > _LISTED:
    lines.append(f"... and {len(misshaped) - _LISTED} more misshaped tensors")
  if unexpected:
    by_file = {}
    for n in unexpected:
      by_file.setdefault(files.where[n], []).append(n)
    lines += [f"{path}: unexpected tensor(s), not part of an mT5 of this "
              f"shape: {_listed(in_file)}" for path, in_file in by_file.items()]
  message = (f"the weights do not match {CONFIG_FILE} (shapes follow from "
             f"its sizes):\n  " + "\n  ".join(lines))
  if missing:
    raise errors.MissingDataError(f"{files.folder}: {message}")
  raise errors.DataFormatError(files.folder, None, message)


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def load_hf_checkpoint(path: str | os.PathLike
                       ) -> tuple[dict[str, Any], MT5Config]:
  """Reads a local Hugging Face mT5 folder into our parameter tree.

  The folder holds ``config.json`` and the weights as ``model.safetensors``,
  sharded safetensors (``model.safetensors.index.json``) or
  ``pytorch_model.bin`` (read with torch, imported only then). Hub names
  such as ``google/mt5-small`` and ``gs://`` paths are not reachable here:
  pass a downloaded folder.

  Returns:
    (params, config): params a nested dict of float32 numpy arrays in our
    tree (module docstring), config from ``config.json`` (its dropout_rate
    included; activations float32).

  Raises:
    MissingDataError: no such folder, no config.json or weights, or a
      tensor missing (named with the file it was looked for in).
    DataFormatError: a misshaped or unexpected tensor (named, with its file
      and both shapes), or tied embedding copies that differ.
    ConfigError: config.json describes a network ours cannot represent.
  """
  folder = _local_folder(path)
  config_path = os.path.join(folder, CONFIG_FILE)
  hf_config = _read_json(config_path)
  with _WeightFiles(folder) as files:
    embedding = _embedding_name(files)
    if _untied_on_disk(hf_config, files, embedding):
      hf_config = dict(hf_config, tie_word_embeddings=False)
    elif hf_config.get("tie_word_embeddings", True):
      where = (f"{files.source} has no separate {_LM_HEAD}"
               if _LM_HEAD not in files.where else
               f"{_LM_HEAD} equals {_SHARED} in {files.source}")
      raise errors.ConfigError(
          f"{config_path}: tie_word_embeddings="
          f"{hf_config.get('tie_word_embeddings', True)!r} and {where}: a "
          "tied mT5 (output projection = token embedding, decoder output "
          "scaled in transformers < 5) is not a network ours represents")
    config = mt5_config_from_hf(hf_config, source=config_path)
    tensors = _tensor_map(config)
    _check_tensors(files, tensors, embedding)
    params: dict[str, Any] = {}
    for t in tensors:
      value = files.read(embedding if t.hf_name == _SHARED else t.hf_name)
      _set(params, t.path, np.ascontiguousarray(value.T if t.transpose
                                                else value))
  return params, config


# -- writing -------------------------------------------------------------------


def unboxed(tree: Any) -> Any:
  """The tree with flax's logical-partitioning boxes replaced by values."""

  def value(x):
    if isinstance(x, nn.Partitioned):
      return x.value
    return x.unbox() if isinstance(x, nn.meta.AxisMetadata) else x

  return jax.tree.map(value, tree,
                      is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata))


def flatten(tree: Any, prefix: tuple[str, ...] = ()
            ) -> dict[tuple[str, ...], Any]:
  """{path tuple: leaf} of a nested mapping (dict, FrozenDict)."""
  if not isinstance(tree, Mapping):
    return {prefix: tree}
  flat = {}
  for key, child in tree.items():
    flat.update(flatten(child, prefix + (str(key),)))
  return flat


def _hf_tensors(params: Any, cfg: MT5Config) -> dict[str, np.ndarray]:
  flat = flatten(mt5.unstack_layers(unboxed(params)))
  tensors = _tensor_map(cfg)
  expected = {t.path: t for t in tensors}
  missing = ["/".join(p) for p in expected if p not in flat]
  unexpected = ["/".join(p) for p in flat if p not in expected]
  misshaped = [f"{'/'.join(p)} {list(np.shape(flat[p]))} (expected "
               f"{list(t.shape)})" for p, t in expected.items()
               if p in flat and tuple(np.shape(flat[p])) != t.shape]
  if missing or unexpected or misshaped:
    problems = [f"{kind}: {_listed(items)}" for kind, items in
                (("missing", missing), ("unexpected", unexpected),
                 ("misshaped", misshaped)) if items]
    raise errors.ConfigError(
        "the parameters do not match the model config "
        f"({cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers, "
        f"emb_dim={cfg.emb_dim}, vocab_size={cfg.vocab_size}): "
        + "; ".join(problems))
  out = {}
  for t in tensors:
    value = np.asarray(jax.device_get(flat[t.path]), dtype=np.float32)
    out[t.hf_name] = np.ascontiguousarray(value.T if t.transpose else value)
  return out


def _fresh_output(output_dir: str) -> None:
  if os.path.isdir(output_dir) and not os.listdir(output_dir):
    return
  if os.path.exists(output_dir):
    raise errors.ConfigError(
        f"{output_dir} already exists and is not an empty folder; export "
        "into a new folder (or remove it first)")


@contextlib.contextmanager
def _atomic_folder(output_dir: str) -> Iterator[str]:
  """Yields a temporary sibling folder that becomes ``output_dir`` at the end.

  On an error the temporary folder is removed and ``output_dir`` is left as
  it was.
  """
  parent, name = os.path.split(output_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:8]}")
  os.mkdir(tmp)
  try:
    yield tmp
    _fresh_output(output_dir)  # Again: it may have appeared meanwhile.
    if os.path.isdir(output_dir):
      os.rmdir(output_dir)
    os.rename(tmp, output_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def export_hf_checkpoint(params: Any, cfg: MT5Config,
                         output_dir: str | os.PathLike,
                         extra_files: Mapping[str, bytes] | None = None
                         ) -> list[str]:
  """Writes a folder that ``MT5ForConditionalGeneration.from_pretrained`` loads.

  ``config.json`` (`hf_config_from_mt5`) and ``model.safetensors`` (float32,
  metadata ``{'format': 'pt'}``), plus ``extra_files`` ({file name: bytes},
  e.g. ``{'spiece.model': ...}``). ``params`` is our tree of numpy or jax
  arrays (sharded ones are gathered to the host; boxed ones unboxed;
  scanned ones unstacked).
  ``output_dir`` must not exist or be empty; everything is written into a
  temporary sibling folder renamed at the end, so an error leaves nothing
  half-written.

  Returns:
    The paths of the files written.

  Raises:
    ConfigError: ``params`` do not match ``cfg`` (paths listed), or
      ``output_dir`` is taken.
  """
  output_dir = os.path.abspath(os.fspath(output_dir))
  extra_files = dict(extra_files or {})
  for name in extra_files:
    if (not name or os.path.basename(name) != name
        or name in (CONFIG_FILE, SAFETENSORS_FILE)):
      raise errors.ConfigError(
          f"extra file name {name!r} must be a plain file name other than "
          f"{CONFIG_FILE} and {SAFETENSORS_FILE}")
  _fresh_output(output_dir)
  tensors = _hf_tensors(params, cfg)
  with _atomic_folder(output_dir) as tmp:
    with open(os.path.join(tmp, CONFIG_FILE), "w", encoding="utf-8") as f:
      json.dump(hf_config_from_mt5(cfg), f, indent=2)
      f.write("\n")
    safetensors.numpy.save_file(tensors, os.path.join(tmp, SAFETENSORS_FILE),
                                metadata={"format": "pt"})
    for name, data in extra_files.items():
      with open(os.path.join(tmp, name), "wb") as f:
        f.write(data)
  return [os.path.join(output_dir, name)
          for name in (CONFIG_FILE, SAFETENSORS_FILE, *extra_files)]
