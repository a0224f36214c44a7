"""The training step without TensorFlow or seqio (t5x_runs/train_step.py).

An accelerator machine may carry only JAX, Flax, optax and orbax. The test
runs bench/bench_accelerator.py (the trainer's step: tiny model, sharded on
a one-device CPU mesh, compiled and run once) in a Python where TensorFlow,
seqio, tfds, gin, clu, PyTorch and transformers cannot be imported.
"""

import json
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))

import bench_accelerator  # pylint: disable=wrong-import-position

_BLOCKED = ("tensorflow", "tensorflow_datasets", "seqio", "gin", "clu",
            "torch", "transformers")
_RUN = f"""
import runpy, sys
for name in {_BLOCKED!r}:
  sys.modules[name] = None  # `import name` raises ImportError
sys.argv = ["bench_accelerator.py", "--shape", "tiny", "--batch", "2",
            "--inputs", "32", "--targets", "8", "--warmup", "0", "--steps", "1"]
runpy.run_path("bench/bench_accelerator.py", run_name="__main__")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {_BLOCKED!r}
                and sys.modules[m] is not None)
print(loaded)
"""


def test_step_runs_without_tensorflow_or_seqio():
  proc = subprocess.run([sys.executable, "-c", _RUN], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=600,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  *_, report, loaded = proc.stdout.strip().splitlines()
  assert loaded == "[]"
  run = json.loads(report)
  assert run["platform"] == "cpu"
  (result,) = run["results"]
  assert "error" not in result, result
  assert result["dtype"] == "bfloat16" and len(result["times"]) == 1
  assert 0 < result["final_loss"] < 100
  assert result["model_flops"] > 0 and result["xla_flops"] > 0
  # The planner and XLA agree on this step's memory within a factor of 2.
  assert 0.5 < result["planner_bytes"] / result["xla_bytes"] < 2
  assert result["mfu"] is None  # no bfloat16 peak is known for a CPU
  assert "no peak known for this device" in proc.stdout


@pytest.mark.parametrize("kind, peak", [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-40GB", 312e12),
    ("TPU v4", 275e12), ("TPU v5 lite", 197e12), ("TPU v5p", 459e12),
    ("cpu", None), ("Tesla T4", None)])
def test_peak_flops_by_device_kind(kind, peak):
  assert bench_accelerator.peak_flops(kind) == peak
