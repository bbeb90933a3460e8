"""Train state creation and the jitted train / eval steps.

One train step is one optimizer update. With `num_microbatches > 1` the batch is split and
gradients are summed in a `lax.scan`, so large batches fit in memory without changing the
update. Losses are token sums divided once by the number of target tokens of the whole batch,
which makes the update identical whatever the number of microbatches.
"""

from collections.abc import Callable, Mapping
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from t5lab.errors import UserError
from t5lab.train.losses import LossTerms, cross_entropy_with_z_loss
from t5lab.train.partitioning import StepShardings, jit_eval_step, jit_train_step

Batch = Mapping[str, jax.Array]


class TrainState(train_state.TrainState):
    """Flax's TrainState: step, params, optimizer state (apply_fn and tx are static)."""


def _model_inputs(batch: Batch) -> dict:
    return dict(
        encoder_input_tokens=batch["encoder_input_tokens"],
        decoder_input_tokens=batch["decoder_input_tokens"],
        decoder_target_tokens=batch["decoder_target_tokens"],
        encoder_segment_ids=batch.get("encoder_segment_ids"),
        decoder_segment_ids=batch.get("decoder_segment_ids"),
        encoder_positions=batch.get("encoder_positions"),
        decoder_positions=batch.get("decoder_positions"),
    )


def init_variables_fn(
    *, model: nn.Module, input_shapes: Mapping[str, tuple]
) -> Callable[[jax.Array], dict]:
    """rng -> the model's variables, boxed with their logical axis names (for shardings)."""

    def init(rng: jax.Array) -> dict:
        encoder = jnp.ones(input_shapes["encoder_input_tokens"], jnp.int32)
        decoder = jnp.ones(input_shapes["decoder_input_tokens"], jnp.int32)
        return model.init(
            {"params": rng, "dropout": rng}, encoder, decoder, decoder, enable_dropout=False
        )

    return init


def init_state_fn(
    *, model: nn.Module, tx: optax.GradientTransformation, input_shapes: Mapping[str, tuple]
) -> Callable[[jax.Array], TrainState]:
    """A function rng -> TrainState; `jax.eval_shape` of it gives the abstract state."""
    init_variables = init_variables_fn(model=model, input_shapes=input_shapes)

    def init(rng: jax.Array) -> TrainState:
        params = nn.unbox(init_variables(rng))["params"]  # axis names live in the module
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    return init


def _loss_terms(
    params, batch: Batch, dropout_rng, *, model, label_smoothing, z_loss, enable_dropout
) -> LossTerms:
    logits = model.apply(
        {"params": params},
        **_model_inputs(batch),
        enable_dropout=enable_dropout,
        rngs={"dropout": dropout_rng} if enable_dropout else None,
    )
    return cross_entropy_with_z_loss(
        logits=logits,
        targets=batch["decoder_target_tokens"],
        weights=batch["decoder_loss_weights"],
        label_smoothing=label_smoothing,
        z_loss=z_loss,
    )


def _split_microbatches(batch: Batch, num_microbatches: int) -> Batch:
    """Microbatch m takes rows m, m + M, m + 2M, ...: every device keeps its own rows, so a
    batch sharded over devices needs no exchange (the summed update does not depend on it)."""

    def split(x):
        x = x.reshape((x.shape[0] // num_microbatches, num_microbatches) + x.shape[1:])
        x = jnp.swapaxes(x, 0, 1)
        return nn.with_logical_constraint(x, (None, "batch") + (None,) * (x.ndim - 2))

    return jax.tree.map(split, dict(batch))


def make_train_step(
    *,
    model: nn.Module,
    num_microbatches: int = 1,
    label_smoothing: float = 0.0,
    z_loss: float = 1e-4,
    shardings: StepShardings | None = None,
) -> Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict]]:
    """A jitted (state, batch, rng) -> (state, metrics) that donates the old state."""
    if num_microbatches < 1:
        raise UserError(f"num_microbatches must be >= 1, got {num_microbatches}")
    loss_terms = partial(
        _loss_terms,
        model=model,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        enable_dropout=True,
    )

    def grads_and_terms(params, batch, rng):
        def objective(p):
            terms = loss_terms(p, batch, rng)
            return terms.loss, terms

        return jax.grad(objective, has_aux=True)(params)

    def step(state: TrainState, batch: Batch, rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        if num_microbatches == 1:
            grads, terms = grads_and_terms(state.params, batch, rng)
        else:
            micro = _split_microbatches(batch, num_microbatches)

            def accumulate(carry, inputs):
                index, micro_batch = inputs
                g, t = grads_and_terms(state.params, micro_batch, jax.random.fold_in(rng, index))
                return jax.tree.map(jnp.add, carry, (g, t)), None

            zeros = jax.tree.map(
                jnp.zeros_like,
                jax.eval_shape(
                    grads_and_terms, state.params, jax.tree.map(lambda x: x[0], micro), rng
                ),
            )
            (grads, terms), _ = jax.lax.scan(
                accumulate, zeros, (jnp.arange(num_microbatches), micro)
            )
        denominator = jnp.maximum(terms.weight_sum, 1.0)
        grads = jax.tree.map(lambda g: g / denominator, grads)
        new_state = state.apply_gradients(grads=grads)
        metrics = _metrics(terms)
        # A finite loss can still come with an update that overflows the parameters:
        # checking the new parameters keeps a diverged state out of every checkpoint.
        param_norm = optax.global_norm(new_state.params)
        metrics["grad_norm"] = optax.global_norm(grads)
        metrics["param_norm"] = param_norm
        metrics["nonfinite"] |= jnp.logical_not(jnp.isfinite(param_norm))
        return new_state, metrics

    return jit_train_step(step, shardings)


def _metrics(terms: LossTerms) -> dict:
    denominator = jnp.maximum(terms.weight_sum, 1.0)
    loss = terms.loss / denominator
    return {
        "loss": loss,
        "z_loss": terms.z_loss / denominator,
        "accuracy": terms.correct / denominator,
        "target_tokens": terms.weight_sum,
        "nonfinite": jnp.logical_not(jnp.isfinite(loss)),
    }


def make_eval_step(
    *,
    model: nn.Module,
    label_smoothing: float = 0.0,
    z_loss: float = 1e-4,
    shardings: StepShardings | None = None,
) -> Callable[[dict, Batch], LossTerms]:
    """A jitted (params, batch) -> summed loss terms, without dropout."""
    return jit_eval_step(
        partial(
            _loss_terms,
            model=model,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            enable_dropout=False,
            dropout_rng=None,
        ),
        shardings,
    )


def evaluate_batches(
    eval_step: Callable, params: dict, batches: list[Mapping[str, np.ndarray]]
) -> dict[str, float]:
    """Token-weighted loss and accuracy over a fixed list of batches."""
    total = None
    for batch in batches:
        terms = eval_step(params, batch)
        total = terms if total is None else jax.tree.map(jnp.add, total, terms)
    if total is None:
        raise UserError("the evaluation split produced no batch: lower batch_size or eval batches")
    total = jax.device_get(total)
    denominator = max(float(total.weight_sum), 1.0)
    return {
        "loss": float(total.loss) / denominator,
        "accuracy": float(total.correct) / denominator,
        "target_tokens": float(total.weight_sum),
    }
