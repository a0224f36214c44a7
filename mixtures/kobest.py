"""KoBEST mixtures: the five KoBEST datasets under the T0 held-out setting.

A small, fully public slice of KORANI (used by the demo): COPA and HellaSwag
(sentence completion) and WiC (word sense disambiguation) are held out, BoolQ
(multiple-choice QA) and SentiNeg (sentiment) are trained on.

    korani_kobest_train                 seen KoBEST datasets, Korean templates
    korani_kobest_train_en              seen KoBEST datasets, English templates
    korani_kobest_heldout_score_eval    held-out KoBEST datasets, score evals
                                        with Korean and English templates
"""

import seqio

import korani_tasks  # registers the tasks  # pylint: disable=unused-import
from korani_tasks import heldout
from mixtures import korani

SETTING = heldout.get("t0")


def _kobest(names):
  return [n for n in names
          if (n[0] if isinstance(n, tuple) else n).startswith("korani_kobest_")]


seqio.MixtureRegistry.add(
    "korani_kobest_train", _kobest(korani.training_tasks(SETTING, "ko")))
seqio.MixtureRegistry.add(
    "korani_kobest_train_en", _kobest(korani.training_tasks(SETTING, "en")))
seqio.MixtureRegistry.add(
    "korani_kobest_heldout_score_eval",
    _kobest(korani.heldout_score_eval_tasks(SETTING, "ko")
            + korani.heldout_score_eval_tasks(SETTING, "en")),
    default_rate=1.0)
