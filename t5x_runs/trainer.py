"""Fine-tuning loop: seqio batches -> jit-compiled Adafactor steps -> orbax.

`train` is the gin-configurable entry point (see gin/runs/finetune.gin). One
call trains from the latest checkpoint in ``model_dir`` (or from scratch) up
to ``num_train_steps``; running the same command again after an interruption
resumes where the last checkpoint left off, bit for bit: the data order is a
function of the seed alone, dropout's key at step s is ``fold_in(seed, s)``,
and every checkpoint holds each process's data iterator (shuffle buffers,
mixture sampling and packing state included; see `train_batches`), so a
resumed run reads exactly the batches the interrupted one would have read
next. A checkpoint without them (``checkpoint_data_iterator=False``, a state
over ``max_data_iterator_bytes``, or written by another number of processes)
holds the data position as its step, and resumes by skipping the batches
already consumed instead: as exact, but it reads them all again. A damaged
latest checkpoint is reported and the one before it used (checkpoints.py).
"""

import dataclasses
import json
import logging
import os
import time
from typing import Mapping

import flax.linen as nn
import gin
import jax
import numpy as np
import seqio
import tensorflow as tf
import tqdm
from clu import metric_writers
from jax.sharding import Mesh

from korani_tasks import availability
from korani_tasks import errors
from korani_tasks import protocol
from korani_tasks import vocab as vocab_lib
from t5x_runs import checkpoints
from t5x_runs import distributed
from t5x_runs import partitioning
from t5x_runs import train_step
from t5x_runs import results as results_lib
from t5x_runs.models import MT5, MT5Config
# The step itself lives in train_step.py (no TensorFlow, no seqio there);
# these names are the trainer's API as well.
from t5x_runs.train_step import (  # pylint: disable=unused-import
    ShardedTrainState, init_train_state, load_initial_params, make_train_step)

VOCAB_FILE = "vocab.model"
MODEL_CONFIG_FILE = "model_config.json"
_VOCAB_MULTIPLE = 128  # mT5 pads its 250,100 pieces to 250,112 = 128 * 1954.


def model_vocab_size(vocabulary_size: int) -> int:
  """Vocabulary size rounded up to a multiple of 128, as mT5 does."""
  return -(-vocabulary_size // _VOCAB_MULTIPLE) * _VOCAB_MULTIPLE


def resolve_model_config(config: MT5Config, vocabulary: seqio.Vocabulary
                         ) -> MT5Config:
  """Fills in vocab_size from the vocabulary and checks that it fits."""
  if config.vocab_size is None:
    return dataclasses.replace(
        config, vocab_size=model_vocab_size(vocabulary.vocab_size))
  if config.vocab_size < vocabulary.vocab_size:
    raise errors.ConfigError(
        f"mt5_config.vocab_size={config.vocab_size} is smaller than the "
        f"vocabulary ({vocabulary.vocab_size} pieces in "
        f"{getattr(vocabulary, 'sentencepiece_model_file', vocabulary)})")
  return config


# Registered here, as gin files bind it: trainer.make_optimizer.learning_rate.
make_optimizer = gin.external_configurable(
    train_step.make_optimizer, module="t5x_runs.trainer")


def train_batches(mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
                  batch_size: int, seed: int, start_step: int = 0,
                  pack: bool = True, shard_info: seqio.ShardInfo | None = None,
                  use_cached: bool = False) -> tf.data.Dataset:
  """Packed, batched, endlessly repeated training batches.

  The order is fixed by `seed`; `start_step` skips the batches a resumed run
  has already consumed (when its checkpoint holds no iterator position).

  An iterator of the dataset can be saved with ``tf.train.Checkpoint``
  (`checkpoints.DataIteratorHandler`): tf.data saves the position of the
  file readers, the shuffle buffers' contents, the mixture's sampling RNG,
  the packing buffers and the prefetched batches. The pipeline renders
  prompt templates in ``tf.py_function`` (korani_tasks.preprocessors),
  which tf.data refuses to save ("EagerPyFunc is stateful") unless told to
  ignore external state. Ignoring it is exact here: the rendering is a pure
  function of the record (the P3 skip counters only feed a log line), so
  nothing that decides the next batch lives outside the saved state;
  tests/test_resume.py checks the batches after a restore bit for bit.

  `use_cached` reads the tasks' offline cache (korani_tasks/caching.py)
  instead of rendering the templates here.
  """
  ds = seqio.get_dataset(
      mixture_or_task_name, task_feature_lengths=dict(task_feature_lengths),
      feature_converter=seqio.EncDecFeatureConverter(pack=pack),
      dataset_split="train", shuffle=True, num_epochs=None, seed=seed,
      shard_info=shard_info, use_cached=use_cached)
  ds = ds.batch(batch_size, drop_remainder=True)
  if start_step:
    ds = ds.skip(start_step)
  options = tf.data.Options()
  options.experimental_external_state_policy = (
      tf.data.experimental.ExternalStatePolicy.IGNORE)
  return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


class DataIterator:
  """Numpy batches of a tf.data pipeline; `tf_iterator` is what checkpoints save.

  ``next(it)`` gives a dict of numpy arrays, like ``as_numpy_iterator()``.
  """

  def __init__(self, dataset: tf.data.Dataset):
    self.tf_iterator = iter(dataset)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    return tf.nest.map_structure(lambda t: t.numpy(), next(self.tf_iterator))


@dataclasses.dataclass
class TrainResult:
  """What a call to `train` did (returned for scripts and tests)."""
  start_step: int
  final_step: int
  losses: list[tuple[int, float]]  # (step, loss) at every logged step
  model_config: MT5Config
  preempted: bool = False  # stopped by SIGTERM after saving final_step


def _check_microbatches(batch_size: int, mesh: Mesh,
                        num_microbatches: int = 1) -> None:
  """Each microbatch takes the same number of rows from every replica."""
  replicas = mesh.shape[partitioning.DATA_AXIS]
  if (not isinstance(num_microbatches, int) or num_microbatches < 1
      or batch_size % (num_microbatches * replicas)):
    raise errors.ConfigError(
        f"batch_size={batch_size} (gin BATCH_SIZE) must be divisible by "
        f"num_microbatches={num_microbatches} (gin NUM_MICROBATCHES) x the "
        f"{replicas} data-parallel replicas = "
        f"{num_microbatches * replicas}: each microbatch takes the same "
        "number of rows from every replica")


def run_vocabulary(model_dir: str, vocabulary: str | None = None
                   ) -> str | None:
  """`vocabulary` if given, else the run's vocab.model (None if it has none).

  Training, evaluation and batch eval tokenize inside
  `vocab.using_vocabulary(run_vocabulary(...))`: a resumed or evaluated run
  keeps the vocabulary it started with.
  """
  if vocabulary is not None:
    return vocabulary
  path = os.path.join(model_dir, VOCAB_FILE)
  return path if tf.io.gfile.exists(path) else None


def _keep_vocabulary(path: str, model_dir: str) -> None:
  """Process 0 copies the run's vocabulary file into the model dir once."""
  copy = os.path.join(model_dir, VOCAB_FILE)
  if distributed.is_primary() and not tf.io.gfile.exists(copy):
    tmp = copy + ".tmp"
    tf.io.gfile.copy(path, tmp, overwrite=True)
    tf.io.gfile.rename(tmp, copy, overwrite=True)


@gin.configurable(denylist=["progress"])
def train(*,
          model_dir: str = gin.REQUIRED,
          mixture_or_task_name: str = gin.REQUIRED,
          task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
          batch_size: int = gin.REQUIRED,
          num_train_steps: int = gin.REQUIRED,
          model_config: MT5Config = gin.REQUIRED,
          vocabulary: str | None = None,
          init_checkpoint: str | None = None,
          seed: int = 0,
          pack: bool = True,
          z_loss: float = 1e-4,
          num_partitions: int = 1,
          parameter_2d_sharding: bool = False,
          num_microbatches: int = 1,
          checkpoint_period: int = 1000,
          checkpoint_data_iterator: bool = True,
          max_data_iterator_bytes: int | None = 50 << 20,
          keep_checkpoints: int | None = 3,
          verify_checkpoint_hashes: bool = False,
          log_period: int = 10,
          use_cached: bool = False,
          inputs_eos: bool = True,
          allow_absent_datasets: bool = False,
          preemption_grace_seconds: float = 30.0,
          progress: bool = True) -> TrainResult:
  """Fine-tunes mT5 on a seqio mixture; see the module docstring.

  `batch_size` is global: split over the mesh's data-parallel replicas (and
  over the processes of a multi-host run, each reading its own shard of the
  data). `init_checkpoint` (a t5x or Hugging Face mT5 checkpoint) gives the
  starting parameters of a new run; a run that has checkpoints resumes from
  its latest one instead.

  `checkpoint_data_iterator` saves each process's data iterator in every
  checkpoint (resuming in O(1)) while its state is at most
  `max_data_iterator_bytes` (None: any size); its size is mostly the
  shuffle buffers, one per task (about 3 MB for one KoBEST task at
  1024/256, 76 MB for korani_kobest_train, hundreds of MB for korani_train:
  bench/RESULTS.md). Over the limit, or with False, a checkpoint saves only
  its step, and a resumed run skips the batches already read
  (`checkpoints.DataPositionSaver`).

  `num_microbatches` splits each step's batch into that many microbatches
  whose gradients are accumulated (`make_train_step`): the same update with
  the activations of one microbatch. `batch_size` must be divisible by it
  times the data-parallel replicas.

  `use_cached` trains from the tasks' offline cache (seqio's
  ``cache_tasks_main``; korani_tasks/caching.py) found in seqio's cache dirs
  (``--seqio_additional_cache_dirs``); it needs no raw data file.
  `inputs_eos` False feeds inputs without EOS, as T0 did
  (`korani_tasks.protocol`). `allow_absent_datasets` trains on the datasets
  of the mixture whose files are present and logs the others (False: an
  error naming every absent one; `korani_tasks.availability`).
  Checkpoints are written in the background while training goes on
  (checkpoints.py). `verify_checkpoint_hashes` checks every sha256 of the
  checkpoint a run resumes from, not only its files' sizes.

  SIGTERM stops the run after the next step that all processes reach, with
  a checkpoint of it (``TrainResult.preempted``); a process that cannot
  begin that checkpoint within `preemption_grace_seconds` exits without one
  (`distributed.PreemptionHandler`).
  """
  protocol.configure(inputs_eos=inputs_eos)
  left_out = ()
  if not use_cached:  # A cached task reads no raw file.
    mixture_or_task_name, left_out = availability.check(
        mixture_or_task_name, "train", allow_absent=allow_absent_datasets)
  if num_train_steps <= 0 or batch_size <= 0 or checkpoint_period <= 0:
    raise errors.ConfigError(
        "num_train_steps, batch_size and checkpoint_period must be positive "
        f"(got {num_train_steps}, {batch_size}, {checkpoint_period})")
  tf.io.gfile.makedirs(model_dir)
  # The run's vocabulary is the tasks' until train returns.
  with vocab_lib.using_vocabulary(
      run_vocabulary(model_dir, vocabulary)) as vocabulary_path:
    _keep_vocabulary(vocabulary_path, model_dir)
    vocabulary_obj = seqio.SentencePieceVocabulary(vocabulary_path)
    config = resolve_model_config(model_config, vocabulary_obj)
    _check_same_model(model_dir, config)

    mesh = partitioning.make_mesh(num_partitions)
    layout = partitioning.data_layout(mesh.devices, batch_size)
    _check_microbatches(batch_size, mesh, num_microbatches)
    lengths = dict(task_feature_lengths)
    distributed.check_same_settings({
        "mixture_or_task_name": mixture_or_task_name,
        "task_feature_lengths": lengths, "batch_size": batch_size,
        "num_train_steps": num_train_steps, "seed": seed, "pack": pack,
        "num_partitions": num_partitions, "num_microbatches": num_microbatches,
        "use_cached": use_cached, "model_config": config})
    logging.info("Data layout: %s", layout.describe())
    rules = partitioning.standard_logical_axis_rules(parameter_2d_sharding)
    model = MT5(config)
    optimizer = make_optimizer()
    store = checkpoints.CheckpointStore(
        model_dir, max_to_keep=keep_checkpoints,
        verify_hashes=verify_checkpoint_hashes)
    state = init_train_state(
        model, optimizer, mesh, rules, lengths, seed,
        init_checkpoint=None if store.all_steps() else init_checkpoint)
    params, opt_state = state.params, state.opt_state

    def batches(skip: int = 0) -> DataIterator:
      return DataIterator(train_batches(
          mixture_or_task_name, lengths, layout.host_batch_size, seed,
          start_step=skip, pack=pack, shard_info=layout.shard_info(),
          use_cached=use_cached))

    # From here on (data pipeline, restore, compilation, steps) SIGTERM stops
    # the run after the next step all processes reach.
    preemption = distributed.PreemptionHandler(preemption_grace_seconds).start()
    data = batches()
    result_losses, start_step = [], 0
    try:
      with mesh, nn.logical_axis_rules(rules):
        store.data_layout = {
            "batch_size": batch_size,
            "data_shards": [
                partitioning.data_layout(mesh.devices, batch_size, p).shard_id
                for p in range(jax.process_count())]}
        resumed = store.restore_latest(checkpoints.abstract_like(params),
                                       checkpoints.abstract_like(opt_state),
                                       data_iterator=data.tf_iterator)
        if resumed is not None:
          start_step = resumed.step
          params, opt_state = resumed.params, resumed.opt_state
          if not resumed.data_restored:
            data = batches(skip=start_step)
          logging.info(
              "Resuming from checkpoint %d in %s (data: %s)", start_step,
              model_dir, "its saved iterator position" if resumed.data_restored
              else f"skipping the {start_step} batches read before")
        if start_step >= num_train_steps:
          logging.info("Checkpoint %d already reaches num_train_steps=%d",
                       start_step, num_train_steps)
          return TrainResult(start_step, start_step, [], config)

        step_fn = state.compile_step(model, optimizer, z_loss, num_microbatches)
        metadata = {
            **results_lib.run_settings([mixture_or_task_name]),
            "model_config": dataclasses.asdict(config),
            "mixture_or_task_name": mixture_or_task_name,
            "task_feature_lengths": lengths, "batch_size": batch_size,
            "seed": seed, "vocabulary": os.path.join(model_dir, VOCAB_FILE),
            "init_checkpoint": init_checkpoint,
            "process_count": jax.process_count(),
            "data_layout": store.data_layout,
            "inputs_eos": inputs_eos, "left_out_datasets": list(left_out),
        }
        if distributed.is_primary():
          _write_run_files(model_dir, config)
        writer = metric_writers.create_default_writer(
            os.path.join(model_dir, "train"),
            just_logging=not distributed.is_primary())
        loop = _TrainLoop(step_fn, mesh, layout, seed, writer, log_period,
                          progress and distributed.is_primary(), start_step,
                          num_train_steps)
        steps = loop.run(params, opt_state, data)
        data_saver = checkpoints.DataPositionSaver(max_data_iterator_bytes)
        final_step, preempted = num_train_steps, False
        try:
          for step, params, opt_state, logged in steps:
            if logged is not None:
              result_losses.append((step, logged))
            preempted = preemption.should_stop(step)
            if (step % checkpoint_period == 0 or step == num_train_steps
                or preempted):
              store.save(step, params, opt_state, metadata,
                         data_iterator=(
                             data_saver.iterator_to_save(data.tf_iterator)
                             if checkpoint_data_iterator else None),
                         wait=step == num_train_steps or preempted)
            if preempted:
              final_step = step
              break
        except BaseException as e:
          distributed.fail_fast(e)  # several processes: stop them all, now
          raise
        finally:
          steps.close()
          writer.flush()
          writer.close()
    finally:
      preemption.close()
      store.close()
      # Free the tf.data iterator (and its Python-function workers) now, not
      # at interpreter exit, where TF can deadlock waiting for them.
      del data
    return TrainResult(start_step, final_step, result_losses, config, preempted)


class _TrainLoop:
  """Runs steps, logging loss and tokens/s to TensorBoard, console and a bar."""

  def __init__(self, step_fn, mesh, layout, seed, writer, log_period,
               progress, start_step, num_train_steps):
    self.step_fn = step_fn
    self.batch_sharding = partitioning.batch_sharding(mesh)
    self.layout = layout
    self.base_rng = jax.random.PRNGKey(seed)
    self.writer = writer
    self.log_period = log_period
    self.progress = progress
    self.start_step = start_step
    self.num_train_steps = num_train_steps

  def run(self, params, opt_state, batches):
    """Yields (step, params, opt_state, loss or None) after every step.

    `batches` yields each step's host batch (numpy); the caller owns it (and
    saves its position with the checkpoints).
    """
    bar = tqdm.tqdm(total=self.num_train_steps, initial=self.start_step,
                    desc="train", unit="step", disable=not self.progress,
                    dynamic_ncols=True)
    pending, tokens, real_tokens = [], 0, 0
    shards = self.layout.num_shards  # every shard has as many tokens
    tick = time.perf_counter()
    try:
      for step in range(self.start_step + 1, self.num_train_steps + 1):
        batch = next(batches)
        tokens += shards * sum(batch[k].size for k in
                                  ("encoder_input_tokens", "decoder_target_tokens"))
        real_tokens += shards * int((batch["encoder_input_tokens"] > 0).sum()
                                       + batch["decoder_loss_weights"].sum())
        batch = distributed.global_batch(batch, self.batch_sharding,
                                         self.layout)
        rng = jax.random.fold_in(self.base_rng, step)
        params, opt_state, metrics = self.step_fn(params, opt_state, batch,
                                                  rng)
        pending.append(metrics)
        bar.update(1)
        logged = None
        if step % self.log_period == 0 or step == self.num_train_steps:
          summary = {k: float(np.mean([distributed.fetch(m[k]) for m in pending]))
                     for k in pending[0]}
          elapsed = time.perf_counter() - tick
          summary["tokens_per_second"] = tokens / elapsed
          summary["real_tokens_per_second"] = real_tokens / elapsed
          summary["steps_per_second"] = len(pending) / elapsed
          self.writer.write_scalars(step, summary)
          bar.set_postfix(loss=f"{summary['loss']:.3f}",
                          tok_s=f"{summary['tokens_per_second']:.0f}")
          if not self.progress:
            logging.info("step %d/%d loss %.4f %.0f tokens/s", step,
                         self.num_train_steps, summary["loss"],
                         summary["tokens_per_second"])
          logged = summary["loss"]
          pending, tokens, real_tokens = [], 0, 0
          tick = time.perf_counter()
        yield step, params, opt_state, logged
    finally:
      bar.close()


_RESUMABLE_ACROSS = ("remat_policy",)


def _check_same_model(model_dir: str, config: MT5Config) -> None:
  """Refuses to resume a run with a different model configuration."""
  path = os.path.join(model_dir, MODEL_CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    return
  with tf.io.gfile.GFile(path) as f:
    saved = json.load(f)
  current = dataclasses.asdict(config)
  # A field added since the run started has its default there.
  saved = {**{f.name: f.default for f in dataclasses.fields(MT5Config)
              if f.default is not dataclasses.MISSING}, **saved}
  # How activations are kept for the backward pass changes neither the
  # parameters nor the results: a run may resume with another policy.
  diff = {k: (saved.get(k), current.get(k)) for k in current
          if k not in _RESUMABLE_ACROSS and saved.get(k) != current.get(k)}
  if diff:
    raise errors.ConfigError(
        f"{model_dir} holds a run with a different model configuration "
        f"(field: (saved, now)): {diff}; use a new MODEL_DIR")


def _write_run_files(model_dir: str, config: MT5Config) -> None:
  """Writes model_config.json and the operative gin config, atomically."""
  files = {MODEL_CONFIG_FILE: json.dumps(dataclasses.asdict(config), indent=2),
           "config.gin": gin.operative_config_str()}
  for name, text in files.items():
    path = os.path.join(model_dir, name)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
      f.write(text)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def load_model_config(model_dir: str) -> MT5Config:
  """The model configuration a training run saved in its model dir."""
  path = os.path.join(model_dir, MODEL_CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise errors.MissingDataError(
        f"{path} not found: {model_dir} is not a model dir written by "
        "t5x_runs.train (bind eval.model_config in gin instead)")
  with tf.io.gfile.GFile(path) as f:
    return MT5Config(**json.load(f))

