"""The mT5 network and its configuration."""

from t5x_runs.models.config import PRESETS, MT5Config, mt5_config
from t5x_runs.models.mt5 import MT5, param_count

__all__ = ["MT5", "MT5Config", "PRESETS", "mt5_config", "param_count"]
