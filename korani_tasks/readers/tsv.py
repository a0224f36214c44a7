"""A strict reader for tab-separated files with a header row.

The canonical KORANI sources are plain TSV: one record per line, fields split
on TAB, no quoting (a ``"`` inside a field is part of the text). The reader
checks the layout instead of guessing, so a bad file fails loudly with its
path and line number rather than losing or shifting rows::

    for line, row in read_tsv("kobest/BoolQ/dev.tsv", ["ID", "Answer"]):
      print(line, row["ID"], row["Answer"])  # e.g. `2 1 False`, `3 2 True`

Each row is a dict of *all* columns by header name (so column order does not
matter); values are the raw field strings. Accepted and removed: a UTF-8 BOM
before the header, a CR before each line's LF (CRLF files), blank lines at the
end of the file. Everything else that does not fit raises
`korani_tasks.errors.DataFormatError`.
"""

from collections.abc import Iterator, Mapping, Sequence
import os
import re
from typing import TypeVar

from korani_tasks.errors import DataFormatError
from korani_tasks import storage

_BOM = "\ufeff"
_INTEGER = re.compile(r"-?[0-9]+")

_T = TypeVar("_T")


def _decoded_lines(path: os.PathLike | str) -> Iterator[tuple[int, str]]:
  """Yields (1-based line number, text without line ending) of each line."""
  with storage.open_binary(path) as f:
    for number, raw in enumerate(f, start=1):
      raw = raw.removesuffix(b"\n").removesuffix(b"\r")
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataFormatError(
            path, number,
            f"not valid UTF-8 (bad byte 0x{raw[e.start]:02x} at column "
            f"{e.start + 1}); the file must be UTF-8, not e.g. cp949/EUC-KR"
        ) from None
      yield number, text.removeprefix(_BOM) if number == 1 else text


def utf8_error(path: os.PathLike | str) -> DataFormatError:
  """The error for a file that is not valid UTF-8, naming its first bad line.

  For readers that decode a whole file (CSV): ``UnicodeDecodeError`` gives
  no line. A line is decoded on its own, which is exact: the LF byte is never
  part of a multi-byte UTF-8 character.
  """
  with storage.open_binary(path) as f:
    for number, raw in enumerate(f, start=1):
      try:
        raw.decode("utf-8")
      except UnicodeDecodeError as e:
        return DataFormatError(
            path, number,
            f"not valid UTF-8 (bad byte 0x{raw[e.start]:02x} at column "
            f"{e.start + 1}); the file must be UTF-8, not e.g. cp949/EUC-KR")
  return DataFormatError(path, None, "not valid UTF-8")


def _nonblank(lines: Iterator[tuple[int, str]],
              path: os.PathLike | str) -> Iterator[tuple[int, str]]:
  """The non-blank lines; blank lines are fine only if nothing follows them.

  Raises:
    DataFormatError: a blank line followed by more data (names its line).
  """
  first_blank = None
  for number, text in lines:
    if not text:
      first_blank = first_blank or number
      continue
    if first_blank:
      raise DataFormatError(
          path, first_blank, "blank line in the middle of the data")
    yield number, text


def check_header(header: Sequence[str], required_columns: Sequence[str],
                 path: os.PathLike | str) -> None:
  """Checks a header row (TSV or CSV): no repeated name, every required one.

  Raises:
    DataFormatError: naming the file, line 1 and the column.
  """
  duplicates = sorted({name for name in header if header.count(name) > 1})
  if duplicates:
    raise DataFormatError(path, 1, f"header repeats column(s) {duplicates}")
  for column in required_columns:
    if column not in header:
      raise DataFormatError(
          path, 1, f"missing column {column!r}; the header has {list(header)}")


def read_tsv(
    path: os.PathLike | str, required_columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
  """Yields ``(line_number, row)`` for each data row of a TSV file.

  Args:
    path: the file; its first line is the header.
    required_columns: header names that must be present.

  Yields:
    The 1-based line number in the file (the first data row is line 2) and a
    dict mapping every header name to that row's field.

  Raises:
    DataFormatError: the file is empty or not UTF-8; the header lacks a
      required column or repeats a name; a row has a different number of
      fields than the header; a blank line is followed by more data; or there
      are no data rows.
  """
  lines = _decoded_lines(path)
  header_line = next(lines, None)
  if header_line is None:
    raise DataFormatError(path, 1, "empty file: expected a header row")
  if not header_line[1]:
    raise DataFormatError(path, 1, "blank first line: expected a header row")
  header = header_line[1].split("\t")
  check_header(header, required_columns, path)

  num_rows = 0
  for number, text in _nonblank(lines, path):
    fields = text.split("\t")
    if len(fields) != len(header):
      raise DataFormatError(
          path, number,
          f"expected {len(header)} tab-separated fields, got {len(fields)}")
    num_rows += 1
    yield number, dict(zip(header, fields))
  if not num_rows:
    raise DataFormatError(path, 1, "header but no data rows")


def read_lines(path: os.PathLike | str) -> Iterator[tuple[int, str]]:
  """Yields ``(line number, text)`` of each line of a headerless text file.

  As `read_tsv`: UTF-8 (a BOM and CR before LF removed), blank lines only
  at the end, at least one data line.

  Raises:
    DataFormatError: not UTF-8, a blank line in the middle, or no data.
  """
  count = 0
  for number, text in _nonblank(_decoded_lines(path), path):
    count += 1
    yield number, text
  if not count:
    raise DataFormatError(path, 1, "empty file: expected data lines")


def parse_bool(
    value: str, path: os.PathLike | str, line: int, column: str) -> bool:
  """Parses 'true'/'false' in any case, ignoring surrounding whitespace.

  Example: 'TRUE', 'True' and ' true' give True; 'yes' or '1' raise.

  Raises:
    DataFormatError: naming the value, column, file and line.
  """
  return parse_choice(
      value.strip().lower(), {"false": False, "true": True}, path, line,
      column, shown=value)


def parse_choice(
    value: str,
    allowed: Mapping[str, _T],
    path: os.PathLike | str,
    line: int,
    column: str,
    *,
    shown: str | None = None,
) -> _T:
  """Returns ``allowed[value]``; the value must match a key exactly.

  Example: ``parse_choice("2", {"1": 0, "2": 1}, ...)`` is 1.

  Args:
    value: the field, compared as is (strip it first where that is intended).
    allowed: the accepted field values and what each one means.
    path: the file, for the error message.
    line: the line number, for the error message.
    column: the column name, for the error message.
    shown: the field as it is in the file, if `value` was normalized from it.

  Raises:
    DataFormatError: naming the value, column and the allowed set.
  """
  if value in allowed:
    return allowed[value]
  shown = value if shown is None else shown
  raise DataFormatError(
      path, line,
      f"unknown label {shown!r} in column {column!r} "
      f"(expected one of: {', '.join(allowed)})")


def parse_int(
    value: str, path: os.PathLike | str, line: int, column: str) -> int:
  """Parses a decimal integer such as '17' or '-3' (no spaces or signs '+').

  Raises:
    DataFormatError: naming the value, column, file and line.
  """
  if not _INTEGER.fullmatch(value):
    raise DataFormatError(
        path, line, f"expected an integer in column {column!r}, got {value!r}")
  return int(value)
