"""Task metrics of checkpoints: decode with the model, score with seqio, pick the best step.

`seqio.Evaluator` owns everything task-specific (targets, postprocessing, the metric_fns of
every task in a mixture); this module only supplies what it asks for: a predict_fn (decoded
token ids) and a score_fn (log-likelihood of the targets), each returning (index, output) pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import seqio
import tensorflow as tf

from t5lab.data.pipeline import get_task_or_mixture
from t5lab.errors import UserError, did_you_mean
from t5lab.eval.decoding import DecodeFn, make_decode_fn
from t5lab.models import T5Config
from t5lab.models.electra import ElectraConfig
from t5lab.models.t5 import T5Transformer
from t5lab.train.checkpoints import Checkpointer, restore_run_params
from t5lab.train.trainer import config_for_task

AVERAGE = "average"


def kept_steps(*, model_dir: str) -> list[int]:
    """Checkpoint steps a run still keeps (train.keep_checkpoints of them), oldest first."""
    checkpointer = Checkpointer(model_dir=model_dir, keep=1_000_000)
    try:
        return checkpointer.all_steps()
    finally:
        checkpointer.close()


def _make_scorer(model: T5Transformer) -> Callable[[Any, Mapping[str, jax.Array]], jax.Array]:
    """Summed log-likelihood of each example's targets (what seqio's score metrics expect)."""

    def score(params: Any, batch: Mapping[str, jax.Array]) -> jax.Array:
        logits = model.apply(
            {"params": params},
            batch["encoder_input_tokens"],
            batch["decoder_input_tokens"],
            batch["decoder_target_tokens"],
            enable_dropout=False,
        )
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        targets = batch["decoder_target_tokens"]
        token_scores = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        return jnp.sum(token_scores * batch["decoder_loss_weights"], axis=-1)

    return jax.jit(score)


def _padded_batches(
    dataset: tf.data.Dataset, batch_size: int
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """(indices, features) of seqio's enumerated dataset; the last batch is padded by
    repeating its last row so every batch has one shape (one compilation)."""
    for indices, features in dataset.batch(batch_size).as_numpy_iterator():
        missing = batch_size - len(indices)
        if missing:
            features = {
                key: np.concatenate([value, np.repeat(value[-1:], missing, axis=0)])
                for key, value in features.items()
            }
        yield indices, features


def _predict_fn(decode: DecodeFn, params: Any, batch_size: int, seed: int):
    def predict(dataset: tf.data.Dataset, model_feature_shapes=None) -> list:
        del model_feature_shapes
        results = []
        for number, (indices, features) in enumerate(_padded_batches(dataset, batch_size)):
            rng = jax.random.fold_in(jax.random.PRNGKey(seed), number)
            tokens = np.asarray(decode(params, jnp.asarray(features["encoder_input_tokens"]), rng))
            results += [(int(i), row.tolist()) for i, row in zip(indices, tokens, strict=False)]
        return results

    return predict


def _score_fn(score: Callable, params: Any, batch_size: int):
    def score_dataset(dataset: tf.data.Dataset, model_feature_shapes=None) -> list:
        del model_feature_shapes
        results = []
        for indices, features in _padded_batches(dataset, batch_size):
            scores = np.asarray(score(params, features))
            results += [(int(i), float(s)) for i, s in zip(indices, scores, strict=False)]
        return results

    return score_dataset


def _plain_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """JSON-ready numbers; non-scalar outputs (text, histograms) are left out."""
    plain = {}
    for name, value in metrics.items():
        value = getattr(value, "value", value)  # seqio.metrics.Scalar
        if isinstance(value, (int, float, np.number)) or (
            isinstance(value, np.ndarray) and value.size == 1
        ):
            plain[name] = float(value)
    return plain


class _MetricsRun:
    """One model, decoder and seqio.Evaluator per split, reused for every checkpoint step."""

    def __init__(
        self,
        *,
        model_dir: str,
        mixture_or_task_name: str,
        task_feature_lengths: Mapping[str, int],
        model_config: T5Config | ElectraConfig,
        batch_size: int,
        decoding: Mapping[str, Any],
        seed: int,
        max_examples: int | None,
    ):
        get_task_or_mixture(mixture_or_task_name)
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        if max_examples is not None and max_examples < 1:
            raise UserError(f"max_examples must be >= 1, got {max_examples}")
        if "targets" not in task_feature_lengths or "inputs" not in task_feature_lengths:
            raise UserError("task_feature_lengths needs 'inputs' and 'targets' lengths")
        if isinstance(model_config, ElectraConfig):
            raise UserError("task metrics need decoding: ELECTRA's discriminator is not a decoder")
        config = config_for_task(model_config, mixture_or_task_name=mixture_or_task_name)
        self.model = T5Transformer(config)
        self.decode = make_decode_fn(
            model=self.model, max_decode_length=task_feature_lengths["targets"], **decoding
        )
        self.score = _make_scorer(self.model)
        self._args = dict(
            model_dir=model_dir,
            mixture_or_task_name=mixture_or_task_name,
            task_feature_lengths=dict(task_feature_lengths),
            batch_size=batch_size,
            seed=seed,
            max_examples=max_examples,
        )
        self._evaluators: dict[str, seqio.Evaluator] = {}
        self._restored: tuple[int, Any] | None = None  # (step, params) of the last restore

    def _evaluator(self, split: str) -> seqio.Evaluator:
        if split not in self._evaluators:
            name = self._args["mixture_or_task_name"]
            evaluator = seqio.Evaluator(
                mixture_or_task_name=name,
                feature_converter=seqio.EncDecFeatureConverter(pack=False),
                eval_split=split,
                use_cached=False,
                sequence_length=self._args["task_feature_lengths"],
                num_examples=self._args["max_examples"],
                async_compute_metrics=False,
            )
            if not evaluator.eval_tasks:
                raise UserError(
                    f"no task of {name!r} has metric_fns and a {split!r} split: nothing to score"
                )
            self._evaluators[split] = evaluator
        return self._evaluators[split]

    def _params(self, step: int | None) -> tuple[Any, int]:
        """Restore a step once: best-checkpoint selection scores its winner again on test."""
        if step is None or self._restored is None or self._restored[0] != step:
            params, step = restore_run_params(model_dir=self._args["model_dir"], step=step)
            self._restored = (step, params)
        return self._restored[1], self._restored[0]

    def evaluate(self, *, split: str, step: int | None) -> dict:
        evaluator = self._evaluator(split)
        params, step = self._params(step)
        batch_size, seed = self._args["batch_size"], self._args["seed"]
        metrics, _ = evaluator.evaluate(
            compute_metrics=True,
            step=step,
            predict_fn=_predict_fn(self.decode, params, batch_size, seed),
            score_fn=_score_fn(self.score, params, batch_size),
        )
        tasks = {name: _plain_metrics(values) for name, values in metrics.result().items()}
        return {"step": step, "split": split, "tasks": tasks}


def evaluate_metrics(
    *,
    model_dir: str,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    model_config: T5Config | ElectraConfig,
    split: str = "validation",
    batch_size: int = 32,
    checkpoint_step: int | None = None,
    method: str = "greedy",
    beam_size: int = 4,
    alpha: float = 0.6,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    max_examples: int | None = None,
) -> dict:
    """Every task's metrics (its own metric_fns, via seqio) for one checkpoint (latest: None).

    Decodes up to the targets length; returns {"step", "split", "tasks": {task: {metric: v}}}.
    """
    run = _MetricsRun(
        model_dir=model_dir,
        mixture_or_task_name=mixture_or_task_name,
        task_feature_lengths=task_feature_lengths,
        model_config=model_config,
        batch_size=batch_size,
        decoding=dict(
            method=method, beam_size=beam_size, alpha=alpha, temperature=temperature, top_k=top_k
        ),
        seed=seed,
        max_examples=max_examples,
    )
    return run.evaluate(split=split, step=checkpoint_step)


def metric_value(tasks: Mapping[str, Mapping[str, float]], metric: str) -> float:
    """Pick `task/metric`, a `metric` only one task reports, or `average`: the mean over tasks
    of each task's mean metric (T5's GLUE/SuperGLUE average)."""
    if metric == AVERAGE:
        means = [float(np.mean(list(values.values()))) for values in tasks.values() if values]
        if not means:
            raise UserError("no numeric metric to average")
        return float(np.mean(means))
    known = [f"{task}/{name}" for task, values in tasks.items() for name in values]
    task, sep, name = metric.rpartition("/")
    if sep and name in tasks.get(task, {}):
        return tasks[task][name]
    matches = [key for key in known if key.rpartition("/")[2] == metric]
    if not sep and len(matches) == 1:
        return metric_value(tasks, matches[0])
    hint = did_you_mean(metric, known) or f" (known: {', '.join(known[:8])}, or {AVERAGE!r})"
    raise UserError(f"unknown metric {metric!r}{hint}")


def select_best_checkpoint(
    *,
    model_dir: str,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    model_config: T5Config | ElectraConfig,
    metric: str = AVERAGE,
    validation_split: str = "validation",
    test_split: str = "test",
    higher_is_better: bool = True,
    batch_size: int = 32,
    method: str = "greedy",
    beam_size: int = 4,
    alpha: float = 0.6,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    max_examples: int | None = None,
) -> dict:
    """Score every kept checkpoint on `validation_split`, then report the best one on
    `test_split` (choosing on test itself would overstate the result). Ties go to the
    earliest step."""
    steps = kept_steps(model_dir=model_dir)
    if not steps:
        raise UserError(f"no checkpoint in {model_dir!r}: train first (t5lab train ...)")
    run = _MetricsRun(
        model_dir=model_dir,
        mixture_or_task_name=mixture_or_task_name,
        task_feature_lengths=task_feature_lengths,
        model_config=model_config,
        batch_size=batch_size,
        decoding=dict(
            method=method, beam_size=beam_size, alpha=alpha, temperature=temperature, top_k=top_k
        ),
        seed=seed,
        max_examples=max_examples,
    )
    validation = []
    for step in steps:
        result = run.evaluate(split=validation_split, step=step)
        value = metric_value(result["tasks"], metric)
        validation.append({"step": step, "value": value, "tasks": result["tasks"]})
    sign = 1.0 if higher_is_better else -1.0
    finite = [v for v in validation if math.isfinite(v["value"])] or validation
    best = max(finite, key=lambda v: (sign * v["value"], -v["step"]))
    test = run.evaluate(split=test_split, step=best["step"])
    return {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "best_step": best["step"],
        "validation": validation,
        "test": {**test, "value": metric_value(test["tasks"], metric)},
    }
