"""Beam search and sampling with the KV cache, and one factory for every decoding method.

All of it is jittable with the model, sizes and method settings static. `make_decode_fn`
returns the jitted `fn(params, encoder_input_tokens, rng) -> tokens [B, L]` the evaluator uses.

Beam search keeps `beam_size` live hypotheses per input in one flat batch of B * beam_size
rows (row b * beam_size + k), so each step is one cached decoder call; the self-attention
cache rows follow their hypotheses when beams are reordered. Scores are log-probabilities
divided by T5's length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016, as in Mesh
TensorFlow and t5x), where length counts the generated tokens including EOS. A hypothesis
ending in EOS is finished only when it ranks among the top `beam_size` candidates of its step
(so `beam_size=1, alpha=0` is exactly greedy decoding); one still running at
`max_decode_length` finishes there. The search stops once no live hypothesis can beat the
best finished one: log-probabilities only fall, so with alpha >= 0 a live hypothesis can
at best reach its current log-probability divided by the penalty at `max_decode_length`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from t5lab.errors import UserError
from t5lab.eval.greedy import (
    cached_decoder_step,
    check_decode_length,
    decode_token_by_token,
    greedy_decode,
)
from t5lab.models.t5 import T5Transformer, init_decode_cache

Array = jax.Array
METHODS = ("greedy", "beam", "sample")
# Cache entries that belong to one hypothesis and move with it when beams are reordered;
# all others are shared by the beams of an input (cross-attention K/V) or by every row.
_PER_HYPOTHESIS = ("cached_key", "cached_value")


def length_penalty(*, length: Array, alpha: float) -> Array:
    """T5's length normaliser ((5 + length) / 6) ** alpha; scores are log-prob / this."""
    return ((5.0 + length) / 6.0) ** alpha


def _check_beam(*, beam_size: int, alpha: float) -> None:
    if beam_size < 1:
        raise UserError(f"beam_size must be at least 1, got {beam_size}")
    if alpha < 0:
        raise UserError(f"the length penalty alpha must be >= 0, got {alpha}")


def _check_sampling(*, temperature: float, top_k: int) -> None:
    if temperature <= 0:
        raise UserError(f"temperature must be > 0 (use greedy decoding for 0), got {temperature}")
    if top_k < 0:
        raise UserError(f"top_k must be >= 0 (0 = the whole vocabulary), got {top_k}")


def _reorder_cache(cache: Any, rows: Array) -> Any:
    """Gather the per-hypothesis cache rows; K/V leaves are [..., B*K, H, D, L]."""

    def gather(path: tuple, leaf: Array) -> Array:
        name = getattr(path[-1], "key", None)
        if name not in _PER_HYPOTHESIS:
            return leaf
        return jnp.take(leaf, rows, axis=leaf.ndim - 4)

    return jax.tree_util.tree_map_with_path(gather, cache)


def beam_search(
    *,
    model: T5Transformer,
    params: Any,
    encoder_input_tokens: Array,
    beam_size: int,
    alpha: float = 0.6,
    max_decode_length: int,
    eos_id: int = 1,
) -> tuple[Array, Array]:
    """Best hypothesis per input: tokens [B, L] (zeros after EOS) and its score [B]."""
    _check_beam(beam_size=beam_size, alpha=alpha)
    check_decode_length(max_decode_length)
    batch, beams, length = encoder_input_tokens.shape[0], beam_size, max_decode_length
    encoded = model.apply(
        {"params": params}, encoder_input_tokens, enable_dropout=False, method=model.encode
    )
    step_fn = cached_decoder_step(
        model=model,
        params=params,
        encoded=jnp.repeat(encoded, beams, axis=0),
        encoder_input_tokens=jnp.repeat(encoder_input_tokens, beams, axis=0),
    )
    max_penalty = length_penalty(length=length, alpha=alpha)
    positions = jnp.arange(length)
    ranks = jnp.arange(2 * beams)

    def expand(state: dict, logits: Array, step: Array) -> dict:
        """Extend every live hypothesis by one token; keep the best finished and K live."""
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        vocab = log_probs.shape[-1]
        totals = state["log_prob"][:, :, None] + log_probs.reshape(batch, beams, vocab)
        # 2K candidates always hold K that do not end in EOS (each parent gives one EOS).
        top_log_prob, flat = lax.top_k(totals.reshape(batch, beams * vocab), 2 * beams)
        parent, token = flat // vocab, (flat % vocab).astype(jnp.int32)
        seqs = jnp.take_along_axis(state["seqs"], parent[:, :, None], axis=1)
        seqs = jnp.where(positions == step, token[:, :, None], seqs)

        is_eos = token == eos_id
        finishing = (is_eos | (step == length - 1)) & (ranks < beams)
        scores = jnp.where(
            finishing, top_log_prob / length_penalty(length=step + 1, alpha=alpha), -jnp.inf
        )
        best = jnp.argmax(scores, axis=1)
        best_score = jnp.take_along_axis(scores, best[:, None], axis=1)[:, 0]
        better = best_score > state["best_score"]
        best_seq = jnp.take_along_axis(seqs, best[:, None, None], axis=1)[:, 0]

        live_log_prob, keep = lax.top_k(jnp.where(is_eos, -jnp.inf, top_log_prob), beams)
        rows = jnp.take_along_axis(parent, keep, axis=1) + jnp.arange(batch)[:, None] * beams
        return {
            "seqs": jnp.take_along_axis(seqs, keep[:, :, None], axis=1),
            "log_prob": live_log_prob,
            "token": jnp.take_along_axis(token, keep, axis=1).reshape(batch * beams, 1),
            "rows": rows.reshape(batch * beams),
            "best_seq": jnp.where(better[:, None], best_seq, state["best_seq"]),
            "best_score": jnp.where(better, best_score, state["best_score"]),
        }

    def advance(step: Array, state: dict, cache: Any) -> tuple[Array, dict, Any]:
        logits, cache = step_fn(cache, state["token"])
        state = expand(state, logits, step)
        return step + 1, state, _reorder_cache(cache, state["rows"])

    def cond(carry: tuple) -> Array:
        step, state, _ = carry
        can_improve = state["log_prob"][:, 0] / max_penalty > state["best_score"]
        return (step < length) & jnp.any(can_improve)

    # All beams of an input start identical: only beam 0 may expand at the first step.
    start = {
        "seqs": jnp.zeros((batch, beams, length), jnp.int32),
        "log_prob": jnp.where(jnp.arange(beams) == 0, 0.0, -jnp.inf) * jnp.ones((batch, 1)),
        "token": jnp.zeros((batch * beams, 1), jnp.int32),
        "rows": jnp.arange(batch * beams),
        "best_seq": jnp.zeros((batch, length), jnp.int32),
        "best_score": jnp.full((batch,), -jnp.inf),
    }
    # The first step adds the cross-attention K/V to the cache, so it runs before the loop.
    cache = init_decode_cache(model, batch * beams, length)
    carry = advance(jnp.zeros((), jnp.int32), start, cache)
    _, state, _ = lax.while_loop(cond, lambda carry: advance(*carry), carry)
    return state["best_seq"], state["best_score"]


def sample(
    *,
    model: T5Transformer,
    params: Any,
    encoder_input_tokens: Array,
    rng: Array,
    temperature: float = 1.0,
    top_k: int = 0,
    max_decode_length: int,
    eos_id: int = 1,
) -> Array:
    """Tokens [B, L] drawn from softmax(logits / temperature), over the top_k logits if > 0."""
    _check_sampling(temperature=temperature, top_k=top_k)

    def choose(logits: Array, step: Array) -> Array:
        scaled = logits.astype(jnp.float32) / temperature
        if top_k > 0:
            kth = lax.top_k(scaled, min(top_k, scaled.shape[-1]))[0][:, -1:]
            scaled = jnp.where(scaled < kth, -jnp.inf, scaled)
        return jax.random.categorical(jax.random.fold_in(rng, step), scaled, axis=-1)

    return decode_token_by_token(
        model=model,
        params=params,
        encoder_input_tokens=encoder_input_tokens,
        max_decode_length=max_decode_length,
        eos_id=eos_id,
        choose=choose,
    )


DecodeFn = Callable[[Any, Array, Array], Array]


def make_decode_fn(
    *,
    model: T5Transformer,
    method: str,
    max_decode_length: int,
    beam_size: int = 4,
    alpha: float = 0.6,
    temperature: float = 1.0,
    top_k: int = 0,
    eos_id: int = 1,
) -> DecodeFn:
    """Jitted `fn(params, encoder_input_tokens, rng) -> tokens [B, max_decode_length]`.

    method: "greedy", "beam" (beam_size, alpha) or "sample" (temperature, top_k); rng is
    used by sampling only. Settings are checked here, before anything is traced.
    """
    check_decode_length(max_decode_length)
    if method not in METHODS:
        raise UserError(f"unknown decoding method {method!r}; expected one of {METHODS}")
    if method == "beam":
        _check_beam(beam_size=beam_size, alpha=alpha)
    if method == "sample":
        _check_sampling(temperature=temperature, top_k=top_k)

    def run(params: Any, encoder_input_tokens: Array, rng: Array) -> Array:
        common = dict(
            model=model,
            params=params,
            encoder_input_tokens=encoder_input_tokens,
            max_decode_length=max_decode_length,
            eos_id=eos_id,
        )
        if method == "beam":
            return beam_search(beam_size=beam_size, alpha=alpha, **common)[0]
        if method == "sample":
            return sample(rng=rng, temperature=temperature, top_k=top_k, **common)
        return greedy_decode(**common)

    return jax.jit(run)
