"""Score every `_score_eval` task of a mixture with a checkpoint:

    python -m t5x_runs.eval --gin_file=gin/runs/eval.gin \
        --gin.MODEL_DIR=/tmp/run \
        --gin.EVAL_MIXTURE_OR_TASK_NAME=korani_kobest_heldout_score_eval

(also `korani eval ...`). Writes results.json and results.md to
EVAL_OUTPUT_DIR (default: MODEL_DIR/eval).
"""

import sys
from typing import Sequence

from t5x_runs import entrypoint


def main(argv: Sequence[str] | None = None) -> int:
  return entrypoint.run_with_gin(
      argv, lambda: entrypoint.configurables().evaluator.evaluate(),
      name="t5x_runs.eval")


if __name__ == "__main__":
  sys.exit(main())
