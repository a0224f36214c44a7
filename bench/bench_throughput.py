"""Benchmark: one training step of our trainer against PyTorch peers.

Every engine trains the same network (mT5 / T5.1.1: gated-GELU MLP, untied
embeddings, relative attention, dropout 0.1) on the same synthetic batch of
random token ids with no padding, and times whole training steps. The loss
is the mean cross-entropy per target token on every side: no z-loss (our
trainer adds t5x's z-loss 1e-4; transformers' MT5 has none, so the bench
builds our step with ``z_loss=0``).

    jax        t5x_runs.train_step: ``init_train_state`` + ``compile_step``
               with ``make_optimizer()`` (optax Adafactor) on a one-device
               mesh, compiled ahead of time; a step = forward, loss,
               gradients, Adafactor update, parameters and state donated.
    hf         transformers' ``MT5ForConditionalGeneration`` (the engine of
               the paper's official code) with transformers' own Adafactor
               (pure Python, one parameter at a time).
    torch      the same model with ``torch.optim.Adafactor(foreach=True)``
               (the update of all parameters in a few multi-tensor kernels).
    compiled   torch with the model under ``torch.compile`` (Inductor: needs
               a C++ compiler on CPU). The optimizer step stays eager:
               torch.optim.Adafactor reads its step count with ``.item()``,
               a graph break that recompiles the step at every new count.
    peak       the machine's float32 matmul rate: a jit-compiled ``jnp.dot``
               of two N x N matrices (GFLOP/s of the median).

PyTorch steps are forward with labels, ``loss.backward()``, the optimizer's
step, ``zero_grad``, with ``torch.set_num_threads(cores)``.

Adafactor, matched to ours (optax.adafactor as ``make_optimizer`` builds it)
on every peer: learning rate 1e-3 (constant), second-moment decay
1 - t^-0.8 (optax ``decay_rate=0.8``, transformers ``decay_rate=-0.8``,
torch ``beta2_decay=-0.8``), updates clipped to RMS 1.0 (``clip_threshold``,
``d``), multiplied by the parameter's RMS, at least 1e-3 (optax
``multiply_by_parameter_scale``; transformers ``scale_parameter=True``,
``eps[1]=1e-3``; torch always, ``eps[1]=1e-3``), no momentum, no weight
decay. What cannot be matched:

* torch's step size is ``min(lr, 1/sqrt(t))`` (its relative-step rule,
  always on): equal to 1e-3 for the first 10^6 steps, so in any bench run.
* which arrays are factored: optax factors an array only when its two
  largest dimensions are both >= 128 (``min_dim_size_to_factor``) and keeps
  a full second moment otherwise; transformers and torch factor every array
  of 2 or more dimensions over its last two. At the small shape only the
  relative-position tables ([heads, 32]) differ; at tiny, where every
  dimension is below 128 but the vocabulary's, most matrices do.
* epsilon: optax and transformers add 1e-30 to the squared gradient; torch
  clamps the factored row mean at eps[0] and the second-moment estimate at
  eps[0]^2, so it gets ``eps[0]=1e-15`` (no effect unless gradients vanish).

The engines run in one process, interleaved: after the warm-up calls of
each, every round times one call of each engine in turn, so that all of
them see the same machine load (on a shared machine the load changes from
minute to minute, and engines timed one after the other would be compared
under different loads). Timing stops after ``--steps`` rounds or once
``--budget_s`` seconds of timed calls have run (at least MIN_TIMED_STEPS
rounds); the medians are reported. A peer that cannot be built or fails
its warm-up (PyTorch or transformers not installed, no compiler for
torch.compile) is left out of the rounds and reported with its error.

    .venv/bin/python bench/bench_throughput.py --shape tiny
    .venv/bin/python bench/bench_throughput.py --shape small --engines jax,peak

prints one JSON line: per engine its settings, call times (wall and CPU) and
their medians, or the error that kept it from running; for jax also the
model FLOPs per step (``model_flops``, formula there) and XLA's own count of
the compiled step's FLOPs; tokens/s for every step. Model FLOPs utilization
is the step's model FLOPs/s over the matmul's FLOPs/s, by wall time and,
steadier on a loaded machine, by CPU time.
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from typing import Callable

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

# pylint: disable-next=wrong-import-position
from t5x_runs.models import MT5Config, mt5_config

BATCH_SIZE = 8
INPUT_LENGTH = 512
TARGET_LENGTH = 128
MIN_TIMED_STEPS = 3


def bench_config(shape: str) -> MT5Config:
  """The two shapes of the benchmark.

  'tiny': ``mt5_config('tiny')`` (vocabulary 512); 'small': the mT5-small
  network with a 32k vocabulary, ``mt5_config('small', vocab_size=32128)``.
  """
  if shape == "tiny":
    return mt5_config("tiny")
  if shape == "small":
    return mt5_config("small", vocab_size=32128)
  raise ValueError(f"unknown benchmark shape {shape!r}; use 'tiny' or 'small'")


def synthetic_batch(vocab_size: int, batch_size: int, input_length: int,
                    target_length: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Random non-padding token ids in seqio's EncDecFeatureConverter layout.

  Example (batch 2, lengths 3/2): encoder_input_tokens [[5, 9, 2], [7, 1, 4]],
  decoder_target_tokens [[3, 8], [6, 2]], decoder_input_tokens (the targets
  shifted right, starting with 0) [[0, 3], [0, 6]], decoder_loss_weights all 1.
  """
  rng = np.random.default_rng(seed)
  inputs = rng.integers(1, vocab_size, (batch_size, input_length), np.int32)
  targets = rng.integers(1, vocab_size, (batch_size, target_length), np.int32)
  shifted = np.concatenate(
      [np.zeros((batch_size, 1), np.int32), targets[:, :-1]], axis=1)
  return {"encoder_input_tokens": inputs, "decoder_input_tokens": shifted,
          "decoder_target_tokens": targets,
          "decoder_loss_weights": np.ones_like(targets)}


def model_flops(config: MT5Config, batch_size: int, input_length: int,
                target_length: int) -> dict[str, int]:
  """Model FLOPs of one training step (forward + backward = 3 x forward).

  Each weight matrix does 2 FLOPs per weight per token that passes through
  it in the forward pass, so 6 per weight per token in training; the
  attention score and context products add 2 * 2 * q * k * (heads*head_dim)
  per sequence and attention layer in the forward pass. With B = batch,
  Li/Lt = input/target length, E = emb, HD = heads*head_dim, M = mlp,
  V = vocab, ne/nd = encoder/decoder layers:

      matmul    = 6 * B * Li * ne * (4*E*HD + 3*E*M)        encoder layers
                + 6 * B * Li * nd * 2*E*HD                  cross-attn key/value
                + 6 * B * Lt * nd * (6*E*HD + 3*E*M)        rest of the decoder
                + 6 * B * Lt * E*V                          logits
      attention = 12 * B * HD * (ne*Li^2 + nd*(Lt^2 + Lt*Li))

  i.e. 6 x (weights in matmuls) x (tokens through them) + attention.
  Embedding lookups, norms, softmax and the optimizer are not counted; the
  causal decoder attention is counted in full (it is computed in full).
  """
  b, li, lt = batch_size, input_length, target_length
  e, m, v = config.emb_dim, config.mlp_dim, config.vocab_size
  hd = config.num_heads * config.head_dim
  ne, nd = config.num_encoder_layers, config.num_decoder_layers
  matmul = 6 * b * (li * ne * (4 * e * hd + 3 * e * m)
                    + li * nd * 2 * e * hd
                    + lt * nd * (6 * e * hd + 3 * e * m)
                    + lt * e * v)
  attention = 12 * b * hd * (ne * li * li + nd * (lt * lt + lt * li))
  return {"matmul": matmul, "attention": attention,
          "total": matmul + attention}


def time_interleaved(calls: dict[str, Callable[[int], None]], warmup: int,
                     max_rounds: int, budget_s: float,
                     cpu_times: dict[str, list[float]] | None = None
                     ) -> dict[str, list[float]]:
  """Times `calls` round-robin; returns each one's list of call times.

  Each call is first made `warmup` times untimed (call(0), call(1), ...);
  then every round times one call of each in turn. Rounds stop after
  `max_rounds`, or once `budget_s` seconds of timed calls have run but never
  before MIN_TIMED_STEPS rounds. Calls must block until their work is done.
  `cpu_times`, when given, receives each call's CPU time (all threads of
  this process), which depends much less than wall time on other jobs.
  """
  for call in calls.values():
    for i in range(warmup):
      call(i)
  times = {name: [] for name in calls}
  cpu = cpu_times if cpu_times is not None else {}
  cpu.update({name: [] for name in calls})
  for round_ in range(max(max_rounds, MIN_TIMED_STEPS)):
    for name, call in calls.items():
      start, start_cpu = time.perf_counter(), time.process_time()
      call(warmup + round_)
      times[name].append(time.perf_counter() - start)
      cpu[name].append(time.process_time() - start_cpu)
    spent = sum(sum(t) for t in times.values())
    if round_ + 1 >= MIN_TIMED_STEPS and spent >= budget_s:
      break
  return times


def time_steps(step: Callable[[int], None], warmup: int, max_steps: int,
               budget_s: float) -> list[float]:
  """`time_interleaved` of a single call: its times."""
  return time_interleaved({"step": step}, warmup, max_steps, budget_s)["step"]


class TrainerStep:
  """The trainer's compiled training step on a one-device mesh.

  Built exactly as ``t5x_runs.trainer.train`` builds it (``init_train_state``
  + ``ShardedTrainState.compile_step`` with ``make_optimizer()``; `z_loss`
  0 by default, as the PyTorch peers have none), then
  compiled ahead of time for the shapes of ``example_batch`` (a dict of
  numpy arrays as ``train_batches`` yields them), so calls never compile.
  Calling it runs one step on a batch placed with `device_batch` and waits
  for the result; parameters and optimizer state are carried (and donated)
  from step to step.
  """

  def __init__(self, config: MT5Config, example_batch: dict[str, np.ndarray],
               seed: int = 0, z_loss: float = 0.0):
    import flax.linen as nn  # pylint: disable=import-outside-toplevel
    import jax  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from t5x_runs import partitioning, train_step
    from t5x_runs.models import MT5  # pylint: disable=import-outside-toplevel

    self._jax = jax
    self.mesh = partitioning.make_mesh(1, devices=jax.devices()[:1])
    rules = partitioning.standard_logical_axis_rules()
    model = MT5(config)
    optimizer = train_step.make_optimizer()
    lengths = {"inputs": example_batch["encoder_input_tokens"].shape[1],
               "targets": example_batch["decoder_target_tokens"].shape[1]}
    state = train_step.init_train_state(model, optimizer, self.mesh, rules,
                                        lengths, seed=seed)
    self._sharding = partitioning.batch_sharding(self.mesh)
    self._base_rng = jax.random.PRNGKey(seed)
    # Under the mesh and rules, as t5x_runs.trainer.train compiles it
    # (newer jax deprecates `with mesh`, which the trainer still uses).
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      with self.mesh, nn.logical_axis_rules(rules):
        step_fn = state.compile_step(model, optimizer, z_loss=z_loss)
        start = time.perf_counter()
        self._compiled = step_fn.lower(
            state.params, state.opt_state, self.device_batch(example_batch),
            self._base_rng).compile()
        self.compile_s = time.perf_counter() - start
    cost = self._compiled.cost_analysis()
    if isinstance(cost, list):  # older jax: one dict per computation
      cost = cost[0]
    self.xla_flops = float((cost or {}).get("flops", float("nan")))
    self._params, self._opt_state = state.params, state.opt_state
    self.loss = float("nan")

  def device_batch(self, batch: dict[str, np.ndarray]):
    """`batch` on the mesh, split over 'data' as the trainer places it."""
    return self._jax.device_put(dict(batch), self._sharding)

  def __call__(self, device_batch, step: int) -> None:
    jax = self._jax
    self._params, self._opt_state, metrics = self._compiled(
        self._params, self._opt_state, device_batch,
        jax.random.fold_in(self._base_rng, step))
    self.loss = float(jax.block_until_ready(metrics)["loss"])


def torch_reference_model(config: MT5Config):
  """transformers' MT5ForConditionalGeneration with `config`'s shape."""
  import transformers  # pylint: disable=import-outside-toplevel
  hf_config = transformers.MT5Config(
      vocab_size=config.vocab_size, d_model=config.emb_dim,
      d_kv=config.head_dim, d_ff=config.mlp_dim,
      num_layers=config.num_encoder_layers,
      num_decoder_layers=config.num_decoder_layers,
      num_heads=config.num_heads,
      relative_attention_num_buckets=config.relative_attention_num_buckets,
      relative_attention_max_distance=config.relative_attention_max_distance,
      dropout_rate=config.dropout_rate,
      layer_norm_epsilon=config.layer_norm_epsilon,
      feed_forward_proj="gated-gelu", tie_word_embeddings=False,
      decoder_start_token_id=0, pad_token_id=0)
  return transformers.MT5ForConditionalGeneration(hf_config)


# The PyTorch peers: name -> (label, optimizer, torch.compile).
PEERS = {
    "hf": ("transformers MT5 + transformers Adafactor", "transformers", False),
    "torch": ("transformers MT5 + torch.optim.Adafactor(foreach)", "torch",
              False),
    "compiled": ("transformers MT5 under torch.compile + "
                 "torch.optim.Adafactor(foreach)", "torch", True),
}
ENGINES = ("jax", "peak", *PEERS)


def torch_optimizer(kind: str, parameters):
  """Adafactor set as ours is (see the module docstring); `kind` picks the
  implementation: 'transformers' or 'torch'."""
  if kind == "transformers":
    # pylint: disable-next=import-outside-toplevel
    from transformers.optimization import Adafactor
    return Adafactor(parameters, lr=1e-3, eps=(1e-30, 1e-3),
                     clip_threshold=1.0, decay_rate=-0.8, beta1=None,
                     weight_decay=0.0, scale_parameter=True,
                     relative_step=False, warmup_init=False)
  import torch  # pylint: disable=import-outside-toplevel
  return torch.optim.Adafactor(parameters, lr=1e-3, beta2_decay=-0.8,
                               eps=(1e-15, 1e-3), d=1.0, weight_decay=0.0,
                               foreach=True)


class TorchStep:
  """One standard PyTorch training step of a peer (`PEERS`), on a fixed batch."""

  def __init__(self, config: MT5Config, batch: dict[str, np.ndarray],
               peer: str):
    import torch  # pylint: disable=import-outside-toplevel
    self.label, optimizer, compiled = PEERS[peer]
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    self.threads = torch.get_num_threads()
    self.model = torch_reference_model(config)
    self.model.train()
    self.optimizer = torch_optimizer(optimizer, self.model.parameters())
    self._forward = self.model
    if compiled:  # the forward and (AOTAutograd) backward passes
      self._forward = torch.compile(self.model)
    self.input_ids = torch.from_numpy(
        batch["encoder_input_tokens"].astype(np.int64))
    self.attention_mask = torch.ones_like(self.input_ids)
    # The model shifts the labels right (decoder_start_token_id=0) itself.
    self.labels = torch.from_numpy(
        batch["decoder_target_tokens"].astype(np.int64))
    self.loss = float("nan")

  def __call__(self, step: int) -> None:
    del step  # dropout draws from torch's global generator
    loss = self._forward(input_ids=self.input_ids,
                         attention_mask=self.attention_mask,
                         labels=self.labels).loss
    loss.backward()
    self.optimizer.step()
    self.optimizer.zero_grad(set_to_none=True)
    self.loss = loss.item()


def _failure(error: BaseException) -> str:
  """An error's type and first line, for the results table."""
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


class MatmulPeak:
  """`repeats` jit-compiled float32 `size` x `size` jnp.dots per call.

  Several products per call make each sample long enough (about half a
  second for 5 x 2048 on 2 cores) not to hinge on one scheduler tick.
  """

  def __init__(self, size: int, repeats: int = 5):
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    self.size, self.repeats = size, repeats
    self.flops = repeats * 2 * size**3
    self._a = jax.random.normal(jax.random.PRNGKey(0), (size, size))
    self._b = jax.random.normal(jax.random.PRNGKey(1), (size, size))
    self._dot = jax.jit(jnp.dot)

  def __call__(self, step: int) -> None:
    del step
    for _ in range(self.repeats):
      self._dot(self._a, self._b).block_until_ready()


def _warmed_up(call: Callable[[int], None], warmup: int
               ) -> Callable[[int], None]:
  """`call` after `warmup` untimed calls; later calls continue the count."""
  for i in range(warmup):
    call(i)
  return lambda i: call(warmup + i)


def measure(shape: str, engines: list[str], warmup: int, max_steps: int,
            budget_s: float, matmul_size: int) -> dict:
  """Builds the chosen engines and times them interleaved; see the docstring.

  A peer that fails to build or to warm up gets ``{"label", "error"}``
  instead of times; ours and the matmul must run.
  """
  config = bench_config(shape)
  batch = synthetic_batch(config.vocab_size, BATCH_SIZE, INPUT_LENGTH,
                          TARGET_LENGTH)
  calls, built, failed = {}, {}, {}
  if "jax" in engines:
    jax_step = built["jax"] = TrainerStep(config, batch)
    device_batch = jax_step.device_batch(batch)
    calls["jax"] = _warmed_up(lambda i: jax_step(device_batch, i), warmup)
  if "peak" in engines:
    built["peak"] = MatmulPeak(matmul_size)
    calls["peak"] = _warmed_up(built["peak"], warmup)
  for name in PEERS:
    if name not in engines:
      continue
    try:
      built[name] = TorchStep(config, batch, name)
      calls[name] = _warmed_up(built[name], warmup)
    except Exception as e:  # pylint: disable=broad-except
      failed[name] = {"label": PEERS[name][0], "error": _failure(e)}
  cpu_times = {}
  times = time_interleaved(calls, 0, max_steps, budget_s, cpu_times)

  tokens = BATCH_SIZE * (INPUT_LENGTH + TARGET_LENGTH)
  result = {"shape": shape, "warmup": warmup, "tokens_per_step": tokens,
            "dropout_rate": config.dropout_rate,
            "model_flops": model_flops(config, BATCH_SIZE, INPUT_LENGTH,
                                       TARGET_LENGTH), **failed}
  for name, step_times in times.items():
    median = statistics.median(step_times)
    median_cpu = statistics.median(cpu_times[name])
    entry = {"times": step_times, "median_s": median,
             "cpu_times": cpu_times[name], "median_cpu_s": median_cpu}
    if name == "peak":
      entry.update(size=matmul_size, repeats=built[name].repeats,
                   gflops=built[name].flops / median / 1e9,
                   gflops_per_cpu_s=built[name].flops / median_cpu / 1e9)
    else:
      entry.update(tokens_per_s=tokens / median, final_loss=built[name].loss)
    if name == "jax":
      entry.update(compile_s=built[name].compile_s,
                   xla_flops=built[name].xla_flops)
    if name in PEERS:
      entry.update(label=built[name].label, threads=built[name].threads)
    result[name] = entry
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--shape", choices=("tiny", "small"), default="tiny")
  parser.add_argument("--engines", default=",".join(ENGINES),
                      help=f"comma-separated subset of {','.join(ENGINES)}")
  parser.add_argument("--warmup", type=int, default=2,
                      help="untimed calls of each engine")
  parser.add_argument("--steps", type=int, default=10,
                      help="most timed rounds")
  parser.add_argument("--budget_s", type=float, default=60.0,
                      help="stop after this many seconds of timed calls "
                           f"(at least {MIN_TIMED_STEPS} rounds)")
  parser.add_argument("--matmul_size", type=int, default=2048)
  args = parser.parse_args()
  engines = [e for e in args.engines.split(",") if e]
  unknown = sorted(set(engines) - set(ENGINES))
  if unknown:
    parser.error(f"unknown engine(s): {', '.join(unknown)}")
  print(json.dumps(measure(args.shape, engines, args.warmup, args.steps,
                           args.budget_s, args.matmul_size)))


if __name__ == "__main__":
  main()
