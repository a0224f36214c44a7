"""t5x-style gin flags: ``--gin_file=...``, ``--gin.MACRO=value``.

    python -m t5x_runs.train \\
        --gin_file=gin/demo.gin \\
        --gin.MODEL_DIR="'/tmp/run'" --gin.TRAIN_STEPS=100

As in t5x, ``--gin.NAME=VALUE`` becomes the binding ``NAME = VALUE`` and
``--gin_bindings`` takes bindings verbatim. Unlike t5x, a bare word or path
that is not a gin literal (``--gin.MODEL_DIR=/tmp/run``) is taken as a string,
so shell quoting is optional. Gin files are looked up in the working
directory, then in ``--gin_search_paths``, then in the repository's ``gin/``
folder.
"""

import ast
import os
import pathlib
import re
from typing import Sequence

import gin

from korani_tasks import errors

GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin"
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
  ``--gin.NAME=VALUE``.
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
  return [_find_gin_file(f, paths) for f in files], bindings, rest


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
      f"{list(search_paths)} or {GIN_DIR}")


def parse_gin(files: Sequence[str], bindings: Sequence[str]) -> None:
  """Parses gin files and bindings, turning gin's errors into ConfigErrors."""
  gin.add_config_file_search_path(str(GIN_DIR))
  try:
    gin.parse_config_files_and_bindings(files, bindings, finalize_config=True)
  except (ValueError, SyntaxError, KeyError, ImportError) as e:
    raise errors.ConfigError(f"gin configuration error: {e}") from e
