"""The offline cache: seqio's Beam job on real KoBEST tasks, read back.

Checked against google/seqio 0.0.20 (the installed package):
seqio/scripts/cache_tasks_main.py (the job, its COMPLETED marker and
info/stats files), seqio/dataset_providers.py (`Task.get_dataset` with
``use_cached=True``, `_CachedDataSource`) and t5x's
``--seqio_additional_cache_dirs`` (google-research/t5x, t5x/train.py).
"""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

TRAIN_TASK = "korani_kobest_copa_ko_best_option"
EVAL_TASK = f"{TRAIN_TASK}_score_eval"
OTHER_TASK = "korani_kobest_copa_ko_c1_or_c2"  # Same data, another template.
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def beam_cache(raw_data_dir, session_vocab, tmp_path_factory):
  """TRAIN_TASK and EVAL_TASK cached by seqio's job on Beam's DirectRunner."""
  pytest.importorskip("apache_beam", reason="make install installs it")
  out = tmp_path_factory.mktemp("task_cache")
  env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3",
             KORANI_VOCAB=str(session_vocab))
  result = subprocess.run(
      [sys.executable, "-m", "seqio.scripts.cache_tasks_main",
       "--module_import=korani_tasks", "--module_import=mixtures",
       f"--tasks={TRAIN_TASK},{EVAL_TASK}", f"--output_cache_dir={out}",
       "--pipeline_options=--runner=DirectRunner", "--min_shards=2"],
      env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  for task in (TRAIN_TASK, EVAL_TASK):
    assert (out / task / "COMPLETED").exists(), result.stderr[-3000:]
  return out


@pytest.fixture
def cache_dirs():
  """Sets seqio's cache dirs for a test; restores them after."""
  import seqio  # pylint: disable=import-outside-toplevel
  before = list(seqio.utils.get_global_cache_dirs())

  def use(*dirs):
    seqio.set_global_cache_dirs([str(d) for d in dirs])
    for name in (TRAIN_TASK, EVAL_TASK, OTHER_TASK):
      seqio.get_mixture_or_task(name)._cache_dir = None  # seqio memoizes it.

  yield use
  use(*before)


def _examples(task_name, split, use_cached):
  import seqio  # pylint: disable=import-outside-toplevel
  task = seqio.get_mixture_or_task(task_name)
  ds = task.get_dataset(None, split=split, shuffle=False,
                        use_cached=use_cached)
  return [{k: v.tolist() if isinstance(v, np.ndarray) else v
           for k, v in ex.items()} for ex in ds.as_numpy_iterator()]


def _sort_key(ex):
  return (ex.get("idx", [0]), ex["inputs_pretokenized"],
          ex["targets_pretokenized"])


@pytest.mark.slow
def test_cached_tasks_read_back_as_on_the_fly_without_raw_data(
    beam_cache, cache_dirs, monkeypatch, tmp_path):
  import mixtures  # pylint: disable=import-outside-toplevel,unused-import
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from korani_tasks import errors  # pylint: disable=import-outside-toplevel
  from korani_tasks import sources  # pylint: disable=import-outside-toplevel
  expected = {(task, split): _examples(task, split, use_cached=False)
              for task in (TRAIN_TASK, EVAL_TASK)
              for split in ("train", "validation")}
  cache_dirs(beam_cache)
  # No raw files and an empty TFDS folder: only the cache can serve.
  monkeypatch.delenv("KORANI_DATA_DIR")
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty_tfds"))
  for (task, split), want in expected.items():
    got = _examples(task, split, use_cached=True)
    assert len(got) == len(want) > 0, (task, split)
    assert sorted(got, key=_sort_key) == sorted(want, key=_sort_key), (
        task, split)
  # Score-eval examples are numbered by their record, 0..n-1 over the split,
  # although the job wrote them in Beam's order over two shards.
  ids = {ex["idx"][0] for ex in expected[(EVAL_TASK, "validation")]}
  assert ids == set(range(len(ids)))
  # And the on-the-fly path really needs the raw files now.
  with pytest.raises(errors.MissingDataError, match="KORANI_DATA_DIR"):
    sources.prepare(tfds.builder_cls("kobest_copa"))


@pytest.mark.slow
def test_korani_train_reads_the_cache(beam_cache, session_vocab, monkeypatch,
                                      tmp_path, cache_dirs):
  import gin  # pylint: disable=import-outside-toplevel
  from t5x_runs import checkpoints  # pylint: disable=import-outside-toplevel
  from t5x_runs import train  # pylint: disable=import-outside-toplevel
  monkeypatch.delenv("KORANI_DATA_DIR")
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty_tfds"))
  cache_dirs()
  model_dir = tmp_path / "run"
  try:
    rc = train.main([
        "--gin_file=models/mt5_tiny.gin", "--gin_file=runs/finetune.gin",
        f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{TRAIN_TASK}'",
        "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=4",
        "--gin.CHECKPOINT_PERIOD=2",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 8}",
        f"--gin.VOCABULARY='{session_vocab}'",
        "--gin.USE_CACHED_TASKS=True",
        f"--seqio_additional_cache_dirs={beam_cache}"])
  finally:
    gin.unlock_config()
    gin.clear_config()
  assert rc == 0
  store = checkpoints.CheckpointStore(model_dir)
  try:
    assert store.all_steps() == [2]
  finally:
    store.close()


def _copy(src: pathlib.Path, root: pathlib.Path, name: str) -> pathlib.Path:
  dst = root / name
  shutil.copytree(src, dst)
  return dst


@pytest.mark.slow
@pytest.mark.parametrize("damage, message", [
    ("no_completed", "no COMPLETED marker"),
    ("missing_shard", "of the 2 validation shards"),
    ("missing_info", "no info.validation.json"),
    ("tokenized", "hold token ids"),
    ("other_version", "cached by another version"),
])
def test_a_bad_cache_is_an_error_naming_its_folder(
    beam_cache, cache_dirs, tmp_path, damage, message):
  import seqio  # pylint: disable=import-outside-toplevel
  from korani_tasks import caching  # pylint: disable=import-outside-toplevel
  task = TRAIN_TASK
  if damage == "other_version":  # A cache made with another template.
    task = OTHER_TASK
    folder = _copy(beam_cache / TRAIN_TASK, tmp_path, OTHER_TASK)
  else:
    folder = _copy(beam_cache / TRAIN_TASK, tmp_path, TRAIN_TASK)
  if damage == "no_completed":
    (folder / "COMPLETED").unlink()
  elif damage == "missing_shard":
    next(folder.glob("validation.tfrecord-*")).unlink()
  elif damage == "missing_info":
    (folder / "info.validation.json").unlink()
  elif damage == "tokenized":
    info = folder / "info.validation.json"
    info.write_text(info.read_text().replace(
        '"dtype": "string"', '"dtype": "int32"', 1))
  # A complete cache in a later folder must not hide the bad one.
  cache_dirs(tmp_path, beam_cache)
  with pytest.raises(caching.CacheError, match=message) as e:
    seqio.get_mixture_or_task(task).get_dataset(
        None, split="validation", shuffle=False, use_cached=True)
  assert str(folder) in str(e.value)


def test_not_cached_anywhere_is_an_error(cache_dirs, tmp_path):
  import seqio  # pylint: disable=import-outside-toplevel
  from korani_tasks import caching  # pylint: disable=import-outside-toplevel
  cache_dirs()
  with pytest.raises(caching.CacheError, match="seqio_additional_cache_dirs"):
    seqio.get_mixture_or_task(TRAIN_TASK).get_dataset(
        None, split="validation", use_cached=True)
  cache_dirs(tmp_path)
  with pytest.raises(caching.CacheError,
                     match=f"not cached in any of .*{tmp_path}"):
    seqio.get_mixture_or_task(TRAIN_TASK).get_dataset(
        None, split="validation", use_cached=True)


def test_every_task_caches_text_before_tokenization():
  import seqio  # pylint: disable=import-outside-toplevel
  import korani_tasks  # pylint: disable=import-outside-toplevel,unused-import
  from korani_tasks import caching  # pylint: disable=import-outside-toplevel
  names = seqio.TaskRegistry.names()
  assert names
  for name in names:
    task = seqio.get_mixture_or_task(name)
    if not isinstance(task, caching.KoraniTask):
      continue
    steps = list(task.preprocessors)
    placeholder = next(i for i, p in enumerate(steps)
                       if isinstance(p, seqio.CacheDatasetPlaceholder))
    tokenize = steps.index(seqio.preprocessors.tokenize)
    assert placeholder < tokenize, name
    assert isinstance(steps[placeholder - 1], caching.AddTaskVersion), name


def test_task_versions_differ_by_template_and_kind():
  import seqio  # pylint: disable=import-outside-toplevel
  import korani_tasks  # pylint: disable=import-outside-toplevel,unused-import
  from korani_tasks import caching  # pylint: disable=import-outside-toplevel
  versions = {name: caching.expected_version(seqio.get_mixture_or_task(name))
              for name in (TRAIN_TASK, EVAL_TASK, OTHER_TASK,
                           "korani_kobest_copa_en_best_option")}
  assert len(set(versions.values())) == len(versions)


def test_example_index_counts_over_the_shards_of_a_split():
  from korani_tasks import sources  # pylint: disable=import-outside-toplevel
  ids = tf.constant([
      "kobest_copa-validation.tfrecord-00000-of-00002__0",
      "kobest_copa-validation.tfrecord-00000-of-00002__4",
      "kobest_copa-validation.tfrecord-00001-of-00002__0",
      "kobest_copa-validation.tfrecord-00001-of-00002__3"])
  assert sources.example_index(ids, [5, 4]).numpy().tolist() == [0, 4, 5, 8]


def _copy_to(src: pathlib.Path, dst: str) -> None:
  """Copies a folder tree through tf.io.gfile (e.g. to ram:// or gs://)."""
  for path in src.rglob("*"):
    target = f"{dst}/{path.relative_to(src).as_posix()}"
    if path.is_dir():
      tf.io.gfile.makedirs(target)
    else:
      tf.io.gfile.makedirs(os.path.dirname(target))
      tf.io.gfile.copy(str(path), target, overwrite=True)


@pytest.mark.slow
def test_a_cache_on_a_non_local_filesystem_reads_the_same(
    beam_cache, cache_dirs):
  """TensorFlow's in-memory ram:// filesystem stands in for gs://."""
  remote = "ram://korani_cache"
  _copy_to(beam_cache / EVAL_TASK, f"{remote}/{EVAL_TASK}")
  cache_dirs(beam_cache)
  want = _examples(EVAL_TASK, "validation", use_cached=True)
  cache_dirs(remote)
  got = _examples(EVAL_TASK, "validation", use_cached=True)
  assert got == want and got
  tf.io.gfile.remove(f"{remote}/{EVAL_TASK}/COMPLETED")
  from korani_tasks import caching  # pylint: disable=import-outside-toplevel
  cache_dirs(remote)
  with pytest.raises(caching.CacheError,
                     match=f"{remote}/{EVAL_TASK}: incomplete cache"):
    _examples(EVAL_TASK, "validation", use_cached=True)


def test_first_examples_of_a_score_eval_task_are_whole_examples(
    session_vocab):
  """batch_eval counts examples by distinct idx[0] (record indices)."""
  from t5x_runs import batch_eval  # pylint: disable=import-outside-toplevel
  assert batch_eval.rows_of_first_examples(EVAL_TASK, "validation", 3) == 6
