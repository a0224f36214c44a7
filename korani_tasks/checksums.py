"""The sha256 of a source file.

One function shared by the downloader (which checks what it fetched) and the
TFDS builders (which record what they were prepared from), so that neither
imports the other.
"""

import hashlib
import os

from korani_tasks import storage


def file_sha256(path: os.PathLike | str) -> str:
  """The sha256 hex digest of a file (local path or gs://, ram:// URI)."""
  digest = hashlib.sha256()
  with storage.open_binary(path) as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()
