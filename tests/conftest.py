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

