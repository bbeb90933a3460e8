"""Shared test setup: quiet TensorFlow, a shared XLA compilation cache, tiny configs."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Many tests compile the same tiny train step: share XLA executables across tests and the
# subprocesses they start (a cache, not a behaviour change).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "/tmp/t5lab-test-jax-cache")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from t5lab.models import T5Config  # noqa: E402

# gin/models/t5_1_1_tiny.gin with the default 8k vocabulary (padded to 8192): FLOP and plan tests.
TINY_8K_CONFIG = T5Config(
    vocab_size=8192,
    emb_dim=128,
    num_heads=4,
    head_dim=32,
    mlp_dim=512,
    num_encoder_layers=2,
    num_decoder_layers=2,
)

# The smallest model worth training in a test (same shape as tests/fixtures/micro.gin);
# vocab_size 0 = derived from the task's vocabulary by the trainer.
MICRO_CONFIG = T5Config(
    vocab_size=0,
    emb_dim=32,
    num_heads=2,
    head_dim=16,
    mlp_dim=64,
    num_encoder_layers=1,
    num_decoder_layers=1,
)


def save_random_hf_t5(directory: Path, *, d_model: int = 32, seed: int = 0) -> None:
    """A small random Hugging Face T5.1.1 over the default vocabulary, as a user would have."""
    import pytest

    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.T5Config(
        vocab_size=8192,
        d_model=d_model,
        d_kv=16,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(seed)
    model = transformers.T5ForConditionalGeneration(config).eval()
    model.save_pretrained(directory, safe_serialization=True)


def abstract_train_batch(*, batch: int, inputs: int, targets: int) -> dict:
    """ShapeDtypeStructs of an EncDecFeatureConverter batch, for lowering a train step."""
    import jax
    import jax.numpy as jnp

    dec = jax.ShapeDtypeStruct((batch, targets), jnp.int32)
    return {
        "encoder_input_tokens": jax.ShapeDtypeStruct((batch, inputs), jnp.int32),
        "decoder_input_tokens": dec,
        "decoder_target_tokens": dec,
        "decoder_loss_weights": jax.ShapeDtypeStruct((batch, targets), jnp.float32),
    }
