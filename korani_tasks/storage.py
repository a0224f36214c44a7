"""Files on local disk or cloud storage, and a preparation lock for both.

Raw folders (``$KORANI_DATA_DIR``, ``$KORANI_RELEASE_DIR``), prepared TFDS
datasets (``$TFDS_DATA_DIR``) and seqio caches may be ``gs://`` folders.
Paths are `etils.epath` paths: local ones go through the OS, URIs through
``tf.io.gfile``. epath knows gs://, s3://, az:// and hf://; this module adds
TensorFlow's in-memory ``ram://`` filesystem with the same ``tf.io.gfile``
backend as gs://, so the tests exercise the cloud code path offline. Any
other scheme is refused with an error naming it.

Preparing a dataset once across processes (`prepare_once`) uses no fcntl
lock, which a shared or cloud filesystem does not honour:

* a local folder (one host, or NFS): an atomic create-if-absent marker file
  (``O_CREAT | O_EXCL``); the process that creates it prepares, the others
  wait until the dataset is ready or the marker is gone;
* a URI (gs://: no atomic create-if-absent through gfile): a single
  writer, process 0 (``$KORANI_PROCESS_INDEX`` where set, else
  ``jax.process_index()`` where JAX is in use, else 0), prepares; the others
  wait until the dataset is ready. Prepare shared cloud data from one
  process before starting many workers of another kind (Beam's), which all
  count as process 0.

A marker older than the wait (its owner died) is named in the error, to be
deleted by hand.
"""

from collections.abc import Callable
import io
import os
import socket
import sys
import time

from etils import epath
from etils.epath import backend as epath_backend
from etils.epath import gpath
from etils.epath import register

from korani_tasks import errors

PROCESS_INDEX_ENV = "KORANI_PROCESS_INDEX"
_RAM = "ram://"
# epath's schemes, plus ram://.
SCHEMES = ("gs://", "s3://", "az://", "hf://", _RAM)


@register.register_path_cls(_RAM)
class RamPath(gpath.PosixGPath):
  """An epath path on TensorFlow's ``ram://`` filesystem (tf.io.gfile)."""

  def __new__(cls, *parts):
    parts = [p if isinstance(p, RamPath) else os.fspath(p) for p in parts]
    if parts and isinstance(parts[0], str) and parts[0].startswith(_RAM):
      parts[0] = "/ram/" + parts[0][len(_RAM):]
    return super().__new__(cls, *parts)

  @property
  def _uri_scheme(self) -> str | None:
    return "ram" if self.parts[:2] == ("/", "ram") else None

  @property
  def _backend(self) -> epath_backend.Backend:
    return (epath_backend.tf_backend if self._uri_scheme
            else epath_backend.os_backend)


def is_uri(path: os.PathLike | str) -> bool:
  return "://" in os.fspath(path)


def path(value: os.PathLike | str, *parts: os.PathLike | str) -> epath.Path:
  """`value` (joined with `parts`) as a path: local (``~`` expanded) or a URI
  of `SCHEMES`.

  Raises:
    ConfigError: a URI of another scheme.
  """
  text = os.fspath(value)
  if is_uri(text):
    if not text.startswith(SCHEMES):
      raise errors.ConfigError(
          f"{text}: unsupported storage scheme {text.split('://')[0]}://; "
          f"supported: a local path or {', '.join(SCHEMES)}")
    return epath.Path(text).joinpath(*parts)
  return epath.Path(text).expanduser().joinpath(*parts)


def open_binary(file: os.PathLike | str):
  """`file` opened for reading bytes (``tf.io.gfile`` for a URI)."""
  return path(file).open("rb")


def open_text(file: os.PathLike | str, encoding: str = "utf-8-sig"):
  """`file` opened for reading text with universal newlines left alone (as
  `csv` wants it); a URI is read whole."""
  if not is_uri(file):
    return open(file, encoding=encoding, newline="")  # pylint: disable=consider-using-with
  return io.StringIO(path(file).read_bytes().decode(encoding), newline="")


def file_stat(file: os.PathLike | str) -> list[int]:
  """``[size, mtime_ns]`` of a file: a cheap sign that it changed."""
  if not is_uri(file):
    stat = os.stat(file)
    return [stat.st_size, stat.st_mtime_ns]
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  stat = tf.io.gfile.stat(os.fspath(file))
  return [stat.length, stat.mtime_nsec]


def process_index() -> int:
  """This process's index: ``$KORANI_PROCESS_INDEX`` where set, else JAX's
  where JAX is in use, else 0."""
  if os.environ.get(PROCESS_INDEX_ENV):
    return int(os.environ[PROCESS_INDEX_ENV])
  if "jax" in sys.modules:
    return sys.modules["jax"].process_index()
  return 0


def _wait(what: str, ready: Callable[[], bool], still_busy: Callable[[], bool],
          timeout: float, poll: float) -> None:
  deadline = time.monotonic() + timeout
  while not ready() and still_busy():
    if time.monotonic() > deadline:
      raise errors.MissingDataError(
          f"{what} was still not ready after {timeout:.0f} s. If the process "
          "preparing it died, delete the marker and run again.")
    time.sleep(poll)


def prepare_once(marker: os.PathLike | str, ready: Callable[[], bool],
                 prepare: Callable[[], None], timeout: float = 3600,
                 poll: float = 1.0) -> None:
  """Runs `prepare` in one process unless `ready()`; see the module docstring.

  Args:
    marker: the marker file, next to what is prepared.
    ready: whether the result is there (checked again once the lock is held).
    prepare: writes the result.
    timeout: seconds to wait for another process's preparation.
    poll: seconds between checks while waiting.
  """
  marker = path(marker)
  if is_uri(marker):
    if process_index() != 0:
      _wait(f"Waiting for process 0 to prepare {marker.parent}: it",
            ready, lambda: True, timeout, poll)
      return
    if not ready():
      prepare()
    return
  marker.parent.mkdir(parents=True, exist_ok=True)
  while True:
    try:
      fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      _wait(f"{marker.parent} (being prepared by the owner of {marker})",
            ready, marker.exists, timeout, poll)
      if ready():
        return
      continue  # The other process gave up: try again.
    with os.fdopen(fd, "w") as f:
      f.write(f"{socket.gethostname()} pid {os.getpid()}\n")
    try:
      if not ready():
        prepare()
    finally:
      os.unlink(marker)
    return
