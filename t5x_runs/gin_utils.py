"""t5x-style gin flags: ``--gin_file=...``, ``--gin.MACRO=value``.

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
import re
from typing import Sequence

import gin

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
_GIN_FLAG = re.compile(r"^--gin\.([A-Za-z_][\w./]*)=(.*)$", re.S)


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


def parse_flags(argv: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
  """Splits argv into (gin files, gin bindings, remaining args).

  Accepts ``--gin_file=F`` / ``--gin_file F`` (repeatable),
  ``--gin_bindings=B`` (repeatable), ``--gin_search_paths=a,b`` and
  ``--gin.NAME=VALUE``. The search paths are added to gin's include search
  path (as t5x's ``gin_utils.parse_gin_flags`` does) and used to find the
  files.
  """
  files, bindings, search_paths, rest = [], [], [], []
  args = list(argv)
  i = 0
  while i < len(args):
    arg = args[i]
    match = _GIN_FLAG.match(arg)
    if match:
      name, value = match.groups()
      bindings.append(f"{name} = {_gin_value(name, value)}")
    elif arg.startswith(("--gin_file=", "--gin_bindings=", "--gin_search_paths=")):
      key, value = arg[2:].split("=", 1)
      {"gin_file": files, "gin_bindings": bindings,
       "gin_search_paths": search_paths}[key].append(value)
    elif arg in ("--gin_file", "--gin_bindings") and i + 1 < len(args):
      (files if arg == "--gin_file" else bindings).append(args[i + 1])
      i += 1
    else:
      rest.append(arg)
    i += 1
  paths = [p for s in search_paths for p in s.split(",") if p]
  for path in paths:
    _add_search_path(path)
  return [_find_gin_file(f, paths) for f in files], bindings, rest


_SEARCH_PATHS: list[str] = []  # Added to gin's search path by this module.


def _add_search_path(path: str) -> None:
  if not os.path.isdir(path):
    raise errors.ConfigError(
        f"--gin_search_paths: {path!r} is not a folder (give folders that "
        "hold gin files, comma-separated)")
  if path not in _SEARCH_PATHS:
    _SEARCH_PATHS.append(path)
    gin.add_config_file_search_path(path)


def _find_gin_file(name: str, search_paths: Sequence[str]) -> str:
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


def parse_gin(files: Sequence[str], bindings: Sequence[str]) -> None:
  """Parses gin files and bindings, turning gin's errors into ConfigErrors."""
  if str(GIN_DIR) not in _SEARCH_PATHS:
    _SEARCH_PATHS.append(str(GIN_DIR))
    gin.add_config_file_search_path(str(GIN_DIR))
  for path in files:
    _check_readable(path)
  try:
    gin.parse_config_files_and_bindings(files, bindings, finalize_config=True)
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
      f.read(1)
  except FileNotFoundError:
    raise errors.ConfigError(
        f"gin file {path} not found; give an existing file or a name from "
        f"{GIN_DIR}") from None
  except (OSError, UnicodeDecodeError) as e:
    raise errors.ConfigError(
        f"gin file {path} cannot be read ({e.__class__.__name__}: "
        f"{getattr(e, 'strerror', None) or e}); fix its permissions or "
        "content, or give another file") from None
