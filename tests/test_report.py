"""`korani report`: tables, CSV and bar charts of several runs (report.py)."""

import csv
import dataclasses
import io
import json
import statistics

import matplotlib.image
import pytest
import seqio

from conftest import SENTINEG
from korani_tasks import errors
from t5x_runs import cli
from t5x_runs import evaluator
from t5x_runs import report
from t5x_runs import results

MIN_PNG_BYTES = 5 * 1024


def _row(dataset, cluster, template, value, lang="ko", metric="accuracy",
         data_lang="ko", step=100):
  return results.ResultRow(
      task=f"korani_{dataset}_{lang}_{template}_score_eval", dataset=dataset,
      cluster=cluster, template=template, template_lang=lang,
      data_lang=data_lang, metric=metric, value=value, num_examples=10,
      num_truncated=0, split="validation", checkpoint_step=step)


def _rows(offset, with_hellaswag=True):
  """A run: medians sentineg 55 + offset, copa 45 + offset, wic 40 + 2 offset,
  hellaswag 30 + offset."""
  rows = [_row("kobest_sentineg", "sentiment", "a", 50.0 + offset),
          _row("kobest_sentineg", "sentiment", "b", 60.0 + offset),
          _row("kobest_sentineg", "sentiment", "b", 10.0,
               metric="length_normalized_accuracy"),
          _row("kobest_copa", "sentence_completion", "a", 45.0 + offset),
          _row("kobest_wic", "wsd", "a", 40.0 + 2 * offset)]
  if with_hellaswag:
    rows.append(_row("kobest_hellaswag", "sentence_completion", "a",
                     30.0 + offset))
  return rows


def _run(name, rows):
  return report.Run(name, f"/runs/{name}", tuple(rows))


def _parse_csv(text):
  return list(csv.DictReader(io.StringIO(text)))


def test_table_medians_cluster_averages_and_gains():
  runs = [_run("base", _rows(0)), _run("ko_to_en", _rows(5)),
          _run("en_to_en", _rows(8, with_hellaswag=False))]
  built = report.build_report(runs, baseline="base")
  assert [c.name for c in built.columns] == ["base", "ko_to_en", "en_to_en"]
  assert built.baseline_of == {"ko_to_en": "base", "en_to_en": "base"}
  # hellaswag is not in en_to_en: shown, but outside the averages.
  assert built.common == ("kobest_copa", "kobest_sentineg", "kobest_wic")
  assert built.clusters["sentence_completion"] == {
      "base": 45.0, "ko_to_en": 50.0, "en_to_en": 53.0}
  # Overall: (55 + 45 + 40) / 3 and so on.
  assert built.overall == pytest.approx(
      {"base": 140 / 3, "ko_to_en": 160 / 3, "en_to_en": 172 / 3})

  table = report.format_markdown(built, "synthetic")
  assert "| cluster | dataset | base | ko_to_en | gain ko_to_en (%) | " \
      "en_to_en | gain en_to_en (%) |" in table
  # sentineg: 55 -> 60 is +9.1 %; 55 -> 63 is +14.5 %.
  assert "| sentiment | kobest_sentineg | 55.0 | 60.0 | +9.1 | 63.0 | +14.5 |" \
      in table
  assert "| sentence_completion | kobest_hellaswag * | 30.0 | 35.0 | +16.7 " \
      "| — | — |" in table
  assert "| wsd | average | 40.0 | 50.0 | +25.0 | 56.0 | +40.0 |" in table
  # 160/3 over 140/3: +14.3 %; 172/3 over 140/3: +22.9 %.
  assert "| all | average (3) | 46.7 | 53.3 | +14.3 | 57.3 | +22.9 |" in table
  assert "| sentiment | kobest_sentineg | 55.0 (2) | 60.0 (2) | 63.0 (2) |" \
      in table  # means over templates, with the template counts

  rows = _parse_csv(report.format_csv(built))
  overall = next(r for r in rows if r["kind"] == "overall")
  assert float(overall["en_to_en"]) == pytest.approx(172 / 3, abs=1e-4)
  assert float(overall["gain en_to_en (%)"]) == pytest.approx(
      100 * (172 - 140) / 140, abs=1e-4)
  hellaswag = next(r for r in rows if r["dataset"] == "kobest_hellaswag")
  assert hellaswag["en_to_en"] == "" and hellaswag["gain en_to_en (%)"] == ""
  assert [r["kind"] for r in rows] == ["dataset"] * 4 + ["cluster"] * 3 + [
      "overall"]


def test_runs_with_both_template_languages_gain_against_the_same_language():
  def both(offset):
    return [dataclasses.replace(r, template_lang=lang, value=r.value + extra)
            for r in _rows(offset, with_hellaswag=False)
            for lang, extra in (("ko", 0.0), ("en", -10.0))]
  built = report.build_report(
      [_run("base", both(0)), _run("ko", both(5))], baseline="base")
  assert [c.name for c in built.columns] == [
      "base (ko)", "base (en)", "ko (ko)", "ko (en)"]
  assert built.baseline_of == {"ko (ko)": "base (ko)", "ko (en)": "base (en)"}
  sentineg = next(line for line in built.datasets
                  if line.dataset == "kobest_sentineg")
  assert sentineg.medians == {"base (ko)": 55.0, "base (en)": 45.0,
                              "ko (ko)": 60.0, "ko (en)": 50.0}
  assert built.gain("ko (en)", sentineg.medians) == pytest.approx(
      100 * 5 / 45)


def test_header_names_the_datasets_left_out_of_a_run():
  left_out = ("document_qa", "nia_qa")
  partial = [dataclasses.replace(r, left_out_datasets=left_out)
             for r in _rows(5)]
  built = report.build_report([_run("full", _rows(0)),
                               _run("partial", partial)])
  text = report.format_markdown(built)
  header = text[:text.index("## Held-out")]
  assert ("partial: datasets absent and left out of the evaluated mixture "
          "(ALLOW_ABSENT_DATASETS): document_qa, nia_qa.") in header
  assert "full: datasets absent" not in header


def test_generation_datasets_are_reported_by_rouge_l():
  def run(offset):
    return _rows(offset, with_hellaswag=False) + [
        _row("korsum", "summarization", t, v + offset, metric=m)
        for t, v, m in (("a", 20.0, "rougeL"), ("b", 30.0, "rougeL"),
                        ("c", 24.0, "rougeL"), ("a", 50.0, "rouge1"))]
  built = report.build_report([_run("base", run(0)), _run("x", run(1))],
                              baseline="base")
  korsum = next(line for line in built.datasets if line.dataset == "korsum")
  assert korsum.metric == "rougeL" and korsum.medians == {"base": 24.0,
                                                          "x": 25.0}
  table = report.format_markdown(built)
  assert "| summarization | korsum | rougeL | 24.0 | 25.0 | +4.2 |" in table
  only_accuracy = report.build_report(
      [_run("base", run(0)), _run("x", run(1))], metric="accuracy")
  assert "korsum" not in {line.dataset for line in only_accuracy.datasets}
  assert only_accuracy.baseline_of == {}


def test_datasets_of_two_data_languages_get_a_row_each():
  def run(offset):
    return _rows(offset, with_hellaswag=False) + [
        _row("super_glue_rte", "nli", "a", 70.0 + offset, data_lang="en")]
  built = report.build_report([_run("base", run(0)), _run("x", run(10))],
                              baseline="base")
  assert built.data_langs == {"en": {"base": 70.0, "x": 80.0},
                              "ko": {"base": 140 / 3, "x": 180 / 3}}
  table = report.format_markdown(built)
  assert "| en data | average | 70.0 | 80.0 | +14.3 |" in table
  assert "| all | average (4) | 52.5 | 65.0 | +23.8 |" in table


def test_report_errors_name_the_problem(tmp_path):
  with pytest.raises(errors.ConfigError, match="no held-out dataset is in "
                     "every column"):
    report.build_report([_run("a", _rows(0)[:3]), _run("b", _rows(0)[3:])])
  with pytest.raises(errors.ConfigError, match="no rougeL rows"):
    report.build_report([_run("a", _rows(0))], metric="rougeL")
  with pytest.raises(errors.MissingDataError, match=str(tmp_path / "nothing")):
    report.load_run(str(tmp_path / "nothing"))
  mixed = _rows(0) + [_row("kobest_boolq", "qa", "a", 50.0, step=200)]
  results.write_results(mixed, str(tmp_path / "mixed"))
  with pytest.raises(errors.ConfigError, match=r"checkpoints \[100, 200\]"):
    report.load_run(str(tmp_path / "mixed"))
  results.write_results(_rows(0) + _rows(0)[:1], str(tmp_path / "twice"))
  with pytest.raises(errors.DataFormatError, match="two rows for task"):
    report.load_run(str(tmp_path / "twice"))
  with pytest.raises(errors.ConfigError, match="1 --name for 2 run folders"):
    report.load_runs([str(tmp_path / "a"), str(tmp_path / "b")], ["x"])


def test_default_names_are_folder_names_made_unique(tmp_path):
  for name in ("ko_small", "en_small"):
    results.write_results(_rows(0), str(tmp_path / name / "eval"))
  runs = report.load_runs([str(tmp_path / "ko_small" / "eval"),
                           str(tmp_path / "en_small" / "eval")])
  assert [r.name for r in runs] == ["ko_small/eval", "en_small/eval"]
  runs = report.load_runs([str(tmp_path / "ko_small" / "eval")],
                          baseline=str(tmp_path / "en_small" / "eval"),
                          baseline_name="mT5")
  assert [r.name for r in runs] == ["mT5", "ko_small/eval"]
  runs = report.load_runs([str(tmp_path / "ko_small" / "eval"),
                           str(tmp_path / "en_small" / "eval")],
                          names=["ko", "en"],
                          baseline=str(tmp_path / "en_small" / "eval/"))
  assert [r.name for r in runs] == ["en", "ko"]  # the baseline comes first


def test_command_exits_2_with_the_folder_named(tmp_path, capsys):
  code = cli.main(["report", str(tmp_path / "missing"), "--output",
                   str(tmp_path / "out")])
  assert code == 2
  err = capsys.readouterr().err
  assert "korani report: error:" in err and str(tmp_path / "missing") in err
  assert not (tmp_path / "out" / report.REPORT_MD).exists()


def _check_png(path, min_width=500, min_height=300):
  assert path.stat().st_size > MIN_PNG_BYTES, path
  image = matplotlib.image.imread(str(path))
  height, width = image.shape[:2]
  assert width >= min_width and height >= min_height, (path, image.shape)
  assert width <= 3000 and height <= 1500, (path, image.shape)
  assert image.std() > 0.01  # not a blank canvas


# -- the report of two real evaluations ----------------------------------------

# Two small tasks of two clusters: 400 and 500 examples of 2 choices.
TASKS = (SENTINEG + "_score_eval", "korani_kobest_copa_ko_c1_or_c2_score_eval")
MIXTURE = "korani_report_test_score_eval"


@pytest.fixture(scope="module")
def two_checkpoints(sentineg_run, tmp_path_factory):
  """results.json of the sentineg run at steps 100 and 300 on TASKS."""
  model_dir, _ = sentineg_run
  if MIXTURE not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add(MIXTURE, list(TASKS), default_rate=1.0)
  folders = {}
  for step in (100, 300):
    folder = tmp_path_factory.mktemp(f"step{step}")
    evaluator.evaluate(model_dir=str(model_dir), mixture_or_task_name=MIXTURE,
                       output_dir=str(folder), checkpoint_step=step,
                       batch_size=128, progress=False)
    folders[step] = folder
  return folders


def _medians(folder):
  """{dataset: median accuracy over templates}, straight from results.json."""
  rows = json.loads((folder / results.RESULTS_JSON).read_text("utf-8"))
  values = {}
  for row in rows:
    if row["metric"] == "accuracy":
      values.setdefault(row["dataset"], []).append(row["value"])
  assert [len(v) for v in values.values()] == [1, 1]  # one template each
  return {dataset: statistics.median(v) for dataset, v in values.items()}


@pytest.mark.slow
def test_report_of_two_checkpoints(two_checkpoints, tmp_path, capsys):
  out = tmp_path / "report"
  code = cli.main(["report", str(two_checkpoints[300]), "--name", "step300",
                   "--baseline", str(two_checkpoints[100]),
                   "--baseline-name", "step100", "--output", str(out),
                   "--title", "sentineg run, steps 100 and 300"])
  assert code == 0
  printed = capsys.readouterr().out
  table = (out / report.REPORT_MD).read_text("utf-8")
  assert printed == table

  base, run = _medians(two_checkpoints[100]), _medians(two_checkpoints[300])
  assert set(base) == {"kobest_sentineg", "kobest_copa"}
  gain = {d: 100 * (run[d] - base[d]) / base[d] for d in base}
  overall_base = (base["kobest_sentineg"] + base["kobest_copa"]) / 2
  overall_run = (run["kobest_sentineg"] + run["kobest_copa"]) / 2
  overall_gain = 100 * (overall_run - overall_base) / overall_base

  assert "| step100 (baseline) |" in table and "| step300 |" in table
  assert "| cluster | dataset | step100 | step300 | gain step300 (%) |" in table
  for cluster, dataset in (("sentiment", "kobest_sentineg"),
                           ("sentence_completion", "kobest_copa")):
    d = dataset
    assert (f"| {cluster} | {d} | {base[d]:.1f} | {run[d]:.1f} | "
            f"{gain[d]:+.1f} |") in table
    # One dataset per cluster: the cluster average is its median.
    assert (f"| {cluster} | average | {base[d]:.1f} | {run[d]:.1f} | "
            f"{gain[d]:+.1f} |") in table
  assert (f"| all | average (2) | {overall_base:.1f} | {overall_run:.1f} | "
          f"{overall_gain:+.1f} |") in table

  rows = _parse_csv((out / report.REPORT_CSV).read_text("utf-8"))
  by_label = {(r["kind"], r["cluster"], r["dataset"]): r for r in rows}
  sentineg = by_label[("dataset", "sentiment", "kobest_sentineg")]
  assert float(sentineg["step100"]) == pytest.approx(
      base["kobest_sentineg"], abs=1e-4)
  assert float(sentineg["step300"]) == pytest.approx(
      run["kobest_sentineg"], abs=1e-4)
  assert float(sentineg["gain step300 (%)"]) == pytest.approx(
      gain["kobest_sentineg"], abs=1e-4)
  overall = by_label[("overall", "all", "average (2)")]
  assert float(overall["gain step300 (%)"]) == pytest.approx(overall_gain,
                                                             abs=1e-4)

  plots = out / report.PLOTS_DIR
  assert sorted(p.name for p in plots.iterdir()) == [
      "overview.png", "sentence_completion.png", "sentiment.png"]
  for path in plots.iterdir():
    _check_png(path)
  assert "![overview](plots/overview.png)" in table
  assert not list(out.rglob("*.tmp"))
