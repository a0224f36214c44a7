"""The gin configuration of a command: its files, bindings and includes.

t5x_runs/flags.py parses the flags; `configuration` turns them into gin
files and bindings:

    python -m t5x_runs.train \\
        --gin_file=gin/demo.gin \\
        --gin.MODEL_DIR="'/tmp/run'" --gin.TRAIN_STEPS=100

As in t5x, ``--gin.NAME=VALUE`` becomes the binding ``NAME = VALUE`` and
``--gin_bindings`` takes bindings verbatim. Unlike t5x, a bare word or path
that is not a gin literal (``--gin.MODEL_DIR=/tmp/run``) is taken as a string,
so shell quoting is optional. Gin files, and the files they include, are
looked up in the working directory, then in ``--gin_search_paths`` (added to
gin's include search path, as t5x does), then in the project's gin folder:
``gin/`` of a source checkout, else the ``korani_gin`` package data of an
installed wheel (found through importlib.resources).
"""

import ast
import importlib.resources
import os
import pathlib
from typing import Sequence

import gin
from gin import config_parser

from korani_tasks import errors

# The installed package that holds the gin files (setup.py maps the
# repository's gin/ to it; gin/ itself has no __init__.py, which would shadow
# gin-config's `gin` package in a checkout).
GIN_PACKAGE = "korani_gin"
_MARKER = "demo.gin"  # A file every copy of the project's gin folder has.


def _gin_dir() -> pathlib.Path:
  """The project's gin folder: the checkout's gin/, else the packaged copy."""
  checkout = pathlib.Path(__file__).resolve().parents[1] / "gin"
  if (checkout / _MARKER).is_file():
    return checkout
  try:
    marker = importlib.resources.files(GIN_PACKAGE).joinpath(_MARKER)
  except ModuleNotFoundError:
    marker = None
  if marker is not None and marker.is_file():
    return pathlib.Path(str(marker)).parent
  return checkout  # Not found: error messages name the expected place.


GIN_DIR = _gin_dir()


def _gin_value(name: str, value: str) -> str:
  """`value` as gin source: literals and references as-is, else a string."""
  stripped = value.strip()
  if stripped.startswith(("@", "%")):
    return stripped
  try:
    ast.literal_eval(stripped)
    return stripped
  except (ValueError, SyntaxError):
    pass
  if stripped in ("None", "True", "False"):
    return stripped
  if any(c in stripped for c in "[]{}()'\""):
    raise errors.ConfigError(
        f"--gin.{name}={value}: not a valid gin value (quote strings, e.g. "
        f"--gin.{name}=\"'...'\")")
  return repr(stripped)


def configuration(args) -> tuple[list[str], list[str]]:
  """(gin files, gin bindings) of flags parsed by `t5x_runs.flags`.

  The search paths are added to gin's include search path (as t5x's
  ``gin_utils.parse_gin_flags`` does) and used to find the files; each
  ``--gin.NAME=VALUE`` becomes the binding ``NAME = VALUE``.
  """
  for path in args.gin_search_paths:
    _add_search_path(path)
  files = [find_gin_file(f, args.gin_search_paths) for f in args.gin_files]
  bindings = []
  for kind, text in args.gin_overrides:
    if kind == "macro":
      name, value = text.split("=", 1)
      text = f"{name} = {_gin_value(name, value)}"
    bindings.append(text)
  return files, bindings


_SEARCH_PATHS: list[str] = []  # Added to gin's search path by this module.


def _add_search_path(path: str) -> None:
  if not os.path.isdir(path):
    raise errors.ConfigError(
        f"--gin_search_paths: {path!r} is not a folder (give folders that "
        "hold gin files, comma-separated)")
  if path not in _SEARCH_PATHS:
    _SEARCH_PATHS.append(path)
    gin.add_config_file_search_path(path)


def find_gin_file(name: str, search_paths: Sequence[str] = ()) -> str:
  """The path of a gin file named on the command line (see the module doc)."""
  for folder in [os.getcwd(), *search_paths, str(GIN_DIR)]:
    candidate = os.path.join(folder, name)
    if os.path.isfile(candidate):
      return candidate
  # A name relative to gin/ also works from anywhere: gin/demo.gin or demo.gin.
  if name.startswith("gin/") and (GIN_DIR / name[4:]).is_file():
    return str(GIN_DIR / name[4:])
  raise errors.ConfigError(
      f"gin file {name!r} not found in the working directory, "
      f"{list(search_paths)} or {GIN_DIR}; give its path, a folder holding "
      "it with --gin_search_paths=DIR, or a name from the project's gin "
      "folder (e.g. --gin_file=ko_xl.gin)")


def parse_gin(files: Sequence[str], bindings: Sequence[str],
              finalize: bool = True) -> None:
  """Parses gin files and bindings, turning gin's errors into ConfigErrors.

  `finalize=False` leaves gin's finalize checks (e.g. every `%gin.REQUIRED`
  macro bound) to the caller, for reading a configuration without running it.
  """
  if str(GIN_DIR) not in _SEARCH_PATHS:
    _SEARCH_PATHS.append(str(GIN_DIR))
    gin.add_config_file_search_path(str(GIN_DIR))
  for path in files:
    _check_readable(path)
  check_include_order(files)
  try:
    gin.parse_config_files_and_bindings(files, bindings,
                                        finalize_config=finalize)
  except (ValueError, SyntaxError, KeyError, ImportError) as e:
    raise errors.ConfigError(f"gin configuration error: {e}") from e
  except OSError as e:  # An include gin cannot find or read.
    raise errors.ConfigError(
        f"gin configuration error: {e}; includes are looked up in the working "
        f"directory, then in {_SEARCH_PATHS} (--gin_search_paths=DIR adds "
        "one)") from e


def _check_readable(path: str) -> None:
  """Fails with the path and the fix when a gin file cannot be read."""
  try:
    with open(path, encoding="utf-8") as f:
      f.read()
  except FileNotFoundError:
    raise errors.ConfigError(
        f"gin file {path} not found; give an existing file or a name from "
        f"{GIN_DIR}") from None
  except (OSError, UnicodeDecodeError) as e:
    raise errors.ConfigError(
        f"gin file {path} cannot be read ({e.__class__.__name__}: "
        f"{getattr(e, 'strerror', None) or e}); fix its permissions or "
        "content, or give another file") from None


# Files of a folder with this name hold generic defaults (gin/runs/): read
# after a size or experiment file, they would reset its settings.
_DEFAULTS_FOLDER = "runs"


class _Markers(config_parser.ParserDelegate):
  """Keeps `@name` and `%NAME` as text: nothing is resolved."""

  def configurable_reference(self, scoped_configurable_name, evaluate):
    return f"@{scoped_configurable_name}{'()' if evaluate else ''}"

  def macro(self, macro_name):
    return f"%{macro_name}"


def _find_include(name: str) -> str | None:
  for prefix in ["", *_SEARCH_PATHS]:
    candidate = os.path.join(prefix, name)
    if os.path.isfile(candidate):
      return candidate
  return None


def check_include_order(files: Sequence[str]) -> None:
  """Fails when a run file's default replaces a setting read before it.

  gin applies bindings in the order it reads them, so

      --gin_file=sizes/xl.gin --gin_file=experiments/ko_to_ko.gin

  would let the experiment's `include 'runs/finetune.gin'` put
  TRAIN_STEPS, BATCH_SIZE, NUM_PARTITIONS and INITIAL_CHECKPOINT_PATH back to
  the run file's generic defaults, silently. Here a binding of a file under
  gin/runs/ that changes a value bound earlier by a file outside it is a
  ConfigError naming both files and the order that works. Files gin cannot
  parse are left to gin's own error.
  """
  bound: dict[str, tuple[str, str, str]] = {}  # name -> (file, value, top)
  problems: list[str] = []

  def visit(path: str, top: str, depth: int) -> None:
    try:
      with open(path, encoding="utf-8") as f:
        statements = list(config_parser.ConfigParser(f.read(), _Markers()))
    except Exception:  # pylint: disable=broad-except
      return
    is_default = pathlib.Path(path).parent.name == _DEFAULTS_FOLDER
    for statement in statements:
      if isinstance(statement, config_parser.IncludeStatement):
        included = _find_include(statement.filename)
        if included and depth < 20:
          visit(included, top, depth + 1)
      elif isinstance(statement, config_parser.BindingStatement):
        name = ".".join(filter(None, (
            "/".join(filter(None, (statement.scope, statement.selector))),
            statement.arg_name)))
        value = repr(statement.value)
        earlier = bound.get(name)
        if (is_default and earlier and earlier[1] != value and
            pathlib.Path(earlier[0]).parent.name != _DEFAULTS_FOLDER):
          via = "" if path == top else f" (included by {top})"
          problems.append(
              f"{name} = {earlier[1]} (set by {earlier[0]}) is reset to "
              f"{value} by {path}{via}, read after it")
        bound[name] = (path, value, top)

  for path in files:
    visit(path, path, 0)
  if problems:
    raise errors.ConfigError(
        "gin files in an order that silently resets settings:\n  "
        + "\n  ".join(problems)
        + "\nGive the experiment or run file first and the size file last "
        "(e.g. --gin_file=experiments/ko_to_ko.gin --gin_file=sizes/xl.gin), "
        "or set the values with --gin.MACRO=value.")
