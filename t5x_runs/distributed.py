"""Multi-host runs: JAX's distributed runtime and each host's share of the data.

One Python process runs per host (a TPU VM worker, a GPU node); together
they drive one global device mesh. Every process runs the same program:

* `initialize` connects the processes before JAX touches a device. On a
  Cloud TPU pod slice (several workers) it is automatic; elsewhere the
  entry points take t5x's flags::

      python -m t5x_runs.train --gin_file=gin/ko_xl.gin --gin.MODEL_DIR=... \\
        --coordinator_address=10.0.0.2:1234 --process_count=4 --process_index=0

  (on CPU the processes talk through gloo collectives).
* Each process reads the shard of the training data of the replicas it
  holds and builds their rows of the global batch
  (`partitioning.data_layout`, as t5x's `get_data_layout`): processes that
  share a model-parallel group read the same shard and build the same rows.
  `global_batch` assembles the processes' rows into one global array sharded
  over the mesh's 'data' axis; `check_same_settings` makes sure, before any
  data is read, that all processes were started with the same data settings.
* Orbax checkpoints are written and restored by all processes together (each
  writes the shards it holds); only process 0 writes logs and run files.
* A process that fails reports its error to the others through the
  coordination service (`report_failure`); each process watches for such a
  report (`initialize` starts the watcher) and exits at once with the error
  in its own log, so a job never waits in a collective for a dead peer. A
  process that dies without a word (SIGKILL, out of memory, a lost host) is
  found by the same watchers: each posts a sign of life twice a second, and
  a process silent for half of ``--heartbeat_timeout_seconds`` (30 s here,
  JAX's default is 100) is named in the others' logs as they exit. The
  coordination service's own heartbeats, with the full timeout, are the
  backstop (they end a process with JAX's fatal error).
* SIGTERM (how Cloud TPU and Kubernetes preempt a job) starts JAX's
  preemption protocol (`PreemptionHandler`): all processes agree on the next
  step to stop at, save a checkpoint there and exit. A process that cannot
  get there within the grace period exits anyway, and so ends the job.
"""

import ctypes
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding

from korani_tasks import errors

# Set on every worker of a Cloud TPU VM slice: the slice's worker hostnames.
_TPU_WORKERS_ENV = "TPU_WORKER_HOSTNAMES"
# How long (s) a process may be silent before the job stops (JAX: 100 s).
DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 30


def on_multi_host_tpu() -> bool:
  """True on a Cloud TPU slice with more than one worker (host)."""
  return len(os.environ.get(_TPU_WORKERS_ENV, "").split(",")) > 1


def initialize(coordinator_address: str | None = None,
               process_count: int | None = None,
               process_index: int | None = None,
               cpu_collectives: str = "gloo",
               heartbeat_timeout_seconds: int = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS
               ) -> bool:
  """Starts JAX's distributed runtime when the run spans several processes.

  With a coordinator address all three settings are required (t5x's
  ``--coordinator_address``/``--process_count``/``--process_index``); without
  one, a multi-worker Cloud TPU slice is detected and initialized
  automatically, and a single host runs as one process. Returns whether the
  runtime was started. Must run before anything uses a JAX device.
  `heartbeat_timeout_seconds` bounds how long a process may be silent
  before the job counts it as dead and stops (`_FailureWatcher` names it
  after half of that). The default is prompt, for a job that must not hold
  a pod while a host is gone; raise it where hosts pause for longer (JAX's
  own default is 100).
  """
  if heartbeat_timeout_seconds < 2:
    raise errors.ConfigError(
        f"--heartbeat_timeout_seconds={heartbeat_timeout_seconds} must be at "
        "least 2")
  timeouts = {"heartbeat_timeout_seconds": heartbeat_timeout_seconds}
  explicit = (coordinator_address, process_count, process_index)
  if coordinator_address is None:
    if process_count not in (None, 1) or process_index not in (None, 0):
      raise errors.ConfigError(
          "--process_count/--process_index need --coordinator_address="
          "HOST:PORT (the address of process 0)")
    if not on_multi_host_tpu():
      return False
    logging.info("Cloud TPU slice with workers %s: initializing JAX's "
                 "distributed runtime", os.environ[_TPU_WORKERS_ENV])
    jax.distributed.initialize(**timeouts)
    _FailureWatcher.start(heartbeat_timeout_seconds / 2)
    return True
  if None in explicit:
    raise errors.ConfigError(
        "--coordinator_address needs --process_count and --process_index "
        f"(got {explicit})")
  if not 0 <= process_index < process_count:
    raise errors.ConfigError(
        f"--process_index={process_index} must be in [0, --process_count="
        f"{process_count})")
  if ":" not in coordinator_address:
    raise errors.ConfigError(
        f"--coordinator_address={coordinator_address!r} must be HOST:PORT")
  # CPU devices only exchange data across processes with a collectives
  # implementation; accelerators bring their own (ICI, NCCL).
  jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=process_count,
                             process_id=process_index, **timeouts)
  _FailureWatcher.start(heartbeat_timeout_seconds / 2)
  logging.info("Process %d of %d (coordinator %s), %d local of %d devices",
               jax.process_index(), jax.process_count(), coordinator_address,
               jax.local_device_count(), jax.device_count())
  return True


def global_batch(host_batch: Mapping[str, np.ndarray], sharding: NamedSharding,
                 layout) -> dict[str, jax.Array]:
  """The processes' rows (`partitioning.DataLayout`) as global arrays.

  Example: 4 processes, num_partitions=4, batch 8: processes 0 and 1 both
  hold [4, L] arrays of rows 0-3 (replica 0), processes 2 and 3 of rows 4-7;
  the result is one [8, L] array whose rows each device takes from its own
  process's copy.
  """
  def make(value):
    expected = (layout.host_batch_size,)
    if value.shape[:1] != expected:
      raise ValueError(f"host batch of {value.shape[0]} rows; the data layout "
                       f"gives this process {expected[0]}")
    shape = (layout.batch_size,) + value.shape[1:]

    def rows(index):
      start, stop, _ = index[0].indices(layout.batch_size)
      first = layout.local_row(start)
      return value[(slice(first, first + stop - start),) + tuple(index[1:])]
    return jax.make_array_from_callback(shape, sharding, rows)
  return {name: make(value) for name, value in host_batch.items()}


_SETTINGS_KEY = "korani/settings"
_settings_calls = 0


def check_same_settings(settings: Mapping[str, Any],
                        timeout_seconds: int = 600) -> None:
  """Raises ConfigError where processes were started with other settings.

  Processes that feed the same replica must read the same data, and all of
  them must run the same steps: a process started with another mixture,
  seed or batch size would silently train on something else (or hang in a
  collective). Every process publishes its settings through the
  coordination service and compares them with the others'.
  """
  global _settings_calls
  client = _client()
  if client is None:
    return
  _settings_calls += 1
  key = f"{_SETTINGS_KEY}/{_settings_calls}"
  mine = {k: repr(v) for k, v in sorted(settings.items())}
  client.key_value_set(f"{key}/{jax.process_index()}", json.dumps(mine))
  for other in range(jax.process_count()):
    theirs = json.loads(client.blocking_key_value_get(
        f"{key}/{other}", timeout_seconds * 1000))
    differ = {k: (mine[k], theirs.get(k)) for k in mine
              if theirs.get(k) != mine[k]}
    if differ:
      raise errors.ConfigError(
          f"process {jax.process_index()} and process {other} were started "
          "with different settings (setting: (this process, the other)): "
          + ", ".join(f"{k}: {v}" for k, v in differ.items())
          + "; start every process with the same gin files and flags")


def is_primary() -> bool:
  """Whether this process writes logs, summaries and run files."""
  return jax.process_index() == 0


def fetch(tree: Any) -> Any:
  """Host copies of (replicated) arrays, on every process."""
  return jax.tree.map(np.asarray, tree)


def _client():
  """JAX's coordination-service client (None when running alone)."""
  from jax._src import distributed as jax_distributed  # pylint: disable=import-outside-toplevel
  return jax_distributed.global_state.client


def _flush_logs() -> None:
  for handler in logging.getLogger().handlers:
    handler.flush()
  sys.stdout.flush()
  sys.stderr.flush()


_FAILURE_KEY = "korani/failure"
EXIT_FAILED = 1
EXIT_PREEMPTED = 128 + signal.SIGTERM


class _FailureWatcher:
  """Watches (in a thread) for another process's failure or loss, then exits.

  The main thread may be blocked in a collective that waits for the failed
  process; this thread is not, and ends the process with the error in its
  log. Twice a second it posts this process's sign of life (a counter) to
  the coordination service and reads the others': a process whose counter
  has not moved for `lost_after_seconds` (killed, out of memory, its host
  gone) is named as lost. It also exits when the coordination service goes
  away (process 0 died) while the run is still going. At a normal exit
  (`stop`) a process marks itself done, so that the others, still running,
  do not count it as lost. It polls rather than blocking in the client, so
  that it can stop before JAX shuts the client down at exit.
  """

  POLL_SECONDS = 0.5
  lost_after_seconds = float(DEFAULT_HEARTBEAT_TIMEOUT_SECONDS) / 2
  reporting = False  # this process is reporting its own failure
  stopping = threading.Event()  # normal exit: the service goes away
  thread: threading.Thread | None = None

  @classmethod
  def start(cls, lost_after_seconds: float) -> None:
    import atexit  # pylint: disable=import-outside-toplevel
    cls.lost_after_seconds = lost_after_seconds
    # Runs before JAX's own atexit shutdown (registered when JAX started).
    atexit.register(cls.stop)
    cls.thread = threading.Thread(target=cls._watch, daemon=True,
                                  name="korani-failure-watcher")
    cls.thread.start()

  @classmethod
  def stop(cls) -> None:
    cls.stopping.set()
    if cls.thread is not None:
      cls.thread.join()
      try:
        _client().key_value_set(f"{_ALIVE_KEY}/{jax.process_index()}",
                                _DONE, allow_overwrite=True)
      except Exception:  # pylint: disable=broad-except
        pass  # the service is gone: nobody is left to watch

  @classmethod
  def _watch(cls) -> None:
    client = _client()
    me = jax.process_index()
    identity = f"{socket.gethostname()} pid {os.getpid()}"
    peers = _Peers(me, jax.process_count(), cls.lost_after_seconds)
    beat = 0
    while not cls.stopping.wait(cls.POLL_SECONDS):
      beat += 1
      try:
        client.key_value_set(f"{_ALIVE_KEY}/{me}", f"{beat} {identity}",
                             allow_overwrite=True)
        signs = client.key_value_dir_get(_ALIVE_KEY)
        report = _try_get(client, _FAILURE_KEY)
      except Exception as e:  # pylint: disable=broad-except
        if cls.stopping.is_set() or cls.reporting:
          return
        message = (f"process {me}: lost the coordination service (process "
                   f"0 stopped?): {str(e).splitlines()[0]}")
      else:
        if cls.reporting:
          return
        lost = peers.lost(signs, time.monotonic())
        if report is None and lost is None:
          continue
        message = f"process {me}: stopping because {report or lost}"
      logging.error("%s", message)
      _flush_logs()
      if me == 0:
        # Process 0 hosts the coordination service: give the others a
        # moment to read the report before it goes (else JAX aborts them).
        time.sleep(2 + 2 * cls.POLL_SECONDS)
      os._exit(EXIT_FAILED)  # pylint: disable=protected-access


def _try_get(client, key: str) -> str | None:
  """The value of `key` in the coordination service, None if unset."""
  try:
    return client.key_value_try_get(key)
  except Exception as e:  # pylint: disable=broad-except
    if "NOT_FOUND" in str(e):
      return None
    raise


_ALIVE_KEY = "korani/alive"
_DONE = "done"


class _Peers:
  """The other processes' signs of life, as one watcher has seen them."""

  def __init__(self, me: int, count: int, lost_after_seconds: float):
    self.lost_after_seconds = lost_after_seconds
    self.last_look = time.monotonic()
    # process: (its last sign, when it changed); all start together.
    self.seen = {p: ("", self.last_look) for p in range(count) if p != me}

  def lost(self, signs: list[tuple[str, str]], now: float) -> str | None:
    """Names the first process silent for too long, else None."""
    # A pause of this watcher (a starved CPU, a process stopped) is not
    # the others' silence: their clocks stand still meanwhile.
    pause = now - self.last_look - 2 * _FailureWatcher.POLL_SECONDS
    self.last_look = now
    if pause > 0:
      self.seen = {p: (sign, since + pause)
                   for p, (sign, since) in self.seen.items()}
    for key, sign in signs:
      process = int(key.rsplit("/", 1)[1])
      if process in self.seen and sign != self.seen[process][0]:
        self.seen[process] = (sign, now)
    for process, (sign, since) in sorted(self.seen.items()):
      if sign != _DONE and now - since > self.lost_after_seconds:
        where = f" ({sign.split(' ', 1)[1]})" if " " in sign else ""
        return (f"process {process}{where} stopped responding: no sign of "
                f"life for {now - since:.0f} s (killed, out of memory, or "
                "its host failed; see its log)")
    return None


def report_failure(message: str, exit_code: int = EXIT_FAILED) -> None:
  """Tells the other processes that this one failed (`message`), then exits.

  For a multi-process run's entry points: call it with the error instead
  of letting Python exit normally, which would wait for the other
  processes at JAX's shutdown barrier while they wait in a collective.
  """
  _FailureWatcher.reporting = True
  logging.error("process %d failed: %s", jax.process_index(), message)
  client = _client()
  if client is not None:
    try:
      # This process's error may follow from another's (a collective whose
      # peer is gone): name the first failure too.
      logging.error("process %d: stopping because %s", jax.process_index(),
                    client.key_value_try_get(_FAILURE_KEY))
      _flush_logs()
      os._exit(exit_code)  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except
      pass  # no report yet: this process is the first to fail
    try:
      client.key_value_set(
          _FAILURE_KEY, f"process {jax.process_index()} failed: {message}")
      # Process 0 hosts the coordination service: give the others a moment
      # to read the report before it goes.
      if jax.process_index() == 0:
        time.sleep(2)
    except Exception:  # pylint: disable=broad-except
      pass  # another process reported first; the others are on their way
  _flush_logs()
  os._exit(exit_code)  # pylint: disable=protected-access


def fail_fast(error: BaseException) -> None:
  """In a multi-process run: logs `error`, reports it and exits.

  Called where the error is caught, before any clean-up that might wait
  for the other processes (closing a checkpoint manager, a barrier).
  An error of JAX's runtime may be a collective's whose peer died (gloo's
  "Connection reset by peer"): the watcher is first given the time to find
  and name a lost process, which is then the reported cause.
  """
  if jax.process_count() == 1:
    return
  logging.error("process %d failed", jax.process_index(),
                exc_info=(type(error), error, error.__traceback__))
  if isinstance(error, jax.errors.JaxRuntimeError):
    logging.error("process %d: waiting up to %.0f s for the others' signs of "
                  "life before reporting this error", jax.process_index(),
                  _FailureWatcher.lost_after_seconds + 1)
    _flush_logs()
    # The watcher exits the process if it finds a lost one (or a report).
    time.sleep(_FailureWatcher.lost_after_seconds + 1)
  report_failure(f"{type(error).__name__}: {error}")


class PreemptionHandler:
  """SIGTERM: stop at a step all processes agree on, after a checkpoint.

  Alone, a process stops after the step it is running. In a multi-process
  run the processes first agree on the step (JAX's preemption sync
  protocol, as t5x and orbax use it: ``reached_preemption_sync_point``),
  since saving is collective. JAX's runtime catches SIGTERM in C++ and
  only records it; this handler takes the signal first (Python's handler,
  woken through `signal.set_wakeup_fd` even while the main thread is blocked
  in a collective), hands it on to JAX's handler, and starts the grace
  timer: a process that has not begun its final checkpoint within
  `grace_seconds` (stuck in data loading, compilation or a collective with
  a dead peer) reports the failure and exits.

      with PreemptionHandler(grace_seconds=30) as preemption:
        for step in ...:
          ...
          if preemption.should_stop(step):
            save(step); break

  Leaving the `with` block (or `close()` after `start()`) restores the
  previous SIGTERM handling.
  """

  def __init__(self, grace_seconds: float = 30.0):
    self.grace_seconds = grace_seconds
    self.signalled = threading.Event()
    self.stopping = threading.Event()  # the final checkpoint has begun
    self._libc = ctypes.CDLL(None, use_errno=True)
    self._previous_action = ctypes.create_string_buffer(1024)  # sigaction
    self._previous_wakeup_fd = -1
    self._previous_handler = None
    self._pipe = None

  def __enter__(self) -> "PreemptionHandler":
    return self.start()

  def __exit__(self, *exc_info) -> None:
    self.close()

  def start(self) -> "PreemptionHandler":
    """Installs the handler (only the main thread can; elsewhere, none)."""
    if threading.current_thread() is not threading.main_thread():
      logging.warning("not in the main thread: SIGTERM keeps its handling")
      return self
    self._libc.sigaction(signal.SIGTERM, None, self._previous_action)
    self._pipe = os.pipe()
    os.set_blocking(self._pipe[1], False)
    self._previous_handler = signal.signal(signal.SIGTERM, lambda *_: None)
    self._previous_wakeup_fd = signal.set_wakeup_fd(
        self._pipe[1], warn_on_full_buffer=False)
    threading.Thread(target=self._wait_for_sigterm, args=(self._pipe[0],),
                     name="korani-sigterm", daemon=True).start()
    return self

  def close(self) -> None:
    """Restores the SIGTERM handling from before `start`."""
    if self._pipe is None:
      return
    signal.set_wakeup_fd(self._previous_wakeup_fd)
    signal.signal(signal.SIGTERM, self._previous_handler)
    # The handler Python does not know of (JAX's runtime's), if any.
    self._libc.sigaction(signal.SIGTERM, self._previous_action, None)
    os.close(self._pipe[1])  # ends the thread
    self.stopping.set()

  def _wait_for_sigterm(self, read_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
      while True:
        received = pipe.read(1)
        if not received:
          return  # closed
        if received[0] == signal.SIGTERM:
          break
    logging.warning("process %d: SIGTERM; stopping at the next step all "
                    "processes reach, after a checkpoint", jax.process_index())
    self.signalled.set()
    if jax.process_count() > 1:
      # Hand the signal on to JAX's runtime, which starts the sync protocol.
      self._libc.sigaction(signal.SIGTERM, self._previous_action, None)
      os.kill(os.getpid(), signal.SIGTERM)
    if not self.stopping.wait(self.grace_seconds):
      report_failure(f"SIGTERM: no checkpoint begun within "
                     f"{self.grace_seconds:g} s; exiting without one",
                     exit_code=EXIT_PREEMPTED)

  def should_stop(self, step: int) -> bool:
    """Whether to save and stop after `step` (call after every step)."""
    if jax.process_count() > 1:
      stop = multihost_utils.reached_preemption_sync_point(step)
    else:
      stop = self.signalled.is_set()
    if stop:
      self.stopping.set()
      logging.warning("process %d: preempted; saving step %d and stopping",
                      jax.process_index(), step)
    return stop
