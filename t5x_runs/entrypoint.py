"""Shared start-up of the command-line entry points (train, eval, demo)."""

import logging
import os
import sys
from typing import Callable, Sequence

from korani_tasks import errors

EXIT_USAGE = 2


def setup_logging() -> None:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.basicConfig(
      level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
      datefmt="%H:%M:%S", force=True)
  # absl (used by seqio, orbax, clu) logs through the same root logger.
  for noisy in ("absl", "tensorflow", "jax._src", "orbax"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


def configurables():
  """Imports (and so registers with gin) everything gin files may bind.

  Deferred to call time so that `--help`-style failures and flag errors do
  not pay for importing TensorFlow and JAX.
  """
  import mixtures  # pylint: disable=import-outside-toplevel,unused-import
  from t5x_runs import configurables as registered  # pylint: disable=import-outside-toplevel
  return registered


def run_with_gin(argv: Sequence[str] | None, run: Callable[[], object],
                 name: str) -> int:
  """Parses gin flags, registers tasks and mixtures, calls `run`.

  Errors a user can fix (bad data, bad settings) print one clear message and
  exit with status 2 instead of a traceback.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  setup_logging()
  try:
    from t5x_runs import gin_utils  # pylint: disable=import-outside-toplevel
    files, bindings, rest = gin_utils.parse_flags(argv)
    if rest:
      raise errors.ConfigError(
          f"{name}: unrecognized arguments {rest} (expected --gin_file=..., "
          "--gin.MACRO=value, --gin_bindings=..., --gin_search_paths=...)")
    if not files:
      raise errors.ConfigError(f"{name}: give at least one --gin_file")
    configurables()
    gin_utils.parse_gin(files, bindings)
    run()
  except errors.KoraniError as e:
    print(f"{name}: error: {e}", file=sys.stderr)
    return EXIT_USAGE
  return 0
