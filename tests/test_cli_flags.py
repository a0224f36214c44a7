"""One command line for every gin command (t5x_runs/flags.py)."""

import subprocess
import sys

import pytest

from korani_tasks import errors
from t5x_runs import batch_eval
from t5x_runs import cli
from t5x_runs import demo
from t5x_runs import entrypoint
from t5x_runs import flags
from t5x_runs import gin_utils

GIN_DIR = gin_utils.GIN_DIR
GIN_AND_HOSTS = [
    "--gin_file=runs/eval.gin", "--gin_file", "sizes/common.gin",
    "--gin.MODEL_DIR=/tmp/run", "--gin_bindings=SEED = 3",
    f"--gin_search_paths={GIN_DIR},{GIN_DIR / 'models'}",
    "--allow_absent_datasets",
    "--coordinator_address=10.0.0.2:1234", "--process_count=4",
    "--process_index=3", "--heartbeat_timeout_seconds=20",
    "--seqio_additional_cache_dirs=/data/c,gs://b/c"]


def _commands():
  """Each gin command's parser, as its main() builds it."""
  return {
      "t5x_runs.train": flags.parser(
          "t5x_runs.train", usage=entrypoint.usage("t5x_runs.train")),
      "korani eval-batch": batch_eval.command_parser("korani eval-batch"),
      "korani demo": demo.command_parser(),
  }


@pytest.mark.parametrize("name", ["t5x_runs.train", "korani eval-batch",
                                  "korani demo"])
def test_every_command_reads_the_same_gin_and_multihost_flags(name):
  args = flags.parse(_commands()[name], GIN_AND_HOSTS, intermixed=True)
  assert not isinstance(args, int)
  assert args.gin_files == ["runs/eval.gin", "sizes/common.gin"]
  assert args.gin_overrides == [
      ("macro", "MODEL_DIR=/tmp/run"), ("binding", "SEED = 3"),
      ("binding", "ALLOW_ABSENT_DATASETS = True")]
  assert args.gin_search_paths == [str(GIN_DIR), str(GIN_DIR / "models")]
  assert args.seqio_additional_cache_dirs == ["/data/c", "gs://b/c"]
  assert flags.distributed_settings(args) == {
      "coordinator_address": "10.0.0.2:1234", "process_count": 4,
      "process_index": 3, "heartbeat_timeout_seconds": 20}
  files, bindings = gin_utils.configuration(args)
  assert files == [str(GIN_DIR / "runs/eval.gin"),
                   str(GIN_DIR / "sizes/common.gin")]
  assert bindings == ["MODEL_DIR = '/tmp/run'", "SEED = 3",
                      "ALLOW_ABSENT_DATASETS = True"]


def test_plan_reads_the_gin_flags_and_refuses_multihost_ones(capsys):
  plan = cli._plan_parser()  # pylint: disable=protected-access
  args = flags.parse(plan, GIN_AND_HOSTS[:7] + ["--devices=8"])
  assert not isinstance(args, int)
  assert gin_utils.configuration(args)[1][0] == "MODEL_DIR = '/tmp/run'"
  assert flags.parse(plan, ["--devices=8", "--process_count=4"]) == 2
  assert "unrecognized arguments: --process_count=4" in capsys.readouterr().err


def test_batch_eval_flags_become_its_macros():
  args = batch_eval.command_args(
      ["/runs/a:20", "--mixture", "m1", "/runs/b", "--mixture=m2",
       "--output", "/out", "--max_examples_per_task=5",
       "--seqio_additional_cache_dirs=/data/c"])
  assert args.gin_files == [batch_eval.DEFAULT_GIN_FILE]
  assert args.seqio_additional_cache_dirs == ["/data/c"]
  assert gin_utils.configuration(args)[1] == [
      "CHECKPOINTS = ['/runs/a:20', '/runs/b']",
      "EVAL_MIXTURES = ['m1', 'm2']", "EVAL_OUTPUT_DIR = '/out'",
      "MAX_EXAMPLES_PER_TASK = 5"]


@pytest.mark.parametrize("argv, message", [
    (["--gin_file=x.gin", "--gin_fil=y.gin"],
     "unrecognized arguments: --gin_fil=y.gin"),
    (["--gin_file=x.gin", "--gin.MODEL_DIR"],
     "--gin.MODEL_DIR: expected --gin.MACRO=VALUE"),
    (["--gin_file=x.gin", "--process_count=four"],
     "--process_count: invalid int value: 'four'"),
    (["--gin_file=x.gin", "--seqio_additional_cache_dirs=,"],
     "--seqio_additional_cache_dirs: expected DIR[,DIR...]"),
    (["--max_examples_per_task=0"],
     "--max_examples_per_task: '0': expected a positive whole number"),
])
def test_a_wrong_flag_is_a_usage_error_naming_it(argv, message, capsys):
  assert batch_eval.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("usage: korani eval-batch") and message in err, err


@pytest.mark.parametrize("command", [
    ["train"], ["eval"], ["plan", "--devices=1", "--gin_file=gin/demo.gin"]])
def test_wrong_flags_fail_before_any_heavy_import(command):
  """A misspelt flag fails at once, importing no JAX/TF (`--help` likewise)."""
  code = (
      "import sys\n"
      "from t5x_runs import cli\n"
      f"rc = cli.main({command + ['--gin_fiel=x.gin']!r})\n"
      "heavy = [m for m in ('jax', 'tensorflow') if m in sys.modules]\n"
      "print(rc, heavy)\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300, check=True)
  assert result.stdout.strip() == "2 []", result.stderr
  assert "unrecognized arguments: --gin_fiel=x.gin" in result.stderr


def test_demo_refuses_a_wrong_flag_before_looking_for_data(tmp_path, capsys,
                                                          monkeypatch):
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path / "absent"))
  assert demo.main(["--output", str(tmp_path), "--proces_count=2"]) == 2
  err = capsys.readouterr().err
  assert err.startswith("usage: korani demo [--output DIR]")
  assert "unrecognized arguments: --proces_count=2" in err
  assert not list(tmp_path.iterdir())


def test_tasks_and_tasks_list_are_one_command(capsys):
  assert cli.main(["tasks", "korani_kobest_train"]) == 0
  shorthand = capsys.readouterr().out
  assert cli.main(["tasks", "list", "--mixture", "korani_kobest_train"]) == 0
  assert capsys.readouterr().out == shorthand
  assert cli.main(["tasks", "list", "--mixtures"]) == 0
  mixtures = capsys.readouterr().out.split()
  assert "korani_kobest_train" in mixtures
  assert "korani_kobest_sentineg_ko_review_sentiment" not in mixtures
  assert cli.main(["tasks", "nope_mixture"]) == 2
  assert "unknown mixture 'nope_mixture'" in capsys.readouterr().err


def test_configuration_errors_name_the_flag():
  args = flags.parse(flags.parser("t"), ["--gin.X={'a': 1"])
  with pytest.raises(errors.ConfigError, match=r"--gin.X=\{'a': 1"):
    gin_utils.configuration(args)
