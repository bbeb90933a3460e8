"""Multi-head dot-product attention as T5 does it, with an optional KV cache.

T5 never divides q.k by sqrt(head_dim) at run time: the scale is folded into the query
initialiser (stddev (d_model * head_dim) ** -0.5), which is equivalent under Adafactor.
Masks and the relative position bias arrive as one precomputed additive bias so the
stack can build them once for all layers.

Decoding caches two kinds of keys/values, both as [..., B, H, D, length]. Self-attention
appends one step per call (`cached_key`/`cached_value`, written at the step's index).
Cross-attention (`static_kv=True`) attends to the same encoder output at every step, so its
projections are computed once, on the first cached step, and kept as `static_key` /
`static_value` rather than left to the compiler to hoist out of the decoding loop (which
XLA does for an unrolled stack but cannot inside a scanned one).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from t5lab.models.layers import DenseGeneral

Array = jax.Array


def _to_cache_layout(x: Array) -> Array:
    """[B, k, H, D] -> [B, H, D, k]: the layout XLA's batched attention dots read, so a
    cached step does not transpose the whole cache (as it did in [B, k, H, D])."""
    return jnp.transpose(x, (0, 2, 3, 1))


class MultiHeadDotProductAttention(nn.Module):
    """Bias-free multi-head attention; `decode=True` keeps K/V in the 'cache' collection.

    `static_kv=True` marks inputs_kv as fixed for the whole decode (cross-attention).
    """

    num_heads: int
    head_dim: int
    dtype: Any = jnp.float32
    dropout_rate: float = 0.0
    float32_logits: bool = True
    decode: bool = False
    static_kv: bool = False

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

        With `decode=True`, a call with `decode_index` is one cached step: inputs_q holds the
        new step. Self-attention writes its K/V at `decode_index` and attends over the whole
        cache (the caller's bias masks the unwritten slots). With `static_kv`, the first cached
        step projects inputs_kv and stores the result; later steps reuse it and ignore the
        values of inputs_kv. A call without `decode_index` (the init call) sizes the cache.
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
        cached_step = self.decode and decode_index is not None
        kv_layout = "bkhd"  # [B, k, H, D]; "bhdk" once read from or written to the cache
        if cached_step and self.static_kv and self.has_variable("cache", "static_key"):
            kv_layout = "bhdk"
            key = self.get_variable("cache", "static_key")
            value = self.get_variable("cache", "static_value")
        else:
            key = proj("key", base, inputs_kv)
            value = proj("value", base, inputs_kv)
            if cached_step and self.static_kv:
                kv_layout = "bhdk"
                key, value = _to_cache_layout(key), _to_cache_layout(value)
                self.put_variable("cache", "static_key", key)
                self.put_variable("cache", "static_value", value)

        if self.decode and not self.static_kv:
            initialised = self.has_variable("cache", "cached_key")
            shape = _to_cache_layout(key).shape
            cached_key = self.variable("cache", "cached_key", jnp.zeros, shape, key.dtype)
            cached_value = self.variable("cache", "cached_value", jnp.zeros, shape, value.dtype)
            if initialised and cached_step:
                if query.shape[1] != 1:
                    raise ValueError(
                        f"cached decoding takes one step at a time, got length {query.shape[1]}"
                    )
                kv_layout, start = "bhdk", (0, 0, 0, decode_index)
                key = lax.dynamic_update_slice(cached_key.value, _to_cache_layout(key), start)
                value = lax.dynamic_update_slice(cached_value.value, _to_cache_layout(value), start)
                cached_key.value, cached_value.value = key, value

        logits_dtype = jnp.float32 if self.float32_logits else self.dtype
        logits = jnp.einsum(
            f"bqhd,{kv_layout}->bhqk", query.astype(logits_dtype), key.astype(logits_dtype)
        )
        if bias is not None:
            logits = logits + bias.astype(logits_dtype)
        weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
        weights = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(
            weights, deterministic=deterministic
        )
        out = jnp.einsum(f"bhqk,{kv_layout}->bqhd", weights, value.astype(self.dtype))
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
