"""Readers of the canonical KORANI source files, one module per source family.

Importing this package imports every reader module, each of which registers
its datasets: ``RAW_DATASETS`` maps each dataset key to its `RawDataset`
(files, reader, record features); see `korani_tasks.readers.base`.
"""

from korani_tasks.readers import base
from korani_tasks.readers import kobest  # pylint: disable=unused-import

RAW_DATASETS = base.RAW_DATASETS
