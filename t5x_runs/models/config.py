"""Hyperparameters of the mT5 network and the published model sizes.

``mt5_config`` is the entry point for gin files::

    mt5_config.size = 'small'
    mt5_config.dropout_rate = 0.1
    mt5_config.remat_policy = 'full'
    mt5_config.scan_layers = True
"""

import dataclasses

_ACTIVATION_DTYPES = ("float32", "bfloat16", "float16")

# What the backward pass keeps of each encoder/decoder layer (t5x's names):
#   'none'     everything the gradients need (fastest, most memory);
#   'full'     only the layer's inputs: the layer is recomputed in the
#              backward pass (about one more forward pass of compute);
#   'minimal'  the layer's inputs and the outputs of its projections that
#              the backward pass needs (jax's dots_with_no_batch_dims_saveable:
#              query/key/value, wi_0/wi_1); norms, attention scores and
#              activations are recomputed.
REMAT_POLICIES = ("none", "full", "minimal")


@dataclasses.dataclass(frozen=True)
class MT5Config:
  """Shape and regularisation of an mT5 (T5.1.1) encoder-decoder.

  Field names follow t5x's ``T5Config``. ``dtype`` is the activation dtype,
  given as a string; parameters are always stored in float32.
  ``remat_policy`` is one of ``REMAT_POLICIES`` (rematerialization of the
  layers in the backward pass; it changes memory and time, never the
  parameters or the results). ``scan_layers`` runs each layer stack as one
  ``nn.scan`` over stacked parameters (t5x's ``scan_layers``): XLA compiles
  one layer instead of all of them; the parameter tree changes (see
  `t5x_runs.models.mt5`), the function does not.
  """

  vocab_size: int
  emb_dim: int
  num_heads: int
  head_dim: int
  mlp_dim: int
  num_encoder_layers: int
  num_decoder_layers: int
  dropout_rate: float
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  layer_norm_epsilon: float = 1e-6
  dtype: str = "float32"
  remat_policy: str = "none"
  scan_layers: bool = False

  def __post_init__(self):
    if self.dtype not in _ACTIVATION_DTYPES:
      raise ValueError(
          f"MT5Config.dtype={self.dtype!r} is not supported; "
          f"use one of: {', '.join(_ACTIVATION_DTYPES)}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(
          f"MT5Config.dropout_rate={self.dropout_rate!r} must be in [0, 1)")
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(
          f"MT5Config.remat_policy={self.remat_policy!r} is not supported; "
          f"use one of: {', '.join(REMAT_POLICIES)}")
    if not isinstance(self.scan_layers, bool):
      raise ValueError(
          f"MT5Config.scan_layers={self.scan_layers!r} must be True or False")


_MT5_VOCAB_SIZE = 250112


def _preset(emb_dim, num_heads, head_dim, mlp_dim, num_layers,
            vocab_size=_MT5_VOCAB_SIZE):
  return MT5Config(
      vocab_size=vocab_size,
      emb_dim=emb_dim,
      num_heads=num_heads,
      head_dim=head_dim,
      mlp_dim=mlp_dim,
      num_encoder_layers=num_layers,
      num_decoder_layers=num_layers,
      dropout_rate=0.1)


# Dimensions of the released mT5 checkpoints (Xue et al., 2021), plus a
# "tiny" network for tests on CPU (callers set its vocab_size to their own
# vocabulary's size).
#   name:           emb  heads head  mlp   layers
PRESETS = {
    "tiny": _preset(64, 4, 16, 128, 2, vocab_size=512),
    "small": _preset(512, 6, 64, 1024, 8),
    "base": _preset(768, 12, 64, 2048, 12),
    "large": _preset(1024, 16, 64, 2816, 24),
    "xl": _preset(2048, 32, 64, 5120, 24),
    "xxl": _preset(4096, 64, 64, 10240, 24),
}


def mt5_config(size: str, **overrides) -> MT5Config:
  """Returns the preset ``size`` with some fields replaced.

  Example: ``mt5_config('tiny', vocab_size=1000, dtype='bfloat16')`` or
  ``mt5_config('xl', remat_policy='full', scan_layers=True)``.

  Raises:
    ValueError: ``size`` is not a preset or an override is not a field.
  """
  if size not in PRESETS:
    raise ValueError(
        f"unknown mT5 size {size!r}; valid sizes: {', '.join(PRESETS)}")
  fields = [f.name for f in dataclasses.fields(MT5Config)]
  unknown = sorted(set(overrides) - set(fields))
  if unknown:
    raise ValueError(
        f"unknown MT5Config field(s) {', '.join(map(repr, unknown))}; "
        f"valid fields: {', '.join(fields)}")
  return dataclasses.replace(PRESETS[size], **overrides)
