"""Registers one SeqIO task per (dataset, template language, template).

Names::

    korani_<dataset>_<ko|en>_<template_id>              inputs/targets, for training
    korani_<dataset>_<ko|en>_<template_id>_score_eval   one example per answer choice

e.g. ``korani_kobest_copa_en_best_option_score_eval`` scores KoBEST COPA (Korean
data) with the English version of the ``best_option`` template: a
cross-lingual template. Registration reads the catalog and the template files
only; data files are read when a task's dataset is first requested.
"""

from collections.abc import Callable
import dataclasses
import functools
from typing import Any, Mapping

import seqio

from korani_tasks import caching
from korani_tasks import catalog
from korani_tasks import metrics
from korani_tasks import preprocessors
from korani_tasks import readers
from korani_tasks import rouge
from korani_tasks import sources
from korani_tasks import templates
from korani_tasks import vocab

TRAIN = "train"
SCORE_EVAL = "score_eval"

VOCABULARY = vocab.TaskVocabulary()
OUTPUT_FEATURES = {
    "inputs": seqio.Feature(vocabulary=VOCABULARY, add_eos=True),
    "targets": seqio.Feature(vocabulary=VOCABULARY, add_eos=True),
}


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  """What a registered task is, for mixtures, reports and result files."""
  name: str
  dataset: str
  cluster: str
  template: templates.PromptTemplate | None  # None: rendered in the source
  data_lang: str
  kind: str  # TRAIN or SCORE_EVAL
  source: str = "raw"  # "raw" or "release" (see catalog.yaml)

  @property
  def template_id(self) -> str:
    return self.template.template_id if self.template else self.source

  @property
  def template_lang(self) -> str:
    return self.template.lang if self.template else self.data_lang


_TASK_INFO: dict[str, TaskInfo] = {}


def task_name(dataset: str, template_lang: str, template_id: str,
              kind: str = TRAIN) -> str:
  name = f"korani_{dataset}_{template_lang}_{template_id}"
  return name if kind == TRAIN else f"{name}_{SCORE_EVAL}"


def task_info(name: str) -> TaskInfo:
  """The TaskInfo of a registered task; KeyError names unknown tasks."""
  try:
    return _TASK_INFO[name]
  except KeyError:
    raise KeyError(f"{name!r} is not a KORANI task") from None


def all_task_infos() -> Mapping[str, TaskInfo]:
  return dict(_TASK_INFO)


def register_task(info: TaskInfo, source: seqio.DataSource,
                  render: Callable[..., Any]) -> None:
  """Registers one task with seqio and records its TaskInfo.

  Args:
    info: what the task is; ``info.kind`` picks the remaining preprocessors
      and, for SCORE_EVAL, the rank-classification metrics. TRAIN tasks of
      generation ('nlg') datasets get the ROUGE-L predict metric
      (`rouge.rouge_l`), so seqio.Evaluator decodes their eval split.
    source: the task's data source.
    render: the preprocessor that turns source records into ``inputs``,
      ``targets``, ``answer_choices`` and ``answer_index`` (see
      `preprocessors.apply_prompt_template`), keeping ``example_index``.
      The offline cache (korani_tasks/caching.py) holds its output: text.
  """
  version = caching.AddTaskVersion(caching.task_version(
      getattr(source, "version_id", repr(source)), info.template, info.kind,
      caching.describe(render)))
  cache = [version, seqio.CacheDatasetPlaceholder(),
           caching.drop_task_version]
  if info.kind == TRAIN:
    preprocessor_list = [render, preprocessors.select_inputs_targets] + cache
    extra = {}
    entry = catalog.load().get(info.dataset)  # None for P3 datasets
    if entry is not None and entry.kind == "nlg":
      # Generation datasets are also evaluated by decoding (t5x_runs.decoding).
      extra = dict(metric_fns=[rouge.rouge_l])
  else:
    preprocessor_list = [render] + cache + [preprocessors.rank_classification]
    extra = dict(postprocess_fn=metrics.score_eval_target,
                 metric_fns=[metrics.accuracy,
                             metrics.length_normalized_accuracy])
  seqio.TaskRegistry.add(
      info.name,
      task_cls=caching.KoraniTask,
      source=source,
      preprocessors=preprocessor_list + [
          seqio.preprocessors.tokenize,
          seqio.preprocessors.append_eos_after_trim,
      ],
      output_features=OUTPUT_FEATURES,
      **extra)
  _TASK_INFO[info.name] = info


def register_dataset(dataset: catalog.DatasetInfo) -> list[str]:
  """Registers the train and score-eval tasks of one raw dataset; returns names."""
  source = sources.KoraniTfdsSource(
      dataset.key, splits=readers.RAW_DATASETS[dataset.key].splits,
      example_index=True)
  names = []
  for lang, lang_templates in templates.load_templates(dataset.key).items():
    for template in lang_templates:
      kinds = [TRAIN] + ([SCORE_EVAL] if template.answer_choices else [])
      for kind in kinds:
        info = TaskInfo(
            name=task_name(dataset.key, lang, template.template_id, kind),
            dataset=dataset.key, cluster=dataset.cluster, template=template,
            data_lang=dataset.language, kind=kind)
        register_task(info, source, functools.partial(
            preprocessors.apply_prompt_template, template=template))
        names.append(info.name)
  return names


def register_all() -> None:
  """Registers tasks for every raw dataset that has a template file."""
  with_templates = set(templates.available_datasets())
  for dataset in catalog.load().values():
    if dataset.key in readers.RAW_DATASETS and dataset.key in with_templates:
      register_dataset(dataset)


register_all()
