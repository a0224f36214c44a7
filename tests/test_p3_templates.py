"""The promptsource 0.2.3 templates: YAML loader, conversion, rendering.

Every template file of the installed package is loaded; every template is
converted to a `PromptTemplate` and rendered on a synthetic record built from
the fields it references (their shapes inferred from the jinja: ``x.a`` makes
``x`` a mapping, ``x[0]`` or ``for y in x`` a list, ``x == 1`` or
``choices[x]`` an int), and its input/target are compared with promptsource's
own render-then-split on that record. Korean template versions are checked
against their English templates the same way.
"""

import collections
import json
import os
import subprocess
import sys

import jinja2
import jinja2.meta
import jinja2.nodes
import pytest

from korani_tasks import errors
from korani_tasks.p3 import catalog
from korani_tasks.p3 import preprocessors
from korani_tasks.p3 import promptsource_yaml as ps
from korani_tasks.p3 import tasks as p3_tasks
from korani_tasks.templates import prompt
import p3_template_exceptions as exceptions

ENV = prompt._PROMPTSOURCE_ENV  # pylint: disable=protected-access

# Package 0.2.3: folders, files, templates.
NUM_FOLDERS = 179
NUM_FILES = 279
NUM_TEMPLATES = 2085


# --- Synthetic records. ---


class _Shape:
  """The inferred type of a record value: str, int, list or dict."""

  def __init__(self):
    self.kind = None  # None: a plain string.
    self.keys: dict[str, _Shape] = {}
    self.elem: _Shape | None = None
    self.consts: list[str] = []

  def as_dict(self) -> "_Shape":
    if self.kind != "list":
      self.kind = "dict"
    return self

  def key(self, name: str) -> "_Shape":
    self.as_dict()
    return self.keys.setdefault(str(name), _Shape())

  def element(self) -> "_Shape":
    if self.kind in (None, "int", "str"):
      self.kind = "list"
    self.elem = self.elem or _Shape()
    return self.elem

  def value(self, name: str, number: int):
    if self.kind == "int":
      return number
    if self.consts:  # Compared with string constants: one of them, or not.
      values = self.consts + [f"{name} text"]
      return values[number % len(values)]
    if self.kind == "dict":
      return {k: s.value(f"{name} {k}", number) for k, s in self.keys.items()}
    if self.kind == "list":
      elem = self.elem or _Shape()
      return [elem.value(f"{name} {i}", number) for i in range(4)]
    return f"{name} text"


def _path(node, fields):
  """``(field, steps)`` for a lookup chain on a record field, else None."""
  steps = []
  while isinstance(node, (jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
    if isinstance(node, jinja2.nodes.Getattr):
      steps.append(("key", node.attr))
    elif isinstance(node.arg, jinja2.nodes.Const) and isinstance(
        node.arg.value, str):
      steps.append(("key", node.arg.value))
    else:
      steps.append(("item", None))
    node = node.node
  if isinstance(node, jinja2.nodes.Name) and node.name in fields:
    return node.name, steps[::-1]
  return None


def _shape_at(shapes, path):
  field, steps = path
  shape = shapes[field]
  for kind, name in steps:
    shape = shape.key(name) if kind == "key" else shape.element()
  return shape


def _list_filters():
  return {"length", "join", "choice", "list", "first", "last", "random",
          "sort", "unique", "count", "most_frequent", "reverse", "map",
          "select", "reject", "sum", "batch", "slice"}


def synthetic_record(sources, number: int = 0) -> dict:
  """A record with every field that the jinja `sources` reference."""
  fields = set()
  asts = []
  for source in sources:
    if source is None:
      continue
    ast = ENV.parse(source)
    asts.append(ast)
    fields |= jinja2.meta.find_undeclared_variables(ast)
  fields -= {"answer_choices"} | set(ENV.globals)
  shapes = {f: _Shape() for f in fields}
  for ast in asts:
    methods = {id(call.node) for call in ast.find_all(jinja2.nodes.Call)
               if isinstance(call.node, jinja2.nodes.Getattr)}
    for node in ast.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
      if id(node) in methods:  # x.split(' '): a method of a string.
        continue
      if isinstance(node, jinja2.nodes.Getitem):  # choices[label]: an int.
        arg = node.arg
        while isinstance(arg, jinja2.nodes.Filter):
          arg = arg.node
        arg_path = _path(arg, fields)
        if arg_path and not isinstance(node.arg, jinja2.nodes.Const):
          _shape_at(shapes, arg_path).kind = "int"
      path = _path(node, fields)
      if path is None:
        continue
      shape = _shape_at(shapes, (path[0], path[1][:-1])) if path[1] else None
      if path[1]:
        kind, name = path[1][-1]
        if kind == "key":
          shape.key(name)
        else:
          shape.element()
    for node in ast.find_all(jinja2.nodes.For):
      path = _path(node.iter, fields)
      if path:
        _shape_at(shapes, path).element()
    for node in ast.find_all(jinja2.nodes.Filter):
      path = _path(node.node, fields) if node.node is not None else None
      if path and node.name in _list_filters():
        _shape_at(shapes, path).element()
    for node in ast.find_all(jinja2.nodes.BinExpr):
      operands = (node.left, node.right)
      if any(isinstance(o, jinja2.nodes.Const) and type(o.value) in (int, float)
             for o in operands):
        for operand in operands:
          path = _path(operand, fields)
          if path and _shape_at(shapes, path).kind is None:
            _shape_at(shapes, path).kind = "int"
    for node in ast.find_all(jinja2.nodes.Compare):
      operands = [node.expr] + [op.expr for op in node.ops]
      consts = [o.value for o in operands if isinstance(o, jinja2.nodes.Const)]
      consts += [-o.node.value for o in operands
                 if isinstance(o, jinja2.nodes.Neg)
                 and isinstance(o.node, jinja2.nodes.Const)]
      is_int = any(type(c) in (int, float) for c in consts)
      strings = [c for c in consts if isinstance(c, str)]
      for operand in operands:
        path = _path(operand, fields)
        if path and is_int:
          shape = _shape_at(shapes, path)
          if shape.kind is None:
            shape.kind = "int"
        elif path and strings:
          shape = _shape_at(shapes, path)
          shape.consts += [c for c in strings if c not in shape.consts]
    for node in ast.find_all(jinja2.nodes.Filter):
      path = _path(node.node, fields) if node.node is not None else None
      if path and node.name in ("round", "float", "abs"):
        shape = _shape_at(shapes, path)
        if shape.kind is None:
          shape.kind = "int"
  return {f: shapes[f].value(f, number) for f in sorted(fields)}


def promptsource_parts(template: ps.P3Template, record) -> list[str]:
  """promptsource's Template.apply: render the whole, split, strip."""
  prepared = preprocessors.prepare_record(record)
  choices = template.to_prompt_template().render_answer_choices(prepared)
  whole = ENV.from_string(ps.truncate_values(template.jinja)).render(
      **prepared, answer_choices=choices)
  return [preprocessors.unescape(p).strip()
          for p in whole.split(ps.SEPARATOR)]


def _render_synthetic(template: ps.P3Template, jinja_sources=None):
  """``(record, parts, promptsource's parts)``; numbers 0, 1, then 2."""
  converted = template.to_prompt_template(check_syntax=True)
  sources = jinja_sources or (template.jinja, template.answer_choices)
  result = None
  for number in (0, 1, 2):
    record = synthetic_record(sources, number)
    parts = preprocessors.render_p3(converted, record)
    result = record, parts, promptsource_parts(template, record)
    if parts[0] and parts[1]:
      break
  return result


# --- The package and the loader. ---


def test_templates_folder_found_without_importing_promptsource():
  code = ("import sys; from korani_tasks.p3 import promptsource_yaml as p; "
          "print(p.templates_dir()); "
          "print('promptsource' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                       capture_output=True, env=dict(os.environ)).stdout
  folder, imported = out.strip().splitlines()[-2:]
  assert folder.endswith(os.path.join("promptsource", "templates"))
  assert imported == "False"


def test_missing_package_says_how_to_install(monkeypatch):
  monkeypatch.setattr(ps, "_installed_templates_dir", lambda: None)
  monkeypatch.delenv(ps.TEMPLATES_DIR_ENV, raising=False)
  ps.templates_dir.cache_clear()
  try:
    with pytest.raises(errors.MissingDataError) as e:
      ps.templates_dir()
    assert ps.PIP_INSTALL in str(e.value)
    assert "pip install --no-deps --ignore-requires-python promptsource==0.2.3" \
        in str(e.value)
  finally:
    ps.templates_dir.cache_clear()


def test_templates_dir_variable(monkeypatch, tmp_path):
  (tmp_path / "toy").mkdir()
  (tmp_path / "toy" / "templates.yaml").write_text(
      "dataset: toy\ntemplates:\n"
      "  abc: !Template\n    answer_choices: null\n    id: abc\n"
      "    jinja: '{{a}} ||| {{b}}'\n    metadata: !TemplateMetadata\n"
      "      choices_in_prompt: false\n      metrics: [BLEU]\n"
      "      original_task: true\n    name: toy one\n    reference: ''\n")
  monkeypatch.setenv(ps.TEMPLATES_DIR_ENV, str(tmp_path))
  for f in (ps.templates_dir, ps.dataset_keys, ps.load, ps.load_all):
    f.cache_clear()
  try:
    (toy,) = ps.load("toy")
    assert (toy.template_id, toy.name, toy.answer_choices, toy.metrics,
            toy.original_task) == ("abc", "toy one", None, ("BLEU",), True)
    assert ps.dataset_keys() == ("toy",)
  finally:
    monkeypatch.delenv(ps.TEMPLATES_DIR_ENV)
    for f in (ps.templates_dir, ps.dataset_keys, ps.load, ps.load_all):
      f.cache_clear()


def test_every_template_file_loads():
  root = ps.templates_dir()
  folders = {k.split("/")[0] for k in ps.dataset_keys()}
  assert len(folders) == NUM_FOLDERS
  assert folders == {p.name for p in root.iterdir()
                     if p.is_dir() and not p.name.startswith((".", "_"))}
  everything = ps.load_all()
  assert len(everything) == NUM_FILES
  assert sum(map(len, everything.values())) == NUM_TEMPLATES
  for key, templates in everything.items():
    assert [t.name for t in templates] == sorted(t.name for t in templates)
    for t in templates:
      assert t.dataset_key == key
      assert isinstance(t, ps.P3Template)
      assert t.template_id and t.name and t.jinja
      assert t.answer_choices is None or ps.SEPARATOR in t.answer_choices \
          or t.answer_choices.strip()
      assert isinstance(t.metrics, tuple)


def test_loader_builds_our_dataclasses():
  rte = {t.name: t for t in ps.load("super_glue/rte")}
  t = rte["GPT-3 style"]
  assert t.template_id == "8fb1c6aa-20e9-438c-bece-c6af1c746449"
  assert t.answer_choices == "True ||| False"
  assert t.original_task and t.choices_in_prompt
  assert t.metrics == ("Accuracy",)
  assert t.reference.startswith("Same as reported in Figure G31")
  assert t.t0_name == "super_glue_rte_GPT_3_style"
  assert ps.get("super_glue/rte", t.template_id) is t
  with pytest.raises(KeyError, match="GPT-3 style"):
    ps.get("super_glue/rte", "no such template")
  with pytest.raises(errors.MissingDataError):
    ps.load("no_such_dataset")
  doc = ps.parse_yaml("x: !TemplateMetadata {original_task: true}")
  assert doc["x"] == ps.TemplateMetadata(original_task=True)
  with pytest.raises(Exception, match="unknown keys"):
    ps.parse_yaml("x: !TemplateMetadata {colour: red}")


def test_t0_names():
  assert ps.t0_task_name("super_glue/rte", "GPT-3 style") == \
      "super_glue_rte_GPT_3_style"
  assert ps.t0_task_name("super_glue/copa", "…As a result, C1 or C2?") == \
      "super_glue_copa__As_a_result_C1_or_C2_"
  assert ps.t0_task_name("super_glue/wsc.fixed", "GPT-3 Style") == \
      "super_glue_wsc.fixed_GPT_3_Style"
  assert ps.t0_task_name("amazon_polarity", "Is this review negative?") == \
      "amazon_polarity_Is_this_review_negative_"


# --- Conversion. ---


def test_conversion_splits_input_and_target():
  t = ps.get("super_glue/rte", "GPT-3 style")
  converted = t.to_prompt_template()
  assert converted.dialect == "promptsource" and converted.lang == "en"
  assert converted.template_id == "GPT_3_style"
  assert converted.input == ("{{premise | string | truncate(2048) }}\n"
                             "Question: {{hypothesis | string | "
                             "truncate(2048) }} True or False? ")
  assert "answer_choices[label]" in converted.target
  plain = t.to_prompt_template(truncate=False)
  assert plain.input + ps.SEPARATOR + plain.target == t.jinja
  record = {"premise": "P.", "hypothesis": "H.", "idx": 0, "label": 1}
  rendered = converted.render(record)
  assert (rendered.inputs, rendered.targets, rendered.label_index) == (
      "P.\nQuestion: H. True or False?", "False", 1)


def test_split_kinds_of_the_catalog_datasets():
  kinds = collections.Counter()
  whole = []
  for key in catalog.load():
    for t in ps.load(key):
      kind = ps.split_kind(t.jinja)
      kinds[kind] += 1
      if kind == ps.SPLIT_WHOLE:
        whole.append((key, t.name))
  print("split kinds of the catalog's templates:", dict(kinds), whole)
  assert kinds[ps.SPLIT_SIMPLE] > 300
  assert len(whole) <= 10


def test_structured_split_copies_sets_and_ifs():
  t = ps.get("trec", "fine_grained_LOC")
  assert ps.split_kind(t.jinja) == ps.SPLIT_STRUCTURED
  converted = t.to_prompt_template()
  assert converted.input.count("{% if label_coarse == 5 %}") == 1
  assert converted.target.lstrip().startswith("{% set label_mapping")
  loc = {"text": "Where is Ulm?", "label_coarse": 5, "label_fine": 21}
  assert converted.render_parts(loc)[:2] == (
      "Is this question asking for city, country, mountain, state, other "
      "location?\nWhere is Ulm?", "city")
  assert converted.render_parts(dict(loc, label_coarse=4))[:2] == ("", "")


def test_whole_split_renders_and_splits():
  t = ps.get("wiki_hop/original", "generate_subject")
  assert ps.split_kind(t.jinja) == ps.SPLIT_WHOLE
  record = {"supports": ["s1", "s2"], "question": "country_of_citizenship X",
            "answer": "Y", "candidates": [], "id": "1"}
  inputs, targets, _ = t.to_prompt_template().render_parts(record)
  assert inputs.startswith("Information:\n\n- s1")
  assert targets == "X"
  assert [inputs, targets] == promptsource_parts(t, record)


def test_pipes_in_record_values_do_not_split():
  t = ps.get("super_glue/copa", "best_option")
  record = {"premise": "A ||| B", "choice1": "x ||| y", "choice2": "z",
            "question": "cause", "idx": 0, "label": 0}
  inputs, targets, choices, index, status = preprocessors.render_p3(
      t.to_prompt_template(), record, preprocessors.SCORE_EVAL)
  assert choices == ["x ||| y", "z"]
  assert (targets, index, status) == ("x ||| y", 0, preprocessors.KEPT)
  assert "A ||| B" in inputs


def test_hyphens_in_field_names_become_underscores():
  prepared = preprocessors.prepare_record({"a-b": "x", "c": 1})
  assert prepared == {"a_b": "x", "c": 1}


# --- Every template renders. ---


def _pairs(by_dataset) -> set[tuple[str, str]]:
  return {(key, name) for key, names in by_dataset.items() for name in names}


def test_every_template_renders_as_promptsource_does():
  """Every template of the package, on a synthetic record of its fields."""
  failed, empty, rendered = [], [], 0
  for key, templates in ps.load_all().items():
    for t in templates:
      try:
        record, parts, reference = _render_synthetic(t)
      except Exception as e:  # pylint: disable=broad-except
        failed.append((key, t.name, f"{type(e).__name__}: {e}"[:160]))
        continue
      inputs, targets = parts[0], parts[1]
      if len(reference) == 2:
        assert [inputs, targets] == reference, (key, t.name, record)
      else:
        assert not inputs or not targets, (key, t.name, record, reference)
      if inputs and targets:
        rendered += 1
      else:
        empty.append((key, t.name))
  print(f"\n{rendered} of {NUM_TEMPLATES} templates render a non-empty input "
        f"and target on a synthetic record; {len(empty)} render empty on it; "
        f"{len(failed)} cannot render it:")
  for item in failed:
    print("  cannot render:", *item)
  assert rendered + len(empty) + len(failed) == NUM_TEMPLATES
  assert {(key, name) for key, name, _ in failed} == _pairs(
      exceptions.NEEDS_REAL_DATA)
  assert set(empty) == _pairs(exceptions.EMPTY_ON_SYNTHETIC)


def test_every_catalog_template_renders():
  """The catalog's datasets: templates render their synthetic record as
  promptsource does; the few whose jinja needs real data (e.g. the answer
  looked up in the choices with ``.index``) are listed."""
  cannot = []
  total = 0
  for key in catalog.load():
    for t in ps.load(key):
      total += 1
      try:
        _, parts, reference = _render_synthetic(t)
      except Exception as e:  # pylint: disable=broad-except
        cannot.append((key, t.name, f"{type(e).__name__}: {e}"[:100]))
        continue
      if len(reference) == 2:
        assert list(parts[:2]) == reference, (key, t.name)
  print(f"\n{total - len(cannot)} of the catalog's {total} templates render "
        "a synthetic record; these need real data:")
  for item in cannot:
    print("  ", *item)
  catalog_keys = set(catalog.load())
  assert {(key, name) for key, name, _ in cannot} == {
      (key, name) for key, name in _pairs(exceptions.NEEDS_REAL_DATA)
      if key in catalog_keys}


def test_every_converted_template_parses():
  for key, templates in ps.load_all().items():
    for t in templates:
      t.to_prompt_template(check_syntax=True)  # Raises ConfigError.
      t.to_prompt_template(truncate=False, check_syntax=True)


# --- Filters. ---


def _choice_template(expression="['a', 'b', 'c', 'd'] | choice"):
  return prompt.PromptTemplate(
      dataset="toy", template_id="t", lang="en", dialect="promptsource",
      input="{{ x }} {{ " + expression + " }}", target="{{ x }}")


def test_choice_is_deterministic_per_record():
  t = _choice_template()
  picks = [t.render_parts({"x": f"record {i}"})[0][-1] for i in range(200)]
  assert picks == [t.render_parts({"x": f"record {i}"})[0][-1]
                   for i in range(200)]
  assert set(picks) == {"a", "b", "c", "d"}  # Spread over the items.
  counts = collections.Counter(picks)
  assert min(counts.values()) > 25
  # The same in another process (no dependence on hash randomization).
  code = ("from korani_tasks.templates import prompt\n"
          "t = prompt.PromptTemplate(dataset='toy', template_id='t', "
          "lang='en', dialect='promptsource', input=\"{{ x }} {{ ['a', 'b', "
          "'c', 'd'] | choice }}\", target='{{ x }}')\n"
          "print(''.join(t.render_parts({'x': f'record {i}'})[0][-1] "
          "for i in range(200)))")
  out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                       capture_output=True,
                       env=dict(os.environ, PYTHONHASHSEED="123")).stdout
  assert out.strip().splitlines()[-1] == "".join(picks)


def test_choice_agrees_between_input_target_and_choices():
  t = ps.get("hellaswag", "Appropriate continuation - Yes or No")
  converted = t.to_prompt_template()
  agree = 0
  for i in range(40):
    record = {"ctx_a": f"ctx {i}", "ctx_b": "b", "label": "2",
              "endings": ["e0", "e1", "e2", "e3"]}
    inputs, targets, _ = converted.render_parts(record)
    shown = inputs.split("\n")[2].split()[-1]
    assert targets == ("Yes" if shown == "e2" else "No")
    agree += 1
  assert agree == 40


def test_most_frequent_highlight_and_zip():
  t = prompt.PromptTemplate(
      dataset="toy", template_id="t", lang="en",
      input="{{ xs | most_frequent | join(',') }} {{ 'w' | highlight }}",
      target="{% for a, b in zip(xs, ys) %}{{ a }}{{ b }}{% endfor %}")
  inputs, targets, _ = t.render_parts({"xs": ["a", "b", "b", "a", "c"],
                                       "ys": [1, 2]})
  assert inputs == "a,b <span style='color: #F08080'>w</span>"
  assert targets == "a1b2"
  assert prompt.most_frequent([]) is None


def test_promptsource_undefined_is_strict_for_fields_only():
  t = prompt.PromptTemplate(
      dataset="toy", template_id="t", lang="en", dialect="promptsource",
      input="{{ q }}", target="{{ answers.text[0] }}")
  assert t.render_parts({"q": "Q", "answers": {"text": []}})[:2] == ("Q", "")
  with pytest.raises(errors.ConfigError, match="undefined"):
    t.render_parts({"q": "Q"})
  korani = prompt.PromptTemplate(
      dataset="toy", template_id="t", lang="en", input="{{ q }}",
      target="{{ answers.text[0] }}")
  with pytest.raises(errors.ConfigError):
    korani.render_parts({"q": "Q", "answers": {"text": []}})


# --- Korean versions. ---


def _korean_keys():
  return [k for k in p3_tasks.korean_template_keys()]


@pytest.mark.parametrize("key", _korean_keys())
def test_korean_templates_match_their_english_ones(key):
  english = {t.template_id: t for t in ps.load(key)}
  for ko in p3_tasks.korean_templates(key):
    en = english[ko.template_id]
    assert ko.name == en.name
    assert (ko.answer_choices is None) == (en.answer_choices is None)
    assert ko.jinja.count(ps.SEPARATOR) == en.jinja.count(ps.SEPARATOR), \
        (key, ko.name)
    fields = lambda t: jinja2.meta.find_undeclared_variables(  # noqa: E731
        ENV.parse(t.jinja + "\n" + (t.answer_choices or ""))
    ) - {"answer_choices"}
    assert fields(ko) == fields(en), (key, ko.name)
    assert ps.split_kind(ko.jinja) == ps.split_kind(en.jinja), (key, ko.name)
    converted = ko.to_prompt_template("ko", check_syntax=True)
    assert converted.lang == "ko"
    # The English template's synthetic record renders in Korean too (where
    # the English one can render it: some need real data).
    try:
      _render_synthetic(en)
    except Exception:  # pylint: disable=broad-except
      continue
    sources = (en.jinja, en.answer_choices, ko.jinja, ko.answer_choices)
    try:
      record, parts, reference = _render_synthetic(ko, sources)
    except ValueError:
      # The Korean version looks a value up in a list (`.index`), which a
      # synthetic record cannot satisfy (wiqa maps the data's English
      # answer to its Korean choice this way).
      assert ".index(" in ko.jinja + (ko.answer_choices or ""), (key, ko.name)
      continue
    if len(reference) == 2:
      assert list(parts[:2]) == reference, (key, ko.name)
    en_parts = preprocessors.render_p3(en.to_prompt_template(), record)
    assert bool(parts[0] and parts[1]) == bool(en_parts[0] and en_parts[1]), \
        (key, ko.name, parts, en_parts)
    assert len(parts[2]) == len(en_parts[2]), (key, ko.name, "choices")
    assert parts[3] == en_parts[3], (key, ko.name, "answer index differs")


def test_korean_files_print_counts():
  counts = {k: len(p3_tasks.korean_templates(k)) for k in _korean_keys()}
  print("Korean template versions per dataset:", json.dumps(counts))
  assert sum(counts.values()) > 0
