"""Optimizers and learning-rate schedules used by T5 and its successors."""

import jax.numpy as jnp
import optax

from t5lab.errors import UserError


def rsqrt_schedule(
    *, base_learning_rate: float = 1.0, warmup_steps: int = 10_000, linear_warmup: bool = False
) -> optax.Schedule:
    """T5's inverse square root decay: base / sqrt(max(step, warmup)).

    The paper holds the rate at base / sqrt(warmup) for the first `warmup` steps (0.01 for
    10k steps); `linear_warmup` ramps up to that value instead, which tiny models prefer.
    """
    if warmup_steps < 1:
        raise UserError(f"warmup_steps must be >= 1, got {warmup_steps}")

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        rate = base_learning_rate / jnp.sqrt(jnp.maximum(step, warmup_steps))
        if linear_warmup:
            rate = rate * jnp.minimum(1.0, (step + 1.0) / warmup_steps)
        return rate

    return schedule


def constant_schedule(*, learning_rate: float = 1e-3) -> optax.Schedule:
    """A fixed rate: T5 fine-tuned at 0.001 with Adafactor."""
    if learning_rate <= 0:
        raise UserError(f"learning_rate must be > 0, got {learning_rate}")
    return optax.constant_schedule(learning_rate)


def adafactor(
    *,
    learning_rate: optax.Schedule,
    decay_rate: float = 0.8,
    clipping_threshold: float | None = 1.0,
    min_dim_size_to_factor: int = 128,
    multiply_by_parameter_scale: bool = True,
    weight_decay_rate: float | None = None,
) -> optax.GradientTransformation:
    """Adafactor as T5 trains with it: factored second moments, no momentum, update clipping."""
    return optax.adafactor(
        learning_rate=learning_rate,
        min_dim_size_to_factor=min_dim_size_to_factor,
        decay_rate=decay_rate,
        clipping_threshold=clipping_threshold,
        multiply_by_parameter_scale=multiply_by_parameter_scale,
        momentum=None,
        factored=True,
        weight_decay_rate=weight_decay_rate,
    )


def adamw(
    *,
    learning_rate: optax.Schedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    grad_clip_norm: float | None = 1.0,
) -> optax.GradientTransformation:
    """AdamW with optional global-norm clipping (nanoT5's choice for fast pretraining)."""
    parts = []
    if grad_clip_norm:
        parts.append(optax.clip_by_global_norm(grad_clip_norm))
    parts.append(optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay))
    return optax.chain(*parts)
