"""ROUGE-L on Korean morphemes (kiwipiepy) and English words.

Expected values are hand-computed from the morphemes written below:
F = 2 * LCS / (len(target) + len(prediction)).
"""

import pytest
import seqio

from korani_tasks import rouge
from korani_tasks import tasks

# (text, its kiwipiepy morphemes without punctuation): a tokenizer change
# fails test_korean_morphemes before the scores below go wrong silently.
MORPHEMES = {
    "고양이가 밥을 먹었다.": ["고양이", "가", "밥", "을", "먹", "었", "다"],
    "강아지는 밥을 먹지 않았다.":
        ["강아지", "는", "밥", "을", "먹", "지", "않", "었", "다"],
    "오늘은 날씨가 정말 좋습니다.":
        ["오늘", "은", "날씨", "가", "정말", "좋", "습니다"],
    "오늘 날씨가 좋아요.": ["오늘", "날씨", "가", "좋", "어요"],
    "서울은 한국의 수도이다.": ["서울", "은", "한국", "의", "수도", "이", "다"],
    "한국의 수도는 서울이다.": ["한국", "의", "수도", "는", "서울", "이", "다"],
}

# (target, prediction, LCS, F): the LCS is spelled out per pair.
KOREAN_PAIRS = [
    # 밥 을 먹 었 다: 5 of 7 and 9 morphemes.
    ("고양이가 밥을 먹었다.", "강아지는 밥을 먹지 않았다.", 5, 10 / 16),
    # 오늘 날씨 가 좋: 4 of 7 and 5.
    ("오늘은 날씨가 정말 좋습니다.", "오늘 날씨가 좋아요.", 4, 8 / 12),
    # 한국 의 수도 이 다: 5 of 7 and 7 (서울 moved, so only one of them counts).
    ("서울은 한국의 수도이다.", "한국의 수도는 서울이다.", 5, 10 / 14),
]


@pytest.mark.parametrize("text", sorted(MORPHEMES))
def test_korean_morphemes(text):
  assert rouge.korean_tokens(text) == MORPHEMES[text]


@pytest.mark.parametrize("target,prediction,lcs,expected", KOREAN_PAIRS)
def test_korean_pairs_match_hand_computed_lcs(target, prediction, lcs,
                                              expected):
  t, p = MORPHEMES[target], MORPHEMES[prediction]
  assert expected == pytest.approx(2 * lcs / (len(t) + len(p)))
  assert rouge.rouge_l_f(target, prediction) == pytest.approx(expected)


def test_metric_averages_and_scales_to_100():
  targets = [t for t, _, _, _ in KOREAN_PAIRS]
  predictions = [p for _, p, _, _ in KOREAN_PAIRS]
  expected = 100 * (10 / 16 + 8 / 12 + 10 / 14) / 3
  assert rouge.rouge_l(targets, predictions) == {
      "rougeL": pytest.approx(expected)}


def test_identical_is_100_and_disjoint_is_0():
  assert rouge.rouge_l(["서울은 한국의 수도이다."],
                       ["서울은 한국의 수도이다."])["rougeL"] == 100.0
  assert rouge.rouge_l(["고양이"], ["강아지"])["rougeL"] == 0.0
  assert rouge.rouge_l(["the cat sat"], ["dogs run fast"])["rougeL"] == 0.0


def test_spacing_does_not_matter_for_korean():
  # Morphemes, not whitespace words: a spacing error costs nothing.
  assert rouge.rouge_l_f("밥을 먹었다", "밥을먹었다") == 1.0


def test_english_uses_stemming():
  # the cat run quickli (stemmed) vs a cat run quickli: LCS 3 of 5 and 4.
  assert rouge.rouge_l_f("The cats are running quickly",
                         "a cat runs quickly") == pytest.approx(6 / 9)
  assert rouge.rouge_l_f("Cats running", "cat runs") == 1.0


def test_language_is_picked_by_hangul():
  assert rouge.has_hangul("답은 3입니다") and not rouge.has_hangul("3 cats")
  # Korean tokenizer when either side has Hangul: 'cats' is not stemmed.
  assert rouge.rouge_l_f("cats 고양이", "cat 고양이") == pytest.approx(0.5)


def test_bytes_and_mismatched_lengths():
  assert rouge.rouge_l([b"\xec\x84\x9c\xec\x9a\xb8"], ["서울"])["rougeL"] == 100
  with pytest.raises(ValueError, match="2 targets but 1 predictions"):
    rouge.rouge_l(["a", "b"], ["a"])
  with pytest.raises(ValueError, match="no examples"):
    rouge.rouge_l([], [])


def test_generation_tasks_have_the_rouge_metric():
  korquad = "korani_korquad1_ko_context_question_answer"
  assert tasks.task_info(korquad).kind == tasks.TRAIN
  assert seqio.get_mixture_or_task(korquad).metric_fns == [rouge.rouge_l]
  # Release tasks of generation datasets too; classification train tasks not.
  assert (seqio.get_mixture_or_task("korani_dacon_news_ko_release").metric_fns
          == [rouge.rouge_l])
  assert not seqio.get_mixture_or_task(
      "korani_kobest_copa_ko_release").metric_fns
