"""Optimizer updates per layer for scanned (stacked) layer parameters.

With ``MT5Config.scan_layers`` the parameters of all encoder (decoder)
layers live in one array each, ``encoder/layers/mlp/wo/kernel`` [layers, M,
E] (t5x_runs/models/mt5.py). Adafactor computes some statistics per array:
the RMS that clips an update and the parameter scale that multiplies it.
Applied to a stacked array they would mix the layers, and a scanned run
would train differently from an unscanned one. t5x's Adafactor avoids this
by treating the 'layers' axis as a batch dimension (its ``factor_map``);
`per_layer` does the same for any optax transformation: the stacked
parameters are updated by the transformation vmapped over their first axis,
so each layer gets exactly the update it would get unstacked.

    optimizer = per_layer(optax.adafactor(1e-3))
    state = optimizer.init(params)   # params scanned or not

A tree without stacked parameters gets the inner transformation's own state
(so unscanned runs keep their checkpoint layout).
"""

from typing import Any, NamedTuple

import jax
import optax
from flax import traverse_util

# The dict key under which a scanned stack keeps its parameters
# (`t5x_runs.models.mt5.SCANNED_LAYERS`).
_STACKED_KEY = "layers"


class PerLayerState(NamedTuple):
  """The state of the stacked parameters (each leaf with a leading layers
  axis) and of the others."""
  stacked: Any
  other: Any


def _split(tree: Any) -> tuple[dict, dict]:
  """(stacked part, other part) of a parameter-shaped tree."""
  flat = traverse_util.flatten_dict(tree)
  stacked = {k: v for k, v in flat.items() if _STACKED_KEY in k}
  other = {k: v for k, v in flat.items() if _STACKED_KEY not in k}
  return (traverse_util.unflatten_dict(stacked),
          traverse_util.unflatten_dict(other))


def _join(stacked: dict, other: dict) -> dict:
  flat = traverse_util.flatten_dict(other)
  flat.update(traverse_util.flatten_dict(stacked))
  return traverse_util.unflatten_dict(flat)


def per_layer(inner: optax.GradientTransformation
              ) -> optax.GradientTransformation:
  """``inner`` with stacked layer parameters updated layer by layer."""

  def init(params):
    stacked, other = _split(params)
    if not stacked:
      return inner.init(params)
    return PerLayerState(jax.vmap(inner.init)(stacked), inner.init(other))

  def update(updates, state, params=None):
    if not isinstance(state, PerLayerState):
      return inner.update(updates, state, params)
    stacked_updates, other_updates = _split(updates)
    stacked_params, other_params = (_split(params) if params is not None
                                    else (None, None))
    stacked_updates, stacked_state = jax.vmap(inner.update)(
        stacked_updates, state.stacked, stacked_params)
    other_updates, other_state = inner.update(other_updates, state.other,
                                              other_params)
    return (_join(stacked_updates, other_updates),
            PerLayerState(stacked_state, other_state))

  return optax.GradientTransformation(init, update)
