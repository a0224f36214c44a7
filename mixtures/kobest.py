"""KoBEST mixtures: train on the seen clusters, score the held-out ones.

Held-out datasets are chosen by cluster, as T0 and the KORANI paper do: the
clusters in `HELD_OUT_CLUSTERS` never appear in a training mixture. Among the
five KoBEST datasets that puts COPA and HellaSwag (sentence completion) and
WiC (word sense disambiguation) in evaluation, BoolQ (multiple-choice QA) and
SentiNeg (sentiment) in training.

    korani_kobest_train                 seen KoBEST datasets, Korean templates
    korani_kobest_train_en              seen KoBEST datasets, English templates
    korani_kobest_heldout_score_eval    held-out KoBEST datasets, score evals
                                        with Korean and English templates
"""

import functools

import seqio

import korani_tasks  # registers the tasks  # pylint: disable=unused-import
from korani_tasks import tasks

# T0's held-out clusters (Sanh et al., 2022), kept by KORANI.
HELD_OUT_CLUSTERS = ("nli", "sentence_completion", "wsd", "coreference")

# T0's mixing: proportional to the number of examples, capped at 500k.
TRAIN_MIXING_RATE = functools.partial(seqio.mixing_rate_num_examples,
                                      maximum=500_000)


def kobest_task_names(kind: str, template_langs: tuple[str, ...],
                      held_out: bool) -> list[str]:
  """Names of KoBEST tasks of one kind, by template language and split."""
  return sorted(
      info.name for info in tasks.all_task_infos().values()
      if info.dataset.startswith("kobest_") and info.kind == kind
      and info.template_lang in template_langs
      and (info.cluster in HELD_OUT_CLUSTERS) == held_out)


seqio.MixtureRegistry.add(
    "korani_kobest_train",
    [(name, TRAIN_MIXING_RATE)
     for name in kobest_task_names(tasks.TRAIN, ("ko",), held_out=False)])

seqio.MixtureRegistry.add(
    "korani_kobest_train_en",
    [(name, TRAIN_MIXING_RATE)
     for name in kobest_task_names(tasks.TRAIN, ("en",), held_out=False)])

seqio.MixtureRegistry.add(
    "korani_kobest_heldout_score_eval",
    kobest_task_names(tasks.SCORE_EVAL, ("ko", "en"), held_out=True),
    default_rate=1.0)
