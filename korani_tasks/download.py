"""Fetches the public raw KORANI source files into ``$KORANI_DATA_DIR``.

Every raw dataset of catalog.yaml lists its canonical files: a path under the
data folder, the publisher's URL and, where we have checked the published
file, its sha256 and size. `download` puts each file at its path::

    results = download(["kobest_copa"], "/data/korani")
    # /data/korani/kobest/COPA/{train,dev,test}.tsv, sha256-checked
    for r in results:
      print(r.describe())  # downloaded  kobest_copa  kobest/COPA/dev.tsv ...

Guarantees:

* A destination file is only ever written by an atomic rename of a complete,
  verified download (``<dest>.part``, fsynced, sha256 and size checked), so a
  file at a catalog path is never half-written.
* A file already present with the recorded sha256 is skipped, so running the
  command again after an interruption continues where it stopped. An
  interrupted transfer (connection closed early, fewer bytes than
  Content-Length) raises `DownloadError` and keeps ``<dest>.part``; the next
  run resumes it with an HTTP Range request where the server supports one,
  and starts over otherwise.
* A sha256 or size mismatch raises `ChecksumError`, naming the dataset, the
  file, the URL and both checksums; the download is deleted and nothing is
  written at the destination.
* A file without a recorded sha256 is downloaded and reported as unverified,
  with its sha256 and size, so that they can be recorded in catalog.yaml.

A mirror (``mirror=`` or ``$KORANI_DOWNLOAD_MIRROR``) replaces every URL by
``<mirror>/<catalog path>``: an ``http(s)://`` or ``file://`` URL, or a local
folder laid out as the data folder.

Datasets whose source is ``release`` (licence-gated: AIHub, NIKL, ...) cannot
be downloaded: they come from the official KORANI release; `ReleaseOnlyError`
says where to get it and where to put it.

Why not ``tfds.download.DownloadManager`` (tensorflow_datasets 4.9.10)? It
does verify sha256/size from ``url_infos``, but:

* it stores each download under a name of its own made from the URL and the
  checksum (``resource.get_dl_fname``, e.g.
  ``raw.githubusercontent.com_e9t_nsmc_...<base64 sha>.txt`` plus an
  ``.INFO`` side file) in its download folder, while our readers and the TFDS
  builders' manual dir need the catalog layout (``kobest/COPA/dev.tsv``); every
  file would have to be copied afterwards;
* it cannot resume: a transfer goes to a fresh ``<name>.tmp.<uuid>/`` folder
  each time (no HTTP Range), and an interrupted one leaves that folder behind;
* its checksums are keyed by URL, so a mirror needs a second table, and a file
  without a checksum is either refused (``force_checksums_validation``) or
  accepted silently, with no report of its sha256 to record.

Hence this small implementation on urllib.
"""

from collections.abc import Callable, Iterable, Sequence
import contextlib
import dataclasses
import http.client
import logging
import os
import pathlib
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

from korani_tasks import catalog
from korani_tasks import checksums
from korani_tasks import errors
from korani_tasks import paths

_log = logging.getLogger(__name__)

MIRROR_ENV = "KORANI_DOWNLOAD_MIRROR"
MIRROR_HELP = (
    "Where the canonical URLs are unreachable, download from a copy: "
    "korani data download NAME... --mirror URL (a base URL or local folder "
    "laid out as the data folder; or set $" + MIRROR_ENV + "). Run the "
    "command again to resume.")
PART_SUFFIX = ".part"

DOWNLOADED = "downloaded"
PRESENT = "present"

_CHUNK = 1 << 16
_TIMEOUT_S = 60
_USER_AGENT = "korani-download/0.1"


class DownloadError(errors.KoraniError):
  """A file could not be fetched (HTTP error, network error, cut transfer)."""


class ChecksumError(DownloadError):
  """A file's sha256 or size differs from the catalog's.

  Attributes: dataset, path (relative to the data folder), url, expected and
  actual sha256, expected and actual size.
  """

  def __init__(self, message: str, *, dataset: str, path: str, url: str,
               expected: str | None, actual: str,
               expected_size: int | None = None,
               actual_size: int | None = None):
    super().__init__(message)
    self.dataset = dataset
    self.path = path
    self.url = url
    self.expected = expected
    self.actual = actual
    self.expected_size = expected_size
    self.actual_size = actual_size


class ReleaseOnlyError(errors.MissingDataError):
  """A dataset that only the (licence-gated) KORANI release provides."""


@dataclasses.dataclass(frozen=True)
class FileResult:
  """What happened to one catalog file.

  Attributes:
    dataset: the dataset key.
    path: the catalog path, relative to the data folder.
    url: where it was (or would have been) fetched from.
    status: DOWNLOADED or PRESENT (already there, skipped).
    sha256: of the file now at the destination.
    size: its size in bytes.
    verified: whether the catalog records a sha256 (and it matched); False
      means the file is unverified and its sha256 should be recorded.
  """
  dataset: str
  path: str
  url: str
  status: str
  sha256: str
  size: int
  verified: bool

  def describe(self) -> str:
    check = ("sha256 ok" if self.verified else
             f"UNVERIFIED (no sha256 in the catalog): sha256: {self.sha256}  "
             f"size: {self.size}")
    return f"{self.status:<10}  {self.dataset}  {self.path}  {check}"


def public_datasets() -> list[str]:
  """Keys of the datasets that can be downloaded (source raw, with files)."""
  return [key for key, info in catalog.load().items()
          if info.source == "raw" and info.files]


def release_message(info: catalog.DatasetInfo) -> str:
  """Where a release-only dataset comes from and where it goes."""
  folder = paths.release_dir(required=False)
  where = (f"{folder}/<cluster>/{info.key}/" if folder else
           f"$KORANI_DATA_DIR/{paths.RELEASE_SUBDIR}/<cluster>/{info.key}/")
  return (
      f"{info.key} ({info.name}) cannot be downloaded: its source is "
      f"licence-gated ({info.license}; {info.homepage}), so KORANI reads it "
      "only from the official KORANI release CSVs. Request the release from "
      "the KORANI authors (after agreeing to the source's terms at "
      f"{info.homepage}) and unpack it so that {where} holds train.csv and "
      f"the evaluation CSVs (set {paths.RELEASE_DIR_ENV} to the release "
      f"folder, or put it at $KORANI_DATA_DIR/{paths.RELEASE_SUBDIR}).")


def resolve(names: Iterable[str] | None) -> list[catalog.DatasetInfo]:
  """The catalog entries to download; all public raw datasets if no names.

  Raises:
    ConfigError: an unknown dataset key.
    ReleaseOnlyError: a named dataset has no downloadable files.
  """
  names = list(dict.fromkeys(names or ()))
  if not names:
    return [catalog.get(key) for key in public_datasets()]
  infos = [catalog.get(name) for name in names]  # ConfigError if unknown.
  release_only = [i for i in infos if i.source != "raw" or not i.files]
  if release_only:
    raise ReleaseOnlyError(
        "nothing was downloaded:\n" + "\n".join(
            "  " + release_message(i) for i in release_only))
  return infos


def mirror_url(mirror: str, path: str) -> str:
  """``<mirror>/<path>``; a mirror without a URL scheme is a local folder."""
  if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", mirror):
    mirror = pathlib.Path(mirror).expanduser().resolve().as_uri()
  return mirror.rstrip("/") + "/" + urllib.parse.quote(path)


def _fsync_dir(path: pathlib.Path) -> None:
  with contextlib.suppress(OSError):
    fd = os.open(path, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)


def _progress_bar(total: int | None, initial: int, desc: str, enabled: bool):
  import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm.tqdm(total=total, initial=initial, desc=desc, unit="B",
                   unit_scale=True, unit_divisor=1024, disable=not enabled,
                   file=sys.stderr, leave=True, dynamic_ncols=True)


def _open(url: str, offset: int):
  """Opens `url`, asking for bytes from `offset` on when it is not 0.

  Returns the response, or None when the server says the range is empty
  (HTTP 416: the partial file may already be complete).
  """
  headers = {"User-Agent": _USER_AGENT}
  if offset:
    headers["Range"] = f"bytes={offset}-"
  request = urllib.request.Request(url, headers=headers)
  try:
    # The caller closes the response.
    return urllib.request.urlopen(request, timeout=_TIMEOUT_S)  # pylint: disable=consider-using-with
  except urllib.error.HTTPError as e:
    e.close()
    if e.code == 416 and offset:
      return None
    raise DownloadError(f"{url}: HTTP error {e.code} ({e.reason})") from e
  except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
    reason = getattr(e, "reason", e)
    raise DownloadError(f"{url}: cannot connect ({reason})") from e


def _transfer(url: str, part: pathlib.Path, desc: str, progress: bool) -> None:
  """Fetches `url` into `part`, resuming from its current size if possible.

  Raises:
    DownloadError: the request failed or the transfer was cut short; `part`
      holds what arrived (a later call resumes it).
  """
  offset = part.stat().st_size if part.exists() else 0
  response = _open(url, offset)
  if response is None:
    return  # 416: nothing more to fetch; the caller checks the file.
  with response:
    status = getattr(response, "status", None) or 200  # None for file://.
    content_range = response.headers.get("Content-Range", "")
    if offset and status == 206 and content_range.startswith(
        f"bytes {offset}-"):
      mode = "ab"
      _log.info("%s: resuming at byte %d", desc, offset)
    else:
      if offset:
        _log.info("%s: the server does not resume; starting over", desc)
      offset, mode = 0, "wb"
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    received = 0
    with open(part, mode) as f, _progress_bar(
        None if length is None else offset + length, offset, desc,
        progress) as bar:
      try:
        while True:
          try:
            chunk = response.read(_CHUNK)
          except (OSError, http.client.HTTPException) as e:  # Incl. timeouts.
            raise DownloadError(
                f"{url}: transfer interrupted after {offset + received} bytes "
                f"({e!r}); the partial download is kept in {part} and the "
                "next run resumes it") from e
          if not chunk:
            break
          f.write(chunk)
          received += len(chunk)
          bar.update(len(chunk))
      finally:
        f.flush()
        os.fsync(f.fileno())
    if length is not None and received < length:
      raise DownloadError(
          f"{url}: transfer interrupted: the connection closed after "
          f"{offset + received} of {offset + length} bytes; the partial "
          f"download is kept in {part} and the next run resumes it")


def _mismatch(source: catalog.SourceFile, sha: str, size: int) -> bool:
  return ((source.sha256 is not None and sha != source.sha256)
          or (source.size is not None and size != source.size))


def _checksum_error(dataset: str, source: catalog.SourceFile, url: str,
                    sha: str, size: int, what: str,
                    advice: str) -> ChecksumError:
  expected = source.sha256 or "(not recorded)"
  expected_size = "?" if source.size is None else source.size
  return ChecksumError(
      f"{dataset}: checksum mismatch for {source.path} ({what}):\n"
      f"  url:             {url}\n"
      f"  expected sha256: {expected} ({expected_size} bytes)\n"
      f"  actual sha256:   {sha} ({size} bytes)\n{advice}",
      dataset=dataset, path=source.path, url=url, expected=source.sha256,
      actual=sha, expected_size=source.size, actual_size=size)


def download_file(dataset: str, source: catalog.SourceFile,
                  data_dir: os.PathLike | str, *, mirror: str | None = None,
                  force: bool = False, progress: bool = True) -> FileResult:
  """Puts one catalog file at ``data_dir/source.path`` (see module docstring).

  Raises:
    ChecksumError: the download (or, without `force`, the file already at the
      destination) does not match the catalog's sha256/size.
    DownloadError: the transfer failed.
  """
  url = mirror_url(mirror, source.path) if mirror else source.url
  dest = pathlib.Path(data_dir, source.path)
  verified = source.sha256 is not None
  if dest.is_file() and not force:
    sha, size = checksums.file_sha256(dest), dest.stat().st_size
    if _mismatch(source, sha, size):
      raise _checksum_error(
          dataset, source, url, sha, size, f"the file already at {dest}",
          "The file was left as it is; `korani data download --force "
          f"{dataset}` replaces it.")
    return FileResult(dataset, source.path, url, PRESENT, sha, size, verified)

  dest.parent.mkdir(parents=True, exist_ok=True)
  part = dest.with_name(dest.name + PART_SUFFIX)
  if force:
    part.unlink(missing_ok=True)
  for attempt in range(2):
    offset = part.stat().st_size if part.exists() else 0
    if source.size is not None and offset > source.size:
      part.unlink()
      offset = 0
    if not (offset and offset == source.size):  # Else complete: just check.
      _transfer(url, part, source.path, progress)
    sha, size = checksums.file_sha256(part), part.stat().st_size
    if not _mismatch(source, sha, size):
      break
    part.unlink()
    if offset and attempt == 0:
      _log.warning("%s: the resumed download of %s does not match the "
                   "catalog; downloading it again from the start", dataset,
                   source.path)
      continue
    raise _checksum_error(
        dataset, source, url, sha, size, "downloaded",
        f"The download was deleted and nothing was written to {dest}. If the "
        "publisher changed the file on purpose, check it and update "
        "korani_tasks/catalog.yaml; otherwise try again or use another "
        "mirror.")
  os.replace(part, dest)
  _fsync_dir(dest.parent)
  return FileResult(dataset, source.path, url, DOWNLOADED, sha, size, verified)


def download(names: Iterable[str] | None, data_dir: os.PathLike | str, *,
             mirror: str | None = None, force: bool = False,
             progress: bool = True,
             on_result: Callable[[FileResult], None] | None = None,
             ) -> list[FileResult]:
  """Downloads the catalog files of datasets into `data_dir`.

  Args:
    names: dataset keys; None or empty: every public raw dataset.
    data_dir: the raw data folder (created if needed).
    mirror: base URL replacing the canonical locations (file URL
      ``<mirror>/<catalog path>``); default ``$KORANI_DOWNLOAD_MIRROR``.
    force: download again even files already present (the old file stays
      until the new one is verified).
    progress: show a tqdm bar per file on stderr.
    on_result: called with each file's result as soon as it is done.

  Returns:
    One FileResult per file, in catalog order (a file that two datasets share
    is fetched once).

  Raises:
    ConfigError: unknown dataset key (nothing is downloaded).
    ReleaseOnlyError: a named dataset has no downloadable files (nothing is
      downloaded).
    ChecksumError, DownloadError: after trying every file, if any failed; the
      others are in place. With one failure that error itself, else a
      DownloadError listing them all (attribute `errors`).
  """
  infos = resolve(names)
  mirror = mirror or os.environ.get(MIRROR_ENV) or None
  data_dir = pathlib.Path(data_dir).expanduser()
  data_dir.mkdir(parents=True, exist_ok=True)
  results, failures, seen = [], [], set()
  for info in infos:
    for source in info.files:
      if source.path in seen:
        continue
      seen.add(source.path)
      try:
        result = download_file(info.key, source, data_dir, mirror=mirror,
                               force=force, progress=progress)
      except DownloadError as e:
        _log.error("%s", e)
        failures.append(e)
        continue
      results.append(result)
      if on_result:
        on_result(result)
  if len(failures) == 1:
    raise failures[0]
  if failures:
    error = DownloadError(
        f"{len(failures)} files failed ({len(results)} are in place; run the "
        "command again to retry):\n" + "\n".join(f"- {e}" for e in failures))
    error.errors = failures
    raise error
  return results


def prepare(names: Sequence[str], data_dir: os.PathLike | str,
            tfds_data_dir: os.PathLike | str | None = None,
            log: Callable[[str], None] = print) -> list[str]:
  """Prepares the TFDS builder of each dataset from `data_dir`.

  Datasets without a reader (no registered RawDataset) are skipped with a
  message. Returns the keys prepared.
  """
  # pylint: disable=import-outside-toplevel
  import tensorflow_datasets as tfds
  from korani_tasks import readers
  from korani_tasks import sources
  # pylint: enable=import-outside-toplevel
  prepared = []
  with paths.using_data_dir(data_dir):
    for name in dict.fromkeys(names):
      if name not in readers.RAW_DATASETS:
        log(f"{name}: no reader yet (korani_tasks/readers); not prepared")
        continue
      builder = sources.prepare(tfds.builder_cls(name), tfds_data_dir)
      splits = ", ".join(f"{s} {v.num_examples}"
                         for s, v in builder.info.splits.items())
      log(f"{name}: prepared in {builder.data_dir} ({splits})")
      prepared.append(name)
  return prepared
