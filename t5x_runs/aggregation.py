"""T0's aggregation of held-out scores: median over templates, mean over clusters.

The one implementation behind results.md (t5x_runs/results.py), `korani
compare` (compare.py) and `korani report` (report.py), so that the three
print the same numbers for the same rows.

A *column* is the rows of one evaluation scored with templates of one
language, one metric per dataset. In a column:

- a dataset's value is the median over its templates (the mean is kept for
  reference);
- a cluster's value, per data language, is the mean of its datasets'
  medians;
- a data language's value is the mean of its clusters' values;
- the overall value is the mean of all its clusters' values (clusters of
  each data language count apart).

Columns put side by side average the same datasets: per data language, the
datasets that every column with data of that language has
(`comparable_datasets`). With two columns of Korean data::

    column a: kobest_copa 60 (median of 50, 60, 80), kobest_hellaswag 50,
              kobest_wic 40, kobest_sentineg 70
    column b: kobest_copa 65, kobest_wic 45 (no hellaswag, no sentineg)
    averaged: kobest_copa, kobest_wic
    clusters (a): ko/sentence_completion 60, ko/wsd 40; overall (a) 50.0
    clusters (b): ko/sentence_completion 65, ko/wsd 45; overall (b) 55.0

Each dataset is reported by one metric (`main_metric`): ROUGE-L for
generation datasets, accuracy for rank-classified ones, unless one metric
is asked for.
"""

import collections
import dataclasses
import statistics
from typing import Collection, Iterable, Mapping, Protocol, Sequence

MAIN_METRIC = "accuracy"
# Names a ROUGE-L score may carry, in order of preference: a dataset with one
# of them is a generation dataset and is reported by it.
NLG_MAIN_METRICS = ("rougeL", "rougeLsum", "rouge_l")


class Row(Protocol):
  """The fields of a results.json row (`results.ResultRow`) used here."""
  dataset: str
  cluster: str
  template_lang: str
  data_lang: str
  metric: str
  value: float


@dataclasses.dataclass(frozen=True)
class DatasetScore:
  """A dataset's value in one column: its metric over its templates."""
  dataset: str
  cluster: str
  data_lang: str
  metric: str
  median: float
  mean: float
  num_templates: int


@dataclasses.dataclass(frozen=True)
class ColumnSummary:
  """The aggregates of one column (see the module docstring).

  Attributes:
    template_lang: the language of the column's templates.
    datasets: {dataset: its score}, every dataset of the column.
    averaged: the datasets the averages below are over.
    clusters: {(data_lang, cluster): mean of its averaged datasets' medians}.
    languages: {data_lang: mean of its clusters}.
    overall: the mean of all clusters; None with no averaged dataset.
  """
  template_lang: str
  datasets: Mapping[str, DatasetScore]
  averaged: frozenset[str]
  clusters: Mapping[tuple[str, str], float]
  languages: Mapping[str, float]
  overall: float | None


def main_metric(metrics: Iterable[str]) -> str | None:
  """The metric a dataset is reported by, among the metrics it has.

  ROUGE-L (any of `NLG_MAIN_METRICS`) when present, else accuracy, else the
  first name in sorted order; None for no metrics.

      >>> main_metric(["length_normalized_accuracy", "accuracy"])
      'accuracy'
      >>> main_metric(["rougeL", "rouge1"])
      'rougeL'
  """
  present = set(metrics)
  for metric in NLG_MAIN_METRICS + (MAIN_METRIC,):
    if metric in present:
      return metric
  return min(present) if present else None


def main_metrics(rows: Iterable[Row]) -> dict[str, str]:
  """{dataset: its main metric} over all the rows of each dataset."""
  names = collections.defaultdict(set)
  for r in rows:
    names[r.dataset].add(r.metric)
  return {dataset: main_metric(m) for dataset, m in names.items()}


def select_metric(rows: Sequence[Row],
                  metric: str | None = MAIN_METRIC,
                  reference: Iterable[Row] | None = None) -> list[Row]:
  """The rows of `metric`, or of each dataset's main metric if it is None.

  A dataset's main metric is chosen over the rows of `reference` (default:
  `rows`), so that several runs report a dataset by the same metric.
  """
  if metric is not None:
    return [r for r in rows if r.metric == metric]
  main = main_metrics(rows if reference is None else reference)
  return [r for r in rows if r.metric == main.get(r.dataset)]


def lang_order(lang: str) -> tuple:
  """Sort key of template languages: Korean, English, then the others."""
  return (lang != "ko", lang != "en", lang)


def split_columns(name: str, rows: Sequence[Row]) -> dict[str, list[Row]]:
  """One run's columns, {column name: its rows}, one per template language.

  A run scored with templates of one language is one column, `name`; one
  scored with both is ``<name> (ko)`` and ``<name> (en)``.
  """
  langs = sorted({r.template_lang for r in rows}, key=lang_order)
  if len(langs) == 1:
    return {name: list(rows)}
  return {f"{name} ({lang})": [r for r in rows if r.template_lang == lang]
          for lang in langs}


def dataset_scores(rows: Sequence[Row]) -> dict[str, DatasetScore]:
  """{dataset: median and mean over its templates} of one column's rows.

  Raises:
    ValueError: the rows mix template languages, or a dataset has rows of
      two metrics (select one first: `select_metric`).
  """
  langs = {r.template_lang for r in rows}
  if len(langs) > 1:
    raise ValueError(f"a column holds one template language, got {langs}")
  values = collections.defaultdict(list)
  first = {}
  for r in rows:
    values[r.dataset].append(r.value)
    seen = first.setdefault(r.dataset, r)
    if seen.metric != r.metric:
      raise ValueError(f"{r.dataset}: rows of metrics {seen.metric!r} and "
                       f"{r.metric!r} in one column; select one metric")
  return {d: DatasetScore(d, first[d].cluster, first[d].data_lang,
                          first[d].metric, statistics.median(v),
                          statistics.mean(v), len(v))
          for d, v in values.items()}


def summarize_column(rows: Sequence[Row],
                     averaged: Collection[str] | None = None
                     ) -> ColumnSummary:
  """The aggregates of one column, averaging `averaged` (default: all)."""
  scores = dataset_scores(rows)
  chosen = frozenset(scores if averaged is None else
                     set(scores) & set(averaged))
  medians = collections.defaultdict(list)
  for dataset in sorted(chosen):
    s = scores[dataset]
    medians[(s.data_lang, s.cluster)].append(s.median)
  clusters = {key: statistics.mean(v) for key, v in sorted(medians.items())}
  per_lang = collections.defaultdict(list)
  for (data_lang, _), value in clusters.items():
    per_lang[data_lang].append(value)
  return ColumnSummary(
      template_lang=rows[0].template_lang if rows else "",
      datasets=scores, averaged=chosen, clusters=clusters,
      languages={lang: statistics.mean(v)
                 for lang, v in sorted(per_lang.items())},
      overall=statistics.mean(clusters.values()) if clusters else None)


def comparable_datasets(columns: Mapping[str, Sequence[Row]]) -> set[str]:
  """Per data language, the datasets every column with such data has."""
  held = collections.defaultdict(list)  # data_lang: [datasets of a column]
  for rows in columns.values():
    per_lang = collections.defaultdict(set)
    for r in rows:
      per_lang[r.data_lang].add(r.dataset)
    for lang, datasets in per_lang.items():
      held[lang].append(datasets)
  return set().union(*(set.intersection(*sets) for sets in held.values()))


def summarize_columns(columns: Mapping[str, Sequence[Row]]
                      ) -> dict[str, ColumnSummary]:
  """{column name: its aggregates}, all over the comparable datasets."""
  averaged = comparable_datasets(columns)
  return {name: summarize_column(rows, averaged)
          for name, rows in columns.items()}
