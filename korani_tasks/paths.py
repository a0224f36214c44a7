"""Where raw data, prepared datasets and caches live.

The raw data folder (the canonical files, as their publishers release them) is
given by the environment variable ``KORANI_DATA_DIR``; its layout is

    $KORANI_DATA_DIR/kobest/BoolQ/{train,dev,test}.tsv
    $KORANI_DATA_DIR/beep/labeled/{train,dev}.tsv
    ...                       (each file's path is in catalog.yaml)

Prepared TFDS datasets go where TFDS puts them (``TFDS_DATA_DIR``, default
``~/tensorflow_datasets``); other caches (trained SentencePiece models) go to
``KORANI_CACHE_DIR`` (default ``~/.cache/korani``).
"""

import os
import pathlib

from korani_tasks import errors

DATA_DIR_ENV = "KORANI_DATA_DIR"
CACHE_DIR_ENV = "KORANI_CACHE_DIR"

MISSING_DATA_HELP = (
    "Set {env} to the folder that holds the raw KORANI source files, e.g.\n"
    "    export {env}=/path/to/shared/data/raw\n"
    "laid out as korani_tasks/catalog.yaml lists them (e.g. "
    "kobest/BoolQ/train.tsv); `korani data download NAME` fetches public "
    "ones and `korani data list` shows what is there."
)


def data_dir(required: bool = True) -> pathlib.Path | None:
  """Returns the raw data folder named by ``$KORANI_DATA_DIR``.

  Raises:
    MissingDataError: if ``required`` and the variable is unset or the folder
      does not exist; the message says what to do.
  """
  value = os.environ.get(DATA_DIR_ENV)
  if not value:
    if not required:
      return None
    raise errors.MissingDataError(
        f"{DATA_DIR_ENV} is not set.\n" + MISSING_DATA_HELP.format(env=DATA_DIR_ENV))
  path = pathlib.Path(value).expanduser()
  if not path.is_dir():
    if not required:
      return None
    raise errors.MissingDataError(
        f"{DATA_DIR_ENV}={value} is not a folder.\n"
        + MISSING_DATA_HELP.format(env=DATA_DIR_ENV))
  return path


def cache_dir() -> pathlib.Path:
  """Returns (and creates) the folder for caches such as trained vocabularies."""
  value = os.environ.get(CACHE_DIR_ENV) or "~/.cache/korani"
  path = pathlib.Path(value).expanduser()
  path.mkdir(parents=True, exist_ok=True)
  return path
