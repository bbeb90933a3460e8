"""The offline downstream suite: six text-to-text tasks on bundled public-domain/MIT data.

Importing this module registers the tasks of `OFFLINE_SUITE` (train / validation / test splits
by hash; see t5lab/assets/downstream/README.md for the data and its licences):

| task               | data                           | like T5's | metrics               |
| ------------------ | ------------------------------ | --------- | --------------------- |
| `vader_sentiment`  | VADER snippets, binary         | SST-2     | accuracy              |
| `vader_regression` | VADER mean rating, -4..+4      | STS-B     | Pearson, Spearman     |
| `vader_source`     | which of 4 collections         | (topic)   | accuracy, mean F1     |
| `bible_en_es`      | KJV -> Reina-Valera 1909       | WMT En-De | BLEU                  |
| `bible_modernize`  | KJV -> World English Bible     | (style)   | BLEU, ROUGE           |
| `bible_paraphrase` | KJV vs WEB verse, same or not  | MRPC      | accuracy, F1          |

Data is read when a task is first used, so the import is cheap. `register_text_task` makes a
task of the same kind from your own files.
"""

import functools
from collections.abc import Callable, Sequence

import seqio

from t5lab.data.downstream import bible, text_pairs, vader
from t5lab.data.downstream.source import InMemoryExamplesSource
from t5lab.eval import metrics
from t5lab.eval.postprocessors import string_label_to_class_id, string_to_float
from tasks.text_to_text import register_text_to_text_task

OFFLINE_SUITE = (
    "vader_sentiment",
    "vader_regression",
    "vader_source",
    "bible_en_es",
    "bible_modernize",
    "bible_paraphrase",
)


def register_text_task(
    *,
    name: str,
    train_path: str,
    validation_path: str | None = None,
    test_path: str | None = None,
    input_prefix: str = "",
    metric_fns: Sequence[Callable] = (metrics.exact_match,),
    postprocess_fn: Callable | None = None,
    vocabulary: seqio.Vocabulary | None = None,
) -> str:
    """Register a task from files of (inputs, targets) pairs and return its name.

    Files are `.jsonl` (`inputs`/`targets` fields) or `.tsv` (`inputs<TAB>targets`), optionally
    gzip'd. Splits without a file of their own are hashed out of the training file (80/10/10).
    `input_prefix` ("summarize:") goes before every input, separated by a space. Files are read
    now, so a bad file is reported here; a task of the same name is replaced.
    """
    by_split = text_pairs.text_pairs_by_split(
        train_path=train_path, validation_path=validation_path, test_path=test_path
    )
    if input_prefix.strip():
        prefix = input_prefix.rstrip() + " "
        by_split = {
            split: [{**ex, "inputs": prefix + ex["inputs"]} for ex in examples]
            for split, examples in by_split.items()
        }
    return register_text_to_text_task(
        name=name,
        source=InMemoryExamplesSource(lambda: by_split),
        text_preprocessors=[],
        metric_fns=metric_fns,
        postprocess_fn=postprocess_fn,
        vocabulary=vocabulary,
    )


def _labels(label_classes: Sequence[str]) -> Callable:
    return functools.partial(string_label_to_class_id, label_classes=tuple(label_classes))


_SUITE = {
    "vader_sentiment": (
        vader.sentiment_examples,
        _labels(vader.SENTIMENT_LABELS),
        [metrics.accuracy],
    ),
    "vader_regression": (
        vader.regression_examples,
        functools.partial(string_to_float, default=vader.INVALID_SCORE),
        [metrics.pearson_corrcoef, metrics.spearman_corrcoef],
    ),
    "vader_source": (
        vader.source_examples,
        _labels(vader.SOURCES),
        [metrics.accuracy, metrics.mean_multiclass_f1(num_classes=len(vader.SOURCES))],
    ),
    "bible_en_es": (bible.translation_examples, None, [metrics.bleu]),
    "bible_modernize": (bible.modernize_examples, None, [metrics.bleu, metrics.rouge]),
    "bible_paraphrase": (
        bible.paraphrase_examples,
        _labels(bible.PARAPHRASE_LABELS),
        [metrics.accuracy, metrics.f1],
    ),
}


def _register_defaults() -> None:
    for name in OFFLINE_SUITE:
        build, postprocess_fn, metric_fns = _SUITE[name]
        register_text_to_text_task(
            name=name,
            source=InMemoryExamplesSource(build),
            text_preprocessors=[],
            metric_fns=metric_fns,
            postprocess_fn=postprocess_fn,
        )


_register_defaults()
