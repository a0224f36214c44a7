"""Tests of the KORANI release reader, its TFDS builder and its SeqIO tasks.

The data is the excerpt of the official release sample in the shared folder
(``<shared>/korani_release_excerpt/sample_{ko,en}/dev.csv``, 25 mixed rows
each); the tests lay its Korean rows out as a release folder in tmp
(``KORANI/<cluster>/<dataset>/{train,dev_template0}.csv``).
"""

import collections
import csv
import logging
import pathlib

import pytest
import seqio

from korani_tasks import catalog
from korani_tasks import errors
from korani_tasks import paths
from korani_tasks import release_tasks
from korani_tasks import sources
from korani_tasks import tasks
from korani_tasks.readers import release_csv

HEADER = "input,output,choices,dataset_name,id\r\n"
SEQUENCE_LENGTH = {"inputs": 64, "targets": 16}
# The real release's cluster folders are not our cluster names.
RELEASE_CLUSTER = {"beep_hate": "hatespeech", "kor_ss": "paraphrase",
                   "stylekqc": "intent_classification"}


@pytest.fixture(scope="module")
def excerpt_dir(raw_data_dir) -> pathlib.Path:
  path = raw_data_dir.parent / "korani_release_excerpt"
  if not path.is_dir():
    pytest.skip(f"{path} not found")
  return path


def _excerpt(excerpt_dir, lang) -> pathlib.Path:
  return excerpt_dir / f"sample_{lang}" / "dev.csv"


def _raw_rows(path) -> list[list[str]]:
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.reader(f))[1:]


def _write_csv(path: pathlib.Path, rows) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f, lineterminator="\r\n")
    writer.writerow(release_csv.COLUMNS)
    writer.writerows(rows)


@pytest.fixture(scope="module")
def release_dir(excerpt_dir, tmp_path_factory) -> pathlib.Path:
  """The Korean excerpt as a release folder: every dataset's rows are its
  train.csv and its dev_template0.csv; stylekqc also has dev_template1.csv
  (its first two rows)."""
  root = tmp_path_factory.mktemp("release") / "KORANI"
  by_dataset = collections.defaultdict(list)
  for row in _raw_rows(_excerpt(excerpt_dir, "ko")):
    by_dataset[row[3]].append(row)
  for key, rows in by_dataset.items():
    folder = root / RELEASE_CLUSTER.get(key, catalog.get(key).cluster) / key
    _write_csv(folder / "train.csv", rows)
    _write_csv(folder / "dev_template0.csv", rows)
  _write_csv(root / "intent_classification" / "stylekqc" / "dev_template1.csv",
             by_dataset["stylekqc"][:2])
  return root


@pytest.fixture
def use_release(release_dir, monkeypatch) -> pathlib.Path:
  monkeypatch.setenv(paths.RELEASE_DIR_ENV, str(release_dir))
  return release_dir


# Reader.


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_reader_reads_every_row(excerpt_dir, lang):
  path = _excerpt(excerpt_dir, lang)
  records = list(release_csv.read_release_csv(path))
  assert len(records) == 25
  assert len({key for key, _ in records}) == 25
  raw = _raw_rows(path)
  for (key, record), row in zip(records, raw):
    assert key.startswith("dev.csv:")
    assert [record[c] for c in ("input", "output", "dataset_name", "id")] == [
        row[0], row[1], row[3], row[4]]
    assert record["template"] == "dev"
    if row[2]:
      assert record["choices"] == [c.strip() for c in row[2].split("|||")]
    else:
      assert record["choices"] == [] and record["answer_index"] == -1


def test_row_with_embedded_newlines_is_read_intact(excerpt_dir):
  records = dict(release_csv.read_release_csv(_excerpt(excerpt_dir, "ko")))
  record = records["dev.csv:2"]
  assert record["dataset_name"] == "aihub_mrc" and record["id"] == "3088"
  assert record["input"].startswith("기계독해 태스크는")
  assert "\n" in record["input"]
  assert record["output"] == "숨진 김씨의 가슴과 등 부위에서 멍 자국이 발견됨에 따라"
  # The row spans lines 2-4: the next row starts on line 5.
  assert list(records)[1] == "dev.csv:5"


def test_answer_index_is_the_output_among_the_choices(excerpt_dir):
  stylekqc = [r for _, r in release_csv.read_release_csv(
      _excerpt(excerpt_dir, "ko")) if r["dataset_name"] == "stylekqc"]
  assert len(stylekqc) == 4
  for record in stylekqc:
    assert record["choices"][record["answer_index"]] == record["output"]
  assert stylekqc[0]["choices"] == ["금지", "선택", "질문", "부탁"]
  assert stylekqc[0]["answer_index"] == 1


@pytest.mark.parametrize("lang, line, dataset, output", [
    ("ko", 69, "beep_hate", "아니다"),
    ("en", 129, "emotion", "joy'"),
])
def test_unscorable_rows_are_reported(excerpt_dir, caplog, lang, line, dataset,
                                      output):
  path = _excerpt(excerpt_dir, lang)
  caplog.set_level(logging.WARNING, logger=release_csv.__name__)
  records = dict(release_csv.read_release_csv(path))
  record = records[f"dev.csv:{line}"]
  assert (record["dataset_name"], record["output"]) == (dataset, output)
  assert record["choices"] and record["answer_index"] == -1
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING]
  assert len(warnings) == 1
  assert f"{path}:{line}" in warnings[0]
  assert release_csv.count_unscorable(path) == 1
  assert release_csv.count_unscorable_per_file([path]) == {path: 1}


def _bad_csv(tmp_path, text) -> pathlib.Path:
  path = tmp_path / "dev_template0.csv"
  path.write_bytes(text.encode("utf-8"))
  return path


@pytest.mark.parametrize("text, line, message", [
    ("input,output,choices,dataset_name\r\n질문,답,,x\r\n", 1, "header"),
    ("input,output,choices,dataset_name,id,extra\r\n", 1, "header"),
    (HEADER + "질문,답,,x,1\r\n질문,답,,x\r\n", 3, "4 fields, expected 5"),
    (HEADER + "질문,답,,x,1\r\n,답,,x,2\r\n", 3, "empty input"),
    (HEADER + "질문,답,,x,1\r\n질문, ,가|||나,x,2\r\n", 3, "empty output"),
    (HEADER + "질문,답,가|||,x,1\r\n", 2, "empty answer choice"),
    # An unclosed quote swallows the following lines into one row.
    (HEADER + '질문,답,,x,1\r\n"질문\r\n이어짐,답,,x,2\r\n질문,답,,x,3\r\n'
     '"끝"",답,,x,4\r\n', 3, "malformed CSV"),
    (HEADER + '질문,답,,x,1\r\n"질문,답,,x,2\r\n질문,답,,x,3\r\n', 3,
     "malformed CSV"),
    # A quote opened and closed across lines, leaving too few fields.
    (HEADER + '질문,답,,x,1\r\n"여러\r\n줄",답\r\n질문,답,,x,3\r\n', 3,
     "2 fields, expected 5 (input, output, choices, dataset_name, id) "
     "(the row runs to line 4)"),
])
def test_malformed_csv_names_file_and_line(tmp_path, text, line, message):
  path = _bad_csv(tmp_path, text)
  with pytest.raises(errors.DataFormatError) as e:
    list(release_csv.read_release_csv(path))
  assert str(e.value).startswith(f"{path}:{line}: ")
  assert message in str(e.value)
  assert (e.value.path, e.value.line) == (str(path), line)


def test_bom_and_blank_lines_are_accepted(tmp_path):
  path = _bad_csv(tmp_path, "\ufeff" + HEADER + "질문,답,,x,1\r\n\r\n"
                  '"두\r\n줄",답,가|||답,x,2\r\n')
  records = list(release_csv.read_release_csv(path))
  assert [k for k, _ in records] == ["dev_template0.csv:2",
                                     "dev_template0.csv:4"]
  assert records[1][1]["input"] == "두\r\n줄"
  assert records[1][1]["answer_index"] == 1


def test_dataset_is_found_by_key_under_any_cluster_folder(release_dir):
  found = release_csv.find_dataset_dir(release_dir, "beep_hate")
  assert found == release_dir / "hatespeech" / "beep_hate"
  assert release_csv.find_dataset_dir(release_dir, "kobest_copa") is None
  files = release_csv.split_files(release_dir / "intent_classification"
                                  / "stylekqc")
  assert [p.name for p in files["train"]] == ["train.csv"]
  assert [p.name for p in files["validation"]] == ["dev_template0.csv",
                                                   "dev_template1.csv"]


# TFDS builder and source.


def test_builder_prepares_splits_and_metadata(use_release, tmp_path):
  source = sources.KoraniTfdsSource(
      "korani_release/stylekqc", release_tasks.SPLITS, tfds_data_dir=tmp_path)
  assert source.num_input_examples("train") == 4
  assert source.num_input_examples("validation") == 6
  builder = source.builder
  assert builder.builder_config.name == "stylekqc"
  assert builder.prepared_source_checksums() == builder.source_checksums(
      use_release)
  assert sorted(builder.prepared_source_checksums()) == [
      "intent_classification/stylekqc/dev_template0.csv",
      "intent_classification/stylekqc/dev_template1.csv",
      "intent_classification/stylekqc/train.csv"]
  assert builder.prepared_unscorable_rows() == {"train": 0, "validation": 0}
  assert (tmp_path / "korani_release" / "stylekqc" / "1.0.0").is_dir()
  examples = list(source.get_dataset("validation", shuffle=False)
                  .as_numpy_iterator())
  templates = collections.Counter(ex["template"].decode() for ex in examples)
  assert templates == {"dev_template0": 4, "dev_template1": 2}
  for ex in examples:
    choices = [c.decode() for c in ex["choices"]]
    assert choices[ex["answer_index"]] == ex["output"].decode()


def test_builder_counts_unscorable_rows(use_release, tmp_path):
  source = sources.KoraniTfdsSource(
      "korani_release/beep_hate", release_tasks.SPLITS, tfds_data_dir=tmp_path)
  assert source.builder.prepared_unscorable_rows() == {
      "train": 1, "validation": 1}


def test_missing_release_or_dataset(monkeypatch, tmp_path, release_dir):
  monkeypatch.delenv(paths.RELEASE_DIR_ENV, raising=False)
  monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
  source = sources.KoraniTfdsSource("korani_release/stylekqc", ["train"],
                                    tfds_data_dir=tmp_path / "tfds")
  with pytest.raises(errors.MissingDataError) as e:
    source.num_input_examples("train")
  assert str(tmp_path / "KORANI") in str(e.value)
  assert paths.RELEASE_DIR_ENV in str(e.value)
  # $KORANI_DATA_DIR/KORANI is the default release folder.
  (tmp_path / "KORANI").symlink_to(release_dir)
  assert paths.release_dir() == tmp_path / "KORANI"
  assert source.num_input_examples("train") == 4
  missing = sources.KoraniTfdsSource("korani_release/kobest_copa", ["train"],
                                     tfds_data_dir=tmp_path / "tfds")
  with pytest.raises(errors.MissingDataError, match=r"<cluster>/kobest_copa/"):
    missing.num_input_examples("train")


def test_missing_split_is_named(monkeypatch, tmp_path, excerpt_dir):
  rows = [r for r in _raw_rows(_excerpt(excerpt_dir, "ko"))
          if r[3] == "kor_ss"]
  _write_csv(tmp_path / "KORANI" / "x" / "kor_ss" / "dev_template0.csv", rows)
  monkeypatch.setenv(paths.RELEASE_DIR_ENV, str(tmp_path / "KORANI"))
  source = sources.KoraniTfdsSource("korani_release/kor_ss",
                                    release_tasks.SPLITS,
                                    tfds_data_dir=tmp_path / "tfds")
  assert source.num_input_examples("validation") == 1
  with pytest.raises(errors.MissingDataError, match="train.csv"):
    source.num_input_examples("train")


def test_duplicated_dataset_folder_is_an_error(monkeypatch, tmp_path):
  for cluster in ("intent", "intent_classification"):
    _write_csv(tmp_path / "KORANI" / cluster / "stylekqc" / "train.csv",
               [["질문", "선택", "선택|||질문", "stylekqc", "1"]])
  monkeypatch.setenv(paths.RELEASE_DIR_ENV, str(tmp_path / "KORANI"))
  source = sources.KoraniTfdsSource("korani_release/stylekqc", ["train"],
                                    tfds_data_dir=tmp_path / "tfds")
  with pytest.raises(errors.DataFormatError) as e:
    source.num_input_examples("train")
  assert "intent/stylekqc" in str(e.value)
  assert "intent_classification/stylekqc" in str(e.value)


def test_malformed_release_csv_fails_preparation(monkeypatch, tmp_path):
  folder = tmp_path / "KORANI" / "intent" / "stylekqc"
  folder.mkdir(parents=True)
  (folder / "train.csv").write_text(HEADER + "질문,선택,선택|||질문,stylekqc\r\n",
                                    encoding="utf-8")
  monkeypatch.setenv(paths.RELEASE_DIR_ENV, str(tmp_path / "KORANI"))
  source = sources.KoraniTfdsSource("korani_release/stylekqc", ["train"],
                                    tfds_data_dir=tmp_path / "tfds")
  with pytest.raises(errors.DataFormatError, match=r"train.csv:2: 4 fields"):
    source.num_input_examples("train")


def test_unknown_config_is_an_error():
  with pytest.raises(ValueError, match="no builder config 'nope'"):
    sources.KoraniTfdsSource("korani_release/nope", ["train"])


# SeqIO tasks.


def test_release_tasks_are_registered_for_every_dataset():
  registered = set(seqio.TaskRegistry.names())
  datasets = catalog.load()
  assert len(datasets) == 51
  for key, dataset in datasets.items():
    name = f"korani_{key}_ko_release"
    assert name in registered
    info = tasks.task_info(name)
    assert (info.dataset, info.cluster, info.source, info.kind) == (
        key, dataset.cluster, "release", tasks.TRAIN)
    assert info.template is None and info.template_id == "release"
    assert info.template_lang == info.data_lang == "ko"
    assert (name + "_score_eval" in registered) == (dataset.kind == "nlu")
  score_evals = {n for n in registered if n.startswith("korani_")
                 and n.endswith("_release_score_eval")}
  assert len(score_evals) == sum(d.kind == "nlu" for d in datasets.values())


def test_score_eval_task_ranks_each_rows_choices(use_release, session_vocab):
  task = seqio.get_mixture_or_task("korani_stylekqc_ko_release_score_eval")
  ds = task.get_dataset(SEQUENCE_LENGTH, split="validation", shuffle=False)
  examples = list(ds.as_numpy_iterator())
  assert len(examples) == 6 * 4  # Rows x choices.
  by_row = collections.defaultdict(list)
  for ex in examples:
    by_row[int(ex["idx"][0])].append(ex)
  assert sorted(by_row) == list(range(6))
  for choices in by_row.values():
    assert sum(bool(c["is_correct"]) for c in choices) == 1
    assert len({c["inputs_pretokenized"] for c in choices}) == 1
    correct = [c["targets_pretokenized"].decode() for c in choices
               if c["is_correct"]]
    assert correct == ["선택"]
    assert all(c["inputs"][-1] == 1 and c["targets"][-1] == 1
               for c in choices)
    assert all(len(c["inputs"]) <= SEQUENCE_LENGTH["inputs"] for c in choices)


@pytest.fixture
def restore_protocol():
  from korani_tasks import protocol  # pylint: disable=import-outside-toplevel
  previous = protocol.current()
  yield protocol
  protocol.configure(inputs_eos=previous.inputs_eos,
                     unscorable_rows=previous.unscorable_rows)


def test_unscorable_row_is_scored_as_wrong_or_excluded(
    use_release, session_vocab, caplog, restore_protocol, tmp_path):
  """The official KORANI code scores every evaluation row; one whose output is
  not among its choices counts as wrong (no choice is correct)."""
  train = seqio.get_mixture_or_task("korani_beep_hate_ko_release")
  examples = list(train.get_dataset(SEQUENCE_LENGTH, split="validation",
                                    shuffle=False).as_numpy_iterator())
  assert [ex["targets_pretokenized"].decode() for ex in examples] == ["아니다"]
  caplog.set_level(logging.WARNING, logger=release_tasks.__name__)
  name = "korani_beep_hate_ko_release_score_eval"
  score = seqio.get_mixture_or_task(name)
  scored = list(score.get_dataset(SEQUENCE_LENGTH, split="validation",
                                  shuffle=False).as_numpy_iterator())
  assert [c["targets_pretokenized"].decode() for c in scored] == [
      "적대", "혐오", "정상"]
  assert not any(c["is_correct"] for c in scored)
  assert "scored as wrong" in caplog.text and "'validation': 1" in caplog.text
  assert release_tasks.num_unscorable(name, "validation") == 1
  restore_protocol.configure(unscorable_rows="exclude")
  assert list(score.get_dataset(SEQUENCE_LENGTH, split="validation",
                                shuffle=False).as_numpy_iterator()) == []
  assert "left out" in caplog.text
  assert release_tasks.num_unscorable(name, "validation") == 1
  # kor_ss, whose row is scorable, keeps it.
  kor_ss = seqio.get_mixture_or_task("korani_kor_ss_ko_release_score_eval")
  assert len(list(kor_ss.get_dataset(SEQUENCE_LENGTH, split="validation",
                                     shuffle=False).as_numpy_iterator())) == 2
  assert release_tasks.num_unscorable(
      "korani_kor_ss_ko_release_score_eval", "validation") == 0
  with pytest.raises(errors.ConfigError, match="UNSCORABLE_ROWS='drop'"):
    restore_protocol.configure(unscorable_rows="drop")


def test_inputs_without_eos_is_a_switch(use_release, session_vocab,
                                        restore_protocol):
  task = seqio.get_mixture_or_task("korani_kor_ss_ko_release")

  def first():
    return next(task.get_dataset({"inputs": 1024, "targets": 16},
                                 split="train", shuffle=False
                                 ).as_numpy_iterator())
  with_eos = first()
  restore_protocol.configure(inputs_eos=False)
  t0_style = first()
  assert list(with_eos["inputs"]) == list(t0_style["inputs"]) + [1]
  assert t0_style["inputs"][-1] != 1
  assert list(with_eos["targets"]) == list(t0_style["targets"])
  assert t0_style["targets"][-1] == 1


def test_generation_task_targets_the_output(use_release, session_vocab,
                                            excerpt_dir):
  rows = [r for r in _raw_rows(_excerpt(excerpt_dir, "ko"))
          if r[3] == "aihub_minwon"]
  task = seqio.get_mixture_or_task("korani_aihub_minwon_ko_release")
  assert "korani_aihub_minwon_ko_release_score_eval" not in (
      seqio.TaskRegistry.names())
  for split in ("train", "validation"):
    examples = list(task.get_dataset(SEQUENCE_LENGTH, split=split,
                                     shuffle=False).as_numpy_iterator())
    assert set(examples[0]) == {"inputs", "targets", "inputs_pretokenized",
                                "targets_pretokenized"}
    got = sorted((ex["inputs_pretokenized"].decode(),
                  ex["targets_pretokenized"].decode()) for ex in examples)
    assert got == sorted((r[0], r[1]) for r in rows)
    for ex in examples:
      assert ex["targets"][-1] == 1
      assert len(ex["inputs"]) == SEQUENCE_LENGTH["inputs"]  # Trimmed.


# Release folders and keys.


def test_folder_named_by_no_key_is_warned_about(monkeypatch, tmp_path, caplog,
                                                 excerpt_dir):
  from korani_tasks import data_status  # pylint: disable=import-outside-toplevel
  rows = [r for r in _raw_rows(_excerpt(excerpt_dir, "ko")) if r[3] == "kor_ss"]
  root = tmp_path / "KORANI"
  _write_csv(root / "paraphrase" / "kor_ss" / "train.csv", rows)
  # The summarization keys of the release are book and report.
  _write_csv(root / "summarization" / "book_summary" / "train.csv", rows)
  _write_csv(root / "summarization" / "report" / "train.csv", rows)
  monkeypatch.setenv(paths.RELEASE_DIR_ENV, str(root))
  assert [p.name for p in release_csv.unknown_dataset_dirs(
      root, catalog.load())] == ["book_summary"]
  (warning,) = data_status.release_warnings()
  assert "'summarization/book_summary' matches no catalog key" in warning
  caplog.set_level(logging.WARNING)
  source = sources.KoraniTfdsSource("korani_release/report", ["train"],
                                    tfds_data_dir=tmp_path / "tfds")
  assert source.num_input_examples("train") == len(rows)
  assert "summarization/book_summary match no catalog key" in caplog.text
