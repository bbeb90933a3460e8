"""ELECTRA (Clark et al. 2020): a small MLM generator and a replaced-token discriminator.

Both are T5 encoder stacks (`Encoder`: relative position bias, RMSNorm, gated MLP) that
share one token embedding table, as ELECTRA shares its embeddings. The table has the
discriminator's `emb_dim`; the generator is narrower (emb_dim, num_heads and mlp_dim scaled
by `generator_size_ratio`, same depth and head_dim, like ELECTRA's generators), so it reads
the shared table through a projection down to its width and projects back up before its
tied output layer (BERT/ELECTRA's `embedding_size != hidden_size` projection).

Data contract: `input_tokens` is the masked text (every selected position holds `mask_id`),
`original_tokens` the same text unmasked, aligned position by position, 0 = padding.
rngs: 'params' for init, 'dropout' when `enable_dropout=True`; sampling uses `sample_rng`.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from t5lab.models.config import T5Config
from t5lab.models.layers import NEG_INF, DenseGeneral, Embed, RMSNorm
from t5lab.models.t5 import Encoder

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class ElectraConfig:
    """Discriminator shape (a T5Config; decoder fields ignored) plus the ELECTRA knobs."""

    discriminator: T5Config = T5Config()
    generator_size_ratio: float = 0.25
    discriminator_weight: float = 50.0
    # 0 = not yet known: the trainer fills it with the vocabulary's <extra_id_0>.
    mask_id: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.generator_size_ratio <= 1.0:
            raise ValueError(
                f"generator_size_ratio must be in (0, 1], got {self.generator_size_ratio}"
            )
        if self.discriminator_weight < 0.0:
            raise ValueError(f"discriminator_weight must be >= 0, got {self.discriminator_weight}")
        if self.mask_id < 0:
            raise ValueError(f"mask_id must be >= 0 (0 = unset), got {self.mask_id}")

    @property
    def vocab_size(self) -> int:
        return self.discriminator.vocab_size

    @property
    def generator(self) -> T5Config:
        """The discriminator scaled down in width (emb, heads, mlp); depth is kept."""

        def scale(n: int) -> int:
            return max(1, round(n * self.generator_size_ratio))

        d = self.discriminator
        return d.replace(
            emb_dim=scale(d.emb_dim), num_heads=scale(d.num_heads), mlp_dim=scale(d.mlp_dim)
        )

    def with_vocab_size(self, vocab_size: int) -> ElectraConfig:
        """Copy with another vocabulary size (the trainer derives it from the vocabulary)."""
        return dataclasses.replace(
            self, discriminator=self.discriminator.with_vocab_size(vocab_size)
        )

    def replace(self, **changes: object) -> ElectraConfig:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)


class _ProjectedEmbed(nn.Module):
    """The shared table seen through a projection to the generator's width."""

    embed: Embed
    features: int
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, ids: Array) -> Array:
        x = self.embed(ids)
        if x.shape[-1] == self.features:
            return x
        return DenseGeneral(self.features, ("embed", "mlp"), dtype=self.dtype, name="proj")(x)


class Electra(nn.Module):
    """Generator + discriminator; `__call__` runs both and returns a dict of outputs."""

    config: ElectraConfig

    def setup(self) -> None:
        cfg = self.config
        disc, gen = cfg.discriminator, cfg.generator
        if cfg.vocab_size <= 0:
            raise ValueError("ElectraConfig vocab_size is unset (0): fill it from the vocabulary")
        if not 0 < cfg.mask_id < cfg.vocab_size:
            raise ValueError(
                f"ElectraConfig.mask_id {cfg.mask_id} must be in [1, {cfg.vocab_size}): "
                "fill it with the vocabulary's mask token (<extra_id_0>)"
            )
        dtype = disc.compute_dtype
        self.token_embedder = Embed(cfg.vocab_size, disc.emb_dim, dtype=dtype)
        gen_embed = _ProjectedEmbed(self.token_embedder, gen.emb_dim, dtype, name="generator_embed")
        self.generator_encoder = Encoder(gen, shared_embedding=gen_embed)
        self.generator_head = DenseGeneral(disc.emb_dim, ("mlp", "embed"), dtype=dtype)
        self.generator_head_norm = RMSNorm(dtype=dtype)
        self.generator_bias = self.param(
            "generator_logits_bias",
            nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)),
            (cfg.vocab_size,),
            jnp.float32,
        )
        self.discriminator_encoder = Encoder(disc, shared_embedding=self.token_embedder)
        self.discriminator_dense = DenseGeneral(disc.emb_dim, ("embed", "mlp"), dtype=dtype)
        self.discriminator_out = DenseGeneral(1, ("mlp", "vocab"), dtype=dtype)

    def generate(self, input_tokens: Array, *, enable_dropout: bool) -> Array:
        """Generator MLM logits [B, T, vocab] (float32), tied to the shared table."""
        h = self.generator_encoder(input_tokens, None, None, deterministic=not enable_dropout)
        h = self.generator_head_norm(nn.gelu(self.generator_head(h)))
        # The table is initialised with stddev 1: rescale as tied T5 v1.0 logits are.
        logits = self.token_embedder.attend(h) / math.sqrt(self.config.discriminator.emb_dim)
        return logits.astype(jnp.float32) + self.generator_bias

    def discriminate(self, tokens: Array, *, enable_dropout: bool) -> Array:
        """Per-token 'was replaced' logits [B, T] (float32)."""
        h = self.discriminator_encoder(tokens, None, None, deterministic=not enable_dropout)
        h = nn.gelu(self.discriminator_dense(h))
        return self.discriminator_out(h)[..., 0].astype(jnp.float32)

    def __call__(
        self,
        input_tokens: Array,
        original_tokens: Array,
        *,
        sample_rng: Array,
        enable_dropout: bool = True,
    ) -> dict[str, Array]:
        """Generator logits, the corrupted text, replaced labels and discriminator logits."""
        mask_id = self.config.mask_id
        gen_logits = self.generate(input_tokens, enable_dropout=enable_dropout)
        masked = input_tokens == mask_id
        # Never sample padding (it would hide the token from attention) nor the mask token;
        # the sample is data for the discriminator: no gradient reaches the generator.
        ids = jnp.arange(gen_logits.shape[-1])
        allowed = (ids != 0) & (ids != mask_id)
        sample_logits = jnp.where(allowed, jax.lax.stop_gradient(gen_logits), NEG_INF)
        samples = jax.random.categorical(sample_rng, sample_logits, axis=-1)
        corrupted = jnp.where(masked, samples, original_tokens).astype(jnp.int32)
        replaced = (corrupted != original_tokens) & (original_tokens > 0)
        return {
            "generator_logits": gen_logits,
            "masked": masked,
            "corrupted_tokens": corrupted,
            "replaced": replaced,
            "discriminator_logits": self.discriminate(corrupted, enable_dropout=enable_dropout),
        }


def param_count(config: ElectraConfig) -> int:
    """Exact number of parameters (generator + discriminator, shared table once)."""
    tokens = jax.ShapeDtypeStruct((1, 4), jnp.int32)
    init = jax.eval_shape(
        lambda rng, t: Electra(config).init(rng, t, t, sample_rng=rng, enable_dropout=False),
        jax.random.PRNGKey(0),
        tokens,
    )
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nn.unbox(init["params"]))))
