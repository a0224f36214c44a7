"""Compares evaluations of several training settings, as the paper's tables.

Each run's evaluation wrote ``results.json`` (t5x_runs/results.py). Given one
per training setting, `format_comparison` builds, per T0's reporting:

- per held-out dataset: the median over templates of its main metric
  (accuracy; ROUGE-L for generation datasets) or of the metric asked for,
  one column per setting;
- per cluster and data language: the mean of the dataset medians; per data
  language the mean over its clusters; overall the mean over all clusters.

The aggregation is `t5x_runs.aggregation`'s, shared with results.md and
`korani report`, so the same runs give the same numbers in each: averages
are over the datasets every column with data of that language has.

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
from typing import Mapping, Sequence

import tensorflow as tf

from korani_tasks import errors
from t5x_runs import aggregation
from t5x_runs import results

COMPARISON_MD = "comparison.md"
COMPARISON_JSON = "comparison.json"


def summarize(runs: Mapping[str, Sequence[results.ResultRow]],
              metric: str | None = None) -> dict:
  """The comparison as data: datasets, clusters and languages per column.

  Aggregated by `t5x_runs.aggregation`, as `korani report` does: a
  dataset's value is its median over templates, a cluster's the mean of its
  datasets' medians, a data language's the mean of its clusters, overall
  the mean of all clusters; averages are over the datasets every column
  with data of that language has.

  Args:
    runs: {setting: its results.json rows}, in column order.
    metric: one metric for every dataset, or None for each dataset's main
      metric (accuracy; ROUGE-L for generation datasets).

  Returns:
    ``{"columns": [...], "template_langs": {column: lang}, "metric":
    metric, "metrics": [names used], "datasets": {key: {column: median}},
    "templates": {key: {column: count}}, "averaged": [keys],
    "clusters": {key: {column: average}}, "languages": {key: {column:
    average}}, "overall": {column: average}, "mixed_template_versions":
    [...]}``, keys joined with '/': ``"en/nli/super_glue_rte"`` (data
    language, cluster, dataset), ``"en/nli"``, ``"en"``.
    ``mixed_template_versions`` lists the templates (``"<dataset>/<template
    lang>/<template>"``) whose rows carry more than one
    `ResultRow.template_version` across the runs: the template was edited
    between them.
  """
  if not runs:
    raise errors.ConfigError("compare needs at least one run")
  every_row = [r for rows in runs.values() for r in rows]
  columns, versions = {}, collections.defaultdict(set)
  for setting, all_rows in runs.items():
    rows = aggregation.select_metric(all_rows, metric, reference=every_row)
    if not rows:
      raise errors.ConfigError(
          f"{setting}: no {metric or 'main-metric'} rows to compare")
    columns.update(aggregation.split_columns(setting, rows))
    for r in rows:
      versions[(r.dataset, r.template_lang, r.template)].add(
          r.template_version)
  if len(columns) != sum(
      len({r.template_lang for r in rows}) for rows in runs.values()):
    raise errors.ConfigError(f"repeated column names: {list(columns)}")
  summary = {"columns": list(columns), "template_langs": {}, "metric": metric,
             "metrics": [], "datasets": {}, "templates": {}, "averaged": [],
             "clusters": {}, "languages": {}, "overall": {},
             "mixed_template_versions": sorted(
                 "/".join(key) for key, v in versions.items() if len(v) > 1)}
  for column, s in aggregation.summarize_columns(columns).items():
    summary["template_langs"][column] = s.template_lang
    for d in s.datasets.values():
      key = f"{d.data_lang}/{d.cluster}/{d.dataset}"
      summary["datasets"].setdefault(key, {})[column] = d.median
      summary["templates"].setdefault(key, {})[column] = d.num_templates
      if d.dataset in s.averaged and key not in summary["averaged"]:
        summary["averaged"].append(key)
      if d.metric not in summary["metrics"]:
        summary["metrics"].append(d.metric)
    for (data_lang, cluster), value in s.clusters.items():
      summary["clusters"].setdefault(f"{data_lang}/{cluster}", {})[column] = (
          value)
    for data_lang, value in s.languages.items():
      summary["languages"].setdefault(data_lang, {})[column] = value
    if s.overall is not None:
      summary["overall"][column] = s.overall
  summary["averaged"].sort()
  return summary


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
           f"Metric: {' / '.join(summary['metrics'])}"
           + ("" if summary["metric"] else " (each dataset's main metric)")
           + ". data = language of the evaluation data; [ko]/[en] = "
           "language of the templates of each column.", ""]
  parts += ["## Per held-out dataset: median over templates", ""]
  body = []
  for key in sorted(summary["datasets"]):
    counts = summary["templates"][key]
    data_lang, cluster, dataset = key.split("/")
    mark = "" if key in summary["averaged"] else " *"
    body.append([data_lang, cluster, dataset + mark] + [
        _fmt(summary["datasets"][key].get(c))
        + (f" ({counts[c]})" if c in counts else "") for c in columns])
  parts += [_table(["data", "cluster", "dataset"] + header, body), "",
            "(n) = number of templates; * = not in every column with data "
            "of its language: left out of the averages.", ""]
  parts += ["## Per cluster: average of dataset medians", ""]
  body = [key.split("/") + [_fmt(summary["clusters"][key].get(c))
                            for c in columns]
          for key in sorted(summary["clusters"])]
  parts += [_table(["data", "cluster"] + header, body), ""]
  parts += ["## Per data language and overall: average over clusters", ""]
  body = [[key] + [_fmt(summary["languages"][key].get(c)) for c in columns]
          for key in sorted(summary["languages"])]
  body.append(["all"] + [_fmt(summary["overall"].get(c)) for c in columns])
  parts += [_table(["data"] + header, body)]
  mixed = summary.get("mixed_template_versions")
  if mixed:
    parts += ["", "Scored with different versions of the same template "
              "(edited between the runs; see template_version in "
              "results.json): " + ", ".join(mixed) + "."]
  return "\n".join(parts) + "\n"


def compare(runs: Mapping[str, str], output_dir: str,
            metric: str | None = None, title: str = "") -> str:
  """Reads each setting's results.json folder; writes the comparison files.

  Args:
    runs: {setting name: folder with results.json}, in column order.
    output_dir: where comparison.md and comparison.json go.
    metric: one metric for every dataset; None: each dataset's main metric.
    title: the heading of comparison.md.

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
