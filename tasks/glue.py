"""GLUE and SuperGLUE as T5 casts them: `glue_<name>_v002`, `super_glue_<name>_v102`.

Inputs are `<benchmark> <feature>: <text> ...`, targets the label's name (STS-B: the score
rounded to 0.2), each task with the paper's metrics. Label names come from the tfds builder
configs, so class ids agree with the tfds labels.

Mixture members: `GLUE_TASKS` / `SUPER_GLUE_TASKS` train (T5 weighs them by training-set
size); `GLUE_EVAL_TASKS` / `SUPER_GLUE_EVAL_TASKS` have no training split and join a
mixture at rate 0, to be evaluated with it. As in T5, WNLI is registered but not a mixture
member (T5 trains on WSC instead), MNLI's validation lives in the `mnli_matched` /
`mnli_mismatched` tasks, and the diagnostics (`ax`, `axb`, `axg`) have only unlabelled test sets.
"""

import functools

import tensorflow_datasets as tfds

from t5lab.data import text_preprocessors
from t5lab.eval import metrics, superglue_metrics
from t5lab.eval.postprocessors import string_label_to_class_id, string_to_float
from tasks.text_to_text import register_text_to_text_task, tfds_source

GLUE_VERSION = "2.0.0"
SUPER_GLUE_VERSION = "1.0.2"
_SPLITS = ("train", "validation", "test")
_EVAL_SPLITS = ("validation", "test")
_MNLI_SPLITS = (
    "train",
    "validation_matched",
    "validation_mismatched",
    "test_matched",
    "test_mismatched",
)

# config: (metric_fns, splits); order = T5's.
_GLUE = {
    "cola": ([metrics.matthews_corrcoef], _SPLITS),
    "sst2": ([metrics.accuracy], _SPLITS),
    "mrpc": ([metrics.f1, metrics.accuracy], _SPLITS),
    "qqp": ([metrics.f1, metrics.accuracy], _SPLITS),
    "stsb": ([metrics.pearson_corrcoef, metrics.spearman_corrcoef], _SPLITS),
    "mnli": ([metrics.accuracy], _MNLI_SPLITS),
    "mnli_matched": ([metrics.accuracy], _EVAL_SPLITS),
    "mnli_mismatched": ([metrics.accuracy], _EVAL_SPLITS),
    "qnli": ([metrics.accuracy], _SPLITS),
    "rte": ([metrics.accuracy], _SPLITS),
    "wnli": ([metrics.accuracy], _SPLITS),
    "ax": ([], ("test",)),
}
_SUPER_GLUE = {
    "boolq": [metrics.accuracy],
    "cb": [metrics.mean_multiclass_f1(num_classes=3), metrics.accuracy],
    "copa": [metrics.accuracy],
    "multirc": [
        superglue_metrics.multirc_f1_over_all_answers,
        superglue_metrics.multirc_exact_match,
    ],
    "record": [superglue_metrics.record_squad],
    "rte": [metrics.accuracy],
    "wic": [metrics.accuracy],
    "axb": [],
    "axg": [],
}
# Text features in the order T5 writes them; the rest are sorted by name.
_FEATURE_ORDER = {
    "multirc": ("question", "answer", "paragraph"),
    "wic": ("sentence1", "sentence2", "word"),  # T5 leaves out the word's character offsets
}
# Configs cast as another benchmark (their prefix names the task the model was trained on).
_AS_BENCHMARK = {"mnli_matched": "mnli", "mnli_mismatched": "mnli", "ax": "mnli"}
_AS_BENCHMARK |= {"axb": "rte", "axg": "rte"}
_TEST_ONLY = {"ax", "axb", "axg"}


def glue_task_name(config: str) -> str:
    return f"glue_{config}_v002"


def super_glue_task_name(config: str) -> str:
    return f"super_glue_{config}_v102"


WSC_TRAIN_TASK = "super_glue_wsc_v102_simple_train"
WSC_EVAL_TASK = "super_glue_wsc_v102_simple_eval"
GLUE_TASKS = tuple(
    glue_task_name(c) for c in ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
)
GLUE_EVAL_TASKS = tuple(glue_task_name(c) for c in ("mnli_matched", "mnli_mismatched", "ax"))
SUPER_GLUE_TASKS = (
    *(super_glue_task_name(c) for c in ("boolq", "cb", "copa", "multirc", "record", "rte", "wic")),
    WSC_TRAIN_TASK,
)
SUPER_GLUE_EVAL_TASKS = (WSC_EVAL_TASK, super_glue_task_name("axb"), super_glue_task_name("axg"))


def _label_classes(dataset: str, config: str) -> list[str]:
    return list(tfds.builder_cls(dataset).builder_configs[config].label_classes)


def _glue_text_preprocessor(config: str, label_classes: list[str]):
    return functools.partial(
        text_preprocessors.glue,
        benchmark_name=_AS_BENCHMARK.get(config, config),
        label_names=label_classes,
        feature_names=_FEATURE_ORDER.get(config),
    )


def _register_glue() -> None:
    for config, (metric_fns, splits) in _GLUE.items():
        source = tfds_source(tfds_name=f"glue/{config}:{GLUE_VERSION}", splits=splits)
        if config == "stsb":
            preprocessor, postprocess_fn = text_preprocessors.stsb, string_to_float
        else:
            labels = _label_classes("glue", config)
            preprocessor = _glue_text_preprocessor(config, labels)
            postprocess_fn = functools.partial(string_label_to_class_id, label_classes=labels)
        register_text_to_text_task(
            name=glue_task_name(config),
            source=source,
            text_preprocessors=[preprocessor],
            metric_fns=metric_fns,
            postprocess_fn=postprocess_fn,
        )


def _register_super_glue() -> None:
    for config, metric_fns in _SUPER_GLUE.items():
        splits = ("test",) if config in _TEST_ONLY else _SPLITS
        source = tfds_source(tfds_name=f"super_glue/{config}:{SUPER_GLUE_VERSION}", splits=splits)
        if config == "record":
            preprocessor, postprocess_fn = text_preprocessors.record, superglue_metrics.record
        else:
            labels = _label_classes("super_glue", config)
            preprocessor = _glue_text_preprocessor(config, labels)
            postprocess_fn = functools.partial(string_label_to_class_id, label_classes=labels)
            if config == "multirc":
                postprocess_fn = superglue_metrics.multirc
        register_text_to_text_task(
            name=super_glue_task_name(config),
            source=source,
            text_preprocessors=[preprocessor],
            metric_fns=metric_fns,
            postprocess_fn=postprocess_fn,
        )
    wsc = f"super_glue/wsc.fixed:{SUPER_GLUE_VERSION}"
    register_text_to_text_task(
        name=WSC_TRAIN_TASK,
        source=tfds_source(tfds_name=wsc, splits=("train",)),
        text_preprocessors=[
            functools.partial(text_preprocessors.wsc_simple, correct_referent_only=True)
        ],
        metric_fns=[],
    )
    register_text_to_text_task(
        name=WSC_EVAL_TASK,
        source=tfds_source(tfds_name=wsc, splits=_EVAL_SPLITS),
        text_preprocessors=[
            functools.partial(text_preprocessors.wsc_simple, correct_referent_only=False)
        ],
        metric_fns=[metrics.accuracy],
        postprocess_fn=superglue_metrics.wsc_simple,
    )


_register_glue()
_register_super_glue()
