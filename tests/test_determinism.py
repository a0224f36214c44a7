"""Determinism: the seed alone fixes the training batches and the loss curve."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from t5x_runs import trainer
from t5x_runs.models import mt5_config

from conftest import REPO_ROOT, SENTINEG

LENGTHS = {"inputs": 64, "targets": 4}
MIXTURE = "korani_kobest_train"
MIXTURE_LENGTHS = {"inputs": 128, "targets": 8}


def _batches(task, lengths, seed, count=3, start_step=0):
  iterator = trainer.DataIterator(trainer.train_batches(
      task, lengths, 8, seed=seed, start_step=start_step))
  batches = list(itertools.islice(iterator, count))
  del iterator  # frees tf.data's Python-function workers now
  return batches


def _same(a, b) -> bool:
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_seed_fixes_the_batches(session_vocab):
  first = _batches(SENTINEG, LENGTHS, seed=0)
  again = _batches(SENTINEG, LENGTHS, seed=0)
  other = _batches(SENTINEG, LENGTHS, seed=1)
  assert all(_same(x, y) for x, y in zip(first, again))
  assert not any(_same(x, y) for x, y in zip(first, other))
  # A run resumed at step 2 without an iterator position skips two batches.
  assert _same(_batches(SENTINEG, LENGTHS, 0, count=1, start_step=2)[0],
               first[2])


_MIXTURE_BATCHES_SCRIPT = """
import sys
import numpy as np
import mixtures
from korani_tasks import vocab
from t5x_runs import trainer
with vocab.using_vocabulary(sys.argv[1]):
  it = trainer.DataIterator(trainer.train_batches(
      {mixture!r}, {lengths!r}, 8, seed=int(sys.argv[2])))
  batches = [next(it) for _ in range(2)]
  del it
np.savez(sys.argv[3], **{{f"{{i}}/{{k}}": v for i, b in enumerate(batches)
                        for k, v in b.items()}})
"""


@pytest.mark.slow
def test_a_mixtures_batches_are_the_same_in_another_process(session_vocab,
                                                            tmp_path):
  """Mixture sampling and shuffling depend on the seed only, not on the
  process (another PYTHONHASHSEED): same seed, same batches; another seed,
  other batches."""
  output = tmp_path / "batches.npz"
  script = _MIXTURE_BATCHES_SCRIPT.format(mixture=MIXTURE,
                                          lengths=MIXTURE_LENGTHS)
  env = dict(os.environ, PYTHONHASHSEED="123")
  subprocess.run([sys.executable, "-c", script, str(session_vocab), "0",
                  str(output)], cwd=REPO_ROOT, env=env, check=True,
                 capture_output=True, timeout=600)
  with np.load(output) as saved:
    there = [{k.split("/", 1)[1]: saved[k] for k in saved.files
              if k.startswith(f"{i}/")} for i in range(2)]
  here = _batches(MIXTURE, MIXTURE_LENGTHS, seed=0, count=2)
  assert all(_same(x, y) for x, y in zip(here, there))
  other = _batches(MIXTURE, MIXTURE_LENGTHS, seed=1, count=2)
  assert not any(_same(x, y) for x, y in zip(here, other))


@pytest.mark.slow
def test_the_seed_fixes_the_loss_curve(session_vocab, tmp_path):
  """Two runs with one seed log the same loss at every step (dropout on);
  a run with another seed (initialization, data order, dropout) does not."""
  def losses(name, seed):
    result = trainer.train(
        model_dir=str(tmp_path / name), mixture_or_task_name=SENTINEG,
        task_feature_lengths=LENGTHS, batch_size=8, num_train_steps=4,
        model_config=mt5_config("tiny", vocab_size=None, dropout_rate=0.1),
        vocabulary=str(session_vocab), seed=seed, checkpoint_period=4,
        log_period=1, progress=False)
    return result.losses

  first, again, other = losses("a", 0), losses("b", 0), losses("c", 1)
  assert [step for step, _ in first] == [1, 2, 3, 4]
  assert first == again
  assert all(x != y for (_, x), (_, y) in zip(first, other)), (first, other)
