"""ROUGE-L for generation tasks, on Korean morphemes or English words.

The official KORANI code splits Korean text into morphemes with Mecab (a
system install); here the morphemes come from `kiwipiepy` (a pip package),
then `rouge_score` computes the longest-common-subsequence F-measure on them.
English text uses rouge-score's own tokenizer (lowercase, alphanumeric words)
with Porter stemming, as usual for ROUGE.

Which tokenizer a pair uses: Korean if the target or the prediction contains
a Hangul syllable or jamo (`has_hangul`), English otherwise. Morphemes made of
punctuation or symbols only ('.', '!', '~') are dropped, as rouge-score's
English tokenizer drops punctuation.

    >>> korean_tokens('고양이가 밥을 먹었다.')
    ['고양이', '가', '밥', '을', '먹', '었', '다']
    >>> rouge_l(['고양이가 밥을 먹었다.'], ['고양이가 밥을 먹었다.'])
    {'rougeL': 100.0}
"""

import functools
import re
from typing import Sequence

from rouge_score import rouge_scorer
from rouge_score import tokenizers

# Hangul syllables, jamo and compatibility jamo.
_HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


def has_hangul(text: str) -> bool:
  return _HANGUL.search(text) is not None


@functools.cache
def _kiwi():
  import kiwipiepy  # pylint: disable=g-import-not-at-top  (slow import)
  return kiwipiepy.Kiwi()


def korean_tokens(text: str) -> list[str]:
  """Kiwi morpheme forms of ``text``, lowercased, punctuation left out."""
  return [token.form.lower() for token in _kiwi().tokenize(text)
          if any(ch.isalnum() for ch in token.form)]


class KoreanMorphemeTokenizer(tokenizers.Tokenizer):
  """rouge_score tokenizer: Korean morphemes (`korean_tokens`)."""

  def tokenize(self, text: str) -> list[str]:
    return korean_tokens(text)


@functools.cache
def _scorer(korean: bool) -> rouge_scorer.RougeScorer:
  if korean:
    return rouge_scorer.RougeScorer(["rougeL"],
                                    tokenizer=KoreanMorphemeTokenizer())
  return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_f(target: str, prediction: str) -> float:
  """ROUGE-L F-measure (0-1) of one pair, with the language's tokenizer."""
  korean = has_hangul(target) or has_hangul(prediction)
  return _scorer(korean).score(target, prediction)["rougeL"].fmeasure


def rouge_l(targets: Sequence[str], predictions: Sequence[str]
            ) -> dict[str, float]:
  """seqio predict metric: mean ROUGE-L F-measure x 100 over the examples.

  Raises:
    ValueError: the numbers of targets and predictions differ, or both are 0.
  """
  if len(targets) != len(predictions):
    raise ValueError(
        f"got {len(targets)} targets but {len(predictions)} predictions")
  if not targets:
    raise ValueError("no examples to score")
  scores = [rouge_l_f(_text(t), _text(p)) for t, p in zip(targets, predictions)]
  return {"rougeL": 100.0 * sum(scores) / len(scores)}


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)
