"""Tests of the P3 source readers (korani_tasks/p3/readers.py).

The real-file tests read the shared English files (skipped where absent) and
check them against the promptsource 0.2.3 templates installed with the
project's dependencies (read from their YAML files; promptsource itself is
never imported). The malformed-input tests write small files of their own.
"""

import collections
import importlib.util
import json
import pathlib
import random

import jinja2
import jinja2.meta
import pytest
import yaml

from korani_tasks.errors import DataFormatError
from korani_tasks.p3 import base
from korani_tasks.p3 import readers

# Rows per present split of the shared data folder.
ROWS = {
    "super_glue/rte": {"train": 2490, "validation": 277},
    "super_glue/cb": {"train": 250, "validation": 56},
    "super_glue/copa": {"validation": 100},
    "super_glue/wic": {"validation": 638},
    "super_glue/wsc.fixed": {"train": 554, "validation": 104},
    "super_glue/boolq": {"validation": 3270},
    "anli": {"dev_r1": 1000, "test_r1": 1000, "dev_r2": 1000,
             "test_r2": 1000, "dev_r3": 1200, "test_r3": 1200},
    "hellaswag": {"validation": 30},
    "story_cloze/2016": {"validation": 30, "test": 30},
    "winogrande/winogrande_xl": {"validation": 30},
    "trec": {"train": 5452, "test": 500},
    "ag_news": {"test": 7600},
    "rotten_tomatoes": {"train": 8530, "validation": 1066},
}

# All registered splits (files a user may have beyond the shared folder).
SPLITS = {
    "super_glue/rte": ("train", "validation"),
    "super_glue/cb": ("train", "validation"),
    "super_glue/copa": ("train", "validation"),
    "super_glue/wic": ("train", "validation"),
    "super_glue/wsc.fixed": ("train", "validation"),
    "super_glue/boolq": ("train", "validation"),
    "anli": ("train_r1", "dev_r1", "test_r1", "train_r2", "dev_r2", "test_r2",
             "train_r3", "dev_r3", "test_r3"),
    "hellaswag": ("train", "validation"),
    "story_cloze/2016": ("validation", "test"),
    "winogrande/winogrande_xl": ("train", "validation"),
    "trec": ("train", "test"),
    "ag_news": ("train", "test"),
    "rotten_tomatoes": ("train", "validation"),
}

# The Hugging Face features of each dataset: field -> Python type.
FIELDS = {
    "super_glue/rte": {"premise": str, "hypothesis": str, "idx": int,
                       "label": int},
    "super_glue/cb": {"premise": str, "hypothesis": str, "idx": int,
                      "label": int},
    "super_glue/copa": {"premise": str, "choice1": str, "choice2": str,
                        "question": str, "idx": int, "label": int},
    "super_glue/wic": {"word": str, "sentence1": str, "sentence2": str,
                       "start1": int, "start2": int, "end1": int, "end2": int,
                       "idx": int, "label": int},
    "super_glue/wsc.fixed": {"text": str, "span1_index": int,
                             "span2_index": int, "span1_text": str,
                             "span2_text": str, "idx": int, "label": int},
    "super_glue/boolq": {"question": str, "passage": str, "idx": int,
                         "label": int},
    "anli": {"uid": str, "premise": str, "hypothesis": str, "label": int,
             "reason": str},
    "hellaswag": {"ind": int, "activity_label": str, "ctx_a": str,
                  "ctx_b": str, "ctx": str, "endings": list, "source_id": str,
                  "split": str, "split_type": str, "label": str},
    "story_cloze/2016": {"story_id": str, "input_sentence_1": str,
                         "input_sentence_2": str, "input_sentence_3": str,
                         "input_sentence_4": str, "sentence_quiz1": str,
                         "sentence_quiz2": str, "answer_right_ending": int},
    "winogrande/winogrande_xl": {"sentence": str, "option1": str,
                                 "option2": str, "answer": str},
    "trec": {"text": str, "label_coarse": int, "label_fine": int},
    "ag_news": {"text": str, "label": int},
    "rotten_tomatoes": {"text": str, "label": int},
}

# Label counts per split (the field each dataset's templates take as gold).
LABELS = {
    ("super_glue/rte", "train"): ("label", {0: 1249, 1: 1241}),
    ("super_glue/rte", "validation"): ("label", {0: 146, 1: 131}),
    ("super_glue/cb", "train"): ("label", {0: 115, 1: 119, 2: 16}),
    ("super_glue/cb", "validation"): ("label", {0: 23, 1: 28, 2: 5}),
    ("super_glue/copa", "validation"): ("label", {0: 55, 1: 45}),
    ("super_glue/wic", "validation"): ("label", {0: 319, 1: 319}),
    ("super_glue/wsc.fixed", "train"): ("label", {0: 295, 1: 259}),
    ("super_glue/wsc.fixed", "validation"): ("label", {0: 66, 1: 38}),
    ("super_glue/boolq", "validation"): ("label", {0: 1237, 1: 2033}),
    ("anli", "dev_r1"): ("label", {0: 334, 1: 333, 2: 333}),
    ("anli", "test_r1"): ("label", {0: 334, 1: 333, 2: 333}),
    ("anli", "dev_r2"): ("label", {0: 334, 1: 333, 2: 333}),
    ("anli", "test_r2"): ("label", {0: 334, 1: 333, 2: 333}),
    ("anli", "dev_r3"): ("label", {0: 402, 1: 402, 2: 396}),
    ("anli", "test_r3"): ("label", {0: 402, 1: 402, 2: 396}),
    ("hellaswag", "validation"): ("label", {"0": 6, "1": 8, "2": 6, "3": 10}),
    ("story_cloze/2016", "validation"): ("answer_right_ending",
                                         {1: 15, 2: 15}),
    ("story_cloze/2016", "test"): ("answer_right_ending", {1: 12, 2: 18}),
    ("winogrande/winogrande_xl", "validation"): ("answer",
                                                 {"1": 17, "2": 13}),
    # DESC ENTY ABBR HUM NUM LOC
    ("trec", "train"): ("label_coarse",
                        {0: 1162, 1: 1250, 2: 86, 3: 1223, 4: 896, 5: 835}),
    ("trec", "test"): ("label_coarse",
                       {0: 138, 1: 94, 2: 9, 3: 65, 4: 113, 5: 81}),
    ("ag_news", "test"): ("label", {0: 1900, 1: 1900, 2: 1900, 3: 1900}),
    ("rotten_tomatoes", "train"): ("label", {0: 4265, 1: 4265}),
    ("rotten_tomatoes", "validation"): ("label", {0: 533, 1: 533}),
}

_CASES = [(name, split) for name, splits in ROWS.items() for split in splits]


@pytest.fixture(scope="module")
def records(raw_data_dir):
  """Reads each (source, split) of the shared folder once."""
  cache = {}

  def get(name, split):
    if (name, split) not in cache:
      source = base.P3_SOURCES[name]
      paths = source.paths(raw_data_dir, split)
      for path in paths:
        if not path.is_file():
          pytest.skip(f"{path} not found")
      cache[name, split] = list(source.read(split, paths))
    return cache[name, split]
  return get


# --- promptsource 0.2.3 templates, read from the installed YAML files. ---


class _TemplateLoader(yaml.SafeLoader):
  """Loads promptsource's YAML with its !Template tags as plain dicts."""


def _as_dict(loader, node):
  return loader.construct_mapping(node, deep=True)


_TemplateLoader.add_constructor("!Template", _as_dict)
_TemplateLoader.add_constructor("!TemplateMetadata", _as_dict)


def _templates(name):
  spec = importlib.util.find_spec("promptsource")  # Does not import it.
  if spec is None or not spec.submodule_search_locations:
    pytest.skip("promptsource templates are not installed")
  path = pathlib.Path(spec.submodule_search_locations[0], "templates", name,
                      "templates.yaml")
  doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)
  return list(doc["templates"].values())


def _environment():
  """Jinja as promptsource sets it up, but strict about undefined names."""
  env = jinja2.Environment(undefined=jinja2.StrictUndefined)
  env.globals.update(zip=zip)
  env.filters["highlight"] = lambda x: x
  env.filters["choice"] = random.choice
  env.filters["most_frequent"] = (
      lambda items: collections.Counter(items).most_common(1)[0][0])
  return env


def _apply(env, template, record):
  """(input, target) as promptsource's Template.apply gives them."""
  choices = None
  if template.get("answer_choices"):
    rendered = env.from_string(template["answer_choices"]).render(**record)
    choices = [c.strip() for c in rendered.split("|||")]
  text = env.from_string(template["jinja"]).render(
      **record, answer_choices=choices)
  parts = [part.strip() for part in text.split("|||")]
  return parts[0], parts[1] if len(parts) > 1 else ""


def _template(name, template_name):
  [template] = [t for t in _templates(name) if t["name"] == template_name]
  return template


# --- The registry. ---


def test_sources_and_splits_registered():
  assert {n: s.splits for n, s in base.P3_SOURCES.items()
          if n in SPLITS} == SPLITS
  assert set(SPLITS) <= set(base.P3_SOURCES)
  for name, source in base.P3_SOURCES.items():
    if name in SPLITS:
      assert source.note, name


def test_present_splits_of_the_shared_folder(raw_data_dir):
  for name, rows in ROWS.items():
    assert base.P3_SOURCES[name].present_splits(raw_data_dir) == tuple(rows)


# --- The real files. ---


@pytest.mark.parametrize("name,split", _CASES)
def test_row_counts_and_keys(records, name, split):
  rows = records(name, split)
  assert len(rows) == ROWS[name][split]
  keys = [key for key, _ in rows]
  assert len(set(keys)) == len(keys)
  file_name = base.P3_SOURCES[name].split_files[split][0].rsplit("/", 1)[-1]
  assert all(k.startswith(file_name + ":") for k in keys)


@pytest.mark.parametrize("name,split", _CASES)
def test_fields_and_types_are_hugging_faces(records, name, split):
  expected = FIELDS[name]
  for key, record in records(name, split):
    assert set(record) == set(expected), key
    for field, kind in expected.items():
      value = record[field]
      assert isinstance(value, kind) and not isinstance(value, bool), (
          key, field, value)
  if name == "hellaswag":
    assert all(len(r["endings"]) == 4 and all(isinstance(e, str)
                                              for e in r["endings"])
               for _, r in records(name, split))


@pytest.mark.parametrize("name,split", sorted(LABELS))
def test_label_distributions(records, name, split):
  field, counts = LABELS[name, split]
  assert dict(collections.Counter(
      r[field] for _, r in records(name, split))) == counts


@pytest.mark.parametrize("name", sorted(ROWS))
def test_template_fields_are_record_fields(name):
  env = _environment()
  referenced = set()
  for template in _templates(name):
    for text in (template["jinja"], template.get("answer_choices") or ""):
      referenced |= jinja2.meta.find_undeclared_variables(env.parse(text))
  referenced -= {"answer_choices", "zip"}
  assert referenced, name
  assert referenced <= set(FIELDS[name]), referenced - set(FIELDS[name])


@pytest.mark.parametrize("name,split", _CASES)
def test_every_template_renders_the_records(records, name, split):
  env = _environment()
  random.seed(0)
  rows = records(name, split)
  sample = rows[:15] + rows[-5:]
  for template in _templates(name):
    for key, record in sample:
      prompt, target = _apply(env, template, record)
      # Some templates render nothing for some records (COPA's cause/effect
      # templates, TREC's per-class ones); where there is a prompt, there is
      # a target.
      if prompt:
        assert target, (template["name"], key)


# --- Label mappings, checked against the files and the templates. ---


def _raw_jsonl(raw_data_dir, relative):
  return [json.loads(line) for line in
          (raw_data_dir / relative).read_text(encoding="utf-8").splitlines()]


def test_superglue_labels_follow_the_files(raw_data_dir, records):
  raw = _raw_jsonl(raw_data_dir, "superglue/RTE/val.jsonl")
  got = records("super_glue/rte", "validation")
  assert [readers.RTE_LABELS[r["label"]] for _, r in got] == [
      r["label"] for r in raw]
  raw = _raw_jsonl(raw_data_dir, "superglue/CB/val.jsonl")
  got = records("super_glue/cb", "validation")
  assert [readers.CB_LABELS[r["label"]] for _, r in got] == [
      r["label"] for r in raw]
  raw = _raw_jsonl(raw_data_dir, "superglue/WiC/val.jsonl")
  got = records("super_glue/wic", "validation")
  assert [bool(r["label"]) for _, r in got] == [r["label"] for r in raw]
  assert got[0][1]["start1"] == raw[0]["start1"]
  raw = _raw_jsonl(raw_data_dir, "superglue/WSC/val.jsonl")
  got = records("super_glue/wsc.fixed", "validation")
  for (_, record), row in zip(got, raw):
    assert record["label"] == int(row["label"])
    assert record["span2_index"] == row["target"]["span2_index"]
    assert record["span1_text"] in record["text"]


def test_rte_target_follows_hugging_face_label_order(records):
  env = _environment()
  template = _template("super_glue/rte", "GPT-3 style")  # True ||| False
  targets = collections.Counter(
      (r["label"], _apply(env, template, r)[1])
      for _, r in records("super_glue/rte", "validation"))
  assert set(targets) == {(0, "True"), (1, "False")}


def test_anli_premise_is_context(raw_data_dir, records):
  raw = _raw_jsonl(raw_data_dir, "anli/R2/test.jsonl")
  got = records("anli", "test_r2")
  assert [r["premise"] for _, r in got] == [r["context"] for r in raw]
  assert [r["uid"] for _, r in got] == [r["uid"] for r in raw]
  assert ["enc"[r["label"]] for _, r in got] == [r["label"] for r in raw]


def test_hellaswag_label_is_a_string_the_templates_compare(records):
  env = _environment()
  record = records("hellaswag", "validation")[0][1]
  assert record["label"] == "3"
  assert record["endings"][3] == "starts pulling up roofing on a roof."
  template = _template("hellaswag", "Predict ending with hint")
  assert _apply(env, template, record)[1] == record["endings"][3]
  template = _template("hellaswag", "Appropriate continuation - Yes or No")
  targets = set()
  for seed in range(20):
    random.seed(seed)
    targets.add(_apply(env, template, record)[1])
  assert targets == {"Yes", "No"}  # "Yes" needs label == instance|string.


def test_winogrande_answer_is_a_string(records):
  env = _environment()
  template = _template("winogrande/winogrande_xl", "stand for")
  for _, record in records("winogrande/winogrande_xl", "validation"):
    expected = record["option" + record["answer"]]
    assert _apply(env, template, record)[1] == expected


def test_story_cloze_first_rows(records):
  key, record = records("story_cloze/2016", "validation")[0]
  assert key == "cloze_test_val__spring2016.csv:2"
  assert record["input_sentence_2"] == (
      "He never found good support in family, and turned to gangs.")
  assert record["sentence_quiz1"] == "He is happy now."
  assert record["answer_right_ending"] == 1
  env = _environment()
  template = _template("story_cloze/2016", "Answer Given options")
  assert _apply(env, template, record)[1] == "He is happy now."


def test_trec_label_ids_are_those_the_templates_index(raw_data_dir, records):
  # The ids are the labels' order of first occurrence in the training file.
  lines = (raw_data_dir / "trec/train.txt").read_bytes().splitlines()
  labels = [line.split(b" ", 1)[0].decode() for line in lines]
  coarse = list(dict.fromkeys(label.split(":")[0] for label in labels))
  fine = list(dict.fromkeys(label.split(":")[1] for label in labels))
  assert tuple(coarse) == readers.TREC_COARSE_LABELS
  assert tuple(fine) == readers.TREC_FINE_LABELS
  assert len(readers.TREC_FINE_LABELS) == 47
  assert len(readers.TREC_CLASSES) == 50

  env = _environment()
  fine_open = _template("trec", "fine_grained_open_context_first")
  assert len(fine_open["answer_choices"].split("|||")) == 47
  test = records("trec", "test")
  key, record = test[0]  # NUM:dist How far is it from Denver to Aspen ?
  assert key == "test.txt:1"
  assert record == {"text": "How far is it from Denver to Aspen ?",
                    "label_coarse": 4, "label_fine": 40}
  assert _apply(env, fine_open, record)[1] == "Distance"
  num = _template("trec", "fine_grained_NUM")
  assert _apply(env, num, record)[1] == "distance"
  record = test[1][1]  # LOC:city What county is Modesto , California in ?
  assert (record["label_coarse"], record["label_fine"]) == (5, 21)
  assert _apply(env, _template("trec", "fine_grained_LOC"), record)[1] == "city"
  assert _apply(env, fine_open, record)[1] == "City"
  coarse = _template("trec", "pick_the_best_descriptor")
  assert _apply(env, coarse, record)[1] == "Location"
  assert _apply(env, coarse, test[0][1])[1] == "Quantity"
  # The original's one bad byte ("sister\xf0city") becomes a space.
  record = dict(records("trec", "train"))["train.txt:66"]
  assert "as a sister city with Los Angeles ?" in record["text"]


def test_ag_news_text_and_label(records):
  key, record = records("ag_news", "test")[0]
  assert key == "test.csv:2"  # Line 1 is the header.
  assert record == {
      "text": "Fears for T N pension after talks Unions representing workers "
              "at Turner   Newall say they are 'disappointed' after talks "
              "with stricken parent firm Federal Mogul.",
      "label": 2}  # Class Index 3: Business.
  env = _environment()
  template = _template("ag_news", "classify_question_first")
  assert _apply(env, template, record)[1] == "Business"


def test_rotten_tomatoes_splits_are_hugging_faces(records):
  train = records("rotten_tomatoes", "train")
  validation = records("rotten_tomatoes", "validation")
  # Hugging Face's validation split lists its 533 positive reviews first.
  assert [r["label"] for _, r in validation] == [1] * 533 + [0] * 533
  assert validation[0][1]["text"].startswith(
      "compassionately explores the seemingly irreconcilable situation")
  assert not {r["text"] for _, r in train} & {r["text"] for _, r in validation}


# --- Malformed input: each format raises DataFormatError with file:line. ---


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text, encoding="utf-8")
  return path


def _read_all(name, split, path):
  return list(base.P3_SOURCES[name].read(split, [path]))


_RTE_OK = {"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0}


@pytest.mark.parametrize("bad_line,message", [
    ('{"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 1',
     "not valid JSON"),
    ('["premise", "p"]', "expected a JSON object"),
    ('{"premise": "p", "label": "entailment", "idx": 1}',
     "missing field 'hypothesis'"),
    ('{"premise": "p", "hypothesis": "h", "label": "contradiction", "idx": 1}',
     "unknown label \"contradiction\" in field 'label'"),
    ('{"premise": "p", "hypothesis": "h", "label": "entailment", "idx": "1"}',
     "field 'idx' must be an integer"),
])
def test_jsonl_malformed_rows(tmp_path, bad_line, message):
  path = _write(tmp_path, "val.jsonl",
                json.dumps(_RTE_OK) + "\n" + bad_line + "\n")
  with pytest.raises(DataFormatError, match=f"val.jsonl:2: .*{message}"):
    _read_all("super_glue/rte", "validation", path)


def test_jsonl_typed_labels(tmp_path):
  copa = {"premise": "p", "choice1": "a", "choice2": "b",
          "question": "cause", "idx": 0, "label": True}  # not 0/1
  path = _write(tmp_path, "val.jsonl", json.dumps(copa) + "\n")
  with pytest.raises(DataFormatError, match="val.jsonl:1: unknown label true"):
    _read_all("super_glue/copa", "validation", path)
  wic = {"word": "w", "sentence1": "a", "sentence2": "b", "idx": 0,
         "label": "true", "start1": 0, "start2": 0, "end1": 1, "end2": 1}
  path = _write(tmp_path, "val.jsonl", json.dumps(wic) + "\n")
  with pytest.raises(DataFormatError,
                     match="val.jsonl:1: field 'label' must be true or false"):
    _read_all("super_glue/wic", "validation", path)
  hellaswag = {"ind": 0, "activity_label": "a", "ctx_a": "c", "ctx_b": "",
               "ctx": "c", "endings": ["1", "2", "3"], "source_id": "",
               "split": "val", "split_type": "", "label": 0}
  path = _write(tmp_path, "hellaswag_val.jsonl", json.dumps(hellaswag) + "\n")
  with pytest.raises(DataFormatError, match=r"hellaswag_val.jsonl:1: .*4 str"):
    _read_all("hellaswag", "validation", path)
  winogrande = {"qID": "q", "sentence": "_ ran.", "option1": "A",
                "option2": "B", "answer": 1}
  path = _write(tmp_path, "dev.jsonl", json.dumps(winogrande) + "\n")
  with pytest.raises(DataFormatError, match="dev.jsonl:1: unknown label 1 in"):
    _read_all("winogrande/winogrande_xl", "validation", path)
  anli = {"uid": "u", "context": "c", "hypothesis": "h", "label": "x",
          "reason": ""}
  path = _write(tmp_path, "dev.jsonl", json.dumps(anli) + "\n")
  with pytest.raises(DataFormatError, match="dev.jsonl:1: unknown label \"x\""):
    _read_all("anli", "dev_r1", path)


def test_jsonl_blank_line_in_the_middle(tmp_path):
  line = json.dumps(_RTE_OK)
  path = _write(tmp_path, "train.jsonl", f"{line}\n\n{line}\n")
  with pytest.raises(DataFormatError, match="train.jsonl:2: blank line"):
    _read_all("super_glue/rte", "train", path)
  path = _write(tmp_path, "train.jsonl", f"{line}\n{line}\n\n")
  assert [k for k, _ in _read_all("super_glue/rte", "train", path)] == [
      "train.jsonl:1", "train.jsonl:2"]


def test_wsc_spans_are_fixed_as_in_hugging_face(tmp_path):
  row = {"text": "Mark told Pete many lies about himself.",
         "target": {"span1_index": 0, "span1_text": "mark.",
                    "span2_index": 5, "span2_text": "himself"},
         "idx": 0, "label": True}
  path = _write(tmp_path, "val.jsonl", json.dumps(row) + "\n")
  [(_, record)] = _read_all("super_glue/wsc.fixed", "validation", path)
  assert record == {"text": row["text"], "span1_index": 0,
                    "span1_text": "Mark", "span2_index": 5,
                    "span2_text": "himself", "idx": 0, "label": 1}
  row["target"]["span1_text"] = "Mary"
  path = _write(tmp_path, "val.jsonl", json.dumps(row) + "\n")
  with pytest.raises(DataFormatError,
                     match="val.jsonl:1: target.span1_text 'Mary' is not in"):
    _read_all("super_glue/wsc.fixed", "validation", path)
  del row["target"]["span2_index"]
  path = _write(tmp_path, "val.jsonl", json.dumps(row) + "\n")
  with pytest.raises(DataFormatError,
                     match="val.jsonl:1: missing field 'target.span2_index'"):
    _read_all("super_glue/wsc.fixed", "validation", path)


_STORY_HEADER = ("InputStoryid,InputSentence1,InputSentence2,InputSentence3,"
                 "InputSentence4,RandomFifthSentenceQuiz1,"
                 "RandomFifthSentenceQuiz2,AnswerRightEnding\n")


def test_csv_story_cloze(tmp_path):
  path = _write(tmp_path, "s.csv", _STORY_HEADER
                + 'a,"One, with comma",2,"Three\nacross lines",4,q1,q2,2\n'
                + "b,1,2,3,4,q1,q2,1\n")
  rows = _read_all("story_cloze/2016", "validation", path)
  assert [k for k, _ in rows] == ["s.csv:2", "s.csv:4"]
  assert rows[0][1]["input_sentence_1"] == "One, with comma"
  assert rows[0][1]["input_sentence_3"] == "Three\nacross lines"
  assert rows[0][1]["answer_right_ending"] == 2

  path = _write(tmp_path, "s.csv",
                _STORY_HEADER + "a,1,2,3,4,q1,q2,1\nb,1,2,3,4,q1,q2,3\n")
  with pytest.raises(DataFormatError,
                     match="s.csv:3: unknown label '3' in column "
                           "'AnswerRightEnding'"):
    _read_all("story_cloze/2016", "validation", path)
  path = _write(tmp_path, "s.csv", _STORY_HEADER + "a,1,2,3,4,q1,1\n")
  with pytest.raises(DataFormatError, match="s.csv:2: expected 8 fields"):
    _read_all("story_cloze/2016", "validation", path)
  path = _write(tmp_path, "s.csv", "id,text\na,b\n")
  with pytest.raises(DataFormatError, match="s.csv:1: header must name"):
    _read_all("story_cloze/2016", "validation", path)


def test_csv_ag_news(tmp_path):
  # The original files have no header row.
  path = _write(tmp_path, "test.csv", '"3","A title","A \\text"\n'
                '"4","T","D"\n')
  assert _read_all("ag_news", "test", path) == [
      ("test.csv:1", {"text": "A title A \\text", "label": 2}),
      ("test.csv:2", {"text": "T D", "label": 3})]
  path = _write(tmp_path, "test.csv",
                'Class Index,Title,Description\n"3","T","D"\n"5","T","D"\n')
  with pytest.raises(DataFormatError,
                     match="test.csv:3: unknown label '5' in column "
                           "'Class Index'"):
    _read_all("ag_news", "test", path)
  path = _write(tmp_path, "test.csv", '"3","T","D"\n"3","T, D"\n')
  with pytest.raises(DataFormatError, match="test.csv:2: expected 3 fields"):
    _read_all("ag_news", "test", path)
  path = _write(tmp_path, "test.csv", '"3","T","D"\n"3","T"x,"D"\n')
  with pytest.raises(DataFormatError, match="test.csv:2: malformed CSV"):
    _read_all("ag_news", "test", path)
  path = tmp_path / "test.csv"
  path.write_bytes(b'"3","T","D"\n"3","caf\xe9","D"\n')
  with pytest.raises(DataFormatError, match="test.csv:2: not valid UTF-8"):
    _read_all("ag_news", "test", path)


def test_trec_txt(tmp_path):
  path = tmp_path / "train.txt"
  path.write_bytes(b"LOC:city Which sister\xf0city is it ?\r\n"
                   b"HUM:desc Who was Galileo ?\n\n")
  assert _read_all("trec", "train", path) == [
      ("train.txt:1", {"text": "Which sister city is it ?",
                       "label_coarse": 5, "label_fine": 21}),
      ("train.txt:2", {"text": "Who was Galileo ?",
                       "label_coarse": 3, "label_fine": 12})]
  for bad, message in [
      ("LOC:town Where is it ?", "unknown label 'LOC:town'"),
      ("HUM:city Who is it ?", "unknown label 'HUM:city'"),
      ("Where is it ?", "unknown label 'Where'"),
      ("NUM:count", "label 'NUM:count' but no question"),
  ]:
    path = _write(tmp_path, "test.txt", f"HUM:ind Who ?\n{bad}\n")
    with pytest.raises(DataFormatError, match=f"test.txt:2: {message}"):
      _read_all("trec", "test", path)
  path = _write(tmp_path, "test.txt", "HUM:ind Who ?\n\nHUM:ind Who ?\n")
  with pytest.raises(DataFormatError, match="test.txt:2: blank line"):
    _read_all("trec", "test", path)
  path = tmp_path / "test.txt"
  path.write_bytes(b"HUM:ind Who ?\nHUM:ind Who is Jos\xe9 ?\n")
  with pytest.raises(DataFormatError, match="test.txt:2: not valid UTF-8"):
    _read_all("trec", "test", path)


def _metaicl(**overrides):
  row = {"task": "rotten_tomatoes", "input": "a fine film",
         "output": "positive", "options": ["negative", "positive"]}
  row.update(overrides)
  return json.dumps(row)


def test_metaicl_jsonl(tmp_path):
  path = _write(tmp_path, "test.jsonl",
                _metaicl() + "\n" + _metaicl(output="negative") + "\n")
  assert _read_all("rotten_tomatoes", "validation", path) == [
      ("test.jsonl:1", {"text": "a fine film", "label": 1}),
      ("test.jsonl:2", {"text": "a fine film", "label": 0})]
  for bad, message in [
      (_metaicl(output="neutral"), "unknown label \"neutral\" in field "
                                   "'output'"),
      (_metaicl(options=["positive", "negative"]), "field 'options' is"),
      (_metaicl(options=["negative"]), "field 'options' must be a list of 2"),
      (_metaicl(task="sst2"), "field 'task' is 'sst2'"),
      ('{"task": "rotten_tomatoes", "output": "positive", '
       '"options": ["negative", "positive"]}', "missing field 'input'"),
  ]:
    path = _write(tmp_path, "dev.jsonl", _metaicl() + "\n" + bad + "\n")
    with pytest.raises(DataFormatError, match=f"dev.jsonl:2: {message}"):
      _read_all("rotten_tomatoes", "train", path)
