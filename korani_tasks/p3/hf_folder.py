"""P3 records from a folder of Hugging Face-style files (``$P3_DATA_DIR``).

For the P3 datasets that have no reader of their canonical files
(`korani_tasks.p3.readers`: SuperGLUE, ANLI, HellaSwag, Story Cloze,
WinoGrande, TREC, AG News, Rotten Tomatoes), the records are read from files
with the Hugging Face records themselves, as the `datasets` library writes
them, so that a user who has T0's training data can train on it::

    $P3_DATA_DIR/<dataset>[/<subset>]/<split>.jsonl            (to_json)
    $P3_DATA_DIR/<dataset>[/<subset>]/<split>-00000-of-00002.parquet
    $P3_DATA_DIR/<dataset>[/<subset>]/<name>-<split>.arrow     (datasets cache)
    $P3_DATA_DIR/<dataset>[/<subset>]/<split>/*.arrow          (save_to_disk)

e.g. ``$P3_DATA_DIR/cos_e/v1.11/train.jsonl`` or
``$P3_DATA_DIR/duorc/SelfRC/duorc-validation.arrow``. ``$P3_DATA_DIR``
defaults to ``$KORANI_DATA_DIR/p3``. A file belongs to split ``S`` if its
name without extension is ``S``, ``S-<n>-of-<m>``, ``<prefix>-S`` or
``<prefix>-S-<n>-of-<m>``, or it lies in a folder ``S/`` (so ``val`` does
not take ``validation``'s files); ``.jsonl`` is one JSON object per line,
``.parquet`` Parquet, ``.arrow`` an Arrow IPC stream (what `datasets`
writes) or file. The files of one split are read in name order and must
share one format. Records are the files' rows as they are: the field names
and values of the Hugging Face dataset (promptsource's templates use them).

Example: with ``$P3_DATA_DIR/cos_e/v1.11/validation.jsonl`` holding
``{"id": "...", "question": "...", "choices": [...], "answer": "...",
"abstractive_explanation": "...", "extractive_explanation": "..."}`` lines::

    source = base.P3_SOURCES["cos_e/v1.11"]   # an HfFolderSource
    for key, record in source.read("validation", source.paths(data_dir,
                                                              "validation")):
      ...  # "cos_e/v1.11/validation.jsonl:1", {"id": "...", ...}

Importing this module registers an `HfFolderSource` for every catalog dataset
(`korani_tasks.p3.catalog`) that has no reader, after importing
`korani_tasks.p3.readers` so that the readers take precedence.
"""

from collections.abc import Generator, Iterator, Sequence
import dataclasses
import json
import os
import pathlib
import re

from korani_tasks import errors
from korani_tasks import paths
from korani_tasks.p3 import base
from korani_tasks.p3 import catalog
from korani_tasks import storage

try:  # Readers of canonical files first: they take precedence.
  from korani_tasks.p3 import readers as _readers  # noqa: F401
except ModuleNotFoundError as e:  # pragma: no cover (readers.py is optional)
  if e.name != "korani_tasks.p3.readers":
    raise

P3_DATA_DIR_ENV = "P3_DATA_DIR"
P3_SUBDIR = "p3"  # Default: $KORANI_DATA_DIR/p3.
EXTENSIONS = (".jsonl", ".parquet", ".arrow")
_SHARD = r"(?:-\d+-of-\d+)?"
_ARROW_BATCH = 1024


def p3_data_dir(data_dir: os.PathLike | str | None = None) -> pathlib.Path:
  """The folder of the Hugging Face-style files.

  ``$P3_DATA_DIR`` where set, else ``<data_dir>/p3`` (`data_dir` defaults to
  ``$KORANI_DATA_DIR``).

  Raises:
    MissingDataError: neither variable is set (or KORANI_DATA_DIR is not a
      folder) and no `data_dir` is given.
  """
  value = os.environ.get(P3_DATA_DIR_ENV)
  if value:
    return storage.path(value)
  if data_dir is None:
    data_dir = paths.data_dir()
  return storage.path(data_dir, P3_SUBDIR)


def _split_pattern(split: str) -> re.Pattern:
  return re.compile(
      rf"^(?:{re.escape(split)}{_SHARD}|.+-{re.escape(split)}{_SHARD})$")


def _files_under(folder: pathlib.Path) -> list[pathlib.Path]:
  """The files in `folder` and its subfolders (epath's gs:// paths have no
  recursive ``rglob``: one listing per folder)."""
  files = []
  for entry in folder.iterdir():
    files += _files_under(entry) if entry.is_dir() else [entry]
  return files


def find_split_files(folder: pathlib.Path,
                     split: str) -> tuple[pathlib.Path, ...]:
  """The files of `split` in a dataset folder (see the module docstring).

  Raises:
    DataFormatError: the split's files have more than one format.
  """
  if not folder.is_dir():
    return ()
  pattern = _split_pattern(split)
  found = [p for p in folder.iterdir()
           if p.is_file() and p.suffix in EXTENSIONS and pattern.match(p.stem)]
  split_folder = folder / split
  if split_folder.is_dir():
    found += [p for p in _files_under(split_folder)
              if p.suffix in EXTENSIONS]
  found.sort()
  formats = sorted({p.suffix for p in found})
  if len(formats) > 1:
    raise errors.DataFormatError(
        folder, None,
        f"split {split!r} has files of several formats ({', '.join(formats)}):"
        f" {', '.join(p.name for p in found)}; keep one format per split")
  return tuple(found)


# --- File formats. ---


def read_jsonl_records(path: pathlib.Path) -> Iterator[tuple[int, dict]]:
  """``(line number, object)`` per line; blank lines only at the end.

  UTF-8 (a BOM is removed); lines end at LF (a CR before it is JSON
  whitespace).

  Raises:
    DataFormatError: a line is not UTF-8 or not a JSON object, or the file
      has no rows.
  """
  count = 0
  first_blank = None
  with storage.open_binary(path) as f:
    for line_number, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise errors.DataFormatError(
            path, line_number, f"not valid UTF-8 (bad byte "
            f"0x{raw[e.start]:02x} at column {e.start + 1})") from None
      if line_number == 1:
        line = line.removeprefix("\ufeff")
      if not line.strip():
        first_blank = first_blank or line_number
        continue
      if first_blank:
        raise errors.DataFormatError(
            path, first_blank, "blank line in the middle of the data")
      try:
        value = json.loads(line)
      except json.JSONDecodeError as e:
        raise errors.DataFormatError(
            path, line_number, f"not valid JSON ({e.msg} at column {e.colno})"
        ) from None
      if not isinstance(value, dict):
        raise errors.DataFormatError(
            path, line_number,
            f"expected a JSON object, got {type(value).__name__}")
      count += 1
      yield line_number, value
  if not count:
    raise errors.DataFormatError(path, 1, "empty file: expected JSON lines")


def _pyarrow():
  try:
    import pyarrow  # pylint: disable=g-import-not-at-top
    import pyarrow.parquet  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:  # pragma: no cover
    raise errors.MissingDataError(
        "reading .parquet and .arrow P3 files needs pyarrow: pip install "
        "pyarrow") from e
  return pyarrow


def read_parquet_records(path: pathlib.Path) -> Iterator[tuple[int, dict]]:
  """``(row number from 1, record)`` per row of a Parquet file.

  Raises:
    DataFormatError: not a Parquet file, or its data is corrupt.
  """
  pa = _pyarrow()
  try:
    parquet = pa.parquet.ParquetFile(
        storage.open_binary(path) if storage.is_uri(path) else path)
  except (pa.ArrowException, OSError) as e:
    raise errors.DataFormatError(path, None, f"not a Parquet file: {e}"
                                 ) from None
  yield from _rows(path, parquet.iter_batches(batch_size=_ARROW_BATCH))


# The end-of-stream marker of the Arrow IPC stream format (continuation
# token, then a zero length), which a stream writer writes when it is closed.
_ARROW_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def read_arrow_records(path: pathlib.Path) -> Iterator[tuple[int, dict]]:
  """``(row number from 1, record)`` per row of an Arrow IPC stream or file.

  `datasets` writes the stream format (``.arrow`` in its cache and
  ``save_to_disk`` folders); the file format is read too. A stream must end
  with its end-of-stream marker: without it, a file cut between two record
  batches would read as a shorter, valid stream.

  Raises:
    DataFormatError: not Arrow IPC, corrupt, or a stream without its end
      (a truncated file, e.g. of an interrupted `datasets` run).
  """
  pa = _pyarrow()
  source = (pa.BufferReader(storage.path(path).read_bytes())
            if storage.is_uri(path) else pa.memory_map(os.fspath(path)))
  is_stream = True
  try:
    try:
      batches = pa.ipc.open_stream(source)
    except (pa.ArrowException, OSError):
      is_stream = False
      source.seek(0)
      reader = pa.ipc.open_file(source)
      batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
  except (pa.ArrowException, OSError) as e:
    raise errors.DataFormatError(
        path, None, f"not an Arrow IPC stream or file: {e}") from None
  count = yield from _rows(path, batches)
  if is_stream:
    with storage.open_binary(path) as f:
      f.seek(max(0, storage.file_stat(path)[0] - len(_ARROW_END_OF_STREAM)))
      if f.read() != _ARROW_END_OF_STREAM:
        raise errors.DataFormatError(
            path, None, f"the Arrow stream ends after row {count} without "
            "its end-of-stream marker: the file is truncated")


def _rows(path: pathlib.Path,
          batches) -> Generator[tuple[int, dict], None, int]:
  """``(row number from 1, record)`` of Arrow record batches; returns the
  number of rows.

  Raises:
    DataFormatError: a batch cannot be read (truncated or corrupt data).
  """
  pa = _pyarrow()
  row = 0
  try:
    for batch in batches:
      for record in batch.to_pylist():
        row += 1
        yield row, record
  except (pa.ArrowException, OSError) as e:
    raise errors.DataFormatError(
        path, None, f"truncated or corrupt data after row {row}: {e}"
    ) from None
  return row


_FORMAT_READERS = {".jsonl": read_jsonl_records,
                   ".parquet": read_parquet_records,
                   ".arrow": read_arrow_records}


def read_hf_files(split: str, split_paths: Sequence[pathlib.Path]
                  ) -> Iterator[tuple[str, base.Record]]:
  """A `base.ReadFn`: the rows of the files, keyed ``<file>:<row>``.

  The file is named by the last three parts of its path
  (``cos_e/v1.11/train.jsonl:17``, ``p3/trec/train.jsonl:3``); the row is
  the line (jsonl) or the row number from 1 (Parquet, Arrow).
  """
  del split  # The same format in every split.
  for path in split_paths:
    reader = _FORMAT_READERS.get(path.suffix)
    if reader is None:
      raise errors.DataFormatError(
          path, None, f"unknown format {path.suffix!r}; expected one of "
          f"{EXTENSIONS}")
    name = "/".join(path.parts[-3:])
    for row, record in reader(path):
      yield f"{name}:{row}", record


@dataclasses.dataclass(frozen=True)
class HfFolderSource(base.P3Source):
  """A P3 source read from ``$P3_DATA_DIR/<dataset>[/<subset>]/``.

  `split_files` describes the expected files (patterns, not paths); `paths`
  finds them. Split names are the Hugging Face ones.
  """

  def folder(self, data_dir: os.PathLike | str | None = None) -> pathlib.Path:
    return p3_data_dir(data_dir) / self.name

  def paths(self, data_dir: os.PathLike | str,
            split: str) -> tuple[pathlib.Path, ...]:
    """The files of `split` (none where absent); `data_dir` is
    ``$KORANI_DATA_DIR`` (ignored where ``$P3_DATA_DIR`` is set)."""
    if split not in self.split_files:
      raise errors.ConfigError(
          f"{self.name} has no split {split!r}; splits: {list(self.split_files)}")
    return find_split_files(self.folder(data_dir), split)

  def present_splits(self, data_dir: os.PathLike | str) -> tuple[str, ...]:
    return tuple(s for s in self.split_files if self.paths(data_dir, s))

  def expected_files(self, data_dir: os.PathLike | str, split: str) -> str:
    """What `paths` looks for, for messages."""
    folder = self.folder(data_dir)
    return (f"{folder}/{split}[-<n>-of-<m>].{{jsonl,parquet,arrow}} (or "
            f"<name>-{split}.arrow, or the folder {folder}/{split}/)")


def _hf_source(entry: catalog.P3Dataset) -> HfFolderSource:
  if entry.rounds:
    hf_splits = [s for r in entry.rounds for s in entry.split_map(r).values()]
  else:
    hf_splits = list(entry.splits.values())
  return HfFolderSource(
      dataset=entry.hf_name, subset=entry.hf_subset,
      split_files={s: (f"{P3_SUBDIR}/{entry.key}/{s}.{{jsonl,parquet,arrow}}",)
                   for s in hf_splits},
      read=read_hf_files,
      note=("Hugging Face records from $P3_DATA_DIR (default "
            "$KORANI_DATA_DIR/p3)/" + entry.key + "/: .jsonl, .parquet or "
            ".arrow files as `datasets` writes them."))


def register_missing() -> list[str]:
  """Registers an `HfFolderSource` for each catalog dataset without a source.

  Returns the keys registered now (none on a second call).
  """
  registered = []
  for key, entry in catalog.load().items():
    if key not in base.P3_SOURCES:
      base.register(_hf_source(entry))
      registered.append(key)
  return registered


register_missing()
