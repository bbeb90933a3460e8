"""Building blocks of T5: norm, dense, embedding, gated MLP, relative position bias.

Parameters are stored in float32 and cast to the compute dtype at use. Every parameter
carries logical axis names (t5x naming) so a mesh + rules can shard it; activations are
constrained with logical names too, which is a no-op without a mesh.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Initializer = Callable[..., jax.Array]
Array = jax.Array

# Additive bias for masked-out attention logits; finite so fully masked rows stay NaN-free.
NEG_INF = -1e10


def _as_tuple(x: int | Sequence[int]) -> tuple[int, ...]:
    return (x,) if isinstance(x, int) else tuple(x)


class RMSNorm(nn.Module):
    """T5 LayerNorm: scale only, no mean subtraction, no bias."""

    epsilon: float = 1e-6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = self.param(
            "scale",
            nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
            (x.shape[-1],),
            jnp.float32,
        )
        x32 = x.astype(jnp.float32)
        var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
        y = (x32 * lax.rsqrt(var + self.epsilon)).astype(self.dtype)
        return y * scale.astype(self.dtype)


class DenseGeneral(nn.Module):
    """Bias-free dense over one or more trailing input axes to one or more output axes."""

    features: int | tuple[int, ...]
    kernel_axes: tuple[str, ...]
    axis: int | tuple[int, ...] = -1
    kernel_init: Initializer = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        features = _as_tuple(self.features)
        axis = tuple(a % x.ndim for a in _as_tuple(self.axis))
        kernel_shape = tuple(x.shape[a] for a in axis) + features
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(self.kernel_init, self.kernel_axes),
            kernel_shape,
            jnp.float32,
        )
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        n_in = len(axis)
        if axis != tuple(range(x.ndim - n_in, x.ndim)):
            contract = (axis, tuple(range(n_in)))
            return lax.dot_general(x, kernel, (contract, ((), ())))
        # Trailing axes (every use in T5): flatten to one [tokens, in] @ [in, out] matmul.
        # A [B, L, E] dot_general makes the weight gradient contract over (B, L), which XLA:CPU
        # lowers with a strided transpose of the fused activation gradient (~35% of the
        # tiny model's train step); the 2-D form needs none.
        lead = x.shape[: x.ndim - n_in]
        y = x.reshape(-1, math.prod(kernel.shape[:n_in])) @ kernel.reshape(
            math.prod(kernel.shape[:n_in]), math.prod(features)
        )
        return y.reshape(lead + features)


class Embed(nn.Module):
    """Token embedding by gather (a one-hot matmul is far slower on CPU); `attend` ties logits."""

    num_embeddings: int
    features: int
    dtype: Any = jnp.float32
    embedding_init: Initializer = nn.initializers.normal(stddev=1.0)

    def setup(self) -> None:
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(self.embedding_init, ("vocab", "embed")),
            (self.num_embeddings, self.features),
            jnp.float32,
        )

    def __call__(self, ids: Array) -> Array:
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise TypeError(f"token ids must be integers, got {ids.dtype}")
        out = jnp.take(self.embedding, ids, axis=0).astype(self.dtype)
        return nn.with_logical_constraint(out, ("batch", "length", "embed"))

    def attend(self, query: Array) -> Array:
        """Logits against the embedding table: [..., embed] -> [..., vocab]."""
        return jnp.dot(query.astype(self.dtype), self.embedding.astype(self.dtype).T)


_ACTIVATION_FNS: dict[str, Callable[[Array], Array]] = {
    "gelu": lambda x: nn.gelu(x, approximate=True),  # T5.1.1 "gelu_new" (tanh approx.)
    "gelu_exact": lambda x: nn.gelu(x, approximate=False),
    "relu": nn.relu,
    "silu": nn.silu,
    "linear": lambda x: x,
}


class MlpBlock(nn.Module):
    """T5 feed-forward: product of activated projections (gated when >1), then wo."""

    mlp_dim: int
    activations: tuple[str, ...] = ("relu",)
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool) -> Array:
        init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
        hidden = None
        for idx, act in enumerate(self.activations):
            name = "wi" if len(self.activations) == 1 else f"wi_{idx}"
            h = DenseGeneral(
                self.mlp_dim, ("embed", "mlp"), kernel_init=init, dtype=self.dtype, name=name
            )(x)
            h = _ACTIVATION_FNS[act](h)
            hidden = h if hidden is None else hidden * h
        assert hidden is not None
        hidden = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(
            hidden, deterministic=deterministic
        )
        hidden = nn.with_logical_constraint(hidden, ("batch", "length", "mlp"))
        out = DenseGeneral(
            x.shape[-1], ("mlp", "embed"), kernel_init=init, dtype=self.dtype, name="wo"
        )(hidden)
        return out


def relative_position_bucket(
    relative_position: Array,
    *,
    bidirectional: bool,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> Array:
    """T5 bucketing of (key_pos - query_pos): half the buckets exact, the rest log-spaced.

    Bidirectional splits the buckets between keys after and before the query; the
    unidirectional (decoder) variant maps all future keys to bucket 0.
    """
    n = -relative_position.astype(jnp.int32)
    ret = jnp.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        ret = ret + (n < 0).astype(jnp.int32) * num_buckets
        n = jnp.abs(n)
    else:
        n = jnp.maximum(n, 0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    safe_n = jnp.maximum(n, 1).astype(jnp.float32)
    large = max_exact + (
        jnp.log(safe_n / max_exact + np.finfo(np.float32).eps)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).astype(jnp.int32)
    large = jnp.minimum(large, num_buckets - 1)
    return ret + jnp.where(is_small, n, large)


class RelativePositionBiases(nn.Module):
    """Learned per-head scalar bias per bucket; T5 computes it once per stack."""

    num_heads: int
    num_buckets: int = 32
    max_distance: int = 128
    bidirectional: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, query_positions: Array, key_positions: Array) -> Array:
        """Positions [B|1, q] and [B|1, k] -> bias [B|1, heads, q, k]."""
        rel = key_positions[:, None, :] - query_positions[:, :, None]
        buckets = relative_position_bucket(
            rel,
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        table = self.param(
            "rel_embedding",
            nn.with_logical_partitioning(
                nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
                ("heads", "relpos_buckets"),
            ),
            (self.num_heads, self.num_buckets),
            jnp.float32,
        )
        bias = jnp.take(table, buckets, axis=1)  # [heads, B, q, k]
        return jnp.transpose(bias, (1, 0, 2, 3)).astype(self.dtype)


def mask_to_bias(mask: Array) -> Array:
    """Boolean attention mask -> additive float32 bias (0 keep, NEG_INF drop)."""
    return jnp.where(mask, 0.0, NEG_INF).astype(jnp.float32)
