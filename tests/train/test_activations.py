"""The activation inventory follows the per-token formulas its docstring states."""

import math

import pytest

from t5lab.models import T5Config
from t5lab.train.activations import REMAT_POLICIES, activation_tensors

CONFIG = T5Config(
    vocab_size=1024,
    emb_dim=96,
    num_heads=3,
    head_dim=40,
    mlp_dim=200,
    num_encoder_layers=3,
    num_decoder_layers=0,  # encoder only: the per-layer tensors and the encoder bias remain
)


def _bytes(config, remat, batch=2, inputs=50, targets=10) -> int:
    tensors = activation_tensors(
        config=config, batch_size=batch, inputs_length=inputs, targets_length=targets, remat=remat
    )
    return sum(t.count * t.itemsize * math.prod(t.shape) for t in tensors)


@pytest.mark.parametrize("dtype, c, s", [("float32", 4, 4), ("bfloat16", 2, 6)])
def test_none_matches_the_per_token_formula(dtype, c, s):
    config = CONFIG.replace(dtype=dtype)
    d, hk, f, n, h = 96, 120, 200, 2, 3
    b, i, layers = 2, 50, 3
    per_token = c * (4 * d + 4 * hk + (n + 1) * f) + s * h * i
    stack = 4 * b * h * i * i + c * b * i * d  # the float32 bias and the encoder output
    assert _bytes(config, "none") == layers * b * i * per_token + stack


def test_minimal_and_full_match_their_formulas():
    d, hk, f, n = 96, 120, 200, 2
    b, i, layers, c = 2, 50, 3, 4
    stack = 4 * b * 3 * i * i + c * b * i * d
    recomputed_none = b * i * (c * (4 * d + 4 * hk + (n + 1) * f) + 4 * 3 * i)
    minimal = b * i * c * (3 * d + 3 * hk + n * f)
    # The layer under recomputation holds what minimal did not keep.
    extra = recomputed_none - b * i * c * (2 * d + 3 * hk + n * f)
    assert _bytes(CONFIG, "minimal") == layers * minimal + extra + stack
    full = b * i * c * d
    assert _bytes(CONFIG, "full") == layers * full + (recomputed_none - full) + stack


def test_more_remat_keeps_less():
    config = CONFIG.replace(num_decoder_layers=3, num_encoder_layers=6)
    kept = [_bytes(config, remat) for remat in ("full", "minimal", "dots", "none")]
    assert kept == sorted(kept) and len(set(kept)) == 4
    assert set(REMAT_POLICIES) == {"full", "minimal", "dots", "none"}
