"""What raw data is there: `verify` checksums, `list_datasets` counts rows.

    for status in verify(["kobest_copa"], "/data/korani"):
      print(status.describe())
    # ok          kobest_copa  kobest/COPA/train.tsv
    # mismatch    kobest_copa  kobest/COPA/dev.tsv  sha256 1f3a...
    #             (58966 bytes), expected d3f2... (58965 bytes)

    print(format_table(list_datasets("/data/korani")))
    # dataset      cluster              kind  source   splits  rows
    # kobest_copa  sentence_completion  nlu   raw      3/3     train 3076, ...

`verify` reads only the catalog and the files (no TensorFlow); `list_datasets`
runs each dataset's reader (korani_tasks.readers) over the files of every
present split, and counts the rows of the KORANI release CSVs
(korani_tasks.readers.release_csv) for release datasets when the release
folder (`paths.release_dir`) exists.
"""

from collections.abc import Iterable, Sequence
import contextlib
import dataclasses
import logging
import os

from korani_tasks import catalog
from korani_tasks import checksums
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks import storage

OK = "ok"
MISSING = "missing"
MISMATCH = "mismatch"
UNVERIFIED = "unverified"  # Present, but the catalog records no sha256.

NONE = "—"
_NO_RELEASE = "KORANI release folder not found"


@dataclasses.dataclass(frozen=True)
class FileStatus:
  """How one catalog file compares with the catalog."""
  dataset: str
  path: str  # relative to the data folder
  status: str  # OK, MISSING, MISMATCH or UNVERIFIED
  expected_sha256: str | None = None
  actual_sha256: str | None = None
  expected_size: int | None = None
  actual_size: int | None = None

  @property
  def failed(self) -> bool:
    return self.status in (MISSING, MISMATCH)

  def describe(self) -> str:
    line = f"{self.status:<10}  {self.dataset}  {self.path}"
    if self.status == MISMATCH:
      line += (f"  sha256 {self.actual_sha256} ({self.actual_size} bytes), "
               f"expected {self.expected_sha256} ({self.expected_size} bytes)")
    elif self.status == UNVERIFIED:
      line += (f"  sha256: {self.actual_sha256}  size: {self.actual_size} "
               "(no sha256 in the catalog)")
    return line


def _datasets(names: Iterable[str] | None) -> list[catalog.DatasetInfo]:
  """Catalog entries of `names` (ConfigError for unknown), or every one."""
  names = list(dict.fromkeys(names or ()))
  if not names:
    return list(catalog.load().values())
  return [catalog.get(name) for name in names]


def verify(names: Iterable[str] | None,
           data_dir: os.PathLike | str) -> list[FileStatus]:
  """Checks every catalog file of `names` in `data_dir`.

  Without names: every dataset that has at least one file in `data_dir`
  (so a partly downloaded dataset shows its missing files). Release datasets
  have no catalog files and give no rows.

  Raises:
    ConfigError: an unknown dataset key.
  """
  infos = _datasets(names)
  if not names:
    infos = [i for i in infos
             if any(storage.path(data_dir, f.path).is_file() for f in i.files)]
  statuses = []
  for info in infos:
    for source in info.files:
      path = storage.path(data_dir, source.path)
      expected = dict(dataset=info.key, path=source.path,
                      expected_sha256=source.sha256,
                      expected_size=source.size)
      if not path.is_file():
        statuses.append(FileStatus(status=MISSING, **expected))
        continue
      sha, size = checksums.file_sha256(path), storage.file_stat(path)[0]
      if ((source.sha256 is not None and sha != source.sha256)
          or (source.size is not None and size != source.size)):
        status = MISMATCH
      elif source.sha256 is None:
        status = UNVERIFIED
      else:
        status = OK
      statuses.append(FileStatus(status=status, actual_sha256=sha,
                                 actual_size=size, **expected))
  return statuses


@dataclasses.dataclass(frozen=True)
class DatasetRow:
  """One row of `korani data list`.

  Attributes:
    dataset, cluster, kind, source: from the catalog.
    splits: the catalog's splits.
    present: the splits whose files are there (for release datasets: the
      splits that have CSVs in the release folder).
    rows: row count of each present split (None when not counted); for a
      release dataset's validation split, the rows of all its evaluation
      CSVs (one per template).
    note: e.g. how the splits were made, or why nothing is counted.
    error: a reader error (malformed file), if any.
  """
  dataset: str
  cluster: str
  kind: str
  source: str
  splits: tuple[str, ...]
  present: tuple[str, ...] = ()
  rows: dict[str, int] | None = None
  note: str = ""
  error: str = ""


@contextlib.contextmanager
def _quiet(logger_name: str):
  logger = logging.getLogger(logger_name)
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def _raw_row(info: catalog.DatasetInfo, data_dir: os.PathLike,
             counts: bool) -> DatasetRow:
  from korani_tasks import readers  # pylint: disable=import-outside-toplevel
  row = dict(dataset=info.key, cluster=info.cluster, kind=info.kind,
             source=info.source, splits=info.splits)
  raw = readers.RAW_DATASETS.get(info.key)
  if raw is None:
    present = sum(storage.path(data_dir, f.path).is_file() for f in info.files)
    return DatasetRow(**row, note=f"no reader yet ({present}/{len(info.files)} "
                      "files present)")
  present = raw.present_splits(data_dir)
  if not present:
    return DatasetRow(**row)
  if not counts:
    return DatasetRow(**row, present=present, note=raw.split_note)
  rows = {}
  try:
    for split in present:
      rows[split] = sum(1 for _ in raw.read(split, raw.paths(data_dir, split)))
  except errors.KoraniError as e:
    return DatasetRow(**row, present=present, rows=rows or None,
                      note=raw.split_note, error=str(e))
  return DatasetRow(**row, present=present, rows=rows, note=raw.split_note)


def _release_row(info: catalog.DatasetInfo, counts: bool) -> DatasetRow:
  # pylint: disable=import-outside-toplevel
  from korani_tasks.readers import release_csv
  row = dict(dataset=info.key, cluster=info.cluster, kind=info.kind,
             source=info.source, splits=info.splits)
  release = paths.release_dir(required=False)
  if release is None:
    return DatasetRow(**row, note=_NO_RELEASE)
  try:
    folder = release_csv.find_dataset_dir(release, info.key)
    if folder is None:
      return DatasetRow(**row, note=f"not in the release folder {release}")
    files = release_csv.split_files(folder)
    present = tuple(s for s in info.splits if s in files)
    if not counts:
      return DatasetRow(**row, present=present)
    rows = {}
    with _quiet(release_csv.__name__):
      for split in present:
        rows[split] = sum(1 for f in files[split]
                          for _ in release_csv.read_release_csv(f))
  except errors.KoraniError as e:
    return DatasetRow(**row, error=str(e))
  eval_files = len(files.get("validation", ()))
  note = (f"validation: {eval_files} evaluation CSVs (one per template)"
          if eval_files > 1 else "")
  return DatasetRow(**row, present=present, rows=rows, note=note)


def list_datasets(data_dir: os.PathLike | str | None,
                  names: Iterable[str] | None = None, *,
                  counts: bool = True) -> list[DatasetRow]:
  """One row per catalog dataset (or per name): present splits, row counts.

  Args:
    data_dir: the raw data folder; None when there is none (raw datasets then
      show nothing present). The release folder is `paths.release_dir`.
    names: dataset keys; default all.
    counts: whether to count rows (reads every present file).

  A malformed file does not stop the listing: its row has `error` set.
  """
  rows = []
  for info in _datasets(names):
    if info.source == "release":
      rows.append(_release_row(info, counts))
    elif data_dir is None:
      rows.append(DatasetRow(info.key, info.cluster, info.kind, info.source,
                             info.splits))
    else:
      rows.append(_raw_row(info, storage.path(data_dir), counts))
  return rows


def release_warnings() -> list[str]:
  """A warning for each folder of the release that no catalog key names.

  Such a folder is never read: datasets are found by their catalog key, the
  release's ``dataset_name``. [] without a release folder.
  """
  # pylint: disable=import-outside-toplevel
  from korani_tasks.readers import release_csv
  release = paths.release_dir(required=False)
  if release is None:
    return []
  return [f"{folder}: the release folder's dataset folder "
          f"{folder.relative_to(release).as_posix()!r} matches no catalog key "
          "(the release's dataset_name) and is not read"
          for folder in release_csv.unknown_dataset_dirs(release,
                                                         catalog.load())]


def _rows_text(row: DatasetRow) -> str:
  if row.error:
    return "error (see below)"
  if not row.rows:
    return NONE
  return ", ".join(f"{split} {n}" for split, n in row.rows.items())


def format_table(rows: Sequence[DatasetRow], notes: bool = True) -> str:
  """`list_datasets` rows as an aligned text table, notes and errors below."""
  headers = ("dataset", "cluster", "kind", "source", "splits", "rows")
  cells = [headers] + [
      (r.dataset, r.cluster, r.kind, r.source,
       f"{len(r.present)}/{len(r.splits)}" if r.present else NONE,
       _rows_text(r)) for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(headers) - 1)]
  lines = ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) + "  " + cell[-1]
           for cell in cells]
  lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 4)
  missing_splits = [
      (r.dataset, [s for s in r.splits if s not in r.present])
      for r in rows if r.present and len(r.present) < len(r.splits)]
  extra = []
  if notes:
    extra += [f"  {name}: missing split(s) {', '.join(splits)}"
              for name, splits in missing_splits]
    extra += [f"  {r.dataset}: {r.note}" for r in rows
              if r.note and r.note != _NO_RELEASE]
    no_release = [r.dataset for r in rows if r.note == _NO_RELEASE]
    if no_release:
      extra.append(
          f"  {len(no_release)} release dataset(s) not counted: "
          f"{_NO_RELEASE} (${paths.RELEASE_DIR_ENV}, else "
          f"${paths.DATA_DIR_ENV}/{paths.RELEASE_SUBDIR})")
  extra += [f"  {r.dataset}: ERROR {r.error}" for r in rows if r.error]
  if extra:
    lines += ["", "Notes:"] + extra
  return "\n".join(lines)
