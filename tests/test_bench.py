"""The benchmark harness (bench/): its FLOPs formula, counts and entry format.

No test here asserts anything about wall time: the numbers depend on the
machine and its load. The end-to-end run is marked slow.
"""

import json
import math
import pathlib
import re
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest

from t5x_runs.models import MT5, mt5_config

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))

import bench_packing  # pylint: disable=wrong-import-position
import bench_throughput  # pylint: disable=wrong-import-position
import run_all  # pylint: disable=wrong-import-position

# Which tokens pass through each weight matrix of the parameter tree.
_ENCODER_SIDE = re.compile(r"^encoder/|encoder_decoder_attention/(key|value)/")


@pytest.mark.parametrize("shape", ["tiny", "small"])
def test_model_flops_matmul_part_is_6_x_weights_x_tokens(shape):
  """The closed formula equals a sum over the real parameter tree."""
  config = bench_throughput.bench_config(shape)
  tokens = jax.ShapeDtypeStruct((1, 1), np.int32)
  shapes = nn.unbox(jax.eval_shape(MT5(config).init, jax.random.key(0),
                                   tokens, tokens))
  batch, inputs, targets = 8, 512, 128
  expected = 0
  for path, leaf in jax.tree_util.tree_flatten_with_path(shapes["params"])[0]:
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    if not name.endswith("/kernel"):  # embedding lookup, norms, relpos
      continue
    through = inputs if _ENCODER_SIDE.search(name) else targets
    expected += 6 * batch * through * math.prod(leaf.shape)
  flops = bench_throughput.model_flops(config, batch, inputs, targets)
  assert flops["matmul"] == expected
  assert flops["total"] == flops["matmul"] + flops["attention"]


def test_synthetic_batch_is_shifted_and_unpadded():
  batch = bench_throughput.synthetic_batch(512, 2, 5, 3, seed=1)
  np.testing.assert_array_equal(batch["decoder_input_tokens"][:, 0], 0)
  np.testing.assert_array_equal(batch["decoder_input_tokens"][:, 1:],
                                batch["decoder_target_tokens"][:, :-1])
  assert batch["encoder_input_tokens"].min() >= 1
  assert batch["decoder_target_tokens"].max() < 512


def test_batch_counts_packed_and_padded():
  packed = {  # row 0 holds 2 examples, row 1 one
      "encoder_input_tokens": np.array([[4, 5, 1, 6, 1, 0],
                                        [7, 1, 0, 0, 0, 0]]),
      "decoder_loss_weights": np.array([[1, 1, 1, 1, 1, 0],
                                        [1, 1, 0, 0, 0, 0]]),
      "decoder_segment_ids": np.array([[1, 1, 2, 2, 2, 0],
                                       [1, 1, 0, 0, 0, 0]]),
  }
  assert bench_packing.batch_counts(packed) == (5 + 2 + 5 + 2, 3)
  padded = {k: v for k, v in packed.items() if k != "decoder_segment_ids"}
  padded["decoder_loss_weights"] = np.array([[1, 1, 0, 0, 0, 0],
                                             [0, 0, 0, 0, 0, 0]])
  assert bench_packing.batch_counts(padded) == (5 + 2 + 2, 1)


def test_time_interleaved_rounds_and_budget():
  calls = []

  def record(name):
    return lambda i: calls.append((name, i))

  minimum = bench_throughput.MIN_TIMED_STEPS
  times = bench_throughput.time_interleaved(
      {"a": record("a"), "b": record("b")}, warmup=2, max_rounds=50,
      budget_s=0.0)
  assert [len(t) for t in times.values()] == [minimum, minimum]
  assert calls == ([("a", 0), ("a", 1), ("b", 0), ("b", 1)]
                   + [(n, 2 + r) for r in range(minimum) for n in "ab"])
  times = bench_throughput.time_interleaved({"a": record("a")}, warmup=0,
                                            max_rounds=5, budget_s=1e9)
  assert len(times["a"]) == 5


@pytest.mark.slow
def test_quick_run_appends_a_dated_entry_with_the_table(tmp_path):
  """bench/run_all.py --quick on the tiny shape: table, entry, raw JSON."""
  results, raw = tmp_path / "RESULTS.md", tmp_path / "raw.json"
  results.write_text("# Benchmark results\n", encoding="utf-8")
  subprocess.run(
      [sys.executable, str(REPO_ROOT / "bench" / "run_all.py"), "--quick",
       "--shapes", "tiny", "--parts", "throughput", "--results", str(results),
       "--json", str(raw)], check=True, cwd=REPO_ROOT, timeout=900)

  text = results.read_text(encoding="utf-8")
  assert text.startswith("# Benchmark results\n")
  entry = text.split("\n## ", 1)[1]
  assert re.match(r"\d{4}-\d{2}-\d{2} — `make bench`", entry)
  for field in ("- Machine: ", "- Versions: jax ", "torch ", "transformers ",
                "tensorflow ", "seqio ", "- Command: `", "run_all.py --quick",
                "XLA_FLAGS=", "- Load (1-min average): "):
    assert field in entry, field
  rows = [line for line in entry.splitlines() if line.startswith("| ")]
  assert rows[0].split("|")[1].strip() == "measurement"
  by_name = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
             for r in rows[1:]}
  peer_rows = {f"vs peer {name}, tiny" for name in bench_throughput.PEERS}
  assert set(by_name) == {"machine", "train step tokens/s, tiny (b8, 512/128)",
                          "model FLOPs utilization, tiny (wall)",
                          "model FLOPs utilization, tiny (CPU time)",
                          *peer_rows}
  assert by_name["machine"][0].startswith(run_all.cpu_model())

  measured = json.loads(raw.read_text(encoding="utf-8"))["results"]
  run = measured["throughput_tiny"]
  ours, peak = run["jax"], run["peak"]
  # transformers and torch.optim.Adafactor run here; torch.compile may not.
  for name in ("hf", "torch"):
    assert np.isfinite(run[name]["final_loss"]), run[name]
  best = run_all.strongest_peer(run)
  ref = run[best]
  assert all(ref["tokens_per_s"] >= run[n].get("tokens_per_s", 0)
             for n in bench_throughput.PEERS)
  ratio = ours["tokens_per_s"] / ref["tokens_per_s"]
  ours_cell, ref_cell, ratio_cell, target, met = by_name[
      "train step tokens/s, tiny (b8, 512/128)"]
  assert ratio_cell == f"{ratio:.2f}x"
  assert target == ">= 2.0x" and met == ("yes" if ratio >= 2 else "no")
  assert ours_cell.startswith(f"{ours['tokens_per_s']:,.0f} ")
  assert ref_cell.startswith(
      f"strongest peer: {ref['label']} {ref['tokens_per_s']:,.0f} ")
  mfu = run["model_flops"]["total"] / ours["median_s"] / 1e9 / peak["gflops"]
  assert by_name["model FLOPs utilization, tiny (wall)"][2] == (
      f"{100 * mfu:.0f}%")
  mfu_cpu = (run["model_flops"]["total"] / ours["median_cpu_s"] / 1e9
             / peak["gflops_per_cpu_s"])
  assert by_name["model FLOPs utilization, tiny (CPU time)"][2] == (
      f"{100 * mfu_cpu:.0f}%")
  # Interleaved rounds: every engine that ran timed equally often.
  ran = [run[n] for n in ("jax", "peak", *bench_throughput.PEERS)
         if "times" in run[n]]
  assert {len(e["times"]) for e in ran} == {bench_throughput.MIN_TIMED_STEPS}
  assert run["tokens_per_step"] == 8 * (512 + 128)
  assert np.isfinite(ours["final_loss"])
  assert run["model_flops"] == bench_throughput.model_flops(
      mt5_config("tiny"), 8, 512, 128)
  # XLA counts a few more FLOPs (softmax, norms, the optimizer) than the
  # model formula, never fewer.
  assert ours["xla_flops"] >= run["model_flops"]["total"]
  assert run_all.format_table(run_all.table_rows(measured)) in entry


def test_table_names_the_strongest_peer_and_keeps_a_failed_one():
  """A peer that could not run keeps its row, with the reason."""
  def step(tokens_per_s):
    return {"tokens_per_s": tokens_per_s, "median_s": 5120 / tokens_per_s,
            "median_cpu_s": 1.0}
  run = {"jax": step(2000.0), "peak": {"gflops": 100.0,
                                       "gflops_per_cpu_s": 50.0},
         "model_flops": {"total": 10e9},
         "hf": dict(step(500.0), label="transformers Adafactor"),
         "torch": dict(step(1000.0), label="torch Adafactor"),
         "compiled": {"label": "torch.compile",
                      "error": "InvalidCxxCompiler: no working C++ compiler"}}
  rows = {r.measurement.strip(): r for r in run_all.table_rows(
      {"throughput_small": run})}
  assert set(rows) == {
      "machine", "train step tokens/s, small (b8, 512/128)",
      "vs peer hf, small", "vs peer torch, small", "vs peer compiled, small",
      "model FLOPs utilization, small (wall)",
      "model FLOPs utilization, small (CPU time)"}
  main = rows["train step tokens/s, small (b8, 512/128)"]
  assert main.reference.startswith("strongest peer: torch Adafactor 1,000 ")
  assert (main.ratio, main.target, main.met) == ("2.00x", ">= 1.2x", "yes")
  assert rows["vs peer hf, small"].ratio == "4.00x"
  failed = rows["vs peer compiled, small"]
  assert failed.ratio == "n/a"
  assert failed.reference == ("torch.compile: could not run "
                              "(InvalidCxxCompiler: no working C++ compiler)")
  del run["hf"], run["torch"]
  main = run_all.table_rows({"throughput_small": run})[1]
  assert (main.reference, main.ratio, main.met) == (
      "no PyTorch peer could run", "n/a", "")
