"""Token detection objectives as text-to-text: which tokens were replaced / inserted?

Replaced token detection is ELECTRA's discriminator task (Clark et al. 2020) with random
instead of generator-made replacements; inserted token detection asks which tokens must be
deleted to get the text back. Both mark their answer the same way:

    targets = inputs with the marker <extra_id_0> in front of every corrupted token

e.g. inputs `the cat sat` (cat replaced) -> targets `the <extra_id_0> cat sat`. Copying the
inputs makes every label sit at its position, so decoding is unambiguous even when a token
occurs twice (a "sentinel + token" list would not say *which* "the" was replaced), and the
decoder only has to copy and tag, which seq2seq models do well. The price is targets about
(1 + rate) times the inputs. `decode_marked_positions` inverts the format.

Counts are exact per chunk (round(rate * tokens), positions uniform without replacement),
like T5's span corruption, so every full chunk has the same inputs/targets lengths and none
are padded. Random tokens are real ids only (never pad/EOS/unk/sentinels), drawn uniformly or
from the SentencePiece model's unigram probabilities (`sampler="unigram"`); a replacement
always differs from the token it replaces, so every marked token really changed.
Insertion chunks hold n tokens with n + round(n * rate) + EOS <= inputs length; as the count
grows in whole tokens, a full chunk's inputs may stop one token short of the length. An
inserted token equal to its neighbour makes "which one to delete" ambiguous (about 2 in
8000 insertions with the uniform sampler); the marked one is still a correct answer.
"""

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from t5lab.data.objectives.registry import Objective, register, tokenize_text
from t5lab.data.token_preprocessors import concatenate_documents, split_tokens
from t5lab.errors import UserError, did_you_mean

SAMPLERS = ("uniform", "unigram")
FIRST_REAL_ID = 3  # after pad 0, EOS 1, unk 2


def marker_id(vocabulary: seqio.Vocabulary) -> int:
    """Id of `<extra_id_0>`, the label marker."""
    return vocabulary.vocab_size - 1


def real_id_range(vocabulary: seqio.Vocabulary) -> tuple[int, int]:
    """[low, high) of ordinary token ids: no pad/EOS/unk, no sentinels."""
    extra_ids = getattr(vocabulary, "extra_ids", 0) or 0
    high = vocabulary.vocab_size - extra_ids
    if extra_ids < 1 or high - FIRST_REAL_ID < 2:
        raise UserError(
            f"token detection needs a vocabulary with extra_ids >= 1 (for the <extra_id_0> "
            f"marker) and at least 2 ordinary tokens; got vocab_size={vocabulary.vocab_size}, "
            f"extra_ids={extra_ids}"
        )
    return FIRST_REAL_ID, high


def sampling_probs(*, vocabulary: seqio.Vocabulary, sampler: str) -> np.ndarray:
    """Probability of each real id (index 0 = FIRST_REAL_ID) for random tokens.

    "unigram" uses the SentencePiece unigram model's piece log-probabilities, which are
    estimates of corpus frequencies, so no corpus pass is needed. Byte-fallback pieces
    (`<0x41>`) carry a placeholder score of 0, not an estimate, and are never drawn.
    """
    low, high = real_id_range(vocabulary)
    if sampler == "uniform":
        return np.full(high - low, 1.0 / (high - low))
    _check_sampler(sampler)
    tokenizer = getattr(vocabulary, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "get_score"):
        raise UserError(
            f"sampler='unigram' needs a SentencePiece vocabulary (got "
            f"{type(vocabulary).__name__}); use sampler='uniform'"
        )
    scores = np.array([tokenizer.get_score(i) for i in range(low, high)], np.float64)
    special = np.array(
        [tokenizer.is_control(i) or tokenizer.is_unknown(i) or tokenizer.is_unused(i)
         or tokenizer.is_byte(i) for i in range(low, high)]
    )  # fmt: skip
    probs = np.where(special, 0.0, np.exp(scores - scores.max()))
    return probs / probs.sum()


def _check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise UserError(
            f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}"
            + did_you_mean(str(sampler), SAMPLERS)
        )


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 < rate < 1.0:
        raise UserError(f"{name} must be in (0, 1), got {rate}")


def _count(n, rate: float) -> tf.Tensor:
    """round(n * rate) with float64 half-to-even, matching Python's round() below."""
    return tf.cast(tf.round(tf.cast(n, tf.float64) * rate), tf.int32)


def exact_count_mask(*, length, count, seed) -> tf.Tensor:
    """Bool[length] with exactly `count` True at uniformly random positions."""
    order = tf.argsort(tf.random.stateless_uniform([length], seed=seed))
    return tf.math.invert_permutation(order) < count


def draw_tokens(*, probs: tf.Tensor, avoid: tf.Tensor, seed) -> tf.Tensor:
    """One random real id per entry of `avoid`, never equal to it (inverse-CDF sampling).

    The avoided token's probability mass is cut out of [0, 1) before the lookup, so the
    draw is exact from `probs` conditioned on differing. Ids outside the real range
    (e.g. unk) exclude nothing.
    """
    cdf = tf.cumsum(probs)
    index = tf.cast(avoid, tf.int32) - FIRST_REAL_ID
    inside = (index >= 0) & (index < tf.size(probs))
    safe = tf.clip_by_value(index, 0, tf.size(probs) - 1)
    p_avoid = tf.where(inside, tf.gather(probs, safe), 0.0)
    start = tf.where(inside, tf.gather(cdf, safe) - tf.gather(probs, safe), 0.0)
    u = tf.random.stateless_uniform(tf.shape(avoid), seed=seed, dtype=tf.float64)
    u = u * (cdf[-1] - p_avoid)
    u = tf.where(u >= start, u + p_avoid, u)
    picked = tf.searchsorted(cdf, u, side="right", out_type=tf.int32)
    return tf.minimum(picked, tf.size(probs) - 1) + FIRST_REAL_ID


def mark(tokens: tf.Tensor, marked: tf.Tensor, marker: int) -> tf.Tensor:
    """`tokens` with `marker` inserted in front of every token where `marked` is True."""
    pairs = tf.stack([tf.fill(tf.shape(tokens), tf.cast(marker, tokens.dtype)), tokens], axis=1)
    keep = tf.stack([marked, tf.ones_like(marked)], axis=1)
    return tf.boolean_mask(tf.reshape(pairs, [-1]), tf.reshape(keep, [-1]))


def decode_marked_positions(
    *, inputs: Sequence[int], targets: Sequence[int], marker_id: int, eos_id: int = 1
) -> list[int]:
    """Positions in `inputs` that `targets` marks; ValueError if targets are not inputs+marks.

    A trailing EOS on either side is ignored. Used for both objectives: the replaced
    positions, or the inserted ones (delete them to recover the original).
    """
    inputs = [int(t) for t in inputs]
    targets = [int(t) for t in targets]
    for seq in (inputs, targets):
        if seq and seq[-1] == eos_id:
            seq.pop()
    positions, copied, pending = [], [], False
    for token in targets:
        if token == marker_id:
            if pending:
                raise ValueError("two markers in a row: targets are not a marked copy")
            pending = True
            continue
        if pending:
            positions.append(len(copied))
            pending = False
        copied.append(token)
    if pending or copied != inputs:
        raise ValueError("targets without markers differ from inputs: not a marked copy")
    return positions


decode_replaced_positions = decode_marked_positions
decode_inserted_positions = decode_marked_positions


def _inputs_length(sequence_length, who: str) -> int:
    if not sequence_length or not sequence_length.get("inputs"):
        raise UserError(
            f"{who} needs sequence_length['inputs'] (got {sequence_length!r}); "
            "pass sequence_length={'inputs': ..., 'targets': ...} to get_dataset"
        )
    inputs_length = int(sequence_length["inputs"])
    if inputs_length < 2:
        raise UserError(f"inputs length {inputs_length} is too small for {who}: raise it to >= 2")
    return inputs_length


def _check_targets(sequence_length, *, needed: int, who: str, knob: str) -> None:
    targets_length = int(sequence_length.get("targets") or needed)
    if targets_length < needed:
        raise UserError(
            f"targets length {targets_length} is too short: {who} of inputs "
            f"{sequence_length['inputs']} makes {needed} target tokens (inputs plus one marker "
            f"per corrupted token, with {knob}); set TASK_FEATURE_LENGTHS['targets'] >= {needed}"
        )


def replaced_lengths(*, inputs_length: int, replace_rate: float) -> tuple[int, int]:
    """(raw chunk tokens, targets length with EOS) for `inputs_length` (EOS included)."""
    _check_rate("replace_rate", replace_rate)
    n = inputs_length - 1
    return n, n + round(n * replace_rate) + 1


def inserted_lengths(*, inputs_length: int, insert_rate: float) -> tuple[int, int]:
    """(raw chunk tokens, targets length with EOS): n + round(n*rate) + EOS fills the inputs."""
    _check_rate("insert_rate", insert_rate)
    n = 0  # n + round(n * rate) never decreases, so scan up to the last n that fits
    while (n + 1) + round((n + 1) * insert_rate) + 1 <= inputs_length:
        n += 1
    if n == 0:
        raise UserError(
            f"inputs length {inputs_length} is too small for inserted token detection: "
            "one token and EOS need at least 2; raise the inputs length"
        )
    k = round(n * insert_rate)
    return n, n + 2 * k + 1


# --- replaced token detection -------------------------------------------------------------


@seqio.map_over_dataset(num_seeds=2)
def _replace_example(features, *, seeds, rate, probs, marker):
    tokens = features["targets"]
    n = tf.size(tokens)
    replaced = exact_count_mask(length=n, count=_count(n, rate), seed=seeds[0])
    random_tokens = draw_tokens(probs=probs, avoid=tokens, seed=seeds[1])
    inputs = tf.where(replaced, tf.cast(random_tokens, tokens.dtype), tokens)
    return {"inputs": inputs, "targets": mark(inputs, replaced, marker)}


def _corrupt_and_mark(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    who: str,
    knob: str,
    rate: float,
    sampler: str,
    lengths_fn,
    example_fn,
) -> tf.data.Dataset:
    """The shared plumbing of both detection objectives: checks, sampler, marker, map."""
    _check_rate(knob, rate)
    vocabulary = output_features["targets"].vocabulary
    probs = sampling_probs(vocabulary=vocabulary, sampler=sampler)
    inputs_length = _inputs_length(sequence_length, who)
    _, needed = lengths_fn(inputs_length, rate)
    _check_targets(sequence_length, needed=needed, who=who, knob=f"{knob}={rate}")
    return example_fn(
        dataset, rate=rate, probs=tf.constant(probs, tf.float64), marker=marker_id(vocabulary)
    )


def replace_tokens(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    replace_rate: float = 0.15,
    sampler: str = "uniform",
) -> tf.data.Dataset:
    """Chunk `targets` -> inputs with random replacements, targets marking them (no EOS)."""
    return _corrupt_and_mark(
        dataset,
        sequence_length,
        output_features,
        who="replaced token detection",
        knob="replace_rate",
        rate=replace_rate,
        sampler=sampler,
        example_fn=_replace_example,
        lengths_fn=lambda n, r: replaced_lengths(inputs_length=n, replace_rate=r),
    )


def split_for_replacement(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature] | None = None,
) -> tf.data.Dataset:
    """Chunks of inputs_length - 1 tokens: replacement keeps the length, EOS fills the rest."""
    del output_features
    n = _inputs_length(sequence_length, "replaced token detection") - 1
    return split_tokens(dataset, max_tokens_per_chunk=n)


def replaced_token_detection(*, replace_rate: float = 0.15, sampler: str = "uniform") -> list:
    """text -> tokens -> joined -> chunks -> random replacements, marked in targets -> EOS."""
    _check_rate("replace_rate", replace_rate)
    _check_sampler(sampler)
    return [
        *tokenize_text(),
        concatenate_documents,
        split_for_replacement,
        functools.partial(replace_tokens, replace_rate=replace_rate, sampler=sampler),
        seqio.preprocessors.append_eos_after_trim,
    ]


def _replaced_mask(tokens, seeds, *, replace_rate=0.15, sampler="uniform"):
    del sampler  # the positions do not depend on which tokens replace them
    n = tf.size(tokens)
    return exact_count_mask(length=n, count=_count(n, replace_rate), seed=seeds[0])


# --- inserted token detection -------------------------------------------------------------


@seqio.map_over_dataset(num_seeds=2)
def _insert_example(features, *, seeds, rate, probs, marker):
    tokens = features["targets"]
    n = tf.size(tokens)
    m = n + _count(n, rate)
    # A uniformly random interleaving = k insertions at uniformly random gaps.
    inserted = exact_count_mask(length=m, count=m - n, seed=seeds[0])
    original_index = tf.clip_by_value(tf.cumsum(tf.cast(~inserted, tf.int32)) - 1, 0, n - 1)
    random_tokens = draw_tokens(probs=probs, avoid=tf.fill([m], -1), seed=seeds[1])
    inputs = tf.where(
        inserted, tf.cast(random_tokens, tokens.dtype), tf.gather(tokens, original_index)
    )
    return {"inputs": inputs, "targets": mark(inputs, inserted, marker)}


def insert_tokens(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    insert_rate: float = 0.15,
    sampler: str = "uniform",
) -> tf.data.Dataset:
    """Chunk `targets` -> inputs with random insertions, targets marking them (no EOS)."""
    return _corrupt_and_mark(
        dataset,
        sequence_length,
        output_features,
        who="inserted token detection",
        knob="insert_rate",
        rate=insert_rate,
        sampler=sampler,
        example_fn=_insert_example,
        lengths_fn=lambda n, r: inserted_lengths(inputs_length=n, insert_rate=r),
    )


def split_for_insertion(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature] | None = None,
    *,
    insert_rate: float = 0.15,
) -> tf.data.Dataset:
    """Chunks that, with their insertions and EOS, fill sequence_length['inputs'] exactly."""
    del output_features
    inputs_length = _inputs_length(sequence_length, "inserted token detection")
    n, _ = inserted_lengths(inputs_length=inputs_length, insert_rate=insert_rate)
    return split_tokens(dataset, max_tokens_per_chunk=n)


def inserted_token_detection(*, insert_rate: float = 0.15, sampler: str = "uniform") -> list:
    """text -> tokens -> joined -> chunks -> random insertions, marked in targets -> EOS."""
    _check_rate("insert_rate", insert_rate)
    _check_sampler(sampler)
    return [
        *tokenize_text(),
        concatenate_documents,
        functools.partial(split_for_insertion, insert_rate=insert_rate),
        functools.partial(insert_tokens, insert_rate=insert_rate, sampler=sampler),
        seqio.preprocessors.append_eos_after_trim,
    ]


register(
    Objective(
        name="replaced_token_detection",
        paper="Clark et al. 2020, ELECTRA (text-to-text, random replacements)",
        summary="replace random tokens with random ones; targets copy inputs, <extra_id_0> "
        "before each replaced token",
        build=replaced_token_detection,
        noise_mask=_replaced_mask,
    )
)
register(
    Objective(
        name="inserted_token_detection",
        paper="t5lab seed list: 'predict which tokens must be deleted'",
        summary="insert random tokens at random gaps; targets copy inputs, <extra_id_0> "
        "before each inserted token",
        build=inserted_token_detection,
    )
)
