"""Per-run protocol switches that change how tasks build their examples.

Numbers are only comparable under the same protocol, so the choices that
differ between the protocols users compare against are explicit switches,
set for a run by the trainer and the evaluator (gin macros ``INPUTS_EOS``
and ``UNSCORABLE_ROWS``, gin/README.md) before they build datasets::

    protocol.configure(inputs_eos=False)   # T0: inputs are fed without EOS
    protocol.configure(unscorable_rows="exclude")

- ``inputs_eos``: whether tokenized inputs end with EOS. True (default) is
  seqio's and the official KORANI code's (its Hugging Face tokenizer appends
  ``</s>``); T0 fed its inputs without EOS (t-zero's seqio tasks,
  ``add_eos=False`` for inputs). Targets always end with EOS.
- ``unscorable_rows``: what a release score eval does with a row whose answer
  is not among its choices. ``"score"`` (default) scores it as the official
  KORANI code does: no choice is correct, so the row counts as wrong.
  ``"exclude"`` leaves it out. Results record the choice and the count per
  task.
"""

import dataclasses

from korani_tasks import errors

UNSCORABLE_POLICIES = ("score", "exclude")


@dataclasses.dataclass(frozen=True)
class Protocol:
  inputs_eos: bool = True
  unscorable_rows: str = "score"


_current = Protocol()


def current() -> Protocol:
  """The protocol datasets are built with now."""
  return _current


def configure(*, inputs_eos: bool | None = None,
              unscorable_rows: str | None = None) -> Protocol:
  """Sets the given switches (None keeps one); returns the previous protocol.

  Raises:
    ConfigError: an unknown `unscorable_rows` policy.
  """
  global _current
  previous = _current
  if unscorable_rows is not None and unscorable_rows not in (
      UNSCORABLE_POLICIES):
    raise errors.ConfigError(
        f"UNSCORABLE_ROWS={unscorable_rows!r} is not one of "
        f"{UNSCORABLE_POLICIES}")
  changes = {k: v for k, v in (("inputs_eos", inputs_eos),
                               ("unscorable_rows", unscorable_rows))
             if v is not None}
  _current = dataclasses.replace(_current, **changes)
  return previous
