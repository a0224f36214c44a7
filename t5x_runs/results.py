"""Result files of an evaluation: results.json (rows) and results.md (tables).

results.json is a list of rows, one per (task, metric)::

    [{"task": "korani_kobest_copa_en_best_option_score_eval",
      "dataset": "kobest_copa", "cluster": "sentence_completion",
      "template": "best_option", "template_lang": "en", "data_lang": "ko",
      "metric": "accuracy", "value": 53.2, "num_examples": 500,
      "num_truncated": 0, "split": "validation", "checkpoint_step": 600,
      "template_version": "3f0c2a9b1d4e", "num_unscorable": 0,
      "unscorable_rows": "score", "left_out_datasets": []}, ...]

``template_version`` is the template's `PromptTemplate.version` (a digest of
its text; "" for tasks without a template and in rows written before it was
recorded): an edited template keeps its id, so scores of two versions are
told apart by it.

results.md summarizes them the way T0 and the KORANI paper report: accuracy
per template, the median and mean over templates per dataset, per cluster
the mean of the dataset medians and overall the mean over clusters, for
each template language. The aggregation is `t5x_runs.aggregation`'s, the
same as `korani compare` and `korani report`; each dataset is reported by
its main metric (ROUGE-L for generation datasets, accuracy for
rank-classified ones). With rows of one template language::

    rows: kobest_copa  ko t1 accuracy 50, ko t2 accuracy 60, ko t3 accuracy 80
          kobest_wic   ko t1 accuracy 40
    summaries(rows)["ko"].datasets["kobest_copa"].median -> 60
    summaries(rows)["ko"].clusters -> {("ko", "sentence_completion"): 60,
                                       ("ko", "wsd"): 40}
    summaries(rows)["ko"].overall  -> (60 + 40) / 2 = 50
"""

import dataclasses
import json
import os
from typing import Iterable, Sequence

import tensorflow as tf

from t5x_runs import aggregation

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
MAIN_METRIC = aggregation.MAIN_METRIC


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
  template_version: str = ""
  # Rows of the task's split whose answer is not among their choices, and
  # what was done with them (korani_tasks.protocol: "score" or "exclude").
  num_unscorable: int = 0
  unscorable_rows: str = "score"
  # Datasets of the evaluated mixture absent from the data folder and left
  # out (ALLOW_ABSENT_DATASETS), the same on every row of a run.
  left_out_datasets: tuple[str, ...] = ()
  # The run's held-out setting and vocabulary (`run_settings`), the same on
  # every row of a run.
  heldout_setting: str = ""
  vocabulary: str = ""
  vocabulary_sha256: str = ""
  vocabulary_pieces: int = 0

  def __post_init__(self):
    object.__setattr__(self, "left_out_datasets",
                       tuple(self.left_out_datasets))


def run_settings(mixture_or_task_names: Sequence[str],
                 vocabulary: str | None = None) -> dict[str, object]:
  """What a run records with its checkpoints and result rows.

  ``heldout_setting``: the held-out setting of the mixtures (the unsuffixed
  names use `korani_tasks.heldout.default()`), comma-separated if several;
  ``vocabulary``, ``vocabulary_sha256``, ``vocabulary_pieces``: the
  SentencePiece model (default: the one the tasks use now).
  """
  # pylint: disable=import-outside-toplevel
  import seqio
  from korani_tasks import availability
  from korani_tasks import heldout
  from korani_tasks import vocab
  registered = seqio.MixtureRegistry.names()
  settings = dict.fromkeys(  # The mixture a `_present` subset was made of.
      heldout.mixture_setting(
          name.removesuffix(availability.PRESENT_SUFFIX), registered)
      for name in mixture_or_task_names)
  return {"heldout_setting": ",".join(s for s in settings if s),
          **vocab.describe(vocabulary)}


def describe_run(rows: Sequence[ResultRow]) -> str:
  """The results.md line naming the rows' held-out setting and vocabulary."""
  parts = []
  settings = sorted({r.heldout_setting for r in rows if r.heldout_setting})
  if settings:
    parts.append(f"Held-out setting: {', '.join(settings)}.")
  for path, sha256, pieces in sorted({
      (r.vocabulary, r.vocabulary_sha256, r.vocabulary_pieces)
      for r in rows if r.vocabulary}):
    parts.append(f"Vocabulary: {path} ({pieces} pieces, sha256 {sha256}).")
  return " ".join(parts)


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


def template_summary(rows: Sequence[ResultRow],
                     metric: str | None = MAIN_METRIC
                     ) -> dict[tuple[str, str, str], float]:
  """{(dataset, template_lang, template): value} of a metric."""
  return {(r.dataset, r.template_lang, r.template): r.value
          for r in aggregation.select_metric(rows, metric)}


def summaries(rows: Sequence[ResultRow], metric: str | None = None
              ) -> dict[str, aggregation.ColumnSummary]:
  """{template_lang: its aggregates} (`aggregation`), ko first.

  Each template language's averages are over all its datasets.
  """
  chosen = aggregation.select_metric(rows, metric)
  langs = sorted({r.template_lang for r in chosen}, key=aggregation.lang_order)
  return {lang: aggregation.summarize_column(
      [r for r in chosen if r.template_lang == lang]) for lang in langs}


def format_markdown(rows: Sequence[ResultRow], title: str = "") -> str:
  """The tables of results.md (see the module docstring)."""
  langs = sorted({r.template_lang for r in rows}, key=lambda l: (l != "ko", l))
  metrics = sorted({r.metric for r in rows}, key=lambda m: (m != MAIN_METRIC, m))
  value = {(r.dataset, r.template, r.template_lang, r.metric): r for r in rows}
  parts = [f"# Results{': ' + title if title else ''}", ""]
  if describe_run(rows):
    parts += [describe_run(rows), ""]
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
  per_lang = summaries(rows)
  names = sorted(set(aggregation.main_metrics(rows).values()))
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
      s = per_lang[lang].datasets.get(dataset) if lang in per_lang else None
      cells += [_fmt(s and s.median), _fmt(s and s.mean)]
    body.append(cells)
  parts += [_table(header, body), ""]

  parts += ["## Per cluster: average of dataset medians", "",
            "Last row: the average over clusters.", ""]
  data_langs = sorted({r.data_lang for r in rows}, key=aggregation.lang_order)
  several = len(data_langs) > 1

  def by_lang(get) -> list[str]:
    return [_fmt(get(per_lang[lang]) if lang in per_lang else None)
            for lang in langs]

  body = []
  for data_lang in data_langs:
    for cluster in sorted({r.cluster for r in rows
                           if r.data_lang == data_lang}):
      body.append([cluster] + ([data_lang] if several else []) + by_lang(
          lambda s, key=(data_lang, cluster): s.clusters.get(key)))
    if several:
      body.append([f"average ({data_lang} data)", data_lang] + by_lang(
          lambda s, lang=data_lang: s.languages.get(lang)))
  body.append(["all clusters"] + (["all"] if several else [])
              + by_lang(lambda s: s.overall))
  parts += [_table(["cluster"] + (["data"] if several else [])
                   + [f"{lang} templates" for lang in langs], body)]
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
