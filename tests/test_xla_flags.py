"""The trainer's own XLA flags: added to the user's, set before JAX starts."""

import os
import subprocess
import sys

import jax

from t5x_runs import xla_flags

FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def test_defaults_are_added_after_the_users_flags():
  assert xla_flags.with_defaults("") == f"{FLAG}=dot"
  assert xla_flags.with_defaults(" --xla_dump_to=/tmp/d ") == (
      f"--xla_dump_to=/tmp/d {FLAG}=dot")


def test_the_users_own_value_of_a_flag_wins():
  assert xla_flags.with_defaults(f"{FLAG}=individual_dot") == (
      f"{FLAG}=individual_dot")


def test_entry_points_apply_them_before_jax_starts():
  """`entrypoint.run_with_gin` (korani train/eval) sets $XLA_FLAGS, keeping
  the user's flags; a run without gin files stops right after."""
  code = ("import os, sys; from t5x_runs import entrypoint; "
          "status = entrypoint.run_with_gin([], lambda: None, 'x'); "
          "print(status, os.environ['XLA_FLAGS'])")
  env = dict(os.environ, XLA_FLAGS="--xla_dump_to=/tmp/d")
  result = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=300,
                          check=True)
  assert result.stdout.split() == ["2", "--xla_dump_to=/tmp/d", f"{FLAG}=dot"]
  assert "give at least one --gin_file" in result.stderr


def test_too_late_once_a_backend_runs():
  jax.devices()  # starts the backend
  environ = {"XLA_FLAGS": "--xla_dump_to=/tmp/d"}
  xla_flags.apply(environ)
  assert environ == {"XLA_FLAGS": "--xla_dump_to=/tmp/d"}
