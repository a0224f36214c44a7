"""The command line of every command that runs a gin configuration.

One argparse parser, shared by `korani train`, `eval`, `eval-batch`, `demo`
and `plan` and by ``python -m t5x_runs.train``, ``.eval`` and ``.batch_eval``:

* t5x's gin flags: ``--gin_file=F`` (repeatable), ``--gin.MACRO=VALUE``,
  ``--gin_bindings=B`` and ``--gin_search_paths=DIRS`` (see gin_utils.py for
  how files are found and values read);
* t5x's multi-host flags ``--coordinator_address``, ``--process_count``,
  ``--process_index``, with ``--heartbeat_timeout_seconds`` and t5x's
  ``--seqio_additional_cache_dirs``;
* ``--allow_absent_datasets``, the switch for ALLOW_ABSENT_DATASETS = True.

A command adds its own arguments to `parser(...)`; `parse` returns the
namespace, or the exit status of ``--help`` or of a wrong flag (argparse's
usage and a message naming the flag, status 2). Only argparse is imported,
so ``--help`` and flag errors do not pay for TensorFlow or JAX.
"""

import argparse
import re
import sys
from typing import Sequence

EXIT_USAGE = 2

_GIN_MACRO = re.compile(r"^--gin\.([A-Za-z_][\w./]*)=(.*)$", re.S)
_MACRO_OPTION = "--gin_macro"  # --gin.NAME=VALUE, as argparse sees it.

SWITCHES = {"allow_absent_datasets": "ALLOW_ABSENT_DATASETS = True"}


class _Binding(argparse.Action):
  """Appends ``(kind, text)`` to ``gin_overrides``, in command-line order."""

  def __call__(self, parser, namespace, values, option_string=None):
    overrides = list(getattr(namespace, "gin_overrides", None) or [])
    if option_string == _MACRO_OPTION:
      overrides.append(("macro", values))
    elif self.nargs == 0:
      overrides.append(("binding", SWITCHES[self.dest]))
      setattr(namespace, self.dest, True)
    else:
      overrides.append(("binding", values))
    namespace.gin_overrides = overrides


def _comma_list(value: str) -> list[str]:
  items = [v for v in value.split(",") if v]
  if not items:
    raise argparse.ArgumentTypeError("expected DIR[,DIR...]")
  return items


def _add_gin_flags(parser: argparse.ArgumentParser) -> None:
  gin = parser.add_argument_group(
      "gin", "Files are looked up as given, then in --gin_search_paths, "
      "then in the project's gin/\n(e.g. --gin_file=ko_xl.gin); each file's "
      "header lists its required and commonly\noverridden macros.")
  gin.add_argument("--gin_file", action="append", default=[], metavar="F",
                   dest="gin_files", help="a gin file (repeatable)")
  gin.add_argument(_MACRO_OPTION, action=_Binding, metavar="NAME=VALUE",
                   dest="gin_overrides", help=argparse.SUPPRESS)
  gin.add_argument("--gin.MACRO=VALUE", action="store_true",
                   dest="_gin_macro_help",
                   help="bind a macro (repeatable); a bare word or path is "
                   "taken as a string")
  gin.add_argument("--gin_bindings", action=_Binding, metavar="B",
                   dest="gin_overrides",
                   help="a gin binding, verbatim (repeatable)")
  gin.add_argument("--gin_search_paths", action="append", default=[],
                   type=_comma_list, metavar="DIRS",
                   help="comma-separated folders holding gin files")
  gin.add_argument("--allow_absent_datasets", action=_Binding, nargs=0,
                   default=False,
                   help="build the mixture from the datasets present "
                   "(= --gin.ALLOW_ABSENT_DATASETS=True)")


def _add_distributed_flags(parser: argparse.ArgumentParser) -> None:
  hosts = parser.add_argument_group(
      "several hosts", "t5x's multi-host flags; not needed on a Cloud TPU "
      "slice.")
  hosts.add_argument("--coordinator_address", metavar="HOST:PORT")
  hosts.add_argument("--process_count", type=int, metavar="N")
  hosts.add_argument("--process_index", type=int, metavar="I")
  hosts.add_argument(
      "--heartbeat_timeout_seconds", type=int, metavar="S",
      help="how soon a silent (killed) process stops the job (JAX: 100)")
  hosts.add_argument(
      "--seqio_additional_cache_dirs", action="append", default=[],
      type=_comma_list, metavar="DIR[,DIR...]",
      help="more folders where seqio looks for cached tasks")


def parser(prog: str, *, usage: str | None = None,
           description: str | None = None,
           distributed: bool = True) -> argparse.ArgumentParser:
  """A parser with the gin flags and, if `distributed`, the multi-host ones."""
  result = argparse.ArgumentParser(
      prog=prog, usage=usage, description=description, allow_abbrev=False,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  _add_gin_flags(result)
  if distributed:
    _add_distributed_flags(result)
  result.set_defaults(gin_overrides=[])
  return result


def parse(command: argparse.ArgumentParser, argv: Sequence[str],
          intermixed: bool = False) -> argparse.Namespace | int:
  """The parsed flags, or the exit status of ``--help`` or a usage error.

  `intermixed`: positional arguments may come between flags.
  """
  args = []
  for arg in argv:
    if arg.startswith("--gin."):
      match = _GIN_MACRO.match(arg)
      if not match:
        command.print_usage(sys.stderr)
        print(f"{command.prog}: error: {arg}: expected --gin.MACRO=VALUE",
              file=sys.stderr)
        return EXIT_USAGE
      arg = f"{_MACRO_OPTION}={match.group(1)}={match.group(2)}"
    args.append(arg)
  try:
    namespace = (command.parse_intermixed_args(args) if intermixed
                 else command.parse_args(args))
  except SystemExit as e:
    return e.code if isinstance(e.code, int) else EXIT_USAGE
  namespace.gin_search_paths = [
      p for paths in namespace.gin_search_paths for p in paths]
  if hasattr(namespace, "seqio_additional_cache_dirs"):
    namespace.seqio_additional_cache_dirs = [
        d for dirs in namespace.seqio_additional_cache_dirs for d in dirs]
  del namespace._gin_macro_help  # pylint: disable=protected-access
  return namespace


def distributed_settings(args: argparse.Namespace) -> dict[str, object]:
  """The multi-host flags given, as `distributed.initialize` arguments."""
  names = ("coordinator_address", "process_count", "process_index",
           "heartbeat_timeout_seconds")
  return {n: getattr(args, n) for n in names
          if getattr(args, n, None) is not None}


def add_macro(args: argparse.Namespace, name: str, value: str) -> None:
  """Appends ``--gin.NAME=VALUE`` (a command's own flag, as a gin macro)."""
  args.gin_overrides.append(("macro", f"{name}={value}"))
