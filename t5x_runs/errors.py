"""Errors raised for bad input data and configuration.

Every error names where the problem is (file and line, or the setting), so
that a person can fix the input without reading the code. This module
imports nothing, so every part of the project raises these classes, the
TensorFlow-free training step included (`korani_tasks.errors` re-exports
them).
"""


class KoraniError(Exception):
  """Base class of the project's errors."""


class DataFormatError(KoraniError, ValueError):
  """A data file does not have the format its reader expects.

  Example message::

      /data/kobest/BoolQ/dev.tsv:17: unknown label 'maybe' in column 'Answer'
      (expected one of: true, false)
  """

  def __init__(self, path, line, message):
    self.path = str(path)
    self.line = line
    location = self.path if line is None else f"{self.path}:{line}"
    super().__init__(f"{location}: {message}")


class MissingDataError(KoraniError, FileNotFoundError):
  """A data folder or file that a task needs is not there."""


class ConfigError(KoraniError, ValueError):
  """A setting (gin binding, flag, template file) has a wrong value."""
