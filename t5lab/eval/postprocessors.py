"""Decoded text to what a metric compares (seqio `postprocess_fn(output, example, is_target)`).

seqio runs the task's postprocess_fn on the target text too (`is_target=True`), so a label
string becomes the same class id on both sides. A model's answer that cannot be read gets a
value no target has (-1), which the metrics count as wrong instead of crashing.
"""

from collections.abc import Mapping, Sequence
from typing import Any


def string_to_float(
    output: str,
    example: Mapping[str, Any] | None = None,
    is_target: bool = False,
    *,
    default: float = -1.0,
) -> float:
    """The number a regression task (STS-B style) wrote, or `default` if it wrote something else."""
    del example, is_target
    try:
        return float(output)
    except (TypeError, ValueError):
        return default


def string_label_to_class_id(
    output: str,
    example: Mapping[str, Any] | None = None,
    is_target: bool = False,
    *,
    label_classes: Sequence[str],
    default: int = -1,
) -> int:
    """Index of `output` in `label_classes`, or `default` for any other string.

    Bind `label_classes` with functools.partial to get a seqio postprocess_fn.
    """
    del example, is_target
    try:
        return list(label_classes).index(output)
    except ValueError:
        return default


def lower_text(
    output: str, example: Mapping[str, Any] | None = None, is_target: bool = False
) -> str:
    """Lower-cased text, for metrics that should not care about case."""
    del example, is_target
    return output.lower()
