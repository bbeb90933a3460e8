"""Train state, train and eval steps for ELECTRA, with the signatures of `steps.py`.

The trainer dispatches on the config type and keeps everything else (checkpoints,
`evaluate_batches`, metrics) unchanged. Batches are `EncDecFeatureConverter` output of an
MLM objective with equal input/target lengths and pack=False: `encoder_input_tokens` is the
masked text, `decoder_target_tokens` the original text.

Loss per batch = mean MLM cross-entropy over masked tokens (+ z-loss) + discriminator_weight
x mean binary cross-entropy over non-pad tokens. The two means have different denominators,
so `LossTerms` carries the batch mean times the number of non-pad tokens: `evaluate_batches`
then reports a token-weighted mean of batch losses, and accuracy is the discriminator's.
"""

from collections.abc import Callable, Mapping
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import optax.losses

from t5lab.errors import UserError
from t5lab.train.losses import LossTerms, cross_entropy_with_z_loss
from t5lab.train.partitioning import StepShardings, jit_eval_step, jit_train_step
from t5lab.train.steps import TrainState

Batch = Mapping[str, jax.Array]

# Eval draws generator samples too: a fixed key keeps evaluations comparable across steps.
_EVAL_SAMPLE_SEED = 0


def electra_batch_from_mlm(batch: Batch) -> dict[str, jax.Array]:
    """Masked and original tokens from an MLM batch; rejects packed or misaligned batches."""
    inputs, originals = batch["encoder_input_tokens"], batch["decoder_target_tokens"]
    if "encoder_segment_ids" in batch:
        raise UserError("ELECTRA needs unpacked batches: set train.pack = False")
    if inputs.shape != originals.shape:
        raise UserError(
            f"ELECTRA needs equal inputs and targets lengths, got {inputs.shape[1]} and "
            f"{originals.shape[1]}: set task_feature_lengths inputs == targets"
        )
    return {"input_tokens": inputs, "original_tokens": originals}


def init_variables_fn(
    *, model: nn.Module, input_shapes: Mapping[str, tuple]
) -> Callable[[jax.Array], dict]:
    """rng -> the model's variables, boxed with their logical axis names (for shardings)."""

    def init(rng: jax.Array) -> dict:
        tokens = jnp.ones(input_shapes["encoder_input_tokens"], jnp.int32)
        return model.init(
            {"params": rng, "dropout": rng}, tokens, tokens, sample_rng=rng, enable_dropout=False
        )

    return init


def init_state_fn(
    *, model: nn.Module, tx: optax.GradientTransformation, input_shapes: Mapping[str, tuple]
) -> Callable[[jax.Array], TrainState]:
    """A function rng -> TrainState; `jax.eval_shape` of it gives the abstract state."""
    init_variables = init_variables_fn(model=model, input_shapes=input_shapes)

    def init(rng: jax.Array) -> TrainState:
        params = nn.unbox(init_variables(rng))["params"]
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    return init


def _loss(
    params, batch: Batch, rng, *, model, label_smoothing, z_loss, enable_dropout
) -> tuple[jax.Array, tuple[LossTerms, dict]]:
    """Mean total loss, plus summed LossTerms and per-part means for metrics."""
    inputs = electra_batch_from_mlm(batch)
    sample_rng, dropout_rng = jax.random.split(rng)
    out = model.apply(
        {"params": params},
        inputs["input_tokens"],
        inputs["original_tokens"],
        sample_rng=sample_rng,
        enable_dropout=enable_dropout,
        rngs={"dropout": dropout_rng} if enable_dropout else None,
    )
    originals = inputs["original_tokens"]
    mlm = cross_entropy_with_z_loss(
        logits=out["generator_logits"],
        targets=originals,
        weights=out["masked"],
        label_smoothing=label_smoothing,
        z_loss=z_loss,
    )
    masked_count = jnp.maximum(mlm.weight_sum, 1.0)
    mlm_loss = mlm.loss / masked_count
    valid = (originals > 0).astype(jnp.float32)
    valid_count = jnp.sum(valid)
    labels = out["replaced"].astype(jnp.float32)
    disc_logits = out["discriminator_logits"]
    bce = optax.losses.sigmoid_binary_cross_entropy(disc_logits, labels)
    disc_loss = jnp.sum(bce * valid) / jnp.maximum(valid_count, 1.0)
    correct = jnp.sum(((disc_logits > 0) == out["replaced"]) * valid)
    total = mlm_loss + model.config.discriminator_weight * disc_loss
    terms = LossTerms(
        loss=total * valid_count,
        z_loss=mlm.z_loss / masked_count * valid_count,
        correct=correct,
        weight_sum=valid_count,
    )
    parts = {
        "mlm_loss": mlm_loss,
        "disc_loss": disc_loss,
        "mlm_accuracy": mlm.correct / masked_count,
        "replaced_fraction": jnp.sum(labels * valid) / jnp.maximum(valid_count, 1.0),
    }
    return total, (terms, parts)


def make_train_step(
    *,
    model: nn.Module,
    num_microbatches: int = 1,
    label_smoothing: float = 0.0,
    z_loss: float = 1e-4,
    shardings: StepShardings | None = None,
) -> Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict]]:
    """A jitted (state, batch, rng) -> (state, metrics) that donates the old state."""
    if num_microbatches != 1:
        raise UserError(
            f"ELECTRA supports num_microbatches = 1 only, got {num_microbatches}: "
            "lower batch_size instead"
        )
    loss = partial(
        _loss, model=model, label_smoothing=label_smoothing, z_loss=z_loss, enable_dropout=True
    )

    def step(state: TrainState, batch: Batch, rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        grads, (terms, parts) = jax.grad(loss, has_aux=True)(state.params, batch, rng)
        new_state = state.apply_gradients(grads=grads)
        denominator = jnp.maximum(terms.weight_sum, 1.0)
        mean_loss = terms.loss / denominator
        param_norm = optax.global_norm(new_state.params)
        metrics = {
            "loss": mean_loss,
            "z_loss": terms.z_loss / denominator,
            "accuracy": terms.correct / denominator,
            "target_tokens": terms.weight_sum,
            "grad_norm": optax.global_norm(grads),
            "param_norm": param_norm,
            # A finite loss can still overflow the parameters: keep that out of checkpoints.
            "nonfinite": jnp.logical_not(jnp.isfinite(mean_loss) & jnp.isfinite(param_norm)),
            **parts,
        }
        return new_state, metrics

    return jit_train_step(step, shardings)


def make_eval_step(
    *,
    model: nn.Module,
    label_smoothing: float = 0.0,
    z_loss: float = 1e-4,
    shardings: StepShardings | None = None,
) -> Callable[[dict, Batch], LossTerms]:
    """A jitted (params, batch) -> summed loss terms, without dropout, fixed sampling key."""
    loss = partial(
        _loss, model=model, label_smoothing=label_smoothing, z_loss=z_loss, enable_dropout=False
    )

    def evaluate(params: dict, batch: Batch) -> LossTerms:
        _, (terms, _) = loss(params, batch, jax.random.PRNGKey(_EVAL_SAMPLE_SEED))
        return terms

    return jit_eval_step(evaluate, shardings)
