"""The paper's bilingual mixtures: KORANI and P3 together.

For each held-out setting ``s`` (suffix ``_<s>``; unsuffixed = the default)::

    bilingual_train_<s>          KORANI with Korean templates + P3 with
                                 English templates (monolingual templates)
    bilingual_train_ko_<s>       both with Korean templates
    bilingual_train_en_<s>       both with English templates
    bilingual_train_cross_<s>    KORANI with English templates + P3 with
                                 Korean templates (cross-lingual templates)
    bilingual_heldout_score_eval_<s>        held-out KORANI (Korean templates)
                                            + held-out P3 (English templates)
    bilingual_heldout_score_eval_cross_<s>  held-out KORANI (English) + held-out
                                            P3 (Korean templates)

The rest of the grid (Ko->En, En->Ko, Ko->Ko, En->En) uses the one-language
mixtures of mixtures/korani.py and mixtures/p3.py; README's table and
gin/experiments/ map every cell to its mixtures.
"""

import seqio

from korani_tasks import heldout
from korani_tasks.p3 import tasks as p3_tasks
from mixtures import korani
from mixtures import p3

# (name, KORANI template language, P3 template language)
TRAINING = (
    ("bilingual_train", "ko", "en"),
    ("bilingual_train_ko", "ko", "ko"),
    ("bilingual_train_en", "en", "en"),
    ("bilingual_train_cross", "en", "ko"),
)
EVALUATION = (
    ("bilingual_heldout_score_eval", "ko", "en"),
    ("bilingual_heldout_score_eval_cross", "en", "ko"),
)


def register(setting: heldout.HeldOutSetting, suffix: str) -> None:
  for name, korani_lang, p3_lang in TRAINING:
    seqio.MixtureRegistry.add(
        name + suffix, korani.training_tasks(setting, korani_lang)
        + p3.training_tasks(setting, p3_lang))
  for name, korani_lang, p3_lang in EVALUATION:
    seqio.MixtureRegistry.add(
        name + suffix, korani.heldout_score_eval_tasks(setting, korani_lang)
        + p3.heldout_score_eval_tasks(setting, p3_lang), default_rate=1.0)


if p3_tasks.all_p3_task_infos():  # Empty when promptsource is not installed.
  for _setting in heldout.settings().values():
    register(_setting, f"_{_setting.name}")
  register(heldout.default(), "")
