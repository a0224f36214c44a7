"""promptsource 0.2.3's templates without installing promptsource.

promptsource 0.2.3 cannot be an install requirement (its metadata says
Python <3.10), so a plain wheel install registers no P3 task. `fetch`
(``korani p3 fetch-templates``) gets the package's source distribution from
the package index with pip, so that pip's own index, proxy and certificate
settings apply::

    pip download --no-deps --no-binary :all: --ignore-requires-python \\
        promptsource==0.2.3

checks its sha256 and keeps only ``promptsource/templates/`` under
`default_dir()` ($KORANI_CACHE_DIR/promptsource-0.2.3/templates, default
~/.cache/korani/...), where `promptsource_yaml.templates_dir` finds it. The
folder is replaced atomically: an interrupted run leaves the old one (or
none), never half of one.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

from korani_tasks import errors
from korani_tasks import paths

VERSION = "0.2.3"
SDIST = f"promptsource-{VERSION}.tar.gz"
# The sdist on PyPI (227,923 bytes), as pip downloaded it.
SDIST_SHA256 = (
    "f106c889778a0fe5590e7183904bf964e1a01691c8a29451e44f3df5ddef05f5")
PIP_DOWNLOAD = ("pip download --no-deps --no-binary :all: "
                f"--ignore-requires-python promptsource=={VERSION}")
TEMPLATE_FILE = "templates.yaml"


def default_dir() -> pathlib.Path:
  """Where `fetch` puts the templates (not created here)."""
  return paths.cache_dir(create=False) / f"promptsource-{VERSION}" / "templates"


def download_sdist(folder: pathlib.Path) -> pathlib.Path:
  """Downloads the promptsource sdist into `folder` with pip; returns it.

  Raises:
    MissingDataError: pip failed (its last lines say why) or is missing.
  """
  command = [sys.executable, "-m", "pip", "download", "--no-deps",
             "--no-binary", ":all:", "--ignore-requires-python",
             "--disable-pip-version-check", "-d", str(folder),
             f"promptsource=={VERSION}"]
  result = subprocess.run(command, capture_output=True, text=True,
                          check=False)
  sdist = folder / SDIST
  if result.returncode or not sdist.is_file():
    tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
    raise errors.MissingDataError(
        f"`{' '.join(command[2:])}` failed:\n{tail}\nWith no package index "
        f"reachable, get {SDIST} elsewhere and pass it: korani p3 "
        "fetch-templates --sdist FILE")
  return sdist


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 16), b""):
      digest.update(chunk)
  return digest.hexdigest()


def extract_templates(sdist: pathlib.Path, dest: pathlib.Path,
                      sha256: str | None = SDIST_SHA256) -> int:
  """Replaces `dest` by the sdist's promptsource/templates; returns the count
  of template files.

  Args:
    sdist: a promptsource source tarball (``promptsource-X/promptsource/
      templates/<dataset>[/<subset>]/templates.yaml``).
    dest: the templates folder to (re)create.
    sha256: the tarball's expected sha256; None skips the check.

  Raises:
    ConfigError: unreadable tarball, wrong sha256, no templates in it, or a
      member path that leaves the folder.
  """
  sdist = pathlib.Path(sdist)
  try:
    actual = _sha256(sdist)
  except OSError as e:
    raise errors.ConfigError(f"cannot read {sdist}: {e.strerror}") from e
  if sha256 is not None and actual != sha256:
    raise errors.ConfigError(
        f"{sdist}: sha256 {actual}, expected {sha256} (promptsource "
        f"{VERSION}'s sdist on PyPI); download it again")
  dest = pathlib.Path(dest).expanduser()
  dest.parent.mkdir(parents=True, exist_ok=True)
  count = 0
  with tempfile.TemporaryDirectory(dir=dest.parent,
                                   prefix=".templates-") as tmp:
    staged = pathlib.Path(tmp, "templates")
    try:
      with tarfile.open(sdist, "r:*") as tar:
        for member in tar:
          parts = pathlib.PurePosixPath(member.name).parts
          if parts[1:3] != ("promptsource", "templates") or len(parts) < 4:
            continue
          if not member.isfile():
            continue
          if ".." in parts or member.name.startswith("/"):
            raise errors.ConfigError(
                f"{sdist}: member {member.name!r} leaves its folder")
          target = staged.joinpath(*parts[3:])
          target.parent.mkdir(parents=True, exist_ok=True)
          with tar.extractfile(member) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
          count += parts[-1] == TEMPLATE_FILE
    except (tarfile.TarError, OSError, EOFError) as e:
      raise errors.ConfigError(
          f"{sdist}: not a readable source tarball ({e})") from e
    if not count:
      raise errors.ConfigError(
          f"{sdist}: no promptsource/templates/*/{TEMPLATE_FILE} in it")
    old = pathlib.Path(tmp, "old")
    if dest.exists():
      os.replace(dest, old)
    os.replace(staged, dest)
  return count


def fetch(dest: pathlib.Path | None = None,
          sdist: pathlib.Path | None = None) -> tuple[pathlib.Path, int]:
  """Downloads (or takes) the sdist and extracts its templates to `dest`.

  Returns (the templates folder, the number of template files).
  """
  dest = pathlib.Path(dest) if dest else default_dir()
  if sdist is not None:
    return dest, extract_templates(pathlib.Path(sdist), dest)
  with tempfile.TemporaryDirectory() as tmp:
    return dest, extract_templates(download_sdist(pathlib.Path(tmp)), dest)
