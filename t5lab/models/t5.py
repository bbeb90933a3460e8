"""The T5 encoder-decoder (v1.0 and v1.1 via `T5Config`).

Feature-converter contract: the model consumes exactly what `seqio.EncDecFeatureConverter`
produces. Unpacked: `encoder_input_tokens` [B, Te], `decoder_input_tokens` [B, Td] (the
targets shifted right with start token 0), `decoder_target_tokens` [B, Td] and
`decoder_loss_weights` [B, Td] (the loss uses the latter; the model does not). With
pack=True also `encoder_segment_ids`, `encoder_positions`, `decoder_segment_ids`,
`decoder_positions` (segments numbered from 1, 0 = padding, positions restart at 0 per
segment). Token id 0 is padding. Because the decoder start token is also 0, decoder
padding is read from `decoder_target_tokens`; without it (decoding) the decoder mask is
causal only.

Attention never crosses segments (encoder self, decoder causal self and cross attention).
The relative position bias is computed once per stack from the given positions (or arange).

rngs: 'params' for init, 'dropout' when `enable_dropout=True` and dropout_rate > 0.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from t5lab.models.attention import MultiHeadDotProductAttention
from t5lab.models.config import T5Config
from t5lab.models.layer_stack import layer_class
from t5lab.models.layers import (
    DenseGeneral,
    Embed,
    MlpBlock,
    RelativePositionBiases,
    RMSNorm,
    mask_to_bias,
)

Array = jax.Array


def _positions(tokens: Array, positions: Array | None) -> Array:
    if positions is not None:
        return positions.astype(jnp.int32)
    return jnp.arange(tokens.shape[1], dtype=jnp.int32)[None, :]


def _segment_mask(q_seg: Array | None, k_seg: Array | None) -> Array | bool:
    if q_seg is None or k_seg is None:
        return True
    return q_seg[:, None, :, None] == k_seg[:, None, None, :]


def _relpos(cfg: T5Config, bidirectional: bool) -> RelativePositionBiases:
    return RelativePositionBiases(
        num_heads=cfg.num_heads,
        num_buckets=cfg.relative_attention_num_buckets,
        max_distance=cfg.relative_attention_max_distance,
        bidirectional=bidirectional,
        dtype=jnp.float32,
        name="relpos_bias",
    )


def _attention(
    cfg: T5Config, name: str, decode: bool = False, static_kv: bool = False
) -> MultiHeadDotProductAttention:
    return MultiHeadDotProductAttention(
        num_heads=cfg.num_heads,
        head_dim=cfg.head_dim,
        dtype=cfg.compute_dtype,
        dropout_rate=cfg.dropout_rate,
        float32_logits=cfg.float32_attention_logits,
        decode=decode,
        static_kv=static_kv,
        name=name,
    )


def _layer_class(
    cfg: T5Config, cls: type[nn.Module], num_layers: int, broadcast_args: int
) -> type[nn.Module]:
    """`cls` with the config's remat policy; scanned `num_layers` times if `cfg.scan_layers`."""
    scan_length = num_layers if cfg.scan_layers else 0
    return layer_class(cls, remat=cfg.remat, scan_length=scan_length, broadcast_args=broadcast_args)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + MLP, each with dropout and a residual."""

    config: T5Config
    deterministic: bool

    @nn.compact
    def __call__(self, x: Array, bias: Array) -> Array:
        cfg, det = self.config, self.deterministic
        drop = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))
        y = RMSNorm(dtype=cfg.compute_dtype, name="pre_attention_layer_norm")(x)
        y = _attention(cfg, "attention")(y, y, bias, deterministic=det)
        x = x + drop(y, deterministic=det)
        y = RMSNorm(dtype=cfg.compute_dtype, name="pre_mlp_layer_norm")(x)
        y = MlpBlock(
            cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, cfg.compute_dtype, name="mlp"
        )(y, deterministic=det)
        x = x + drop(y, deterministic=det)
        return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class DecoderLayer(nn.Module):
    """Pre-norm causal self-attention, cross-attention and MLP."""

    config: T5Config
    deterministic: bool
    decode: bool = False

    @nn.compact
    def __call__(
        self,
        x: Array,
        encoded: Array,
        self_bias: Array,
        cross_bias: Array,
        decode_index: Array | None,
    ) -> Array:
        cfg, det = self.config, self.deterministic
        drop = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))
        y = RMSNorm(dtype=cfg.compute_dtype, name="pre_self_attention_layer_norm")(x)
        y = _attention(cfg, "self_attention", self.decode)(
            y, y, self_bias, deterministic=det, decode_index=decode_index
        )
        x = x + drop(y, deterministic=det)
        y = RMSNorm(dtype=cfg.compute_dtype, name="pre_cross_attention_layer_norm")(x)
        # Decoding projects the encoder output once, on the first cached step (attention.py).
        y = _attention(cfg, "encoder_decoder_attention", self.decode, static_kv=True)(
            y, encoded, cross_bias, deterministic=det, decode_index=decode_index
        )
        x = x + drop(y, deterministic=det)
        y = RMSNorm(dtype=cfg.compute_dtype, name="pre_mlp_layer_norm")(x)
        y = MlpBlock(
            cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, cfg.compute_dtype, name="mlp"
        )(y, deterministic=det)
        x = x + drop(y, deterministic=det)
        return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class Encoder(nn.Module):
    config: T5Config
    shared_embedding: Embed

    @nn.compact
    def __call__(
        self,
        tokens: Array,
        segment_ids: Array | None,
        positions: Array | None,
        *,
        deterministic: bool,
    ) -> Array:
        cfg = self.config
        valid = tokens > 0
        mask = valid[:, None, :, None] & valid[:, None, None, :]
        mask = mask & _segment_mask(segment_ids, segment_ids)
        pos = _positions(tokens, positions)
        bias = _relpos(cfg, bidirectional=True)(pos, pos) + mask_to_bias(mask)

        x = self.shared_embedding(tokens.astype(jnp.int32))
        x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
        layer_cls = _layer_class(cfg, EncoderLayer, cfg.num_encoder_layers, broadcast_args=1)
        if cfg.scan_layers:
            x, _ = layer_cls(cfg, deterministic, name="layers")(x, bias)
        else:
            for i in range(cfg.num_encoder_layers):
                x = layer_cls(cfg, deterministic, name=f"layers_{i}")(x, bias)
        x = RMSNorm(dtype=cfg.compute_dtype, name="encoder_norm")(x)
        return nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)


class Decoder(nn.Module):
    config: T5Config
    shared_embedding: Embed

    @nn.compact
    def __call__(
        self,
        encoded: Array,
        encoder_tokens: Array,
        tokens: Array,
        target_tokens: Array | None,
        encoder_segment_ids: Array | None,
        segment_ids: Array | None,
        positions: Array | None,
        *,
        deterministic: bool,
        decode: bool,
    ) -> Array:
        cfg = self.config
        relpos = _relpos(cfg, bidirectional=False)
        enc_valid = (encoder_tokens > 0)[:, None, None, :]
        decode_index = None
        if decode and self.has_variable("cache", "cache_index"):
            # One cached step: the query sits at cache_index, keys are every cache slot.
            index_var = self.variable("cache", "cache_index", jnp.zeros, (), jnp.int32)
            key_pos = self.variable("cache", "key_positions", jnp.zeros, (1,), jnp.int32).value
            decode_index = index_var.value
            index_var.value = decode_index + 1
            q_pos = jnp.reshape(decode_index, (1, 1))
            self_mask = (key_pos <= decode_index)[None, None, None, :]
            self_bias = relpos(q_pos, key_pos[None, :]) + mask_to_bias(self_mask)
            cross_bias = mask_to_bias(enc_valid)
        else:
            length = tokens.shape[1]
            if decode:  # init call: create the stack's cache entries alongside the layers'
                self.variable("cache", "cache_index", jnp.zeros, (), jnp.int32)
                self.variable("cache", "key_positions", lambda: jnp.arange(length, dtype=jnp.int32))
            idx = jnp.arange(length)
            self_mask = (idx[:, None] >= idx[None, :])[None, None]
            q_valid = (
                jnp.ones_like(tokens, dtype=bool) if target_tokens is None else target_tokens > 0
            )
            if target_tokens is not None:
                self_mask = self_mask & q_valid[:, None, :, None] & q_valid[:, None, None, :]
            self_mask = self_mask & _segment_mask(segment_ids, segment_ids)
            pos = _positions(tokens, positions)
            self_bias = relpos(pos, pos) + mask_to_bias(self_mask)
            cross_mask = q_valid[:, None, :, None] & enc_valid
            cross_mask = cross_mask & _segment_mask(segment_ids, encoder_segment_ids)
            cross_bias = mask_to_bias(cross_mask)

        y = self.shared_embedding(tokens.astype(jnp.int32))
        y = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(y, deterministic=deterministic)
        layer_cls = _layer_class(cfg, DecoderLayer, cfg.num_decoder_layers, broadcast_args=4)
        if cfg.scan_layers:
            y, _ = layer_cls(cfg, deterministic, decode, name="layers")(
                y, encoded, self_bias, cross_bias, decode_index
            )
        else:
            for i in range(cfg.num_decoder_layers):
                y = layer_cls(cfg, deterministic, decode, name=f"layers_{i}")(
                    y, encoded, self_bias, cross_bias, decode_index
                )
        y = RMSNorm(dtype=cfg.compute_dtype, name="decoder_norm")(y)
        y = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(y, deterministic=deterministic)
        if cfg.logits_via_embedding:
            # Tied (v1.0): rescale so logits do not grow with d_model, as Mesh TF T5 does.
            logits = self.shared_embedding.attend(y) / math.sqrt(cfg.emb_dim)
        else:
            logits = DenseGeneral(
                cfg.vocab_size,
                ("embed", "vocab"),
                dtype=cfg.compute_dtype,
                name="logits_dense",
            )(y)
        logits = nn.with_logical_constraint(logits, ("batch", "length", "vocab"))
        return logits.astype(jnp.float32)


class T5Transformer(nn.Module):
    """T5 encoder-decoder returning float32 logits [B, T_dec, vocab_size]."""

    config: T5Config

    def setup(self) -> None:
        cfg = self.config
        if cfg.vocab_size <= 0:
            raise ValueError("T5Config.vocab_size is unset (0): fill it from the vocabulary first")
        self.token_embedder = Embed(cfg.vocab_size, cfg.emb_dim, dtype=cfg.compute_dtype)
        self.encoder = Encoder(cfg, shared_embedding=self.token_embedder)
        self.decoder = Decoder(cfg, shared_embedding=self.token_embedder)

    def encode(
        self,
        encoder_input_tokens: Array,
        *,
        encoder_segment_ids: Array | None = None,
        encoder_positions: Array | None = None,
        enable_dropout: bool = True,
    ) -> Array:
        """Encoder output [B, T_enc, emb_dim] (reused across decode steps)."""
        return self.encoder(
            encoder_input_tokens,
            encoder_segment_ids,
            encoder_positions,
            deterministic=not enable_dropout,
        )

    def decode(
        self,
        encoded: Array,
        encoder_input_tokens: Array,
        decoder_input_tokens: Array,
        decoder_target_tokens: Array | None = None,
        *,
        encoder_segment_ids: Array | None = None,
        decoder_segment_ids: Array | None = None,
        decoder_positions: Array | None = None,
        enable_dropout: bool = True,
        decode: bool = False,
    ) -> Array:
        """Decoder logits. `decode=True` runs one cached step (apply with mutable=['cache']).

        The first cached step also stores the cross-attention keys/values of `encoded` in the
        cache; later steps reuse them (the cache then belongs to that one encoder output).
        """
        return self.decoder(
            encoded,
            encoder_input_tokens,
            decoder_input_tokens,
            decoder_target_tokens,
            encoder_segment_ids,
            decoder_segment_ids,
            decoder_positions,
            deterministic=not enable_dropout,
            decode=decode,
        )

    def __call__(
        self,
        encoder_input_tokens: Array,
        decoder_input_tokens: Array,
        decoder_target_tokens: Array | None = None,
        *,
        encoder_segment_ids: Array | None = None,
        decoder_segment_ids: Array | None = None,
        encoder_positions: Array | None = None,
        decoder_positions: Array | None = None,
        enable_dropout: bool = True,
        decode: bool = False,
    ) -> Array:
        encoded = self.encode(
            encoder_input_tokens,
            encoder_segment_ids=encoder_segment_ids,
            encoder_positions=encoder_positions,
            enable_dropout=enable_dropout,
        )
        return self.decode(
            encoded,
            encoder_input_tokens,
            decoder_input_tokens,
            decoder_target_tokens,
            encoder_segment_ids=encoder_segment_ids,
            decoder_segment_ids=decoder_segment_ids,
            decoder_positions=decoder_positions,
            enable_dropout=enable_dropout,
            decode=decode,
        )


def _abstract_init(
    model: T5Transformer, batch: int, enc_len: int, dec_len: int, decode: bool
) -> dict:
    enc = jax.ShapeDtypeStruct((batch, enc_len), jnp.int32)
    dec = jax.ShapeDtypeStruct((batch, dec_len), jnp.int32)
    init = functools.partial(model.init, enable_dropout=False, decode=decode)
    return jax.eval_shape(init, jax.random.PRNGKey(0), enc, dec)


def param_count(config: T5Config) -> int:
    """Exact number of parameters, from shapes only (nothing is allocated)."""
    shapes = _abstract_init(T5Transformer(config), 1, 4, 4, decode=False)
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nn.unbox(shapes["params"]))))


def init_decode_cache(model: T5Transformer, batch_size: int, max_decode_length: int) -> dict:
    """Zeroed KV cache for `max_decode_length` steps (shapes via eval_shape, no init run)."""
    shapes = _abstract_init(model, batch_size, 1, max_decode_length, decode=True)["cache"]
    cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), nn.unbox(shapes))
    # key_positions must hold arange, which the abstract init cannot carry.
    cache["decoder"]["key_positions"] = jnp.arange(max_decode_length, dtype=jnp.int32)
    return cache
