"""The evaluator: scores, result files and the results table."""

import dataclasses
import hashlib
import json

import pytest
import seqio

from conftest import SENTINEG
from korani_tasks import tasks as korani_tasks_lib
from t5x_runs import evaluator
from t5x_runs import results

DOCUMENTED_FIELDS = {"task", "dataset", "template", "template_lang",
                     "data_lang", "metric", "value", "num_examples"}


@pytest.mark.slow
def test_evaluate_writes_both_result_files(sentineg_run, tmp_path):
  model_dir, _ = sentineg_run
  mixture = "korani_kobest_sentineg_score_eval_both_langs"
  if mixture not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add(mixture, [SENTINEG + "_score_eval",
                                        SENTINEG.replace("_ko_", "_en_") + "_score_eval"],
                              default_rate=1.0)
  rows = evaluator.evaluate(model_dir=str(model_dir),
                            mixture_or_task_name=mixture,
                            output_dir=str(tmp_path), progress=False)
  written = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
  assert len(written) == len(rows) == 4  # 2 tasks x 2 metrics
  for row in written:
    assert DOCUMENTED_FIELDS <= set(row)
    assert row["dataset"] == "kobest_sentineg" and row["data_lang"] == "ko"
    assert row["num_examples"] == 400 and row["checkpoint_step"] == 300
    assert 0.0 <= row["value"] <= 100.0
  assert {r["template_lang"] for r in written} == {"ko", "en"}
  for row in written:  # The version of the template the row was scored with.
    template = korani_tasks_lib.task_info(row["task"]).template
    assert row["template_version"] == template.version
  table = (tmp_path / "results.md").read_text(encoding="utf-8")
  assert "| kobest_sentineg | sentiment | review_sentiment | 400 |" in table
  assert "## Per cluster: average of dataset medians" in table
  assert {(r["vocabulary_sha256"], r["vocabulary_pieces"]) for r in written} == {
      (hashlib.sha256((model_dir / "vocab.model").read_bytes()).hexdigest(),
       2000)}
  assert (f"Vocabulary: {model_dir / 'vocab.model'} (2000 pieces, sha256 "
          f"{written[0]['vocabulary_sha256']}).") in table
  assert not list(tmp_path.glob("*.tmp"))


def _row(dataset, cluster, template, lang, value, metric="accuracy"):
  return results.ResultRow(
      task=f"korani_{dataset}_{lang}_{template}_score_eval", dataset=dataset,
      cluster=cluster, template=template, template_lang=lang, data_lang="ko",
      metric=metric, value=value, num_examples=10, num_truncated=0,
      split="validation", checkpoint_step=1)


def test_summaries_follow_t0_median_over_templates():
  rows = [_row("copa", "sentence_completion", t, "ko", v)
          for t, v in (("a", 50.0), ("b", 70.0), ("c", 60.0))]
  rows += [_row("hellaswag", "sentence_completion", t, "ko", v)
           for t, v in (("a", 20.0), ("b", 40.0))]
  rows += [_row("copa", "sentence_completion", "a", "ko", 99.0,
                metric="length_normalized_accuracy")]
  summary = results.summaries(rows)["ko"]
  copa = summary.datasets["copa"]
  assert (copa.median, copa.mean, copa.num_templates, copa.metric) == (
      60.0, 60.0, 3, "accuracy")
  assert summary.datasets["hellaswag"].median == 30.0
  assert summary.clusters == {("ko", "sentence_completion"): 45.0}
  table = results.format_markdown(rows, "t")
  assert "| copa | sentence_completion | 60.0 | 60.0 |" in table
  assert "| sentence_completion | 45.0 |" in table


def test_results_name_the_held_out_setting_and_vocabulary(tmp_path):
  row = dataclasses.replace(
      _row("copa", "sentence_completion", "a", "en", 51.5),
      heldout_setting="t0", vocabulary="/v/spm.model",
      vocabulary_sha256="ab12", vocabulary_pieces=250100)
  results.write_results([row], str(tmp_path))
  assert results.read_results(str(tmp_path)) == [row]
  table = (tmp_path / results.RESULTS_MD).read_text()
  assert table.splitlines()[2] == (
      "Held-out setting: t0. Vocabulary: /v/spm.model (250100 pieces, "
      "sha256 ab12).")


def test_results_round_trip(tmp_path):
  rows = [_row("copa", "sentence_completion", "a", "en", 51.5)]
  results.write_results(rows, str(tmp_path))
  assert results.read_results(str(tmp_path)) == rows
  # Rows written before template versions were recorded still read.
  written = json.loads((tmp_path / results.RESULTS_JSON).read_text())
  del written[0]["template_version"]
  (tmp_path / results.RESULTS_JSON).write_text(json.dumps(written))
  assert results.read_results(str(tmp_path)) == rows
