"""`korani p3 fetch-templates`: promptsource's templates out of its sdist.

No network: the tarball is built here in promptsource 0.2.3's sdist layout
(checked against the real sdist, promptsource-0.2.3.tar.gz from PyPI, sha256
in fetch_templates.SDIST_SHA256), from the installed package's template files
where it is installed, else from one toy file.
"""

import hashlib
import io
import pathlib
import tarfile

import pytest

from korani_tasks import errors
from korani_tasks.p3 import fetch_templates
from korani_tasks.p3 import promptsource_yaml as ps
from t5x_runs import cli

TOY = ("dataset: toy\ntemplates:\n"
       "  abc: !Template\n    answer_choices: null\n    id: abc\n"
       "    jinja: '{{a}} ||| {{b}}'\n    metadata: !TemplateMetadata\n"
       "      choices_in_prompt: false\n      metrics: [BLEU]\n"
       "      original_task: true\n    name: toy one\n    reference: ''\n")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def _templates() -> dict[str, bytes]:
  """Some template files by path under templates/ (real ones if installed)."""
  installed = ps._installed_templates_dir()  # pylint: disable=protected-access
  if installed is None:
    return {"toy/templates.yaml": TOY.encode()}
  return {str(p.relative_to(installed)): p.read_bytes()
          for key in ("super_glue/rte", "anli", "hellaswag")
          for p in [installed / key / ps.TEMPLATE_FILE]}


def _sdist(path: pathlib.Path, templates: dict[str, bytes],
           extra: dict[str, bytes] | None = None) -> str:
  top = "promptsource-0.2.3"
  with tarfile.open(path, "w:gz") as tar:
    _add(tar, f"{top}/PKG-INFO", b"Name: promptsource\nVersion: 0.2.3\n")
    _add(tar, f"{top}/promptsource/app.py", b"import streamlit\n")
    for name, data in templates.items():
      _add(tar, f"{top}/promptsource/templates/{name}", data)
    for name, data in (extra or {}).items():
      _add(tar, name, data)
  return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extract_keeps_only_the_templates_and_replaces_the_folder(tmp_path):
  templates = _templates()
  sdist = tmp_path / fetch_templates.SDIST
  sha = _sdist(sdist, templates)
  dest = tmp_path / "cache/templates"
  dest.mkdir(parents=True)
  (dest / "stale.yaml").write_text("old")
  assert fetch_templates.extract_templates(sdist, dest, sha) == len(templates)
  got = {str(p.relative_to(dest)): p.read_bytes()
         for p in dest.rglob("*") if p.is_file()}
  assert got == templates
  assert sorted(p.name for p in dest.parent.iterdir()) == ["templates"]


def test_wrong_sha256_or_no_templates_is_a_clear_error(tmp_path):
  sdist = tmp_path / fetch_templates.SDIST
  _sdist(sdist, {"toy/templates.yaml": TOY.encode()})
  dest = tmp_path / "templates"
  with pytest.raises(errors.ConfigError,
                     match=f"{sdist}: sha256 .*expected {fetch_templates.SDIST_SHA256}"):
    fetch_templates.extract_templates(sdist, dest)
  empty = tmp_path / "empty.tar.gz"
  sha = _sdist(empty, {})
  with pytest.raises(errors.ConfigError, match="no promptsource/templates"):
    fetch_templates.extract_templates(empty, dest, sha)
  escaping = tmp_path / "escaping.tar.gz"
  sha = _sdist(escaping, {"toy/templates.yaml": TOY.encode()}, {
      "promptsource-0.2.3/promptsource/templates/../../../x.yaml": b"x"})
  with pytest.raises(errors.ConfigError, match="leaves its folder"):
    fetch_templates.extract_templates(escaping, dest, sha)
  assert not dest.exists() and not (tmp_path / "x.yaml").exists()


def test_fetched_folder_is_found_by_the_p3_loader(tmp_path, monkeypatch):
  monkeypatch.setenv("KORANI_CACHE_DIR", str(tmp_path))
  monkeypatch.delenv(ps.TEMPLATES_DIR_ENV, raising=False)
  monkeypatch.setattr(ps, "_installed_templates_dir", lambda: None)
  sdist = tmp_path / fetch_templates.SDIST
  sha = _sdist(sdist, {"toy/templates.yaml": TOY.encode()})
  for f in (ps.templates_dir, ps.dataset_keys, ps.load):
    f.cache_clear()
  try:
    with pytest.raises(errors.MissingDataError,
                       match="korani p3 fetch-templates"):
      ps.templates_dir()
    fetch_templates.extract_templates(sdist, fetch_templates.default_dir(),
                                      sha)
    assert ps.templates_dir() == tmp_path / "promptsource-0.2.3/templates"
    assert [t.name for t in ps.load("toy")] == ["toy one"]
  finally:
    for f in (ps.templates_dir, ps.dataset_keys, ps.load):
      f.cache_clear()


def test_cli_reports_a_bad_sdist_with_exit_status_2(tmp_path, capsys):
  sdist = tmp_path / "promptsource-0.2.3.tar.gz"
  _sdist(sdist, {"toy/templates.yaml": TOY.encode()})
  status = cli.main(["p3", "fetch-templates", "--sdist", str(sdist),
                     "--dest", str(tmp_path / "t")])
  assert status == 2
  assert f"korani p3 fetch-templates: error: {sdist}: sha256" in (
      capsys.readouterr().err)
  status = cli.main(["p3", "fetch-templates", "--sdist",
                     str(tmp_path / "absent.tar.gz")])
  assert status == 2
  assert "cannot read" in capsys.readouterr().err
