"""SeqIO mixtures of KORANI and P3 tasks: the paper's experiment grid.

Importing this package registers every mixture (and, through korani_tasks,
every task)::

    import mixtures
    seqio.get_mixture_or_task("korani_train_t0")
"""

from mixtures import korani  # pylint: disable=unused-import
from mixtures import kobest  # pylint: disable=unused-import
from mixtures import p3  # pylint: disable=unused-import
from mixtures import grid  # pylint: disable=unused-import
