"""The main job's embedded default: `make demo` / `korani demo --output DIR`.

Trains a tiny mT5 on korani_kobest_train (Korean templates), scores the
held-out KoBEST datasets with Korean and English templates, prints the
results table and writes DIR/results.json and DIR/results.md. The model run
(checkpoints, TensorBoard logs, vocabulary) is kept in DIR/model. See
gin/demo.gin for the settings; `--gin.MACRO=value` overrides any of them.
"""

import os
import pathlib
import sys
import time
import urllib.error
import urllib.request
from typing import Sequence

from korani_tasks import catalog
from korani_tasks import download
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks.readers import kobest
from t5x_runs import entrypoint
from t5x_runs import flags

DEMO_GIN = "demo.gin"
USAGE = "korani demo [--output DIR] [--gin.MACRO=value ...]"
DESCRIPTION = """\
Trains a tiny mT5 on korani_kobest_train and scores the held-out KoBEST
datasets with Korean and English templates (gin/demo.gin); writes
DIR/results.json and DIR/results.md (default DIR: demo_output) and keeps the
run in DIR/model. Reads the raw files from $KORANI_DATA_DIR (default:
$KORANI_CACHE_DIR/data, i.e. ~/.cache/korani/data); on a first run it
downloads the KoBEST files there (sha256-checked, resumable; from
$KORANI_DOWNLOAD_MIRROR where set)."""

# Seconds to wait for the download server before calling the machine offline.
_PROBE_TIMEOUT_S = 5


def default_data_dir() -> pathlib.Path:
  """The demo's data folder when $KORANI_DATA_DIR is not set."""
  return paths.cache_dir() / "data"


def _missing_files(data_dir: pathlib.Path) -> dict[str, list[str]]:
  """The demo's absent KoBEST files, relative to `data_dir`, by dataset."""
  missing = {}
  for dataset in kobest.KOBEST_DATASETS.values():
    absent = [str(path.relative_to(data_dir))
              for split in ("train", "validation")
              if not (path := dataset.path(data_dir, split)).is_file()]
    if absent:
      missing[dataset.name] = absent
  return missing


def _unreachable(url: str) -> str | None:
  """Why `url` cannot be reached within a few seconds, or None if it can."""
  try:
    with urllib.request.urlopen(
        urllib.request.Request(url, method="HEAD"), timeout=_PROBE_TIMEOUT_S):
      return None
  except urllib.error.HTTPError:
    return None  # A server answered; the download reports what it said.
  except (urllib.error.URLError, OSError) as e:
    return str(getattr(e, "reason", e))


def ensure_data(progress: bool = True) -> pathlib.Path:
  """The demo's raw data folder, with its KoBEST files fetched if absent.

  The folder is $KORANI_DATA_DIR, else `default_data_dir()`; the demo runs
  its tasks on it with `paths.using_data_dir`. Missing files are downloaded from their
  catalog URLs, or from $KORANI_DOWNLOAD_MIRROR. Offline (the first URL does
  not answer within a few seconds) it fails at once, listing the files and
  the `korani data download --mirror URL` command.

  Raises:
    MissingDataError: offline; nothing was written.
    DownloadError: a download failed (finished files stay; a partial one
      resumes on the next run).
  """
  value = os.environ.get(paths.DATA_DIR_ENV)
  data_dir = (pathlib.Path(value).expanduser() if value
              else default_data_dir())
  missing = _missing_files(data_dir)
  if missing:
    names = sorted(missing)
    mirror = os.environ.get(download.MIRROR_ENV) or None
    first = catalog.get(names[0]).files[0]
    url = download.mirror_url(mirror, first.path) if mirror else first.url
    where = (f"{paths.DATA_DIR_ENV}={data_dir}" if value
             else f"{data_dir} ({paths.DATA_DIR_ENV} is not set)")
    reason = _unreachable(url)
    if reason is not None:
      files = "\n".join(f"  {f}" for n in names for f in missing[n])
      raise errors.MissingDataError(
          f"{where} lacks the demo's KoBEST files and {url} cannot be "
          f"reached ({reason}). Needed:\n{files}\n"
          "With network access, run the demo again: it downloads them. "
          "Or fetch them from a copy (a base URL or folder laid out as the "
          f"data folder):\n    korani data download {' '.join(names)} "
          f"--mirror URL --data-dir {data_dir}\n"
          f"or put them there yourself and set {paths.DATA_DIR_ENV}.")
    print(f"korani demo: {where} lacks {sum(map(len, missing.values()))} "
          f"KoBEST file(s); downloading {', '.join(names)} from "
          f"{mirror or 'their catalog URLs'}", file=sys.stderr, flush=True)
    download.download(names, data_dir, mirror=mirror, progress=progress)
  return data_dir


def command_parser():
  """The demo's flags: t5x_runs/flags.py's and --output."""
  command = flags.parser("korani demo", usage=USAGE, description=DESCRIPTION)
  command.add_argument("--output", default="demo_output", metavar="DIR",
                       help="where results.json, results.md and the run "
                       "(model/) go (default: %(default)s)")
  return command


def main(argv: Sequence[str] | None = None) -> int:
  args = flags.parse(command_parser(),
                     list(sys.argv[1:] if argv is None else argv))
  if isinstance(args, int):
    return args
  output = os.path.abspath(args.output)
  try:
    data_dir = ensure_data()
  except download.DownloadError as e:
    print(f"korani demo: error: {e}\n{download.MIRROR_HELP}", file=sys.stderr)
    return 1
  except errors.KoraniError as e:
    print(f"korani demo: error: {e}", file=sys.stderr)
    return entrypoint.EXIT_USAGE
  start = time.time()
  args.gin_files.insert(0, DEMO_GIN)
  args.gin_overrides[:0] = [
      ("macro", f"MODEL_DIR={os.path.join(output, 'model')}"),
      ("macro", f"EVAL_OUTPUT_DIR={output}")]

  def run():
    registered = entrypoint.configurables()
    registered.trainer.train()
    registered.evaluator.evaluate()

  with paths.using_data_dir(data_dir):
    status = entrypoint.run_with_gin(args, run, name="korani demo")
  if status == 0:
    with open(os.path.join(output, "results.md"), encoding="utf-8") as f:
      print(f.read())
    print(f"Wrote {output}/results.json and {output}/results.md "
          f"in {time.time() - start:.0f} s.")
  return status


if __name__ == "__main__":
  sys.exit(main())
