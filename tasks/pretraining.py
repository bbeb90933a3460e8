"""Pretraining tasks: any registered objective on the bundled corpus or on your own files.

Importing this module registers `sotu_<objective>` for every objective in
`t5lab.data.objectives` (default knobs, default SentencePiece vocabulary) and
`sotu_span_corruption_byte` (seqio.ByteVocabulary). `pretraining_task` registers a variant
with other knobs, another corpus or vocabulary and returns its name, which is how gin files
select it without code changes:

    MIXTURE_OR_TASK_NAME = @pretraining_task()
    pretraining_task.objective = @bert_mlm
    bert_mlm.corrupt_rate = 0.25
"""

import inspect
from collections.abc import Callable, Sequence

import seqio

from t5lab.data import objectives
from t5lab.data.corpus import sotu_source, text_files_source
from t5lab.data.objectives.t5_span_corruption import span_corruption_objective
from t5lab.data.vocab import get_vocabulary


def register_pretraining_task(
    *,
    name: str,
    source: seqio.DataSource,
    vocabulary: seqio.Vocabulary,
    preprocessors: list,
) -> str:
    """Register (replacing any task of the same name) and return the task name."""
    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=source,
        preprocessors=preprocessors,
        output_features={
            "inputs": seqio.Feature(vocabulary, add_eos=True, required=False),
            "targets": seqio.Feature(vocabulary, add_eos=True),
        },
        metric_fns=[],
    )
    return name


def _objective_name(build: Callable) -> str:
    target = inspect.unwrap(build)
    for name in objectives.names():
        if inspect.unwrap(objectives.get(name).build) is target:
            return name
    return getattr(target, "__name__", "objective")


def pretraining_task(
    *,
    objective: Callable[[], list] = span_corruption_objective,
    corpus_patterns: Sequence[str] = (),
    validation_patterns: Sequence[str] = (),
    text_key: str = "text",
    vocabulary: seqio.Vocabulary | None = None,
    name: str = "",
) -> str:
    """An objective (a builder, knobs already bound) on SOTU or on files matching the globs."""
    if corpus_patterns:
        source = text_files_source(
            train_patterns=list(corpus_patterns),
            validation_patterns=list(validation_patterns),
            text_key=text_key,
        )
    else:
        source = sotu_source()
    corpus = "text_files" if corpus_patterns else "sotu"
    return register_pretraining_task(
        name=name or f"{corpus}_{_objective_name(objective)}_custom",
        source=source,
        vocabulary=vocabulary or get_vocabulary(),
        preprocessors=objective(),
    )


# Examples that span corruption cuts the SOTU splits into at T5's inputs length 512 (568-token
# chunks) with the default vocabulary, counted with the pipeline (tests/data/test_mixing.py
# recounts both splits). Mixing rates read num_input_examples; the 221 train speeches would
# understate it ~17-fold.
SOTU_SPAN_CORRUPTION_EXAMPLES = {"train": 3814, "validation": 247}


def _with_example_counts(source: seqio.DataSource, counts: dict[str, int]) -> seqio.DataSource:
    """The same data, declaring `counts` (examples after preprocessing) per split."""

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None):
        return source.get_dataset(split=split, shuffle=shuffle_files, seed=seed)

    return seqio.FunctionDataSource(
        dataset_fn=dataset_fn, splits=source.splits, num_input_examples=counts
    )


def _register_defaults() -> None:
    vocabulary = get_vocabulary()
    for objective_name in objectives.names():
        source = sotu_source()
        if objective_name == "span_corruption":
            source = _with_example_counts(source, SOTU_SPAN_CORRUPTION_EXAMPLES)
        register_pretraining_task(
            name=f"sotu_{objective_name}",
            source=source,
            vocabulary=vocabulary,
            preprocessors=objectives.get(objective_name).build(),
        )
    register_pretraining_task(
        name="sotu_span_corruption_byte",
        source=sotu_source(),
        vocabulary=get_vocabulary(kind="byte"),
        preprocessors=span_corruption_objective(),
    )


_register_defaults()
