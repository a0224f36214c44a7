"""`korani data` (download, verify, list) and `korani tasks` (list, show).

Downloads come from a file server on 127.0.0.1 serving the shared raw files
(through ``mirror``), so the catalog's sha256 and sizes are checked against
the real published files; misbehaving servers (a corrupted file, a connection
cut halfway, no Range support) are simulated by the same server.
"""

import dataclasses
import hashlib
import http.server
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import urllib.parse

import pytest

from korani_tasks import catalog
from korani_tasks import data_status
from korani_tasks import download
from korani_tasks import errors
from t5x_runs import cli

CURSE = catalog.get("curse_detection").files[0]  # One file, 514415 bytes.
COPA = catalog.get("kobest_copa").files


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass
class _State:
  """What the server serves and how; tests change it between downloads."""
  root: pathlib.Path
  cut: bool = False  # Send Content-Length, then only half the bytes.
  ranges: bool = True  # Honour "Range: bytes=N-" with 206.
  requests: list = dataclasses.field(default_factory=list)  # (path, Range)


class _Handler(http.server.BaseHTTPRequestHandler):
  """GET of files under the state's root, with Range and a cut option."""

  def log_message(self, *args):  # pylint: disable=arguments-differ
    pass

  def do_GET(self):  # pylint: disable=invalid-name
    state = self.server.state
    rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
    rel = rel.lstrip("/")
    requested_range = self.headers.get("Range")
    state.requests.append((rel, requested_range))
    path = state.root / rel
    if not path.is_file():
      self.send_error(404)
      return
    data = path.read_bytes()
    start = 0
    if requested_range and state.ranges:
      start = int(requested_range.removeprefix("bytes=").rstrip("-"))
      if start >= len(data):
        self.send_error(416)
        return
      self.send_response(206)
      self.send_header("Content-Range",
                       f"bytes {start}-{len(data) - 1}/{len(data)}")
    else:
      self.send_response(200)
    body = data[start:]
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    if state.cut:
      self.wfile.write(body[:len(body) // 2])
      self.wfile.flush()
      self.close_connection = True
      return
    self.wfile.write(body)


@pytest.fixture
def serve():
  """serve(root, **behaviour) -> (base URL, _State); stopped after the test."""
  servers = []

  def start(root, **behaviour):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = _State(pathlib.Path(root), **behaviour)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    servers.append(httpd)
    return f"http://127.0.0.1:{httpd.server_port}", httpd.state

  yield start
  for httpd in servers:
    httpd.shutdown()
    httpd.server_close()


def _fetch(names, data_dir, url, **kwargs):
  return download.download(names, data_dir, mirror=url, progress=False,
                           **kwargs)


def _leftovers(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(folder.rglob(f"*{download.PART_SUFFIX}"))


# -- download ------------------------------------------------------------------


def test_downloads_real_files_and_checks_them(raw_data_dir, tmp_path, serve):
  url, state = serve(raw_data_dir)
  data = tmp_path / "data"
  reported = []
  results = _fetch(["curse_detection", "kobest_copa"], data, url,
                   on_result=reported.append)
  assert reported == results
  assert [r.path for r in results] == [CURSE.path] + [f.path for f in COPA]
  assert all(r.status == download.DOWNLOADED and r.verified for r in results)
  for r in results:
    assert r.url == f"{url}/{r.path}"
    assert (data / r.path).read_bytes() == (raw_data_dir / r.path).read_bytes()
    assert r.sha256 == {f.path: f.sha256 for f in (CURSE, *COPA)}[r.path]
  assert not _leftovers(data)

  # Running again skips the files that are there: nothing is requested.
  state.requests.clear()
  again = _fetch(["curse_detection", "kobest_copa"], data, url)
  assert all(r.status == download.PRESENT and r.verified for r in again)
  assert state.requests == []
  assert "sha256 ok" in again[0].describe()


def test_checksum_mismatch_names_everything_and_leaves_no_file(
    raw_data_dir, tmp_path, serve):
  mirror = tmp_path / "mirror"
  corrupted = bytearray((raw_data_dir / CURSE.path).read_bytes())
  corrupted[1000] ^= 0x01  # Same size, different bytes.
  (mirror / CURSE.path).parent.mkdir(parents=True)
  (mirror / CURSE.path).write_bytes(corrupted)
  url, _ = serve(mirror)
  data = tmp_path / "data"
  with pytest.raises(download.ChecksumError) as caught:
    _fetch(["curse_detection"], data, url)
  message = str(caught.value)
  for expected in ("curse_detection", CURSE.path, f"{url}/{CURSE.path}",
                   CURSE.sha256, _sha256(corrupted), "nothing was written"):
    assert expected in message
  assert caught.value.expected == CURSE.sha256
  assert caught.value.actual == _sha256(corrupted)
  assert not (data / CURSE.path).exists()
  assert not _leftovers(data)


def test_interrupted_transfer_leaves_no_file_and_is_resumed(
    raw_data_dir, tmp_path, serve):
  url, state = serve(raw_data_dir, cut=True)
  data = tmp_path / "data"
  with pytest.raises(download.DownloadError, match="interrupted") as caught:
    _fetch(["curse_detection"], data, url)
  assert not isinstance(caught.value, download.ChecksumError)
  assert not (data / CURSE.path).exists()
  part = data / (CURSE.path + download.PART_SUFFIX)
  assert part.stat().st_size == CURSE.size // 2

  state.cut = False
  state.requests.clear()
  [result] = _fetch(["curse_detection"], data, url)
  assert state.requests == [(CURSE.path, f"bytes={CURSE.size // 2}-")]
  assert result.status == download.DOWNLOADED and result.verified
  assert (data / CURSE.path).read_bytes() == (
      raw_data_dir / CURSE.path).read_bytes()
  assert not _leftovers(data)


def test_interrupted_transfer_restarts_without_range_support(
    raw_data_dir, tmp_path, serve):
  url, state = serve(raw_data_dir, cut=True, ranges=False)
  data = tmp_path / "data"
  with pytest.raises(download.DownloadError, match="interrupted"):
    _fetch(["curse_detection"], data, url)
  assert not (data / CURSE.path).exists()
  state.cut = False
  [result] = _fetch(["curse_detection"], data, url)
  assert result.verified
  assert _sha256((data / CURSE.path).read_bytes()) == CURSE.sha256


def test_a_stale_partial_file_is_downloaded_again(raw_data_dir, tmp_path,
                                                   serve):
  url, state = serve(raw_data_dir)
  data = tmp_path / "data"
  part = data / (CURSE.path + download.PART_SUFFIX)
  part.parent.mkdir(parents=True)
  part.write_bytes(b"x" * 1000)  # Not the start of the real file.
  [result] = _fetch(["curse_detection"], data, url)
  assert [r for _, r in state.requests] == ["bytes=1000-", None]
  assert result.verified
  assert _sha256((data / CURSE.path).read_bytes()) == CURSE.sha256


def test_file_without_checksum_is_reported_unverified(tmp_path, serve):
  files = catalog.get("klue_tc").files
  assert all(f.sha256 is None for f in files)
  mirror = tmp_path / "mirror"
  for i, f in enumerate(files):
    (mirror / f.path).parent.mkdir(parents=True, exist_ok=True)
    (mirror / f.path).write_text(f'[{{"guid": "ynat-{i}"}}]', encoding="utf-8")
  url, _ = serve(mirror)
  results = _fetch(["klue_tc"], tmp_path / "data", url)
  assert [r.verified for r in results] == [False, False]
  for r in results:
    sha = _sha256((mirror / r.path).read_bytes())
    assert r.sha256 == sha and "UNVERIFIED" in r.describe() and sha in (
        r.describe())


def test_present_file_that_differs_is_kept_unless_forced(
    raw_data_dir, tmp_path, serve):
  url, _ = serve(raw_data_dir)
  data = tmp_path / "data"
  dest = data / CURSE.path
  dest.parent.mkdir(parents=True)
  dest.write_text("edited\n", encoding="utf-8")
  with pytest.raises(download.ChecksumError, match="--force"):
    _fetch(["curse_detection"], data, url)
  assert dest.read_text(encoding="utf-8") == "edited\n"
  [result] = _fetch(["curse_detection"], data, url, force=True)
  assert result.status == download.DOWNLOADED
  assert _sha256(dest.read_bytes()) == CURSE.sha256


def test_mirror_from_the_environment_or_a_local_folder(
    raw_data_dir, tmp_path, serve, monkeypatch):
  url, state = serve(raw_data_dir)
  monkeypatch.setenv(download.MIRROR_ENV, url)
  [result] = download.download(["curse_detection"], tmp_path / "a",
                               progress=False)
  assert result.url == f"{url}/{CURSE.path}" and result.verified
  assert state.requests == [(CURSE.path, None)]
  monkeypatch.delenv(download.MIRROR_ENV)
  [result] = download.download(["curse_detection"], tmp_path / "b",
                               mirror=str(raw_data_dir), progress=False)
  assert result.url.startswith("file://") and result.verified


def test_release_and_unknown_datasets_are_refused(tmp_path, capsys):
  with pytest.raises(download.ReleaseOnlyError) as caught:
    download.download(["kobest_copa", "aihub_emo"], tmp_path / "data")
  message = str(caught.value)
  assert "aihub_emo" in message and "KORANI_RELEASE_DIR" in message
  assert "https://aihub.or.kr" in message
  assert "nothing was downloaded" in message
  assert not (tmp_path / "data").exists()
  with pytest.raises(errors.ConfigError, match="unknown dataset 'nope'"):
    download.download(["nope"], tmp_path / "data")

  assert cli.main(["data", "download", "nope", "--data-dir",
                   str(tmp_path / "data")]) == 2
  assert "unknown dataset 'nope'" in capsys.readouterr().err
  assert cli.main(["data", "download", "aihub_emo", "--data-dir",
                   str(tmp_path / "data")]) == 2
  assert "KORANI release" in capsys.readouterr().err
  assert not (tmp_path / "data").exists()
  assert set(download.public_datasets()) >= {"kobest_copa", "curse_detection"}
  assert "aihub_emo" not in download.public_datasets()


def test_download_command_end_to_end(raw_data_dir, tmp_path, serve):
  """`korani data download --prepare` as a user runs it."""
  url, _ = serve(raw_data_dir)
  data = tmp_path / "data"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONIOENCODING="utf-8",
             TFDS_DATA_DIR=str(tmp_path / "tfds"))
  env.pop(download.MIRROR_ENV, None)
  result = subprocess.run(
      [sys.executable, "-m", "t5x_runs.cli", "data", "download", "kobest_copa",
       "--mirror", url, "--data-dir", str(data), "--prepare"],
      env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  for f in COPA:
    assert any(line.startswith("downloaded") and f.path in line
               and "sha256 ok" in line for line in lines), result.stdout
  assert "3 downloaded, 0 already present" in result.stdout
  assert "kobest_copa: prepared in" in result.stdout
  assert "train 3076" in result.stdout and "validation 500" in result.stdout
  assert "B/s" in result.stderr  # tqdm's transfer rate.


# -- verify and list -----------------------------------------------------------


def test_verify_ok_mismatch_missing(raw_data_dir, tmp_path, capsys):
  data = tmp_path / "data"
  for f in COPA:
    (data / f.path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(raw_data_dir / f.path, data / f.path)
  train, dev, test = (data / f.path for f in COPA)
  with open(dev, "ab") as f:
    f.write(b"\n")
  test.unlink()
  statuses = data_status.verify(["kobest_copa"], data)
  assert [(s.path, s.status) for s in statuses] == [
      (COPA[0].path, data_status.OK), (COPA[1].path, data_status.MISMATCH),
      (COPA[2].path, data_status.MISSING)]
  assert statuses[1].actual_size == COPA[1].size + 1
  assert COPA[1].sha256 in statuses[1].describe()
  assert data_status.verify(None, data) == statuses  # Datasets with files.

  assert cli.main(["data", "verify", "--data-dir", str(data)]) == 1
  out, err = capsys.readouterr()
  assert "1 ok, 0 unverified, 1 missing, 1 mismatch" in out
  assert "missing or different" in err
  assert train.is_file()

  assert all(s.status == data_status.OK for s in data_status.verify(
      ["kobest_copa", "curse_detection"], raw_data_dir))
  assert cli.main(["data", "verify", "kobest_copa", "curse_detection"]) == 0
  assert "4 ok, 0 unverified, 0 missing, 0 mismatch" in capsys.readouterr().out
  assert cli.main(["data", "verify", "nope"]) == 2


def test_data_list_counts_rows_on_the_shared_data(raw_data_dir, capsys):
  assert cli.main(["data", "list"]) == 0
  out = capsys.readouterr().out
  [copa] = [line for line in out.splitlines()
            if line.startswith("kobest_copa ")]
  assert copa.split()[1:5] == ["sentence_completion", "nlu", "raw", "3/3"]
  assert copa.endswith("train 3076, validation 500, test 1000")
  [emo] = [line for line in out.splitlines() if line.startswith("aihub_emo ")]
  assert "release" in emo and emo.endswith("—")


def test_data_list_counts_release_csvs(tmp_path, monkeypatch):
  release = tmp_path / "KORANI"
  folder = release / "sentiment_analysis" / "aihub_emo"
  folder.mkdir(parents=True)
  header = "input,output,choices,dataset_name,id\n"
  (folder / "train.csv").write_text(
      header + "".join(f'"문장 {i}\n감정?",기쁨,기쁨|||슬픔,aihub_emo,{i}\n'
                       for i in range(3)), encoding="utf-8")
  for template in ("dev_t0", "dev_t1"):
    (folder / f"{template}.csv").write_text(
        header + "x,슬픔,기쁨|||슬픔,aihub_emo,7\ny,기쁨,기쁨|||슬픔,aihub_emo,8\n",
        encoding="utf-8")
  monkeypatch.setenv("KORANI_RELEASE_DIR", str(release))
  [row, other] = data_status.list_datasets(None, ["aihub_emo", "callcenter"])
  assert row.present == ("train", "validation")
  assert row.rows == {"train": 3, "validation": 4}
  assert "2 evaluation CSVs" in row.note
  assert other.rows is None and "not in the release folder" in other.note
  table = data_status.format_table([row, other])
  assert "train 3, validation 4" in table


# -- tasks ---------------------------------------------------------------------


def test_tasks_list(capsys):
  assert cli.main(["tasks", "list", "--mixture", "korani_kobest_train"]) == 0
  names = capsys.readouterr().out.split()
  assert "korani_kobest_sentineg_ko_review_sentiment" in names
  assert all(n.startswith("korani_kobest_") for n in names)
  assert not any(n.endswith("_score_eval") for n in names)

  assert cli.main(["tasks", "list", "--dataset", "kobest_copa", "--long"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].split() == ["task", "dataset", "cluster", "template", "lang",
                              "kind", "source"]
  row = next(line for line in lines
             if line.startswith("korani_kobest_copa_en_best_option_score_eval"))
  assert row.split()[1:] == ["kobest_copa", "sentence_completion",
                             "best_option", "en", "score_eval", "raw"]
  assert all(line.split()[1] == "kobest_copa" for line in lines[2:])

  assert cli.main(["tasks", "list", "--mixture", "nope"]) == 2
  assert "unknown mixture 'nope'" in capsys.readouterr().err
  assert cli.main(["tasks", "list", "--dataset", "nope"]) == 2


def test_tasks_show_renders_examples_without_a_vocabulary(raw_data_dir,
                                                          capsys):
  task = "korani_kobest_copa_ko_best_option"
  assert cli.main(["tasks", "show", task, "-n", "3"]) == 0
  out = capsys.readouterr().out
  assert out.startswith(f"{task} (kobest_copa, template best_option, ko, "
                        "train): 3 example(s) of validation")
  assert "=== example 3 ===" in out and "=== example 4 ===" not in out
  # The first row of kobest/COPA/dev.tsv, rendered with its answer marked.
  assert "여자가 커피를 주문했다." in out
  assert "[1] 여자가 카페에 갔다.  <- target" in out
  assert out.count("answer choices:") == 3 and out.count("targets:") == 3

  assert cli.main(["tasks", "show", task + "x"]) == 2
  assert f"did you mean {task}" in capsys.readouterr().err
  assert cli.main(["tasks", "show", task, "--split", "dev"]) == 2
  assert "no split 'dev'" in capsys.readouterr().err


def test_demo_first_run_downloads_kobest_into_the_default_folder(
    raw_data_dir, serve, tmp_path, monkeypatch):
  from t5x_runs import demo  # pylint: disable=import-outside-toplevel
  kobest = raw_data_dir / "kobest"
  if not kobest.is_dir():
    pytest.skip(f"no {kobest}")
  shutil.copytree(kobest, tmp_path / "mirror/kobest")
  url, state = serve(tmp_path / "mirror")
  monkeypatch.delenv("KORANI_DATA_DIR", raising=False)
  monkeypatch.setenv("KORANI_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.setenv(download.MIRROR_ENV, url)
  # A partial file from an interrupted run is resumed.
  boolq = catalog.get("kobest_boolq").files[0]
  part = tmp_path / "cache/data" / (boolq.path + download.PART_SUFFIX)
  part.parent.mkdir(parents=True)
  part.write_bytes((kobest / "BoolQ/train.tsv").read_bytes()[:1000])

  data_dir = demo.ensure_data(progress=False)
  assert data_dir == tmp_path / "cache/data"
  assert "KORANI_DATA_DIR" not in os.environ  # Returned, not set.
  for name in ("BoolQ", "COPA", "HellaSwag", "SentiNeg", "WiC"):
    for split in ("train", "dev", "test"):
      assert (data_dir / f"kobest/{name}/{split}.tsv").read_bytes() == (
          kobest / f"{name}/{split}.tsv").read_bytes()
  assert (boolq.path, "bytes=1000-") in state.requests
  assert not _leftovers(data_dir)
  state.requests.clear()
  demo.ensure_data(progress=False)  # Present: nothing is fetched.
  assert not state.requests


def test_demo_failed_download_names_the_mirror_option(serve, tmp_path):
  url, _ = serve(tmp_path / "empty")  # Answers 404 for every file.
  env = dict(os.environ, KORANI_DATA_DIR=str(tmp_path / "data"),
             KORANI_DOWNLOAD_MIRROR=url, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-m", "t5x_runs.cli", "demo"],
                          env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
  assert result.returncode == 1, result.stderr
  assert "HTTP error 404" in result.stderr
  assert "korani data download NAME... --mirror URL" in result.stderr
