"""Converted parameters as t5lab checkpoints, and trained checkpoints out to Hugging Face.

A converted checkpoint is a directory with `params/` (orbax) and `model.gin` (the T5Config
bindings it needs), so fine-tuning it is `--gin_file=DIR/model.gin` plus
`--gin.train.initial_checkpoint=DIR`.
"""

import dataclasses
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorflow as tf

from t5lab.convert.hf import load_hf_checkpoint, save_hf_checkpoint
from t5lab.errors import UserError
from t5lab.models.config import T5Config
from t5lab.train import fs
from t5lab.train.checkpoints import restore_run_params


def model_gin(config: T5Config) -> str:
    """Gin bindings that rebuild `config` (what `t5lab train` needs to use the params)."""
    lines = ["# Written by `t5lab convert`: the architecture of the converted parameters."]
    for field in dataclasses.fields(config):
        lines.append(f"T5Config.{field.name} = {getattr(config, field.name)!r}")
    return "\n".join(lines) + "\n"


def save_params(*, params: Any, config: T5Config, out_dir: str) -> None:
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(os.path.join(out_dir, "params")):
        raise UserError(f"{out_dir}/params exists already: choose a new --out directory")
    os.makedirs(out_dir, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.join(out_dir, "params"), jax.tree.map(np.asarray, params))
    with open(os.path.join(out_dir, "model.gin"), "w") as handle:
        handle.write(model_gin(config))


def load_params(*, path: str) -> Any:
    """Params saved by `save_params` (a converted checkpoint directory)."""
    directory = os.path.join(fs.absolute(path), "params")  # may be gs://...
    if not tf.io.gfile.isdir(directory):
        raise UserError(f"no converted parameters at {path!r} (expected {directory})")
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(directory)


def import_hf(*, source: str, out_dir: str) -> T5Config:
    config, params = load_hf_checkpoint(path=source)
    save_params(params=params, config=config, out_dir=out_dir)
    return config


def export_hf(
    *,
    model_dir: str,
    model_config: T5Config,
    vocabulary_size: int,
    out_dir: str,
    checkpoint_step: int | None = None,
    spm_path: str | None = None,
) -> int:
    """Write the latest (or a given) checkpoint of a run as a Hugging Face T5 directory."""
    from t5lab.train.trainer import resolve_model_config

    config = resolve_model_config(model_config, vocabulary_size=vocabulary_size)
    params, step = restore_run_params(model_dir=model_dir, step=checkpoint_step)
    save_hf_checkpoint(
        config=config, params=jax.tree.map(np.asarray, params), out_dir=out_dir, spm_path=spm_path
    )
    return step


def export_run_to_hf(
    *,
    model_dir: str,
    mixture_or_task_name: str,
    model_config: T5Config,
    out_dir: str,
    checkpoint_step: int | None = None,
) -> int:
    """`export_hf` for a run configured by gin: the task names the vocabulary (and spm file)."""
    from t5lab.data.pipeline import output_vocabulary

    vocabulary = output_vocabulary(mixture_or_task_name)
    return export_hf(
        model_dir=model_dir,
        model_config=model_config,
        vocabulary_size=vocabulary.vocab_size,
        out_dir=out_dir,
        checkpoint_step=checkpoint_step,
        spm_path=getattr(vocabulary, "sentencepiece_model_file", None),
    )
