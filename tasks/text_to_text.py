"""One registration path for the paper's supervised text-to-text tasks (GLUE, SQuAD, WMT, ...).

Every such task reads a tfds dataset, turns examples into `inputs`/`targets` strings, then
tokenizes, caches and appends EOS as T5 does. The vocabulary defaults to t5lab's shipped
SentencePiece model (English State of the Union text): it keeps the tasks runnable with the
bundled models; real reproductions would use a vocabulary trained on C4 (and, for WMT, on the
target languages too). `task_with_vocabulary` makes such a copy of any registered task, e.g.
to fine-tune a converted Hugging Face T5 with its own `spiece.model`:

    MIXTURE_OR_TASK_NAME = @task_with_vocabulary()
    task_with_vocabulary.task_name = "glue_cola_v002"
    task_with_vocabulary.vocabulary = @get_vocabulary()
    get_vocabulary.spm_path = "my_hf_t5/spiece.model"
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import seqio

from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError, did_you_mean


def tfds_source(*, tfds_name: str, splits: Sequence[str] | Mapping[str, str]) -> seqio.DataSource:
    """A lazy tfds source with its splits named, so nothing reads dataset metadata up front."""
    return seqio.TfdsDataSource(tfds_name=tfds_name, splits=splits)


def register_text_to_text_task(
    *,
    name: str,
    source: seqio.DataSource,
    text_preprocessors: Sequence[Callable],
    metric_fns: Sequence[Callable],
    postprocess_fn: Callable | None = None,
    vocabulary: seqio.Vocabulary | None = None,
) -> str:
    """Register (replacing any task of the same name) and return the task name."""
    vocabulary = vocabulary or get_vocabulary()
    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=source,
        preprocessors=[
            *text_preprocessors,
            seqio.preprocessors.tokenize,
            seqio.CacheDatasetPlaceholder(),
            seqio.preprocessors.append_eos_after_trim,
        ],
        output_features={
            "inputs": seqio.Feature(vocabulary, add_eos=True),
            "targets": seqio.Feature(vocabulary, add_eos=True),
        },
        postprocess_fn=postprocess_fn,
        metric_fns=list(metric_fns),
    )
    return name


def task_with_vocabulary(*, task_name: str, vocabulary: seqio.Vocabulary, name: str = "") -> str:
    """Register a copy of task `task_name` that tokenizes with `vocabulary`; returns its name.

    Data, preprocessing and metrics stay those of the original; the copy is called `name`,
    by default `<task_name>_custom_vocab`.
    """
    if task_name not in seqio.TaskRegistry.names():
        kind = "a mixture" if task_name in seqio.MixtureRegistry.names() else "not a task"
        hint = did_you_mean(task_name, seqio.TaskRegistry.names())
        raise UserError(f"task_with_vocabulary: {task_name!r} is {kind}{hint}")
    task = seqio.TaskRegistry.get(task_name)
    name = name or f"{task_name}_custom_vocab"
    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    output_features = {
        key: dataclasses.replace(feature, vocabulary=vocabulary)
        for key, feature in task.output_features.items()
    }
    seqio.TaskRegistry.add_provider(name, task.replace(name=name, output_features=output_features))
    return name
