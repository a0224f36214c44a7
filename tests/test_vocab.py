"""The run-time vocabulary and SentencePiece training with caching."""

import random

import pytest
import seqio

from korani_tasks import errors
from korani_tasks import vocab

# Pseudo-words from 40 Hangul syllables: enough distinct substrings for a few
# hundred pieces (256 of which are the byte-fallback pieces).
_RNG = random.Random(0)
_SYLLABLES = [chr(0xAC00 + 28 * i) for i in range(40)]
TEXTS = [" ".join("".join(_RNG.choices(_SYLLABLES, k=_RNG.randint(1, 4)))
                  for _ in range(8)) for _ in range(300)] + [
    "Is this review positive or negative?"]


def test_train_vocabulary_follows_t5_conventions_and_is_cached(tmp_path):
  path = vocab.train_vocabulary(TEXTS, vocab_size=400, cache_dir=tmp_path)
  v = seqio.SentencePieceVocabulary(str(path))
  assert (v.pad_id, v.eos_id, v.unk_id) == (0, 1, 2)
  # Byte fallback: text never seen in training still round-trips, no UNK.
  ids = v.encode("완전히 새로운 문장 with words ñ")
  assert v.unk_id not in ids
  assert v.decode(ids) == "완전히 새로운 문장 with words ñ"
  mtime = path.stat().st_mtime_ns
  assert vocab.train_vocabulary(TEXTS, vocab_size=400, cache_dir=tmp_path) == path
  assert path.stat().st_mtime_ns == mtime  # reused, not retrained
  other = vocab.train_vocabulary(TEXTS[:-1], vocab_size=400, cache_dir=tmp_path)
  assert other != path
  assert sorted(p.name for p in (tmp_path / "vocab").iterdir()) == sorted(
      [path.name, other.name])  # nothing half-written left behind


def test_task_vocabulary_follows_the_run_and_returns_after_it(
    tmp_path, monkeypatch):
  small = vocab.train_vocabulary(TEXTS, vocab_size=400, cache_dir=tmp_path)
  larger = vocab.train_vocabulary(TEXTS, vocab_size=420, cache_dir=tmp_path)
  monkeypatch.setenv(vocab.VOCAB_ENV, str(small))
  task_vocab = vocab.TaskVocabulary()
  assert task_vocab.vocab_size == 400
  with vocab.using_vocabulary(larger) as path:
    assert path == str(larger)
    assert task_vocab.vocab_size == 420
    assert task_vocab.sentencepiece_model_file == str(larger)
    # t5x's check: equal to a plain vocabulary of the same file only.
    assert task_vocab == seqio.SentencePieceVocabulary(str(larger))
    assert task_vocab != seqio.SentencePieceVocabulary(str(small))
    with vocab.using_vocabulary(None):  # None keeps the run's setting
      assert task_vocab.vocab_size == 420
  assert task_vocab.vocab_size == 400  # the run's setting ends with it
  with pytest.raises(RuntimeError), vocab.using_vocabulary(larger):
    raise RuntimeError("a run that fails")
  assert vocab.vocabulary_path() == str(small)


def test_too_large_vocabulary_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="Vocabulary size too high"):
    vocab.train_vocabulary(TEXTS, vocab_size=100_000, cache_dir=tmp_path)
  assert not list((tmp_path / "vocab").iterdir())


def test_missing_vocabulary_is_a_clear_error(tmp_path, monkeypatch):
  with pytest.raises(errors.ConfigError, match="does not exist"):
    with vocab.using_vocabulary(tmp_path / "nope.model"):
      pass
  monkeypatch.setenv(vocab.VOCAB_ENV, str(tmp_path / "gone.model"))
  with pytest.raises(errors.ConfigError, match="gone.model"):
    vocab.TaskVocabulary().encode("x")


def test_default_is_the_public_mt5_vocabulary(monkeypatch):
  monkeypatch.delenv(vocab.VOCAB_ENV, raising=False)
  assert vocab.vocabulary_path() == vocab.MT5_VOCABULARY


@pytest.mark.parametrize("where", ["folder", "unknown_scheme"])
def test_unreachable_vocabulary_names_the_path_and_korani_vocab(
    tmp_path, monkeypatch, where):
  # A folder gives TensorFlow's FailedPreconditionError, as libcurl does for
  # an unreachable gs:// file; an unknown scheme an UnimplementedError.
  path = str(tmp_path) if where == "folder" else "nofs://bucket/spm.model"
  monkeypatch.setenv(vocab.VOCAB_ENV, path)
  with pytest.raises(errors.ConfigError) as e:
    vocab.TaskVocabulary().encode("x")
  message = str(e.value)
  assert f"cannot read the vocabulary {path} (from $KORANI_VOCAB)" in message
  assert "export KORANI_VOCAB=" in message
