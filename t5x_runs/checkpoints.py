"""Orbax checkpoints of a training run.

Layout under ``<model_dir>/checkpoints``, one folder per saved step::

    checkpoints/
      200/
        params/      parameters (orbax StandardSave, sharded arrays)
        opt_state/   optimizer state
        metadata/    JSON: step, model config, vocabulary, data settings

Orbax writes each step to a temporary folder and renames it when complete,
so a run killed while saving leaves no half-written checkpoint that would be
picked up on restart. The evaluator restores ``params`` alone.
"""

import logging
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from korani_tasks import errors

PARAMS = "params"
OPT_STATE = "opt_state"
METADATA = "metadata"


def checkpoint_dir(model_dir: str | os.PathLike) -> str:
  return os.path.join(os.fspath(model_dir), "checkpoints")


class CheckpointStore:
  """Saves and restores (params, opt_state, metadata) by step."""

  def __init__(self, model_dir: str | os.PathLike, max_to_keep: int | None = 3,
               read_only: bool = False):
    directory = os.path.abspath(checkpoint_dir(model_dir))
    if read_only and not os.path.isdir(directory):
      raise errors.MissingDataError(
          f"no checkpoints in {model_dir}: {directory} does not exist")
    self.directory = directory
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=not read_only,
            read_only=read_only, enable_async_checkpointing=False),
        item_names=(PARAMS, OPT_STATE, METADATA))

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, params: Any, opt_state: Any,
           metadata: dict[str, Any]) -> None:
    self._manager.save(step, args=ocp.args.Composite(**{
        PARAMS: ocp.args.StandardSave(params),
        OPT_STATE: ocp.args.StandardSave(opt_state),
        METADATA: ocp.args.JsonSave(dict(metadata, step=step)),
    }))
    self._manager.wait_until_finished()
    logging.info("Saved checkpoint %d to %s", step, self.directory)

  def restore(self, step: int, abstract_params: Any,
              abstract_opt_state: Any | None = None) -> dict[str, Any]:
    """Restores a step into arrays shaped (and sharded) like the abstract trees.

    `abstract_*` are trees of jax.ShapeDtypeStruct (with `.sharding`), e.g.
    from jax.eval_shape. Without `abstract_opt_state` only the params and the
    metadata are read.
    """
    if step not in self._manager.all_steps():
      raise errors.MissingDataError(
          f"no checkpoint for step {step} in {self.directory} "
          f"(steps: {self.all_steps()})")
    items = {PARAMS: ocp.args.StandardRestore(abstract_params),
             METADATA: ocp.args.JsonRestore()}
    if abstract_opt_state is not None:
      items[OPT_STATE] = ocp.args.StandardRestore(abstract_opt_state)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return {k: restored[k] for k in items}

  def metadata(self, step: int) -> dict[str, Any]:
    restored = self._manager.restore(
        step, args=ocp.args.Composite(**{METADATA: ocp.args.JsonRestore()}))
    return restored[METADATA]

  def close(self) -> None:
    self._manager.close()


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) for a tree of jax arrays."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      tree)
