"""Benchmark: compile time of the train step with and without layer scan.

A narrow mT5 (tiny widths: emb 64, 4 heads, mlp 128, vocab 512) with 24
encoder + 24 decoder layers, the layer count of mT5-Large/XL/XXL, so that
compile time is dominated by the layer stacks, as in production. For each
``remat_policy`` in ``--remat`` the trainer's step (``trainer.make_train_step``
with ``trainer.make_optimizer()``: Adafactor, per layer for scanned stacks)
is lowered and compiled for one device, unscanned and scanned
(``MT5Config.scan_layers``), each in a fresh jit; then both run one step from
the same parameters (``stack_layers`` of the unscanned ones) on the same
packed batch, and their losses are printed, to show that scanning changes
the compile time, not the function.

    .venv/bin/python bench/bench_scan_compile.py --remat none full

Prints one JSON line per policy; add them to bench/RESULTS.md.
"""

import argparse
import dataclasses
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config
from t5x_runs.models.mt5 import stack_layers

LAYERS = 24
BATCH, INPUTS, TARGETS = 8, 128, 32


def _batch() -> dict[str, np.ndarray]:
  rng = np.random.RandomState(0)
  targets = rng.randint(2, 512, (BATCH, TARGETS)).astype(np.int32)
  targets[:, -4:] = 0
  return {
      "encoder_input_tokens": rng.randint(2, 512, (BATCH, INPUTS)
                                          ).astype(np.int32),
      "decoder_input_tokens": np.pad(targets, [(0, 0), (1, 0)])[:, :-1],
      "decoder_target_tokens": targets,
      "decoder_loss_weights": (targets > 0).astype(np.float32),
  }


def measure(remat_policy: str) -> dict:
  base = mt5_config("tiny", num_encoder_layers=LAYERS,
                    num_decoder_layers=LAYERS, dropout_rate=0.0,
                    remat_policy=remat_policy)
  batch = _batch()
  params = nn.unbox(MT5(base).init(
      jax.random.key(0), batch["encoder_input_tokens"][:1],
      batch["decoder_input_tokens"][:1])["params"])
  optimizer = trainer.make_optimizer()
  result = {"remat_policy": remat_policy, "layers": f"{LAYERS}+{LAYERS}"}
  for scan in (False, True):
    config = dataclasses.replace(base, scan_layers=scan)
    p = stack_layers(params) if scan else params
    state = optimizer.init(p)
    step = jax.jit(trainer.make_train_step(MT5(config), optimizer, 1e-4))
    tick = time.perf_counter()
    lowered = step.lower(p, state, batch, jax.random.key(1))
    lower_s = time.perf_counter() - tick
    tick = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - tick
    _, _, metrics = compiled(p, state, batch, jax.random.key(1))
    name = "scanned" if scan else "unscanned"
    result[f"{name}_trace_lower_s"] = round(lower_s, 2)
    result[f"{name}_compile_s"] = round(compile_s, 2)
    result[f"{name}_loss"] = float(jnp.asarray(metrics["loss"]))
  total = {n: result[f"{n}_trace_lower_s"] + result[f"{n}_compile_s"]
           for n in ("unscanned", "scanned")}
  result["scanned_over_unscanned"] = round(total["scanned"]
                                           / total["unscanned"], 3)
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--remat", nargs="+", default=["none", "full"])
  args = parser.parse_args()
  print(json.dumps({"python": platform.python_version(),
                    "jax": jax.__version__, "backend": jax.default_backend()}))
  for policy in args.remat:
    print(json.dumps(measure(policy)), flush=True)


if __name__ == "__main__":
  main()
