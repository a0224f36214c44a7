"""Compares evaluations of several training settings, as the paper's tables.

Each run's evaluation wrote ``results.json`` (t5x_runs/results.py). Given one
per training setting, `format_comparison` builds, per T0's reporting:

- per held-out dataset and template language: the median accuracy over
  templates (and the number of templates), one column per setting;
- per cluster, data language and template language: the average of the
  dataset medians, one column per setting; and per data/template language
  the average over clusters.

    korani compare ko_to_en=runs/ko_small/eval en_to_en=runs/en_small/eval \
        --output runs/compare

writes ``comparison.md`` and ``comparison.json`` to the output folder.
"""

import collections
import json
import os
import statistics
from typing import Mapping, Sequence

import tensorflow as tf

from korani_tasks import errors
from t5x_runs import results

COMPARISON_MD = "comparison.md"
COMPARISON_JSON = "comparison.json"


def _medians(rows: Sequence[results.ResultRow], metric: str
             ) -> dict[tuple[str, str, str, str], tuple[float, int]]:
  """{(data_lang, cluster, dataset, template_lang): (median, templates)}."""
  values = collections.defaultdict(list)
  for r in rows:
    if r.metric == metric:
      values[(r.data_lang, r.cluster, r.dataset, r.template_lang)].append(
          r.value)
  return {k: (statistics.median(v), len(v)) for k, v in values.items()}


def summarize(runs: Mapping[str, Sequence[results.ResultRow]],
              metric: str = results.MAIN_METRIC) -> dict:
  """The comparison as data: datasets, clusters and languages per setting.

  Returns:
    ``{"settings": [...], "datasets": {key: {setting: median}},
    "templates": {key: {setting: count}}, "clusters": {key: {setting: avg}},
    "languages": {key: {setting: avg}}}``, keys joined with '/', e.g.
    ``"en/nli/super_glue_rte/ko"`` (data language, cluster, dataset,
    template language).
  """
  if not runs:
    raise errors.ConfigError("compare needs at least one run")
  datasets, templates = {}, {}
  clusters, languages = {}, {}
  for setting, rows in runs.items():
    medians = _medians(rows, metric)
    if not medians:
      raise errors.ConfigError(f"{setting}: no {metric!r} rows to compare")
    per_cluster = collections.defaultdict(list)
    for (data_lang, cluster, dataset, lang), (median, count) in medians.items():
      key = f"{data_lang}/{cluster}/{dataset}/{lang}"
      datasets.setdefault(key, {})[setting] = median
      templates.setdefault(key, {})[setting] = count
      per_cluster[(data_lang, cluster, lang)].append(median)
    per_language = collections.defaultdict(list)
    for (data_lang, cluster, lang), values in per_cluster.items():
      average = statistics.mean(values)
      clusters.setdefault(f"{data_lang}/{cluster}/{lang}", {})[setting] = (
          average)
      per_language[(data_lang, lang)].append(average)
    for (data_lang, lang), values in per_language.items():
      languages.setdefault(f"{data_lang}/{lang}", {})[setting] = (
          statistics.mean(values))
  return {"settings": list(runs), "metric": metric, "datasets": datasets,
          "templates": templates, "clusters": clusters,
          "languages": languages}


def _table(header, body) -> str:
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in body]
  return "\n".join(lines)


def _fmt(value) -> str:
  return "–" if value is None else f"{value:.1f}"


def format_comparison(summary: dict, title: str = "") -> str:
  """comparison.md: the tables of `summarize`, one column per setting."""
  settings = summary["settings"]
  parts = [f"# Comparison{': ' + title if title else ''}", "",
           f"Metric: {summary['metric']} (rank classification, %). Data = "
           "language of the evaluation data; templates = language of the "
           "prompts.", ""]
  parts += ["## Per held-out dataset: median over templates", ""]
  body = []
  for key in sorted(summary["datasets"]):
    data_lang, cluster, dataset, lang = key.split("/")
    counts = summary["templates"][key]
    body.append([data_lang, cluster, dataset, lang,
                 str(max(counts.values()))]
                + [_fmt(summary["datasets"][key].get(s)) for s in settings])
  parts += [_table(["data", "cluster", "dataset", "templates", "#"]
                   + settings, body), ""]
  parts += ["## Per cluster: average of dataset medians", ""]
  body = [key.split("/") + [_fmt(summary["clusters"][key].get(s))
                            for s in settings]
          for key in sorted(summary["clusters"])]
  parts += [_table(["data", "cluster", "templates"] + settings, body), ""]
  parts += ["## Per language: average over clusters", ""]
  body = [key.split("/") + [_fmt(summary["languages"][key].get(s))
                            for s in settings]
          for key in sorted(summary["languages"])]
  parts += [_table(["data", "templates"] + settings, body)]
  return "\n".join(parts) + "\n"


def compare(runs: Mapping[str, str], output_dir: str,
            metric: str = results.MAIN_METRIC, title: str = "") -> str:
  """Reads each setting's results.json folder; writes the comparison files.

  Args:
    runs: {setting name: folder with results.json}, in column order.
    output_dir: where comparison.md and comparison.json go.

  Returns:
    The markdown.

  Raises:
    MissingDataError: a folder has no results.json (the message names it).
  """
  rows = {}
  for setting, folder in runs.items():
    path = os.path.join(folder, results.RESULTS_JSON)
    if not tf.io.gfile.exists(path):
      raise errors.MissingDataError(
          f"{setting}: {path} does not exist; run `korani eval` for it first")
    rows[setting] = results.read_results(folder)
  summary = summarize(rows, metric)
  markdown = format_comparison(summary, title)
  tf.io.gfile.makedirs(output_dir)
  results.write_atomically(os.path.join(output_dir, COMPARISON_JSON),
                           json.dumps(summary, ensure_ascii=False, indent=1))
  results.write_atomically(os.path.join(output_dir, COMPARISON_MD), markdown)
  return markdown
