"""Shared test fixtures.

Tests that need the real source files find them through ``KORANI_DATA_DIR``
(``make test`` points it at ``../shared/data/raw``); where the folder is
absent those tests are skipped, never failed.

Property tests (hypothesis) run under the profile named by
``KORANI_HYPOTHESIS_PROFILE``:

* ``ci`` (the default): 100 examples per property, derandomized (the seed
  is derived from each test's name and source, so every run draws the same
  examples and a failure reproduces), no example database;
* ``long``: 1000 examples per property from a random seed, printed with
  any failure (``--hypothesis-seed=N`` replays a run). For hunting bugs::

    KORANI_HYPOTHESIS_PROFILE=long pytest tests/test_fuzz_readers.py

A test's own ``@hypothesis.settings`` may raise the number of examples,
never lower it.
"""

import os
import pathlib

import hypothesis
import pytest

SENTINEG = "korani_kobest_sentineg_ko_review_sentiment"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data" / "raw"

# Keep TF and JAX quiet and on the CPU in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

HYPOTHESIS_PROFILE_ENV = "KORANI_HYPOTHESIS_PROFILE"
_HYPOTHESIS_COMMON = dict(
    deadline=None, database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow,
                           hypothesis.HealthCheck.data_too_large,
                           hypothesis.HealthCheck.filter_too_much])
hypothesis.settings.register_profile(
    "ci", max_examples=100, derandomize=True, **_HYPOTHESIS_COMMON)
hypothesis.settings.register_profile(
    "long", max_examples=1000, derandomize=False, print_blob=True,
    **_HYPOTHESIS_COMMON)
_profile = os.environ.get(HYPOTHESIS_PROFILE_ENV, "ci")
if _profile not in ("ci", "long"):
  raise pytest.UsageError(
      f"{HYPOTHESIS_PROFILE_ENV}={_profile!r}: expected 'ci' or 'long'")
hypothesis.settings.load_profile(_profile)


@pytest.fixture(scope="session")
def raw_data_dir() -> pathlib.Path:
  """The folder of raw source files, or skip the test if there is none."""
  value = os.environ.get("KORANI_DATA_DIR")
  path = pathlib.Path(value) if value else _DEFAULT_SHARED
  if not path.is_dir():
    pytest.skip(f"raw data folder not found (KORANI_DATA_DIR={value!r})")
  # Library code reads the variable itself (korani_tasks.paths.data_dir).
  os.environ["KORANI_DATA_DIR"] = str(path)
  return path


@pytest.fixture(scope="session")
def kobest_dir(raw_data_dir) -> pathlib.Path:
  path = raw_data_dir / "kobest"
  if not path.is_dir():
    pytest.skip(f"{path} not found")
  return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_caches(tmp_path_factory):
  """Prepared TFDS data and trained vocabularies go to per-session tmp dirs."""
  os.environ["TFDS_DATA_DIR"] = str(tmp_path_factory.mktemp("tfds"))
  os.environ["KORANI_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def session_vocab(raw_data_dir) -> pathlib.Path:
  """A 2000-piece SentencePiece model trained on korani_kobest_train text,
  made the vocabulary of all tasks for the session ($KORANI_VOCAB, which
  the subprocesses of tests inherit)."""
  import mixtures  # pylint: disable=import-outside-toplevel,unused-import
  from korani_tasks import text, vocab  # pylint: disable=import-outside-toplevel
  path = text.trained_vocabulary("korani_kobest_train", vocab_size=2000)
  os.environ[vocab.VOCAB_ENV] = str(path)
  return pathlib.Path(path)


@pytest.fixture(scope="session")
def sentineg_run(session_vocab, tmp_path_factory):
  """A tiny mT5 trained from scratch on KoBEST SentiNeg, one Korean template."""
  from t5x_runs import trainer  # pylint: disable=import-outside-toplevel
  from t5x_runs.models import mt5_config  # pylint: disable=import-outside-toplevel
  model_dir = tmp_path_factory.mktemp("sentineg_run")
  result = trainer.train(
      model_dir=str(model_dir), mixture_or_task_name=SENTINEG,
      task_feature_lengths={"inputs": 64, "targets": 4}, batch_size=32,
      num_train_steps=300, model_config=mt5_config("tiny", vocab_size=None),
      vocabulary=str(session_vocab), checkpoint_period=100, log_period=20,
      progress=False)
  return model_dir, result


@pytest.fixture(scope="session")
def release_excerpt_names(raw_data_dir):
  """``names(sample)``: the ``dataset_name`` values of the official KORANI
  release excerpt's ``<sample>/dev.csv`` ('sample_ko', 'sample_en'); skips
  the test where the excerpt is absent."""
  import csv  # pylint: disable=import-outside-toplevel

  def names(sample: str) -> set[str]:
    path = raw_data_dir.parent / "korani_release_excerpt" / sample / "dev.csv"
    if not path.is_file():
      pytest.skip(f"{path} not found")
    with open(path, newline="", encoding="utf-8") as f:
      return {row["dataset_name"] for row in csv.DictReader(f)}
  return names
