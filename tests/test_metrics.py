"""Rank-classification metrics and result summaries, against hand-computed
cases."""

import pytest

from korani_tasks import metrics
from korani_tasks.metrics import ChoiceTarget
from t5x_runs import aggregation
from t5x_runs import results


def _targets(groups):
  """[(choice texts, correct index), ...] -> ChoiceTargets in eval order."""
  out = []
  for example, (choices, correct) in enumerate(groups):
    for i, text in enumerate(choices):
      out.append(ChoiceTarget((example, i), i == correct, metrics.num_chars(text)))
  return out


def test_accuracy_is_argmax_of_summed_log_likelihood():
  targets = _targets([(["No", "Yes"], 1), (["No", "Yes"], 0), (["a", "b"], 0)])
  scores = [-3.0, -1.0,   # picks 1: correct
            -2.0, -0.5,   # picks 1: wrong
            -0.1, -9.0]   # picks 0: correct
  assert metrics.accuracy(targets, scores) == {"accuracy": pytest.approx(200 / 3)}


def test_ties_go_to_the_first_choice():
  targets = _targets([(["x", "y"], 0), (["x", "y"], 1)])
  scores = [-1.0, -1.0, -2.0, -2.0]
  assert metrics.accuracy(targets, scores)["accuracy"] == 50.0


def test_unequal_choice_counts_and_shuffled_order():
  targets = _targets([(["a", "b", "c", "d"], 2), (["no", "yes"], 0)])
  scores = [-4.0, -3.0, -0.5, -2.0, -1.0, -1.5]
  # seqio hands targets in dataset order, but grouping must not depend on it.
  order = [5, 0, 3, 1, 4, 2]
  acc = metrics.accuracy([targets[i] for i in order], [scores[i] for i in order])
  assert acc["accuracy"] == 100.0


def test_length_normalization_counts_hangul_characters_not_bytes():
  # "예" is 1 character (3 UTF-8 bytes); "아니요" is 3 characters (9 bytes).
  assert metrics.num_chars("예") == 1 and metrics.num_chars("아니요") == 3
  targets = _targets([(["아니요", "예"], 0)])
  scores = [-3.0, -2.0]  # summed: "예" wins; per character: -1.0 vs -2.0
  assert metrics.accuracy(targets, scores)["accuracy"] == 0.0
  assert metrics.length_normalized_accuracy(targets, scores) == {
      "length_normalized_accuracy": 100.0}


def test_length_normalization_is_per_character_where_bytes_would_differ():
  # "no": 2 characters, 2 bytes; "예": 1 character, 3 bytes.
  targets = _targets([(["no", "예"], 0)])
  scores = [-2.0, -1.5]
  # Per character: -1.0 vs -1.5 -> "no" (correct). Per byte it would be
  # -1.0 vs -0.5 -> "예" (wrong).
  assert metrics.length_normalized_accuracy(targets, scores)[
      "length_normalized_accuracy"] == 100.0


def test_num_chars_normalizes_decomposed_hangul():
  decomposed = "\u1100\u1161"  # 가 as two conjoining jamo
  assert metrics.num_chars(decomposed) == 1


def test_examples_without_exactly_one_correct_choice_are_errors():
  bad = [ChoiceTarget((0, 0), True, 1), ChoiceTarget((0, 1), True, 1)]
  with pytest.raises(ValueError, match="example 0 has 2 correct choices"):
    metrics.accuracy(bad, [0.0, 0.0])
  with pytest.raises(ValueError, match="2 targets but 1 scores"):
    metrics.accuracy(bad, [0.0])
  with pytest.raises(ValueError, match="no examples"):
    metrics.accuracy([], [])


def test_score_eval_target_postprocessor():
  example = {"idx": [4, 1], "is_correct": True}
  target = metrics.score_eval_target(b"\xea\xb8\x8d\xec\xa0\x95\xec\xa0\x81",
                                     example=example, is_target=True)
  assert target == ChoiceTarget((4, 1), True, 3)  # 긍정적
  assert metrics.score_eval_target(-1.5, example=example) == -1.5


# -- summaries of result rows (t5x_runs/results.py) ----------------------------
# Hand-computed cases: per template, median and mean over templates per
# dataset, cluster and language averages of the dataset medians.

def _row(dataset, cluster, template, lang, value, metric="accuracy",
         data_lang="ko"):
  return results.ResultRow(
      task=f"korani_{dataset}_{lang}_{template}_score_eval", dataset=dataset,
      cluster=cluster, template=template, template_lang=lang,
      data_lang=data_lang, metric=metric, value=value, num_examples=10,
      num_truncated=0, split="validation", checkpoint_step=100)


SUMMARY_ROWS = [
    # kobest_copa, Korean templates: 50, 60, 80 -> median 60, mean 63.33.
    _row("kobest_copa", "sentence_completion", "t1", "ko", 50.0),
    _row("kobest_copa", "sentence_completion", "t2", "ko", 60.0),
    _row("kobest_copa", "sentence_completion", "t3", "ko", 80.0),
    _row("kobest_copa", "sentence_completion", "t1", "ko", 40.0,
         "length_normalized_accuracy"),
    _row("kobest_copa", "sentence_completion", "t2", "ko", 70.0,
         "length_normalized_accuracy"),
    _row("kobest_copa", "sentence_completion", "t3", "ko", 70.0,
         "length_normalized_accuracy"),
    # ... English templates: 30, 50 -> median 40.
    _row("kobest_copa", "sentence_completion", "t1", "en", 30.0),
    _row("kobest_copa", "sentence_completion", "t2", "en", 50.0),
    # kobest_hellaswag: 20, 30, 70, 90 -> median (30 + 70) / 2 = 50, mean 52.5.
    _row("kobest_hellaswag", "sentence_completion", "t1", "ko", 20.0),
    _row("kobest_hellaswag", "sentence_completion", "t2", "ko", 90.0),
    _row("kobest_hellaswag", "sentence_completion", "t3", "ko", 30.0),
    _row("kobest_hellaswag", "sentence_completion", "t4", "ko", 70.0),
    _row("kobest_wic", "wsd", "t1", "ko", 40.0),
    # English data: en templates 55, 65 -> 60; ko template 45.
    _row("super_glue_rte", "nli", "t1", "en", 55.0, data_lang="en"),
    _row("super_glue_rte", "nli", "t2", "en", 65.0, data_lang="en"),
    _row("super_glue_rte", "nli", "t1", "ko", 45.0, data_lang="en"),
    # A generation dataset: ROUGE-L 20, 24, 30 -> median 24, mean 24.67.
    _row("korsum", "summarization", "t1", "ko", 20.0, "rougeL"),
    _row("korsum", "summarization", "t2", "ko", 30.0, "rougeL"),
    _row("korsum", "summarization", "t3", "ko", 24.0, "rougeL"),
    _row("korsum", "summarization", "t1", "ko", 35.0, "rouge1"),
]


def test_main_metric_is_rouge_l_for_generation_and_accuracy_otherwise():
  assert aggregation.main_metric(
      ["length_normalized_accuracy", "accuracy"]) == "accuracy"
  assert aggregation.main_metric(["rouge1", "rougeL"]) == "rougeL"
  assert aggregation.main_metric(["length_normalized_accuracy"]) == (
      "length_normalized_accuracy")
  assert aggregation.main_metric([]) is None
  assert aggregation.main_metrics(SUMMARY_ROWS) == {
      "kobest_copa": "accuracy", "kobest_hellaswag": "accuracy",
      "kobest_wic": "accuracy", "super_glue_rte": "accuracy",
      "korsum": "rougeL"}


def test_per_template_values():
  per_template = results.template_summary(SUMMARY_ROWS)
  assert per_template[("kobest_copa", "ko", "t2")] == 60.0
  assert per_template[("kobest_copa", "en", "t1")] == 30.0
  assert ("korsum", "ko", "t1") not in per_template  # no accuracy rows
  assert results.template_summary(SUMMARY_ROWS, None)[
      ("korsum", "ko", "t1")] == 20.0
  assert results.template_summary(SUMMARY_ROWS, "length_normalized_accuracy")[
      ("kobest_copa", "ko", "t1")] == 40.0


def _medians(summaries):
  return {(d, lang): (s.median, s.mean, s.num_templates, s.metric)
          for lang, column in summaries.items()
          for d, s in column.datasets.items()}


def test_median_and_mean_over_templates_per_dataset():
  summary = _medians(results.summaries(SUMMARY_ROWS, "accuracy"))
  assert summary[("kobest_copa", "ko")] == (
      60.0, pytest.approx(190 / 3), 3, "accuracy")
  assert summary[("kobest_copa", "en")][0] == 40.0
  assert summary[("kobest_hellaswag", "ko")][:2] == (50.0, 52.5)  # even count
  assert ("korsum", "ko") not in summary
  normalized = _medians(results.summaries(SUMMARY_ROWS,
                                          "length_normalized_accuracy"))
  assert normalized == {("kobest_copa", "ko"): (
      70.0, 60.0, 3, "length_normalized_accuracy")}
  main = _medians(results.summaries(SUMMARY_ROWS))
  assert main[("korsum", "ko")] == (24.0, pytest.approx(74 / 3), 3, "rougeL")
  assert main[("kobest_copa", "ko")][0] == 60.0  # accuracy, not lna


def test_cluster_averages_of_dataset_medians():
  summaries = results.summaries(SUMMARY_ROWS)
  assert summaries["ko"].clusters == {
      ("en", "nli"): 45.0,
      ("ko", "sentence_completion"): 55.0,  # (60 + 50) / 2
      ("ko", "summarization"): 24.0,
      ("ko", "wsd"): 40.0}
  assert summaries["en"].clusters == {("en", "nli"): 60.0,
                                      ("ko", "sentence_completion"): 40.0}
  assert ("ko", "summarization") not in results.summaries(
      SUMMARY_ROWS, "accuracy")["ko"].clusters


def test_language_and_overall_averages_are_means_over_clusters():
  summaries = results.summaries(SUMMARY_ROWS)
  # Korean data, Korean templates: clusters 55, 40, 24 (not the mean of the
  # four dataset medians, 43.5).
  assert summaries["ko"].languages == {"en": 45.0,
                                       "ko": pytest.approx(119 / 3)}
  assert summaries["en"].languages == {"en": 60.0, "ko": 40.0}
  assert summaries["ko"].overall == pytest.approx((55 + 40 + 24 + 45) / 4)
  assert results.summaries(SUMMARY_ROWS, "accuracy")["ko"].languages[
      "ko"] == 47.5


def test_averages_are_over_the_datasets_every_column_has():
  """Per data language: columns without any data of a language do not
  narrow its datasets (the worked example of the aggregation docstring)."""
  a = [_row("kobest_copa", "sentence_completion", t, "ko", v)
       for t, v in (("t1", 50.0), ("t2", 60.0), ("t3", 80.0))]
  a += [_row("kobest_hellaswag", "sentence_completion", "t1", "ko", 50.0),
        _row("kobest_wic", "wsd", "t1", "ko", 40.0),
        _row("kobest_sentineg", "sentiment", "t1", "ko", 70.0)]
  b = [_row("kobest_copa", "sentence_completion", "t1", "ko", 65.0),
       _row("kobest_wic", "wsd", "t1", "ko", 45.0)]
  c = [_row("super_glue_rte", "nli", "t1", "ko", 80.0, data_lang="en")]
  summary = aggregation.summarize_columns({"a": a, "b": b, "c": c})
  assert summary["a"].averaged == {"kobest_copa", "kobest_wic"}
  assert summary["a"].clusters == {("ko", "sentence_completion"): 60.0,
                                   ("ko", "wsd"): 40.0}
  assert (summary["a"].overall, summary["b"].overall) == (50.0, 55.0)
  assert summary["c"].averaged == {"super_glue_rte"}
  assert set(summary["a"].datasets) == {"kobest_copa", "kobest_hellaswag",
                                        "kobest_wic", "kobest_sentineg"}
  with pytest.raises(ValueError, match="select one metric"):
    aggregation.dataset_scores(SUMMARY_ROWS[:4])


def test_results_markdown_reports_generation_datasets_by_rouge_l():
  table = results.format_markdown(SUMMARY_ROWS)
  assert "median and mean of the main metric (accuracy, rougeL)" in table
  assert "| korsum | summarization | 24.0 | 24.7 | – | – |" in table
  assert ("| kobest_copa | sentence_completion | 60.0 | 63.3 | 40.0 | 40.0 |"
          in table)
  assert "| summarization | ko | 24.0 | – |" in table
  assert "| average (ko data) | ko | 39.7 | 40.0 |" in table
  assert "| all clusters | all | 41.0 | 50.0 |" in table
