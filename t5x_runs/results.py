"""Result files of an evaluation: results.json (rows) and results.md (tables).

results.json is a list of rows, one per (task, metric)::

    [{"task": "korani_kobest_copa_en_best_option_score_eval",
      "dataset": "kobest_copa", "cluster": "sentence_completion",
      "template": "best_option", "template_lang": "en", "data_lang": "ko",
      "metric": "accuracy", "value": 53.2, "num_examples": 500,
      "num_truncated": 0, "split": "validation", "checkpoint_step": 600}, ...]

results.md summarizes them the way T0 and the KORANI paper report: accuracy
per template, the median and mean over templates per dataset, and per
cluster the average of the dataset medians, for each template language.
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


def write_atomically(path: str, text: str) -> None:
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
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


def dataset_summary(rows: Sequence[ResultRow], metric: str = MAIN_METRIC
                    ) -> dict[tuple[str, str], dict[str, float]]:
  """{(dataset, template_lang): {median, mean, num_templates}} of a metric."""
  values = collections.defaultdict(list)
  for r in rows:
    if r.metric == metric:
      values[(r.dataset, r.template_lang)].append(r.value)
  return {key: {"median": statistics.median(v), "mean": statistics.mean(v),
                "num_templates": len(v)} for key, v in values.items()}


def cluster_summary(rows: Sequence[ResultRow], metric: str = MAIN_METRIC
                    ) -> dict[tuple[str, str], float]:
  """{(cluster, template_lang): average of the dataset medians}."""
  cluster_of = {r.dataset: r.cluster for r in rows}
  medians = collections.defaultdict(list)
  for (dataset, lang), s in dataset_summary(rows, metric).items():
    medians[(cluster_of[dataset], lang)].append(s["median"])
  return {key: statistics.mean(v) for key, v in medians.items()}


def format_markdown(rows: Sequence[ResultRow], title: str = "") -> str:
  """The tables of results.md (see the module docstring)."""
  langs = sorted({r.template_lang for r in rows}, key=lambda l: (l != "ko", l))
  metrics = sorted({r.metric for r in rows}, key=lambda m: (m != MAIN_METRIC, m))
  value = {(r.dataset, r.template, r.template_lang, r.metric): r for r in rows}
  parts = [f"# Results{': ' + title if title else ''}", ""]

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

  summary = dataset_summary(rows)
  parts += [f"## Per dataset: median and mean {MAIN_METRIC} over templates", ""]
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

  clusters = cluster_summary(rows)
  parts += ["## Per cluster: average of dataset medians", ""]
  body = [[cluster] + [_fmt(clusters.get((cluster, lang))) for lang in langs]
          for cluster in sorted({r.cluster for r in rows})]
  parts += [_table(["cluster"] + [f"{lang} templates" for lang in langs], body)]
  truncated = sum(r.num_truncated for r in rows if r.metric == MAIN_METRIC)
  if truncated:
    parts += ["", f"{truncated} scored inputs were truncated to the maximum "
              "input length (see num_truncated in results.json)."]
  return "\n".join(parts) + "\n"
