"""Result files of an evaluation: results.json (rows) and results.md (tables).

results.json is a list of rows, one per (task, metric)::

    [{"task": "korani_kobest_copa_en_best_option_score_eval",
      "dataset": "kobest_copa", "cluster": "sentence_completion",
      "template": "best_option", "template_lang": "en", "data_lang": "ko",
      "metric": "accuracy", "value": 53.2, "num_examples": 500,
      "num_truncated": 0, "split": "validation", "checkpoint_step": 600,
      "num_unscorable": 0, "unscorable_rows": "score",
      "left_out_datasets": []}, ...]

results.md summarizes them the way T0 and the KORANI paper report: accuracy
per template, the median and mean over templates per dataset, and per
cluster the average of the dataset medians, for each template language.

The summaries are pure functions of the rows. Each takes a ``metric``:
a metric name, or None for each dataset's main metric (`main_metric`:
ROUGE-L for generation datasets, accuracy for rank-classified ones). With
rows of one template of two datasets::

    rows: kobest_copa  ko t1 accuracy 50, ko t2 accuracy 60, ko t3 accuracy 80
          kobest_wic   ko t1 accuracy 40
    template_summary -> {("kobest_copa", "ko", "t1"): 50, ...}
    dataset_summary  -> {("kobest_copa", "ko"): {"median": 60, "mean": 63.3,
                         "num_templates": 3, "metric": "accuracy"}, ...}
    cluster_summary  -> {(cluster, "ko"): mean of the dataset medians}
    language_summary -> {("ko", "ko"): (60 + 40) / 2 = 50}  # (data, template)
"""

import collections
import dataclasses
import json
import os
import statistics
from typing import Iterable, Sequence

import tensorflow as tf

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
MAIN_METRIC = "accuracy"
# Names a ROUGE-L score may carry, in order of preference: a dataset with one
# of them is a generation dataset and is reported by it.
NLG_MAIN_METRICS = ("rougeL", "rougeLsum", "rouge_l")


@dataclasses.dataclass(frozen=True)
class ResultRow:
  task: str
  dataset: str
  cluster: str
  template: str
  template_lang: str
  data_lang: str
  metric: str
  value: float
  num_examples: int
  num_truncated: int
  split: str
  checkpoint_step: int
  # Rows of the task's split whose answer is not among their choices, and
  # what was done with them (korani_tasks.protocol: "score" or "exclude").
  num_unscorable: int = 0
  unscorable_rows: str = "score"
  # Datasets of the evaluated mixture absent from the data folder and left
  # out (ALLOW_ABSENT_DATASETS), the same on every row of a run.
  left_out_datasets: tuple[str, ...] = ()

  def __post_init__(self):
    object.__setattr__(self, "left_out_datasets",
                       tuple(self.left_out_datasets))


def write_atomically(path: str, text: str | bytes) -> None:
  """Writes text (or bytes) to path + '.tmp', then renames it to path."""
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "wb" if isinstance(text, bytes) else "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def write_results(rows: Sequence[ResultRow], output_dir: str,
                  title: str = "") -> None:
  """Writes results.json and results.md to output_dir (atomically)."""
  tf.io.gfile.makedirs(output_dir)
  write_atomically(
      os.path.join(output_dir, RESULTS_JSON),
      json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False,
                 indent=1))
  write_atomically(os.path.join(output_dir, RESULTS_MD),
                    format_markdown(rows, title))


def read_results(output_dir: str) -> list[ResultRow]:
  with tf.io.gfile.GFile(os.path.join(output_dir, RESULTS_JSON)) as f:
    return [ResultRow(**r) for r in json.load(f)]


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in body]
  return "\n".join(lines)


def _fmt(value: float | None) -> str:
  return "–" if value is None else f"{value:.1f}"


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


def main_metrics(rows: Sequence[ResultRow]) -> dict[str, str]:
  """{dataset: its main metric} over all the rows of each dataset."""
  names = collections.defaultdict(set)
  for r in rows:
    names[r.dataset].add(r.metric)
  return {dataset: main_metric(m) for dataset, m in names.items()}


def select_metric(rows: Sequence[ResultRow],
                  metric: str | None = MAIN_METRIC) -> list[ResultRow]:
  """The rows of `metric`, or of each dataset's main metric if it is None."""
  if metric is not None:
    return [r for r in rows if r.metric == metric]
  main = main_metrics(rows)
  return [r for r in rows if r.metric == main[r.dataset]]


def template_summary(rows: Sequence[ResultRow],
                     metric: str | None = MAIN_METRIC
                     ) -> dict[tuple[str, str, str], float]:
  """{(dataset, template_lang, template): value} of a metric."""
  return {(r.dataset, r.template_lang, r.template): r.value
          for r in select_metric(rows, metric)}


def dataset_summary(rows: Sequence[ResultRow],
                    metric: str | None = MAIN_METRIC
                    ) -> dict[tuple[str, str], dict]:
  """{(dataset, template_lang): {median, mean, num_templates, metric}}.

  The median and mean are over the dataset's templates of that language.
  """
  values = collections.defaultdict(list)
  names = {}
  for r in select_metric(rows, metric):
    values[(r.dataset, r.template_lang)].append(r.value)
    names[(r.dataset, r.template_lang)] = r.metric
  return {key: {"median": statistics.median(v), "mean": statistics.mean(v),
                "num_templates": len(v), "metric": names[key]}
          for key, v in values.items()}


def _average_medians(rows: Sequence[ResultRow], metric: str | None,
                     group_of: dict[str, str]) -> dict[tuple[str, str], float]:
  """{(group of the dataset, template_lang): mean of the dataset medians}."""
  medians = collections.defaultdict(list)
  for (dataset, lang), s in dataset_summary(rows, metric).items():
    medians[(group_of[dataset], lang)].append(s["median"])
  return {key: statistics.mean(v) for key, v in medians.items()}


def cluster_summary(rows: Sequence[ResultRow],
                    metric: str | None = MAIN_METRIC
                    ) -> dict[tuple[str, str], float]:
  """{(cluster, template_lang): average of the dataset medians}."""
  return _average_medians(rows, metric, {r.dataset: r.cluster for r in rows})


def language_summary(rows: Sequence[ResultRow],
                     metric: str | None = MAIN_METRIC
                     ) -> dict[tuple[str, str], float]:
  """{(data_lang, template_lang): average of the dataset medians}.

  ("ko", "ko") is monolingual Korean, ("ko", "en") English templates on
  Korean data (cross-lingual), and so on.
  """
  return _average_medians(rows, metric,
                          {r.dataset: r.data_lang for r in rows})


def format_markdown(rows: Sequence[ResultRow], title: str = "") -> str:
  """The tables of results.md (see the module docstring)."""
  langs = sorted({r.template_lang for r in rows}, key=lambda l: (l != "ko", l))
  metrics = sorted({r.metric for r in rows}, key=lambda m: (m != MAIN_METRIC, m))
  value = {(r.dataset, r.template, r.template_lang, r.metric): r for r in rows}
  parts = [f"# Results{': ' + title if title else ''}", ""]
  left_out = sorted({d for r in rows for d in r.left_out_datasets})
  if left_out:
    parts += ["Left out, absent from the data (ALLOW_ABSENT_DATASETS): "
              + ", ".join(left_out) + ".", ""]

  parts += ["## Accuracy per template (rank classification, %)", "",
            "Columns: template language / metric. Data language: "
            + ", ".join(sorted({r.data_lang for r in rows})) + ".", ""]
  header = ["dataset", "cluster", "template", "examples"] + [
      f"{lang} {metric}" for lang in langs for metric in metrics]
  body = []
  for dataset, template in sorted({(r.dataset, r.template) for r in rows}):
    first = next(r for r in rows if (r.dataset, r.template) == (dataset, template))
    cells = [dataset, first.cluster, template, str(first.num_examples)]
    for lang in langs:
      for metric in metrics:
        r = value.get((dataset, template, lang, metric))
        cells.append(_fmt(r.value if r else None))
    body.append(cells)
  parts += [_table(header, body), ""]

  # Each dataset by its main metric: accuracy, ROUGE-L for generation.
  summary = dataset_summary(rows, metric=None)
  names = sorted(set(main_metrics(rows).values()))
  parts += ["## Per dataset: median and mean "
            + (names[0] if len(names) == 1 else "of the main metric ("
               + ", ".join(names) + ")") + " over templates", ""]
  header = ["dataset", "cluster"] + [
      f"{lang} {stat}" for lang in langs for stat in ("median", "mean")]
  body = []
  for dataset in sorted({r.dataset for r in rows}):
    cluster = next(r.cluster for r in rows if r.dataset == dataset)
    cells = [dataset, cluster]
    for lang in langs:
      s = summary.get((dataset, lang))
      cells += [_fmt(s and s["median"]), _fmt(s and s["mean"])]
    body.append(cells)
  parts += [_table(header, body), ""]

  clusters = cluster_summary(rows, metric=None)
  parts += ["## Per cluster: average of dataset medians", ""]
  body = [[cluster] + [_fmt(clusters.get((cluster, lang))) for lang in langs]
          for cluster in sorted({r.cluster for r in rows})]
  parts += [_table(["cluster"] + [f"{lang} templates" for lang in langs], body)]
  unscorable = {r.task: r for r in rows if r.num_unscorable}
  if unscorable:
    parts += ["", "## Rows whose answer is not among their choices", "",
              "Scored: the row counts as wrong, as in the official KORANI "
              "code; excluded: left out of the accuracy (UNSCORABLE_ROWS).",
              "", _table(["task", "rows", "treatment"],
                         [[task, str(r.num_unscorable),
                           "scored" if r.unscorable_rows == "score"
                           else "excluded"]
                          for task, r in sorted(unscorable.items())])]
  truncated = sum(r.num_truncated for r in rows if r.metric == MAIN_METRIC)
  if truncated:
    parts += ["", f"{truncated} scored inputs were truncated to the maximum "
              "input length (see num_truncated in results.json)."]
  return "\n".join(parts) + "\n"
