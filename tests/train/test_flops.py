"""The train-step FLOP formula agrees with what XLA compiles (a FLOP count, not a timing)."""

import jax
import pytest

from t5lab.models import T5Config, T5Transformer, param_count
from t5lab.train import optimizers
from t5lab.train.flops import encoder_decoder_flops, matmul_param_counts
from t5lab.train.steps import init_state_fn, make_train_step
from tests.conftest import TINY_8K_CONFIG, abstract_train_batch

TINY = TINY_8K_CONFIG
# v1.0 style: tied logits, relu, uneven stacks; exercises the other branches of the count.
TIED = TINY.replace(
    vocab_size=2048,
    logits_via_embedding=True,
    mlp_activations=("relu",),
    num_encoder_layers=3,
    num_decoder_layers=1,
)


def _xla_train_step_flops(*, config: T5Config, batch: int, inputs: int, targets: int) -> float:
    """FLOPs of the real compiled train step (model, loss and Adafactor), from shapes only."""
    model = T5Transformer(config)
    tx = optimizers.adafactor(learning_rate=optimizers.rsqrt_schedule(warmup_steps=10))
    init = init_state_fn(
        model=model,
        tx=tx,
        input_shapes={
            "encoder_input_tokens": (batch, inputs),
            "decoder_input_tokens": (batch, targets),
        },
    )
    rng = jax.random.PRNGKey(0)
    state = jax.eval_shape(init, rng)
    abstract_batch = abstract_train_batch(batch=batch, inputs=inputs, targets=targets)
    compiled = make_train_step(model=model).lower(state, abstract_batch, rng).compile()
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):  # older jax: one dict per device program
        cost = cost[0]
    return float(cost["flops"])


@pytest.mark.parametrize(
    ("config", "batch", "inputs", "targets"),
    [(TINY, 8, 128, 32), (TIED, 4, 64, 48)],
    ids=["t5_1_1_tiny", "tied_relu_3x1"],
)
def test_formula_matches_xla_cost_analysis(config, batch, inputs, targets):
    formula = encoder_decoder_flops(
        config=config, batch_size=batch, inputs_length=inputs, targets_length=targets
    )["total"]
    xla = _xla_train_step_flops(config=config, batch=batch, inputs=inputs, targets=targets)
    # XLA also counts norms, softmax, loss and optimizer: slightly above, never far off.
    assert 0.9 < xla / formula < 1.1, (xla, formula)


def test_param_split_covers_every_parameter():
    for config in (TINY, TIED):
        assert sum(matmul_param_counts(config=config).values()) == param_count(config)


def test_attention_term_by_hand():
    config = TINY.replace(num_heads=2, head_dim=8, num_encoder_layers=1, num_decoder_layers=1)
    flops = encoder_decoder_flops(config=config, batch_size=1, inputs_length=4, targets_length=2)
    # 3 (fwd + bwd) * 2 matmuls (QK^T, AV) * 2 FLOPs per MAC * q * k * heads * head_dim
    assert flops["attention_encoder_self"] == 3 * 2 * 2 * 4 * 4 * 16
    assert flops["attention_decoder_self"] == 3 * 2 * 2 * 2 * 2 * 16
    assert flops["attention_cross"] == 3 * 2 * 2 * 2 * 4 * 16
    assert flops["total"] == flops["dense"] + flops["attention"]
