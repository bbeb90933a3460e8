"""The attention caches used in decoding: appended self-attention K/V, static cross K/V."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from t5lab.models.attention import MultiHeadDotProductAttention

HEADS, HEAD_DIM = 2, 4


def test_static_keys_values_are_projected_on_the_first_cached_step_only() -> None:
    attention = MultiHeadDotProductAttention(
        num_heads=HEADS, head_dim=HEAD_DIM, decode=True, static_kv=True
    )
    plain = attention.clone(decode=False, static_kv=False)
    rng_q, rng_kv, rng_init = jax.random.split(jax.random.PRNGKey(0), 3)
    query = jax.random.normal(rng_q, (2, 1, 8))
    memory = jax.random.normal(rng_kv, (2, 5, 8))
    variables = nn.unbox(attention.init(rng_init, query, memory, deterministic=True))
    assert "cache" not in variables  # the init call sizes nothing: inputs_kv may change length
    params = {"params": variables["params"]}

    first, state = attention.apply(
        params, query, memory, deterministic=True, decode_index=jnp.int32(0), mutable=["cache"]
    )
    cache = state["cache"]
    want_key = jnp.einsum("bte,ehd->bhdt", memory, params["params"]["key"]["kernel"])
    np.testing.assert_allclose(cache["static_key"], want_key, atol=1e-5)  # [B, H, D, k]
    assert cache["static_value"].shape == (2, HEADS, HEAD_DIM, 5)
    np.testing.assert_allclose(first, plain.apply(params, query, memory, deterministic=True))

    # Later steps read the stored projections: the memory's values no longer matter.
    later, _ = attention.apply(
        {**params, "cache": cache},
        query,
        jnp.zeros_like(memory),
        deterministic=True,
        decode_index=jnp.int32(1),
        mutable=["cache"],
    )
    np.testing.assert_allclose(later, first, atol=1e-6)
    without_cache = plain.apply(params, query, jnp.zeros_like(memory), deterministic=True)
    assert not np.allclose(without_cache, first, atol=1e-3)


def test_self_attention_cache_appends_one_step_at_its_index() -> None:
    attention = MultiHeadDotProductAttention(num_heads=HEADS, head_dim=HEAD_DIM, decode=True)
    length = 4
    zeros = jnp.zeros((1, length, 8))
    variables = nn.unbox(attention.init(jax.random.PRNGKey(0), zeros, zeros, deterministic=True))
    cache = variables["cache"]
    assert cache["cached_key"].shape == (1, HEADS, HEAD_DIM, length)
    steps = jax.random.normal(jax.random.PRNGKey(1), (1, length, 8))
    for index in range(length):
        x = steps[:, index : index + 1]
        _, state = attention.apply(
            {"params": variables["params"], "cache": cache},
            x,
            x,
            deterministic=True,
            decode_index=jnp.int32(index),
            mutable=["cache"],
        )
        cache = state["cache"]
    kernel = variables["params"]["key"]["kernel"]
    np.testing.assert_allclose(
        cache["cached_key"], jnp.einsum("bte,ehd->bhdt", steps, kernel), atol=1e-5
    )
