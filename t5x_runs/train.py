"""Fine-tune mT5 the t5x way:

    python -m t5x_runs.train --gin_file=gin/demo.gin --gin.MODEL_DIR=/tmp/run

(also `korani train ...`). Flags: ``--gin_file`` (repeatable),
``--gin.MACRO=value``, ``--gin_bindings``, ``--gin_search_paths``; see
t5x_runs/gin_utils.py and the headers of the gin files for the macros.
"""

import sys
from typing import Sequence

from t5x_runs import entrypoint


def main(argv: Sequence[str] | None = None) -> int:
  return entrypoint.run_with_gin(
      argv, lambda: entrypoint.configurables().trainer.train(),
      name="t5x_runs.train")


if __name__ == "__main__":
  sys.exit(main())
