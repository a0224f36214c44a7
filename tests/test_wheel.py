"""The wheel works outside the checkout: built, installed in a fresh venv.

The venv gets no packages from the index: a .pth file puts the running
environment's site-packages (the dependencies) after its own, so the test is
offline and takes a minute, and the korani packages it imports must be the
wheel's, installed in the venv, never the checkout's.
"""

import os
import pathlib
import shutil
import site
import subprocess
import sys
import venv

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Top-level folders that are not part of the source (gin/runs/ is).
_NOT_SOURCE = {".git", ".venv", "build", "dist", "demo_output", "runs",
               ".pytest_cache", ".hypothesis", "korani.egg-info"}


def _ignore(folder, names):
  top = pathlib.Path(folder) == REPO_ROOT
  return [n for n in names
          if n == "__pycache__" or (top and n in _NOT_SOURCE)]


def _run(args, cwd, env, timeout=600):
  result = subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
  assert result.returncode == 0, (args, result.stdout[-2000:],
                                  result.stderr[-3000:])
  return result.stdout


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
  source = tmp_path / "source"
  shutil.copytree(REPO_ROOT, source, ignore=_ignore)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  _run([sys.executable, "-m", "pip", "wheel", "--no-deps",
        "--no-build-isolation", "--no-index", "-q", str(source),
        "-w", str(tmp_path / "dist")], tmp_path, env)
  (wheel,) = (tmp_path / "dist").glob("korani-*.whl")

  target = tmp_path / "venv"
  venv.EnvBuilder(with_pip=False).create(target)
  python = target / "bin" / "python"
  purelib = _run([str(python), "-c",
                  "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                 tmp_path, env).strip()
  pathlib.Path(purelib, "korani_dependencies.pth").write_text(
      "\n".join(site.getsitepackages()) + "\n")
  _run([sys.executable, "-m", "pip", "--python", str(python), "install",
        "--no-deps", "--no-index", "-q", str(wheel)], tmp_path, env)

  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  korani = str(target / "bin" / "korani")
  where = _run([str(python), "-c",
                "import importlib.util\n"
                "for m in ('korani_tasks', 'mixtures', 't5x_runs'):\n"
                "  print(importlib.util.find_spec(m).origin)\n"
                "from t5x_runs import gin_utils\n"
                "print(gin_utils.GIN_DIR)"], elsewhere, env).split()
  assert all(p.startswith(purelib + os.sep) for p in where), where
  assert where[-1] == os.path.join(purelib, "korani_gin")

  plan = _run([korani, "plan", "--gin_file=ko_xl.gin", "--devices=64"],
              elsewhere, env)
  assert "mesh: 64 devices = 16 data x 4 model" in plan
  assert "batch 256" in plan and "rematerialization 'minimal'" in plan
  names = _run([korani, "tasks", "list"], elsewhere, env).split()
  assert "korani_kobest_sentineg_ko_review_sentiment" in names
  usage = _run([korani, "demo", "--help"], elsewhere, env)
  assert usage.startswith("usage: korani demo [--output DIR]")
