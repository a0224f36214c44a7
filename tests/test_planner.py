"""The memory planner (t5x_runs/planner.py) and `korani plan`."""

import math
import subprocess
import sys

import gin
import jax
import jax.numpy as jnp
import pytest
from flax import linen as nn

from korani_tasks import errors
from t5x_runs import cli
from t5x_runs import planner
from t5x_runs import trainer
from t5x_runs.models import MT5, mt5_config, param_count

LENGTHS = {"inputs": 64, "targets": 16}
SMALL_PARAMS = 300_176_768  # as tests/test_gin.py


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _plan(config, **kwargs):
  kwargs = {"batch_size": 8, "task_feature_lengths": LENGTHS,
            "num_devices": 1, **kwargs}
  return planner.plan(config, **kwargs)


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_parameters_on_one_device_are_the_exact_float32_bytes(size):
  config = mt5_config(size)
  plan = _plan(config)
  assert plan.param_count == param_count(config)
  if size == "small":
    assert plan.param_count == SMALL_PARAMS
  assert plan.parameters == plan.param_count * 4
  assert plan.gradients == plan.parameters


def test_partitions_split_the_model_axes_and_replicate_the_rest():
  config = mt5_config("tiny")  # emb 64, 4 heads x 16, mlp 128, vocab 512
  one = _plan(config)
  two = _plan(config, num_devices=2, num_partitions=2)
  # Only the layer norms' scales ('embed') stay whole: 2 per encoder layer,
  # 3 per decoder layer, plus the two final norms.
  scales = (2 * 2 + 1 + 3 * 2 + 1) * 64
  assert two.parameters == (param_count(config) - scales) * 4 // 2 + scales * 4
  layer = {k: v for k, v in two.parameters_by_name.items()
           if k.startswith("encoder/layers_0/")}
  # q, k, v [64, 64] and out [64, 64] split on joined_kv; wi_0, wi_1
  # [64, 128] and wo [128, 64] split on mlp; two [64] scales replicated.
  assert layer["encoder/layers_0/attention/query/kernel"] == 64 * 64 * 4 // 2
  assert layer["encoder/layers_0/mlp/wo/kernel"] == 128 * 64 * 4 // 2
  assert layer["encoder/layers_0/pre_mlp_layer_norm/scale"] == 64 * 4
  assert sum(layer.values()) == (4 * 64 * 64 + 3 * 64 * 128) * 4 // 2 + 2 * 64 * 4
  assert two.parameters_by_name["token_embedder/embedding"] == 512 * 64 * 4 // 2
  # Pure data parallelism replicates everything.
  four = _plan(config, num_devices=4)
  assert four.parameters == one.parameters
  # 2-D sharding also splits 'embed' over the data-parallel replicas.
  two_d = _plan(config, num_devices=4, num_partitions=2,
                parameter_2d_sharding=True)
  assert two_d.parameters_by_name["encoder/layers_0/mlp/wo/kernel"] == (
      128 * 64 * 4 // 4)
  assert two_d.parameters_by_name["encoder/encoder_norm/scale"] == 64 * 4 // 2


def test_optimizer_state_is_the_trainers_adafactor_state():
  config = mt5_config("tiny")
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  params = jax.eval_shape(
      lambda r, a, b: MT5(config).init(r, a, b)["params"],
      jax.random.key(0), tokens, tokens)
  state = jax.eval_shape(trainer.make_optimizer().init,
                         nn.unbox(params))
  expected = sum(math.prod(x.shape) * x.dtype.itemsize
                 for x in jax.tree.leaves(state))
  one = _plan(config)
  assert one.optimizer_state == expected
  # No tiny dimension pair reaches Adafactor's factoring threshold (128):
  # a full second moment per parameter (plus (1,) placeholders, counters).
  assert one.parameters < one.optimizer_state < one.parameters * 1.01
  # ... sharded as its parameter.
  two = _plan(config, num_devices=2, num_partitions=2)
  assert two.parameters < two.optimizer_state < two.parameters * 1.01
  # mT5-Small's matrices factor into row and column vectors.
  small = _plan(mt5_config("small"))
  assert small.optimizer_state < small.parameters / 100


def test_activations_grow_linearly_with_the_batch():
  config = mt5_config("tiny", vocab_size=4096)
  acts = [_plan(config, batch_size=b).activations for b in (8, 16, 24)]
  assert acts[0] < acts[1] < acts[2]
  assert acts[2] - acts[1] == acts[1] - acts[0]
  plan = _plan(config, batch_size=8)
  # The loss's backward: float32 logits' softmax and gradient, 8 bytes per
  # [batch, targets, vocab], more than a layer's score gradient (4 b H Le^2).
  assert plan.activations_by_kind["backward_peak"] == 8 * 8 * 16 * 4096
  assert 8 * 8 * 16 * 4096 > 4 * 8 * 4 * 64 * 64
  # The per-device batch is what counts: 4 replicas of batch 32 = 1 x 8.
  assert _plan(config, batch_size=32, num_devices=4).activations == (
      plan.activations)
  bf16 = _plan(mt5_config("tiny", vocab_size=4096, dtype="bfloat16"),
               batch_size=8)
  assert bf16.activations < plan.activations
  assert bf16.activations_by_kind["backward_peak"] == (
      plan.activations_by_kind["backward_peak"])


# What one tiny layer keeps without rematerialization at batch 8, 64 input
# and 16 target tokens, float32 (a = 4 bytes), dropout on: emb E = 64,
# heads x head_dim HD = 64, H = 4 heads, mlp F = 128.
_B, _LE, _LD, _E, _HD, _H, _F = 8, 64, 16, 64, 64, 4, 128
# Float32 and dropout: query, key, value, context and the context before
# the softmax's division per attention; the softmax's exponentials (4 bytes,
# no dtype copy) per score.
_ENCODER_KEEPS = (4 * _B * _LE * _E * 4 + 5 * _B * _LE * _HD * 4
                  + _B * _H * _LE * _LE * 4 + 3 * _B * _LE * _F * 4)
_DECODER_KEEPS = (6 * _B * _LD * _E * 4
                  + (8 * _B * _LD * _HD + 2 * _B * _LE * _HD) * 4
                  + _B * _H * (_LD * _LD + _LD * _LE) * 4
                  + 3 * _B * _LD * _F * 4)
_ENCODER_INPUT, _DECODER_INPUT = _B * _LE * _E * 4, _B * _LD * _E * 4
_SAVED_KINDS = ("residual", "attention_projections", "attention_scores",
                "mlp_hidden")


def _saved(plan):
  return sum(plan.activations_by_kind[k] for k in _SAVED_KINDS)


def test_full_remat_keeps_the_layer_inputs_and_recomputes_one_layer():
  none = _plan(mt5_config("tiny"))
  full = _plan(mt5_config("tiny", remat_policy="full"))
  assert (none.remat_policy, full.remat_policy) == ("none", "full")
  # Each of the 2 + 2 layers keeps only its input ...
  assert _saved(none) - _saved(full) == (
      2 * (_ENCODER_KEEPS - _ENCODER_INPUT)
      + 2 * (_DECODER_KEEPS - _DECODER_INPUT))
  for kind in ("attention_projections", "mlp_hidden"):
    assert full.activations_by_kind[kind] == 0
  # ... and the backward pass recomputes one encoder layer at a time: all it
  # keeps but its input, alive during its MLP block's backward (more than
  # the loss's 8 b Ld V = 0.5 MB or the attention's moment).
  assert full.activations_by_kind["backward_peak"] == (
      _ENCODER_KEEPS - _ENCODER_INPUT)
  assert none.activations_by_kind["backward_peak"] == max(
      8 * _B * _LD * 512, 4 * _B * _H * _LE * _LE)
  assert none.activations == 8_065_024 and full.activations == 3_084_288
  # Parameters, optimizer state and gradients do not change.
  assert (full.parameters, full.optimizer_state, full.gradients) == (
      none.parameters, none.optimizer_state, none.gradients)


def test_minimal_remat_also_keeps_query_key_value_and_the_mlp_inputs():
  full = _plan(mt5_config("tiny", remat_policy="full"))
  minimal = _plan(mt5_config("tiny", remat_policy="minimal"))
  none = _plan(mt5_config("tiny"))
  # Encoder: q, k, v (3 b Le HD) and wi_0, wi_1 (2 b Le F); decoder: its
  # self-attention's q, k, v and cross-attention's q at Ld, k and v at Le.
  projections = 2 * 3 * _B * _LE * _HD * 4 + 2 * (
      4 * _B * _LD * _HD + 2 * _B * _LE * _HD) * 4
  mlp = 2 * 2 * _B * _LE * _F * 4 + 2 * 2 * _B * _LD * _F * 4
  assert minimal.activations_by_kind["attention_projections"] == projections
  assert minimal.activations_by_kind["mlp_hidden"] == mlp
  assert _saved(minimal) - _saved(full) == projections + mlp
  assert full.activations < minimal.activations < none.activations
  with pytest.raises(errors.ConfigError, match="remat_policy='some'"):
    planner.activation_bytes(mt5_config("tiny"), per_device_batch=1,
                             inputs_length=8, targets_length=8,
                             remat_policy="some")


def test_fits_against_device_memory_with_headroom():
  config = mt5_config("tiny")
  plan = _plan(config)
  assert plan.fits is None
  gib = plan.total / planner.GIB
  assert _plan(config, device_memory_gib=gib / 0.9 * 1.01).fits
  assert not _plan(config, device_memory_gib=gib * 1.05).fits
  assert _plan(config, device_memory_gib=gib * 1.05, headroom=0.0).fits
  # The largest batch: the activations grow by activations_per_example.
  roomy = _plan(config, num_devices=2, device_memory_gib=gib * 2)
  largest = roomy.max_batch_size
  assert largest % 2 == 0 and largest > 8
  assert _plan(config, num_devices=2, batch_size=largest,
               device_memory_gib=gib * 2).fits
  assert not _plan(config, num_devices=2, batch_size=largest + 2,
                   device_memory_gib=gib * 2).fits


def test_update_temporaries_count_when_they_exceed_the_activations():
  # mT5-Small at batch 1: two float32 copies of the [250112, 512] embedding
  # (500 MiB) outweigh the activations of 8 + 2 tokens.
  small = _plan(mt5_config("small"), batch_size=1,
                task_feature_lengths={"inputs": 8, "targets": 2})
  assert small.update_temporaries == 2 * 250112 * 512 * 4
  assert small.update_temporaries > small.activations
  assert small.total == (small.parameters + small.optimizer_state
                         + small.gradients + small.update_temporaries)
  tiny = _plan(mt5_config("tiny"))
  assert tiny.update_temporaries < tiny.activations
  assert tiny.total == (tiny.parameters + tiny.optimizer_state
                        + tiny.gradients + tiny.activations)


def test_bad_partitions_and_batches_are_clear_errors():
  tiny = mt5_config("tiny")
  with pytest.raises(errors.ConfigError, match=r"num_partitions=3 .* must "
                     r"divide the number of devices \(4\)"):
    _plan(tiny, num_devices=4, num_partitions=3)
  # mT5-Small has 6 heads: 4 partitions cannot split them.
  with pytest.raises(errors.ConfigError,
                     match=r"num_partitions=4 .*'heads', size 6"):
    _plan(mt5_config("small"), num_devices=4, num_partitions=4)
  with pytest.raises(errors.ConfigError, match="batch_size=6 .*BATCH_SIZE"):
    _plan(tiny, batch_size=6, num_devices=4)
  with pytest.raises(errors.ConfigError, match="parameter_2d_sharding"):
    _plan(tiny, num_devices=3, parameter_2d_sharding=True, batch_size=3)
  with pytest.raises(errors.ConfigError, match="vocab_size"):
    _plan(mt5_config("tiny", vocab_size=None))


def _gin_files():
  return ["gin/models/mt5_small.gin", "gin/runs/finetune.gin"]


def test_plan_from_gin_reads_the_run_and_its_overrides():
  plan = planner.plan_from_gin(_gin_files(), ["BATCH_SIZE = 64"],
                               num_devices=8, device_memory_gib=80)
  assert plan.batch_size == 64 and plan.per_device_batch == 8
  assert plan.task_feature_lengths == {"inputs": 1024, "targets": 256}
  assert plan.num_partitions == 1
  assert plan.parameters == SMALL_PARAMS * 4
  assert plan.fits
  bigger = planner.plan_from_gin(
      _gin_files(), ["BATCH_SIZE = 128", "NUM_PARTITIONS = 2",
                     "ACTIVATION_DTYPE = 'bfloat16'"], num_devices=8)
  assert bigger.per_device_batch == 32 and bigger.num_partitions == 2
  assert bigger.model_config.dtype == "bfloat16"
  with pytest.raises(errors.ConfigError, match="vocab_size"):
    planner.plan_from_gin(["gin/models/mt5_tiny.gin", "gin/runs/finetune.gin"],
                          [], num_devices=1)


def test_a_required_macro_planning_reads_is_named():
  """MODEL_DIR (required, unread) may stay unset; BATCH_SIZE may not."""
  with pytest.raises(errors.ConfigError,
                     match=r"trainer.train.batch_size = %BATCH_SIZE, and the "
                     r"required macro BATCH_SIZE is not set: bind it "
                     r"\(--gin.BATCH_SIZE=...\)"):
    planner.plan_from_gin(_gin_files(), ["BATCH_SIZE = %gin.REQUIRED"],
                          num_devices=1)


def test_cli_prints_the_table(capsys, caplog):
  # An experiment file: includes (gin logs their search misses) and a
  # required MODEL_DIR that planning does not need.
  rc = cli.main(["plan", "--gin_file=gin/models/mt5_small.gin",
                 "--gin_file=gin/experiments/ko_to_en.gin",
                 "--gin.BATCH_SIZE=64", "--devices=8", "--device_memory=16"])
  out, err = capsys.readouterr()
  assert rc == 0, err
  assert "Path not found" not in err + caplog.text
  assert "300,176,768 parameters" in out
  for row in ("parameters", "optimizer state", "gradients", "activations",
              "total", "GiB per device", "GiB total (8)"):
    assert row in out
  assert "batch 64 (8 per replica)" in out
  assert "fits: yes (" in out and " of 16 GiB per device" in out
  assert "largest batch that fits: " in out

  rc = cli.main(["plan", "--gin_file", _gin_files()[0], "--gin_file",
                 _gin_files()[1], "--gin.NUM_PARTITIONS=3", "--devices=8"])
  err = capsys.readouterr().err
  assert rc == 2 and "korani plan: error: num_partitions=3" in err


def test_cli_reports_the_trainers_data_layout(capsys):
  """The layouts of tests/test_sharding.py, from `korani plan`."""
  rc = cli.main(["plan", "--gin_file=gin/models/mt5_base.gin",
                 "--gin_file=gin/runs/finetune.gin", "--gin.NUM_PARTITIONS=4",
                 "--gin.BATCH_SIZE=8", "--devices=8", "--devices_per_host=2"])
  out, err = capsys.readouterr()
  assert rc == 0, err
  assert ("data: 2 shards of 4 rows (batch 8, 2 replicas), 2 processes per "
          "shard\n  shard 0: processes 0, 1 (replicas 0)\n  shard 1: "
          "processes 2, 3 (replicas 1)\n") in out
  # The layout of the XXL files: NUM_PARTITIONS=8 on a TPU v4 slice of
  # 4x4x4 chips, 4 per host: JAX's mesh puts each model group on two hosts.
  plan = planner.plan_from_gin(
      ["gin/models/mt5_large.gin", "gin/runs/finetune.gin"],
      ["NUM_PARTITIONS = 8", "BATCH_SIZE = 256"], num_devices=64,
      devices=planner.planned_devices(64, tpu_topology="4x4x4"))
  assert len(plan.data_layouts) == 16
  assert {l.num_shards for l in plan.data_layouts} == {8}
  assert {len(l.processes) for l in plan.data_layouts} == {2}
  assert planner.format_data_layouts(plan.data_layouts)[0] == (
      "data: 8 shards of 32 rows (batch 256, 8 replicas), 2 processes per "
      "shard")
  rc = cli.main(["plan", "--gin_file", _gin_files()[0], "--gin_file",
                 _gin_files()[1], "--gin.NUM_PARTITIONS=3", "--devices=6",
                 "--devices_per_host=2"])
  err = capsys.readouterr().err
  assert rc == 2 and "replica 0 is held by processes 0 (replicas 0)" in err


def test_cli_argument_errors_import_nothing_heavy():
  code = (
      "import sys\n"
      "from t5x_runs import cli\n"
      "rc1 = cli.main(['plan', '--gin_file=gin/models/mt5_small.gin'])\n"
      "rc2 = cli.main(['plan', '--devices=2'])\n"
      "heavy = [m for m in ('jax', 'tensorflow', 'seqio', 'korani_tasks')\n"
      "         if m in sys.modules]\n"
      "print(rc1, rc2, heavy)\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120, check=True)
  assert result.stdout.strip() == "2 2 []", result.stderr
  assert "--devices" in result.stderr and "--gin_file" in result.stderr


@pytest.mark.slow
def test_production_xl_and_xxl_fit_a_tpu_v4_64_only_with_remat():
  for size, policy in (("xl", "minimal"), ("xxl", "full")):
    plan = planner.plan_from_gin([f"gin/ko_{size}.gin"], [], num_devices=32,
                                 device_memory_gib=32)
    assert plan.remat_policy == policy and plan.batch_size == 256
    assert plan.fits, planner.format_plan(plan)
    assert plan.max_batch_size >= 256
    without = planner.plan_from_gin([f"gin/ko_{size}.gin"],
                                    ["REMAT_POLICY = 'none'"], num_devices=32,
                                    device_memory_gib=32)
    assert without.remat_policy == "none"
    assert not without.fits and without.activations > 3 * plan.activations
  # XXL also needs its parameters' 'embed' split over the replicas.
  dense = planner.plan_from_gin(["gin/ko_xxl.gin"],
                                ["PARAMETER_2D_SHARDING = False"],
                                num_devices=32, device_memory_gib=32)
  assert dense.num_partitions == 8 and not dense.fits


@pytest.mark.slow
def test_planner_is_within_20_percent_of_the_compiled_tiny_step():
  # The demo's run (gin/demo.gin): tiny mT5, 4096-piece vocabulary, batch 24
  # of 384 + 8 tokens. XLA's figure for the compiled train step is a
  # deterministic number of its buffer assignment, not a timing.
  config = mt5_config("tiny", vocab_size=4096)
  lengths = {"inputs": 384, "targets": 8}
  compiled = planner.compile_train_step(config, batch_size=24,
                                        task_feature_lengths=lengths)
  measured = planner.compiled_peak_bytes(compiled)
  plan = _plan(config, batch_size=24, task_feature_lengths=lengths)
  assert abs(plan.total / measured - 1) <= 0.2, (plan.total, measured)
  # The donated parameters and optimizer state (but for a few scalars) are
  # written in place.
  stats = compiled.memory_analysis()
  assert stats.alias_size_in_bytes >= 0.99 * (plan.parameters
                                             + plan.optimizer_state)


def test_microbatches_count_one_microbatch_of_activations():
  tiny = mt5_config("tiny")
  whole = _plan(tiny, batch_size=16, num_devices=2)
  split = _plan(tiny, batch_size=16, num_devices=2, num_microbatches=4)
  quarter = _plan(tiny, batch_size=4, num_devices=2)
  assert split.microbatch_per_device == 2 == quarter.per_device_batch
  assert split.activations == quarter.activations
  # The accumulated gradients come on top of the microbatch's.
  assert split.gradients == 2 * whole.gradients
  assert split.activations < whole.activations and split.total < whole.total
  with pytest.raises(errors.ConfigError,
                     match=r"batch_size=12 .*num_microbatches=4 \(gin "
                           r"NUM_MICROBATCHES\) x the 2 data-parallel "
                           r"replicas = 8"):
    _plan(tiny, batch_size=12, num_devices=2, num_microbatches=4)


def test_plan_suggests_the_smallest_microbatch_count_that_fits():
  tiny = mt5_config("tiny")
  totals = {n: _plan(tiny, batch_size=16, num_microbatches=n).total
            for n in (1, 2, 4)}
  assert totals[1] > totals[2] > totals[4]
  # Room for 4 microbatches of 4, not for 2 of 8.
  gib = (totals[4] + totals[2]) / 2 / planner.GIB / 0.9
  plan = _plan(tiny, batch_size=16, device_memory_gib=gib)
  assert not plan.fits and plan.smallest_num_microbatches() == 4
  assert _plan(tiny, batch_size=16, num_microbatches=4,
               device_memory_gib=gib).fits
  text = planner.format_plan(plan)
  assert ("smallest NUM_MICROBATCHES that fits batch 16: 4 (4 sequences "
          "per replica at a time)") in text
  assert _plan(tiny, batch_size=16, device_memory_gib=gib * 1e-3
               ).smallest_num_microbatches() is None
  from_gin = planner.plan_from_gin(
      _gin_files(), ["BATCH_SIZE = 64", "NUM_MICROBATCHES = 4"],
      num_devices=8)
  assert from_gin.num_microbatches == 4 and from_gin.microbatch_per_device == 2
