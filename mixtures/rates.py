"""T0-style mixing rates: examples per dataset, capped, shared by templates.

T0 (Sanh et al., 2022) samples each dataset in proportion to its number of
training examples, capped at 500,000, and splits a dataset's share evenly over
its templates. A task (one dataset, one template) therefore gets

    rate = min(num_train_examples, 500_000 / num_templates_of_the_dataset)

e.g. KoBEST BoolQ (3,665 train examples, 10 templates) gets 3,665 per
template; a 2M-example dataset with 10 templates gets 50,000 per template.
The number of examples is read when the mixture is first sampled (seqio calls
the rate with the task), not at import.
"""

import dataclasses

import seqio

MAXIMUM_EXAMPLES = 500_000


@dataclasses.dataclass(frozen=True)
class CappedRate:
  """A seqio mixing rate: ``min(train examples, maximum / num_templates)``."""

  num_templates: int
  maximum: int = MAXIMUM_EXAMPLES
  split: str = "train"

  def __post_init__(self):
    if self.num_templates < 1:
      raise ValueError(f"num_templates must be >= 1, got {self.num_templates}")

  @property
  def cap(self) -> float:
    return self.maximum / self.num_templates

  def __call__(self, task: seqio.Task) -> float:
    return float(min(task.num_input_examples(self.split), self.cap))
