"""Beam search, sampling and the decode-fn factory on tiny random models."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import MICRO_CONFIG

from t5lab.errors import UserError
from t5lab.eval.decoding import beam_search, length_penalty, make_decode_fn, sample
from t5lab.eval.greedy import greedy_decode
from t5lab.models import T5Transformer
from t5lab.models.layer_stack import stack_layer_params

VOCAB = 12  # small, so that random models emit EOS (id 1) within a few steps
LENGTH = 6
MODEL = T5Transformer(MICRO_CONFIG.replace(vocab_size=VOCAB))
SCANNED = T5Transformer(MICRO_CONFIG.replace(vocab_size=VOCAB, scan_layers=True))


@functools.cache
def micro_params(seed: int) -> dict:
    init = functools.partial(MODEL.init, enable_dropout=False)
    tokens = jnp.zeros((1, 4), jnp.int32)
    return nn.unbox(jax.jit(init)(jax.random.PRNGKey(seed), tokens, tokens))["params"]


def inputs(seed: int, batch: int = 4, length: int = 7) -> jax.Array:
    tokens = np.random.RandomState(seed).randint(2, VOCAB, (batch, length))
    tokens[1, 4:] = 0  # one padded row
    return jnp.asarray(tokens, jnp.int32)


@functools.cache
def jitted(fn, model: T5Transformer = MODEL, **static):
    """One compiled function per (fn, model, settings): compiling dominates these tests."""
    return jax.jit(functools.partial(fn, model=model, max_decode_length=LENGTH, **static))


FORWARD = jax.jit(functools.partial(MODEL.apply, enable_dropout=False))


def log_prob(params: dict, enc: jax.Array, tokens: np.ndarray) -> np.ndarray:
    """Teacher-forced log-probability of each row up to and including its first EOS."""
    dec_in = jnp.pad(jnp.asarray(tokens), ((0, 0), (1, 0)))[:, :-1]
    logits = FORWARD({"params": params}, enc, dec_in)
    per_token = np.take_along_axis(
        np.asarray(jax.nn.log_softmax(logits)), np.asarray(tokens)[..., None], axis=-1
    )[..., 0]
    return np.array(
        [row[: generated_length(toks)].sum() for row, toks in zip(per_token, tokens, strict=True)]
    )


def generated_length(row: np.ndarray) -> int:
    eos = np.flatnonzero(row == 1)
    return int(eos[0]) + 1 if eos.size else len(row)


def assert_zeros_after_eos(tokens: np.ndarray) -> None:
    for row in tokens:
        assert np.all(row[generated_length(row) :] == 0), row


@pytest.mark.parametrize("seed", [0, 1])
def test_beam_size_one_without_length_penalty_is_greedy(seed: int) -> None:
    params, enc = micro_params(seed), inputs(seed)
    greedy = jitted(greedy_decode)(params=params, encoder_input_tokens=enc)
    beam, _ = jitted(beam_search, beam_size=1, alpha=0.0)(params=params, encoder_input_tokens=enc)
    np.testing.assert_array_equal(beam, greedy)


def test_beam_search_scores_at_least_greedy() -> None:
    beat_greedy = 0
    for seed in range(3):
        params, enc = micro_params(seed), inputs(seed + 10)
        greedy = np.asarray(jitted(greedy_decode)(params=params, encoder_input_tokens=enc))
        tokens, scores = jitted(beam_search, beam_size=4, alpha=0.0)(
            params=params, encoder_input_tokens=enc
        )
        tokens, scores = np.asarray(tokens), np.asarray(scores)
        assert_zeros_after_eos(tokens)
        # The score is the model's own log-probability of the returned tokens (alpha = 0) ...
        np.testing.assert_allclose(scores, log_prob(params, enc, tokens), atol=1e-4)
        # ... and never below greedy's on these inputs.
        greedy_scores = log_prob(params, enc, greedy)
        assert np.all(scores >= greedy_scores - 1e-5)
        beat_greedy += int(np.sum(scores > greedy_scores + 1e-3))
    assert beat_greedy > 0  # the search found better sequences than greedy somewhere


def test_beam_scores_are_length_normalised() -> None:
    params, enc = micro_params(1), inputs(3)
    tokens, scores = jitted(beam_search, beam_size=3, alpha=0.6)(
        params=params, encoder_input_tokens=enc
    )
    tokens = np.asarray(tokens)
    lengths = np.array([generated_length(row) for row in tokens])
    assert len(set(lengths)) > 1  # rows of different lengths, so the penalty matters
    want = log_prob(params, enc, tokens) / np.asarray(length_penalty(length=lengths, alpha=0.6))
    np.testing.assert_allclose(scores, want, atol=1e-4)


def test_beam_search_with_scanned_layers_matches_unrolled() -> None:
    """The cache is reordered along the batch axis, also when layers stack one in front."""
    params, enc = micro_params(1), inputs(3)
    want = jitted(beam_search, beam_size=3, alpha=0.6)(params=params, encoder_input_tokens=enc)
    got = jitted(beam_search, SCANNED, beam_size=3, alpha=0.6)(
        params=stack_layer_params(params=params), encoder_input_tokens=enc
    )
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)


def test_sampling_with_top_k_one_is_greedy() -> None:
    params, enc = micro_params(0), inputs(5)
    greedy = jitted(greedy_decode)(params=params, encoder_input_tokens=enc)
    sampled = jitted(sample, temperature=0.7, top_k=1)(
        params=params, encoder_input_tokens=enc, rng=jax.random.PRNGKey(0)
    )
    np.testing.assert_array_equal(sampled, greedy)


def test_first_token_frequencies_follow_tempered_softmax() -> None:
    """20,000 draws (seed 0) of the first token; total variation from softmax(logits / T) must
    be < 0.03 (about 0.01 is expected from sampling noise), while softmax(logits) itself is
    > 0.1 away, so a sampler that ignored the temperature would fail."""
    params, enc = micro_params(0), inputs(6)
    draws, temperature = 20_000, 0.5
    run = functools.partial(sample, model=MODEL, temperature=temperature, max_decode_length=1)
    first = jax.jit(run)(
        params=params, encoder_input_tokens=jnp.tile(enc[:1], (draws, 1)), rng=jax.random.PRNGKey(0)
    )
    freq = np.bincount(np.asarray(first)[:, 0], minlength=VOCAB) / draws
    # Row 0's logits at position 0 (causal: later decoder inputs do not change them).
    logits = FORWARD({"params": params}, enc, jnp.zeros((4, LENGTH), jnp.int32))[0, 0]
    want = np.asarray(jax.nn.softmax(logits / temperature))
    untempered = np.asarray(jax.nn.softmax(logits))
    assert 0.5 * np.abs(freq - want).sum() < 0.03
    assert 0.5 * np.abs(untempered - want).sum() > 0.1


@pytest.mark.parametrize("method", ["greedy", "beam", "sample"])
def test_decode_fn_stops_rows_at_eos(method: str) -> None:
    params, enc = micro_params(1), inputs(7)  # inputs on which every method meets an EOS
    run = make_decode_fn(model=MODEL, method=method, max_decode_length=LENGTH, beam_size=2)
    out = np.asarray(run(params, enc, jax.random.PRNGKey(1)))
    assert out.shape == (4, LENGTH) and out.dtype == np.int32
    lengths = [generated_length(row) for row in out]
    assert min(lengths) < LENGTH  # some row did stop early ...
    assert_zeros_after_eos(out)  # ... and holds padding after its EOS
    if method == "greedy":
        np.testing.assert_array_equal(
            out, jitted(greedy_decode)(params=params, encoder_input_tokens=enc)
        )


@pytest.mark.parametrize(
    "settings",
    [
        {"method": "nucleus"},
        {"method": "beam", "beam_size": 0},
        {"method": "beam", "alpha": -1.0},
        {"method": "sample", "temperature": 0.0},
        {"method": "sample", "top_k": -1},
        {"method": "greedy", "max_decode_length": 0},
    ],
)
def test_decode_fn_rejects_bad_settings(settings: dict) -> None:
    with pytest.raises(UserError):
        make_decode_fn(model=MODEL, **{"max_decode_length": LENGTH, **settings})
