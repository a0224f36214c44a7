"""gin flags and files: parsing, the model files' sizes, and clear errors."""

import pathlib

import gin
import pytest

from korani_tasks import errors
from t5x_runs import configurables  # pylint: disable=unused-import
from t5x_runs import flags
from t5x_runs import gin_utils
from t5x_runs.models import param_count

GIN_DIR = pathlib.Path(gin_utils.GIN_DIR)


def _configuration(argv):
  """(files, bindings) of a command line, as every gin command reads it."""
  args = flags.parse(flags.parser("test"), argv)
  assert not isinstance(args, int), argv
  return gin_utils.configuration(args)


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def test_flags_become_bindings_t5x_style():
  files, bindings = _configuration([
      "--gin_file=gin/demo.gin", "--gin.MODEL_DIR=/tmp/run a",
      "--gin.TRAIN_STEPS=20", "--gin.VOCABULARY=None",
      "--gin.TASK_FEATURE_LENGTHS={'inputs': 8, 'targets': 4}",
      "--gin.MIXTURE_OR_TASK_NAME='korani_kobest_train'",
      "--gin_bindings=SEED = 3", "--allow_absent_datasets"])
  assert files == [str(GIN_DIR / "demo.gin")]
  assert bindings == [
      "MODEL_DIR = '/tmp/run a'", "TRAIN_STEPS = 20", "VOCABULARY = None",
      "TASK_FEATURE_LENGTHS = {'inputs': 8, 'targets': 4}",
      "MIXTURE_OR_TASK_NAME = 'korani_kobest_train'", "SEED = 3",
      "ALLOW_ABSENT_DATASETS = True"]


def test_bad_flag_values_name_the_setting():
  with pytest.raises(errors.ConfigError, match="--gin.TASK_FEATURE_LENGTHS"):
    _configuration(["--gin.TASK_FEATURE_LENGTHS={'inputs': 8"])
  with pytest.raises(errors.ConfigError, match="gin file 'nope.gin' not found"):
    _configuration(["--gin_file=nope.gin"])


@pytest.mark.parametrize("size, expected", [
    ("small", 300_176_768), ("base", 582_401_280)])
def test_model_gin_files_give_published_sizes(size, expected):
  gin_utils.parse_gin([str(GIN_DIR / f"models/mt5_{size}.gin")], [])
  config = gin.query_parameter("%MODEL_CONFIG").scoped_configurable_fn()
  assert config.emb_dim in (512, 768) and config.vocab_size == 250112
  assert param_count(config) == expected


REQUIRED = ["MODEL_DIR = '/tmp/x'", "MIXTURE_OR_TASK_NAME = 'korani_kobest_train'",
            "EVAL_MIXTURE_OR_TASK_NAME = 'korani_kobest_heldout_score_eval'"]


def test_every_gin_file_parses():
  for path in sorted(GIN_DIR.rglob("*.gin")):
    gin.clear_config()
    parts = set(path.relative_to(GIN_DIR).parts)
    if "t5x" in parts:
      continue  # upstream t5x's files: tests/test_gin_t5x.py
    includes = []
    if {"runs", "experiments", "sizes"} & parts:
      includes.append(str(GIN_DIR / "models/mt5_tiny.gin"))
    if "sizes" in parts:  # size files go after the run files
      includes += [str(GIN_DIR / "runs/finetune.gin"),
                   str(GIN_DIR / "runs/eval.gin")]
    gin_utils.parse_gin(includes + [str(path)], REQUIRED)


# gin/{ko,en,en_paper,bilingual}_<size>.gin: (training, evaluation) mixtures per grid
# cell, and per size the parameter count (Small and Base as published; all
# have the released checkpoints' dimensions), BATCH_SIZE and NUM_PARTITIONS.
PRODUCTION_CELLS = {
    "ko": ("korani_train", "p3_heldout_score_eval"),
    "en": ("p3_train", "korani_heldout_score_eval"),
    "en_paper": ("p3_train_paper", "korani_heldout_score_eval"),
    "bilingual": ("bilingual_train", "bilingual_heldout_score_eval"),
}
PRODUCTION_SIZES = {
    "small": (300_176_768, 128, 1),
    "base": (582_401_280, 128, 1),
    "large": (1_229_581_312, 128, 2),
    "xl": (3_742_619_648, 256, 4),
    "xxl": (12_921_057_280, 256, 8),
}


def _bound(selector):
  """The value `selector` (configurable.param) receives, references resolved."""
  value = gin.query_parameter(selector)
  while isinstance(value, gin.config.ConfigurableReference):
    value = value.scoped_configurable_fn()
  return value


@pytest.mark.parametrize("size", sorted(PRODUCTION_SIZES))
@pytest.mark.parametrize("cell", sorted(PRODUCTION_CELLS))
def test_production_files_bind_size_mixtures_and_defaults(cell, size):
  import mixtures  # pylint: disable=import-outside-toplevel,unused-import
  import seqio  # pylint: disable=import-outside-toplevel
  train_mixture, eval_mixture = PRODUCTION_CELLS[cell]
  params, batch_size, partitions = PRODUCTION_SIZES[size]
  path = GIN_DIR / f"{cell}_{size}.gin"
  gin_utils.parse_gin([str(path)], ["MODEL_DIR = 'gs://bucket/run'"])

  config = _bound("trainer.train.model_config")
  assert param_count(config) == params
  assert config.vocab_size == 250112 and config.dtype == "bfloat16"
  assert config.dropout_rate == 0.1

  assert _bound("trainer.train.mixture_or_task_name") == train_mixture
  assert _bound("evaluator.evaluate.mixture_or_task_name") == eval_mixture
  registered = seqio.MixtureRegistry.names()
  assert train_mixture in registered and eval_mixture in registered

  assert _bound("trainer.train.task_feature_lengths") == {
      "inputs": 1024, "targets": 256}
  assert _bound("evaluator.evaluate.max_input_length") == 1024
  assert _bound("trainer.train.batch_size") == batch_size
  assert _bound("trainer.train.num_partitions") == partitions
  assert _bound("evaluator.evaluate.num_partitions") == partitions
  assert _bound("trainer.train.num_train_steps") == 12200
  assert _bound("trainer.train.checkpoint_period") == 1000
  assert _bound("trainer.train.init_checkpoint") == (
      f"gs://t5-data/pretrained_models/t5x/mt5_{size}/checkpoint_1000000")
  assert _bound("trainer.make_optimizer.learning_rate") == 1e-3
  assert _bound("trainer.train.vocabulary") == (
      "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model")
  assert _bound("trainer.train.model_dir") == "gs://bucket/run"


def test_production_files_cover_every_cell_and_size():
  names = {p.stem for p in GIN_DIR.glob("*_*.gin")}
  assert names == {f"{c}_{s}" for c in PRODUCTION_CELLS
                   for s in PRODUCTION_SIZES}


def test_missing_required_macro_is_named():
  with pytest.raises(errors.ConfigError, match="MODEL_DIR"):
    gin_utils.parse_gin([str(GIN_DIR / "demo.gin")], [])


def test_wrong_gin_values_are_clear_errors():
  with pytest.raises(errors.ConfigError, match="No configurable matching"):
    gin_utils.parse_gin([], ["trainer.trian.batch_size = 3"])
  gin.clear_config()
  gin_utils.parse_gin([str(GIN_DIR / "models/mt5_tiny.gin")],
                      ["models.mt5_config.size = 'huge'"])
  with pytest.raises(ValueError, match="unknown mT5 size 'huge'"):
    gin.query_parameter("%MODEL_CONFIG").scoped_configurable_fn()


def test_size_file_before_run_file_is_an_error_naming_the_files():
  size, experiment = GIN_DIR / "sizes/xl.gin", GIN_DIR / "experiments/ko_to_ko.gin"
  gin_utils.check_include_order([str(experiment), str(size)])  # The right order.
  with pytest.raises(errors.ConfigError) as e:
    gin_utils.parse_gin([str(size), str(experiment)],
                        ["MODEL_DIR = 'gs://bucket/run'"])
  message = str(e.value)
  for name in ("TRAIN_STEPS", "BATCH_SIZE", "NUM_PARTITIONS",
               "INITIAL_CHECKPOINT_PATH"):
    assert f"\n  {name} = " in message
  assert f"(set by {size}) is reset to 1 by {GIN_DIR / 'runs/finetune.gin'} " \
         f"(included by {experiment}" in message
  assert "--gin_file=experiments/ko_to_ko.gin --gin_file=sizes/xl.gin" in message


def test_search_paths_serve_includes(tmp_path, monkeypatch):
  (tmp_path / "top").mkdir()
  (tmp_path / "lib").mkdir()
  (tmp_path / "top/run.gin").write_text("include 'part.gin'\nSTEPS = 3\n")
  (tmp_path / "lib/part.gin").write_text("PART = 'from lib'\n")
  monkeypatch.chdir(tmp_path / "top")
  files, _ = _configuration(
      ["--gin_file=run.gin", f"--gin_search_paths={tmp_path / 'lib'}"])
  gin_utils.parse_gin(files, [])
  assert gin.query_parameter("%PART") == "from lib"
  with pytest.raises(errors.ConfigError, match="is not a folder"):
    _configuration([f"--gin_search_paths={tmp_path / 'none'}"])


def test_unreadable_gin_files_and_includes_name_the_path(tmp_path):
  binary = tmp_path / "binary.gin"
  binary.write_bytes(b"\xff\xfe\x00 = 1\n")
  with pytest.raises(errors.ConfigError,
                     match=f"gin file {binary} cannot be read"):
    gin_utils.parse_gin([str(binary)], [])
  including = tmp_path / "including.gin"
  including.write_text("include 'absent_part.gin'\n")
  with pytest.raises(errors.ConfigError,
                     match="absent_part.gin.*--gin_search_paths=DIR"):
    gin_utils.parse_gin([str(including)], [])
