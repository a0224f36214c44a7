"""KORANI SeqIO tasks: readers, templates and task definitions.

Importing this package registers one SeqIO task per (dataset, template
language, template) and its score-eval twin (see tasks.py); no data file is
read until a task's dataset is requested.
"""

from korani_tasks import tasks  # pylint: disable=unused-import
from korani_tasks import release_tasks  # pylint: disable=unused-import
from korani_tasks.p3 import tasks as p3_tasks  # pylint: disable=unused-import
from korani_tasks.tasks import task_info, task_name
