"""Which KORANI datasets of a mixture are absent, and a mixture without them.

A mixture whose datasets are partly absent from the data folders would fail
on the first absent one when its data is first read. `check` names every
absent dataset at once, before anything is read; with ``allow_absent`` it
registers the mixture of the tasks whose data is present instead and says
which datasets were left out (the trainer and the evaluator take it from
the gin macro ``ALLOW_ABSENT_DATASETS``; results.json records them)::

    name, left_out = availability.check("korani_heldout_release_score_eval",
                                        "validation", allow_absent=True)
    # ("korani_heldout_release_score_eval_present", ("document_qa", ...))

A raw dataset is present when the files of the split are under
``$KORANI_DATA_DIR``; a release dataset when its release folder has the
split's CSVs. Tasks of other datasets (P3) are not checked here.
"""

import logging

import seqio

from korani_tasks import errors
from korani_tasks import paths
from korani_tasks import readers
from korani_tasks import tasks as tasks_lib
from korani_tasks.readers import release_csv

_log = logging.getLogger(__name__)
PRESENT_SUFFIX = "_present"


def _absence(info: tasks_lib.TaskInfo, split: str) -> str | None:
  """Why the split of a task's dataset is absent, or None if it is there."""
  if info.source == "release":
    release = paths.release_dir(required=False)
    if release is None:
      return "no KORANI release folder"
    folder = release_csv.find_dataset_dir(release, info.dataset)
    if folder is None:
      return f"no folder {release}/<cluster>/{info.dataset}/"
    if split not in release_csv.split_files(folder):
      return f"{folder} has no CSV of split {split!r}"
    return None
  raw = readers.RAW_DATASETS.get(info.dataset)
  if raw is None:
    return None  # Not a KORANI raw dataset (P3): not checked here.
  data_dir = paths.data_dir(required=False)
  if split not in raw.split_files:
    return f"it has no split {split!r}"
  if data_dir is None or split not in raw.present_splits(data_dir):
    return ("missing " + ", ".join(str(p) for p in raw.paths(
        data_dir or f"${paths.DATA_DIR_ENV}", split) if not p.is_file()))
  return None


def absent_datasets(mixture_or_task_name: str,
                    split: str) -> dict[str, str]:
  """{dataset: why it is absent} over the KORANI tasks of a mixture or task."""
  absent = {}
  for task in seqio.get_subtasks(seqio.get_mixture_or_task(
      mixture_or_task_name)):
    try:
      info = tasks_lib.task_info(task.name)
    except KeyError:
      continue  # Not a KORANI task.
    if info.dataset not in absent:
      why = _absence(info, split)
      if why:
        absent[info.dataset] = why
  return absent


def check(mixture_or_task_name: str, split: str,
          allow_absent: bool = False) -> tuple[str, tuple[str, ...]]:
  """The mixture or task to use and the datasets left out of it.

  Returns ``(mixture_or_task_name, ())`` when every dataset is present.

  Raises:
    MissingDataError: some datasets are absent and `allow_absent` is False
      (the message names every one and why), or none is present.
  """
  absent = absent_datasets(mixture_or_task_name, split)
  if not absent:
    return mixture_or_task_name, ()
  listing = "\n".join(f"  {d}: {why}" for d, why in sorted(absent.items()))
  if not allow_absent:
    raise errors.MissingDataError(
        f"{mixture_or_task_name}: {len(absent)} dataset(s) have no "
        f"{split!r} data:\n{listing}\nPut their files in place (korani data "
        "list shows what is there), or build the mixture from the datasets "
        "present with ALLOW_ABSENT_DATASETS = True (--allow_absent_datasets).")
  mixture = seqio.get_mixture_or_task(mixture_or_task_name)
  kept = [t for t in seqio.get_subtasks(mixture)
          if _dataset(t.name) not in absent]
  if not kept:
    raise errors.MissingDataError(
        f"{mixture_or_task_name}: no dataset has {split!r} data:\n{listing}")
  name = mixture_or_task_name + PRESENT_SUFFIX
  rates = [(t.name, mixture.get_rate(t) if isinstance(mixture, seqio.Mixture)
            else 1.0) for t in kept]
  if name in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.remove(name)
  seqio.MixtureRegistry.add(name, rates)
  _log.warning("%s: leaving out %d absent dataset(s) (ALLOW_ABSENT_DATASETS):"
               "\n%s", mixture_or_task_name, len(absent), listing)
  return name, tuple(sorted(absent))


def _dataset(task_name: str) -> str | None:
  try:
    return tasks_lib.task_info(task_name).dataset
  except KeyError:
    return None
