"""Rank-classification metrics for seqio score evals.

A score-eval task (preprocessors.rank_classification) has one example per
answer choice. The model's score of an example is the summed log-likelihood
of its target tokens. Its postprocessor (`score_eval_target`) turns each
example into a ``ChoiceTarget``; the metric groups the choices of an example
by ``idx[0]`` and predicts the choice with the highest score, as T0 and the
KORANI paper do.

    >>> targets = [ChoiceTarget((0, 0), False, 2), ChoiceTarget((0, 1), True, 1),
    ...            ChoiceTarget((1, 0), True, 3), ChoiceTarget((1, 1), False, 3)]
    >>> accuracy(targets, scores=[-1.0, -2.0, -4.0, -3.0])
    {'accuracy': 0.0}
    >>> length_normalized_accuracy(targets, scores=[-1.0, -0.4, -4.0, -3.0])
    {'length_normalized_accuracy': 50.0}

An example none of whose choices is correct (a KORANI release row whose
answer is not among its choices, scored as the official KORANI code does)
counts as wrong. Ties go to the lower choice index (numpy's argmax), as in t5's metric.
Length normalization divides a choice's score by its length in characters
(Unicode code points after NFC normalization), not bytes: a Hangul syllable is
one character although UTF-8 spends three bytes on it.
"""

import collections
import dataclasses
import unicodedata
from typing import Any, Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class ChoiceTarget:
  """What the metric needs to know about one (example, choice) pair."""
  idx: tuple[int, int]  # (example index, choice index)
  is_correct: bool
  num_chars: int  # length of the choice text in characters


def num_chars(text: str) -> int:
  """Length in characters: code points after NFC normalization."""
  return len(unicodedata.normalize("NFC", text))


def score_eval_target(output: Any, example: Mapping[str, Any] | None = None,
                      is_target: bool = False) -> Any:
  """seqio postprocess_fn of score-eval tasks.

  For targets it returns a ChoiceTarget built from the example's `idx`,
  `is_correct` and the pretokenized target text; model outputs (scores) pass
  through unchanged.
  """
  if not is_target:
    return output
  text = output.decode("utf-8") if isinstance(output, bytes) else output
  idx = tuple(int(i) for i in example["idx"])
  return ChoiceTarget(idx=idx, is_correct=bool(example["is_correct"]),
                      num_chars=num_chars(text))


def _predictions(targets: Sequence[ChoiceTarget], scores: Sequence[float],
                 normalize: bool) -> tuple[np.ndarray, np.ndarray]:
  """Per example: (index of the predicted choice, index of the correct one).

  Raises:
    ValueError: if the numbers of targets and scores differ, or an example
      has more than one correct choice. An example with none has the correct
      index -1 (never predicted: wrong).
  """
  if len(targets) != len(scores):
    raise ValueError(
        f"got {len(targets)} targets but {len(scores)} scores")
  groups = collections.defaultdict(list)
  for target, score in zip(targets, scores):
    score = float(score)
    if normalize:
      if target.num_chars <= 0:
        raise ValueError(f"choice {target.idx} is empty; cannot normalize")
      score /= target.num_chars
    groups[target.idx[0]].append((target.idx[1], score, target.is_correct))
  if not groups:
    raise ValueError("no examples to score")
  predicted, correct = [], []
  for example, choices in sorted(groups.items()):
    choices.sort()
    num_correct = sum(c[2] for c in choices)
    if num_correct > 1:
      raise ValueError(
          f"example {example} has {num_correct} correct choices among "
          f"{len(choices)}; an example has at most one")
    predicted.append(int(np.argmax([c[1] for c in choices])))
    correct.append(next((i for i, c in enumerate(choices) if c[2]), -1))
  return np.array(predicted), np.array(correct)


def accuracy(targets: Sequence[ChoiceTarget],
             scores: Sequence[float]) -> dict[str, float]:
  """Rank-classification accuracy (%), argmax of summed log-likelihood."""
  predicted, correct = _predictions(targets, scores, normalize=False)
  return {"accuracy": 100.0 * float(np.mean(predicted == correct))}


def length_normalized_accuracy(targets: Sequence[ChoiceTarget],
                               scores: Sequence[float]) -> dict[str, float]:
  """Accuracy (%) with each choice's score divided by its character count."""
  predicted, correct = _predictions(targets, scores, normalize=True)
  return {"length_normalized_accuracy":
          100.0 * float(np.mean(predicted == correct))}
