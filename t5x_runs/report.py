"""`korani report`: the paper's tables and bar charts from evaluated runs.

Each run is a folder holding the ``results.json`` of one evaluation (written
by `t5x_runs.evaluator.evaluate` or, per checkpoint, by batch evaluation).
The report puts the runs side by side as the tables of Han et al. (2024)
do, one column per run (a run scored with Korean and English templates is
two columns, ``<run> (ko)`` and ``<run> (en)``, as in `korani compare`)::

    | cluster   | dataset         | base | ko_to_en | gain ko_to_en (%) |
    |---|---|---|---|---|
    | sentiment | kobest_sentineg | 50.0 | 60.0     | +20.0             |
    | wsd       | kobest_wic      | 40.0 | 42.0     | +5.0              |
    | sentiment | average         | 50.0 | 60.0     | +20.0             |
    | wsd       | average         | 40.0 | 42.0     | +5.0              |
    | all       | average (2)     | 45.0 | 51.0     | +13.3             |

- a dataset's value is the median over its templates (as T0 reports) of
  its main metric (`aggregation.main_metric`: accuracy; ROUGE-L for
  generation datasets) or of the metric asked for;
- a cluster's value is the mean of its datasets' medians, the overall value
  the mean over clusters (with datasets of several data languages, a row
  per data language too, the mean of its clusters);
- averages and plots use only the datasets every column (with data of that
  language) has, so that columns average the same datasets; the others
  show '—' where missing.
- the gain of a column is (column - baseline) / baseline in %, against the
  baseline column of the same template language (or the baseline's only
  column).

`write_report` writes ``report.md``, ``report.csv`` (the same rows, 4
decimals, empty cells where missing), ``plots/<cluster>.png`` (datasets x
columns) and ``plots/overview.png`` (cluster averages and the overall average
x columns, with the gains over the baseline): each file atomically.

The aggregation is `t5x_runs.aggregation`'s, shared with results.md and
`korani compare` (compare.py), which print the same numbers for the same
runs; this report adds the gains, the CSV and the plots.
"""

import collections
import csv
import dataclasses
import io
import json
import os
import re
import textwrap
from typing import Mapping, Sequence

import tensorflow as tf

from korani_tasks import errors
from t5x_runs import aggregation
from t5x_runs import results

REPORT_MD = "report.md"
REPORT_CSV = "report.csv"
PLOTS_DIR = "plots"
OVERVIEW = "overview"
MISSING = "—"
ALL_CLUSTERS = "all"


@dataclasses.dataclass(frozen=True)
class Run:
  """One evaluated run: its column name, folder and results.json rows."""
  name: str
  folder: str
  rows: tuple[results.ResultRow, ...]


@dataclasses.dataclass(frozen=True)
class Column:
  """A column of the report: one run's rows of one template language."""
  name: str  # "ko_to_en", or "ko_to_en (en)" for a run with both languages
  run: str
  template_lang: str
  is_baseline: bool


@dataclasses.dataclass(frozen=True)
class DatasetLine:
  """A held-out dataset's summaries, {column name: value} for each column."""
  cluster: str
  dataset: str
  data_lang: str
  metric: str
  medians: Mapping[str, float]
  means: Mapping[str, float]
  num_templates: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class Report:
  """The tables of a report as data (see the module docstring).

  Attributes:
    runs: the runs, baseline first.
    columns: the columns, in order.
    baseline_of: {column name: the name of its baseline column}, for the
      columns that have one.
    datasets: one line per dataset, sorted by cluster and dataset.
    common: the datasets averages and plots use: per data language, those
      every column with data of that language has.
    clusters: {cluster: {column: mean of its common datasets' medians}};
      with several data languages keyed ``<data language>/<cluster>``.
    data_langs: {data language: {column: mean of its clusters}}, only with
      several data languages.
    overall: {column: mean over clusters}.
  """
  runs: tuple[Run, ...]
  columns: tuple[Column, ...]
  baseline_of: Mapping[str, str]
  datasets: tuple[DatasetLine, ...]
  common: tuple[str, ...]
  clusters: Mapping[str, Mapping[str, float]]
  data_langs: Mapping[str, Mapping[str, float]]
  overall: Mapping[str, float]

  @property
  def metrics(self) -> list[str]:
    """The metrics reported, in order of first use."""
    return list(dict.fromkeys(line.metric for line in self.datasets))

  def gain(self, column: str, values: Mapping[str, float]) -> float | None:
    """The relative gain (%) of values[column] over its baseline column."""
    base = self.baseline_of.get(column)
    return relative_gain(values.get(column),
                         values.get(base) if base else None)


def relative_gain(value: float | None, base: float | None) -> float | None:
  """(value - base) / base in %; None if either is missing or base is 0.

      >>> relative_gain(55.0, 50.0)
      10.0
  """
  if value is None or base is None or base == 0:
    return None
  return 100.0 * (value - base) / base


# -- runs ----------------------------------------------------------------------


def load_run(folder: str, name: str | None = None) -> Run:
  """Reads folder/results.json; the run's name defaults to the folder name.

  Raises:
    MissingDataError: the folder has no results.json.
    DataFormatError: the file is not a list of result rows, or repeats a
      (task, metric).
    ConfigError: its rows come from several checkpoints.
  """
  path = os.path.join(folder, results.RESULTS_JSON)
  if not tf.io.gfile.exists(path):
    hint = ""
    if tf.io.gfile.exists(os.path.join(folder, "eval", results.RESULTS_JSON)):
      hint = f"; did you mean {os.path.join(folder, 'eval')}?"
    raise errors.MissingDataError(
        f"{folder}: no {results.RESULTS_JSON} ({path} does not exist); give "
        "the output folder of `korani eval` or a batch-evaluation checkpoint "
        f"folder{hint}")
  try:
    rows = results.read_results(folder)
  except (json.JSONDecodeError, TypeError, ValueError) as e:
    raise errors.DataFormatError(
        path, None, f"not a list of result rows ({e})") from e
  if not rows:
    raise errors.DataFormatError(path, None, "holds no result rows")
  seen = set()
  for r in rows:
    if (r.task, r.metric) in seen:
      raise errors.DataFormatError(
          path, None, f"two rows for task {r.task}, metric {r.metric}")
    seen.add((r.task, r.metric))
  steps = sorted({r.checkpoint_step for r in rows})
  if len(steps) > 1:
    raise errors.ConfigError(
        f"{path} holds rows of checkpoints {steps}; a run's column needs one "
        "checkpoint: give the folder of one checkpoint's results")
  return Run(name or _folder_name(folder), folder, tuple(rows))


def _folder_name(folder: str, parts: int = 1) -> str:
  """The last `parts` components of a folder's path, joined with '/'."""
  components = os.path.normpath(folder).replace("\\", "/").split("/")
  return "/".join(c for c in components[-parts:] if c) or folder


def load_runs(folders: Sequence[str], names: Sequence[str] | None = None,
              baseline: str | None = None,
              baseline_name: str | None = None) -> list[Run]:
  """The runs of `korani report`, baseline first, then in the given order.

  Names default to the folder names; where two would be equal, the last two
  path components (``ko_small/eval``) are used.

  Args:
    folders: the runs' folders.
    names: a name per folder (default: the folder names).
    baseline: the baseline's folder: one of `folders`, or another one that
      is then added as the first run.
    baseline_name: the baseline's name, if it is not one of `folders`.

  Raises:
    ConfigError: the numbers of names and folders differ, or names repeat.
  """
  if not folders:
    raise errors.ConfigError("report needs at least one run folder")
  if names and len(names) != len(folders):
    raise errors.ConfigError(
        f"got {len(names)} --name for {len(folders)} run folders; give one "
        "name per folder, in order")
  folders = list(folders)
  names = list(names) if names else [None] * len(folders)
  same = [i for i, f in enumerate(folders) if baseline is not None
          and os.path.realpath(f) == os.path.realpath(baseline)]
  if same:  # The baseline is one of the runs: move it first.
    i = same[0]
    folders.insert(0, folders.pop(i))
    names.insert(0, names.pop(i) or baseline_name)
  elif baseline is not None:
    folders.insert(0, baseline)
    names.insert(0, baseline_name)
  short = [_folder_name(f) for f in folders]
  defaults = [_folder_name(f, parts=2) if short.count(name) > 1 else name
              for f, name in zip(folders, short)]
  names = [n or d for n, d in zip(names, defaults)]
  repeated = sorted({n for n in names if names.count(n) > 1})
  if repeated:
    raise errors.ConfigError(
        f"run names {repeated} repeat; give each run a name with --name")
  return [load_run(f, n) for f, n in zip(folders, names)]


# -- the report as data --------------------------------------------------------


def build_report(runs: Sequence[Run], baseline: str | None = None,
                 metric: str | None = None) -> Report:
  """The report's tables from the runs' rows.

  Args:
    runs: the runs, in column order.
    baseline: the name of the baseline run (one of `runs`), or None.
    metric: one metric for every dataset, or None for each dataset's main
      metric (the same in every column).

  Raises:
    ConfigError: a run has no rows of the metric, column names repeat, the
      baseline is not a run, or no dataset is in every column.
  """
  if not runs:
    raise errors.ConfigError("report needs at least one run")
  names = [run.name for run in runs]
  if baseline is not None and baseline not in names:
    raise errors.ConfigError(f"baseline {baseline!r} is not one of {names}")
  all_rows = [r for run in runs for r in run.rows]
  columns, column_rows = [], {}
  for run in runs:
    rows = aggregation.select_metric(run.rows, metric, reference=all_rows)
    if not rows:
      present = sorted({r.metric for r in run.rows})
      raise errors.ConfigError(
          f"{run.name} ({run.folder}): no {metric or 'main-metric'} rows; "
          f"its metrics: {present}")
    for name, rows_of_lang in aggregation.split_columns(run.name,
                                                        rows).items():
      columns.append(Column(name, run.name, rows_of_lang[0].template_lang,
                            run.name == baseline))
      column_rows[name] = rows_of_lang
  repeated = sorted({c.name for c in columns
                     if [d.name for d in columns].count(c.name) > 1})
  if repeated:
    raise errors.ConfigError(f"column names {repeated} repeat; rename the runs")

  summaries = aggregation.summarize_columns(column_rows)
  common = set.union(*(set(s.averaged) for s in summaries.values()))
  if not common:
    listing = "; ".join(f"{name}: {sorted(s.datasets)}"
                        for name, s in summaries.items())
    raise errors.ConfigError(
        "no held-out dataset is in every column, nothing to compare "
        f"({listing})")

  described = {}
  for s in summaries.values():
    for d in s.datasets.values():
      described.setdefault(d.dataset, d)
  lines = []
  for dataset in sorted(described,
                        key=lambda d: (described[d].cluster, d)):
    per = {name: s.datasets[dataset] for name, s in summaries.items()
           if dataset in s.datasets}
    lines.append(DatasetLine(
        cluster=described[dataset].cluster, dataset=dataset,
        data_lang=described[dataset].data_lang,
        metric=described[dataset].metric,
        medians={n: d.median for n, d in per.items()},
        means={n: d.mean for n, d in per.items()},
        num_templates={n: d.num_templates for n, d in per.items()}))

  one_lang = len({d.data_lang for d in described.values()}) == 1
  clusters = collections.defaultdict(dict)
  data_langs = collections.defaultdict(dict)
  for name, s in summaries.items():
    for (data_lang, cluster), value in s.clusters.items():
      clusters[cluster if one_lang else f"{data_lang}/{cluster}"][name] = value
    for data_lang, value in s.languages.items():
      data_langs[data_lang][name] = value
  baseline_columns = {c.template_lang: c.name for c in columns if c.is_baseline}
  baseline_of = {}
  for c in columns:
    if not c.is_baseline and baseline_columns:
      base = baseline_columns.get(c.template_lang)
      if base is None and len(baseline_columns) == 1:
        base = next(iter(baseline_columns.values()))
      if base is not None:
        baseline_of[c.name] = base
  return Report(
      runs=tuple(runs), columns=tuple(columns), baseline_of=baseline_of,
      datasets=tuple(lines), common=tuple(sorted(common)),
      clusters=dict(sorted(clusters.items())),
      data_langs=dict(sorted(data_langs.items())) if not one_lang else {},
      overall={name: s.overall for name, s in summaries.items()
               if s.overall is not None})


# -- tables --------------------------------------------------------------------


def _header(report: Report) -> list[str]:
  """Column headers: each column, then its gain if it has a baseline."""
  header = []
  for c in report.columns:
    header.append(c.name)
    if c.name in report.baseline_of:
      header.append(f"gain {c.name} (%)")
  return header


def _cells(report: Report, values: Mapping[str, float], number, gain) -> list:
  cells = []
  for c in report.columns:
    cells.append(number(values.get(c.name)))
    if c.name in report.baseline_of:
      cells.append(gain(report.gain(c.name, values)))
  return cells


def _table_rows(report: Report) -> list[tuple[str, str, str, str, Mapping]]:
  """(kind, cluster, dataset label, metric, {column: value}) per table row."""
  metric = "/".join(report.metrics)
  rows = [("dataset", line.cluster, line.dataset, line.metric, line.medians)
          for line in report.datasets]
  rows += [("cluster", cluster, "average", metric, values)
           for cluster, values in report.clusters.items()]
  rows += [("data language", f"{lang} data", "average", metric, values)
           for lang, values in report.data_langs.items()]
  rows.append(("overall", ALL_CLUSTERS, f"average ({len(report.common)})",
               metric, report.overall))
  return rows


def _number(value: float | None) -> str:
  return MISSING if value is None else f"{value:.1f}"


def _signed(value: float | None) -> str:
  return MISSING if value is None else f"{value:+.1f}"


def _markdown_table(header: Sequence[str],
                    body: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in body]
  return "\n".join(lines)


def _metric_label(report: Report) -> str:
  names = report.metrics
  text = " / ".join(names)
  if all("accuracy" in n for n in names):
    text += " (%)"
  return text


def format_markdown(report: Report, title: str = "",
                    plots: Mapping[str, str] | None = None) -> str:
  """report.md: runs, the main table, means over templates, plot links.

  Args:
    plots: {cluster or OVERVIEW: path of its PNG relative to report.md}.
  """
  parts = [f"# Report{': ' + title if title else ''}", ""]
  parts += ["## Runs", ""]
  body = []
  for run in report.runs:
    steps = sorted({r.checkpoint_step for r in run.rows})
    splits = sorted({r.split for r in run.rows})
    langs = sorted({r.template_lang for r in run.rows}, key=aggregation.lang_order)
    role = " (baseline)" if any(c.is_baseline and c.run == run.name
                                for c in report.columns) else ""
    body.append([run.name + role, run.folder,
                 ", ".join(map(str, steps)), ", ".join(splits),
                 ", ".join(langs), str(len({r.task for r in run.rows}))])
  parts += [_markdown_table(["run", "folder", "checkpoint", "split",
                             "template languages", "tasks"], body), ""]
  for run in report.runs:
    left_out = sorted({d for r in run.rows for d in r.left_out_datasets})
    if left_out:
      parts += [f"{run.name}: datasets absent and left out of the evaluated "
                "mixture (ALLOW_ABSENT_DATASETS): " + ", ".join(left_out)
                + ".", ""]

  baseline = [c.name for c in report.columns if c.is_baseline]
  parts += [f"## Held-out {_metric_label(report)}: median over templates", "",
            "Dataset rows: median over templates. Cluster rows: mean of "
            "the dataset medians. Last row: mean over clusters, of the "
            f"{len(report.common)} datasets in every column."
            + (" Gain: (run − baseline) / baseline, in %, against "
               + ", ".join(baseline) + "." if baseline else ""), ""]
  outside = [line.dataset for line in report.datasets
             if line.dataset not in report.common]
  body = []
  for kind, cluster, dataset, metric, values in _table_rows(report):
    label = dataset + (" *" if dataset in outside else "")
    cells = [cluster, label]
    if len(report.metrics) > 1:
      cells.append(metric if kind == "dataset" else "")
    body.append(cells + _cells(report, values, _number, _signed))
  header = ["cluster", "dataset"] + (
      ["metric"] if len(report.metrics) > 1 else []) + _header(report)
  parts += [_markdown_table(header, body), ""]
  if outside:
    parts += [f"\\* not in every column: left out of the averages and the "
              f"plots ({MISSING} = not evaluated).", ""]

  parts += ["## Per dataset: mean over templates (number of templates)", ""]
  body = []
  for line in report.datasets:
    body.append([line.cluster, line.dataset] + [
        f"{_number(line.means.get(c.name))} ({line.num_templates[c.name]})"
        if c.name in line.means else MISSING for c in report.columns])
  parts += [_markdown_table(["cluster", "dataset"]
                            + [c.name for c in report.columns], body)]
  if plots:
    parts += ["", "## Plots", ""]
    for key, path in plots.items():
      parts.append(f"![{key}]({path})")
  return "\n".join(parts) + "\n"


def _full(value: float | None) -> str:
  return "" if value is None else f"{value:.4f}"


def format_csv(report: Report) -> str:
  """report.csv: the main table's rows, 4 decimals, empty when missing.

  Columns: kind (dataset, cluster, data language, overall), cluster,
  dataset, metric, then each column's value and, where it has a baseline,
  ``gain <column> (%)``.
  """
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["kind", "cluster", "dataset", "metric"] + _header(report))
  for kind, cluster, dataset, metric, values in _table_rows(report):
    writer.writerow([kind, cluster, dataset, metric]
                    + _cells(report, values, _full, _full))
  return out.getvalue()


# -- plots ---------------------------------------------------------------------

_BASELINE_COLOR = "#b0b0b0"
# matplotlib's tab10 without its grey, which marks the baseline.
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
           "#e377c2", "#bcbd22", "#17becf")


def plot_file_name(cluster: str) -> str:
  """plots/<cluster>.png with the cluster's name made safe for a file."""
  name = re.sub(r"[^A-Za-z0-9_.-]+", "_", cluster).strip("._") or "no_cluster"
  return ("cluster_" + name if name == OVERVIEW else name) + ".png"


def _bar_chart(report: Report, groups: Sequence[str],
               values: Sequence[Mapping[str, float]], title: str, xlabel: str,
               subtitle: str = "", note: str = "", with_gains: bool = False,
               separate_last: bool = False) -> bytes:
  """A PNG of grouped bars: one group per label, one bar per column.

  Bars are annotated with their values (and with_gains, the gain over the
  baseline); the baseline's bars are grey and hatched; `note` goes under
  the legend.
  """
  # pylint: disable=import-outside-toplevel
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  columns = report.columns
  width = min(20.0, max(6.5, 1.5 + len(groups) * (0.6 + 0.55 * len(columns))))
  fig = Figure(figsize=(width, 5.0), dpi=110, layout="constrained")
  FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  bar = 0.8 / len(columns)
  top = max([v for group in values for v in group.values()] + [0.0]) or 1.0
  font = 8 if len(columns) * len(groups) <= 24 else 6
  colors = iter(_COLORS * (1 + len(columns) // len(_COLORS)))
  for i, c in enumerate(columns):
    # (x, height, the group's values) of the groups that have this column.
    shown = [(g + (i - (len(columns) - 1) / 2) * bar, group[c.name], group)
             for g, group in enumerate(values) if group.get(c.name) is not None]
    if not shown:
      continue
    style = (dict(color=_BASELINE_COLOR, hatch="//", edgecolor="#555555")
             if c.is_baseline else dict(color=next(colors), edgecolor="white"))
    rects = ax.bar([x for x, _, _ in shown], [h for _, h, _ in shown],
                   bar * 0.95, label=c.name + (" (baseline)" if c.is_baseline
                                               else ""), **style)
    texts = []
    for _, height, group in shown:
      gain = report.gain(c.name, group) if with_gains else None
      texts.append(f"{height:.1f}"
                   + (f"\n{gain:+.1f}%" if gain is not None else ""))
    ax.bar_label(rects, texts, padding=2, fontsize=font)
  pad = max(0.0, (3 - len(groups)) / 2)  # Few groups: keep bars narrow.
  ax.set_xlim(-0.5 - pad, len(groups) - 0.5 + pad)
  ax.set_xlabel(xlabel + (f"\n({note})" if note else ""))
  ax.set_xticks(range(len(groups)))
  # Rotate the labels when they would not fit side by side (about 0.075
  # inch per character at the default font size).
  long_labels = max(len(g) for g in groups) * 0.075 > 0.9 * width / len(groups)
  ax.set_xticklabels(groups, rotation=20 if long_labels else 0,
                     ha="right" if long_labels else "center")
  if separate_last and len(groups) > 1:
    ax.axvline(len(groups) - 1.5, color="#888888", linestyle="--",
               linewidth=0.8)
  ax.set_ylim(0, top * (1.3 if with_gains else 1.18))
  ax.set_ylabel(_metric_label(report) + ", median over templates")
  ax.set_title(title + ("\n" + subtitle if subtitle else ""), fontsize=11)
  ax.grid(axis="y", alpha=0.3)
  ax.set_axisbelow(True)
  for side in ("top", "right"):
    ax.spines[side].set_visible(False)
  fig.legend(loc="outside lower center", ncol=min(len(columns), 4),
             frameon=False)
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png")
  return buffer.getvalue()


def _finding(report: Report) -> str:
  """One line: each column's overall average and its gain."""
  parts = []
  for c in report.columns:
    value = report.overall.get(c.name)
    gain = report.gain(c.name, report.overall)
    parts.append(f"{c.name} {_number(value)}"
                 + (f" ({gain:+.1f}%)" if gain is not None else ""))
  return textwrap.fill(f"overall average of {len(report.common)} datasets: "
                       + " · ".join(parts), 110)


def plot_cluster(report: Report, cluster: str) -> bytes | None:
  """PNG bytes: the cluster's datasets (those in every column) x columns."""
  lines = [line for line in report.datasets if line.cluster == cluster]
  shown = [line for line in lines if line.dataset in report.common]
  if not shown:
    return None
  left_out = [line.dataset for line in lines if line not in shown]
  return _bar_chart(
      report, [line.dataset for line in shown],
      [line.medians for line in shown],
      f"Cluster {cluster or '(none)'}: held-out {'/'.join(report.metrics)} "
      "per dataset", xlabel="held-out dataset",
      with_gains=bool(report.baseline_of),
      note=("not plotted (not in every column): " + ", ".join(left_out)
            if left_out else ""))


def plot_overview(report: Report) -> bytes:
  """PNG bytes: cluster averages and the overall average x columns."""
  groups = list(report.clusters) + ["overall"]
  values = list(report.clusters.values()) + [report.overall]
  return _bar_chart(
      report, groups, values,
      f"Held-out {'/'.join(report.metrics)}: cluster averages",
      xlabel="cluster (average of its datasets' medians)",
      subtitle=_finding(report), with_gains=bool(report.baseline_of),
      separate_last=True)


# -- files ---------------------------------------------------------------------


def write_report(report: Report, output_dir: str,
                 title: str = "") -> dict[str, str]:
  """Writes report.md, report.csv and plots/*.png, each atomically.

  The plots come first and report.md last, so a report.md on disk always
  comes with its CSV and plots.

  Returns:
    {"report.md": path, "report.csv": path, cluster or OVERVIEW: png path}.
  """
  plots_dir = os.path.join(output_dir, PLOTS_DIR)
  tf.io.gfile.makedirs(plots_dir)
  written, links = {}, {}
  images = [(OVERVIEW, OVERVIEW + ".png", plot_overview(report))]
  images += [(cluster, plot_file_name(cluster), plot_cluster(report, cluster))
             for cluster in dict.fromkeys(l.cluster for l in report.datasets)]
  for key, file_name, image in images:
    if image is None:
      continue
    path = os.path.join(plots_dir, file_name)
    results.write_atomically(path, image)
    written[key] = path
    links[key] = f"{PLOTS_DIR}/{file_name}"
  csv_path = os.path.join(output_dir, REPORT_CSV)
  results.write_atomically(csv_path, format_csv(report))
  md_path = os.path.join(output_dir, REPORT_MD)
  results.write_atomically(md_path, format_markdown(report, title, links))
  return {REPORT_MD: md_path, REPORT_CSV: csv_path, **written}


def report(folders: Sequence[str], output_dir: str,
           names: Sequence[str] | None = None, baseline: str | None = None,
           baseline_name: str | None = None, metric: str | None = None,
           title: str = "") -> tuple[Report, dict[str, str]]:
  """`korani report`: loads the runs, builds the report and writes it.

  Returns:
    The report and the written files (as `write_report`).
  """
  runs = load_runs(folders, names, baseline, baseline_name)
  built = build_report(runs, runs[0].name if baseline is not None else None,
                       metric)
  return built, write_report(built, output_dir, title)
