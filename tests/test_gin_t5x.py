"""gin/t5x/: the experiments as gin files for upstream t5x, checked without t5x.

t5x cannot be installed here, so `T5X_FILES` keeps what its gin files do, as
read from google-research/t5x (paths and commits: gin/t5x/README.md). The check
parses every file under gin/t5x/ with gin's own parser (no configurable is
resolved), follows includes in gin's order and reports, per file and line:

- includes that are neither a t5x file listed here nor an existing file of
  gin/t5x/;
- macros and parameters that no included t5x file defines or configures
  (typos such as TASK_FEATURE_LENGHTS), except our own `OWN_MACROS`;
- bindings that a t5x file included later overrides;
- parameter bindings whose module is not imported in the same file (gin's
  dynamic registration resolves names per file);
- mixtures that `import mixtures` does not register, and checkpoints of
  another size than the included mT5 model.

Example: `check_t5x_gin_files(root)` returns [] for a clean tree, or lines
such as "gin/t5x/bad.gin:3: binds macro TASK_FEATURE_LENGHTS, which no t5x
file it is used with defines".
"""

import dataclasses
import itertools
import pathlib
import re
import shutil
import tokenize
from typing import Any, NamedTuple

import gin
from gin import config_parser
import pytest
import seqio

import mixtures  # pylint: disable=unused-import
from korani_tasks import vocab
from t5x_runs import configurables  # pylint: disable=unused-import
from t5x_runs import gin_utils

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
T5X_GIN_DIR = "gin/t5x"
OUR_GIN_DIR = pathlib.Path(gin_utils.GIN_DIR)


def _params(selector: str, *names: str) -> frozenset[str]:
  return frozenset(f"{selector}.{name}" for name in names)


@dataclasses.dataclass(frozen=True)
class T5xGinFile:
  """What one t5x gin file does, as read at `commit`.

  `includes` come first in the file, then its bindings: `required` macros are
  left %gin.REQUIRED, `macros` are bound to values, `uses` are referenced but
  bound elsewhere, and `parameters` ('scope/selector.param') are configured.
  """
  commit: str
  includes: tuple[str, ...] = ()
  required: frozenset[str] = frozenset()
  macros: frozenset[str] = frozenset()
  uses: frozenset[str] = frozenset()
  parameters: frozenset[str] = frozenset()
  source: str = ""  # where the content was read, if not from the file itself

  @property
  def known_macros(self) -> frozenset[str]:
    return self.required | self.macros | self.uses


# t5x main when these records were made (2026-04-21). The records keep what
# each file does at that commit: read there with `git show
# cc342d41:t5x/configs/runs/eval.gin` etc. in a clone of google-research/t5x
# (each file's last change: finetune.gin ecc6369, eval.gin ccc5da0,
# mt5/base.gin 11abdae, mt5/{small,large,xl,xxl}.gin 2c29433).
T5X_MAIN_COMMIT = "cc342d419ec3e3e9c4bf1df33c82330cafdc1e16"

_DATASET_CONFIG = ("mixture_or_task_name", "task_feature_lengths", "split",
                   "batch_size", "shuffle", "seed", "use_cached", "pack",
                   "module")
_T5_CONFIG = ("vocab_size", "dtype", "emb_dim", "num_heads",
              "num_encoder_layers", "num_decoder_layers", "head_dim",
              "mlp_dim", "mlp_activations", "dropout_rate",
              "logits_via_embedding")
_MT5_SIZE_FILE = dict(
    commit=T5X_MAIN_COMMIT,
    includes=("t5x/examples/t5/mt5/base.gin",),
    parameters=(_params("network.Transformer", "config")
                | _params("network.T5Config", "emb_dim", "num_heads",
                          "num_encoder_layers", "num_decoder_layers",
                          "head_dim", "mlp_dim")))
_EVAL_PARAMETERS = (
    _params("eval_script.evaluate", "model", "dataset_cfg", "partitioner",
            "restore_checkpoint_cfg", "output_dir", "inference_evaluator_cls")
    | _params("partitioning.PjitPartitioner", "num_partitions",
              "logical_axis_rules")
    | _params("seqio.Evaluator", "logger_cls", "num_examples",
              "use_memory_cache")
    | _params("utils.DatasetConfig", *_DATASET_CONFIG,
              "use_custom_packing_ops")
    | _params("utils.RestoreCheckpointConfig", "path", "mode"))

# The t5x gin files ours may include, and what each does on t5x main.
T5X_FILES = {
    "t5x/configs/runs/finetune.gin": T5xGinFile(
        commit=T5X_MAIN_COMMIT,
        # MIXTURE_OR_TASK_MODULE is first required, then bound to None.
        required=frozenset({"MODEL_DIR", "MIXTURE_OR_TASK_NAME",
                            "TASK_FEATURE_LENGTHS", "TRAIN_STEPS",
                            "INITIAL_CHECKPOINT_PATH"}),
        macros=frozenset({"DROPOUT_RATE", "USE_CACHED_TASKS", "BATCH_SIZE",
                          "EVAL_STEPS", "EVAL_PERIOD",
                          "EVALUATOR_USE_MEMORY_CACHE",
                          "EVALUATOR_NUM_EXAMPLES", "JSON_WRITE_N_RESULTS",
                          "USE_HARDWARE_RNG", "RANDOM_SEED",
                          "TRAIN_STEPS_RELATIVE", "MIXTURE_OR_TASK_MODULE"}),
        uses=frozenset({"MODEL"}),
        parameters=(
            _params("train_script.train", "model", "model_dir",
                    "train_dataset_cfg", "train_eval_dataset_cfg",
                    "infer_eval_dataset_cfg", "checkpoint_cfg", "partitioner",
                    "trainer_cls", "total_steps", "eval_steps", "eval_period",
                    "relative_steps", "random_seed", "use_hardware_rng",
                    "summarize_config_fn", "inference_evaluator_cls")
            | _params("partitioning.PjitPartitioner", "num_partitions",
                      "model_parallel_submesh", "logical_axis_rules")
            | _params("seqio.Evaluator", "logger_cls", "num_examples",
                      "use_memory_cache")
            | _params("seqio.JSONLogger", "write_n_results")
            | _params("train/utils.DatasetConfig", *_DATASET_CONFIG)
            | _params("train_eval/utils.DatasetConfig", *_DATASET_CONFIG)
            | _params("infer_eval/utils.DatasetConfig", *_DATASET_CONFIG)
            | _params("utils.CheckpointConfig", "restore", "save")
            | _params("utils.RestoreCheckpointConfig", "path", "mode", "dtype")
            | _params("utils.SaveCheckpointConfig", "period", "dtype", "keep",
                      "save_dataset")
            | _params("trainer.Trainer", "num_microbatches",
                      "learning_rate_fn")
            | _params("utils.create_learning_rate_scheduler", "factors",
                      "base_learning_rate", "warmup_steps"))),
    # On main the split is a literal inside utils.DatasetConfig:
    # `split = 'test'`; there is no MIXTURE_OR_TASK_SPLIT macro.
    "t5x/configs/runs/eval.gin": T5xGinFile(
        commit=T5X_MAIN_COMMIT,
        required=frozenset({"MIXTURE_OR_TASK_NAME", "CHECKPOINT_PATH",
                            "EVAL_OUTPUT_DIR"}),
        macros=frozenset({"TASK_FEATURE_LENGTHS", "MIXTURE_OR_TASK_MODULE"}),
        uses=frozenset({"MODEL"}),
        parameters=_EVAL_PARAMETERS),
    "t5x/examples/t5/mt5/base.gin": T5xGinFile(
        commit=T5X_MAIN_COMMIT,
        required=frozenset({"DROPOUT_RATE"}),
        macros=frozenset({"Z_LOSS", "LABEL_SMOOTHING",
                          "LOSS_NORMALIZING_FACTOR", "VOCABULARY", "OPTIMIZER",
                          "MODEL"}),
        parameters=(
            _params("seqio.SentencePieceVocabulary",
                    "sentencepiece_model_file")
            | _params("adafactor.Adafactor", "decay_rate", "step_offset",
                      "logical_factor_rules")
            | _params("models.EncoderDecoderModel", "module",
                      "input_vocabulary", "output_vocabulary",
                      "optimizer_def", "z_loss", "label_smoothing",
                      "loss_normalizing_factor")
            | _params("network.Transformer", "config")
            | _params("network.T5Config", *_T5_CONFIG))),
    "t5x/examples/t5/mt5/small.gin": T5xGinFile(**_MT5_SIZE_FILE),
    "t5x/examples/t5/mt5/large.gin": T5xGinFile(**_MT5_SIZE_FILE),
    "t5x/examples/t5/mt5/xl.gin": T5xGinFile(**_MT5_SIZE_FILE),
    "t5x/examples/t5/mt5/xxl.gin": T5xGinFile(**_MT5_SIZE_FILE),
}

# The other eval.gin in circulation: an unmerged pull request's version
# (stored copy at 2b8acabb8cee488d9ba69e0f6c223e240c472f06) that names the
# split through a macro, `MIXTURE_OR_TASK_SPLIT = 'test'`, bound into
# utils.DatasetConfig.split. Our eval files must select 'validation' under
# both.
T5X_EVAL_GIN_MACRO_SPLIT = dataclasses.replace(
    T5X_FILES["t5x/configs/runs/eval.gin"],
    commit="2b8acabb8cee488d9ba69e0f6c223e240c472f06",
    macros=frozenset({"TASK_FEATURE_LENGTHS", "MIXTURE_OR_TASK_MODULE",
                      "MIXTURE_OR_TASK_SPLIT"}))

# The modules t5x's files import under these names (their selectors' first
# part); a file of ours binding such a selector must import the same module.
T5X_MODULES = {
    "train_script": "__main__", "eval_script": "__main__", "seqio": "seqio",
    "gin_utils": "t5x.gin_utils", "partitioning": "t5x.partitioning",
    "utils": "t5x.utils", "trainer": "t5x.trainer", "models": "t5x.models",
    "adafactor": "t5x.adafactor", "network": "t5x.examples.t5.network",
}

# Macros of our own, with what uses them.
OWN_MACROS = {
    "LEARNING_RATE": "utils.create_learning_rate_scheduler.base_learning_rate",
}

MT5_SIZE_RE = re.compile(r"^t5x/examples/t5/mt5/(\w+)\.gin$")
CHECKPOINT_RE = re.compile(
    r"^gs://t5-data/pretrained_models/t5x/mt5_(\w+)/checkpoint_1000000$")


class Macro(NamedTuple):
  name: str


class Reference(NamedTuple):
  name: str
  evaluate: bool


class _Delegate(config_parser.ParserDelegate):
  """Keeps `@name` and `%NAME` as plain markers: nothing is resolved."""

  def configurable_reference(self, scoped_configurable_name, evaluate):
    return Reference(scoped_configurable_name, evaluate)

  def macro(self, macro_name):
    return Macro(macro_name)


REQUIRED = Macro("gin.REQUIRED")
_PARSE_ERRORS = (SyntaxError, ValueError, tokenize.TokenError)


class Binding(NamedTuple):
  name: str  # a macro, or 'scope/selector.param'
  value: Any
  line: int
  is_macro: bool


class Include(NamedTuple):
  path: str
  line: int


@dataclasses.dataclass
class OurGinFile:
  """One parsed file of gin/t5x/: its statements, in order."""
  path: str  # relative to the root, e.g. 'gin/t5x/ko_xl.gin'
  statements: list[Include | Binding]
  imports: dict[str, str]  # bound name -> module
  import_order: list[str]
  header: str

  @property
  def bindings(self) -> list[Binding]:
    return [s for s in self.statements if isinstance(s, Binding)]

  @property
  def includes(self) -> list[Include]:
    return [s for s in self.statements if isinstance(s, Include)]


def parse_our_file(root: pathlib.Path, path: str) -> OurGinFile:
  """Parses `root/path` with gin's parser; raises one of _PARSE_ERRORS."""
  text = (root / path).read_text(encoding="utf-8")
  statements, imports, order = [], {}, []
  for statement in config_parser.ConfigParser(text, _Delegate()):
    line = statement.location.line_num
    if isinstance(statement, config_parser.ImportStatement):
      order.append(statement.module)
      if not statement.module.startswith("__gin__."):
        imports[statement.bound_name()] = statement.module
    elif isinstance(statement, config_parser.IncludeStatement):
      statements.append(Include(statement.filename, line))
    elif isinstance(statement, config_parser.BindingStatement):
      if statement.arg_name:
        selector = (f"{statement.scope}/{statement.selector}"
                    if statement.scope else statement.selector)
        binding = Binding(f"{selector}.{statement.arg_name}",
                          statement.value, line, False)
      else:
        binding = Binding(statement.selector, statement.value, line, True)
      statements.append(binding)
  header = "\n".join(
      itertools.takewhile(lambda l: l.startswith("#"), text.splitlines()))
  return OurGinFile(path, statements, imports, order, header)


def _macro_refs(value) -> list[str]:
  if isinstance(value, Macro):
    return [value.name]
  if isinstance(value, Reference):
    return []
  if isinstance(value, dict):
    return [m for k, v in value.items() for m in _macro_refs(k) + _macro_refs(v)]
  if isinstance(value, (list, tuple)):
    return [m for v in value for m in _macro_refs(v)]
  return []


@dataclasses.dataclass
class Resolution:
  """The bindings in force after one gin/t5x/ file and all it includes.

  `final` maps each macro or parameter to (who bound it last, value): our
  file's path and the value, or 't5x:<path>' and REQUIRED / None (a t5x
  value this test does not keep).
  """
  top: str
  final: dict[str, tuple[str, Any]]
  ours: list[str]  # our files, in the order gin reads them
  t5x: list[str]
  problems: list[str]
  t5x_files: dict[str, T5xGinFile] = dataclasses.field(
      default_factory=lambda: T5X_FILES)

  def value(self, name: str):
    binder, value = self.final[name]
    assert not binder.startswith("t5x:"), f"{name} is set by {binder}"
    return value

  @property
  def known_macros(self) -> set[str]:
    return set().union(*(self.t5x_files[p].known_macros for p in self.t5x))

  @property
  def known_parameters(self) -> set[str]:
    return set().union(*(self.t5x_files[p].parameters for p in self.t5x))

  @property
  def mt5_size(self) -> str | None:
    sizes = {MT5_SIZE_RE.match(p).group(1) for p in self.t5x
             if MT5_SIZE_RE.match(p)}
    if len(sizes) > 1:
      sizes.discard("base")  # every other size file includes base.gin
    return sizes.pop() if len(sizes) == 1 else None


def resolve(root: pathlib.Path, top: str,
            parsed: dict[str, OurGinFile] | None = None,
            t5x_files: dict[str, T5xGinFile] | None = None) -> Resolution:
  """Follows `top`'s includes in gin's order; see `Resolution`."""
  parsed = parsed if parsed is not None else {}
  t5x_files = T5X_FILES if t5x_files is None else t5x_files
  result = Resolution(top, {}, [], [], [], t5x_files)

  def visit_t5x(path):
    spec = t5x_files[path]
    for included in spec.includes:
      visit_t5x(included)
    if path not in result.t5x:
      result.t5x.append(path)
    for name in spec.macros | spec.parameters:
      result.final[name] = (f"t5x:{path}", None)
    for name in spec.required:
      result.final[name] = (f"t5x:{path}", REQUIRED)

  def visit_ours(path, stack):
    if path not in parsed:
      try:
        parsed[path] = parse_our_file(root, path)
      except _PARSE_ERRORS as e:
        result.problems.append(f"{path}: does not parse: {e}")
        return
    result.ours.append(path)
    for statement in parsed[path].statements:
      if isinstance(statement, Binding):
        result.final[statement.name] = (path, statement.value)
        continue
      included, line = statement
      if included in t5x_files:
        visit_t5x(included)
      elif included.startswith("t5x/"):
        result.problems.append(
            f"{path}:{line}: includes {included}, which is not among the t5x "
            "files this test knows (T5X_FILES)")
      elif not (included.startswith(T5X_GIN_DIR + "/")
                and (root / included).is_file()):
        result.problems.append(
            f"{path}:{line}: includes {included}, which is no file under "
            f"{T5X_GIN_DIR}/")
      elif included in stack:
        result.problems.append(f"{path}:{line}: include cycle via {included}")
      else:
        visit_ours(included, stack + [included])

  visit_ours(top, [top])
  return result


def check_t5x_gin_files(root: pathlib.Path,
                        t5x_files: dict[str, T5xGinFile] | None = None
                        ) -> list[str]:
  """Every problem found in root/gin/t5x/*.gin (see the module docstring).

  `t5x_files` replaces `T5X_FILES`, e.g. to check against another version.
  """
  problems = []
  parsed: dict[str, OurGinFile] = {}
  paths = sorted(str(p.relative_to(root))
                 for p in (root / T5X_GIN_DIR).rglob("*.gin"))
  for path in paths:
    try:
      parsed[path] = parse_our_file(root, path)
    except _PARSE_ERRORS as e:
      problems.append(f"{path}: does not parse: {e}")
  included = {inc for f in parsed.values() for inc, _ in f.includes}
  tops = [p for p in parsed if p not in included]
  resolutions = {top: resolve(root, top, parsed, t5x_files) for top in tops}
  for r in resolutions.values():
    problems += r.problems

  registered = set(seqio.MixtureRegistry.names()) | set(
      seqio.TaskRegistry.names())
  for path, ours in parsed.items():
    problems += _check_imports(ours)
    contexts = [r for r in resolutions.values() if path in r.ours]
    if not contexts:
      continue  # only in an include cycle: reported above
    macros = set.intersection(*(r.known_macros for r in contexts))
    macros |= set(OWN_MACROS)
    parameters = set.intersection(*(r.known_parameters for r in contexts))
    for b in ours.bindings:
      if b.is_macro and b.name not in macros:
        problems.append(f"{path}:{b.line}: binds macro {b.name}, which no t5x "
                        "file it is used with defines")
      if not b.is_macro and b.name not in parameters:
        problems.append(f"{path}:{b.line}: binds {b.name}, which no t5x file "
                        "it is used with configures")
      for ref in _macro_refs(b.value):
        if ref != REQUIRED.name and ref not in macros:
          problems.append(f"{path}:{b.line}: refers to %{ref}, which no t5x "
                          "file it is used with defines")
      if (b.name == "MIXTURE_OR_TASK_NAME"
          or b.name.endswith(".mixture_or_task_name")) and (
              isinstance(b.value, str) and b.value not in registered):
        problems.append(f"{path}:{b.line}: {b.value!r} is no registered "
                        "mixture or task after `import mixtures`")

  for top, r in resolutions.items():
    problems += _check_resolution(parsed, r)
  return problems


def _check_imports(ours: OurGinFile) -> list[str]:
  problems = []
  if ours.import_order and ours.import_order[0] != (
      "__gin__.dynamic_registration"):
    problems.append(f"{ours.path}: imports modules without first "
                    "`from __gin__ import dynamic_registration`")
  for b in ours.bindings:
    if b.is_macro:
      continue
    first = b.name.split("/")[-1].split(".")[0]
    module = ours.imports.get(first)
    if module is None or module != T5X_MODULES.get(first, module):
      problems.append(
          f"{ours.path}:{b.line}: binds {b.name} without importing "
          f"{T5X_MODULES.get(first, first)} as {first} in the same file")
  return problems


def _check_resolution(parsed, r: Resolution) -> list[str]:
  problems = []
  for path in dict.fromkeys(r.ours):
    for b in parsed[path].bindings:
      binder, _ = r.final[b.name]
      if binder.startswith("t5x:"):
        problems.append(f"{path}:{b.line}: {b.name} is overridden by "
                        f"{binder[4:]}, included after it (from {r.top})")
  left = sorted(name for name, (binder, value) in r.final.items()
                if binder.startswith("t5x:") and value is REQUIRED)
  required = re.search(r"Required macros:(.*?)(?:\n# \S|\Z)",
                       parsed[r.top].header, re.S)
  for name in left:
    if not required or not re.search(rf"\b{name}\b", required.group(1)):
      problems.append(f"{r.top}: leaves {name} required, but its header's "
                      "'Required macros:' does not name it")
  refs = {ref for path in r.ours for b in parsed[path].bindings
          for ref in _macro_refs(b.value)}
  for name in OWN_MACROS:
    if name in r.final and name not in refs:
      problems.append(f"{r.top}: binds our macro {name}, but nothing uses it")
  binds_mixture = any(
      not binder.startswith("t5x:") and (
          name == "MIXTURE_OR_TASK_NAME" or name.endswith(
              ".mixture_or_task_name"))
      for name, (binder, _) in r.final.items())
  if binds_mixture and not any(
      "mixtures" in parsed[p].imports.values() for p in r.ours):
    problems.append(f"{r.top}: names a mixture but no file it reads "
                    "imports `mixtures`")
  if "INITIAL_CHECKPOINT_PATH" in r.final:
    binder, value = r.final["INITIAL_CHECKPOINT_PATH"]
    match = CHECKPOINT_RE.match(value) if isinstance(value, str) else None
    if not binder.startswith("t5x:") and (
        not match or match.group(1) != r.mt5_size):
      problems.append(f"{r.top}: INITIAL_CHECKPOINT_PATH {value!r} is not "
                      f"the mT5-{r.mt5_size} checkpoint of its model file")
  return problems


# --------------------------------------------------------------------------
# Tests

CELLS = ("ko", "en", "en_paper", "bilingual")
# Cells scored by another cell's evaluation file: en_paper (trained on
# p3_train_paper) is evaluated as en is.
EVAL_CELL = {"en_paper": "en"}
SIZES = ("small", "base", "large", "xl", "xxl")


def test_every_t5x_include_of_the_record_is_recorded():
  for spec in T5X_FILES.values():
    assert set(spec.includes) <= set(T5X_FILES)


def test_gin_t5x_files_pass_the_check():
  assert check_t5x_gin_files(REPO_ROOT) == []


def test_gin_t5x_has_a_train_and_an_eval_file_per_cell_and_size():
  names = {p.stem for p in (REPO_ROOT / T5X_GIN_DIR).glob("*.gin")}
  assert names == ({f"{c}_{s}" for c in CELLS for s in SIZES}
                   | {f"eval_{c}_{s}" for c in CELLS for s in SIZES
                      if c not in EVAL_CELL})


@pytest.fixture(name="our_settings", scope="module")
def fixture_our_settings():
  """The macros of gin/<cell>_<size>.gin, read with the project's gin."""
  names = ("MIXTURE_OR_TASK_NAME", "EVAL_MIXTURE_OR_TASK_NAME", "BATCH_SIZE",
           "NUM_PARTITIONS", "TRAIN_STEPS", "TASK_FEATURE_LENGTHS",
           "LEARNING_RATE", "DROPOUT_RATE", "MAX_INPUT_LENGTH", "EVAL_SPLIT",
           "CHECKPOINT_PERIOD")
  settings = {}
  try:
    for cell in CELLS:
      for size in SIZES:
        gin.clear_config()
        gin_utils.parse_gin([str(OUR_GIN_DIR / f"{cell}_{size}.gin")],
                            ["MODEL_DIR = 'gs://bucket/run'"])
        settings[cell, size] = {n: gin.query_parameter(f"%{n}") for n in names}
  finally:
    gin.clear_config()
  return settings


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cell", CELLS)
def test_t5x_files_mirror_our_production_files(cell, size, our_settings):
  ours = our_settings[cell, size]
  train = resolve(REPO_ROOT, f"{T5X_GIN_DIR}/{cell}_{size}.gin")
  evaluate = resolve(
      REPO_ROOT, f"{T5X_GIN_DIR}/eval_{EVAL_CELL.get(cell, cell)}_{size}.gin")
  assert not train.problems and not evaluate.problems
  assert "t5x/configs/runs/finetune.gin" in train.t5x
  assert "t5x/configs/runs/eval.gin" in evaluate.t5x
  assert train.mt5_size == evaluate.mt5_size == size

  assert train.value("MIXTURE_OR_TASK_NAME") == ours["MIXTURE_OR_TASK_NAME"]
  assert evaluate.value("MIXTURE_OR_TASK_NAME") == (
      ours["EVAL_MIXTURE_OR_TASK_NAME"])
  assert train.value("BATCH_SIZE") == ours["BATCH_SIZE"]
  for run in (train, evaluate):
    assert run.value("partitioning.PjitPartitioner.num_partitions") == (
        ours["NUM_PARTITIONS"])
    assert run.value("network.T5Config.dropout_rate") == Macro("DROPOUT_RATE")
    assert run.value("DROPOUT_RATE") == ours["DROPOUT_RATE"] == 0.1
    assert run.value("LOSS_NORMALIZING_FACTOR") == 1024 * 229

  assert train.value("TRAIN_STEPS") == 1_000_000 + ours["TRAIN_STEPS"]
  assert train.value("TASK_FEATURE_LENGTHS") == ours["TASK_FEATURE_LENGTHS"]
  assert train.value("INITIAL_CHECKPOINT_PATH") == (
      f"gs://t5-data/pretrained_models/t5x/mt5_{size}/checkpoint_1000000")
  assert train.value("USE_CACHED_TASKS") is False
  assert train.value("utils.create_learning_rate_scheduler.factors") == (
      "constant")
  assert train.value(
      "utils.create_learning_rate_scheduler.base_learning_rate") == (
          Macro("LEARNING_RATE"))
  assert train.value("LEARNING_RATE") == ours["LEARNING_RATE"]
  assert train.value("utils.SaveCheckpointConfig.period") == (
      ours["CHECKPOINT_PERIOD"])

  assert evaluate.value("utils.DatasetConfig.split") == ours["EVAL_SPLIT"]
  assert evaluate.value("TASK_FEATURE_LENGTHS") == {
      "inputs": ours["MAX_INPUT_LENGTH"],
      "targets": ours["TASK_FEATURE_LENGTHS"]["targets"]}


@pytest.mark.parametrize("eval_gin", [
    T5X_FILES["t5x/configs/runs/eval.gin"], T5X_EVAL_GIN_MACRO_SPLIT],
                         ids=["t5x_main", "macro_split"])
def test_eval_files_select_validation_under_both_eval_gins(eval_gin):
  files = {**T5X_FILES, "t5x/configs/runs/eval.gin": eval_gin}
  assert check_t5x_gin_files(REPO_ROOT, files) == []
  for cell in sorted(set(CELLS) - set(EVAL_CELL)):
    for size in SIZES:
      r = resolve(REPO_ROOT, f"{T5X_GIN_DIR}/eval_{cell}_{size}.gin",
                  t5x_files=files)
      assert r.value("utils.DatasetConfig.split") == "validation"


def _copy_tree(tmp_path) -> pathlib.Path:
  shutil.copytree(REPO_ROOT / T5X_GIN_DIR, tmp_path / T5X_GIN_DIR)
  return tmp_path


def test_check_catches_misspelled_macro_and_missing_includes(tmp_path):
  bad = tmp_path / T5X_GIN_DIR / "bad.gin"
  bad.parent.mkdir(parents=True)
  bad.write_text(
      "# Required macros: MODEL_DIR, MIXTURE_OR_TASK_NAME, TRAIN_STEPS,\n"
      "#   TASK_FEATURE_LENGTHS, INITIAL_CHECKPOINT_PATH.\n"
      "include 't5x/configs/runs/finetune.gin'\n"
      "include 't5x/configs/runs/finetun.gin'\n"
      "include 'gin/t5x/sizes/nope.gin'\n"
      "TASK_FEATURE_LENGHTS = {'inputs': 8, 'targets': 4}\n")
  problems = check_t5x_gin_files(tmp_path)
  assert problems == [
      "gin/t5x/bad.gin:4: includes t5x/configs/runs/finetun.gin, which is "
      "not among the t5x files this test knows (T5X_FILES)",
      "gin/t5x/bad.gin:5: includes gin/t5x/sizes/nope.gin, which is no file "
      "under gin/t5x/",
      "gin/t5x/bad.gin:6: binds macro TASK_FEATURE_LENGHTS, which no t5x "
      "file it is used with defines",
  ]


@pytest.mark.parametrize("path, old, new, expected", [
    # A size file read before the run file: t5x's run file resets it.
    ("ko_xl.gin", "include 'gin/t5x/runs/finetune.gin'\n"
     "include 'gin/t5x/sizes/xl.gin'",
     "include 'gin/t5x/sizes/xl.gin'\n"
     "include 'gin/t5x/runs/finetune.gin'",
     "gin/t5x/sizes/xl.gin: partitioning.PjitPartitioner.num_partitions "
     "is overridden by t5x/configs/runs/finetune.gin"),
    ("ko_xl.gin", "mt5_xl/checkpoint", "mt5_xxl/checkpoint",
     "gin/t5x/ko_xl.gin: INITIAL_CHECKPOINT_PATH "
     "'gs://t5-data/pretrained_models/t5x/mt5_xxl/checkpoint_1000000' is not "
     "the mT5-xl checkpoint of its model file"),
    ("eval_en_base.gin", "'korani_heldout_score_eval'",
     "'korani_heldout_scor_eval'",
     "gin/t5x/eval_en_base.gin: 'korani_heldout_scor_eval' is no "
     "registered mixture or task after `import mixtures`"),
    ("sizes/large.gin", "from t5x import partitioning\n", "",
     "gin/t5x/sizes/large.gin: binds "
     "partitioning.PjitPartitioner.num_partitions without importing "
     "t5x.partitioning as partitioning in the same file"),
    # Used by the eval files too, where t5x's eval.gin has no BATCH_SIZE.
    ("sizes/common.gin", "\nLOSS_NORMALIZING_FACTOR = 234496\n",
     "\nLOSS_NORMALIZING_FACTOR = 234496\nBATCH_SIZE = 64\n",
     "gin/t5x/sizes/common.gin: binds macro BATCH_SIZE, which no t5x file "
     "it is used with defines"),
    ("runs/finetune.gin", "base_learning_rate = %LEARNING_RATE",
     "base_learning_rate = %LEARNING_RATES",
     "refers to %LEARNING_RATES, which no t5x file it is used with defines"),
    # The macro exists only in a pull request's eval.gin, not on t5x main.
    ("runs/eval.gin", "utils.DatasetConfig.split = 'validation'",
     "MIXTURE_OR_TASK_SPLIT = 'validation'",
     "gin/t5x/runs/eval.gin: binds macro MIXTURE_OR_TASK_SPLIT, which no t5x "
     "file it is used with defines"),
    ("runs/eval.gin", "from t5x import utils\n", "",
     "gin/t5x/runs/eval.gin: binds utils.DatasetConfig.split without "
     "importing t5x.utils as utils in the same file"),
    ("sizes/base.gin", "num_partitions = 1", "num_partitions = (1",
     "gin/t5x/sizes/base.gin: does not parse"),
    ("eval_ko_small.gin", "# Required macros: CHECKPOINT_PATH, EVAL_OUTPUT_DIR.",
     "# Required macros: CHECKPOINT_PATH.",
     "gin/t5x/eval_ko_small.gin: leaves EVAL_OUTPUT_DIR required, but its "
     "header's 'Required macros:' does not name it"),
])
def test_check_catches_each_kind_of_mistake(tmp_path, path, old, new,
                                            expected):
  root = _copy_tree(tmp_path)
  file = root / T5X_GIN_DIR / path
  text = file.read_text()
  assert old in text
  file.write_text(text.replace(old, new))
  problems = check_t5x_gin_files(root)
  # Expected messages leave out the line number after the file name.
  unnumbered = [re.sub(r"^([^:]+):\d+:", r"\1:", p) for p in problems]
  assert any(expected in p for p in unnumbered), problems


def test_task_vocabulary_equals_the_t5x_model_vocabulary(monkeypatch):
  # The tasks' default vocabulary file, as a t5x run without KORANI_VOCAB
  # sees it.
  monkeypatch.delenv(vocab.VOCAB_ENV, raising=False)
  # What t5x's mt5/base.gin builds: VOCABULARY = @seqio.SentencePieceVocabulary()
  # with the public mT5 model file.
  model_vocabulary = seqio.SentencePieceVocabulary(vocab.MT5_VOCABULARY)
  for name in ("korani_train", "p3_train", "bilingual_train",
               "p3_heldout_score_eval", "korani_heldout_score_eval",
               "bilingual_heldout_score_eval"):
    for task in seqio.get_subtasks(seqio.get_mixture_or_task(name)):
      for feature in task.output_features.values():
        # t5x's check, task vocabulary on the left.
        assert not feature.vocabulary != model_vocabulary, task.name
