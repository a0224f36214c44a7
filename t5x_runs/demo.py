"""The main job's embedded default: `make demo` / `korani demo --output DIR`.

Trains a tiny mT5 on korani_kobest_train (Korean templates), scores the
held-out KoBEST datasets with Korean and English templates, prints the
results table and writes DIR/results.json and DIR/results.md. The model run
(checkpoints, TensorBoard logs, vocabulary) is kept in DIR/model. See
gin/demo.gin for the settings; `--gin.MACRO=value` overrides any of them.
"""

import os
import sys
import time
from typing import Sequence

from korani_tasks import errors
from korani_tasks import paths
from korani_tasks.readers import kobest
from t5x_runs import entrypoint

DEMO_GIN = "demo.gin"
USAGE = """\
usage: korani demo [--output DIR] [--gin.MACRO=value ...]

Trains a tiny mT5 on korani_kobest_train and scores the held-out KoBEST
datasets with Korean and English templates (gin/demo.gin); writes
DIR/results.json and DIR/results.md (default DIR: demo_output) and keeps the
run in DIR/model. Reads the raw files from $KORANI_DATA_DIR."""


def _check_data() -> None:
  """Fails early, with what to do, when the KoBEST files are not there."""
  data_dir = paths.data_dir()
  missing = [str(path.relative_to(data_dir))
             for dataset in kobest.KOBEST_DATASETS.values()
             for split in ("train", "validation")
             if not (path := dataset.path(data_dir, split)).is_file()]
  if missing:
    raise errors.MissingDataError(
        f"{paths.DATA_DIR_ENV}={data_dir} lacks {', '.join(missing)}.\n"
        + paths.MISSING_DATA_HELP.format(env=paths.DATA_DIR_ENV))


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if any(a in ("-h", "--help") for a in argv):
    print(USAGE)
    return 0
  output = "demo_output"
  rest = []
  i = 0
  while i < len(argv):
    if argv[i] == "--output" and i + 1 < len(argv):
      output, i = argv[i + 1], i + 2
      continue
    if argv[i].startswith("--output="):
      output = argv[i].split("=", 1)[1]
    else:
      rest.append(argv[i])
    i += 1
  output = os.path.abspath(output)
  try:
    _check_data()
  except errors.KoraniError as e:
    print(f"korani demo: error: {e}", file=sys.stderr)
    return entrypoint.EXIT_USAGE
  start = time.time()
  flags = [f"--gin_file={DEMO_GIN}",
           f"--gin.MODEL_DIR={os.path.join(output, 'model')}",
           f"--gin.EVAL_OUTPUT_DIR={output}"] + rest

  def run():
    registered = entrypoint.configurables()
    registered.trainer.train()
    registered.evaluator.evaluate()

  status = entrypoint.run_with_gin(flags, run, name="korani demo")
  if status == 0:
    with open(os.path.join(output, "results.md"), encoding="utf-8") as f:
      print(f.read())
    print(f"Wrote {output}/results.json and {output}/results.md "
          f"in {time.time() - start:.0f} s.")
  return status


if __name__ == "__main__":
  sys.exit(main())
