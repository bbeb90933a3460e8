"""T5's span corruption (Raffel et al. 2020) in the objective registry."""

import functools

import seqio

from t5lab.data.objectives.registry import Objective, register, tokenize_text
from t5lab.data.span_corruption import (
    concatenate_documents,
    random_spans_noise_mask,
    span_corruption,
    split_tokens_to_inputs_length,
)


def span_corruption_objective(
    *, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> list:
    """text -> tokens -> joined documents -> exact-length chunks -> span corruption -> EOS."""
    knobs = dict(noise_density=noise_density, mean_noise_span_length=mean_noise_span_length)
    return [
        *tokenize_text(),
        concatenate_documents,
        functools.partial(split_tokens_to_inputs_length, **knobs),
        functools.partial(span_corruption, **knobs),
        seqio.preprocessors.append_eos_after_trim,
    ]


def _mask(tokens, seeds, *, noise_density=0.15, mean_noise_span_length=3.0):
    return random_spans_noise_mask(
        length=tokens.shape[0],
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
        seeds=seeds,
    )


register(
    Objective(
        name="span_corruption",
        paper="Raffel et al. 2020, T5 (section 3.1.4)",
        summary="replace random spans with unique sentinels; targets list each sentinel's span",
        build=span_corruption_objective,
        noise_mask=_mask,
    )
)
