"""Cached decoding one token per step, and greedy decoding on top of it.

Encode once, then one cached decoder step per token. The first step runs before the
`lax.while_loop`: it also stores the cross-attention keys/values in the cache, which adds
entries to the cache, and the loop needs a cache of one fixed structure.

jit with the model and lengths static, e.g.
`jax.jit(functools.partial(greedy_decode, model=model, max_decode_length=L))`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from t5lab.errors import UserError
from t5lab.models.t5 import T5Transformer, init_decode_cache

Array = jax.Array
# (cache, tokens [N, 1]) -> (next-token logits [N, vocab], updated cache)
StepFn = Callable[[Any, Array], tuple[Array, Any]]
# (logits [B, vocab], step index) -> tokens [B] int32
ChooseFn = Callable[[Array, Array], Array]


def check_decode_length(max_decode_length: int) -> None:
    if max_decode_length < 1:
        raise UserError(f"max_decode_length must be at least 1, got {max_decode_length}")


def cached_decoder_step(
    *, model: T5Transformer, params: Any, encoded: Array, encoder_input_tokens: Array
) -> StepFn:
    """One cached decoder step against a fixed encoder output."""

    def step(cache: Any, tokens: Array) -> tuple[Array, Any]:
        logits, mutated = model.apply(
            {"params": params, "cache": cache},
            encoded,
            encoder_input_tokens,
            tokens,
            enable_dropout=False,
            decode=True,
            method=model.decode,
            mutable=["cache"],
        )
        return logits[:, -1, :], mutated["cache"]

    return step


def decode_token_by_token(
    *,
    model: T5Transformer,
    params: Any,
    encoder_input_tokens: Array,
    max_decode_length: int,
    eos_id: int,
    choose: ChooseFn,
) -> Array:
    """Tokens [B, max_decode_length], each picked by `choose` from the step's logits.

    Decoding starts from token 0. Each row stops at EOS (kept), then holds zeros; the loop
    ends early once every row has emitted EOS.
    """
    check_decode_length(max_decode_length)
    batch = encoder_input_tokens.shape[0]
    encoded = model.apply(
        {"params": params}, encoder_input_tokens, enable_dropout=False, method=model.encode
    )
    step_fn = cached_decoder_step(
        model=model, params=params, encoded=encoded, encoder_input_tokens=encoder_input_tokens
    )

    def pick(step: Array, logits: Array, out: Array, done: Array) -> tuple[Array, Array, Array]:
        nxt = jnp.where(done, 0, choose(logits, step).astype(jnp.int32))
        out = lax.dynamic_update_slice(out, nxt[:, None], (0, step))
        return nxt[:, None], out, done | (nxt == eos_id)

    def cond(state: tuple) -> Array:
        step, _, _, _, done = state
        return (step < max_decode_length) & ~jnp.all(done)

    def body(state: tuple) -> tuple:
        step, token, cache, out, done = state
        logits, cache = step_fn(cache, token)
        token, out, done = pick(step, logits, out, done)
        return step + 1, token, cache, out, done

    zero = jnp.zeros((), jnp.int32)
    logits, cache = step_fn(
        init_decode_cache(model, batch, max_decode_length), jnp.zeros((batch, 1), jnp.int32)
    )
    token, out, done = pick(
        zero,
        logits,
        jnp.zeros((batch, max_decode_length), jnp.int32),
        jnp.zeros((batch,), bool),
    )
    _, _, _, out, _ = lax.while_loop(cond, body, (zero + 1, token, cache, out, done))
    return out


def greedy_decode(
    *,
    model: T5Transformer,
    params: Any,
    encoder_input_tokens: Array,
    max_decode_length: int,
    eos_id: int = 1,
) -> Array:
    """Argmax tokens [B, max_decode_length]; each row stops at EOS (kept), then zeros."""
    return decode_token_by_token(
        model=model,
        params=params,
        encoder_input_tokens=encoder_input_tokens,
        max_decode_length=max_decode_length,
        eos_id=eos_id,
        choose=lambda logits, step: jnp.argmax(logits, axis=-1),
    )
