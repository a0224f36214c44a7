"""The `korani` command.

    korani demo  [--output DIR] [--gin.MACRO=value ...]   the main job (gin/demo.gin)
    korani train --gin_file=F [--gin.MACRO=value ...]     = python -m t5x_runs.train
    korani eval  --gin_file=F [--gin.MACRO=value ...]     = python -m t5x_runs.eval
    korani eval-batch DIR[:STEP]... --mixture M --output OUT
                                                          checkpoints x mixtures, resumable
                                                          (= python -m t5x_runs.batch_eval)
    korani data list [NAMES...] [--no-counts]             datasets, splits, row counts
    korani data download [NAMES...] [--mirror URL] [--force] [--prepare]
                                                          fetch public source files
    korani data verify [NAMES...]                         check files' sha256
    korani tasks list [--mixture M] [--dataset D] [-l]    list KORANI tasks
                 (= korani tasks [M]), or --mixtures      ... or the mixtures
    korani tasks show TASK [-n 3] [--split S]             render examples of a task
    korani compare SETTING=EVAL_DIR ... [--output DIR]    one column per training
                                                          setting (comparison.md)
    korani report RUN_DIR... [--name NAME ...] [--baseline RUN_DIR] --output DIR
                                                          the paper's tables with
                                                          gains over a baseline
                                                          (report.md/.csv) and
                                                          bar charts (plots/)
    korani checkpoint export-hf MODEL_DIR --output DIR [--step N]
                                                          a run's checkpoint as a
                                                          Hugging Face mT5 folder
    korani checkpoint export-t5x MODEL_DIR --output DIR [--step N] [--dtype D]
                                                          ... as a t5x checkpoint
                                                          (msgpack + TensorStore)
    korani checkpoint verify MODEL_DIR [--step N] [--hash]
                                                          check a run's checkpoints
                                                          against their manifests
    korani plan --gin_file=F [--gin.MACRO=value ...] --devices=N [--device_memory=GiB]
                [--devices_per_host=K | --tpu_topology=XxYxZ]
                                                          per-device memory of the
                                                          run's training step
    korani p3 fetch-templates [--dest DIR] [--sdist FILE]
                                                          promptsource 0.2.3's
                                                          templates for the P3
                                                          tasks, from the package
                                                          index (wheel installs)

demo, train, eval, eval-batch and plan read the same gin flags (--gin_file,
--gin.MACRO=value, --gin_bindings, --gin_search_paths) and, except plan,
t5x's multi-host flags; `korani train --help` lists them (t5x_runs/flags.py).
The data commands read $KORANI_DATA_DIR (or --data-dir DIR); `data download`
with no names fetches every public raw dataset, checking each file's sha256
against korani_tasks/catalog.yaml. Errors a user can fix exit with status 2
(unknown names, missing data), failed downloads and checks with status 1.
"""

# Subcommands import what they need when they run: `korani --help` and
# argument errors do not pay for importing TensorFlow and JAX.
# pylint: disable=import-outside-toplevel

import argparse
import contextlib
import os
import pathlib
import sys
import textwrap
from typing import Callable, Sequence

USAGE = __doc__.split("\n\n", 1)[1]

EXIT_FAILED = 1
EXIT_USAGE = 2  # As t5x_runs.entrypoint.EXIT_USAGE.


def _guard(name: str, run: Callable[[], int]) -> int:
  """Runs a subcommand; a KoraniError becomes one message and an exit code."""
  from korani_tasks import download
  from korani_tasks import errors
  try:
    return run()
  except download.DownloadError as e:
    print(f"{name}: error: {e}\n{download.MIRROR_HELP}", file=sys.stderr)
    return EXIT_FAILED
  except errors.KoraniError as e:
    print(f"{name}: error: {e}", file=sys.stderr)
    return EXIT_USAGE


def _parse(parser: argparse.ArgumentParser,
           argv: Sequence[str]) -> argparse.Namespace | int:
  """Parsed arguments, or the exit code (argparse exits on errors and -h)."""
  try:
    return parser.parse_args(argv)
  except SystemExit as e:
    return e.code if isinstance(e.code, int) else EXIT_USAGE


# -- korani data ---------------------------------------------------------------


def _data_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korani data",
      description="The raw KORANI source files under $KORANI_DATA_DIR.")
  commands = parser.add_subparsers(dest="command", required=True)
  data_dir = argparse.ArgumentParser(add_help=False)
  data_dir.add_argument(
      "--data-dir", type=pathlib.Path, default=None,
      help="the raw data folder (default: $KORANI_DATA_DIR)")
  listing = commands.add_parser(
      "list", parents=[data_dir],
      help="every catalog dataset: present splits and row counts")
  listing.add_argument("names", nargs="*", metavar="NAME",
                       help="dataset keys (default: all)")
  listing.add_argument("--no-counts", action="store_true",
                       help="do not read the files to count rows")
  fetch = commands.add_parser(
      "download", parents=[data_dir],
      help="download public source files, checking their sha256")
  fetch.add_argument("names", nargs="*", metavar="NAME",
                     help="dataset keys (default: every public raw dataset)")
  fetch.add_argument(
      "--mirror", default=None,
      help="base URL (or local folder) replacing the canonical locations: "
      "file URL <mirror>/<catalog path> (default: $KORANI_DOWNLOAD_MIRROR)")
  fetch.add_argument("--force", action="store_true",
                     help="download again files that are already present")
  fetch.add_argument("--prepare", action="store_true",
                     help="then prepare each dataset's TFDS builder")
  fetch.add_argument("--quiet", action="store_true",
                     help="no progress bars")
  check = commands.add_parser(
      "verify", parents=[data_dir],
      help="compare the files with the catalog's sha256 (exit 1 when a file "
      "is missing or differs)")
  check.add_argument("names", nargs="*", metavar="NAME",
                     help="dataset keys (default: all)")
  return parser


def _data_dir(args: argparse.Namespace, create: bool = False) -> pathlib.Path:
  """--data-dir, else $KORANI_DATA_DIR; `create` makes a missing folder."""
  from korani_tasks import errors, paths
  if args.data_dir is None and create and os.environ.get(paths.DATA_DIR_ENV):
    args.data_dir = pathlib.Path(os.environ[paths.DATA_DIR_ENV])
  if args.data_dir is None:
    try:
      return paths.data_dir()
    except errors.MissingDataError as e:
      raise errors.MissingDataError(f"{e}\nOr pass --data-dir DIR.") from e
  path = args.data_dir.expanduser()
  if create:
    path.mkdir(parents=True, exist_ok=True)
  elif not path.is_dir():
    raise errors.MissingDataError(
        f"--data-dir {path} is not a folder.\n"
        + paths.MISSING_DATA_HELP.format(env=paths.DATA_DIR_ENV))
  return path


def _data_list(args: argparse.Namespace) -> int:
  from korani_tasks import data_status, paths
  data_dir = (_data_dir(args) if args.data_dir is not None
              else paths.data_dir(required=False))
  rows = data_status.list_datasets(data_dir, args.names,
                                   counts=not args.no_counts)
  print("raw data: "
        + str(data_dir or "(none: $KORANI_DATA_DIR is unset or not a folder)"))
  print(f"release:  {paths.release_dir(required=False) or '(not found)'}\n")
  print(data_status.format_table(rows))
  for warning in data_status.release_warnings():
    print(f"WARNING: {warning}", file=sys.stderr)
  return 0


def _data_download(args: argparse.Namespace) -> int:
  from korani_tasks import download
  download.resolve(args.names)  # Unknown or release-only names: no folder.
  data_dir = _data_dir(args, create=True)
  results = download.download(
      args.names, data_dir, mirror=args.mirror, force=args.force,
      progress=not args.quiet,
      on_result=lambda r: print(r.describe(), flush=True))
  unverified = [r for r in results if not r.verified]
  fetched = sum(r.status == download.DOWNLOADED for r in results)
  print(f"{fetched} downloaded, {len(results) - fetched} already present, in "
        f"{data_dir}")
  if unverified:
    print(f"{len(unverified)} file(s) UNVERIFIED: the catalog records no "
          "sha256 for them; check them and record the sha256 and size shown "
          "above in korani_tasks/catalog.yaml.")
  if args.prepare:
    names = list(dict.fromkeys(r.dataset for r in results))
    download.prepare(names, data_dir)
  return 0


def _data_verify(args: argparse.Namespace) -> int:
  from korani_tasks import catalog, data_status
  data_dir = _data_dir(args)
  statuses = data_status.verify(args.names, data_dir)
  for status in statuses:
    print(status.describe())
  for name in dict.fromkeys(args.names):
    if not catalog.get(name).files:
      print(f"{name}: a release dataset, no source files to verify")
  counts = {s: sum(x.status == s for x in statuses)
            for s in (data_status.OK, data_status.UNVERIFIED,
                      data_status.MISSING, data_status.MISMATCH)}
  print(", ".join(f"{n} {s}" for s, n in counts.items()) + f" in {data_dir}")
  failed = [s for s in statuses if s.failed]
  if failed:
    print(f"korani data verify: {len(failed)} file(s) missing or different "
          "from the catalog; `korani data download NAME` fetches missing "
          "ones, `--force` replaces different ones", file=sys.stderr)
    return EXIT_FAILED
  return 0


def _data(argv: Sequence[str]) -> int:
  args = _parse(_data_parser(), argv)
  if isinstance(args, int):
    return args
  run = {"list": _data_list, "download": _data_download,
         "verify": _data_verify}[args.command]
  return _guard(f"korani data {args.command}", lambda: run(args))


# -- korani tasks --------------------------------------------------------------


def _tasks_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korani tasks", description="The registered KORANI SeqIO tasks.")
  commands = parser.add_subparsers(dest="command", required=True)
  listing = commands.add_parser(
      "list", help="task names, or a table (--long); also `korani tasks "
      "[MIXTURE]`")
  listing.add_argument("--mixture",
                       help="only the tasks of this mixture (or task)")
  listing.add_argument("--mixtures", action="store_true",
                       help="the registered mixtures' names instead")
  listing.add_argument("--dataset", help="only the tasks of this dataset key")
  listing.add_argument(
      "--long", "-l", action="store_true",
      help="a table: task, dataset, cluster, template, lang, kind, source")
  show = commands.add_parser(
      "show", help="render examples of a task (no tokenization)")
  show.add_argument("task")
  show.add_argument("-n", type=int, default=3,
                    help="number of examples (default 3)")
  show.add_argument("--split", default=None,
                    help="split (default: validation if the task has one)")
  return parser


def _register_tasks() -> None:
  import mixtures  # pylint: disable=unused-import


def _unknown(kind: str, name: str, known: Sequence[str]) -> Exception:
  import difflib
  from korani_tasks import errors
  close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
  hint = f"; did you mean {', '.join(close)}?" if close else ""
  return errors.ConfigError(
      f"unknown {kind} {name!r}{hint} (`korani tasks list` lists tasks, "
      "`korani tasks list --mixtures` mixtures)")


def _task_names(mixture: str | None, dataset: str | None) -> list[str]:
  import seqio
  from korani_tasks import tasks
  _register_tasks()
  infos = tasks.all_task_infos()
  if mixture:
    if mixture not in seqio.MixtureRegistry.names() and (
        mixture not in seqio.TaskRegistry.names()):
      raise _unknown("mixture", mixture, sorted(seqio.MixtureRegistry.names()))
    names = sorted(t.name for t in seqio.get_subtasks(
        seqio.get_mixture_or_task(mixture)))
  else:
    names = sorted(infos)
  if dataset:
    known = sorted({info.dataset for info in infos.values()})
    if dataset not in known:  # A KORANI key or a P3 evaluation set.
      raise _unknown("dataset", dataset, known)
    names = [n for n in names if n in infos and infos[n].dataset == dataset]
  return names


def _tasks_list(args: argparse.Namespace) -> int:
  import seqio
  from korani_tasks import tasks
  if args.mixtures:
    _register_tasks()
    print("\n".join(sorted(seqio.MixtureRegistry.names())))
    return 0
  names = _task_names(args.mixture, args.dataset)
  if not args.long:
    if names:
      print("\n".join(names))
  else:
    infos = tasks.all_task_infos()
    headers = ("task", "dataset", "cluster", "template", "lang", "kind",
               "source")
    cells = [headers]
    for name in names:
      info = infos.get(name)
      cells.append(
          (name, info.dataset, info.cluster, info.template_id,
           info.template_lang, info.kind, info.source) if info
          else (name,) + ("—",) * (len(headers) - 1))
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    for i, cell in enumerate(cells):
      print("  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip())
      if i == 0:
        print("  ".join("-" * w for w in widths))
  if not names:
    print("korani tasks list: no task matches", file=sys.stderr)
  return 0


def render_examples(task_name: str, n: int = 3,
                    split: str | None = None) -> tuple[str, list[dict]]:
  """The first `n` examples of a task's split, rendered but not tokenized.

  Reads the task's source and applies its first preprocessor (the template
  render), so no vocabulary is needed. Returns (split, examples), each
  example a dict with ``inputs``, ``targets``, ``answer_choices`` and
  ``answer_index`` (as `korani_tasks.preprocessors.apply_prompt_template`).
  """
  import seqio
  from korani_tasks import errors, preprocessors
  _register_tasks()
  if task_name not in seqio.TaskRegistry.names():
    kind = ("mixture" if task_name in seqio.MixtureRegistry.names()
            else "task")
    if kind == "mixture":
      raise errors.ConfigError(
          f"{task_name!r} is a mixture, not a task; its tasks: "
          f"`korani tasks list --mixture {task_name}`")
    raise _unknown(kind, task_name, sorted(seqio.TaskRegistry.names()))
  if n < 1:
    raise errors.ConfigError(f"-n must be positive, got {n}")
  task = seqio.get_mixture_or_task(task_name)
  splits = list(task.source.splits)
  if split is None:
    split = "validation" if "validation" in splits else splits[0]
  elif split not in splits:
    raise errors.ConfigError(
        f"{task_name} has no split {split!r}; splits: {splits}")
  # Preparing the TFDS dataset on first use prints to stdout: keep stdout for
  # the examples.
  with contextlib.redirect_stdout(sys.stderr):
    dataset = task.source.get_dataset(split=split, shuffle=False)
  render = task.preprocessors[0]
  examples = [preprocessors.decode_record(ex) for ex in
              render(dataset.take(n)).as_numpy_iterator()]
  return split, examples


def _indent(text: str, prefix: str = "    ") -> str:
  return textwrap.indent(text, prefix, lambda _: True)


def _tasks_show(args: argparse.Namespace) -> int:
  from korani_tasks import tasks
  split, examples = render_examples(args.task, args.n, args.split)
  info = tasks.all_task_infos().get(args.task)
  about = (f" ({info.dataset}, template {info.template_id}, "
           f"{info.template_lang}, {info.kind})" if info else "")
  print(f"{args.task}{about}: {len(examples)} example(s) of {split}")
  for i, ex in enumerate(examples, 1):
    print(f"\n=== example {i} ===")
    print("inputs:")
    print(_indent(str(ex.get("inputs", ""))))
    choices = ex.get("answer_choices") or []
    if choices:
      print("answer choices:")
      answer = ex.get("answer_index", -1)
      for j, choice in enumerate(choices):
        mark = "  <- target" if j == answer else ""
        print(_indent(f"[{j}] {choice}{mark}"))
    print("targets:")
    print(_indent(str(ex.get("targets", ""))))
  return 0


def _tasks(argv: Sequence[str]) -> int:
  argv = list(argv)
  if not argv or argv[0] not in ("list", "show", "-h", "--help"):
    # `korani tasks [MIXTURE] [flags]` is `korani tasks list [--mixture M]`.
    named = argv[:1] if argv and not argv[0].startswith("-") else []
    argv = ["list"] + (["--mixture"] + named if named else []) + argv[
        len(named):]
  args = _parse(_tasks_parser(), argv)
  if isinstance(args, int):
    return args
  run = {"list": _tasks_list, "show": _tasks_show}[args.command]
  return _guard(f"korani tasks {args.command}", lambda: run(args))


# -- korani compare ------------------------------------------------------------


def _compare_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korani compare",
      description="Tables of held-out accuracy with one column per training "
      "setting, from each setting's results.json (see t5x_runs/compare.py).")
  parser.add_argument("runs", nargs="+", metavar="SETTING=EVAL_DIR",
                      help="a column name and the folder of its results.json")
  parser.add_argument("--output", default="comparison",
                      help="where comparison.md/.json go (default: %(default)s)")
  parser.add_argument(
      "--metric", default=None,
      help="the metric of every dataset (default: each dataset's main "
      "metric: accuracy, ROUGE-L for generation datasets, as `korani report`)")
  parser.add_argument("--title", default="")
  return parser


def _compare(argv: Sequence[str]) -> int:
  args = _parse(_compare_parser(), argv)
  if isinstance(args, int):
    return args

  def run() -> int:
    from korani_tasks import errors
    from t5x_runs import compare
    runs = {}
    for item in args.runs:
      setting, sep, folder = item.partition("=")
      if not sep or not setting or not folder:
        raise errors.ConfigError(
            f"{item!r}: expected SETTING=EVAL_DIR, e.g. ko_to_en=runs/a/eval")
      if setting in runs:
        raise errors.ConfigError(f"setting {setting!r} given twice")
      runs[setting] = folder
    print(compare.compare(runs, args.output, args.metric, args.title), end="")
    print(f"Wrote {os.path.join(args.output, compare.COMPARISON_MD)}",
          file=sys.stderr)
    return 0
  return _guard("korani compare", run)


# -- korani report -------------------------------------------------------------


def _report_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korani report",
      description="Held-out results of several runs side by side, in the "
      "layout of the paper's tables (rows: datasets by cluster, cluster "
      "averages, overall average; columns: runs), with the relative gain "
      "over a baseline: report.md, report.csv and a bar chart per cluster "
      "plus plots/overview.png (see t5x_runs/report.py).")
  parser.add_argument(
      "runs", nargs="+", metavar="RUN_DIR",
      help="a folder holding results.json (the output of `korani eval` or a "
      "batch-evaluation checkpoint folder); one column each, in this order")
  parser.add_argument(
      "--name", action="append", default=None, metavar="NAME",
      help="a column name per RUN_DIR, in order (repeat the flag; default: "
      "the folder names)")
  parser.add_argument(
      "--baseline", default=None, metavar="RUN_DIR",
      help="the run the gains are relative to (one of the RUN_DIRs or "
      "another folder); it becomes the first column")
  parser.add_argument("--baseline-name", default=None, metavar="NAME",
                      help="the baseline's column name (default: its folder "
                      "name)")
  parser.add_argument(
      "--metric", default=None,
      help="the metric of every dataset (default: each dataset's main "
      "metric: accuracy, ROUGE-L for generation datasets)")
  parser.add_argument("--output", required=True, metavar="DIR",
                      help="where report.md, report.csv and plots/ go")
  parser.add_argument("--title", default="")
  return parser


def _report(argv: Sequence[str]) -> int:
  args = _parse(_report_parser(), argv)
  if isinstance(args, int):
    return args

  def run() -> int:
    import tensorflow as tf
    from t5x_runs import report
    _, written = report.report(
        args.runs, args.output, names=args.name, baseline=args.baseline,
        baseline_name=args.baseline_name, metric=args.metric,
        title=args.title)
    with tf.io.gfile.GFile(written[report.REPORT_MD]) as f:
      print(f.read(), end="")
    print("Wrote " + ", ".join(written.values()), file=sys.stderr)
    return 0
  return _guard("korani report", run)


# -- korani checkpoint ---------------------------------------------------------


def _checkpoint_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korani checkpoint",
      description="Checkpoints of training runs: in other formats (see "
      "t5x_runs/exchange/), and checked against their manifests.")
  commands = parser.add_subparsers(dest="command", required=True)
  export = commands.add_parser(
      "export-hf",
      help="write a run's parameters as a Hugging Face mT5 folder "
      "(config.json, model.safetensors, spiece.model) that "
      "transformers.MT5ForConditionalGeneration.from_pretrained loads")
  export.add_argument("model_dir", metavar="MODEL_DIR",
                      help="the model dir of a training run")
  export.add_argument("--output", required=True, metavar="DIR",
                      help="the folder to create (must not exist or be empty)")
  export.add_argument("--step", type=int, default=None,
                      help="the checkpoint step (default: the latest)")
  t5x = commands.add_parser(
      "export-t5x",
      help="write a run's parameters as a t5x checkpoint folder "
      "(DIR/checkpoint_<step>: msgpack + one TensorStore array per parameter) "
      "for upstream t5x (gin/t5x/)")
  t5x.add_argument("model_dir", metavar="MODEL_DIR",
                   help="the model dir of a training run")
  t5x.add_argument("--output", required=True, metavar="DIR",
                   help="the t5x model or checkpoints folder to write into")
  t5x.add_argument("--step", type=int, default=None,
                   help="the checkpoint step (default: the latest)")
  t5x.add_argument("--dtype", choices=("float32", "bfloat16"),
                   default="float32", help="stored dtype (default float32)")
  verify = commands.add_parser(
      "verify",
      help="check a run's checkpoints against their manifest.json: file "
      "sizes and the small files' sha256 (as a resumed run does), with "
      "--hash every sha256; exit status 1 if one is damaged")
  verify.add_argument("model_dir", metavar="MODEL_DIR",
                      help="the model dir of a training run")
  verify.add_argument("--step", type=int, default=None,
                      help="only this step (default: every step)")
  verify.add_argument("--hash", action="store_true",
                      help="check every file's sha256 (reads the whole step)")
  return parser


def _restore_run(model_dir: str, step: int | None):
  """(params, model config, step) of a training run's checkpoint."""
  from t5x_runs import evaluator, partitioning, trainer
  config = trainer.load_model_config(model_dir)
  params, step = evaluator.restore_params(
      model_dir, config, partitioning.make_mesh(1), step)
  return params, config, step


def _checkpoint_export_hf(args: argparse.Namespace) -> int:
  import tensorflow as tf
  from t5x_runs import trainer
  from t5x_runs.exchange import hf_mt5
  params, config, step = _restore_run(args.model_dir, args.step)
  extra = {}
  vocabulary = os.path.join(args.model_dir, trainer.VOCAB_FILE)
  if tf.io.gfile.exists(vocabulary):  # MT5Tokenizer's file name.
    with tf.io.gfile.GFile(vocabulary, "rb") as f:
      extra["spiece.model"] = f.read()
  written = hf_mt5.export_hf_checkpoint(params, config, args.output, extra)
  print(f"Exported step {step} of {args.model_dir} to {args.output}:")
  for path in written:
    print(f"  {path}")
  if not extra:
    print(f"  (no {vocabulary}: no spiece.model written)")
  return 0


def _checkpoint_export_t5x(args: argparse.Namespace) -> int:
  from t5x_runs.exchange import t5x_checkpoint
  params, _, step = _restore_run(args.model_dir, args.step)
  written = t5x_checkpoint.save_t5x_checkpoint(params, args.output, step,
                                               args.dtype)
  print(f"Exported step {step} of {args.model_dir} to {written}")
  return 0


def _checkpoint_verify(args: argparse.Namespace) -> int:
  import tensorflow as tf
  from korani_tasks import errors
  from t5x_runs import checkpoints
  store = checkpoints.CheckpointStore(args.model_dir, read_only=True)
  try:
    steps = store.all_steps()
    if args.step is not None:
      if args.step not in steps:
        raise errors.MissingDataError(
            f"no checkpoint for step {args.step} in {store.directory} "
            f"(steps: {steps})")
      steps = [args.step]
    damaged = 0
    for step in steps:
      step_dir = store.step_dir(step)
      if not tf.io.gfile.exists(os.path.join(step_dir, checkpoints.MANIFEST)):
        print(f"step {step}: no {checkpoints.MANIFEST} (checked by restoring "
              "it when a run resumes)")
        continue
      problem = checkpoints.check_manifest(step_dir, args.hash)
      damaged += problem is not None
      checked = ("every sha256" if args.hash
                 else "sizes, sha256 of the files up to 1 MiB")
      print(f"step {step}: {problem or 'ok (' + checked + ')'}")
  finally:
    store.close()
  return EXIT_FAILED if damaged else 0


def _checkpoint(argv: Sequence[str]) -> int:
  args = _parse(_checkpoint_parser(), argv)
  if isinstance(args, int):
    return args
  run = {"export-hf": _checkpoint_export_hf,
         "export-t5x": _checkpoint_export_t5x,
         "verify": _checkpoint_verify}[args.command]
  return _guard(f"korani checkpoint {args.command}", lambda: run(args))


# -- korani plan ---------------------------------------------------------------

def _plan_parser() -> argparse.ArgumentParser:
  from t5x_runs import flags
  parser = flags.parser(
      "korani plan", distributed=False,
      usage="korani plan --gin_file=F [--gin.MACRO=value ...] --devices=N "
      "[--device_memory=GiB] [--headroom=0.1]\n"
      "                   [--devices_per_host=K | --tpu_topology=XxYxZ]",
      description="Per-device memory of a training run's parameters, "
      "optimizer state, gradients and activations at the configured batch, "
      "lengths and NUM_PARTITIONS, and whether it fits (see "
      "t5x_runs/planner.py). Gin flags as for `korani train`.")
  parser.add_argument("--devices", type=int, required=True,
                      help="number of devices (TPU chips, GPUs)")
  parser.add_argument("--device_memory", type=float, default=None,
                      metavar="GiB", help="memory of one device in GiB")
  parser.add_argument(
      "--devices_per_host", type=int, default=None,
      help="devices per host (process): also report which processes read "
      "which data shard")
  parser.add_argument(
      "--tpu_topology", default=None, metavar="XxYxZ",
      help="a TPU v4 slice of XxYxZ chips (4 per host), laid out as the "
      "trainer lays out TPU chips: also report the data shards")
  parser.add_argument(
      "--headroom", type=float, default=0.1,
      help="fraction of the device memory left for XLA's temporaries "
      "(default: %(default)s)")
  return parser


def _plan(argv: Sequence[str]) -> int:
  from t5x_runs import flags
  parser = _plan_parser()
  args = flags.parse(parser, argv)
  if isinstance(args, int):
    return args
  if not args.gin_files:
    parser.print_usage(sys.stderr)
    print("korani plan: error: give at least one --gin_file", file=sys.stderr)
    return EXIT_USAGE

  def run() -> int:
    from korani_tasks import errors
    from t5x_runs import gin_utils
    from t5x_runs import planner
    files, bindings = gin_utils.configuration(args)
    if args.devices < 1:
      raise errors.ConfigError(f"--devices must be positive, got {args.devices}")
    if args.device_memory is not None and args.device_memory <= 0:
      raise errors.ConfigError(
          f"--device_memory must be positive, got {args.device_memory}")
    devices = None
    if args.devices_per_host is not None or args.tpu_topology is not None:
      devices = planner.planned_devices(args.devices, args.devices_per_host,
                                        args.tpu_topology)
    plan = planner.plan_from_gin(files, bindings, num_devices=args.devices,
                                 device_memory_gib=args.device_memory,
                                 headroom=args.headroom, devices=devices)
    print(planner.format_plan(plan))
    return 0
  return _guard("korani plan", run)


# -- korani p3 -----------------------------------------------------------------


def _p3_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korani p3", description="The P3 (promptsource) side.")
  commands = parser.add_subparsers(dest="command", required=True)
  fetch = commands.add_parser(
      "fetch-templates",
      help="download the promptsource 0.2.3 sdist from the package index "
      "(pip download) and keep only its templates, where the P3 tasks find "
      "them (see korani_tasks/p3/fetch_templates.py)")
  fetch.add_argument(
      "--dest", type=pathlib.Path, default=None,
      help="the templates folder to (re)create (default: "
      "$KORANI_CACHE_DIR/promptsource-0.2.3/templates; elsewhere, point "
      "PROMPTSOURCE_TEMPLATES_DIR at it)")
  fetch.add_argument(
      "--sdist", type=pathlib.Path, default=None, metavar="FILE",
      help="a promptsource-0.2.3.tar.gz already downloaded (no network)")
  return parser


def _p3(argv: Sequence[str]) -> int:
  args = _parse(_p3_parser(), argv)
  if isinstance(args, int):
    return args

  def run() -> int:
    from korani_tasks.p3 import fetch_templates
    dest, count = fetch_templates.fetch(args.dest, args.sdist)
    print(f"{count} promptsource {fetch_templates.VERSION} template files in "
          f"{dest}")
    if args.dest is not None and dest != fetch_templates.default_dir():
      print(f"export PROMPTSOURCE_TEMPLATES_DIR={dest.resolve()}")
    return 0
  return _guard(f"korani p3 {args.command}", run)


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(USAGE)
    return 0 if argv else 2
  command, rest = argv[0], argv[1:]
  if command == "demo":
    from t5x_runs import demo
    return demo.main(rest)
  if command == "train":
    from t5x_runs import train
    return train.main(rest)
  if command == "eval":
    from t5x_runs import eval as eval_main
    return eval_main.main(rest)
  if command == "eval-batch":
    from t5x_runs import batch_eval
    return batch_eval.main(rest, name="korani eval-batch")
  if command == "data":
    return _data(rest)
  if command == "tasks":
    return _tasks(rest)
  if command == "compare":
    return _compare(rest)
  if command == "report":
    return _report(rest)
  if command == "checkpoint":
    return _checkpoint(rest)
  if command == "plan":
    return _plan(rest)
  if command == "p3":
    return _p3(rest)
  print(f"korani: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
  return 2


if __name__ == "__main__":
  sys.exit(main())
