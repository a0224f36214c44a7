"""Comparison tables across training settings (t5x_runs/compare.py)."""

import json

import pytest

from korani_tasks import errors
from t5x_runs import cli
from t5x_runs import compare
from t5x_runs import results


def _row(dataset, cluster, template, lang, value, data_lang="en"):
  return results.ResultRow(
      task=f"t_{dataset}_{lang}_{template}", dataset=dataset, cluster=cluster,
      template=template, template_lang=lang, data_lang=data_lang,
      metric="accuracy", value=value, num_examples=10, num_truncated=0,
      split="validation", checkpoint_step=5)


def _run(offset):
  return [_row("rte", "nli", "a", "en", 50 + offset),
          _row("rte", "nli", "b", "en", 60 + offset),
          _row("rte", "nli", "c", "en", 70 + offset),
          _row("cb", "nli", "a", "en", 40 + offset),
          _row("copa", "sentence_completion", "a", "ko", 55 + offset),
          _row("copa", "sentence_completion", "b", "ko", 65 + offset)]


def test_medians_and_cluster_averages_per_setting():
  summary = compare.summarize({"ko_to_en": _run(0), "en_to_en": _run(10)})
  assert summary["datasets"]["en/nli/rte/en"] == {"ko_to_en": 60,
                                                  "en_to_en": 70}
  assert summary["templates"]["en/nli/rte/en"]["ko_to_en"] == 3
  # Cluster: average of the dataset medians (rte 60, cb 40).
  assert summary["clusters"]["en/nli/en"]["ko_to_en"] == 50
  assert summary["clusters"]["en/sentence_completion/ko"]["en_to_en"] == 70
  assert summary["languages"]["en/en"] == {"ko_to_en": 50, "en_to_en": 60}
  table = compare.format_comparison(summary)
  assert "| data | cluster | dataset | templates | # | ko_to_en | en_to_en |" in (
      table)
  assert "| en | nli | rte | en | 3 | 60.0 | 70.0 |" in table


def test_compare_command_writes_files(tmp_path, capsys):
  for name, offset in (("a", 0), ("b", 5)):
    results.write_results(_run(offset), str(tmp_path / name))
  code = cli.main(["compare", f"ko={tmp_path / 'a'}", f"en={tmp_path / 'b'}",
                   "--output", str(tmp_path / "out")])
  assert code == 0
  assert "| en | nli | en | 50.0 | 55.0 |" in capsys.readouterr().out
  written = json.loads((tmp_path / "out" / compare.COMPARISON_JSON).read_text())
  assert written["settings"] == ["ko", "en"]
  assert (tmp_path / "out" / compare.COMPARISON_MD).is_file()


def test_bad_arguments_are_named(tmp_path, capsys):
  assert cli.main(["compare", "no_equals_sign"]) == 2
  assert "expected SETTING=EVAL_DIR" in capsys.readouterr().err
  assert cli.main(["compare", f"x={tmp_path}"]) == 2
  assert "results.json does not exist" in capsys.readouterr().err
  with pytest.raises(errors.ConfigError):
    compare.summarize({})
