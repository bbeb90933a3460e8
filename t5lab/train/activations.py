"""The activations a T5 train step keeps for its backward pass, per remat policy.

An inventory, not a measurement: each entry is one tensor with its logical axes, shape and
dtype, so `t5lab.train.plan` can shard it like any array. Per layer, with B sequences, query
length L (inputs I in the encoder, targets T in the decoder), key length K (L for self
attention, I for cross attention), d = emb_dim, h x k = heads x head_dim, f = mlp_dim,
n = number of MLP activations (2 when gated), c = bytes of the compute dtype and s = bytes
of the attention logits (4 with float32_attention_logits):

  none     the layer input, both norm outputs, q, k, v, softmax probabilities (s, plus their
           cast to c when s != c), the attention output, the residual, n MLP pre-activations
           and the MLP hidden product (decoder layers: also the cross-attention block).
           Per encoder token: c*(4d + 4hk + (n+1)f) + (s [+ c])*h*I bytes.
  minimal  (jax `dots_with_no_batch_dims_saveable`) the layer input and the outputs of the
           weight matmuls: q, k, v, attention out-projection, the n MLP input projections
           and the MLP out-projection: c*(3d + 3hk + n*f) per encoder token.
  dots     minimal plus the attention matmuls (QK^T logits, s*h*K, and the AV output, hk).
  full     the layer input only (c*d per token); the layer is recomputed during backward.

With any remat the layer being recomputed holds its full `none` set once more (the largest
layer's is added). Once per step, whatever the policy: the attention biases (float32
[B, h, I, I], [B, h, T, T] and [B, 1, T, I]: relative positions plus masks), the encoder
output, and the logits ([B, T, vocab]: c from the matmul, float32 cast and softmax for the
loss gradient). Dropout masks, norms' float32 temporaries and XLA's own workspace are left
out; `tests/train/test_plan.py` checks the total against `memory_analysis()` of the
compiled step.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from t5lab.models import T5Config

REMAT_POLICIES = ("none", "minimal", "dots", "full")
_ALL = frozenset(REMAT_POLICIES)
_NONE = frozenset({"none"})
_DOTS = frozenset({"none", "minimal", "dots"})  # weight matmul outputs
_ATTENTION_DOTS = frozenset({"none", "dots"})  # QK^T and AV outputs


@dataclasses.dataclass(frozen=True)
class Tensor:
    what: str
    axes: tuple[str | None, ...]
    shape: tuple[int, ...]
    itemsize: int
    count: int = 1  # how many are alive at the peak (one per layer for per-layer tensors)


def _attention_block(
    config: T5Config, prefix: str, batch: int, q_len: int, k_len: int
) -> list[tuple[Tensor, frozenset]]:
    c = jnp.dtype(config.compute_dtype).itemsize
    s = 4 if config.float32_attention_logits else c
    heads, head_dim = config.num_heads, config.head_dim

    def projection(what: str, length: int) -> Tensor:
        return Tensor(
            f"{prefix} {what}",
            ("batch", "length", "heads", "kv"),
            (batch, length, heads, head_dim),
            c,
        )

    scores = ("batch", "heads", "length", "kv_length")
    out = [
        (
            Tensor(
                f"{prefix} norm", ("batch", "length", "embed"), (batch, q_len, config.emb_dim), c
            ),
            _NONE,
        ),
        (projection("q", q_len), _DOTS),
        (projection("k", k_len), _DOTS),
        (projection("v", k_len), _DOTS),
        (
            Tensor(f"{prefix} probabilities", scores, (batch, heads, q_len, k_len), s),
            _ATTENTION_DOTS,
        ),
        (projection("attention output", q_len), _ATTENTION_DOTS),
        (
            Tensor(
                f"{prefix} residual",
                ("batch", "length", "embed"),
                (batch, q_len, config.emb_dim),
                c,
            ),
            _DOTS,
        ),
    ]
    if s != c:
        cast = Tensor(f"{prefix} probabilities cast", scores, (batch, heads, q_len, k_len), c)
        out.append((cast, _NONE))
    return out


def _layer(
    config: T5Config, *, decoder: bool, batch: int, inputs_length: int, targets_length: int
) -> list[tuple[Tensor, frozenset]]:
    """Every tensor one layer keeps without remat, each tagged with the policies keeping it."""
    c = jnp.dtype(config.compute_dtype).itemsize
    length = targets_length if decoder else inputs_length
    embed = ("batch", "length", "embed")
    mlp = ("batch", "length", "mlp")
    hidden = (batch, length, config.mlp_dim)
    items = [(Tensor("layer input", embed, (batch, length, config.emb_dim), c), _ALL)]
    items += _attention_block(config, "self", batch, length, length)
    if decoder:
        items += _attention_block(config, "cross", batch, length, inputs_length)
    items.append((Tensor("mlp norm", embed, (batch, length, config.emb_dim), c), _NONE))
    for index in range(len(config.mlp_activations)):
        items.append((Tensor(f"mlp wi_{index}", mlp, hidden, c), _DOTS))
    items.append((Tensor("mlp hidden", mlp, hidden, c), _NONE))
    items.append((Tensor("mlp out", embed, (batch, length, config.emb_dim), c), _DOTS - _NONE))
    return items


def activation_tensors(
    *,
    config: T5Config,
    batch_size: int,
    inputs_length: int,
    targets_length: int,
    remat: str,
) -> list[Tensor]:
    """The tensors alive at the peak of one (micro)batch's backward pass."""
    if remat not in REMAT_POLICIES:
        raise ValueError(f"remat must be one of {REMAT_POLICIES}, got {remat!r}")
    c = jnp.dtype(config.compute_dtype).itemsize
    b, i, t = batch_size, inputs_length, targets_length
    out: list[Tensor] = []
    largest: list[Tensor] = []
    for decoder, layers in ((False, config.num_encoder_layers), (True, config.num_decoder_layers)):
        if not layers:
            continue
        items = _layer(config, decoder=decoder, batch=b, inputs_length=i, targets_length=t)
        kept = [tensor for tensor, policies in items if remat in policies]
        out += [dataclasses.replace(x, count=layers) for x in kept]
        if remat != "none":
            recomputed = [
                x for x, policies in items if "none" in policies and remat not in policies
            ]
            if sum(_nbytes(x) for x in recomputed) > sum(_nbytes(x) for x in largest):
                largest = recomputed
    out += largest
    heads = config.num_heads
    scores = ("batch", "heads", "length", "kv_length")
    if config.num_encoder_layers:
        out.append(Tensor("encoder bias", scores, (b, heads, i, i), 4))
        out.append(
            Tensor("encoder output", ("batch", "length", "embed"), (b, i, config.emb_dim), c)
        )
    if config.num_decoder_layers:
        out.append(Tensor("decoder self bias", scores, (b, heads, t, t), 4))
        out.append(Tensor("cross bias", ("batch", None, "length", "kv_length"), (b, 1, t, i), 4))
        logits = ("batch", "length", "vocab")
        shape = (b, t, config.vocab_size)
        out.append(Tensor("logits", logits, shape, c))
        if c != 4:
            out.append(Tensor("logits float32", logits, shape, 4))
        out.append(Tensor("softmax", logits, shape, 4))
    return out


def _nbytes(tensor: Tensor) -> int:
    return tensor.itemsize * tensor.count * math.prod(tensor.shape)
