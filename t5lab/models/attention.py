"""Multi-head dot-product attention as T5 does it, with an optional KV cache.

T5 never divides q.k by sqrt(head_dim) at run time: the scale is folded into the query
initialiser (stddev (d_model * head_dim) ** -0.5), which is equivalent under Adafactor.
Masks and the relative position bias arrive as one precomputed additive bias so the
stack can build them once for all layers.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from t5lab.models.layers import DenseGeneral

Array = jax.Array


class MultiHeadDotProductAttention(nn.Module):
    """Bias-free multi-head attention; `decode=True` keeps K/V in the 'cache' collection."""

    num_heads: int
    head_dim: int
    dtype: Any = jnp.float32
    dropout_rate: float = 0.0
    float32_logits: bool = True
    decode: bool = False

    @nn.compact
    def __call__(
        self,
        inputs_q: Array,
        inputs_kv: Array,
        bias: Array | None = None,
        *,
        deterministic: bool,
        decode_index: Array | None = None,
    ) -> Array:
        """inputs [B, q, E], [B, k, E]; bias broadcastable to [B, H, q, k].

        With `decode=True` and an existing cache, inputs_q holds one new step that is
        written at `decode_index`; attention then runs over the whole cache (the caller's
        bias masks the unwritten slots).
        """
        features = (self.num_heads, self.head_dim)
        base = nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=(1, 2))
        depth_scale = self.head_dim**0.5

        def query_init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
            return base(key, shape, dtype) / depth_scale

        def proj(name: str, init: Any, x: Array) -> Array:
            out = DenseGeneral(
                features, ("embed", "heads", "kv"), kernel_init=init, dtype=self.dtype, name=name
            )(x)
            return nn.with_logical_constraint(out, ("batch", "length", "heads", "kv"))

        query = proj("query", query_init, inputs_q)
        key = proj("key", base, inputs_kv)
        value = proj("value", base, inputs_kv)

        if self.decode:
            initialised = self.has_variable("cache", "cached_key")
            cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
            cached_value = self.variable(
                "cache", "cached_value", jnp.zeros, value.shape, value.dtype
            )
            if initialised and decode_index is not None:
                if query.shape[1] != 1:
                    raise ValueError(
                        f"cached decoding takes one step at a time, got length {query.shape[1]}"
                    )
                start = (0, decode_index, 0, 0)
                cached_key.value = lax.dynamic_update_slice(cached_key.value, key, start)
                cached_value.value = lax.dynamic_update_slice(cached_value.value, value, start)
                key, value = cached_key.value, cached_value.value

        logits_dtype = jnp.float32 if self.float32_logits else self.dtype
        logits = jnp.einsum("bqhd,bkhd->bhqk", query.astype(logits_dtype), key.astype(logits_dtype))
        if bias is not None:
            logits = logits + bias.astype(logits_dtype)
        weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
        weights = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(
            weights, deterministic=deterministic
        )
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, value.astype(self.dtype))
        out_init = nn.initializers.variance_scaling(
            1.0, "fan_in", "normal", in_axis=(0, 1), out_axis=2
        )
        out = DenseGeneral(
            inputs_q.shape[-1],
            ("heads", "kv", "embed"),
            axis=(-2, -1),
            kernel_init=out_init,
            dtype=self.dtype,
            name="out",
        )(out)
        return nn.with_logical_constraint(out, ("batch", "length", "embed"))
