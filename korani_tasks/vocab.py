"""The SentencePiece vocabulary shared by every task, chosen at run time.

Real runs use the mT5 vocabulary (250,000 pieces + 100 extra ids, the model
file on GCS below, or a local copy). Tasks are registered at import time, so
they hold a `TaskVocabulary` whose model file is resolved when it is used,
from (in order):

1. the innermost `using_vocabulary(path)` block: a run's setting (the trainer
   and evaluator enter one for the run's gin macro ``VOCABULARY``, or the
   vocab.model a run keeps; the previous setting returns when they finish);
2. the environment variable ``KORANI_VOCAB``;
3. the public mT5 vocabulary, ``MT5_VOCABULARY``.

Where no mT5 vocabulary is reachable (tests, the demo), `train_vocabulary`
trains a small SentencePiece model on the text of a training mixture and caches
it under a name derived from that text and the settings, so a second run
reuses it.
"""

import contextlib
import hashlib
import logging
import os
import pathlib
import tempfile
from typing import Iterable, Iterator

import seqio
import sentencepiece as spm
import tensorflow as tf

from korani_tasks import errors
from korani_tasks import paths

MT5_VOCABULARY = "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model"
VOCAB_ENV = "KORANI_VOCAB"

_run_path: str | None = None  # set only inside `using_vocabulary`


@contextlib.contextmanager
def using_vocabulary(path: str | os.PathLike | None) -> Iterator[str]:
  """Within the block, `path` is the SentencePiece model of all tasks.

  None keeps the current setting. Yields the path in effect; on exit the
  setting before the block returns, so a run's vocabulary never outlives it::

      with vocab.using_vocabulary("/runs/a/vocab.model"):
        trainer.train_batches(...)  # tokenized with /runs/a/vocab.model

  Raises:
    ConfigError: if the file does not exist.
  """
  global _run_path
  previous = _run_path
  if path is not None:
    _run_path = _existing(os.fspath(path))
  try:
    yield vocabulary_path()
  finally:
    _run_path = previous


def _existing(path: str) -> str:
  try:
    exists = tf.io.gfile.exists(path)
  except tf.errors.OpError as e:  # An unreachable or unknown file system.
    raise unreadable_vocabulary(path, e) from e
  if not exists:
    raise errors.ConfigError(
        f"vocabulary file {path} does not exist (set VOCABULARY in gin or "
        f"{VOCAB_ENV} to a SentencePiece .model file, e.g. {MT5_VOCABULARY})")
  return path


def vocabulary_path() -> str:
  """The SentencePiece model file the tasks use now."""
  return _run_path or os.environ.get(VOCAB_ENV) or MT5_VOCABULARY


def describe(path: str | None = None) -> dict[str, object]:
  """What a run records of its vocabulary: path, sha256 and piece count.

  `path` defaults to `vocabulary_path()`.
  """
  path = path or vocabulary_path()
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      sha256 = hashlib.sha256(f.read()).hexdigest()
  except tf.errors.OpError as e:
    raise unreadable_vocabulary(path, e) from e
  pieces = seqio.SentencePieceVocabulary(path).vocab_size
  return {"vocabulary": path, "vocabulary_sha256": sha256,
          "vocabulary_pieces": pieces}


def _vocabulary_source() -> str:
  if _run_path:
    return "the run's VOCABULARY"
  if os.environ.get(VOCAB_ENV):
    return f"${VOCAB_ENV}"
  return f"the default (${VOCAB_ENV} is not set)"


def unreadable_vocabulary(path: str, error: Exception) -> errors.ConfigError:
  """The error for a vocabulary file that cannot be read, with the fix.

  Example: with the public mT5 vocabulary unreachable (no network or no GCS
  access), TensorFlow's FailedPreconditionError from libcurl becomes

      cannot read the vocabulary gs://t5-data/vocabs/...model (from the
      default ($KORANI_VOCAB is not set)): FailedPreconditionError: ...
  """
  reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
  return errors.ConfigError(
      f"cannot read the vocabulary {path} (from {_vocabulary_source()}): "
      f"{type(error).__name__}: {reason}\nCopy the SentencePiece model to a "
      f"local file (the public mT5 one: gsutil cp {MT5_VOCABULARY} .) and "
      f"point {VOCAB_ENV} at it, e.g. export {VOCAB_ENV}=$PWD/"
      "sentencepiece.model (or bind VOCABULARY in gin). Under upstream t5x "
      "the model's vocabulary must be the same file (gin/t5x/README.md).")


class TaskVocabulary(seqio.SentencePieceVocabulary):
  """A seqio.SentencePieceVocabulary whose file is `vocabulary_path()`.

  The model is (re)loaded whenever the path in effect changes, so tasks
  registered at import time follow `using_vocabulary`.
  """

  def __init__(self):
    super().__init__(sentencepiece_model_file=vocabulary_path(), extra_ids=0)
    self._loaded_path = None

  def _model_context(self):
    path = vocabulary_path()
    if self._model is None or getattr(self, "_loaded_path", None) != path:
      self._sentencepiece_model_file = path
      self._model = None
      self._loaded_path = path
      try:
        return super()._model_context()
      except (tf.errors.OpError, OSError, RuntimeError) as e:
        # NotFoundError, FailedPreconditionError (libcurl, a folder),
        # UnimplementedError (an unknown scheme), SentencePiece's own errors.
        self._model = None
        self._loaded_path = None
        raise unreadable_vocabulary(path, e) from e
    return self._model

  @property
  def sentencepiece_model_file(self) -> str:
    return vocabulary_path()

  def __getstate__(self):
    # seqio compares vocabularies by their state (t5x.train checks that the
    # tasks' vocabulary equals the model's): leave the load bookkeeping out,
    # so a TaskVocabulary equals a SentencePieceVocabulary of the same file.
    # The file is always the one chosen now (`vocabulary_path()`), whatever
    # an earlier call loaded.
    state = super().__getstate__()
    state.pop("_loaded_path", None)
    state["_sentencepiece_model_file"] = vocabulary_path()
    return state


def train_vocabulary(texts: Iterable[str], vocab_size: int = 4000,
                     cache_dir: pathlib.Path | None = None,
                     ) -> pathlib.Path:
  """Trains (or reuses) a SentencePiece model on `texts`; returns its path.

  The model follows the T5/mT5 conventions seqio expects: pad=0, eos=1,
  unk=2, no bos; unigram pieces; byte fallback so that no input (English
  template words, rare Hanja) ever maps to UNK. The file is named by a hash
  of the text and settings and written atomically, so concurrent runs and
  interrupted runs never leave a half-written model behind.
  """
  # SentencePiece trains on sentences; template inputs span several lines.
  texts = [line for t in texts for line in t.splitlines() if line.strip()]
  if not texts:
    raise ValueError("no text to train a vocabulary on")
  settings = dict(vocab_size=vocab_size, model_type="unigram",
                  character_coverage=0.995, byte_fallback=True,
                  pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                  normalization_rule_name="nmt_nfkc", split_digits=True,
                  input_sentence_size=2_000_000, shuffle_input_sentence=False,
                  max_sentence_length=16384, num_threads=1,
                  minloglevel=2)
  digest = hashlib.sha256(repr(sorted(settings.items())).encode())
  for t in texts:
    digest.update(t.encode("utf-8"))
    digest.update(b"\0")
  out_dir = (cache_dir or paths.cache_dir()) / "vocab"
  out_dir.mkdir(parents=True, exist_ok=True)
  model_path = out_dir / f"spm_{vocab_size}_{digest.hexdigest()[:16]}.model"
  if model_path.exists():
    logging.info("Reusing vocabulary %s", model_path)
    return model_path
  logging.info("Training a %d-piece SentencePiece model on %d texts",
               vocab_size, len(texts))
  with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
    prefix = os.path.join(tmp, "spm")
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=iter(texts), model_prefix=prefix, **settings)
    except RuntimeError as e:
      raise ValueError(f"SentencePiece training failed: {e}") from e
    os.replace(prefix + ".model", model_path)
  return model_path
