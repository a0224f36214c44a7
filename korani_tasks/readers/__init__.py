"""Readers of the canonical KORANI source files, one module per source family.

Importing this package imports every reader module in it (``kobest``,
``hate_speech``, ``klue``, ...), each of which registers its datasets:
``RAW_DATASETS`` maps each dataset key to its `RawDataset` (files, reader,
record features); see `korani_tasks.readers.base`.
"""

import importlib
import pkgutil

from korani_tasks.readers import base

_HELPER_MODULES = ("base", "splits", "tsv")

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
  if _module not in _HELPER_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

RAW_DATASETS = base.RAW_DATASETS
