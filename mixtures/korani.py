"""KORANI mixtures: train on the seen clusters, score the held-out ones.

For each held-out setting of korani_tasks/heldout.yaml (``t0``, ``korani``)::

    korani_train_<s>                      raw datasets of seen clusters,
                                          Korean templates
    korani_train_en_<s>                   the same data, English templates
    korani_heldout_score_eval_<s>         held-out raw NLU datasets, Korean
                                          templates (rank classification)
    korani_heldout_score_eval_en_<s>      the same, English templates
    korani_train_release_<s>              every seen dataset from the KORANI
                                          release CSVs (Korean, pre-rendered)
    korani_heldout_release_score_eval_<s> held-out release NLU datasets
    korani_heldout_generate_eval_<s>      held-out generation (NLG) datasets,
                                          decoded and scored by ROUGE-L; only
                                          registered where a setting has some
    korani_heldout_release_generate_eval_<s>  the same from the release CSVs
                                          (summarization in ``korani``)

and, without the ``_<s>`` suffix, the same mixtures for the default setting
(heldout.yaml's ``default``, or ``$KORANI_HELDOUT_SPLIT`` at import).
Training mixtures use T0's rates (`mixtures.rates.CappedRate`); evaluation
mixtures weight every task 1. A held-out dataset is never in a training
mixture of its setting (tests/test_mixtures.py checks both settings).
"""

from collections.abc import Callable

import seqio

import korani_tasks  # registers the tasks  # pylint: disable=unused-import
from korani_tasks import catalog
from korani_tasks import heldout
from korani_tasks import tasks
from mixtures import rates


def _task_infos(
    predicate: Callable[[tasks.TaskInfo], bool]) -> list[tasks.TaskInfo]:
  return sorted((info for info in tasks.all_task_infos().values()
                 if predicate(info)), key=lambda info: info.name)


def _templates_per_dataset(infos: list[tasks.TaskInfo]) -> dict[str, int]:
  counts: dict[str, int] = {}
  for info in infos:
    counts[info.dataset] = counts.get(info.dataset, 0) + 1
  return counts


def training_tasks(setting: heldout.HeldOutSetting, template_lang: str,
                   source: str = "raw") -> list[tuple[str, rates.CappedRate]]:
  """(task, rate) of the training mixture of `setting` in one language."""
  infos = _task_infos(
      lambda i: i.kind == tasks.TRAIN and i.source == source
      and i.template_lang == template_lang
      and not setting.is_held_out(i.dataset))
  per_dataset = _templates_per_dataset(infos)
  return [(i.name, rates.CappedRate(per_dataset[i.dataset])) for i in infos]


def heldout_score_eval_tasks(setting: heldout.HeldOutSetting,
                             template_lang: str,
                             source: str = "raw") -> list[str]:
  """Score-eval tasks of the held-out datasets of `setting`."""
  return [i.name for i in _task_infos(
      lambda i: i.kind == tasks.SCORE_EVAL and i.source == source
      and i.template_lang == template_lang
      and setting.is_held_out(i.dataset))]


def heldout_generate_eval_tasks(setting: heldout.HeldOutSetting,
                                template_lang: str,
                                source: str = "raw") -> list[str]:
  """Tasks of the held-out generation datasets of `setting`, to decode.

  Their validation split is decoded and scored with the tasks' predict
  metric (ROUGE-L, korani_tasks/rouge.py).
  """
  entries = catalog.load()
  return [i.name for i in _task_infos(
      lambda i: i.kind == tasks.TRAIN and i.source == source
      and i.template_lang == template_lang
      and entries[i.dataset].kind == "nlg"
      and setting.is_held_out(i.dataset))]


def _add(name: str, task_rates) -> None:
  if task_rates:
    seqio.MixtureRegistry.add(name, task_rates, default_rate=1.0)


def register(setting: heldout.HeldOutSetting, suffix: str) -> None:
  """Registers the mixtures of one setting, names ending in `suffix`."""
  _add(f"korani_train{suffix}", training_tasks(setting, "ko"))
  _add(f"korani_train_en{suffix}", training_tasks(setting, "en"))
  _add(f"korani_heldout_score_eval{suffix}",
       heldout_score_eval_tasks(setting, "ko"))
  _add(f"korani_heldout_score_eval_en{suffix}",
       heldout_score_eval_tasks(setting, "en"))
  _add(f"korani_train_release{suffix}",
       training_tasks(setting, "ko", source="release"))
  _add(f"korani_heldout_release_score_eval{suffix}",
       heldout_score_eval_tasks(setting, "ko", source="release"))
  _add(f"korani_heldout_generate_eval{suffix}",
       heldout_generate_eval_tasks(setting, "ko"))
  _add(f"korani_heldout_release_generate_eval{suffix}",
       heldout_generate_eval_tasks(setting, "ko", source="release"))


for _setting in heldout.settings().values():
  register(_setting, f"_{_setting.name}")
register(heldout.default(), "")
