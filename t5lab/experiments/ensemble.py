"""Validation loss and token accuracy of an ensemble of trained runs, by averaging logits.

T5 (Raffel et al. 2020, section 3.7) ensembles by averaging the members' output logits before
the softmax; so does this, teacher-forced on a fixed list of validation batches. A single run
is an ensemble of one, which keeps ensembled and plain rows of a table on the same batches
and the same code path.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from t5lab.data.pipeline import first_batches
from t5lab.errors import UserError
from t5lab.models import T5Config, T5Transformer
from t5lab.train.checkpoints import restore_run_params
from t5lab.train.losses import cross_entropy_with_z_loss

_MODEL_INPUTS = (
    "encoder_input_tokens",
    "decoder_input_tokens",
    "decoder_target_tokens",
    "encoder_segment_ids",
    "decoder_segment_ids",
    "encoder_positions",
    "decoder_positions",
)


@functools.cache
def _scoring_step(model: T5Transformer):
    """Jitted (members, batch) -> [ensemble terms, member terms...], made once per model."""

    @jax.jit
    def terms(params_list: list, batch: dict):
        inputs = {k: batch[k] for k in _MODEL_INPUTS if k in batch}
        logits = [model.apply({"params": p}, **inputs, enable_dropout=False) for p in params_list]
        scored = [jnp.mean(jnp.stack(logits), axis=0), *logits]  # the ensemble, then each
        return [
            cross_entropy_with_z_loss(
                logits=x,
                targets=batch["decoder_target_tokens"],
                weights=batch["decoder_loss_weights"],
                z_loss=0.0,
            )
            for x in scored
        ]

    return terms


def ensemble_validation(
    *,
    model_dirs: Sequence[str],
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    model_config: T5Config,
    batch_size: int = 32,
    eval_batches: int = 4,
    split: str = "validation",
) -> dict[str, Any]:
    """{"loss", "accuracy", "target_tokens", "member_losses"}: the logit-averaged ensemble of
    the runs' latest checkpoints (one architecture) on the first `eval_batches` batches of
    `split`, and each member's own loss on the same batches."""
    from t5lab.train.trainer import config_for_task

    if not model_dirs:
        raise UserError("an ensemble needs at least one run")
    if not isinstance(model_config, T5Config):
        raise UserError("ensembles are evaluated for T5 encoder-decoders only")
    model = T5Transformer(config_for_task(model_config, mixture_or_task_name=mixture_or_task_name))
    members = [restore_run_params(model_dir=d)[0] for d in model_dirs]
    batches = first_batches(
        mixture_or_task_name=mixture_or_task_name,
        task_feature_lengths=task_feature_lengths,
        split=split,
        batch_size=batch_size,
        count=eval_batches,
    )
    if not batches:
        raise UserError(f"the {split} split of {mixture_or_task_name!r} gave no full batch")
    return ensemble_scores(model=model, members=members, batches=batches)


def ensemble_scores(
    *, model: T5Transformer, members: Sequence[Any], batches: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Scores of the mean-logit ensemble of `members` (params of `model`) and of each member,
    summed over `batches` (EncDecFeatureConverter features) and divided by target tokens."""

    total = None
    for batch in batches:
        result = _scoring_step(model)(members, batch)
        total = result if total is None else jax.tree.map(jnp.add, total, result)
    ensemble, *each = jax.device_get(total)
    weight = max(float(ensemble.weight_sum), 1.0)
    return {
        "loss": float(ensemble.loss) / weight,
        "accuracy": float(ensemble.correct) / weight,
        "target_tokens": float(ensemble.weight_sum),
        "member_losses": [float(m.loss) / weight for m in each],
    }
