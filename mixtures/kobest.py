"""KoBEST mixtures: the five KoBEST datasets under the T0 held-out setting.

A small, fully public slice of KORANI (used by the demo): COPA and HellaSwag
(sentence completion) and WiC (word sense disambiguation) are held out, BoolQ
(extractive QA) and SentiNeg (sentiment) are trained on.

    korani_kobest_train                 seen KoBEST datasets, Korean templates
    korani_kobest_train_en              seen KoBEST datasets, English templates
    korani_kobest_heldout_score_eval    held-out KoBEST datasets, score evals
                                        with Korean and English templates
    korani_kobest_heldout_score_eval_quick
                                        the same with the first three
                                        templates of each dataset (the demo's
                                        evaluation: a third of the time)
"""

import seqio

import korani_tasks  # registers the tasks  # pylint: disable=unused-import
from korani_tasks import heldout
from korani_tasks import tasks
from korani_tasks import templates
from mixtures import korani

SETTING = heldout.get("t0")
QUICK_TEMPLATES = 3


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


def _first_templates(names, count):
  """The tasks whose template is among the first `count` of its file."""
  kept = []
  for name in names:
    info = tasks.task_info(name)
    ids = [t.template_id
           for t in templates.load_templates(info.dataset)[info.template_lang]]
    if info.template_id in ids[:count]:
      kept.append(name)
  return kept


seqio.MixtureRegistry.add(
    "korani_kobest_heldout_score_eval_quick",
    _first_templates(
        _kobest(korani.heldout_score_eval_tasks(SETTING, "ko")
                + korani.heldout_score_eval_tasks(SETTING, "en")),
        QUICK_TEMPLATES),
    default_rate=1.0)
