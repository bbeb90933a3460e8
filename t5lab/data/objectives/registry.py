"""The objective registry: every pretraining objective by name, with its paper and knobs.

An objective is a builder `(**knobs) -> list of seqio preprocessors` that turns source
examples `{"text": str}` into model-ready `{"inputs", "targets"}` token sequences (EOS
included). Builders are plain functions with keyword-only knobs whose defaults are the
literature's values; gin exposes each one under the objective's name, so
`bert_mlm.corrupt_rate = 0.3` in a gin file changes a knob with typo checking.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable

import seqio
import tensorflow as tf

from t5lab.errors import UserError, did_you_mean

Builder = Callable[..., list]
MaskFn = Callable[..., tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Objective:
    name: str
    paper: str  # where it comes from, e.g. "Devlin et al. 2019, BERT"
    summary: str  # one line: what it does to a text
    build: Builder
    # Optional, for `t5lab objectives show`: (tokens int32[n], seeds, **knobs) -> bool[n]
    # marking the tokens the objective corrupts.
    noise_mask: MaskFn | None = None

    @property
    def knobs(self) -> dict[str, object]:
        """Knob name -> default, read from the builder's signature (one source of truth)."""
        return {
            name: p.default
            for name, p in inspect.signature(self.build).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }


_OBJECTIVES: dict[str, Objective] = {}


def register(objective: Objective) -> Objective:
    if objective.name in _OBJECTIVES and _OBJECTIVES[objective.name] != objective:
        raise ValueError(f"objective {objective.name!r} is registered twice")
    _OBJECTIVES[objective.name] = objective
    return objective


def names() -> list[str]:
    _load_all()
    return sorted(_OBJECTIVES)


def get(name: str) -> Objective:
    _load_all()
    if name not in _OBJECTIVES:
        raise UserError(f"unknown objective {name!r}{did_you_mean(name, _OBJECTIVES)}")
    return _OBJECTIVES[name]


@functools.cache
def _load_all() -> None:
    """Import the modules that register objectives (kept here so the list is in one place)."""
    from t5lab.data.objectives import (  # noqa: F401
        bart,
        detection,
        masking,
        nsp,
        t5_span_corruption,
        t5_variants,
    )


def tokenize_text() -> list:
    """The common head of every pipeline: source text -> `targets` token ids."""
    return [
        functools.partial(seqio.preprocessors.rekey, key_map={"targets": "text"}),
        seqio.preprocessors.tokenize,
        seqio.CacheDatasetPlaceholder(),
    ]
