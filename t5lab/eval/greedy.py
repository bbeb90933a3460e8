"""Greedy decoding with the KV cache: encode once, then one cached decoder step per token.

jit it with the model and lengths static, e.g.
`jax.jit(functools.partial(greedy_decode, model=model, max_decode_length=L))`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from t5lab.models.t5 import T5Transformer, init_decode_cache

Array = jax.Array


def greedy_decode(
    *,
    model: T5Transformer,
    params: Any,
    encoder_input_tokens: Array,
    max_decode_length: int,
    eos_id: int = 1,
) -> Array:
    """Argmax tokens [B, max_decode_length]; each row stops at EOS (kept), then zeros.

    The loop ends early once every row has emitted EOS. Decoding starts from token 0.
    """
    batch = encoder_input_tokens.shape[0]
    variables = {"params": params}
    encoded = model.apply(
        variables, encoder_input_tokens, enable_dropout=False, method=model.encode
    )
    cache = init_decode_cache(model, batch, max_decode_length)

    def cond(state: tuple) -> Array:
        step, _, _, _, done = state
        return (step < max_decode_length) & ~jnp.all(done)

    def body(state: tuple) -> tuple:
        step, token, cache, out, done = state
        logits, mutated = model.apply(
            {"params": params, "cache": cache},
            encoded,
            encoder_input_tokens,
            token,
            enable_dropout=False,
            decode=True,
            method=model.decode,
            mutable=["cache"],
        )
        nxt = jnp.argmax(logits[:, -1, :], axis=-1).astype(jnp.int32)
        nxt = jnp.where(done, 0, nxt)
        out = lax.dynamic_update_slice(out, nxt[:, None], (0, step))
        done = done | (nxt == eos_id)
        return step + 1, nxt[:, None], mutated["cache"], out, done

    init = (
        jnp.zeros((), jnp.int32),
        jnp.zeros((batch, 1), jnp.int32),
        cache,
        jnp.zeros((batch, max_decode_length), jnp.int32),
        jnp.zeros((batch,), bool),
    )
    _, _, _, out, _ = lax.while_loop(cond, body, init)
    return out
