"""Tests of the KorQuAD 1.0 reader and its TFDS builder.

The shared folder has the dev file only; the train split and malformed input
are tested on small SQuAD v1.1-layout files written to a tmp folder.
"""

import json
import logging

import pytest

from korani_tasks import catalog
from korani_tasks import sources
from korani_tasks import templates
from korani_tasks.errors import DataFormatError
from korani_tasks.readers import base
from korani_tasks.readers import klue
from korani_tasks.readers import korquad

DEV_QUESTIONS = 5774
DEV_ARTICLES = 140
DEV_PARAGRAPHS = 964
DEV_DISTINCT_PARAGRAPHS = 960  # 4 paragraphs are repeated in their article.
_CONTEXT = "세종은 1418년에 조선의 제4대 국왕으로 즉위하였다. 훈민정음은 1443년에 창제되었다."


def _raw():
  return base.RAW_DATASETS["korquad1"]


def _read(data_dir, split):
  return list(_raw().read(split, _raw().paths(data_dir, split)))


def _squad(prefix="q", version="KorQuAD_v1.0_dev"):
  def qa(n, question, answer):
    return {"answers": [{"text": answer,
                         "answer_start": _CONTEXT.index(answer)}],
            "id": f"{prefix}-{n}", "question": question}
  return {"version": version, "data": [
      {"title": "세종", "paragraphs": [{"context": _CONTEXT, "qas": [
          qa(0, "세종이 즉위한 해는?", "1418년"),
          qa(1, "훈민정음이 창제된 해는?", "1443년")]}]},
      {"title": "훈민정음", "paragraphs": [{"context": _CONTEXT, "qas": [
          qa(2, "세종은 조선의 몇 대 국왕인가?", "제4대")]}]},
  ]}


def _write(data, path):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
  return path


@pytest.fixture(scope="module")
def dev(raw_data_dir):
  return _read(raw_data_dir, "validation")


def test_matches_catalog():
  info = catalog.get("korquad1")
  assert _raw().splits == info.splits == ("train", "validation")
  assert set(_raw().files()) == {f.path for f in info.files}
  assert info.kind == "nlg" and "label" not in _raw().features


# --- The real shared dev file. ---


def test_dev_counts_and_keys(raw_data_dir, dev):
  assert _raw().present_splits(raw_data_dir) == ("validation",)
  assert len(dev) == DEV_QUESTIONS
  assert [k for k, _ in dev] == [r["id"] for _, r in dev]
  assert len({k for k, _ in dev}) == DEV_QUESTIONS
  assert len({r["title"] for _, r in dev}) == DEV_ARTICLES
  data = json.loads((raw_data_dir / korquad.SPLIT_FILES["validation"])
                    .read_text(encoding="utf-8"))["data"]
  assert sum(len(a["paragraphs"]) for a in data) == DEV_PARAGRAPHS
  assert len({(r["title"], r["context"]) for _, r in dev}) == (
      DEV_DISTINCT_PARAGRAPHS)


def test_dev_first_record(dev):
  key, record = dev[0]
  assert key == "6548850-0-0"
  assert record["title"] == "임종석"
  assert record["question"] == (
      "임종석이 여의도 농민 폭력 시위를 주도한 혐의로 지명수배 된 날은?")
  assert (record["answers"], record["answer_start"]) == (["1989년 2월 15일"], [0])


def test_dev_answers_are_at_their_offsets(raw_data_dir, caplog):
  with caplog.at_level(logging.WARNING, logger=klue.__name__):
    records = [r for _, r in _read(raw_data_dir, "validation")]
  assert all(len(r["answers"]) == len(r["answer_start"]) == 1
             for r in records)
  assert all(r["context"][s:s + len(t)] == t for r in records
             for t, s in zip(r["answers"], r["answer_start"]))
  assert "not at their answer_start" not in caplog.text


def test_dev_prepares_through_tfds(raw_data_dir, dev, tmp_path_factory):
  source = sources.KoraniTfdsSource(
      "korquad1", ("train", "validation"),
      tfds_data_dir=tmp_path_factory.mktemp("tfds"))
  assert source.num_input_examples("validation") == DEV_QUESTIONS
  want = dict(dev)
  for ex in source.get_dataset("validation", shuffle=False).take(
      50).as_numpy_iterator():
    record = want[ex["id"].decode()]
    assert [a.decode() for a in ex["answers"]] == record["answers"]
    assert list(ex["answer_start"]) == record["answer_start"]
    assert ex["context"].decode() == record["context"]


# --- Canonical-layout fixtures. ---


def test_train_split_and_templates(monkeypatch, tmp_path):
  for split, path in korquad.SPLIT_FILES.items():
    _write(_squad(prefix=split), tmp_path / "raw" / path)
  monkeypatch.setenv("KORANI_DATA_DIR", str(tmp_path / "raw"))
  pairs = _read(tmp_path / "raw", "train")
  assert [k for k, _ in pairs] == ["train-0", "train-1", "train-2"]
  assert pairs[2][1] == {
      "id": "train-2", "title": "훈민정음", "context": _CONTEXT,
      "question": "세종은 조선의 몇 대 국왕인가?", "answers": ["제4대"],
      "answer_start": [_CONTEXT.index("제4대")]}
  source = sources.KoraniTfdsSource("korquad1", ("train", "validation"),
                                    tfds_data_dir=tmp_path / "tfds")
  assert source.num_input_examples("train") == 3
  by_lang = templates.load_templates("korquad1")
  for _, record in pairs:
    for template in by_lang["ko"] + by_lang["en"]:
      rendered = template.render(record)
      assert rendered.inputs.strip() and rendered.targets.strip()
      if template.original_task:
        assert rendered.targets == record["answers"][0]


def test_offset_mismatch_is_kept_and_counted(tmp_path, caplog):
  data = _squad()
  data["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 1
  data["data"][1]["paragraphs"][0]["qas"][0]["answers"].append(
      {"text": "제4대 국왕", "answer_start": 0})
  path = _write(data, tmp_path / "KorQuAD_v1.0_dev.json")
  with caplog.at_level(logging.WARNING, logger=klue.__name__):
    pairs = list(korquad.read_korquad1(path))
  assert len(pairs) == 3
  assert pairs[2][1]["answers"] == ["제4대", "제4대 국왕"]
  assert "korquad1: 2 of 4 answers" in caplog.text
  assert "q-1, q-2" in caplog.text


# --- Malformed input. ---


def _error(data, tmp_path):
  path = _write(data, tmp_path / "KorQuAD_v1.0_dev.json")
  with pytest.raises(DataFormatError) as e:
    list(korquad.read_korquad1(path))
  assert e.value.path == str(path)
  return str(e.value)


def test_question_without_answers(tmp_path):
  data = _squad()
  data["data"][1]["paragraphs"][0]["qas"][0]["answers"] = []
  assert ("data[1].paragraphs[0].qas[0] (id 'q-2'): a question with no "
          "answers") in _error(data, tmp_path)


@pytest.mark.parametrize("where, key, expected", [
    ("qa", "id", "data[0].paragraphs[0].qas[0]: missing key 'id'"),
    ("qa", "question", "(id 'q-0'): missing key 'question'"),
    ("paragraph", "context", "(id 'q-0'): missing key 'context'"),
    ("article", "title", "(id 'q-0'): missing key 'title'"),
    ("article", "paragraphs", "data[0]: missing key 'paragraphs'"),
])
def test_missing_key(tmp_path, where, key, expected):
  data = _squad()
  article = data["data"][0]
  obj = {"article": article, "paragraph": article["paragraphs"][0],
         "qa": article["paragraphs"][0]["qas"][0]}[where]
  del obj[key]
  assert expected in _error(data, tmp_path)


def test_repeated_id(tmp_path):
  data = _squad()
  data["data"][1]["paragraphs"][0]["qas"][0]["id"] = "q-0"
  assert "(id 'q-0'): repeated id" in _error(data, tmp_path)


def test_answer_start_must_be_an_integer(tmp_path):
  data = _squad()
  data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0][
      "answer_start"] = "0"
  assert "answers[0]: 'answer_start' must be an integer" in _error(
      data, tmp_path)


@pytest.mark.parametrize("data, expected", [
    ([], "top level: expected an object, got a list"),
    ({"version": "x"}, "top level: missing key 'data'"),
    ({"data": []}, "'data' is an empty list"),
])
def test_not_squad(tmp_path, data, expected):
  assert expected in _error(data, tmp_path)
