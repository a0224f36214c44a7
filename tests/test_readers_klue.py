"""Tests of the KLUE readers (NLI, STS, TC, MRC) and their TFDS builders.

The shared folder has only the NLI and STS dev files; the other files (all
train files, TC and MRC) are written to a tmp folder in the canonical KLUE
v1.1 layout. Malformed-input tests write small files of their own.
"""

import collections
import json
import logging

import pytest

from korani_tasks import catalog
from korani_tasks import sources
from korani_tasks import templates
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import klue

KLUE = ("klue_nli", "klue_sts", "klue_tc", "klue_mrc")
SHARED_ROWS = {"klue_nli": 3000, "klue_sts": 519}


def _raw(name):
  return base.RAW_DATASETS[name]


def _read(name, data_dir, split):
  raw = _raw(name)
  return list(raw.read(split, raw.paths(data_dir, split)))


def _json(rows, path):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(rows, ensure_ascii=False, indent=1),
                  encoding="utf-8")
  return path


# --- Canonical-layout fixtures (KLUE v1.1 schemas). ---


def _nli(guid, label, source="wikinews"):
  return {"guid": guid, "source": source, "premise": "비가 와서 길이 젖었다.",
          "hypothesis": "길이 젖었다.", "gold_label": label, "author": label,
          "label2": label, "label3": label, "label4": label, "label5": label}


def _sts(guid, score, binary):
  return {"guid": guid, "source": "airbnb-rtt", "sentence1": "방이 깨끗해요.",
          "sentence2": "방이 청결합니다.",
          "labels": {"label": score, "real-label": score,
                     "binary-label": binary},
          "annotations": {"agreement": "0:0:0:0:1:2",
                          "annotators": ["01", "02", "03"],
                          "annotations": [5, 4, 5]}}


def _ynat(guid, label, title="삼성전자, 새 스마트폰 공개"):
  return {"guid": guid, "title": title, "predefined_news_category": label,
          "label": label, "annotations": {"annotators": ["01"]},
          "url": "https://news.naver.com/main/read.nhn?oid=001",
          "date": "2016.06.30. 오전 10:36"}


_CONTEXT = ("한국전력 등 대기업 5개 회사가 사우디에 진출한다. "
            "서명식은 리야드에서 열렸다.")


def _mrc_doc(qas, title="대기업들 사우디 진출 확대"):
  return {"title": title, "paragraphs": [{"context": _CONTEXT, "qas": qas}],
          "news_category": "경제", "source": "hankyung"}


def _qa(guid, answers, impossible=False, question_type=1, plausible=None):
  qa = {"question": "사우디에 진출하는 회사는 몇 개인가?",
        "answers": [{"text": t, "answer_start": s} for t, s in answers],
        "question_type": question_type, "is_impossible": impossible,
        "guid": guid}
  if plausible is not None:
    qa["plausible_answers"] = [{"text": t, "answer_start": s}
                               for t, s in plausible]
  return qa


def _mrc(prefix):
  start = _CONTEXT.index("5개")
  return {"version": "klue-mrc-v1", "data": [
      _mrc_doc([
          _qa(f"{prefix}_0", [("5개", start), ("5", start)]),
          _qa(f"{prefix}_1", [], impossible=True, question_type=3,
              plausible=[("리야드", _CONTEXT.index("리야드"))]),
      ]),
      _mrc_doc([_qa(f"{prefix}_2", [("리야드", _CONTEXT.index("리야드"))],
                    question_type=2)], title="서명식 장소"),
  ]}


def _fixture_files(name, prefix):
  """The rows of one canonical split file of `name`."""
  if name == "klue_nli":
    return [_nli(f"{prefix}_{i}", label) for i, label in enumerate(
        ("entailment", "neutral", "contradiction"))]
  if name == "klue_sts":
    return [_sts(f"{prefix}_0", 4.2, 1), _sts(f"{prefix}_1", 0.6, 0)]
  if name == "klue_tc":
    return [_ynat(f"{prefix}_{i}", label)
            for i, label in enumerate(klue.TC_LABELS)]
  return _mrc(prefix)


FIXTURE_ROWS = {"klue_nli": 3, "klue_sts": 2, "klue_tc": 7, "klue_mrc": 2}


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
  """A KORANI_DATA_DIR with train and dev files of all four datasets."""
  root = tmp_path_factory.mktemp("klue_raw")
  for name in KLUE:
    for split, paths in _raw(name).split_files.items():
      _json(_fixture_files(name, f"{name}_{split}"), root / paths[0])
  return root


# --- Registration and catalog. ---


@pytest.mark.parametrize("name", KLUE)
def test_matches_catalog(name):
  raw, info = _raw(name), catalog.get(name)
  assert raw.splits == info.splits == ("train", "validation")
  assert set(raw.files()) == {f.path for f in info.files}
  if info.kind == "nlu":
    assert raw.features["label"].names == list(info.labels)
  assert len(templates.load_templates(name)["ko"]) == 10


def test_tc_label_order_is_the_catalog_order():
  english = ("it_science", "economy", "society", "culture", "world", "sports",
             "politics")
  assert catalog.get("klue_tc").labels == english
  assert list(klue.TC_LABELS.items()) == [
      ("IT과학", 0), ("경제", 1), ("사회", 2), ("생활문화", 3), ("세계", 4),
      ("스포츠", 5), ("정치", 6)]


# --- The real shared files (NLI and STS dev). ---


@pytest.mark.parametrize("name", sorted(SHARED_ROWS))
def test_shared_counts_and_keys(raw_data_dir, name):
  assert _raw(name).present_splits(raw_data_dir) == ("validation",)
  pairs = _read(name, raw_data_dir, "validation")
  assert len(pairs) == SHARED_ROWS[name]
  assert [k for k, _ in pairs] == [r["guid"] for _, r in pairs]
  assert len({k for k, _ in pairs}) == len(pairs)
  stem = name.replace("_", "-")
  assert pairs[0][0] == f"{stem}-v1_dev_00000"
  assert pairs[-1][0] == f"{stem}-v1_dev_{len(pairs) - 1:05d}"


def test_shared_nli(raw_data_dir):
  records = [r for _, r in _read("klue_nli", raw_data_dir, "validation")]
  rows = json.loads((raw_data_dir / _raw("klue_nli").split_files[
      "validation"][0]).read_text(encoding="utf-8"))
  assert [r["label"] for r in records] == [
      klue.NLI_LABELS[row["gold_label"]] for row in rows]
  assert collections.Counter(r["label"] for r in records) == {
      0: 1000, 1: 1000, 2: 1000}
  assert collections.Counter(r["source"] for r in records) == {
      "airbnb": 600, "NSMC": 600, "wikinews": 450, "policy": 450,
      "wikitree": 450, "wikipedia": 450}
  assert [(r["premise"], r["hypothesis"]) for r in records] == [
      (row["premise"], row["hypothesis"]) for row in rows]


def test_shared_sts(raw_data_dir):
  records = [r for _, r in _read("klue_sts", raw_data_dir, "validation")]
  assert collections.Counter(r["label"] for r in records) == {0: 299, 1: 220}
  # The binary label is score >= 3; score is real_score rounded to 0.1.
  assert all(r["label"] == int(r["score"] >= 3) for r in records)
  assert all(abs(r["score"] - r["real_score"]) <= 0.05 + 1e-9
             for r in records)
  assert min(r["score"] for r in records) == 0.0
  assert max(r["score"] for r in records) == 5.0
  assert records[0]["score"] == 4.9
  assert sum(r["score"] >= 4 for r in records) == 110


@pytest.mark.parametrize("name", sorted(SHARED_ROWS))
def test_shared_prepares_through_tfds(raw_data_dir, tmp_path_factory, name):
  source = sources.KoraniTfdsSource(
      name, ("train", "validation"), tfds_data_dir=tmp_path_factory.mktemp(
          "tfds"))
  assert source.num_input_examples("validation") == SHARED_ROWS[name]
  got = {ex["guid"].decode(): ex for ex in
         source.get_dataset("validation", shuffle=False).as_numpy_iterator()}
  want = dict(_read(name, raw_data_dir, "validation"))
  assert set(got) == set(want)
  assert all(got[k]["label"] == r["label"] for k, r in want.items())
  if name == "klue_sts":
    assert all(got[k]["score"] == pytest.approx(r["score"])
               for k, r in want.items())


# --- Canonical fixtures: every split of every dataset. ---


@pytest.mark.parametrize("name", KLUE)
def test_fixture_splits(fixture_dir, name):
  for split in ("train", "validation"):
    pairs = _read(name, fixture_dir, split)
    assert len(pairs) == FIXTURE_ROWS[name]
    prefix = f"{name}_{split}_"
    assert all(k.startswith(prefix) for k, _ in pairs)
    assert all(set(r) == set(_raw(name).features) for _, r in pairs)


def test_tc_records(fixture_dir):
  pairs = _read("klue_tc", fixture_dir, "validation")
  assert [r["label"] for _, r in pairs] == list(range(7))
  first = pairs[0][1]
  assert first == {"guid": "klue_tc_validation_0",
                   "title": "삼성전자, 새 스마트폰 공개", "label": 0,
                   "url": "https://news.naver.com/main/read.nhn?oid=001",
                   "date": "2016.06.30. 오전 10:36"}


def test_mrc_skips_unanswerable_and_keeps_all_answers(fixture_dir, caplog):
  caplog.set_level(logging.INFO, logger=klue.__name__)
  pairs = dict(_read("klue_mrc", fixture_dir, "validation"))
  assert list(pairs) == ["klue_mrc_validation_0", "klue_mrc_validation_2"]
  start = _CONTEXT.index("5개")
  assert pairs["klue_mrc_validation_0"] == {
      "guid": "klue_mrc_validation_0", "title": "대기업들 사우디 진출 확대",
      "context": _CONTEXT, "question": "사우디에 진출하는 회사는 몇 개인가?",
      "question_type": 1, "is_impossible": 0, "answers": ["5개", "5"],
      "answer_start": [start, start]}
  assert pairs["klue_mrc_validation_2"]["title"] == "서명식 장소"
  assert "skipped 1 of 3 questions" in caplog.text
  assert "not at their answer_start" not in caplog.text
  assert "Unanswerable questions" in _raw("klue_mrc").split_note


def test_mrc_answer_offset_mismatch_is_kept_and_counted(tmp_path, caplog):
  data = _mrc("x")
  data["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 0
  path = _json(data, tmp_path / "klue-mrc-v1.1_dev.json")
  with caplog.at_level(logging.WARNING, logger=klue.__name__):
    pairs = list(klue.read_klue_mrc(path))
  assert [k for k, _ in pairs] == ["x_0", "x_2"]
  assert pairs[1][1]["answer_start"] == [0]
  assert "1 of 3 answers" in caplog.text and "x_2" in caplog.text


@pytest.mark.parametrize("name", KLUE)
def test_fixture_prepares_through_tfds(fixture_dir, monkeypatch,
                                       tmp_path_factory, name):
  monkeypatch.setenv("KORANI_DATA_DIR", str(fixture_dir))
  source = sources.KoraniTfdsSource(
      name, ("train", "validation"),
      tfds_data_dir=tmp_path_factory.mktemp("tfds"))
  for split in ("train", "validation"):
    assert source.num_input_examples(split) == FIXTURE_ROWS[name]
  if name == "klue_mrc":
    got = {ex["guid"].decode(): ex for ex in
           source.get_dataset("validation", shuffle=False).as_numpy_iterator()}
    ex = got["klue_mrc_validation_0"]
    assert [a.decode() for a in ex["answers"]] == ["5개", "5"]
    assert list(ex["answer_start"]) == [_CONTEXT.index("5개")] * 2


@pytest.mark.parametrize("name", KLUE)
def test_templates_render_fixture_records(fixture_dir, name):
  by_lang = templates.load_templates(name)
  for _, record in _read(name, fixture_dir, "validation"):
    for template in by_lang["ko"] + by_lang["en"]:
      rendered = template.render(record)
      assert rendered.inputs.strip() and rendered.targets.strip()
      if name == "klue_mrc" and template.original_task:
        assert rendered.targets == record["answers"][0]


# --- Malformed input. ---


def _error(reader, path):
  with pytest.raises(DataFormatError) as e:
    list(reader(path))
  assert e.value.path == str(path)
  return str(e.value)


def test_unknown_nli_label(tmp_path):
  path = _json([_nli("g0", "entailment"), _nli("g1", "maybe")],
               tmp_path / "dev.json")
  message = _error(klue.read_klue_nli, path)
  assert message.startswith(f"{path}: [1] (guid 'g1'): unknown label 'maybe'")
  assert "entailment, neutral, contradiction" in message


def test_missing_key(tmp_path):
  row = _nli("g0", "neutral")
  del row["premise"]
  message = _error(klue.read_klue_nli, _json([row], tmp_path / "dev.json"))
  assert "[0] (guid 'g0'): missing key 'premise'" in message


def test_missing_guid(tmp_path):
  row = _nli("g0", "neutral")
  del row["guid"]
  assert "[0]: missing key 'guid'" in _error(
      klue.read_klue_nli, _json([row], tmp_path / "dev.json"))


def test_repeated_guid(tmp_path):
  path = _json([_nli("g0", "neutral"), _nli("g0", "entailment")],
               tmp_path / "dev.json")
  assert "[1] (guid 'g0'): repeated guid" in _error(klue.read_klue_nli, path)


@pytest.mark.parametrize("labels, expected", [
    ({"label": 4.2, "real-label": 4.2, "binary-label": 2},
     "unknown label 2 in 'binary-label'"),
    ({"label": "4.2", "real-label": 4.2, "binary-label": 1},
     "'label' must be a number, got '4.2'"),
    ({"label": 4.2, "real-label": 4.2, "binary-label": True},
     "'binary-label' must be an integer, got True"),
    ({"label": 5.5, "real-label": 5.5, "binary-label": 1},
     "'label' is 5.5, not in [0, 5]"),
    ({"label": 4.2, "binary-label": 1}, "missing key 'real-label'"),
])
def test_bad_sts_labels(tmp_path, labels, expected):
  row = _sts("g0", 1.0, 0)
  row["labels"] = labels
  message = _error(klue.read_klue_sts, _json([row], tmp_path / "dev.json"))
  assert "[0] (guid 'g0'): labels: " + expected in message


def test_sts_integer_score_is_a_float(tmp_path):
  path = _json([_sts("g0", 5, 1)], tmp_path / "dev.json")
  (_, record), = klue.read_klue_sts(path)
  assert record["score"] == 5.0 and isinstance(record["score"], float)


def test_unknown_tc_label(tmp_path):
  path = _json([_ynat("g0", "연예")], tmp_path / "dev.json")
  message = _error(klue.read_klue_tc, path)
  assert "[0] (guid 'g0'): unknown label '연예' in 'label'" in message
  assert "IT과학, 경제, 사회, 생활문화, 세계, 스포츠, 정치" in message


def test_mrc_answerable_without_answers(tmp_path):
  data = _mrc("x")
  data["data"][1]["paragraphs"][0]["qas"][0]["answers"] = []
  message = _error(klue.read_klue_mrc, _json(data, tmp_path / "dev.json"))
  assert ("data[1].paragraphs[0].qas[0] (guid 'x_2'): an answerable "
          "question") in message


@pytest.mark.parametrize("key, value, expected", [
    ("is_impossible", "false", "'is_impossible' must be a boolean"),
    ("question_type", True, "'question_type' must be an integer"),
    ("answers", [{"text": "5개"}], "answers[0]: missing key 'answer_start'"),
    ("answers", [{"text": "5개", "answer_start": -1}], "negative"),
])
def test_bad_mrc_question(tmp_path, key, value, expected):
  data = _mrc("x")
  data["data"][0]["paragraphs"][0]["qas"][0][key] = value
  message = _error(klue.read_klue_mrc, _json(data, tmp_path / "dev.json"))
  assert "data[0].paragraphs[0].qas[0] (guid 'x_0')" in message
  assert expected in message


def test_mrc_missing_context(tmp_path):
  data = _mrc("x")
  del data["data"][1]["paragraphs"][0]["context"]
  assert "missing key 'context'" in _error(
      klue.read_klue_mrc, _json(data, tmp_path / "dev.json"))


def test_invalid_json_names_the_line(tmp_path):
  path = tmp_path / "dev.json"
  path.write_text('[\n {"guid": "g0",\n  "source": }\n]', encoding="utf-8")
  with pytest.raises(DataFormatError, match="not valid JSON") as e:
    list(klue.read_klue_nli(path))
  assert (e.value.path, e.value.line) == (str(path), 3)


@pytest.mark.parametrize("content, expected", [
    ({"data": []}, "expected a JSON list of records, got an object"),
    ([], "the list of records is empty"),
    (["text"], "[0]: expected an object, got a string"),
])
def test_not_a_list_of_records(tmp_path, content, expected):
  message = _error(klue.read_klue_tc, _json(content, tmp_path / "dev.json"))
  assert expected in message


def test_cp949_file(tmp_path):
  path = tmp_path / "dev.json"
  path.write_bytes(json.dumps([_ynat("g0", "경제")], ensure_ascii=False)
                   .encode("cp949"))
  assert "not valid UTF-8" in _error(klue.read_klue_tc, path)


def test_bom_is_accepted(tmp_path):
  path = tmp_path / "dev.json"
  path.write_bytes(b"\xef\xbb\xbf" + json.dumps(
      [_ynat("g0", "정치")], ensure_ascii=False).encode("utf-8"))
  assert [r["label"] for _, r in klue.read_klue_tc(path)] == [6]
