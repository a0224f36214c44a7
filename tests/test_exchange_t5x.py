"""Tests of the t5x checkpoint importer and writer (tiny shapes, CPU)."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import tensorstore as ts
from flax import linen as nn
from flax import serialization
from flax.traverse_util import flatten_dict, unflatten_dict
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from korani_tasks.errors import ConfigError, DataFormatError, MissingDataError
from t5x_runs.exchange.t5x_checkpoint import (TensorStoreArray,
                                              load_t5x_checkpoint,
                                              save_t5x_checkpoint)
from t5x_runs.models import MT5, mt5_config

CONFIG = mt5_config("tiny")  # vocab 512, emb 64, 4 heads x 16, mlp 128


def _init_params(config):
  tokens = jnp.ones((1, 4), jnp.int32)
  variables = MT5(config).init(jax.random.key(0), tokens, tokens)
  return jax.tree.map(np.asarray, nn.meta.unbox(variables["params"]))


@pytest.fixture(scope="module")
def params():
  return _init_params(CONFIG)


@pytest.fixture(scope="module")
def checkpoint(params, tmp_path_factory):
  """A checkpoint written by ``save_t5x_checkpoint``; tests must not edit it."""
  return save_t5x_checkpoint(params, str(tmp_path_factory.mktemp("model")),
                             step=7)


def _assert_same_tree(loaded, expected, dtype=np.float32):
  flat_loaded, flat_expected = flatten_dict(loaded), flatten_dict(expected)
  assert set(flat_loaded) == set(flat_expected)
  for keys, want in flat_expected.items():
    got = np.asarray(flat_loaded[keys])
    assert got.dtype == np.float32, keys
    np.testing.assert_array_equal(
        got, want.astype(dtype).astype(np.float32), err_msg=str(keys))


def test_round_trip_writes_t5x_layout(checkpoint, params):
  assert os.path.basename(checkpoint) == "checkpoint_7"
  assert sorted(os.listdir(os.path.dirname(checkpoint))) == ["checkpoint_7"]
  folder = os.path.join(checkpoint,
                        "target.encoder.layers_0.attention.key.kernel")
  with open(os.path.join(folder, ".zarray")) as f:
    zarray = json.load(f)
  assert zarray["compressor"]["id"] == "gzip"
  assert zarray["shape"] == [64, 64] and zarray["dtype"] == "<f4"

  with open(os.path.join(checkpoint, "checkpoint"), "rb") as f:
    contents = serialization.msgpack_restore(f.read())
  assert contents["version"] == 3
  assert int(contents["optimizer"]["state"]["step"]) == 7
  spec = contents["optimizer"]["target"]["encoder"]["layers_0"]["attention"][
      "key"]["kernel"]
  assert spec["driver"] == "zarr" and spec["dtype"] == "float32"
  assert spec["kvstore"] == {
      "driver": "file", "path": "target.encoder.layers_0.attention.key.kernel/"}
  assert spec["metadata"]["shape"] == [64, 64]

  for path in (checkpoint, os.path.join(checkpoint, "checkpoint")):
    loaded, config = load_t5x_checkpoint(path, CONFIG)
    assert config == CONFIG
    leaf = loaded["encoder"]["layers_0"]["attention"]["key"]["kernel"]
    assert isinstance(leaf, TensorStoreArray)
    assert leaf.shape == (64, 64) and leaf.dtype == np.float32
    _assert_same_tree(loaded, params)


def test_round_trip_bfloat16(params, tmp_path):
  path = save_t5x_checkpoint(params, tmp_path, dtype="bfloat16")  # a Path
  loaded, _ = load_t5x_checkpoint(path, CONFIG)
  leaf = loaded["decoder"]["logits_dense"]["kernel"]
  assert leaf.stored_dtype == np.dtype(ml_dtypes.bfloat16)
  _assert_same_tree(loaded, params, dtype=ml_dtypes.bfloat16)


def test_import_with_make_array_from_callback(checkpoint, params):
  loaded, _ = load_t5x_checkpoint(checkpoint, CONFIG)
  mesh = Mesh(np.array(jax.devices()[:1]), ("model",))

  def to_device(leaf):
    spec = PartitionSpec(*([None] * (leaf.ndim - 1)), "model")
    return jax.make_array_from_callback(
        leaf.shape, NamedSharding(mesh, spec),
        lambda index: np.asarray(leaf[index], np.float32))

  arrays = jax.tree.map(to_device, loaded,
                        is_leaf=lambda x: isinstance(x, TensorStoreArray))
  leaf = arrays["token_embedder"]["embedding"]
  assert isinstance(leaf, jax.Array) and leaf.shape == (512, 64)
  _assert_same_tree(jax.tree.map(np.asarray, arrays), params)
  tokens = jnp.array([[3, 4, 5, 0]], jnp.int32)
  np.testing.assert_allclose(
      MT5(CONFIG).apply({"params": arrays}, tokens, tokens),
      MT5(CONFIG).apply({"params": params}, tokens, tokens), rtol=1e-6)


# Names of the arrays that the hand-written layout stores specially.
_EMBEDDING = ("token_embedder", "embedding")        # bfloat16, 4 chunks
_INLINE = ("encoder", "encoder_norm", "scale")      # numpy in the msgpack
_PLACEHOLDER = ("decoder", "logits_dense", "kernel")  # orbax-style string
_OLD_SPEC = ("decoder", "decoder_norm", "scale")    # tensorstore<0.1.14, gcs


def _write_by_hand(directory, params, leave_out=()):
  """Writes the documented layout without ``save_t5x_checkpoint``."""
  os.makedirs(directory)
  target = {}
  for keys, value in flatten_dict(params).items():
    if keys in leave_out:
      continue
    name = ".".join(("target",) + keys)
    dtype, chunks = "float32", list(value.shape)
    if keys == _INLINE:
      target[keys] = value
      continue
    if keys == _EMBEDDING:
      dtype, chunks = "bfloat16", [128, 64]
    if keys == _PLACEHOLDER:
      name = "optimizer." + name
      target[keys] = "PLACEHOLDER://" + name
    elif keys == _OLD_SPEC:
      target[keys] = {"driver": "zarr", "dtype": dtype, "path": name,
                      "kvstore": {"driver": "gcs",
                                  "bucket": "t5x-dummy-bucket"},
                      "metadata": {"shape": list(value.shape)}}
    else:
      target[keys] = {"driver": "zarr", "dtype": dtype,
                      "kvstore": {"driver": "file", "path": name + "/"},
                      "metadata": {"chunks": chunks,
                                   "compressor": {"id": "gzip", "level": 1},
                                   "shape": list(value.shape)}}
    store = ts.open({"driver": "zarr", "dtype": dtype,
                     "kvstore": {"driver": "file",
                                 "path": os.path.join(directory, name)},
                     "metadata": {"chunks": chunks, "shape": list(value.shape),
                                  "compressor": {"id": "gzip"}}},
                    create=True).result()
    store.write(value.astype(ml_dtypes.bfloat16 if dtype == "bfloat16"
                             else np.float32)).result()
  contents = {
      "version": 3,
      "optimizer": {
          "target": unflatten_dict(target),
          "state": {
              "step": np.asarray(1000000, np.int32),
              # Optimizer state, ignored (its folder does not even exist).
              "param_states": {"encoder": {"encoder_norm": {"scale": {"v": {
                  "driver": "zarr", "dtype": "float32",
                  "kvstore": {"driver": "file",
                              "path": "state.param_states.encoder."
                                      "encoder_norm.scale.v/"},
                  "metadata": {"shape": [64]}}}}}},
          },
      },
  }
  with open(os.path.join(directory, "checkpoint"), "wb") as f:
    f.write(serialization.msgpack_serialize(contents))
  return str(directory)


def test_reads_hand_written_layout(params, tmp_path):
  path = _write_by_hand(tmp_path / "checkpoint_1000000", params)
  assert os.path.isdir(os.path.join(
      path, "optimizer.target.decoder.logits_dense.kernel"))
  loaded, _ = load_t5x_checkpoint(path, CONFIG)

  embedding = loaded["token_embedder"]["embedding"]
  assert embedding.stored_dtype == np.dtype(ml_dtypes.bfloat16)
  np.testing.assert_array_equal(
      embedding[...],
      params["token_embedder"]["embedding"].astype(ml_dtypes.bfloat16)
      .astype(np.float32))
  assert not np.array_equal(embedding[...],
                            params["token_embedder"]["embedding"])
  inline = loaded["encoder"]["encoder_norm"]["scale"]
  assert isinstance(inline, np.ndarray) and inline.dtype == np.float32

  bf16_free = {k: v for k, v in flatten_dict(loaded).items() if k != _EMBEDDING}
  want = {k: v for k, v in flatten_dict(params).items() if k != _EMBEDDING}
  _assert_same_tree(unflatten_dict(bf16_free), unflatten_dict(want))


def test_indexing_reads_only_the_selected_chunks(params, tmp_path):
  path = _write_by_hand(tmp_path / "checkpoint_1", params)
  folder = os.path.join(path, "target.token_embedder.embedding")
  with open(os.path.join(folder, "3.0"), "wb") as f:
    f.write(b"not gzip")  # rows 384..511
  os.remove(os.path.join(folder, "2.0"))  # rows 256..383
  loaded, _ = load_t5x_checkpoint(path, CONFIG)
  embedding = loaded["token_embedder"]["embedding"]

  first_rows = embedding[0:256, 8:16]
  assert first_rows.shape == (256, 8) and first_rows.dtype == np.float32
  np.testing.assert_array_equal(
      first_rows, params["token_embedder"]["embedding"][0:256, 8:16]
      .astype(ml_dtypes.bfloat16).astype(np.float32))
  with pytest.raises(DataFormatError, match="target.token_embedder.embedding"):
    embedding[400:401]
  with pytest.raises(MissingDataError, match=r"2\.0"):
    embedding[300:301]


def test_missing_array_folder(checkpoint, tmp_path):
  copy = tmp_path / "checkpoint_7"
  shutil.copytree(checkpoint, copy)
  shutil.rmtree(copy / "target.decoder.layers_1.mlp.wo.kernel")
  with pytest.raises(MissingDataError,
                     match="target.decoder.layers_1.mlp.wo.kernel"):
    load_t5x_checkpoint(str(copy), CONFIG)


def test_parameter_missing_from_msgpack(params, tmp_path):
  path = _write_by_hand(tmp_path / "checkpoint_1", params,
                        leave_out={("decoder", "layers_0", "pre_mlp_layer_norm",
                                    "scale")})
  with pytest.raises(MissingDataError) as raised:
    load_t5x_checkpoint(path, CONFIG)
  message = str(raised.value)
  assert "target.decoder.layers_0.pre_mlp_layer_norm.scale" in message
  assert os.path.join(path, "checkpoint") in message


def test_misshaped_array_names_both_shapes(tmp_path):
  wide = _init_params(mt5_config("tiny", mlp_dim=256))
  path = save_t5x_checkpoint(wide, str(tmp_path))
  with pytest.raises(ConfigError) as raised:
    load_t5x_checkpoint(path, CONFIG)
  message = str(raised.value)
  assert ("target.decoder.layers_0.mlp.wi_0.kernel: checkpoint (64, 256), "
          "expected (64, 128)") in message
  assert "12 parameter(s)" in message  # wi_0, wi_1, wo of 4 layers
  assert "target.encoder.layers_0.mlp.wi_1.kernel" in message
  assert "attention" not in message


def test_unexpected_extra_array(params, tmp_path):
  extra = dict(params, encoder=dict(params["encoder"], layers_2=params[
      "encoder"]["layers_1"]))
  path = save_t5x_checkpoint(extra, str(tmp_path))
  with pytest.raises(ConfigError) as raised:
    load_t5x_checkpoint(path, CONFIG)
  message = str(raised.value)
  assert "target.encoder.layers_2.attention.key.kernel" in message
  assert "target.encoder.layers_1." not in message


def test_truncated_msgpack(checkpoint, tmp_path):
  copy = tmp_path / "checkpoint_7"
  shutil.copytree(checkpoint, copy)
  data = (copy / "checkpoint").read_bytes()
  (copy / "checkpoint").write_bytes(data[:len(data) // 2])
  with pytest.raises(DataFormatError,
                     match=str(copy / "checkpoint") + ".*truncated"):
    load_t5x_checkpoint(str(copy), CONFIG)


def test_unreadable_zarr_metadata(checkpoint, tmp_path):
  copy = tmp_path / "checkpoint_7"
  shutil.copytree(checkpoint, copy)
  folder = copy / "target.encoder.relpos_bias.rel_embedding"
  (folder / ".zarray").write_text("{not json")
  with pytest.raises(DataFormatError, match=str(folder)):
    load_t5x_checkpoint(str(copy), CONFIG)


def test_missing_checkpoint_file(tmp_path):
  with pytest.raises(MissingDataError, match="checkpoint"):
    load_t5x_checkpoint(str(tmp_path), CONFIG)


def test_failed_save_leaves_no_folder(params, tmp_path):
  broken = dict(params, decoder=dict(params["decoder"],
                                     bad={"kernel": np.zeros(3, np.int32)}))
  with pytest.raises(ValueError, match="target.decoder.bad.kernel"):
    save_t5x_checkpoint(broken, str(tmp_path), step=3)
  assert os.listdir(tmp_path) == []
  path = save_t5x_checkpoint(params, str(tmp_path), step=3)
  with pytest.raises(ConfigError, match="exists"):
    save_t5x_checkpoint(params, str(tmp_path), step=3)
  assert os.listdir(tmp_path) == [os.path.basename(path)]
