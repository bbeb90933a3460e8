"""Scoring decoded strings with a task's own postprocess_fn and metric_fns (as seqio does)."""

import seqio


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def score(task: seqio.Task, examples: list[dict], predictions: list[str]) -> dict[str, float]:
    targets = [
        task.postprocess_fn(text(ex["targets_pretokenized"]), example=ex, is_target=True)
        for ex in examples
    ]
    outputs = [
        task.postprocess_fn(p, example=ex) for p, ex in zip(predictions, examples, strict=True)
    ]
    scores = {}
    for metric_fn in task.metric_fns:
        scores.update(metric_fn(targets=targets, predictions=outputs))
    return scores
