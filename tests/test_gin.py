"""gin flags and files: parsing, the model files' sizes, and clear errors."""

import pathlib

import gin
import pytest

from korani_tasks import errors
from t5x_runs import configurables  # pylint: disable=unused-import
from t5x_runs import gin_utils
from t5x_runs.models import param_count

GIN_DIR = pathlib.Path(gin_utils.GIN_DIR)


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def test_flags_become_bindings_t5x_style():
  files, bindings, rest = gin_utils.parse_flags([
      "--gin_file=gin/demo.gin", "--gin.MODEL_DIR=/tmp/run a",
      "--gin.TRAIN_STEPS=20", "--gin.VOCABULARY=None",
      "--gin.TASK_FEATURE_LENGTHS={'inputs': 8, 'targets': 4}",
      "--gin.MIXTURE_OR_TASK_NAME='korani_kobest_train'",
      "--gin_bindings=SEED = 3", "--other"])
  assert files == [str(GIN_DIR / "demo.gin")]
  assert bindings == [
      "MODEL_DIR = '/tmp/run a'", "TRAIN_STEPS = 20", "VOCABULARY = None",
      "TASK_FEATURE_LENGTHS = {'inputs': 8, 'targets': 4}",
      "MIXTURE_OR_TASK_NAME = 'korani_kobest_train'", "SEED = 3"]
  assert rest == ["--other"]


def test_bad_flag_values_name_the_setting():
  with pytest.raises(errors.ConfigError, match="--gin.TASK_FEATURE_LENGTHS"):
    gin_utils.parse_flags(["--gin.TASK_FEATURE_LENGTHS={'inputs': 8"])
  with pytest.raises(errors.ConfigError, match="gin file 'nope.gin' not found"):
    gin_utils.parse_flags(["--gin_file=nope.gin"])


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
    needs_model = {"runs", "experiments"} & set(path.parts)
    includes = [str(GIN_DIR / "models/mt5_tiny.gin")] if needs_model else []
    gin_utils.parse_gin(includes + [str(path)], REQUIRED)


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
