"""The project's errors, as the data pipelines raise them.

They are defined in `t5x_runs.errors`, which imports nothing, so that the
training step (t5x_runs/train_step.py) can raise them on a machine without
TensorFlow or seqio; importing them from here gives the same classes.
"""

# pylint: disable=unused-import
from t5x_runs.errors import ConfigError
from t5x_runs.errors import DataFormatError
from t5x_runs.errors import KoraniError
from t5x_runs.errors import MissingDataError
