"""P3 mixtures: T0's training sets and held-out evaluation, in both template
languages, per held-out setting (korani_tasks/heldout.yaml).

For each setting ``s`` (``t0``, ``korani``; unsuffixed = the default)::

    p3_train_<s>                    T0's training sets whose cluster is not
                                    held out, every English template
    p3_train_ko_<s>                 the same data, the Korean template versions
    p3_train_paper_<s>              the KORANI paper's English training sets
                                    (the official release's 51 English
                                    dataset names, catalog ``korani_name``)
                                    whose cluster is not held out, every
                                    English template
    p3_train_paper_ko_<s>           the same data, the Korean template
                                    versions: only the datasets that have
                                    them (`paper_names_without_korean`
                                    lists the others)
    p3_heldout_score_eval_<s>       T0's held-out sets (RTE, CB, ANLI R1-R3,
                                    COPA, HellaSwag, StoryCloze, WiC, WSC,
                                    Winogrande), English original-task
                                    templates (what T0 reports)
    p3_heldout_score_eval_ko_<s>    the same with the Korean versions

Under ``t0``, ``p3_train`` is T0's training mixture (38 datasets) and
``p3_train_paper`` the paper's 51 (T0's without HotpotQA, T0+/T0++'s ARC,
OpenBookQA, PIQA, RACE, SQuAD, TriviaQA, WebQuestions, BoolQ, MultiRC,
ReCoRD, and ART, CBT, DROP, emo, emotion, PubMedQA, Yahoo Answers Topics);
under ``korani`` both also leave out the clusters KORANI holds out
(sentiment, summarization, multiple-choice QA), so no held-out task is seen
in either language. T0 trains on every template of a training set; the
Korean side has the original-task ones (plus all of QuaRel's and HotpotQA's,
which have none). Rates: `mixtures.rates.CappedRate` (T0's cap, shared by a
dataset's templates; each subset counts as a dataset, as in T0).
"""

import seqio

import korani_tasks  # registers the tasks  # pylint: disable=unused-import
from korani_tasks import heldout
from korani_tasks import tasks
from korani_tasks.p3 import catalog
from korani_tasks.p3 import tasks as p3_tasks
from mixtures import rates

def paper_dataset_keys() -> list[str]:
  """The promptsource keys of the paper's English training sets."""
  return [entry.key for entries in catalog.by_korani_name().values()
          for entry in entries]


def paper_names_without_korean() -> list[str]:
  """The paper's English dataset names with no Korean template version.

  p3_train_paper_ko leaves them out: no templates_ko file (most of the sets
  outside T0's mixture), or one with no template (app_reviews has no
  original-task template).
  """
  return sorted(name for name, entries in catalog.by_korani_name().items()
                if not any(p3_tasks.korean_templates(e.key) for e in entries))


def training_tasks(setting: heldout.HeldOutSetting, lang: str,
                   paper: bool = False) -> list[tuple[str, rates.CappedRate]]:
  """(task, rate) of the training sets not held out under `setting`.

  Args:
    setting: the held-out setting.
    lang: the template language, 'en' or 'ko'.
    paper: the KORANI paper's English training sets instead of T0's.
  """
  selection = (dict(dataset=paper_dataset_keys()) if paper
               else dict(role="train"))
  infos = [p3 for p3 in p3_tasks.p3_task_infos(
      **selection, lang=lang, kind=tasks.TRAIN)
           if not setting.is_held_out_cluster(p3.entry.cluster)]
  per_dataset: dict[str, int] = {}
  for p3 in infos:
    per_dataset[p3.eval_set] = per_dataset.get(p3.eval_set, 0) + 1
  return [(p3.name, rates.CappedRate(per_dataset[p3.eval_set]))
          for p3 in infos]


def heldout_score_eval_tasks(setting: heldout.HeldOutSetting,
                             lang: str) -> list[str]:
  """T0's held-out score evals (original-task templates) in `lang`."""
  return [p3.name for p3 in p3_tasks.p3_task_infos(
      role="heldout", lang=lang, kind=tasks.SCORE_EVAL, original_task=True)
          if setting.is_held_out_cluster(p3.entry.cluster)]


def register(setting: heldout.HeldOutSetting, suffix: str) -> None:
  for name, members in (
      (f"p3_train{suffix}", training_tasks(setting, "en")),
      (f"p3_train_ko{suffix}", training_tasks(setting, "ko")),
      (f"p3_train_paper{suffix}", training_tasks(setting, "en", paper=True)),
      (f"p3_train_paper_ko{suffix}",
       training_tasks(setting, "ko", paper=True)),
      (f"p3_heldout_score_eval{suffix}",
       heldout_score_eval_tasks(setting, "en")),
      (f"p3_heldout_score_eval_ko{suffix}",
       heldout_score_eval_tasks(setting, "ko"))):
    if members:
      seqio.MixtureRegistry.add(name, members, default_rate=1.0)


if p3_tasks.all_p3_task_infos():  # Empty when promptsource is not installed.
  for _setting in heldout.settings().values():
    register(_setting, f"_{_setting.name}")
  register(heldout.default(), "")
