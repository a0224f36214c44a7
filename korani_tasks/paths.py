"""Where raw data, prepared datasets and caches live.

The raw data folder (the canonical files, as their publishers release them) is
given by the environment variable ``KORANI_DATA_DIR``; its layout is

    $KORANI_DATA_DIR/kobest/BoolQ/{train,dev,test}.tsv
    $KORANI_DATA_DIR/beep/labeled/{train,dev}.tsv
    ...                       (each file's path is in catalog.yaml)

The official KORANI release (the pre-rendered CSVs that the KORANI authors
distribute, `korani_tasks.readers.release_csv`) is the folder
``$KORANI_RELEASE_DIR``, else ``$KORANI_DATA_DIR/KORANI``::

    $KORANI_RELEASE_DIR/<cluster folder>/<dataset key>/train.csv
    $KORANI_RELEASE_DIR/<cluster folder>/<dataset key>/<template>.csv ...

Prepared TFDS datasets go where TFDS puts them (``TFDS_DATA_DIR``, default
``~/tensorflow_datasets``); other caches (trained SentencePiece models) go to
``KORANI_CACHE_DIR`` (default ``~/.cache/korani``). The data folders may be
gs:// ones (`korani_tasks.storage`).
"""

import os
import pathlib

from etils import epath

from korani_tasks import errors
from korani_tasks import storage

DATA_DIR_ENV = "KORANI_DATA_DIR"
CACHE_DIR_ENV = "KORANI_CACHE_DIR"
RELEASE_DIR_ENV = "KORANI_RELEASE_DIR"
RELEASE_SUBDIR = "KORANI"  # The release's folder under $KORANI_DATA_DIR.

MISSING_DATA_HELP = (
    "Set {env} to the folder that holds the raw KORANI source files, e.g.\n"
    "    export {env}=/path/to/shared/data/raw\n"
    "laid out as korani_tasks/catalog.yaml lists them (e.g. "
    "kobest/BoolQ/train.tsv); `korani data download NAME` fetches public "
    "ones and `korani data list` shows what is there."
)


def data_dir(required: bool = True) -> epath.Path | None:
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
  path = storage.path(value)
  if not path.is_dir():
    if not required:
      return None
    raise errors.MissingDataError(
        f"{DATA_DIR_ENV}={value} is not a folder.\n"
        + MISSING_DATA_HELP.format(env=DATA_DIR_ENV))
  return path


MISSING_RELEASE_HELP = (
    "The KORANI release (the pre-rendered CSVs of Han et al., 2024) is "
    "distributed by the KORANI authors, not downloaded by this project. Put "
    "its KORANI folder, unmodified, at $" + DATA_DIR_ENV + "/"
    + RELEASE_SUBDIR + " or set " + RELEASE_DIR_ENV + " to it, e.g.\n"
    "    export " + RELEASE_DIR_ENV + "=/path/to/KORANI\n"
    "laid out as KORANI/<cluster>/<dataset key>/train.csv plus one "
    "evaluation CSV per template."
)


def release_dir(required: bool = True) -> epath.Path | None:
  """Returns the KORANI release folder.

  That is ``$KORANI_RELEASE_DIR`` where it is set, else
  ``$KORANI_DATA_DIR/KORANI``.

  Raises:
    MissingDataError: if ``required`` and the folder does not exist (or
      neither variable is set); the message says where the release comes from
      and which variable to set.
  """
  value = os.environ.get(RELEASE_DIR_ENV)
  if value:
    path = storage.path(value)
    where = f"{RELEASE_DIR_ENV}={value}"
  else:
    data = os.environ.get(DATA_DIR_ENV)
    if not data:
      if not required:
        return None
      raise errors.MissingDataError(
          f"neither {RELEASE_DIR_ENV} nor {DATA_DIR_ENV} is set.\n"
          + MISSING_RELEASE_HELP)
    path = storage.path(data, RELEASE_SUBDIR)
    where = f"{path} (from {DATA_DIR_ENV}; {RELEASE_DIR_ENV} is not set)"
  if not path.is_dir():
    if not required:
      return None
    raise errors.MissingDataError(
        f"the KORANI release folder {where} does not exist.\n"
        + MISSING_RELEASE_HELP)
  return path


def cache_dir(create: bool = True) -> pathlib.Path:
  """Returns (and creates) the folder for caches such as trained vocabularies."""
  value = os.environ.get(CACHE_DIR_ENV) or "~/.cache/korani"
  path = pathlib.Path(value).expanduser()
  if create:
    path.mkdir(parents=True, exist_ok=True)
  return path
