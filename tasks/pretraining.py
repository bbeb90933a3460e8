"""Pretraining tasks: span corruption on the bundled corpus or on your own text files.

Importing this module registers `sotu_span_corruption` (the default SentencePiece vocab)
and `sotu_span_corruption_byte` (seqio.ByteVocabulary). `span_corruption_task` registers a
variant with other knobs or another corpus and returns its name, which is how gin files
select it without code changes:

    MIXTURE_OR_TASK_NAME = @span_corruption_task()
    span_corruption_task.corpus_patterns = ["/data/my_text/*.txt"]
"""

import functools
from collections.abc import Sequence

import seqio

from t5lab.data.corpus import sotu_source, text_files_source
from t5lab.data.span_corruption import (
    concatenate_documents,
    span_corruption,
    split_tokens_to_inputs_length,
)
from t5lab.data.vocab import get_vocabulary


def span_corruption_preprocessors(
    *, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> list:
    """text -> tokens -> joined documents -> exact-length chunks -> span corruption -> EOS."""
    knobs = dict(noise_density=noise_density, mean_noise_span_length=mean_noise_span_length)
    return [
        functools.partial(seqio.preprocessors.rekey, key_map={"targets": "text"}),
        seqio.preprocessors.tokenize,
        seqio.CacheDatasetPlaceholder(),
        concatenate_documents,
        functools.partial(split_tokens_to_inputs_length, **knobs),
        functools.partial(span_corruption, **knobs),
        seqio.preprocessors.append_eos_after_trim,
    ]


def register_span_corruption(
    *,
    name: str,
    source: seqio.DataSource,
    vocabulary: seqio.Vocabulary,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
) -> str:
    """Register (replacing any task of the same name) and return the task name."""
    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=source,
        preprocessors=span_corruption_preprocessors(
            noise_density=noise_density, mean_noise_span_length=mean_noise_span_length
        ),
        output_features={
            "inputs": seqio.Feature(vocabulary, add_eos=True, required=False),
            "targets": seqio.Feature(vocabulary, add_eos=True),
        },
        metric_fns=[],
    )
    return name


def span_corruption_task(
    *,
    corpus_patterns: Sequence[str] = (),
    validation_patterns: Sequence[str] = (),
    text_key: str = "text",
    vocabulary: seqio.Vocabulary | None = None,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    name: str = "",
) -> str:
    """Span corruption on SOTU (no patterns) or on text/JSONL files matching the globs."""
    if corpus_patterns:
        source = text_files_source(
            train_patterns=list(corpus_patterns),
            validation_patterns=list(validation_patterns),
            text_key=text_key,
        )
    else:
        source = sotu_source()
    default_name = "text_files_span_corruption" if corpus_patterns else "sotu_span_corruption"
    return register_span_corruption(
        name=name or f"{default_name}_custom",
        source=source,
        vocabulary=vocabulary or get_vocabulary(),
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
    )


register_span_corruption(
    name="sotu_span_corruption", source=sotu_source(), vocabulary=get_vocabulary()
)
register_span_corruption(
    name="sotu_span_corruption_byte",
    source=sotu_source(),
    vocabulary=get_vocabulary(kind="byte"),
)
