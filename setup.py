"""t5lab: a JAX/Flax text-to-text pretraining lab."""

from setuptools import find_packages, setup

setup(
    name="t5lab",
    version="0.1.0",
    license="Apache-2.0",
    description="JAX/Flax text-to-text pretraining lab: SeqIO tasks, a gin-configured T5 trainer.",
    python_requires=">=3.10",
    packages=find_packages(include=["t5lab", "t5lab.*", "tasks", "tasks.*"]),
    package_data={
        "t5lab.assets": [
            "*.jsonl.gz",
            "*.model",
            "README.md",
            "downstream/*.jsonl.gz",
            "downstream/README.md",
        ]
    },
    install_requires=[
        "jax>=0.6,<0.11",
        "jaxlib>=0.6,<0.11",
        "flax>=0.10,<0.13",
        "optax>=0.2.4,<0.3",
        "orbax-checkpoint>=0.11,<0.13",
        "seqio>=0.0.19,<0.1",
        "tensorflow>=2.16,<2.22",
        "tensorflow-datasets>=4.9.6,<5",
        "gin-config>=0.5,<0.6",
        "sentencepiece>=0.2,<0.3",
        "importlib_resources>=6",
        "numpy>=1.26",
        "rich>=13",
        "tensorboardX>=2.6",
        # metrics and reports (T5's metric set; tables and plots of experiments)
        "sacrebleu>=2.3",
        "rouge-score>=0.1.2",
        "scikit-learn>=1.3",
        "scipy>=1.11",
        "matplotlib>=3.7",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6"],
        # Hugging Face interop (t5lab.convert): the CPU torch 2.13.0 wheel is the cheap one.
        "hf": ["transformers>=4.44", "safetensors>=0.4", "torch>=2.4"],
    },
    entry_points={"console_scripts": ["t5lab=t5lab.cli:main"]},
)
