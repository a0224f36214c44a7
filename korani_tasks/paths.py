"""Where raw data, prepared datasets and caches live.

The raw data folder (the canonical files, as their publishers release them) is
the one a command was given (`using_data_dir`, e.g. ``korani data prepare
--data-dir``, the demo), else the environment variable ``KORANI_DATA_DIR``; its
layout is

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

from collections.abc import Iterator
import contextlib
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


# The folder given to `using_data_dir`; None: $KORANI_DATA_DIR. A module
# setting, not a context variable: tf.data reads the files on its own threads.
_given_data_dir: str | None = None


@contextlib.contextmanager
def using_data_dir(path: os.PathLike | str) -> Iterator[epath.Path]:
  """Makes `data_dir()` return `path` inside the block (then what it was).

  How a command passes its ``--data-dir`` to the readers and TFDS builders
  without changing the process environment (which subprocesses inherit)::

      with paths.using_data_dir("/data/korani_raw"):
        sources.prepare(tfds.builder_cls("kobest_copa"))
  """
  global _given_data_dir
  previous, _given_data_dir = _given_data_dir, os.fspath(path)
  try:
    yield storage.path(_given_data_dir)
  finally:
    _given_data_dir = previous


def data_dir(required: bool = True) -> epath.Path | None:
  """The raw data folder: `using_data_dir`'s, else ``$KORANI_DATA_DIR``'s.

  Raises:
    MissingDataError: if ``required`` and neither names a folder or the
      folder does not exist; the message says what to do.
  """
  if _given_data_dir is not None:
    value, where = _given_data_dir, f"the data folder {_given_data_dir}"
  else:
    value = os.environ.get(DATA_DIR_ENV)
    where = f"{DATA_DIR_ENV}={value}"
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
        f"{where} is not a folder.\n"
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

  That is ``$KORANI_RELEASE_DIR`` where it is set, else the raw data
  folder's (`data_dir`) ``KORANI``.

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
    data = _given_data_dir or os.environ.get(DATA_DIR_ENV)
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
