"""SuperGLUE's grouped scores and T5's answer-matching postprocessors (seqio signatures).

MultiRC scores answers per question, ReCoRD (one training example per correct answer) scores
each query once against all its answers, and WSC asks whether the generated noun phrase names
the candidate. Those need the example's ids or answers, which only the postprocessor sees
(`postprocess_fn(output, example=..., is_target=...)`); it passes them on as
`{"group": ..., "value": ...}` to the metrics here. SQuAD shares `qa`: targets become every
reference answer. The statistics themselves are `t5lab.eval.metrics`'.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from t5lab.eval import metrics
from t5lab.eval.postprocessors import string_label_to_class_id

MULTIRC_LABELS = ("False", "True")
# Words dropped before comparing a WSC answer with the candidate ("the councilmen" = "councilmen").
_DETERMINERS = frozenset(
    "a an few her his each every many much my our some that the their these this those which "
    "whose your".split()
)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _answers(example: Mapping[str, Any]) -> list[str]:
    return [_text(answer) for answer in example["answers"]]


def qa(output: str, example: Mapping[str, Any] | None = None, is_target: bool = False):
    """Targets: every reference answer of the example (SQuAD scores the best match)."""
    if is_target:
        return _answers(example)
    return output


def record(output: str, example: Mapping[str, Any] | None = None, is_target: bool = False):
    """ReCoRD: targets carry all answers and their query, so duplicates can be dropped."""
    if is_target:
        group = (int(example["idx/passage"]), int(example["idx/query"]))
        return {"group": group, "value": _answers(example) or [output]}  # unanswered: "<unk>"
    return {"value": output}


def record_squad(targets: Sequence[dict], predictions: Sequence[dict]) -> dict[str, float]:
    """SQuAD EM/F1 over queries: only the first copy of each query counts."""
    seen, kept_targets, kept_predictions = set(), [], []
    for target, prediction in zip(targets, predictions, strict=True):
        if target["group"] in seen:
            continue
        seen.add(target["group"])
        kept_targets.append(target["value"])
        kept_predictions.append(prediction["value"])
    return metrics.squad(kept_targets, kept_predictions)


def multirc(output: str, example: Mapping[str, Any] | None = None, is_target: bool = False):
    """MultiRC: the answer's True/False as a class id; targets also name their question."""
    value = string_label_to_class_id(output, label_classes=MULTIRC_LABELS)
    if is_target:
        group = (int(example["idx/paragraph"]), int(example["idx/question"]))
        return {"group": group, "value": value}
    return {"value": value}


def multirc_f1_over_all_answers(
    targets: Sequence[dict], predictions: Sequence[dict]
) -> dict[str, float]:
    """SuperGLUE's F1a: binary F1 over every answer option of every question."""
    score = metrics.f1([t["value"] for t in targets], [p["value"] for p in predictions])
    return {"f1a": score["f1"]}


def multirc_exact_match(targets: Sequence[dict], predictions: Sequence[dict]) -> dict[str, float]:
    """SuperGLUE's EM: share of questions whose answer options are all judged right."""
    all_right: dict[Any, bool] = {}
    for target, prediction in zip(targets, predictions, strict=True):
        right = target["value"] == prediction["value"]
        all_right[target["group"]] = all_right.get(target["group"], True) and right
    return {"exact_match": 100.0 * float(np.mean(list(all_right.values()))) if all_right else 0.0}


def _words(text: str) -> list[str]:
    return [word for word in text.strip().lower().split() if word not in _DETERMINERS]


def wsc_simple(output: str, example: Mapping[str, Any] | None = None, is_target: bool = False):
    """WSC: 1 if the generated phrase names this example's candidate, else 0 (T5's rule).

    Targets are the gold label; a prediction matches when, without determiners, one phrase's
    words contain the other's and both or neither are possessive.
    """
    if is_target:
        return int(example["label"])
    prediction = _words(output)
    referent = _words(_text(example["targets_pretokenized"]))
    if not prediction or ("'" in " ".join(prediction)) != ("'" in " ".join(referent)):
        return 0
    return int(set(prediction) <= set(referent) or set(referent) <= set(prediction))
