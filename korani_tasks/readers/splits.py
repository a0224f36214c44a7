"""Deterministic splits for sources that come without one.

A row goes to a split by the sha256 of ``"<seed>:<row id>"``, read as a number
in [0, 1): the same row lands in the same split on every machine, in every
run, whatever the file order, and adding rows to a source moves no other row.
The proportions are met up to sampling noise (±1% on a few thousand rows)::

    assign_split("data.txt:17")           # 'train', 'validation' or 'test'
    assign_split("set:42", SEED, (("train", 0.9), ("validation", 0.1)))

Row ids must be stable: a line number for a file that is never re-ordered, or
the source's own id. Grouped data (e.g. ParaKQC's paraphrase sets) is split by
the group id, so no group straddles two splits.
"""

from collections.abc import Sequence
import hashlib

SEED = "korani-v1"
DEFAULT_FRACTIONS: tuple[tuple[str, float], ...] = (
    ("train", 0.8), ("validation", 0.1), ("test", 0.1))
DEFAULT_NOTE = (
    "The source has no split: rows are assigned train/validation/test "
    "80/10/10 by sha256('korani-v1:<row id>') (korani_tasks.readers.splits).")


def assign_split(
    row_id: str,
    seed: str = SEED,
    fractions: Sequence[tuple[str, float]] = DEFAULT_FRACTIONS,
) -> str:
  """The split of one row (see the module docstring)."""
  total = sum(f for _, f in fractions)
  if abs(total - 1.0) > 1e-9:
    raise ValueError(f"split fractions must sum to 1, got {total}: {fractions}")
  digest = hashlib.sha256(f"{seed}:{row_id}".encode("utf-8")).digest()
  point = int.from_bytes(digest[:8], "big") / 2**64
  cumulative = 0.0
  for name, fraction in fractions:
    cumulative += fraction
    if point < cumulative:
      return name
  return fractions[-1][0]
