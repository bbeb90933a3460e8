"""The jitted train step: gradient accumulation changes memory, not the update."""

import jax
import numpy as np
import optax

from t5lab.models import T5Transformer
from t5lab.train.steps import init_state_fn, make_train_step
from tests.conftest import MICRO_CONFIG

CONFIG = MICRO_CONFIG.replace(vocab_size=128)


def _batch(batch_size=8, inputs=16, targets=8):
    rng = np.random.default_rng(1)
    target = rng.integers(3, 120, (batch_size, targets)).astype(np.int32)
    weights = np.ones_like(target, np.float32)
    target[:, -2:] = 0  # padding, weighted out
    weights[:, -2:] = 0
    decoder_input = np.concatenate([np.zeros((batch_size, 1), np.int32), target[:, :-1]], 1)
    return {
        "encoder_input_tokens": rng.integers(3, 120, (batch_size, inputs)).astype(np.int32),
        "decoder_input_tokens": decoder_input,
        "decoder_target_tokens": target,
        "decoder_loss_weights": weights,
    }


def _one_step(num_microbatches):
    model = T5Transformer(CONFIG)
    tx = optax.sgd(1.0)  # the update is the gradient itself: compare gradients exactly
    batch = _batch()
    init = init_state_fn(
        model=model,
        tx=tx,
        input_shapes={k: batch[k].shape for k in ("encoder_input_tokens", "decoder_input_tokens")},
    )
    state = jax.jit(init)(jax.random.PRNGKey(0))
    step = make_train_step(model=model, num_microbatches=num_microbatches)
    state, metrics = step(state, batch, jax.random.PRNGKey(1))
    return jax.device_get(state.params), jax.device_get(metrics)


def test_microbatches_give_the_same_update_and_metrics():
    whole_params, whole = _one_step(1)
    split_params, split = _one_step(4)
    np.testing.assert_allclose(split["loss"], whole["loss"], rtol=1e-5)
    assert split["target_tokens"] == whole["target_tokens"] == 8 * 6
    for a, b in zip(jax.tree.leaves(split_params), jax.tree.leaves(whole_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_step_changes_parameters_and_reports_finite_norms():
    params, metrics = _one_step(1)
    assert not metrics["nonfinite"]
    assert metrics["grad_norm"] > 0 and np.isfinite(metrics["param_norm"])
