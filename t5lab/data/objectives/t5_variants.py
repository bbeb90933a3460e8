"""T5's objective ablations (Raffel et al. 2020, section 3.3, tables 4-5) and MASS.

Every variant cuts the joined token stream into raw chunks that fill the encoder
(`sequence_length['inputs']`, EOS included) whatever the random draw, then derives the
targets length it needs; a shorter `sequence_length['targets']` is a UserError naming the
length to set, so appending EOS never cuts a target. (`random_spans` is the registered
`span_corruption`; its grid lives in gin/objectives/span_corruption_*.gin.)
"""

import functools
from collections.abc import Mapping

import numpy as np
import seqio
import tensorflow as tf

from t5lab.data.objectives.registry import Objective, register, tokenize_text
from t5lab.data.span_corruption import _replace_spans_with_sentinels
from t5lab.data.token_preprocessors import concatenate_documents, split_tokens
from t5lab.errors import UserError

# Corrupted-run draws whose targets overflow happen at most this often per full chunk.
OVERFLOW_TAIL = 1e-6


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise UserError(f"{name} must be in (0, 1), got {value}")


def _lengths(sequence_length: Mapping[str, int] | None, who: str, minimum: int):
    """(inputs_length, targets_length or None), checking the inputs are long enough."""
    if not sequence_length or "inputs" not in sequence_length:
        raise UserError(
            f"{who} needs sequence_length['inputs'] (got {sequence_length!r}); "
            "pass sequence_length={'inputs': ..., 'targets': ...} to get_dataset"
        )
    inputs_length = int(sequence_length["inputs"])
    if inputs_length < minimum:
        raise UserError(
            f"inputs length {inputs_length} is too small for {who}: it needs at least "
            f"{minimum}; raise TASK_FEATURE_LENGTHS['inputs']"
        )
    targets_length = sequence_length.get("targets")
    return inputs_length, None if targets_length is None else int(targets_length)


def _check_targets(targets_length: int | None, needed: int, who: str, inputs_length: int):
    if targets_length is not None and targets_length < needed:
        raise UserError(
            f"targets length {targets_length} is too short: {who} of inputs {inputs_length} "
            f"makes up to {needed} target tokens; set TASK_FEATURE_LENGTHS['targets'] >= {needed}"
        )


@functools.lru_cache(maxsize=64)
def run_cost_quantile(
    *, rate: float, length: int, start_cost: int, continue_cost: int, tail: float = OVERFLOW_TAIL
) -> int:
    """Smallest c with P(cost > c) <= tail, for `length` tokens corrupted i.i.d. with `rate`.

    A corrupted token costs `start_cost` when it starts a run and `continue_cost` otherwise
    (replace-spans targets: 2 and 1; drop: 1 and 1; sentinel count: 1 and 0). Exact
    dynamic programme over (cost, previous token corrupted?), not a normal approximation.
    """
    size = max(start_cost, continue_cost) * length + 1
    after_kept, after_corrupt = np.zeros(size), np.zeros(size)
    after_kept[0] = 1.0
    for _ in range(length):
        corrupt = np.zeros(size)
        corrupt[start_cost:] += after_kept[: size - start_cost]
        corrupt[continue_cost:] += after_corrupt[: size - continue_cost]
        after_kept = (1.0 - rate) * (after_kept + after_corrupt)
        after_corrupt = rate * corrupt
    survival = 1.0 - np.cumsum(after_kept + after_corrupt)
    return int(np.argmax(survival <= tail))


def _iid_mask(length, rate: float, seed) -> tf.Tensor:
    return tf.random.stateless_uniform([length], seed=seed) < rate


def _cap_runs(mask, *, start_cost: int, continue_cost: int, budget: int, max_runs: int):
    """Leaves the first run whose targets would pass `budget` (or the sentinels), and all
    later runs, uncorrupted: never cuts a target, and fires at most OVERFLOW_TAIL of chunks."""
    prev = tf.concat([[False], mask[:-1]], axis=0)
    starts = tf.logical_and(mask, tf.logical_not(prev))
    run_id = tf.cumsum(tf.cast(starts, tf.int32))
    cost = tf.cumsum(tf.where(starts, start_cost, tf.where(mask, continue_cost, 0)))
    over = tf.logical_and(mask, tf.logical_or(cost > budget, run_id > max_runs))
    first_bad = tf.reduce_min(tf.where(over, run_id, tf.int32.max))
    return tf.logical_and(mask, run_id < first_bad)


def _runs_to_targets(tokens, mask, vocab_size: int) -> tf.Tensor:
    """Each corrupted run i -> <extra_id_i> followed by the run's tokens."""
    prev = tf.concat([[False], mask[:-1]], axis=0)
    starts = tf.logical_and(mask, tf.logical_not(prev))
    sentinels = vocab_size - tf.cumsum(tf.cast(starts, tokens.dtype))
    pairs = tf.reshape(tf.stack([sentinels, tokens], axis=1), [-1])
    keep = tf.reshape(tf.stack([starts, mask], axis=1), [-1])
    return tf.boolean_mask(pairs, keep)


def _no_targets_cap(targets_length: int | None) -> int:
    return tf.int32.max if targets_length is None else targets_length - 1


# --- i.i.d. replace spans ----------------------------------------------------------------


@seqio.map_over_dataset(num_seeds=1)
def _replace_example(features, *, seed, corrupt_rate, vocab_size, budget, max_runs):
    tokens = features["targets"]
    mask = _iid_mask(tf.size(tokens), corrupt_rate, seed)
    mask = _cap_runs(mask, start_cost=2, continue_cost=1, budget=budget, max_runs=max_runs)
    return {
        "inputs": _replace_spans_with_sentinels(tokens, mask, vocab_size),
        "targets": _runs_to_targets(tokens, mask, vocab_size),
    }


def iid_replace_spans(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    corrupt_rate: float = 0.15,
) -> tf.data.Dataset:
    """Chunks of inputs_length-1 raw tokens (a run only shortens them), i.i.d. corruption,
    each run -> one sentinel. Targets must hold the 1-1e-6 quantile of their length."""
    _check_fraction("corrupt_rate", corrupt_rate)
    who = "iid_replace_spans"
    inputs_length, targets_length = _lengths(sequence_length, who, minimum=2)
    chunk = inputs_length - 1
    needed = 1 + run_cost_quantile(rate=corrupt_rate, length=chunk, start_cost=2, continue_cost=1)
    _check_targets(targets_length, needed, who, inputs_length)
    vocabulary = output_features["targets"].vocabulary
    extra_ids = getattr(vocabulary, "extra_ids", 0) or 0
    runs = run_cost_quantile(rate=corrupt_rate, length=chunk, start_cost=1, continue_cost=0)
    if runs > extra_ids:
        raise UserError(
            f"iid_replace_spans of inputs {inputs_length} at corrupt_rate {corrupt_rate} needs "
            f"up to {runs} sentinels but the vocabulary has extra_ids={extra_ids}; lower "
            "TASK_FEATURE_LENGTHS['inputs'] or corrupt_rate"
        )
    chunks = split_tokens(dataset, max_tokens_per_chunk=chunk)
    return _replace_example(
        chunks,
        corrupt_rate=corrupt_rate,
        vocab_size=vocabulary.vocab_size,
        budget=_no_targets_cap(targets_length),
        max_runs=extra_ids,
    )


# --- i.i.d. drop tokens ------------------------------------------------------------------


@seqio.map_over_dataset(num_seeds=1)
def _drop_example(features, *, seed, corrupt_rate, budget):
    tokens = features["targets"]
    mask = _iid_mask(tf.size(tokens), corrupt_rate, seed)
    mask = _cap_runs(mask, start_cost=1, continue_cost=1, budget=budget, max_runs=tf.int32.max)
    return {
        "inputs": tf.boolean_mask(tokens, tf.logical_not(mask)),
        "targets": tf.boolean_mask(tokens, mask),
    }


def iid_drop_tokens(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature] | None = None,
    *,
    corrupt_rate: float = 0.15,
) -> tf.data.Dataset:
    """Corrupted tokens vanish from inputs; targets are the dropped tokens, in order."""
    del output_features
    _check_fraction("corrupt_rate", corrupt_rate)
    inputs_length, targets_length = _lengths(sequence_length, "iid_drop_tokens", minimum=2)
    chunk = inputs_length - 1
    needed = 1 + run_cost_quantile(rate=corrupt_rate, length=chunk, start_cost=1, continue_cost=1)
    _check_targets(targets_length, needed, "iid_drop_tokens", inputs_length)
    chunks = split_tokens(dataset, max_tokens_per_chunk=chunk)
    return _drop_example(chunks, corrupt_rate=corrupt_rate, budget=_no_targets_cap(targets_length))


# --- prefix LM, deshuffling, MASS --------------------------------------------------------


def _prefix_length(n, seed) -> tf.Tensor:
    """Uniform in 1..n-1 (both sides non-empty); 0 for a 1-token tail (all target)."""
    u = tf.random.stateless_uniform([], seed=seed, dtype=tf.float64)
    k = tf.cast(tf.floor(u * tf.cast(n - 1, tf.float64)), tf.int32) + 1
    return tf.minimum(k, tf.maximum(n - 1, 0))


@seqio.map_over_dataset(num_seeds=1)
def _prefix_example(features, *, seed):
    tokens = features["targets"]
    k = _prefix_length(tf.size(tokens), seed)
    return {"inputs": tokens[:k], "targets": tokens[k:]}


@seqio.map_over_dataset(num_seeds=1)
def _deshuffle_example(features, *, seed):
    tokens = features["targets"]
    order = tf.argsort(tf.random.stateless_uniform([tf.size(tokens)], seed=seed))
    return {"inputs": tf.gather(tokens, order), "targets": tokens}


def _mass_span_length(n, span_fraction: float):
    """round-half-up(span_fraction * n), at least 1 token of a non-empty chunk."""
    m = tf.cast(tf.floor(tf.cast(n, tf.float64) * span_fraction + 0.5), tf.int32)
    return tf.clip_by_value(m, tf.minimum(n, 1), n)


def _mass_span(n, seed, span_fraction: float):
    m = _mass_span_length(n, span_fraction)
    u = tf.random.stateless_uniform([], seed=seed, dtype=tf.float64)
    start = tf.cast(tf.floor(u * tf.cast(n - m + 1, tf.float64)), tf.int32)
    return start, m


@seqio.map_over_dataset(num_seeds=1)
def _mass_example(features, *, seed, span_fraction, mask_id):
    tokens = features["targets"]
    start, m = _mass_span(tf.size(tokens), seed, span_fraction)
    positions = tf.range(tf.size(tokens))
    masked = tf.logical_and(positions >= start, positions < start + m)
    return {"inputs": tf.where(masked, mask_id, tokens), "targets": tokens[start : start + m]}


def prefix_lm(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature] | None = None,
) -> tf.data.Dataset:
    """Chunks of inputs_length tokens split at a uniform point; targets need inputs_length."""
    del output_features
    inputs_length, targets_length = _lengths(sequence_length, "prefix_lm", minimum=2)
    _check_targets(targets_length, inputs_length, "prefix_lm", inputs_length)
    return _prefix_example(split_tokens(dataset, max_tokens_per_chunk=inputs_length))


def deshuffling(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature] | None = None,
) -> tf.data.Dataset:
    """Chunks of inputs_length-1 tokens, shuffled in inputs; targets need inputs_length."""
    del output_features
    inputs_length, targets_length = _lengths(sequence_length, "deshuffling", minimum=2)
    _check_targets(targets_length, inputs_length, "deshuffling", inputs_length)
    return _deshuffle_example(split_tokens(dataset, max_tokens_per_chunk=inputs_length - 1))


def mass(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    span_fraction: float = 0.5,
) -> tf.data.Dataset:
    """Chunks of inputs_length-1 tokens; one span masked token-for-token with <extra_id_0>."""
    _check_fraction("span_fraction", span_fraction)
    inputs_length, targets_length = _lengths(sequence_length, "mass", minimum=2)
    chunk = inputs_length - 1
    needed = 1 + max(1, int(np.floor(chunk * span_fraction + 0.5)))
    _check_targets(targets_length, needed, "mass", inputs_length)
    vocabulary = output_features["targets"].vocabulary
    if not getattr(vocabulary, "extra_ids", 0):
        raise UserError("mass needs a vocabulary with extra_ids >= 1 for its mask token")
    return _mass_example(
        split_tokens(dataset, max_tokens_per_chunk=chunk),
        span_fraction=span_fraction,
        mask_id=vocabulary.vocab_size - 1,
    )


# --- registry ----------------------------------------------------------------------------


def _pipeline(step) -> list:
    return [
        *tokenize_text(),
        concatenate_documents,
        step,
        seqio.preprocessors.append_eos_after_trim,
    ]


def iid_replace_spans_objective(*, corrupt_rate: float = 0.15) -> list:
    """text -> chunks -> each i.i.d.-corrupted run replaced by a sentinel -> EOS."""
    _check_fraction("corrupt_rate", corrupt_rate)
    return _pipeline(functools.partial(iid_replace_spans, corrupt_rate=corrupt_rate))


def iid_drop_tokens_objective(*, corrupt_rate: float = 0.15) -> list:
    """text -> chunks -> i.i.d.-corrupted tokens moved from inputs to targets -> EOS."""
    _check_fraction("corrupt_rate", corrupt_rate)
    return _pipeline(functools.partial(iid_drop_tokens, corrupt_rate=corrupt_rate))


def prefix_lm_objective() -> list:
    """text -> chunks -> (random prefix, continuation) -> EOS."""
    return _pipeline(prefix_lm)


def deshuffling_objective() -> list:
    """text -> chunks -> (shuffled tokens, original) -> EOS."""
    return _pipeline(deshuffling)


def mass_objective(*, span_fraction: float = 0.5) -> list:
    """text -> chunks -> (span masked token-for-token, the span) -> EOS."""
    _check_fraction("span_fraction", span_fraction)
    return _pipeline(functools.partial(mass, span_fraction=span_fraction))


def _iid_noise_mask(tokens, seeds, *, corrupt_rate=0.15):
    return _iid_mask(tf.size(tokens), corrupt_rate, seeds[0])


def _prefix_noise_mask(tokens, seeds):
    return tf.range(tf.size(tokens)) >= _prefix_length(tf.size(tokens), seeds[0])


def _mass_noise_mask(tokens, seeds, *, span_fraction=0.5):
    start, m = _mass_span(tf.size(tokens), seeds[0], span_fraction)
    positions = tf.range(tf.size(tokens))
    return tf.logical_and(positions >= start, positions < start + m)


_T5 = "Raffel et al. 2020, T5 (section 3.3.2, table 5)"
for _objective in (
    Objective(
        name="iid_replace_spans",
        paper=_T5,
        summary="corrupt tokens i.i.d.; each corrupted run becomes one sentinel, targets list "
        "each sentinel's run",
        build=iid_replace_spans_objective,
        noise_mask=_iid_noise_mask,
    ),
    Objective(
        name="iid_drop_tokens",
        paper=_T5,
        summary="drop tokens i.i.d. from the inputs; targets are the dropped tokens in order",
        build=iid_drop_tokens_objective,
        noise_mask=_iid_noise_mask,
    ),
    Objective(
        name="prefix_lm",
        paper="Raffel et al. 2020, T5 (section 3.3.1, table 4)",
        summary="split at a uniformly random point: inputs are the prefix, targets the rest",
        build=prefix_lm_objective,
        noise_mask=_prefix_noise_mask,
    ),
    Objective(
        name="deshuffling",
        paper="Raffel et al. 2020, T5 (section 3.3.1, table 4)",
        summary="inputs are the chunk's tokens shuffled; targets are the original order",
        build=deshuffling_objective,
    ),
    Objective(
        name="mass",
        paper="Song et al. 2019, MASS (as in T5 table 5)",
        summary="mask one contiguous span (half the chunk) token-for-token; targets are the span",
        build=mass_objective,
        noise_mask=_mass_noise_mask,
    ),
):
    register(_objective)
