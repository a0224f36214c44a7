"""The `korani` command and the t5x-style entry points, as a user runs them."""

import json
import os
import subprocess
import sys

import pytest


def _run(args, env_update=None, timeout=900):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env.update(env_update or {})
  return subprocess.run([sys.executable, "-m", "t5x_runs.cli", *args], env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_usage():
  result = _run(["--help"])
  assert result.returncode == 0
  assert "korani demo" in result.stdout and "korani train" in result.stdout


@pytest.mark.parametrize("command", ["train", "eval"])
def test_gin_commands_print_usage(command):
  result = _run([command, "--help"])
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f"usage: t5x_runs.{command} --gin_file=F")


def test_demo_help_needs_no_data(tmp_path):
  result = _run(["demo", "--help"], {"KORANI_DATA_DIR": str(tmp_path / "x")})
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("usage: korani demo [--output DIR]")


def test_demo_without_data_offline_lists_the_files_and_mirror(tmp_path):
  # Offline: the download server (a closed loopback port) does not answer.
  result = _run(["demo", "--output", str(tmp_path / "out")],
                {"KORANI_DATA_DIR": str(tmp_path / "nowhere"),
                 "KORANI_DOWNLOAD_MIRROR": "http://127.0.0.1:9"})
  assert result.returncode == 2, result.stderr
  assert f"KORANI_DATA_DIR={tmp_path / 'nowhere'} lacks" in result.stderr
  assert "cannot be reached" in result.stderr
  assert "  kobest/BoolQ/train.tsv\n" in result.stderr
  assert "  kobest/WiC/dev.tsv\n" in result.stderr
  assert "korani data download kobest_boolq kobest_copa" in result.stderr
  assert "--mirror URL" in result.stderr
  assert not list(tmp_path.iterdir())


def test_train_with_a_wrong_gin_value_names_it(tmp_path):
  result = _run(["train", "--gin_file=gin/demo.gin",
                 f"--gin.MODEL_DIR={tmp_path}", "--gin.BATCH_SIZE=0",
                 "--gin.VOCABULARY=None"])
  assert result.returncode == 2
  assert "batch_size" in result.stderr and "must be positive" in result.stderr
  result = _run(["train", "--gin_file=gin/demo.gin"])
  assert result.returncode == 2 and "MODEL_DIR" in result.stderr


def test_tasks_lists_a_mixture():
  result = _run(["tasks", "korani_kobest_train"])
  assert result.returncode == 0
  assert "korani_kobest_sentineg_ko_review_sentiment" in result.stdout.split()


@pytest.mark.slow
def test_demo_end_to_end(raw_data_dir, session_vocab, tmp_path):
  """The main job with fewer steps and one held-out task, as a subprocess."""
  result = _run(["demo", "--output", str(tmp_path), "--gin.TRAIN_STEPS=20",
                 "--gin.CHECKPOINT_PERIOD=10", f"--gin.VOCABULARY={session_vocab}",
                 "--gin.EVAL_MIXTURE_OR_TASK_NAME="
                 "korani_kobest_copa_en_best_option_score_eval"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "## Per cluster: average of dataset medians" in result.stdout
  rows = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
  assert {r["metric"] for r in rows} == {"accuracy", "length_normalized_accuracy"}
  assert rows[0]["num_examples"] == 500 and rows[0]["checkpoint_step"] == 20
  assert (tmp_path / "results.md").is_file()
  assert sorted(p.name for p in (tmp_path / "model" / "checkpoints").iterdir()
                if p.name.isdigit()) == ["10", "20"]
