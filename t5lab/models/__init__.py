"""T5 encoder-decoder models (Flax linen)."""

from t5lab.models.config import T5Config
from t5lab.models.t5 import T5Transformer, init_decode_cache, param_count

__all__ = ["T5Config", "T5Transformer", "init_decode_cache", "param_count"]
