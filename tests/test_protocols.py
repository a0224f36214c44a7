"""Protocol switches and absent datasets: what changes reported numbers.

Checked against the official KORANI code (github.com/CHLee0801/
KORANI-Instruction-Tuning at bb9df95: run.py's max_input_length 768 and
max_output_length 256; seq2seq_trainer.py scores every evaluation row and
compares the predicted choice with the output, so a row whose output is not
among its choices is wrong) and T0's input convention (inputs without EOS).
The data is the official release sample's excerpt in the shared folder, laid
out as a release folder in tmp.
"""

import collections
import csv
import json
import logging
import pathlib

import gin
import pytest
import seqio

import mixtures  # pylint: disable=unused-import
from korani_tasks import availability
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks import protocol
from korani_tasks.readers import release_csv
from t5x_runs import configurables  # pylint: disable=unused-import
from t5x_runs import evaluator
from t5x_runs import gin_utils
from t5x_runs import results

GIN_DIR = pathlib.Path(gin_utils.GIN_DIR)


@pytest.fixture
def release_rows(raw_data_dir) -> dict[str, list[list[str]]]:
  path = (raw_data_dir.parent / "korani_release_excerpt" / "sample_ko"
          / "dev.csv")
  if not path.is_file():
    pytest.skip(f"{path} not found")
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))[1:]
  by_dataset = collections.defaultdict(list)
  for row in rows:
    by_dataset[row[3]].append(row)
  return by_dataset


def _release(root: pathlib.Path, rows: dict[str, list[list[str]]],
             keys) -> pathlib.Path:
  for key in keys:
    for name in ("train.csv", "dev_template0.csv"):
      path = root / "KORANI" / "some_cluster" / key / name
      path.parent.mkdir(parents=True, exist_ok=True)
      with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(release_csv.COLUMNS)
        writer.writerows(rows[key])
  return root / "KORANI"


@pytest.fixture
def restore_protocol():
  previous = protocol.current()
  yield
  protocol.configure(inputs_eos=previous.inputs_eos,
                     unscorable_rows=previous.unscorable_rows)


# Absent datasets.


def test_every_absent_dataset_is_named_in_one_error(release_rows, tmp_path,
                                                    monkeypatch):
  monkeypatch.setenv(paths.RELEASE_DIR_ENV, str(
      _release(tmp_path, release_rows, ["aihub_emo"])))
  name = "korani_heldout_release_score_eval_korani"
  absent = availability.absent_datasets(name, "validation")
  assert "aihub_emo" not in absent
  assert {"naver_movie", "document_qa", "kornli", "kobest_copa"} <= set(absent)
  with pytest.raises(errors.MissingDataError) as e:
    availability.check(name, "validation")
  message = str(e.value)
  assert f"{len(absent)} dataset(s)" in message
  for dataset in absent:
    assert f"  {dataset}: no folder " in message
  assert "ALLOW_ABSENT_DATASETS" in message
  present, left_out = availability.check(name, "validation",
                                         allow_absent=True)
  assert present == name + "_present" and left_out == tuple(sorted(absent))
  tasks = [t.name for t in seqio.get_mixture_or_task(present).tasks]
  assert tasks == ["korani_aihub_emo_ko_release_score_eval"]


def test_absent_raw_files_are_named(raw_data_dir):
  absent = availability.absent_datasets("korani_heldout_score_eval_korani",
                                        "validation")
  # NSMC and Naver Shopping are not in the shared folder; KoBEST is.
  assert "nsmc/ratings_train.txt" in absent["naver_movie"]
  assert "naver_shopping" in absent
  assert "kobest_copa" not in absent


# Results: unscorable rows and left-out datasets, end to end.


def test_results_record_unscorable_rows_and_left_out_datasets(
    sentineg_run, release_rows, tmp_path, monkeypatch, restore_protocol):
  model_dir, _ = sentineg_run
  monkeypatch.setenv(paths.RELEASE_DIR_ENV, str(
      _release(tmp_path, release_rows, ["beep_hate", "kor_ss"])))
  name = "test_protocols_release_mixture"
  if name not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add(name, [
        "korani_beep_hate_ko_release_score_eval",
        "korani_kor_ss_ko_release_score_eval",
        "korani_aihub_emo_ko_release_score_eval"], default_rate=1.0)
  with pytest.raises(errors.MissingDataError, match="aihub_emo"):
    evaluator.evaluate(model_dir=str(model_dir), mixture_or_task_name=name,
                       output_dir=str(tmp_path / "eval"), progress=False)
  out = tmp_path / "scored"
  evaluator.evaluate(model_dir=str(model_dir), mixture_or_task_name=name,
                     output_dir=str(out), allow_absent_datasets=True,
                     progress=False)
  rows = {(r["dataset"], r["metric"]): r for r in json.loads(
      (out / "results.json").read_text(encoding="utf-8"))}
  beep, kor_ss = rows[("beep_hate", "accuracy")], rows[("kor_ss", "accuracy")]
  # beep_hate's one row (output 아니다, choices 적대|혐오|정상) is scored: wrong.
  assert (beep["num_examples"], beep["num_unscorable"], beep["value"]) == (
      1, 1, 0.0)
  assert beep["unscorable_rows"] == "score"
  assert kor_ss["num_unscorable"] == 0
  assert beep["left_out_datasets"] == kor_ss["left_out_datasets"] == [
      "aihub_emo"]
  markdown = (out / "results.md").read_text(encoding="utf-8")
  assert "Left out, absent from the data (ALLOW_ABSENT_DATASETS): aihub_emo." in (
      markdown)
  assert "| korani_beep_hate_ko_release_score_eval | 1 | scored |" in markdown

  # Left out, beep_hate has no row to score: a clear error, not a crash.
  protocol.configure(unscorable_rows="exclude")
  with pytest.raises(errors.ConfigError,
                     match="korani_beep_hate_ko_release_score_eval: no example"):
    evaluator.make_evaluator(name + availability.PRESENT_SUFFIX, "validation")


def test_result_rows_without_the_new_fields_still_read(tmp_path):
  row = dict(task="t", dataset="d", cluster="c", template="x",
             template_lang="ko", data_lang="ko", metric="accuracy", value=1.0,
             num_examples=3, num_truncated=0, split="validation",
             checkpoint_step=1)
  (tmp_path / results.RESULTS_JSON).write_text(json.dumps([row]))
  (read,) = results.read_results(str(tmp_path))
  assert (read.num_unscorable, read.unscorable_rows,
          read.left_out_datasets) == (0, "score", ())


# Protocol gin files.


@pytest.fixture
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.mark.parametrize("protocol_file, eos, lengths", [
    ("korani_official.gin", True, (768, 256)),
    ("t0.gin", False, (1024, 256)),
])
def test_protocol_files_set_the_switches(_clear_gin, protocol_file, eos,
                                         lengths):
  gin_utils.parse_gin(
      [str(GIN_DIR / "en_small.gin"),
       str(GIN_DIR / "protocols" / protocol_file)],
      ["MODEL_DIR = 'gs://bucket/run'"])
  assert gin.query_parameter("%INPUTS_EOS") is eos
  assert gin.query_parameter("%TASK_FEATURE_LENGTHS") == {
      "inputs": lengths[0], "targets": lengths[1]}
  assert gin.query_parameter("%MAX_INPUT_LENGTH") == lengths[0]
  assert gin.query_parameter("%MAX_TARGET_LENGTH") == lengths[1]
  assert gin.query_parameter("%UNSCORABLE_ROWS") == "score"


# KoBEST's test split (lm-evaluation-harness's protocol).


def test_kobest_test_split_and_sentineg_negation_columns(kobest_dir):
  """lm-evaluation-harness scores KoBEST on test (EleutherAI/
  lm-evaluation-harness, lm_eval/tasks/kobest/kobest_sentineg.yaml at
  d7ae3ca: test_split: test); EVAL_SPLIT='test' selects it here."""
  for name in ("boolq", "copa", "hellaswag", "sentineg", "wic"):
    names = [n for n in seqio.TaskRegistry.names()
             if n.startswith(f"korani_kobest_{name}_ko_")
             and n.endswith("_score_eval") and "_release" not in n]
    assert names and all(
        "test" in seqio.get_mixture_or_task(n).splits for n in names), name
  task = seqio.get_mixture_or_task(
      "korani_kobest_sentineg_ko_review_sentiment_score_eval")
  records = list(task.source.get_dataset("test", shuffle=False)
                 .as_numpy_iterator())
  assert len(records) == 397
  # test.tsv line 2, ID 3394: a complaint negated into praise.
  (first,) = [r for r in records if r["idx"] == 3394]
  assert (first["sentence"].decode(), first["label"]) == (
      "택배사 정말 마음에 듬", 1)
  assert (first["original_sentence"].decode(), first["original_label"],
          first["negation_category"]) == ("택배사 정말 마음에 안들음", 0, 1)
