"""Everything gin files can bind, registered in one place.

Importing this module registers the gin-decorated trainer and evaluator and
the external functions gin files use (as t5x registers optax and network
classes)::

    models.mt5_config.size = 'small'       # t5x_runs.models.mt5_config
    VOCABULARY = @trained_vocabulary()     # korani_tasks.text.trained_vocabulary
    trainer.train.num_train_steps = 1000   # t5x_runs.trainer.train
"""

import gin

from korani_tasks import text
from t5x_runs import evaluator  # pylint: disable=unused-import
from t5x_runs import models
from t5x_runs import trainer  # pylint: disable=unused-import

gin.external_configurable(models.mt5_config, module="t5x_runs.models")
gin.external_configurable(text.trained_vocabulary, module="korani_tasks.text")
