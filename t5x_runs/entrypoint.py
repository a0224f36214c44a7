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


# t5x's multi-host flags (t5x/train.py): --coordinator_address=HOST:PORT
# --process_count=N --process_index=I. Not needed on a Cloud TPU slice.
# --heartbeat_timeout_seconds: how soon a silent (killed) process stops the
# job (distributed.DEFAULT_HEARTBEAT_TIMEOUT_SECONDS; JAX's default is 100).
_DISTRIBUTED_FLAGS = {"--coordinator_address": str, "--process_count": int,
                      "--process_index": int,
                      "--heartbeat_timeout_seconds": int}


def parse_distributed_flags(args: Sequence[str]
                            ) -> tuple[dict[str, object], list[str]]:
  """Splits t5x's multi-host flags off; returns (settings, other args)."""
  settings, rest = {}, []
  for arg in args:
    flag, sep, value = arg.partition("=")
    if flag not in _DISTRIBUTED_FLAGS:
      rest.append(arg)
      continue
    if not sep or not value:
      raise errors.ConfigError(f"{flag} needs a value ({flag}=...)")
    try:
      settings[flag[2:]] = _DISTRIBUTED_FLAGS[flag](value)
    except ValueError:
      raise errors.ConfigError(
          f"{flag}={value!r} is not a valid {_DISTRIBUTED_FLAGS[flag].__name__}"
      ) from None
  return settings, rest


# t5x's flag (t5x/train.py, t5x/eval.py): more folders where seqio looks for
# cached tasks (`seqio.add_global_cache_dirs`), comma-separated.
CACHE_DIRS_FLAG = "--seqio_additional_cache_dirs"


def parse_cache_dirs_flag(args: Sequence[str]) -> tuple[list[str], list[str]]:
  """Splits ``--seqio_additional_cache_dirs=A,B`` off; returns (dirs, rest)."""
  dirs, rest = [], []
  for arg in args:
    flag, sep, value = arg.partition("=")
    if flag != CACHE_DIRS_FLAG:
      rest.append(arg)
      continue
    if not sep or not value:
      raise errors.ConfigError(
          f"{CACHE_DIRS_FLAG} needs a value ({CACHE_DIRS_FLAG}=DIR[,DIR...])")
    dirs.extend(d for d in value.split(",") if d)
  return dirs, rest


# Switches that stand for a gin binding (the macro of gin/runs/*.gin).
SWITCH_FLAGS = {"--allow_absent_datasets": "ALLOW_ABSENT_DATASETS = True"}


def parse_switch_flags(args: Sequence[str]) -> tuple[list[str], list[str]]:
  """Splits `SWITCH_FLAGS` off; returns (their gin bindings, other args)."""
  bindings = [SWITCH_FLAGS[a] for a in args if a in SWITCH_FLAGS]
  return bindings, [a for a in args if a not in SWITCH_FLAGS]


def run_with_gin(argv: Sequence[str] | None, run: Callable[[], object],
                 name: str) -> int:
  """Parses gin and multi-host flags, registers tasks and mixtures, calls `run`.

  Errors a user can fix (bad data, bad settings) print one clear message and
  exit with status 2 instead of a traceback. In a multi-process run any
  error also stops the other processes at once
  (`distributed.report_failure`). A run that SIGTERM stopped (after its
  checkpoint) exits with status 143.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  if any(a in ("-h", "--help") for a in argv):
    print(f"usage: {name} --gin_file=F [--gin_file=F ...] "
          "[--gin.MACRO=value ...]\n"
          f"{' ' * len(f'usage: {name}')} [--gin_bindings=B] "
          "[--gin_search_paths=DIRS]\n"
          f"{' ' * len(f'usage: {name}')} [--coordinator_address=HOST:PORT "
          "--process_count=N --process_index=I]\n"
          f"{' ' * len(f'usage: {name}')} "
          "[--seqio_additional_cache_dirs=DIR[,DIR...]]\n"
          f"{' ' * len(f'usage: {name}')} [--allow_absent_datasets]\n\n"
          "Gin files are looked up as given, then in --gin_search_paths, then "
          "in the\nrepository's gin/ (e.g. --gin_file=ko_xl.gin); the header "
          "of each lists its\nrequired and commonly overridden macros. "
          "--allow_absent_datasets builds the\nmixture from the datasets "
          "present (= --gin.ALLOW_ABSENT_DATASETS=True).")
    return 0
  setup_logging()
  try:
    from t5x_runs import gin_utils  # pylint: disable=import-outside-toplevel
    files, bindings, rest = gin_utils.parse_flags(argv)
    switches, rest = parse_switch_flags(rest)
    bindings += switches
    multihost, rest = parse_distributed_flags(rest)
    cache_dirs, rest = parse_cache_dirs_flag(rest)
    if rest:
      raise errors.ConfigError(
          f"{name}: unrecognized arguments {rest} (expected --gin_file=..., "
          "--gin.MACRO=value, --gin_bindings=..., --gin_search_paths=..., "
          "and on several hosts --coordinator_address=HOST:PORT "
          "--process_count=N --process_index=I; "
          f"{CACHE_DIRS_FLAG}=DIR for cached tasks)")
    if not files:
      raise errors.ConfigError(f"{name}: give at least one --gin_file")
    from t5x_runs import distributed  # pylint: disable=import-outside-toplevel
    multiprocess = distributed.initialize(**multihost)
  except errors.KoraniError as e:
    print(f"{name}: error: {e}", file=sys.stderr)
    return EXIT_USAGE
  try:
    configurables()
    if cache_dirs:
      import seqio  # pylint: disable=import-outside-toplevel
      seqio.add_global_cache_dirs(cache_dirs)
    gin_utils.parse_gin(files, bindings)
    result = run()
  except errors.KoraniError as e:
    print(f"{name}: error: {e}", file=sys.stderr)
    if multiprocess:
      distributed.report_failure(f"{name}: error: {e}", EXIT_USAGE)
    return EXIT_USAGE
  except BaseException as e:  # pylint: disable=broad-except
    if multiprocess:
      distributed.fail_fast(e)
    raise
  if getattr(result, "preempted", False):
    return distributed.EXIT_PREEMPTED
  return 0
