"""Hugging Face mT5 checkpoints: import, export and `korani checkpoint
export-hf`, checked against transformers' MT5ForConditionalGeneration (CPU).

Logits and sequence scores must agree to 1e-4 (absolute; logits of the
random tiny model are of order 10, float32 on both sides).
"""

import functools
import json
import os
import shutil

import jax
import numpy as np
import pytest
import safetensors
import safetensors.numpy

from korani_tasks import errors
from t5x_runs import checkpoints
from t5x_runs import cli
from t5x_runs import losses
from t5x_runs import trainer
from t5x_runs.exchange import check_params_match, load_pretrained
from t5x_runs.exchange import hf_mt5
from t5x_runs.models import MT5, mt5_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

ATOL = 1e-4
TINY_HF = dict(vocab_size=512, d_model=64, d_kv=16, d_ff=128, num_layers=2,
               num_heads=4, feed_forward_proj="gated-gelu",
               tie_word_embeddings=False, decoder_start_token_id=0)
# The same network in our terms (HF's default dropout_rate is 0.1 as well).
TINY = mt5_config("tiny", vocab_size=512, dropout_rate=0.1)
Q_KERNEL = "encoder.block.0.layer.0.SelfAttention.q.weight"


def _padded(rows, length):
  out = np.zeros((len(rows), length), np.int64)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def _shift_right(targets):
  """seqio's decoder inputs: the targets behind a 0 (the decoder start)."""
  return np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], 1)


def _example_batch():
  """3 examples; encoder lengths 24/17/9 and target lengths 12/7/3 (padded
  with 0), long enough for the logarithmic relative-position buckets."""
  rng = np.random.default_rng(0)
  enc = _padded([rng.integers(2, 512, n) for n in (24, 17, 9)], 24)
  targets = _padded([np.append(rng.integers(2, 512, n - 1), 1)
                     for n in (12, 7, 3)], 12)
  return enc, targets


@functools.cache
def _forward(config):
  return jax.jit(MT5(config).apply)


def our_logits(params, config, enc, targets):
  dec = _shift_right(targets)
  return np.asarray(_forward(config)(
      {"params": params}, enc.astype(np.int32), dec.astype(np.int32),
      targets.astype(np.int32)))


def hf_logits(model, enc, targets):
  with torch.no_grad():
    out = model(input_ids=torch.tensor(enc),
                attention_mask=torch.tensor(enc > 0).long(),
                decoder_input_ids=torch.tensor(_shift_right(targets)))
  return out.logits.numpy()


@pytest.fixture(scope="module")
def hf_model():
  """A random untied tiny mT5, every tensor random (norm scales too)."""
  torch.manual_seed(0)
  model = transformers.MT5ForConditionalGeneration(
      transformers.MT5Config(**TINY_HF))
  with torch.no_grad():
    # transformers >= 5 ties lm_head to shared.weight whatever the config
    # says: give it its own weight, as in the released mT5 checkpoints.
    model.lm_head.weight = torch.nn.Parameter(torch.randn(512, 64))
    for name, param in model.named_parameters():
      if "layer_norm" in name:  # HF initialises them all to 1.
        param.uniform_(0.5, 1.5)
      if "relative_attention_bias" in name:
        param.normal_(0.0, 1.0)
  return model.eval()


@pytest.fixture(scope="module")
def hf_dirs(hf_model, tmp_path_factory):
  """The model saved as model.safetensors, sharded, and pytorch_model.bin."""
  root = tmp_path_factory.mktemp("hf")
  hf_model.save_pretrained(root / "safetensors")
  hf_model.save_pretrained(root / "sharded", max_shard_size="200KB")
  (root / "bin").mkdir()
  shutil.copy(root / "safetensors" / "config.json", root / "bin")
  torch.save(hf_model.state_dict(), root / "bin" / "pytorch_model.bin")
  return {name: root / name for name in ("safetensors", "sharded", "bin")}


@pytest.fixture(scope="module")
def imported(hf_dirs):
  return hf_mt5.load_hf_checkpoint(hf_dirs["safetensors"])


def _abstract_params(config):
  tokens = jax.ShapeDtypeStruct((1, 4), np.int32)
  return jax.eval_shape(MT5(config).init, jax.random.key(0), tokens,
                        tokens)["params"]


@pytest.mark.parametrize("layout", ["safetensors", "sharded", "bin"])
def test_import_gives_the_logits_of_transformers(layout, hf_dirs, hf_model):
  if layout == "sharded":
    assert len(list(hf_dirs[layout].glob("model-*.safetensors"))) > 1
  params, config = hf_mt5.load_hf_checkpoint(hf_dirs[layout])
  assert config == TINY
  check_params_match(params, _abstract_params(config))
  assert all(leaf.dtype == np.float32 and isinstance(leaf, np.ndarray)
             for leaf in jax.tree.leaves(params))

  enc, targets = _example_batch()
  real = targets > 0
  assert 0 < real.sum() < real.size  # Padded examples included.
  ours = our_logits(params, config, enc, targets)
  theirs = hf_logits(hf_model, enc, targets)
  assert np.abs(theirs).max() > 5  # Logits of a real scale, not ~0.
  np.testing.assert_allclose(ours[real], theirs[real], rtol=0, atol=ATOL)


def test_rank_classification_scores_match_transformers(imported, hf_model):
  params, config = imported
  rng = np.random.default_rng(1)
  inputs = [rng.integers(2, 512, n) for n in (20, 13, 6)]
  choices = [np.append(rng.integers(2, 512, n), 1) for n in (1, 2, 3, 4)]
  # 3 inputs x 4 choices, one row per (input, choice).
  enc = _padded([x for x in inputs for _ in choices], 20)
  targets = _padded([c for _ in inputs for c in choices], 5)
  weights = (targets > 0).astype(np.float32)

  logits = our_logits(params, config, enc, targets)
  ours = np.asarray(losses.sequence_log_likelihood(
      logits, targets.astype(np.int32), weights)).reshape(3, 4)
  log_probs = torch.log_softmax(
      torch.tensor(hf_logits(hf_model, enc, targets)), dim=-1)
  theirs = (torch.gather(log_probs, -1, torch.tensor(targets)[..., None])
            [..., 0].numpy() * weights).sum(-1).reshape(3, 4)

  np.testing.assert_allclose(ours, theirs, rtol=0, atol=ATOL)
  np.testing.assert_array_equal(ours.argmax(-1), theirs.argmax(-1))
  assert np.ptp(theirs, axis=-1).min() > 1  # Distinct choices to rank.


def _load_exported(path):
  model, info = transformers.MT5ForConditionalGeneration.from_pretrained(
      path, output_loading_info=True)
  assert not info["missing_keys"], info
  assert not info["unexpected_keys"], info
  assert not info.get("mismatched_keys"), info
  return model.eval()


def test_export_of_imported_model_round_trips(imported, hf_model, tmp_path):
  params, config = imported
  written = hf_mt5.export_hf_checkpoint(params, config, tmp_path / "out")
  assert sorted(os.path.basename(p) for p in written) == [
      "config.json", "model.safetensors"]
  assert sorted(os.listdir(tmp_path)) == ["out"]  # No temporary folder left.

  hf_config = json.loads((tmp_path / "out" / "config.json").read_text())
  assert hf_config["tie_word_embeddings"] is False
  assert hf_config["model_type"] == "mt5"
  assert hf_config["architectures"] == ["MT5ForConditionalGeneration"]
  with safetensors.safe_open(tmp_path / "out" / "model.safetensors",
                             framework="numpy") as f:
    assert f.metadata() == {"format": "pt"}
    assert {f.get_tensor(k).dtype for k in f.keys()} == {np.dtype("float32")}

  exported = _load_exported(tmp_path / "out")
  enc, targets = _example_batch()
  real = targets > 0
  np.testing.assert_allclose(hf_logits(exported, enc, targets)[real],
                             our_logits(params, config, enc, targets)[real],
                             rtol=0, atol=ATOL)
  np.testing.assert_array_equal(exported.lm_head.weight.detach().numpy(),
                                hf_model.lm_head.weight.detach().numpy())

  again, again_config = hf_mt5.load_hf_checkpoint(tmp_path / "out")
  assert again_config == config
  jax.tree.map(np.testing.assert_array_equal, again, params)


# -- altered checkpoints and errors --------------------------------------------


def _folder_with(tmp_path, hf_dirs, change_tensors=None, change_config=None):
  folder = tmp_path / "changed"
  folder.mkdir()
  tensors = safetensors.numpy.load_file(
      hf_dirs["safetensors"] / "model.safetensors")
  config = json.loads((hf_dirs["safetensors"] / "config.json").read_text())
  if change_tensors:
    change_tensors(tensors)
  if change_config:
    change_config(config)
  safetensors.numpy.save_file(tensors, folder / "model.safetensors",
                              metadata={"format": "pt"})
  (folder / "config.json").write_text(json.dumps(config))
  return folder


def test_bfloat16_weights_are_read_as_float32(tmp_path, hf_dirs, imported):
  import ml_dtypes  # pylint: disable=import-outside-toplevel
  folder = _folder_with(tmp_path, hf_dirs, lambda t: t.update(
      {k: v.astype(ml_dtypes.bfloat16) for k, v in t.items()}))
  params, _ = hf_mt5.load_hf_checkpoint(folder)
  expected = imported[0]["encoder"]["layers_0"]["mlp"]["wo"]["kernel"]
  got = params["encoder"]["layers_0"]["mlp"]["wo"]["kernel"]
  assert got.dtype == np.float32
  np.testing.assert_array_equal(
      got, expected.astype(ml_dtypes.bfloat16).astype(np.float32))


def test_missing_tensor_is_named_with_its_file(tmp_path, hf_dirs):
  name = "decoder.block.1.layer.2.DenseReluDense.wo.weight"
  folder = _folder_with(tmp_path, hf_dirs, lambda t: t.pop(name))
  with pytest.raises(errors.MissingDataError) as e:
    hf_mt5.load_hf_checkpoint(folder)
  assert name in str(e.value)
  assert str(folder / "model.safetensors") in str(e.value)


def test_misshaped_tensor_is_named_with_both_shapes(tmp_path, hf_dirs):
  def misshape(tensors):
    tensors[Q_KERNEL] = tensors[Q_KERNEL][:32]
  folder = _folder_with(tmp_path, hf_dirs, misshape)
  with pytest.raises(errors.DataFormatError) as e:
    hf_mt5.load_hf_checkpoint(folder)
  message = str(e.value)
  assert Q_KERNEL in message and "[32, 64]" in message and "[64, 64]" in message
  assert str(folder / "model.safetensors") in message


def test_unexpected_tensor_is_named(tmp_path, hf_dirs):
  extra = "encoder.block.2.layer.0.layer_norm.weight"  # A third layer.
  folder = _folder_with(
      tmp_path, hf_dirs, lambda t: t.update({extra: np.ones(64, np.float32)}))
  with pytest.raises(errors.DataFormatError, match=r"unexpected.*" + extra):
    hf_mt5.load_hf_checkpoint(folder)


def test_tied_embeddings_are_refused(tmp_path, hf_dirs):
  config = json.loads((hf_dirs["safetensors"] / "config.json").read_text())
  with pytest.raises(errors.ConfigError, match="tie_word_embeddings"):
    hf_mt5.mt5_config_from_hf(dict(config, tie_word_embeddings=True))
  # What transformers saves for a tied model: no lm_head.weight.
  folder = _folder_with(
      tmp_path, hf_dirs, lambda t: t.pop("lm_head.weight"),
      lambda c: c.update(tie_word_embeddings=True))
  with pytest.raises(errors.ConfigError, match="tie_word_embeddings"):
    hf_mt5.load_hf_checkpoint(folder)


def test_unsupported_config_fields_are_named():
  config = dict(hf_mt5.hf_config_from_mt5(TINY))
  assert hf_mt5.mt5_config_from_hf(config) == TINY
  with pytest.raises(errors.ConfigError, match="feed_forward_proj"):
    hf_mt5.mt5_config_from_hf(dict(config, feed_forward_proj="relu"))
  with pytest.raises(errors.ConfigError, match="model_type"):
    hf_mt5.mt5_config_from_hf(dict(config, model_type="umt5"))
  with pytest.raises(errors.ConfigError, match="d_ff"):
    hf_mt5.mt5_config_from_hf({k: v for k, v in config.items() if k != "d_ff"})


def test_load_pretrained_detects_the_layout(tmp_path, hf_dirs):
  with pytest.raises(errors.MissingDataError) as e:
    load_pretrained(str(tmp_path))
  assert str(tmp_path) in str(e.value) and "config.json" in str(e.value)
  assert "checkpoint" in str(e.value)

  params, config = load_pretrained(str(hf_dirs["safetensors"]))
  assert config == TINY
  wanted = mt5_config("tiny", vocab_size=512, dropout_rate=0.0)
  assert load_pretrained(str(hf_dirs["safetensors"]), wanted)[1] == wanted
  with pytest.raises(errors.ConfigError, match="vocab_size"):
    load_pretrained(str(hf_dirs["safetensors"]),
                    mt5_config("tiny", vocab_size=640))

  (tmp_path / "checkpoint_100").mkdir()
  (tmp_path / "checkpoint_100" / "checkpoint").write_bytes(b"")
  with pytest.raises(errors.ConfigError, match="t5x checkpoint"):
    load_pretrained(str(tmp_path / "checkpoint_100"))


def test_check_params_match_lists_the_differences(imported):
  params, config = imported
  abstract = _abstract_params(config)
  check_params_match(params, abstract)
  changed = jax.tree.map(lambda x: x, params)
  del changed["decoder"]["decoder_norm"]
  changed["encoder"]["extra"] = {"scale": np.ones(64, np.float32)}
  changed["token_embedder"]["embedding"] = np.zeros((640, 64), np.float32)
  with pytest.raises(errors.ConfigError) as e:
    check_params_match(changed, abstract)
  message = str(e.value)
  assert "missing: decoder/decoder_norm/scale" in message
  assert "unexpected: encoder/extra/scale" in message
  assert "token_embedder/embedding [640, 64] (expected [512, 64])" in message


def test_export_leaves_nothing_behind_on_errors(imported, tmp_path):
  params, config = imported
  taken = tmp_path / "taken"
  taken.mkdir()
  (taken / "keep.txt").write_text("mine")
  with pytest.raises(errors.ConfigError, match="not an empty folder"):
    hf_mt5.export_hf_checkpoint(params, config, taken)
  assert os.listdir(taken) == ["keep.txt"]

  with pytest.raises(errors.ConfigError, match="vocab_size=640"):
    hf_mt5.export_hf_checkpoint(params, mt5_config("tiny", vocab_size=640),
                                tmp_path / "wrong")
  # A failure after config.json and model.safetensors were written.
  with pytest.raises(TypeError):
    hf_mt5.export_hf_checkpoint(params, config, tmp_path / "late",
                                {"spiece.model": 12345})
  assert sorted(os.listdir(tmp_path)) == ["taken"]


# -- korani checkpoint export-hf -----------------------------------------------


def _sentencepiece_model() -> bytes:
  import io  # pylint: disable=import-outside-toplevel
  import sentencepiece as spm  # pylint: disable=import-outside-toplevel
  text = ["안녕하세요 반갑습니다", "hello world", "mT5 모델을 내보냅니다"] * 20
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(text), model_writer=model, vocab_size=30,
      model_type="unigram", minloglevel=2)
  return model.getvalue()


def test_cli_exports_a_training_run(imported, hf_model, tmp_path, capsys):
  """A run whose step 20 holds the imported params (step 10: halved)."""
  params, config = imported
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  trainer._write_run_files(  # pylint: disable=protected-access
      str(model_dir), config)
  store = checkpoints.CheckpointStore(model_dir)
  try:
    for step in (10, 20):  # The export takes the latest unless --step.
      store.save(step, jax.tree.map(lambda x, s=step: x * s / 20, params),
                 {"count": np.zeros((), np.int32)}, {"step": step})
  finally:
    store.close()
  vocabulary = _sentencepiece_model()
  (model_dir / trainer.VOCAB_FILE).write_bytes(vocabulary)

  output = tmp_path / "hf"
  assert cli.main(["checkpoint", "export-hf", str(model_dir),
                   "--output", str(output)]) == 0
  printed = capsys.readouterr().out
  assert "step 20" in printed and str(output / "model.safetensors") in printed
  assert (output / "spiece.model").read_bytes() == vocabulary
  exported = _load_exported(output)
  enc, targets = _example_batch()
  real = targets > 0
  np.testing.assert_allclose(hf_logits(exported, enc, targets)[real],
                             hf_logits(hf_model, enc, targets)[real],
                             rtol=0, atol=ATOL)

  assert cli.main(["checkpoint", "export-hf", str(model_dir), "--output",
                   str(tmp_path / "hf10"), "--step", "10"]) == 0
  step_10, _ = hf_mt5.load_hf_checkpoint(tmp_path / "hf10")
  np.testing.assert_allclose(
      step_10["decoder"]["logits_dense"]["kernel"],
      params["decoder"]["logits_dense"]["kernel"] / 2, rtol=1e-6)

  # Errors a user can fix: exit status 2 and one message naming the problem.
  assert cli.main(["checkpoint", "export-hf", str(model_dir), "--output",
                   str(tmp_path / "hf30"), "--step", "30"]) == 2
  assert "no checkpoint for step 30" in capsys.readouterr().err
  assert cli.main(["checkpoint", "export-hf", str(tmp_path / "nowhere"),
                   "--output", str(tmp_path / "x")]) == 2
  assert "model_config.json" in capsys.readouterr().err
