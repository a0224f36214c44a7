"""No import cycles among the project's modules.

The graph is read from the source with `ast` (nothing is imported, so the
test needs neither TF nor JAX). Its nodes are the modules of the packages
below; an edge ``a -> b`` is an import of ``b`` in ``a``:
``import b``, ``from b import name``, and ``from pkg import b`` where
``pkg/b.py`` is a module (relative forms resolved the same way).

Two graphs are checked:

* module level: the imports that run when the module is imported (those of
  the module body, including ``if``/``try``/``with`` blocks and class bodies,
  excluding ``if TYPE_CHECKING:`` blocks);
* all imports: the same plus those inside functions. A function-level import
  that closes a cycle only postpones it, so it counts too.

Not counted: the implicit import of a parent package (``from korani_tasks
import errors`` first runs ``korani_tasks/__init__.py``; counting it would
make every package ``__init__`` that imports its submodules a cycle) and
dynamic imports (``importlib.import_module``, as in
``korani_tasks/readers/__init__.py``).
"""

import ast
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("korani_tasks", "mixtures", "t5x_runs", "korani_gin")


def _modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """{dotted module name: file} of every module of PACKAGES under `root`."""
  found = {}
  for package in PACKAGES:
    if not (root / package / "__init__.py").is_file():
      continue
    for path in sorted((root / package).rglob("*.py")):
      parts = path.relative_to(root).with_suffix("").parts
      if parts[-1] == "__init__":
        parts = parts[:-1]
      found[".".join(parts)] = path
  return found


def _is_type_checking(node: ast.If) -> bool:
  test = node.test
  return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or
          (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST, in_functions: bool):
  """Yields the Import/ImportFrom nodes of `tree`; those inside functions only
  if `in_functions`."""
  for node in ast.iter_child_nodes(tree):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      yield node
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
      if in_functions:
        yield from _imports(node, in_functions)
    elif isinstance(node, ast.If) and _is_type_checking(node):
      continue
    else:
      yield from _imports(node, in_functions)


def _targets(node, module: str, is_package: bool, modules) -> set[str]:
  """The project modules that import `node` (in `module`) names."""
  if isinstance(node, ast.Import):
    names = [alias.name for alias in node.names]
    return {n for n in names if n in modules}
  if node.level:  # Relative: resolved against the importing package.
    package = module.split(".")
    if not is_package:
      package = package[:-1]
    package = package[:len(package) - (node.level - 1)]
    base = ".".join(package + ([node.module] if node.module else []))
  else:
    base = node.module
  found = set()
  for alias in node.names:
    submodule = f"{base}.{alias.name}"
    if submodule in modules:
      found.add(submodule)
    elif base in modules:
      found.add(base)
  return found


def import_graph(root: pathlib.Path,
                 in_functions: bool) -> dict[str, set[str]]:
  """{module: modules it imports} for the packages under `root`."""
  modules = _modules(root)
  graph = {}
  for name, path in modules.items():
    try:
      tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as e:
      raise AssertionError(f"{path}:{e.lineno}: cannot parse: {e.msg}") from e
    is_package = path.name == "__init__.py"
    edges = set()
    for node in _imports(tree, in_functions):
      edges |= _targets(node, name, is_package, modules)
    edges.discard(name)  # `from t5x_runs import batch_eval as job` in itself.
    graph[name] = edges
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """A cycle of `graph` as [a, b, ..., a], or None; deterministic."""
  state = {}  # 1: on the current path, 2: done.
  path = []

  def visit(node):
    state[node] = 1
    path.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 1:
        return path[path.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    path.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def _write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
  for name, text in files.items():
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
  return root


@pytest.mark.parametrize("in_functions", [False, True],
                         ids=["module_level", "all_imports"])
def test_packages_have_no_import_cycle(in_functions):
  graph = import_graph(REPO_ROOT, in_functions)
  assert "korani_tasks.download" in graph and "t5x_runs.evaluator" in graph
  cycle = find_cycle(graph)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_graph_reads_every_import_form(tmp_path):
  root = _write(tmp_path, {
      "korani_tasks/__init__.py": "from korani_tasks import a\n",
      "korani_tasks/a.py": "import korani_tasks.sub.b\n",
      "korani_tasks/sub/__init__.py": "",
      "korani_tasks/sub/b.py": ("from . import c\n"
                                "from .c import VALUE\n"
                                "from ..a import thing\n"),
      "korani_tasks/sub/c.py": ("import typing\n"
                                "if typing.TYPE_CHECKING:\n"
                                "  from korani_tasks import a\n"
                                "def f():\n"
                                "  from korani_tasks.sub import b\n"),
  })
  assert import_graph(root, in_functions=False) == {
      "korani_tasks": {"korani_tasks.a"},
      "korani_tasks.a": {"korani_tasks.sub.b"},
      "korani_tasks.sub": set(),
      "korani_tasks.sub.b": {"korani_tasks.sub.c", "korani_tasks.a"},
      "korani_tasks.sub.c": set(),
  }
  assert import_graph(root, in_functions=True)["korani_tasks.sub.c"] == {
      "korani_tasks.sub.b"}


def test_cycle_is_named(tmp_path):
  root = _write(tmp_path, {
      "t5x_runs/__init__.py": "",
      "t5x_runs/decoding.py": "from t5x_runs.evaluator import bucket_length\n",
      "t5x_runs/evaluator.py": "from t5x_runs import decoding, scoring\n",
      "t5x_runs/scoring.py": "",
  })
  assert find_cycle(import_graph(root, in_functions=False)) == [
      "t5x_runs.decoding", "t5x_runs.evaluator", "t5x_runs.decoding"]
  assert find_cycle({"a": {"b"}, "b": set()}) is None
