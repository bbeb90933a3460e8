"""Pretraining objectives as seqio preprocessors, looked up by name (see registry.py)."""

from t5lab.data.objectives.registry import Objective, get, names, register, tokenize_text

__all__ = ["Objective", "get", "names", "register", "tokenize_text"]
