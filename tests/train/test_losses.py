"""Cross-entropy with label smoothing and z-loss against a direct numpy computation."""

import jax.numpy as jnp
import numpy as np
import pytest

from t5lab.train.losses import cross_entropy_with_z_loss


def _reference(logits, targets, weights, smoothing, z_coef):
    """The textbook definition, with an explicit one-hot target distribution."""
    vocab = logits.shape[-1]
    log_z = np.log(np.exp(logits).sum(-1))
    log_probs = logits - log_z[..., None]
    soft = np.full(logits.shape, smoothing / (vocab - 1))
    np.put_along_axis(soft, targets[..., None], 1.0 - smoothing, axis=-1)
    entropy = -(soft * np.log(soft, where=soft > 0, out=np.zeros_like(soft))).sum(-1)
    token = -(soft * log_probs).sum(-1) - entropy + z_coef * log_z**2
    return (token * weights).sum()


@pytest.mark.parametrize("smoothing, z_coef", [(0.0, 0.0), (0.0, 1e-4), (0.1, 1e-4), (0.3, 0.1)])
def test_matches_reference(smoothing, z_coef):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 11)).astype(np.float64) * 3
    targets = rng.integers(0, 11, size=(3, 5))
    weights = (rng.random((3, 5)) > 0.3).astype(np.float64)
    terms = cross_entropy_with_z_loss(
        logits=jnp.asarray(logits, jnp.float32),
        targets=jnp.asarray(targets),
        weights=jnp.asarray(weights),
        label_smoothing=smoothing,
        z_loss=z_coef,
    )
    expected = _reference(logits, targets, weights, smoothing, z_coef)
    np.testing.assert_allclose(float(terms.loss), expected, rtol=2e-5)
    assert float(terms.weight_sum) == weights.sum()
    correct = ((logits.argmax(-1) == targets) * weights).sum()
    assert float(terms.correct) == correct


def test_perfect_prediction_scores_zero_with_smoothing():
    vocab, smoothing = 7, 0.2
    target = 3
    soft = np.full(vocab, smoothing / (vocab - 1))
    soft[target] = 1 - smoothing
    logits = jnp.asarray(np.log(soft)[None, None], jnp.float32)  # predicts the soft target
    terms = cross_entropy_with_z_loss(
        logits=logits,
        targets=jnp.asarray([[target]]),
        weights=jnp.ones((1, 1)),
        label_smoothing=smoothing,
        z_loss=0.0,
    )
    assert abs(float(terms.loss)) < 1e-5
