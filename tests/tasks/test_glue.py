"""GLUE / SuperGLUE tasks over tfds mock data (random text: formats and wiring, not content)."""

import math
import re

import pytest
import seqio
import tensorflow_datasets as tfds

import tasks.glue as glue
from tests.tasks.task_scoring import score, text

LENGTHS = {"inputs": 64, "targets": 16}
NLI3 = {"entailment", "neutral", "contradiction"}
NLI2 = {"entailment", "not_entailment"}
BOOL = {"False", "True"}

# task: (split to read, inputs pattern, target labels or None, metric keys)
EXPECTED = {
    "glue_cola_v002": (
        "validation",
        "cola sentence: ",
        {"unacceptable", "acceptable"},
        {"matthews_corrcoef"},
    ),
    "glue_sst2_v002": ("validation", "sst2 sentence: ", {"negative", "positive"}, {"accuracy"}),
    "glue_mrpc_v002": (
        "validation",
        "mrpc sentence1: .* sentence2: ",
        {"not_equivalent", "equivalent"},
        {"f1", "accuracy"},
    ),
    "glue_qqp_v002": (
        "validation",
        "qqp question1: .* question2: ",
        {"not_duplicate", "duplicate"},
        {"f1", "accuracy"},
    ),
    "glue_stsb_v002": (
        "validation",
        "stsb sentence1: .* sentence2: ",
        None,
        {"pearson_corrcoef", "spearman_corrcoef"},
    ),
    "glue_mnli_v002": (
        "validation_mismatched",
        "mnli hypothesis: .* premise: ",
        NLI3,
        {"accuracy"},
    ),
    "glue_mnli_matched_v002": ("validation", "mnli hypothesis: .* premise: ", NLI3, {"accuracy"}),
    "glue_mnli_mismatched_v002": (
        "validation",
        "mnli hypothesis: .* premise: ",
        NLI3,
        {"accuracy"},
    ),
    "glue_ax_v002": ("test", "mnli hypothesis: .* premise: ", NLI3, set()),
    "glue_qnli_v002": ("validation", "qnli question: .* sentence: ", NLI2, {"accuracy"}),
    "glue_rte_v002": ("validation", "rte sentence1: .* sentence2: ", NLI2, {"accuracy"}),
    "glue_wnli_v002": ("validation", "wnli sentence1: .* sentence2: ", NLI2, {"accuracy"}),
    "super_glue_boolq_v102": ("validation", "boolq passage: .* question: ", BOOL, {"accuracy"}),
    "super_glue_cb_v102": (
        "validation",
        "cb hypothesis: .* premise: ",
        NLI3,
        {"mean_3class_f1", "accuracy"},
    ),
    "super_glue_copa_v102": (
        "validation",
        "copa choice1: .* choice2: .* premise: .* question: ",
        {"choice1", "choice2"},
        {"accuracy"},
    ),
    "super_glue_multirc_v102": (
        "validation",
        "multirc question: .* answer: .* paragraph: ",
        BOOL,
        {"f1a", "exact_match"},
    ),
    "super_glue_record_v102": (
        "validation",
        "record query: .* entities: .* passage: ",
        None,
        {"em", "f1"},
    ),
    "super_glue_rte_v102": ("validation", "rte hypothesis: .* premise: ", NLI2, {"accuracy"}),
    "super_glue_wic_v102": (
        "validation",
        "wic sentence1: .* sentence2: .* word: ",
        BOOL,
        {"accuracy"},
    ),
    "super_glue_wsc_v102_simple_train": ("train", "wsc: ", None, set()),
    "super_glue_wsc_v102_simple_eval": ("validation", "wsc: ", None, {"accuracy"}),
    "super_glue_axb_v102": ("test", "rte sentence1: .* sentence2: ", NLI2, set()),
    "super_glue_axg_v102": ("test", "rte hypothesis: .* premise: ", NLI2, set()),
}


def _examples(name: str, split: str) -> list[dict]:
    task = seqio.get_mixture_or_task(name)
    with tfds.testing.mock_data(num_examples=3):
        dataset = task.get_dataset(
            sequence_length=LENGTHS, split=split, shuffle=False, try_in_mem_cache=False
        )
        return list(dataset.as_numpy_iterator())


def _perfect_prediction(name: str, example: dict) -> str:
    if name == glue.WSC_EVAL_TASK:  # name the candidate exactly when it is the referent
        return text(example["targets_pretokenized"]) if example["label"] == 1 else "nobody"
    return text(example["targets_pretokenized"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_task_formats_and_scores_mock_examples(name):
    split, pattern, labels, metric_keys = EXPECTED[name]
    task = seqio.get_mixture_or_task(name)
    examples = _examples(name, split)
    assert examples
    for example in examples:
        inputs = text(example["inputs_pretokenized"])
        target = text(example["targets_pretokenized"])
        assert re.fullmatch(pattern + ".*", inputs, flags=re.DOTALL), inputs
        assert example["inputs"].size and example["targets"][-1] == 1  # tokens end with EOS
        if labels is not None:
            assert target in labels
        elif name == "glue_stsb_v002":
            assert re.fullmatch(r"\d\.\d", target) and float(target) * 5 == round(float(target) * 5)
        elif name == "super_glue_record_v102":
            assert target.encode() in list(example["answers"]) or target == "<unk>"
        else:
            assert target  # WSC: the candidate's text

    scores = score(task, examples, [_perfect_prediction(name, ex) for ex in examples])
    assert set(scores) == metric_keys
    assert all(math.isfinite(value) for value in scores.values())
    for key in {"accuracy", "exact_match", "em"} & set(scores):
        assert scores[key] == pytest.approx(100.0)


def _hand_made(labels: list[str]) -> list[dict]:
    return [{"targets_pretokenized": label.encode(), "idx": i} for i, label in enumerate(labels)]


@pytest.mark.parametrize(
    "name",
    [
        "glue_cola_v002",
        "glue_mrpc_v002",
        "glue_qqp_v002",
        "glue_mnli_v002",
        "super_glue_cb_v102",
        "super_glue_copa_v102",
    ],
)
def test_classification_metrics_reward_right_labels_and_punish_unreadable_ones(name):
    task = seqio.get_mixture_or_task(name)
    labels = sorted(EXPECTED[name][2]) * 2
    examples = _hand_made(labels)
    perfect = score(task, examples, labels)
    assert perfect == {key: pytest.approx(100.0) for key in EXPECTED[name][3]}
    garbled = score(task, examples, ["banana", *labels[1:]])
    assert all(value < 100.0 for value in garbled.values())


def test_stsb_correlations_follow_the_predicted_scores():
    task = seqio.get_mixture_or_task("glue_stsb_v002")
    scores = ["0.4", "1.0", "2.6", "3.8", "5.0"]
    examples = _hand_made(scores)
    assert score(task, examples, scores) == {
        "pearson_corrcoef": pytest.approx(100.0),
        "spearman_corrcoef": pytest.approx(100.0),
    }
    reversed_scores = score(task, examples, scores[::-1])
    assert all(value < 0 for value in reversed_scores.values())


def test_mixture_members_are_registered_and_split_by_training_data():
    members = glue.GLUE_TASKS + glue.SUPER_GLUE_TASKS
    eval_only = glue.GLUE_EVAL_TASKS + glue.SUPER_GLUE_EVAL_TASKS
    assert set(members) | set(eval_only) <= set(seqio.TaskRegistry.names())
    assert not set(members) & set(eval_only)
    assert "glue_wnli_v002" not in members  # T5 trains on WSC, not WNLI
    for name in members:
        assert "train" in seqio.get_mixture_or_task(name).splits
    for name in eval_only:
        assert "train" not in seqio.get_mixture_or_task(name).splits
