"""Comparison tables across training settings (t5x_runs/compare.py)."""

import dataclasses
import json

import pytest

import test_report
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
          _row("copa", "sentence_completion", "a", "ko", 55 + offset, "ko"),
          _row("copa", "sentence_completion", "b", "ko", 65 + offset, "ko")]


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
  assert summary["clusters"]["ko/sentence_completion"]["cross"] == 70
  assert summary["languages"]["en"] == {"mono": 50, "cross": 60}
  # Overall: mean over clusters, en/nli 50 and ko/sentence_completion 60.
  assert summary["overall"] == {"mono": 55, "cross": 65}
  table = compare.format_comparison(summary)
  assert "| data | cluster | dataset | mono [en] | cross [ko] |" in table
  assert "| en | nli | rte | 60.0 (3) | 70.0 (3) |" in table


def test_a_run_with_both_template_languages_is_two_columns():
  summary = compare.summarize({"ko_to_ko": _run(0)})
  assert summary["columns"] == ["ko_to_ko (ko)", "ko_to_ko (en)"]
  assert summary["datasets"]["ko/sentence_completion/copa"] == {
      "ko_to_ko (ko)": 60}


def test_compare_command_writes_files(tmp_path, capsys):
  for name, offset in (("a", 0), ("b", 5)):
    results.write_results(_run(offset), str(tmp_path / name))
  code = cli.main(["compare", f"ko={tmp_path / 'a'}", f"en={tmp_path / 'b'}",
                   "--output", str(tmp_path / "out")])
  assert code == 0
  out = capsys.readouterr().out
  assert "| en | nli | – | 50.0 | – | 55.0 |" in out
  written = json.loads((tmp_path / "out" / compare.COMPARISON_JSON).read_text())
  assert written["columns"] == ["ko (ko)", "ko (en)", "en (ko)", "en (en)"]
  assert (tmp_path / "out" / compare.COMPARISON_MD).is_file()


def test_bad_arguments_are_named(tmp_path, capsys):
  assert cli.main(["compare", "no_equals_sign"]) == 2
  assert "expected SETTING=EVAL_DIR" in capsys.readouterr().err
  assert cli.main(["compare", f"x={tmp_path}"]) == 2
  assert "results.json does not exist" in capsys.readouterr().err
  with pytest.raises(errors.ConfigError):
    compare.summarize({})


def _tables(markdown):
  """The Markdown tables of a text, each a list of its lines."""
  tables, current = [], []
  for line in markdown.splitlines() + [""]:
    if line.startswith("|"):
      current.append(line)
    elif current:
      tables.append(current)
      current = []
  return tables


def _is_separator(line):
  return set(line) <= set("|-: ")


def _runs_of_two_settings():
  """Two runs: base, and x without hellaswag but with kobest_boolq; a
  cluster of two datasets (mean over clusters != mean over datasets) and a
  generation dataset (reported by ROUGE-L, not accuracy)."""
  def korsum(offset):
    return [test_report._row("korsum", "summarization", t, v + offset,
                             metric=m)
            for t, v, m in (("a", 20.0, "rougeL"), ("b", 30.0, "rougeL"),
                            ("c", 24.0, "rougeL"), ("a", 50.0, "accuracy"))]
  base = test_report._rows(0) + korsum(0)
  x = (test_report._rows(5) + korsum(3)
       + [test_report._row("kobest_boolq", "extractive_qa", "a", 90.0)])
  return base, x


def test_compare_and_report_print_the_same_numbers(tmp_path, capsys):
  base, x = _runs_of_two_settings()
  results.write_results(base, str(tmp_path / "base"))
  results.write_results(x, str(tmp_path / "x"))
  assert cli.main(["compare", f"base={tmp_path / 'base'}",
                   f"x={tmp_path / 'x'}", "--output",
                   str(tmp_path / "compare")]) == 0
  compared = capsys.readouterr().out
  assert cli.main(["report", str(tmp_path / "base"), str(tmp_path / "x"),
                   "--output", str(tmp_path / "report")]) == 0
  reported = capsys.readouterr().out

  # Clusters: sentiment 55 / 60, sentence_completion (45 + 30) / 2 and
  # (50 + 35) / 2, wsd 40 / 50, summarization ROUGE-L 24 / 27; kobest_boolq
  # is only in x and left out. Overall: the mean of the four clusters.
  overall = {"base": (55 + 37.5 + 40 + 24) / 4, "x": (60 + 42.5 + 50 + 27) / 4}
  assert f"| all | {overall['base']:.1f} | {overall['x']:.1f} |" in compared
  assert (f"| all | average (5) |  | {overall['base']:.1f} | "
          f"{overall['x']:.1f} |") in reported
  for cluster, values in (("sentence_completion", "37.5 | 42.5"),
                          ("summarization", "24.0 | 27.0")):
    assert f"| ko | {cluster} | {values} |" in compared
    assert f"| {cluster} | average |  | {values} |" in reported
  assert "| ko | extractive_qa | kobest_boolq * | – | 90.0 (1) |" in compared

  summary = json.loads((tmp_path / "compare" / compare.COMPARISON_JSON)
                       .read_text())
  table = (tmp_path / "report" / "report.csv").read_text()
  in_csv = next(line for line in table.splitlines()
                if line.startswith("overall,"))
  assert summary["overall"] == pytest.approx(overall)
  assert in_csv.split(",")[-2:] == [f"{overall['base']:.4f}",
                                    f"{overall['x']:.4f}"]
  for markdown in (compared, reported):
    for lines in _tables(markdown):
      assert _is_separator(lines[1]), lines
      assert not any(_is_separator(line) for line in lines[2:]), lines


def test_results_md_tables_have_one_separator_row():
  base, _ = _runs_of_two_settings()
  markdown = results.format_markdown(
      base + [dataclasses.replace(r, template_lang="en", value=r.value - 5)
              for r in base])
  tables = _tables(markdown)
  assert len(tables) == 3
  for lines in tables:
    assert _is_separator(lines[1]), lines
    assert not any(_is_separator(line) for line in lines[2:]), lines
  assert tables[2] == [
      "| cluster | ko templates | en templates |",
      "|---|---|---|",
      "| sentence_completion | 37.5 | 32.5 |",
      "| sentiment | 55.0 | 50.0 |",
      "| summarization | 24.0 | 19.0 |",
      "| wsd | 40.0 | 35.0 |",
      "| all clusters | 39.1 | 34.1 |"]


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
