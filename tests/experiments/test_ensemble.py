"""Logit-averaged ensembles: one member is the model itself; two beat their mean loss."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import numpy as np
import pytest
from conftest import MICRO_CONFIG

from t5lab.experiments.ensemble import ensemble_scores
from t5lab.models import T5Transformer

CONFIG = MICRO_CONFIG.with_vocab_size(128)
MODEL = T5Transformer(CONFIG)


def random_params(seed: int) -> dict:
    tokens = np.ones((1, 4), np.int32)
    init = functools.partial(MODEL.init, enable_dropout=False)
    return nn.unbox(jax.jit(init)(jax.random.PRNGKey(seed), tokens, tokens))["params"]


def batch(seed: int) -> dict:
    """Random EncDecFeatureConverter-shaped features (unpacked), padding at the ends."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(2, 128, (4, 6)).astype(np.int32)
    targets[:, 4:] = 0
    return {
        "encoder_input_tokens": rng.integers(2, 128, (4, 10)).astype(np.int32),
        "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
        "decoder_target_tokens": targets,
        "decoder_loss_weights": (targets > 0).astype(np.float32),
    }


def test_one_member_is_the_model_and_averaging_logits_beats_the_mean_loss() -> None:
    batches = [batch(0), batch(1)]
    first, second = random_params(0), random_params(1)
    alone = ensemble_scores(model=MODEL, members=[first], batches=batches)
    both = ensemble_scores(model=MODEL, members=[first, second], batches=batches)
    assert alone["member_losses"] == [pytest.approx(alone["loss"], rel=1e-6)]
    assert both["member_losses"][0] == pytest.approx(alone["loss"], rel=1e-5)
    assert both["target_tokens"] == alone["target_tokens"] == 2 * 4 * 4
    # Cross-entropy is convex in the logits, so the mean-logit ensemble of two different
    # models scores at most their mean loss (Jensen), strictly unless their logits agree.
    assert both["loss"] < sum(both["member_losses"]) / 2
    # Two copies of one model are that model.
    copies = ensemble_scores(model=MODEL, members=[first, first], batches=batches)
    assert copies["loss"] == pytest.approx(alone["loss"], rel=1e-5)
