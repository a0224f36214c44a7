"""Shared test fixtures.

Tests that need the real source files find them through ``KORANI_DATA_DIR``
(``make test`` points it at ``../shared/data/raw``); where the folder is
absent those tests are skipped, never failed.
"""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data" / "raw"

# Keep TF and JAX quiet and on the CPU in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: a slow test (still run in CI)")


@pytest.fixture(scope="session")
def raw_data_dir() -> pathlib.Path:
  """The folder of raw source files, or skip the test if there is none."""
  value = os.environ.get("KORANI_DATA_DIR")
  path = pathlib.Path(value) if value else _DEFAULT_SHARED
  if not path.is_dir():
    pytest.skip(f"raw data folder not found (KORANI_DATA_DIR={value!r})")
  # Library code reads the variable itself (korani_tasks.paths.data_dir).
  os.environ["KORANI_DATA_DIR"] = str(path)
  return path


@pytest.fixture(scope="session")
def kobest_dir(raw_data_dir) -> pathlib.Path:
  path = raw_data_dir / "kobest"
  if not path.is_dir():
    pytest.skip(f"{path} not found")
  return path
