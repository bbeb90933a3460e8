"""Behaviour of the T5 building blocks against independent reference computations."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from t5lab.models.attention import MultiHeadDotProductAttention
from t5lab.models.layers import (
    Embed,
    MlpBlock,
    RelativePositionBiases,
    RMSNorm,
    relative_position_bucket,
)


def ref_bucket(
    rel: int, bidirectional: bool, num_buckets: int = 32, max_distance: int = 128
) -> int:
    """T5's definition, in plain Python: half exact, the rest log-spaced to max_distance."""
    n = -rel
    ret = 0
    if bidirectional:
        num_buckets //= 2
        if n < 0:
            ret += num_buckets
        n = abs(n)
    else:
        n = max(n, 0)
    max_exact = num_buckets // 2
    if n < max_exact:
        return ret + n
    large = max_exact + int(
        math.log(n / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    )
    return ret + min(large, num_buckets - 1)


@pytest.mark.parametrize(
    ("rel", "bidirectional", "expected"),
    [
        (0, True, 0),
        (-1, True, 1),  # key one step before the query
        (1, True, 17),  # key one step after: the second half of the buckets
        (-7, True, 7),
        (-8, True, 8),  # first log-spaced bucket
        (8, True, 24),
        (-127, True, 15),
        (-1000, True, 15),  # clamped beyond max_distance
        (1000, True, 31),
        (0, False, 0),
        (5, False, 0),  # future keys collapse to bucket 0 in the decoder
        (-15, False, 15),
        (-16, False, 16),
        (-20, False, 17),
        (-127, False, 31),
        (-500, False, 31),
    ],
)
def test_relative_position_bucket_hand_values(rel: int, bidirectional: bool, expected: int) -> None:
    got = relative_position_bucket(jnp.array([rel]), bidirectional=bidirectional)
    assert int(got[0]) == expected
    assert ref_bucket(rel, bidirectional) == expected


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_bucket_matches_reference_everywhere(bidirectional: bool) -> None:
    rels = np.arange(-300, 301)
    got = np.asarray(relative_position_bucket(jnp.asarray(rels), bidirectional=bidirectional))
    want = np.array([ref_bucket(int(r), bidirectional) for r in rels])
    np.testing.assert_array_equal(got, want)


def test_relative_position_biases_lookup() -> None:
    mod = RelativePositionBiases(num_heads=3, bidirectional=True)
    pos = jnp.arange(5)[None]
    params = mod.init(jax.random.PRNGKey(0), pos, pos)
    bias = mod.apply(params, pos, pos)
    assert bias.shape == (1, 3, 5, 5)
    table = np.asarray(nn.unbox(params)["params"]["rel_embedding"])
    # query 4, key 1: rel -3 -> bucket 3
    np.testing.assert_allclose(bias[0, :, 4, 1], table[:, 3])
    np.testing.assert_allclose(bias[0, :, 1, 4], table[:, 16 + 3])


def test_rmsnorm_has_no_mean_subtraction_or_bias() -> None:
    x = jnp.array([[1.0, 2.0, 3.0, 4.0]]) + 10.0
    mod = RMSNorm()
    params = mod.init(jax.random.PRNGKey(0), x)
    assert set(nn.unbox(params)["params"]) == {"scale"}
    y = mod.apply(params, x)
    want = x / jnp.sqrt(jnp.mean(x**2, axis=-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, want, rtol=1e-6)
    assert float(jnp.mean(y)) > 0.9  # a LayerNorm would have centred it


def test_embed_gathers_and_attends() -> None:
    mod = Embed(num_embeddings=11, features=4)
    ids = jnp.array([[3, 0, 10]])
    params = mod.init(jax.random.PRNGKey(1), ids)
    table = np.asarray(nn.unbox(params)["params"]["embedding"])
    np.testing.assert_array_equal(mod.apply(params, ids)[0], table[[3, 0, 10]])
    q = jnp.ones((2, 4))
    np.testing.assert_allclose(
        mod.apply(params, q, method=Embed.attend), np.ones((2, 4)) @ table.T, rtol=1e-6
    )
    with pytest.raises(TypeError):
        mod.apply(params, jnp.ones((1, 2)))


def test_gated_mlp_matches_manual() -> None:
    mod = MlpBlock(mlp_dim=6, activations=("gelu", "linear"))
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4))
    params = mod.init(jax.random.PRNGKey(1), x, deterministic=True)
    p = nn.unbox(params)["params"]
    assert set(p) == {"wi_0", "wi_1", "wo"}
    h = nn.gelu(x @ p["wi_0"]["kernel"], approximate=True) * (x @ p["wi_1"]["kernel"])
    np.testing.assert_allclose(
        mod.apply(params, x, deterministic=True), h @ p["wo"]["kernel"], rtol=1e-5, atol=1e-6
    )


def test_attention_is_unscaled_dot_product() -> None:
    mod = MultiHeadDotProductAttention(num_heads=2, head_dim=3)
    xq = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 5))
    xk = jax.random.normal(jax.random.PRNGKey(1), (1, 6, 5))
    params = mod.init(jax.random.PRNGKey(2), xq, xk, deterministic=True)
    p = nn.unbox(params)["params"]
    q = jnp.einsum("bqe,ehd->bqhd", xq, p["query"]["kernel"])
    k = jnp.einsum("bke,ehd->bkhd", xk, p["key"]["kernel"])
    v = jnp.einsum("bke,ehd->bkhd", xk, p["value"]["kernel"])
    w = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), axis=-1)  # no 1/sqrt(d)
    o = jnp.einsum("bhqk,bkhd->bqhd", w, v)
    want = jnp.einsum("bqhd,hde->bqe", o, p["out"]["kernel"])
    got = mod.apply(params, xq, xk, deterministic=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_attention_init_folds_scale_into_query() -> None:
    d_model, heads, head_dim = 256, 8, 64
    mod = MultiHeadDotProductAttention(num_heads=heads, head_dim=head_dim)
    x = jnp.zeros((1, 1, d_model))
    p = nn.unbox(mod.init(jax.random.PRNGKey(0), x, x, deterministic=True))["params"]
    np.testing.assert_allclose(
        np.std(p["query"]["kernel"]), (d_model * head_dim) ** -0.5, rtol=0.05
    )
    np.testing.assert_allclose(np.std(p["key"]["kernel"]), d_model**-0.5, rtol=0.05)
    np.testing.assert_allclose(np.std(p["out"]["kernel"]), (heads * head_dim) ** -0.5, rtol=0.05)


def test_attention_bias_masks_keys() -> None:
    mod = MultiHeadDotProductAttention(num_heads=1, head_dim=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 3, 4))
    params = mod.init(jax.random.PRNGKey(1), x, x, deterministic=True)
    bias = jnp.array([0.0, 0.0, -1e10])[None, None, None, :]
    base = mod.apply(params, x, x, bias, deterministic=True)
    x2 = x.at[0, 2].set(100.0)  # change only the masked key/value
    np.testing.assert_allclose(mod.apply(params, x, x2, bias, deterministic=True), base, atol=1e-6)
