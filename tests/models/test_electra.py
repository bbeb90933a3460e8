"""ELECTRA generator/discriminator: corruption, labels, gradient isolation, train/eval steps."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from t5lab.errors import UserError
from t5lab.models import T5Config
from t5lab.models.electra import Electra, ElectraConfig, param_count
from t5lab.models.layers import NEG_INF
from t5lab.train import electra_steps
from t5lab.train.steps import evaluate_batches

MASK_ID = 127
CONFIG = ElectraConfig(
    discriminator=T5Config(
        vocab_size=128,
        emb_dim=32,
        num_heads=4,
        head_dim=8,
        mlp_dim=64,
        num_encoder_layers=2,
        num_decoder_layers=2,
    ),
    mask_id=MASK_ID,
)
GENERATOR_MODULES = (
    "generator_encoder",
    "generator_embed",
    "generator_head",
    "generator_head_norm",
)


def make_batch(seed: int = 0, batch: int = 4, length: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    original = rng.integers(2, 100, size=(batch, length)).astype(np.int32)
    original[1, length - 5 :] = 0  # padding at the end of one row
    masked = (rng.random((batch, length)) < 0.3) & (original > 0)
    masked[:, 0] = True  # at least one masked token per row
    inputs = np.where(masked, MASK_ID, original).astype(np.int32)
    return {
        "encoder_input_tokens": inputs,
        "decoder_target_tokens": original,
        "decoder_input_tokens": np.pad(original, ((0, 0), (1, 0)))[:, :-1],
        "decoder_loss_weights": (original > 0).astype(np.int32),
    }


@functools.cache
def init_params() -> dict:
    model = Electra(CONFIG)
    tokens = jnp.ones((2, 16), jnp.int32)
    key = jax.random.PRNGKey(0)
    init = jax.jit(functools.partial(model.init, sample_rng=key, enable_dropout=False))
    return nn.unbox(init(key, tokens, tokens))["params"]


def run_model(params: dict, batch: dict, seed: int = 1) -> dict:
    apply = functools.partial(Electra(CONFIG).apply, enable_dropout=False)
    return jax.jit(apply)(
        {"params": params},
        batch["encoder_input_tokens"],
        batch["decoder_target_tokens"],
        sample_rng=jax.random.PRNGKey(seed),
    )


def test_config_scales_generator_and_fills_vocab():
    gen = CONFIG.generator
    assert (gen.emb_dim, gen.num_heads, gen.mlp_dim) == (8, 1, 16)
    assert gen.num_encoder_layers == 2 and gen.head_dim == 8
    assert CONFIG.with_vocab_size(256).vocab_size == 256
    with pytest.raises(ValueError, match="generator_size_ratio"):
        ElectraConfig(generator_size_ratio=0.0)
    with pytest.raises(ValueError, match="mask_id"):
        Electra(CONFIG.replace(mask_id=0)).init(
            jax.random.PRNGKey(0),
            jnp.ones((1, 4), jnp.int32),
            jnp.ones((1, 4), jnp.int32),
            sample_rng=jax.random.PRNGKey(0),
        )


def test_shapes_and_one_shared_embedding_table():
    params = init_params()
    out = run_model(params, make_batch())
    assert out["generator_logits"].shape == (4, 16, 128)
    assert out["discriminator_logits"].shape == (4, 16)
    assert out["corrupted_tokens"].shape == out["replaced"].shape == (4, 16)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
    tables = [p for p in paths if p.endswith("['embedding']")]
    assert tables == ["['token_embedder']['embedding']"]
    # The generator reads the shared table through a projection to its narrower width.
    assert params["generator_embed"]["proj"]["kernel"].shape == (32, 8)
    assert param_count(CONFIG) == sum(x.size for x in jax.tree.leaves(params))


def test_discriminator_sees_samples_at_masked_positions_and_originals_elsewhere():
    params, batch = init_params(), make_batch()
    out = jax.device_get(run_model(params, batch, seed=3))
    original, masked = batch["decoder_target_tokens"], batch["encoder_input_tokens"] == MASK_ID
    corrupted = out["corrupted_tokens"]
    np.testing.assert_array_equal(out["masked"], masked)
    np.testing.assert_array_equal(corrupted[~masked], original[~masked])
    # The masked tokens are exactly the generator's samples under the same key.
    ids = jnp.arange(128)
    allowed = (ids != 0) & (ids != MASK_ID)
    logits = jnp.where(allowed, out["generator_logits"], NEG_INF)
    samples = np.asarray(jax.random.categorical(jax.random.PRNGKey(3), logits, axis=-1))
    np.testing.assert_array_equal(corrupted[masked], samples[masked])
    assert not np.isin(corrupted[masked], [0, MASK_ID]).any()
    # Labels: replaced exactly where the sample differs from the original, never at pad.
    expected = masked & (corrupted != original) & (original > 0)
    np.testing.assert_array_equal(out["replaced"], expected)
    assert not out["replaced"][original == 0].any()
    # An untrained generator replaces most masked tokens (and so the labels are not all 0).
    assert out["replaced"][masked].mean() > 0.5
    # The discriminator's logits are those of the corrupted text, not of the masked input.
    disc = Electra(CONFIG).apply(
        {"params": params}, corrupted, enable_dropout=False, method=Electra.discriminate
    )
    np.testing.assert_allclose(out["discriminator_logits"], disc, rtol=1e-5, atol=1e-5)


def test_discriminator_loss_does_not_train_the_generator():
    params, batch = init_params(), make_batch()

    def disc_loss(p):
        _, (_, parts) = electra_steps._loss(
            p,
            batch,
            jax.random.PRNGKey(2),
            model=Electra(CONFIG),
            label_smoothing=0.0,
            z_loss=0.0,
            enable_dropout=False,
        )
        return parts["disc_loss"]

    grads = jax.grad(disc_loss)(params)
    for name in GENERATOR_MODULES:
        assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads[name])), name
    assert float(jnp.abs(grads["generator_logits_bias"]).max()) == 0.0
    assert (
        float(jnp.abs(grads["discriminator_encoder"]["layers_0"]["mlp"]["wo"]["kernel"]).max()) > 0
    )
    assert float(jnp.abs(grads["token_embedder"]["embedding"]).max()) > 0


def test_train_steps_reduce_loss_and_eval_is_finite():
    model = Electra(CONFIG)
    batch = make_batch()
    tx = optax.adam(3e-3)
    shapes = {k: v.shape for k, v in batch.items()}
    state = jax.jit(electra_steps.init_state_fn(model=model, tx=tx, input_shapes=shapes))(
        jax.random.PRNGKey(0)
    )
    step = electra_steps.make_train_step(model=model)
    losses = []
    for _ in range(12):
        state, metrics = step(state, batch, jax.random.PRNGKey(1))
        losses.append(float(metrics["loss"]))
    metrics = jax.device_get(metrics)
    assert {"loss", "z_loss", "accuracy", "target_tokens", "nonfinite", "grad_norm"} <= set(metrics)
    assert {"param_norm", "mlm_loss", "disc_loss"} <= set(metrics)
    assert not metrics["nonfinite"]
    assert metrics["target_tokens"] == (batch["decoder_target_tokens"] > 0).sum()
    np.testing.assert_allclose(
        metrics["loss"], metrics["mlm_loss"] + 50.0 * metrics["disc_loss"], rtol=1e-5
    )
    assert losses[-1] < 0.8 * losses[0], losses

    eval_step = electra_steps.make_eval_step(model=model)
    terms = jax.device_get(eval_step(state.params, batch))
    assert all(np.isfinite(x) for x in terms)
    assert terms.weight_sum == metrics["target_tokens"]
    assert 0.0 <= terms.correct <= terms.weight_sum
    result = evaluate_batches(eval_step, state.params, [batch, make_batch(seed=1)])
    assert np.isfinite(result["loss"]) and 0.0 <= result["accuracy"] <= 1.0


def test_rejects_microbatches_and_packed_batches():
    with pytest.raises(UserError, match="num_microbatches"):
        electra_steps.make_train_step(model=Electra(CONFIG), num_microbatches=2)
    batch = make_batch()
    with pytest.raises(UserError, match="pack"):
        electra_steps.electra_batch_from_mlm(
            {**batch, "encoder_segment_ids": batch["encoder_input_tokens"]}
        )
    with pytest.raises(UserError, match="lengths"):
        electra_steps.electra_batch_from_mlm(
            {**batch, "decoder_target_tokens": batch["decoder_target_tokens"][:, :8]}
        )
