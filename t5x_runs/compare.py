"""Compares evaluations of several training settings, as the paper's tables.

Each run's evaluation wrote ``results.json`` (t5x_runs/results.py). Given one
per training setting, `format_comparison` builds, per T0's reporting:

- per held-out dataset: the median accuracy over templates, one column per
  setting;
- per cluster and data language: the average of the dataset medians; and
  per data language the average over clusters.

A setting whose evaluation used templates of one language is one column
(its template language in the header); one that used both is two columns,
``<setting> (ko)`` and ``<setting> (en)``. So a monolingual and a
cross-lingual run of the same held-out data sit side by side, as in the
paper's tables.

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


def _columns(setting: str, rows: Sequence[results.ResultRow],
             metric: str) -> dict[str, list[results.ResultRow]]:
  """The columns of one setting: {column name: its rows}."""
  langs = sorted({r.template_lang for r in rows if r.metric == metric})
  if len(langs) == 1:
    return {setting: [r for r in rows if r.metric == metric]}
  return {f"{setting} ({lang})": [r for r in rows if r.metric == metric
                                  and r.template_lang == lang]
          for lang in langs}


def summarize(runs: Mapping[str, Sequence[results.ResultRow]],
              metric: str = results.MAIN_METRIC) -> dict:
  """The comparison as data: datasets, clusters and languages per column.

  Returns:
    ``{"columns": [...], "template_langs": {column: lang},
    "datasets": {key: {column: median}}, "templates": {key: {column: count}},
    "clusters": {key: {column: average}}, "languages": {key: {column:
    average}}, "mixed_template_versions": [...]}``, keys joined with '/':
    ``"en/nli/super_glue_rte"`` (data language, cluster, dataset),
    ``"en/nli"``, ``"en"``. ``mixed_template_versions`` lists the templates
    (``"<dataset>/<template lang>/<template>"``) whose rows carry more than
    one `ResultRow.template_version` across the runs: the template was
    edited between them.
  """
  if not runs:
    raise errors.ConfigError("compare needs at least one run")
  columns, template_langs = [], {}
  datasets, templates, clusters, languages = {}, {}, {}, {}
  for setting, all_rows in runs.items():
    per_column = _columns(setting, all_rows, metric)
    if not any(per_column.values()):
      raise errors.ConfigError(f"{setting}: no {metric!r} rows to compare")
    for column, rows in per_column.items():
      columns.append(column)
      template_langs[column] = rows[0].template_lang
      values = collections.defaultdict(list)
      for r in rows:
        values[(r.data_lang, r.cluster, r.dataset)].append(r.value)
      per_cluster = collections.defaultdict(list)
      for (data_lang, cluster, dataset), v in values.items():
        key = f"{data_lang}/{cluster}/{dataset}"
        datasets.setdefault(key, {})[column] = statistics.median(v)
        templates.setdefault(key, {})[column] = len(v)
        per_cluster[(data_lang, cluster)].append(statistics.median(v))
      per_language = collections.defaultdict(list)
      for (data_lang, cluster), medians in per_cluster.items():
        average = statistics.mean(medians)
        clusters.setdefault(f"{data_lang}/{cluster}", {})[column] = average
        per_language[data_lang].append(average)
      for data_lang, averages in per_language.items():
        languages.setdefault(data_lang, {})[column] = statistics.mean(averages)
  if len(set(columns)) != len(columns):
    raise errors.ConfigError(f"repeated column names: {columns}")
  versions = collections.defaultdict(set)
  for all_rows in runs.values():
    for r in all_rows:
      if r.metric == metric:
        versions[(r.dataset, r.template_lang, r.template)].add(
            r.template_version)
  return {"columns": columns, "template_langs": template_langs,
          "metric": metric, "datasets": datasets, "templates": templates,
          "clusters": clusters, "languages": languages,
          "mixed_template_versions": sorted(
              "/".join(key) for key, v in versions.items() if len(v) > 1)}


def _table(header, body) -> str:
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in body]
  return "\n".join(lines)


def _fmt(value) -> str:
  return "–" if value is None else f"{value:.1f}"


def format_comparison(summary: dict, title: str = "") -> str:
  """comparison.md: the tables of `summarize`, one column per setting."""
  columns = summary["columns"]
  header = [f"{c} [{summary['template_langs'][c]}]" for c in columns]
  parts = [f"# Comparison{': ' + title if title else ''}", "",
           f"Metric: {summary['metric']} (rank classification, %). data = "
           "language of the evaluation data; [ko]/[en] = language of the "
           "templates of each column.", ""]
  parts += ["## Per held-out dataset: median over templates", ""]
  body = []
  for key in sorted(summary["datasets"]):
    counts = summary["templates"][key]
    body.append(key.split("/") + [
        _fmt(summary["datasets"][key].get(c))
        + (f" ({counts[c]})" if c in counts else "") for c in columns])
  parts += [_table(["data", "cluster", "dataset"] + header, body), "",
            "(n) = number of templates.", ""]
  parts += ["## Per cluster: average of dataset medians", ""]
  body = [key.split("/") + [_fmt(summary["clusters"][key].get(c))
                            for c in columns]
          for key in sorted(summary["clusters"])]
  parts += [_table(["data", "cluster"] + header, body), ""]
  parts += ["## Per data language: average over clusters", ""]
  body = [[key] + [_fmt(summary["languages"][key].get(c)) for c in columns]
          for key in sorted(summary["languages"])]
  parts += [_table(["data"] + header, body)]
  mixed = summary.get("mixed_template_versions")
  if mixed:
    parts += ["", "Scored with different versions of the same template "
              "(edited between the runs; see template_version in "
              "results.json): " + ", ".join(mixed) + "."]
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
