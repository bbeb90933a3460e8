"""Model FLOPs of one T5 train step, from parameter shapes (nothing is run).

Used for MFU (benchmarks/train_step.py) and for planning runs, so it must agree with what
XLA actually compiles; tests/train/test_flops.py checks it against `cost_analysis()`.

Conventions (the same as XLA's `cost_analysis()['flops']` and the "6N" rule):
- a multiply-add is 2 FLOPs; a train step is 3x the forward matmuls (forward 2, backward 4:
  the input gradient and the weight gradient);
- only matmuls count: the embedding lookup is a gather (free, its gradient a scatter-add),
  and norms, softmax, masks, the loss and the optimizer are left out (XLA counts them, a
  percent or two more);
- params are counted by module path from `jax.eval_shape` of init: `encoder/*` kernels run
  on every input position; `decoder/*` kernels run on every target position, except the
  cross-attention key/value kernels, which project the encoder output and so run on input
  positions; the logits projection (`decoder/logits_dense`, or the tied embedding when
  `logits_via_embedding`) counts for the decoder;
- attention adds, per layer and forward, QK^T and AV: 2 * 2 * B * q * k * heads * head_dim,
  with (q, k) = (I, I) for encoder self, (T, T) for decoder self (the whole causal square:
  XLA computes the masked half too) and (T, I) for cross attention; x3 for the train step.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from t5lab.models import T5Config, T5Transformer


@functools.lru_cache(maxsize=32)
def matmul_param_counts(*, config: T5Config) -> dict[str, int]:
    """Parameters by where their matmul runs (cached: the config is hashable)."""
    tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
    init = functools.partial(T5Transformer(config).init, enable_dropout=False)
    shapes = nn.unbox(jax.eval_shape(init, jax.random.PRNGKey(0), tokens, tokens)["params"])
    counts = {"encoder": 0, "cross_kv": 0, "decoder": 0, "embedding": 0, "other": 0}
    for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
        names = [str(getattr(key, "key", key)) for key in path]
        size = int(np.prod(leaf.shape))
        if names[-1] == "embedding":
            counts["embedding"] += size
        elif names[-1] != "kernel":  # norm scales, relative position tables
            counts["other"] += size
        elif names[0] == "encoder":
            counts["encoder"] += size
        elif "encoder_decoder_attention" in names and names[-2] in ("key", "value"):
            counts["cross_kv"] += size
        else:
            counts["decoder"] += size
    return counts


def encoder_decoder_flops(
    *, config: T5Config, batch_size: int, inputs_length: int, targets_length: int
) -> dict:
    """Train-step FLOPs (forward + backward) of the encoder-decoder, split by term."""
    params = matmul_param_counts(config=config)
    input_tokens = batch_size * inputs_length
    target_tokens = batch_size * targets_length
    # Parameters whose matmul runs once per input / per target position.
    input_params = params["encoder"] + params["cross_kv"]
    target_params = params["decoder"] + (params["embedding"] if config.logits_via_embedding else 0)
    dense = 6 * (input_params * input_tokens + target_params * target_tokens)

    def attention(queries: int, keys: int, layers: int) -> int:
        # QK^T and AV, 2 FLOPs per multiply-add, x3 for forward + backward.
        per_layer = 2 * 2 * batch_size * queries * keys * config.num_heads * config.head_dim
        return 3 * per_layer * layers

    encoder_self = attention(inputs_length, inputs_length, config.num_encoder_layers)
    decoder_self = attention(targets_length, targets_length, config.num_decoder_layers)
    cross = attention(targets_length, inputs_length, config.num_decoder_layers)
    attention_total = encoder_self + decoder_self + cross
    return {
        "total": dense + attention_total,
        "dense": dense,
        "attention": attention_total,
        "attention_encoder_self": encoder_self,
        "attention_decoder_self": decoder_self,
        "attention_cross": cross,
        "input_params": input_params,
        "target_params": target_params,
        "input_tokens": input_tokens,
        "target_tokens": target_tokens,
        "params": params,
    }
