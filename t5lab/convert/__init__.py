"""Checkpoint converters between t5lab and other T5 implementations."""

from t5lab.convert.hf import (
    config_from_hf,
    config_to_hf,
    load_hf_checkpoint,
    params_from_hf,
    params_to_hf,
    save_hf_checkpoint,
)

__all__ = [
    "config_from_hf",
    "config_to_hf",
    "load_hf_checkpoint",
    "params_from_hf",
    "params_to_hf",
    "save_hf_checkpoint",
]
