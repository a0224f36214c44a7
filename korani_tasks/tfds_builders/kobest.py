"""TFDS builders for the five KoBEST benchmarks, read from their TSV files.

Builders: ``kobest_boolq``, ``kobest_copa``, ``kobest_hellaswag``,
``kobest_sentineg``, ``kobest_wic`` (version 1.0.0), each with the splits
train, validation (KoBEST's dev.tsv) and test. Records are those of
`korani_tasks.readers.kobest`; ``label`` is a `tfds.features.ClassLabel`.

The files are not downloaded: the builders read them from the manual dir, which
is ``$KORANI_DATA_DIR`` (the folder that contains ``kobest/``)::

    builder = tfds.builder("kobest_copa", data_dir="/tmp/tfds")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.environ["KORANI_DATA_DIR"], try_download_gcs=False))

`korani_tasks.sources.KoraniTfdsSource` does this on first use. The sha256 of
each source file is kept in the prepared dataset's metadata, so that a copy
prepared from other files can be detected (`source_checksums` against
`prepared_source_checksums`).
"""

from collections.abc import Mapping
import hashlib
import os
import pathlib
from typing import Any, ClassVar

import tensorflow as tf
import tensorflow_datasets as tfds

from korani_tasks import errors
from korani_tasks import paths
from korani_tasks.readers import kobest

_HOMEPAGE = "https://github.com/SKT-LSL/KoBEST_datarepo"
_LICENSE = "CC-BY-SA-4.0"
_CITATION = """\
@inproceedings{kim-etal-2022-kobest,
  title = {{KoBEST}: Korean Balanced Evaluation of Significant Tasks},
  author = {Kim, Dohyeong and Jang, Myeongjun and Kwon, Deuk Sin and
            Davis, Eric},
  booktitle = {Proceedings of the 29th International Conference on
               Computational Linguistics},
  year = {2022},
  url = {https://arxiv.org/abs/2204.04541},
}"""

# Key of `DatasetInfo.metadata` that maps each source file (relative to the
# manual dir) to its sha256 at preparation time.
_SOURCE_SHA256 = "source_sha256"


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


class KobestBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the KoBEST builders; a subclass names its dataset and features."""

  DATASET: ClassVar[kobest.KobestDataset]
  # Features of the record other than "label".
  FEATURES: ClassVar[Mapping[str, Any]]

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "KoBEST_datarepo v1.0 TSV files."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download the KoBEST v1.0 files from {_HOMEPAGE} (folder v1.0) and
place them, unmodified, as

    $KORANI_DATA_DIR/kobest/BoolQ/{{train,dev,test}}.tsv
    $KORANI_DATA_DIR/kobest/COPA/{{train,dev,test}}.tsv
    $KORANI_DATA_DIR/kobest/HellaSwag/{{train,dev,test}}.tsv
    $KORANI_DATA_DIR/kobest/SentiNeg/{{train,dev,test}}.tsv
    $KORANI_DATA_DIR/kobest/WiC/{{train,dev,test}}.tsv

then pass manual_dir=$KORANI_DATA_DIR (korani_tasks.sources.KoraniTfdsSource
does this for you)."""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            **self.FEATURES,
            "label": tfds.features.ClassLabel(
                names=list(self.DATASET.label_names)),
        }),
        homepage=_HOMEPAGE,
        citation=_CITATION,
        license=_LICENSE,
        metadata=tfds.core.MetadataDict(),
    )

  @classmethod
  def source_files(
      cls, manual_dir: os.PathLike | str) -> dict[str, pathlib.Path]:
    """The source file of each split, by split name.

    Raises:
      MissingDataError: a file is not there; the message names it.
    """
    files = {split: cls.DATASET.path(manual_dir, split)
             for split in cls.DATASET.split_files}
    for path in files.values():
      if not path.is_file():
        raise errors.MissingDataError(
            f"{path} is missing (needed by {cls.name}).\n"
            + paths.MISSING_DATA_HELP.format(env=paths.DATA_DIR_ENV))
    return files

  @classmethod
  def source_checksums(cls, manual_dir: os.PathLike | str) -> dict[str, str]:
    """The sha256 of each source file, by path relative to `manual_dir`.

    Example: ``{"kobest/COPA/dev.tsv": "3f2a...", ...}``.

    Raises:
      MissingDataError: a file is not there; the message names it.
    """
    return {
        path.relative_to(manual_dir).as_posix(): _sha256(path)
        for path in cls.source_files(manual_dir).values()
    }

  def prepared_source_checksums(self) -> dict[str, str]:
    """`source_checksums` as recorded when this copy was prepared, or {}."""
    return dict(self.info.metadata.get(_SOURCE_SHA256, {}))

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = pathlib.Path(dl_manager.manual_dir)
    self.info.metadata[_SOURCE_SHA256] = self.source_checksums(manual_dir)
    return {split: self._generate_examples(path)
            for split, path in self.source_files(manual_dir).items()}

  def _generate_examples(self, path: pathlib.Path):
    yield from self.DATASET.reader(path)


class KobestBoolq(KobestBuilder):
  """KoBEST BoolQ: does the paragraph answer the yes/no question with yes?"""

  DATASET = kobest.KOBEST_DATASETS["kobest_boolq"]
  FEATURES = {"idx": tf.int32, "paragraph": tf.string, "question": tf.string}


class KobestCopa(KobestBuilder):
  """KoBEST COPA: which alternative is the cause (원인) or effect (결과)?"""

  DATASET = kobest.KOBEST_DATASETS["kobest_copa"]
  FEATURES = {
      "idx": tf.int32,
      "premise": tf.string,
      "question": tf.string,
      "alternative_1": tf.string,
      "alternative_2": tf.string,
  }


class KobestHellaswag(KobestBuilder):
  """KoBEST HellaSwag: which of four endings continues the context?"""

  DATASET = kobest.KOBEST_DATASETS["kobest_hellaswag"]
  FEATURES = {
      "idx": tf.int32,
      "context": tf.string,
      "ending_1": tf.string,
      "ending_2": tf.string,
      "ending_3": tf.string,
      "ending_4": tf.string,
  }


class KobestSentineg(KobestBuilder):
  """KoBEST SentiNeg: sentiment (negative/positive) of review sentences.

  The test split holds negated sentences; its original sentence, label and
  negation category are kept (train and validation: '', -1, -1).
  """

  DATASET = kobest.KOBEST_DATASETS["kobest_sentineg"]
  FEATURES = {
      "idx": tf.int32,
      "sentence": tf.string,
      "original_sentence": tf.string,
      "original_label": tf.int32,
      "negation_category": tf.int32,
  }


class KobestWic(KobestBuilder):
  """KoBEST WiC: is the [bracketed] word used in the same sense in both?"""

  DATASET = kobest.KOBEST_DATASETS["kobest_wic"]
  FEATURES = {
      "idx": tf.int32,
      "word": tf.string,
      "context_1": tf.string,
      "context_2": tf.string,
  }
