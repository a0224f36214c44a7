"""The `korani` command.

    korani demo  [--output DIR] [--gin.MACRO=value ...]   the main job (gin/demo.gin)
    korani train --gin_file=F [--gin.MACRO=value ...]     = python -m t5x_runs.train
    korani eval  --gin_file=F [--gin.MACRO=value ...]     = python -m t5x_runs.eval
    korani tasks [MIXTURE]                                list registered tasks
"""

import sys
from typing import Sequence

USAGE = __doc__.split("\n\n", 1)[1]


def _list_tasks(argv: Sequence[str]) -> int:
  import seqio  # pylint: disable=import-outside-toplevel
  from t5x_runs import entrypoint  # pylint: disable=import-outside-toplevel
  entrypoint.configurables()
  if argv:
    names = [t.name for t in seqio.get_subtasks(
        seqio.get_mixture_or_task(argv[0]))]
  else:
    names = sorted(seqio.TaskRegistry.names()) + sorted(
        seqio.MixtureRegistry.names())
  print("\n".join(names))
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(USAGE)
    return 0 if argv else 2
  command, rest = argv[0], argv[1:]
  if command == "demo":
    from t5x_runs import demo  # pylint: disable=import-outside-toplevel
    return demo.main(rest)
  if command == "train":
    from t5x_runs import train  # pylint: disable=import-outside-toplevel
    return train.main(rest)
  if command == "eval":
    from t5x_runs import eval as eval_main  # pylint: disable=import-outside-toplevel
    return eval_main.main(rest)
  if command == "tasks":
    return _list_tasks(rest)
  print(f"korani: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
  return 2


if __name__ == "__main__":
  sys.exit(main())
