"""XLA flags that make the training step faster, set before JAX starts.

XLA reads ``$XLA_FLAGS`` once, when JAX initialises its first backend, so the
entry points (``korani train``/``eval``, ``python -m t5x_runs.train``: all
through `t5x_runs.entrypoint`) call `apply` before anything touches a device.
A flag the user's own ``$XLA_FLAGS`` already sets keeps the user's value.

Every flag here only changes how XLA:CPU compiles: the GPU and TPU compilers
never read ``xla_cpu_*`` flags (they are still parsed, so they must exist in
the installed jaxlib: `apply` adds them only from ``MIN_JAXLIB`` on).
Measurements: bench/RESULTS.md (the 2026-12-05 entry).
"""

import importlib.metadata
import logging
import os
import sys
from typing import MutableMapping

# flag -> value. YNNPACK (XLA:CPU's matmul library) by default runs each dot
# on its own and also takes over reductions; 'dot' fuses the dots with their
# elementwise producers and consumers and leaves reductions to XLA, whose
# reduction over a leading (batch) axis is several times faster than
# YNNPACK's (the relative position bias gradient).
DEFAULT_FLAGS = {
    "--xla_cpu_experimental_ynn_fusion_type": "dot",
}
# The oldest jaxlib these flags were measured with (an unknown flag in
# $XLA_FLAGS aborts XLA).
MIN_JAXLIB = (0, 10)


def with_defaults(xla_flags: str) -> str:
  """``xla_flags`` followed by each of `DEFAULT_FLAGS` it does not set."""
  given = {flag.split("=", 1)[0] for flag in xla_flags.split()}
  added = [f"{flag}={value}" for flag, value in DEFAULT_FLAGS.items()
           if flag not in given]
  return " ".join(xla_flags.split() + added)


def _jaxlib_version() -> tuple[int, ...]:
  try:
    version = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return ()
  return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def _backend_started() -> bool:
  """True once JAX has created a backend (XLA_FLAGS has been read)."""
  bridge = sys.modules.get("jax._src.xla_bridge")
  started = getattr(bridge, "backends_are_initialized", None)
  return bool(started and started())


def apply(environ: MutableMapping[str, str] = os.environ) -> None:
  """Adds `DEFAULT_FLAGS` to ``environ['XLA_FLAGS']`` (see module docstring).

  Too late once JAX has started a backend: then logs a warning and changes
  nothing.
  """
  if _jaxlib_version() < MIN_JAXLIB:
    return
  if _backend_started():
    logging.warning("XLA flags %s not applied: JAX's backend has started "
                    "already", DEFAULT_FLAGS)
    return
  environ["XLA_FLAGS"] = with_defaults(environ.get("XLA_FLAGS", ""))
