"""T5 architecture hyperparameters.

A plain frozen dataclass so it is hashable (usable as a static jit argument and as a
flax module attribute) and so gin can bind it from the outside without library code
depending on gin.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

_ACTIVATIONS = ("gelu", "relu", "linear", "silu", "gelu_exact")
_REMAT = ("none", "minimal", "dots", "full")  # see t5lab/models/layer_stack.py


@dataclasses.dataclass(frozen=True)
class T5Config:
    """Shape and behaviour of a T5 encoder-decoder (defaults: T5.1.1-small minus vocab)."""

    # 0 = not yet known: the trainer fills it from the vocabulary (padded to 128).
    vocab_size: int = 0
    emb_dim: int = 512
    num_heads: int = 6
    head_dim: int = 64
    mlp_dim: int = 1024
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    mlp_activations: tuple[str, ...] = ("gelu", "linear")
    dropout_rate: float = 0.0
    logits_via_embedding: bool = False
    dtype: str = "float32"
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    float32_attention_logits: bool = True
    # Memory/compile knobs for big configs (t5lab/models/layer_stack.py): rematerialisation
    # policy per layer, and nn.scan over each stack (params get a leading `layers` axis).
    remat: str = "none"
    scan_layers: bool = False

    def __post_init__(self) -> None:
        # gin hands lists for tuple-valued bindings; normalise so the config stays hashable.
        object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
        if self.vocab_size < 0:
            raise ValueError(f"vocab_size must be positive (or 0 = unset), got {self.vocab_size}")
        for act in self.mlp_activations:
            if act not in _ACTIVATIONS:
                raise ValueError(f"unknown mlp activation {act!r}; expected one of {_ACTIVATIONS}")
        if not self.mlp_activations:
            raise ValueError("mlp_activations must name at least one activation")
        if self.remat not in _REMAT:
            raise ValueError(f"remat must be one of {_REMAT}, got {self.remat!r}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        jnp.dtype(self.dtype)  # fail early on a bad dtype name

    @property
    def compute_dtype(self) -> jnp.dtype:
        """Activation dtype; parameters are always stored in float32."""
        return jnp.dtype(self.dtype)

    def with_vocab_size(self, vocab_size: int) -> T5Config:
        """Copy with another vocabulary size (the trainer derives it from the vocabulary)."""
        return dataclasses.replace(self, vocab_size=vocab_size)

    def replace(self, **changes: object) -> T5Config:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)
