"""KORANI: cross-lingual instruction tuning of mT5 on JAX (Han et al., 2024)."""

import setuptools

INSTALL_REQUIRES = [
    # Data pipelines.
    "seqio==0.0.20",
    "tensorflow>=2.21,<2.22",
    "tensorflow-text>=2.21,<2.22",
    "tensorflow-datasets>=4.9.10",
    # tfds 4.9.10 imports it without declaring it (tensorflow/datasets#11212).
    "importlib_resources",
    "sentencepiece>=0.2",
    "jinja2>=3.1",
    "pyyaml>=6.0",
    # Hugging Face-style local P3 data (.parquet/.arrow; korani_tasks/p3/hf_folder.py).
    "pyarrow",
    # Model and training.
    "jax>=0.10.2,<0.11",
    "flax>=0.12.8,<0.13",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8,<0.13",
    "gin-config>=0.5",
    "clu>=0.0.12",
    "tensorboard>=2.20",
    # Checkpoint exchange: t5x checkpoints (TensorStore arrays, local or
    # gs://) and Hugging Face safetensors, both read and written with numpy.
    "tensorstore>=0.1.70",
    "safetensors>=0.4",
    # Reporting (`korani report` draws its bar charts with matplotlib's Agg).
    "numpy",
    "tqdm",
    "matplotlib>=3.7",
    # ROUGE-L of generation tasks, on Korean morphemes (korani_tasks/rouge.py).
    "rouge-score>=0.1.2",
    "kiwipiepy>=0.24",
]

setuptools.setup(
    name="korani",
    version="0.1.0",
    description=(
        "Cross-lingual zero-shot instruction tuning of mT5 on KORANI and P3, "
        "with SeqIO tasks, gin configs and a JAX trainer."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(
        include=["korani_tasks*", "mixtures*", "t5x_runs*"]) + ["korani_gin"],
    # The gin files, installed as the data package korani_gin (found by
    # t5x_runs.gin_utils through importlib.resources); gin/ stays where it is.
    package_dir={"korani_gin": "gin"},
    package_data={
        "korani_gin": ["*.gin", "*/*.gin", "*/*/*.gin", "*.md", "*/*.md"],
        "korani_tasks": ["catalog.yaml", "heldout.yaml", "templates/*.yaml",
                         "p3/catalog.yaml", "p3/templates_ko/*.yaml"],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # transformers + PyTorch (CPU build) check the Hugging Face round
        # trip; torch is pinned to the CPU wheel this environment carries.
        # hypothesis: the fuzz tests of templates and readers; pytest-xdist:
        # `make test` runs the test files on TEST_WORKERS processes.
        "test": ["pytest>=8", "pytest-timeout", "pytest-xdist>=3",
                 "transformers>=4.40", "torch==2.13.0", "hypothesis>=6.100"],
        # Reading PyTorch state dicts (pytorch_model.bin) of HF checkpoints.
        "hf": ["torch", "transformers>=4.40"],
        # seqio's offline cache job (seqio.scripts.cache_tasks_main) on Apache
        # Beam; [tfrecord] brings crcmod for the TFRecord sink. Beam 2.77
        # needs protobuf<7 (and pyarrow<26), and sentencepiece 0.2.3's
        # generated code refuses a protobuf 6 runtime (VersionError: gencode
        # 7.36.1, runtime 6.33.x); 0.2.2's works with protobuf 6 and 7.
        "cache": ["apache-beam[tfrecord]>=2.77,<3",
                  "sentencepiece>=0.2,<0.2.3"],
    },
    entry_points={
        "console_scripts": ["korani=t5x_runs.cli:main"],
    },
    license="Apache-2.0",
)
