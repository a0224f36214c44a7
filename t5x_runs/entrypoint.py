"""Shared start-up of the commands that run a gin configuration.

Imports only t5x_runs.flags at first: `--help` and flag errors stay fast.
"""

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from t5x_runs import flags

EXIT_USAGE = flags.EXIT_USAGE


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


def usage(name: str) -> str:
  """The usage line of a command that takes only gin and multi-host flags."""
  pad = " " * len(f"usage: {name} ")
  return (f"{name} --gin_file=F [--gin_file=F ...] [--gin.MACRO=value ...]\n"
          f"{pad}[--gin_bindings=B] [--gin_search_paths=DIRS] "
          "[--allow_absent_datasets]\n"
          f"{pad}[--coordinator_address=HOST:PORT --process_count=N "
          "--process_index=I]\n"
          f"{pad}[--seqio_additional_cache_dirs=DIR[,DIR...]]")


def run_with_gin(argv: Sequence[str] | None, run: Callable[[], object],
                 name: str,
                 command: argparse.ArgumentParser | None = None) -> int:
  """Parses the flags (t5x_runs/flags.py), configures gin, calls `run`.

  `command` is the command's parser (default: the gin and multi-host flags
  only); `argv` may also be its parsed namespace. Tasks and mixtures are
  registered before gin reads its files. Errors a user can fix (bad data, bad
  settings) print one clear message and exit with status 2 instead of a
  traceback. In a multi-process run any error also stops the other
  processes at once (`distributed.report_failure`). A run that SIGTERM
  stopped (after its checkpoint) exits with status 143.
  """
  from t5x_runs import xla_flags  # pylint: disable=import-outside-toplevel
  xla_flags.apply()  # before anything starts JAX's backend
  if isinstance(argv, argparse.Namespace):
    args = argv
  else:
    args = flags.parse(command or flags.parser(name, usage=usage(name)),
                       list(sys.argv[1:] if argv is None else argv))
    if isinstance(args, int):
      return args
  if not args.gin_files:
    print(f"usage: {usage(name)}\n{name}: error: give at least one "
          "--gin_file", file=sys.stderr)
    return EXIT_USAGE
  setup_logging()
  from korani_tasks import errors  # pylint: disable=import-outside-toplevel
  try:
    from t5x_runs import gin_utils  # pylint: disable=import-outside-toplevel
    files, bindings = gin_utils.configuration(args)
    from t5x_runs import distributed  # pylint: disable=import-outside-toplevel
    multiprocess = distributed.initialize(**flags.distributed_settings(args))
  except errors.KoraniError as e:
    print(f"{name}: error: {e}", file=sys.stderr)
    return EXIT_USAGE
  try:
    configurables()
    if args.seqio_additional_cache_dirs:
      import seqio  # pylint: disable=import-outside-toplevel
      seqio.add_global_cache_dirs(args.seqio_additional_cache_dirs)
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
