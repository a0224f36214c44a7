"""Comparison tables across training settings (t5x_runs/compare.py)."""

import dataclasses
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


def _one_lang(rows, lang):
  return [dataclasses.replace(r, template_lang=lang) for r in rows]


def test_medians_and_cluster_averages_per_setting():
  summary = compare.summarize({"mono": _one_lang(_run(0), "en"),
                               "cross": _one_lang(_run(10), "ko")})
  assert summary["columns"] == ["mono", "cross"]
  assert summary["datasets"]["en/nli/rte"] == {"mono": 60, "cross": 70}
  assert summary["templates"]["en/nli/rte"]["mono"] == 3
  # Cluster: average of the dataset medians (rte 60, cb 40).
  assert summary["clusters"]["en/nli"]["mono"] == 50
  assert summary["clusters"]["en/sentence_completion"]["cross"] == 70
  assert summary["languages"]["en"] == {"mono": 55, "cross": 65}
  table = compare.format_comparison(summary)
  assert "| data | cluster | dataset | mono [en] | cross [ko] |" in table
  assert "| en | nli | rte | 60.0 (3) | 70.0 (3) |" in table


def test_a_run_with_both_template_languages_is_two_columns():
  summary = compare.summarize({"ko_to_ko": _run(0)})
  assert summary["columns"] == ["ko_to_ko (en)", "ko_to_ko (ko)"]
  assert summary["datasets"]["en/sentence_completion/copa"] == {
      "ko_to_ko (ko)": 60}


def test_compare_command_writes_files(tmp_path, capsys):
  for name, offset in (("a", 0), ("b", 5)):
    results.write_results(_run(offset), str(tmp_path / name))
  code = cli.main(["compare", f"ko={tmp_path / 'a'}", f"en={tmp_path / 'b'}",
                   "--output", str(tmp_path / "out")])
  assert code == 0
  out = capsys.readouterr().out
  assert "| en | nli | 50.0 | – | 55.0 | – |" in out
  written = json.loads((tmp_path / "out" / compare.COMPARISON_JSON).read_text())
  assert written["columns"] == ["ko (en)", "ko (ko)", "en (en)", "en (ko)"]
  assert (tmp_path / "out" / compare.COMPARISON_MD).is_file()


def test_bad_arguments_are_named(tmp_path, capsys):
  assert cli.main(["compare", "no_equals_sign"]) == 2
  assert "expected SETTING=EVAL_DIR" in capsys.readouterr().err
  assert cli.main(["compare", f"x={tmp_path}"]) == 2
  assert "results.json does not exist" in capsys.readouterr().err
  with pytest.raises(errors.ConfigError):
    compare.summarize({})


def test_templates_edited_between_runs_are_named():
  old = _one_lang(_run(0), "en")
  new = [dataclasses.replace(r, template_version="v2" if r.template == "a"
                             and r.dataset == "rte" else "")
         for r in _one_lang(_run(5), "en")]
  summary = compare.summarize({"old": old, "new": new})
  assert summary["mixed_template_versions"] == ["rte/en/a"]
  assert "different versions of the same template" in (
      compare.format_comparison(summary))
  same = compare.summarize({"old": old, "again": old})
  assert same["mixed_template_versions"] == []
  assert "different versions" not in compare.format_comparison(same)
