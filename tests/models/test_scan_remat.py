"""Scan over layers and remat policies change memory and compile time, never the numbers."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from t5lab.convert.hf import params_from_hf, params_to_hf
from t5lab.eval.greedy import greedy_decode
from t5lab.models import T5Config, T5Transformer, init_decode_cache, param_count
from t5lab.models.layer_stack import (
    has_scanned_layers,
    stack_layer_params,
    unstack_layer_params,
)

# 3 encoder and 2 decoder layers: a mixed-up layer order or a stack of the wrong depth shows.
UNROLLED = T5Config(
    vocab_size=128,
    emb_dim=32,
    num_heads=2,
    head_dim=8,
    mlp_dim=48,
    num_encoder_layers=3,
    num_decoder_layers=2,
)
SCANNED = UNROLLED.replace(scan_layers=True)

ENC = jnp.array([[5, 9, 12, 3, 1, 0, 0], [7, 8, 1, 0, 0, 0, 0]], jnp.int32)
TGT = jnp.array([[4, 6, 11, 1, 0], [20, 1, 0, 0, 0]], jnp.int32)
DEC = jnp.array([[0, 4, 6, 11, 1], [0, 20, 1, 0, 0]], jnp.int32)


@functools.cache
def unrolled_params() -> dict:
    init = jax.jit(functools.partial(T5Transformer(UNROLLED).init, enable_dropout=False))
    return nn.unbox(init(jax.random.PRNGKey(0), ENC, DEC))["params"]


def abstract_params(cfg: T5Config, *, boxed: bool = False) -> dict:
    init = functools.partial(T5Transformer(cfg).init, enable_dropout=False)
    params = jax.eval_shape(init, jax.random.PRNGKey(0), ENC, DEC)["params"]
    return params if boxed else nn.unbox(params)


def shapes(tree: dict) -> dict:
    return jax.tree.map(lambda x: tuple(x.shape), tree)


@functools.cache
def loss_and_grads(cfg: T5Config):
    model = T5Transformer(cfg)

    def loss(params):
        logits = model.apply({"params": params}, ENC, DEC, TGT, enable_dropout=False)
        per_token = optax.softmax_cross_entropy_with_integer_labels(logits, TGT)
        return jnp.sum(per_token * (TGT > 0)), logits

    return jax.jit(jax.value_and_grad(loss, has_aux=True))


def assert_trees_close(a: dict, b: dict) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6)


def test_stack_unstack_round_trip_matches_the_scanned_module_layout() -> None:
    params = unrolled_params()
    stacked = stack_layer_params(params=params)
    assert has_scanned_layers(stacked) and not has_scanned_layers(params)
    assert shapes(stacked) == shapes(abstract_params(SCANNED))
    assert stacked["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape[0] == 3
    np.testing.assert_array_equal(
        stacked["decoder"]["layers"]["self_attention"]["query"]["kernel"][1],
        params["decoder"]["layers_1"]["self_attention"]["query"]["kernel"],
    )
    back = unstack_layer_params(params=stacked)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for x, y in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert param_count(SCANNED) == param_count(UNROLLED)


def test_scanned_params_carry_a_leading_layers_logical_axis() -> None:
    boxed = abstract_params(SCANNED, boxed=True)
    kernel = boxed["encoder"]["layers"]["attention"]["query"]["kernel"]
    assert kernel.names == ("layers", "embed", "heads", "kv")
    assert boxed["encoder"]["relpos_bias"]["rel_embedding"].names[0] != "layers"


def test_scan_gives_the_unrolled_logits_and_gradients() -> None:
    params = unrolled_params()
    (loss, logits), grads = loss_and_grads(UNROLLED)(params)
    (s_loss, s_logits), s_grads = loss_and_grads(SCANNED)(stack_layer_params(params=params))
    np.testing.assert_allclose(s_logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s_loss, loss, rtol=1e-6)
    assert_trees_close(unstack_layer_params(params=s_grads), grads)


@pytest.mark.parametrize(
    "cfg",
    [
        UNROLLED.replace(remat="full"),
        SCANNED.replace(remat="minimal"),
        SCANNED.replace(remat="full"),
    ],
    ids=lambda c: f"{c.remat}-{'scan' if c.scan_layers else 'unrolled'}",
)
def test_remat_policies_give_the_same_loss_and_gradients(cfg: T5Config) -> None:
    params = unrolled_params()
    (loss, _), grads = loss_and_grads(UNROLLED)(params)
    given = stack_layer_params(params=params) if cfg.scan_layers else params
    (r_loss, _), r_grads = loss_and_grads(cfg)(given)
    np.testing.assert_allclose(r_loss, loss, rtol=1e-6)
    if cfg.scan_layers:
        r_grads = unstack_layer_params(params=r_grads)
    assert_trees_close(r_grads, grads)


def test_greedy_decoding_with_scan_and_remat_matches_unrolled() -> None:
    params = unrolled_params()
    scanned = SCANNED.replace(remat="minimal")
    cache = init_decode_cache(T5Transformer(scanned), 2, 6)
    unrolled = init_decode_cache(T5Transformer(UNROLLED), 2, 6)["decoder"]["layers_0"]
    per_layer = unrolled["self_attention"]["cached_key"].shape
    # one stacked cache: a leading axis of one entry per layer, each laid out as unrolled
    assert cache["decoder"]["layers"]["self_attention"]["cached_key"].shape == (2, *per_layer)

    def decode(cfg: T5Config, p: dict) -> np.ndarray:
        run = functools.partial(
            greedy_decode, model=T5Transformer(cfg), max_decode_length=6, eos_id=1
        )
        return np.asarray(jax.jit(run)(params=p, encoder_input_tokens=ENC))

    expected = decode(UNROLLED, params)
    np.testing.assert_array_equal(decode(scanned, stack_layer_params(params=params)), expected)


def test_unknown_remat_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="remat must be one of"):
        UNROLLED.replace(remat="some")


def test_hf_export_unstacks_scanned_params_and_import_stacks_them() -> None:
    params = unrolled_params()
    expected = params_to_hf(params=params, config=UNROLLED)
    exported = params_to_hf(params=stack_layer_params(params=params), config=SCANNED)
    assert exported.keys() == expected.keys()
    for name, array in expected.items():
        np.testing.assert_array_equal(exported[name], array)
    imported = params_from_hf(state_dict=exported, config=SCANNED)
    assert shapes(imported) == shapes(abstract_params(SCANNED))
    np.testing.assert_array_equal(
        imported["encoder"]["layers"]["mlp"]["wo"]["kernel"],
        np.stack([params["encoder"][f"layers_{i}"]["mlp"]["wo"]["kernel"] for i in range(3)]),
    )
