"""Rank-classification metrics against hand-computed cases."""

import pytest

from korani_tasks import metrics
from korani_tasks.metrics import ChoiceTarget


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
