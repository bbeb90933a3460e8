"""T5 span corruption as seqio preprocessors.

Pipeline: tokenize `targets` -> concatenate_documents -> split_tokens_to_inputs_length
-> span_corruption -> seqio.preprocessors.append_eos_after_trim. Full-length chunks then
give `inputs`/`targets` of exactly the requested lengths (EOS included), so no padding
and no truncation are wasted.
"""

from collections.abc import Mapping, Sequence

import seqio
import tensorflow as tf

from t5lab.data.token_preprocessors import concatenate_documents, split_tokens
from t5lab.errors import UserError

__all__ = [
    "concatenate_documents",
    "random_spans_lengths",
    "random_spans_noise_mask",
    "span_corruption",
    "split_tokens",
    "split_tokens_to_inputs_length",
]


def _check_knobs(noise_density: float, mean_noise_span_length: float) -> None:
    if not 0.0 < noise_density < 1.0:
        raise UserError(f"noise_density must be in (0, 1), got {noise_density}")
    if mean_noise_span_length < 1.0:
        raise UserError(f"mean_noise_span_length must be >= 1, got {mean_noise_span_length}")


def _span_counts(
    length: int, noise_density: float, mean_noise_span_length: float
) -> tuple[int, int]:
    """(num_noise, num_spans) for `length` raw tokens; mirrors the TF code in the mask."""
    length = max(length, 2)
    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = max(round(num_noise / mean_noise_span_length), 1)
    # Every noise span needs a non-noise span before it (masks start with non-noise).
    num_spans = min(num_spans, length - num_noise)
    return num_noise, num_spans


def _corrupted_lengths(
    length: int, noise_density: float, mean_noise_span_length: float
) -> tuple[int, int]:
    """(inputs, targets) lengths with EOS after corrupting `length` raw tokens."""
    num_noise, num_spans = _span_counts(length, noise_density, mean_noise_span_length)
    return length - num_noise + num_spans + 1, num_noise + num_spans + 1


def random_spans_lengths(
    *, inputs_length: int, noise_density: float, mean_noise_span_length: float
) -> tuple[int, int]:
    """(tokens_length, targets_length): raw chunk size that corrupts to exactly `inputs_length`.

    Lets the splitter cut chunks that fill the encoder with no padding; the targets
    length is what the decoder then needs. Both counts include EOS.
    """
    _check_knobs(noise_density, mean_noise_span_length)
    minimum = _corrupted_lengths(2, noise_density, mean_noise_span_length)[0]
    if inputs_length < minimum:
        raise UserError(
            f"inputs length {inputs_length} is too small for span corruption: one kept "
            f"token, one sentinel and EOS need at least {minimum}; raise the inputs length"
        )
    # The corrupted inputs length grows by 0 or 1 per extra raw token, so scan upward.
    tokens_length = 2
    while (
        _corrupted_lengths(tokens_length + 1, noise_density, mean_noise_span_length)[0]
        <= inputs_length
    ):
        tokens_length += 1
    got_inputs, targets_length = _corrupted_lengths(
        tokens_length, noise_density, mean_noise_span_length
    )
    if got_inputs != inputs_length:  # cannot happen for density < 1; guard the invariant
        raise UserError(
            f"no raw length corrupts to exactly {inputs_length} inputs tokens with "
            f"noise_density={noise_density}, mean_noise_span_length={mean_noise_span_length}"
        )
    return tokens_length, targets_length


def _random_segmentation(num_items, num_segments, seed) -> tf.Tensor:
    """Lengths of a uniformly random split of `num_items` into `num_segments` positive parts.

    Shuffles the segment-start markers over item slots 1..num_items-1 (like T5),
    so every composition is equally likely.
    """
    markers = tf.concat(
        [tf.ones([num_segments - 1], tf.int32), tf.zeros([num_items - num_segments], tf.int32)],
        axis=0,
    )
    order = tf.argsort(tf.random.stateless_uniform([num_items - 1], seed=seed))
    starts = tf.concat([[0], tf.gather(markers, order)], axis=0)
    segment_ids = tf.cumsum(starts)
    return tf.math.unsorted_segment_sum(tf.ones_like(segment_ids), segment_ids, num_segments)


def random_spans_noise_mask(
    *,
    length,
    noise_density: float,
    mean_noise_span_length: float,
    seeds: Sequence,
) -> tf.Tensor:
    """Bool mask of `length` with exact noise/span counts, alternating kept/noise spans.

    Starts with kept tokens so every noise span has context before it. `seeds` are two
    stateless seeds (shape [2] each): one per segmentation, so a seed fixes the mask.
    Lengths 0 and 1 are handled (a 1-token chunk is all kept).
    """
    length = tf.convert_to_tensor(length, tf.int32)
    orig_length = length
    length = tf.maximum(length, 2)
    length_f = tf.cast(length, tf.float64)
    # float64 + round-half-even matches Python's round() in random_spans_lengths.
    num_noise = tf.cast(tf.round(length_f * noise_density), tf.int32)
    num_noise = tf.clip_by_value(num_noise, 1, length - 1)
    num_spans = tf.cast(tf.round(tf.cast(num_noise, tf.float64) / mean_noise_span_length), tf.int32)
    num_spans = tf.clip_by_value(num_spans, 1, length - num_noise)
    noise_lengths = _random_segmentation(num_noise, num_spans, seeds[0])
    kept_lengths = _random_segmentation(length - num_noise, num_spans, seeds[1])
    interleaved = tf.reshape(tf.stack([kept_lengths, noise_lengths], axis=1), [-1])
    span_starts = tf.cumsum(interleaved)[:-1]
    start_flags = tf.math.unsorted_segment_sum(tf.ones_like(span_starts), span_starts, length)
    is_noise = tf.equal(tf.cumsum(start_flags) % 2, 1)
    return is_noise[:orig_length]


def _required_inputs_length(sequence_length, who: str) -> int:
    if not sequence_length or "inputs" not in sequence_length:
        raise UserError(
            f"{who} needs sequence_length['inputs'] (got {sequence_length!r}); "
            "pass sequence_length={'inputs': ..., 'targets': ...} to get_dataset"
        )
    return int(sequence_length["inputs"])


def split_tokens_to_inputs_length(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature] | None = None,
    *,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    feature_key: str = "targets",
    keep_tail: bool = True,
) -> tf.data.Dataset:
    """Cuts token sequences into chunks that span-corrupt to exactly sequence_length['inputs'].

    The shorter tail chunk is kept by default (as in T5); it just yields shorter
    examples. Only `feature_key` survives.
    """
    del output_features  # seqio passes it; the chunk size needs only the lengths
    inputs_length = _required_inputs_length(sequence_length, "split_tokens_to_inputs_length")
    tokens_length, _ = random_spans_lengths(
        inputs_length=inputs_length,
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
    )
    return split_tokens(
        dataset, max_tokens_per_chunk=tokens_length, feature_key=feature_key, keep_tail=keep_tail
    )


def _replace_spans_with_sentinels(tokens, noise_mask, vocab_size: int) -> tf.Tensor:
    """Each noise span -> one sentinel (vocab_size-1-i for span i); later span tokens dropped."""
    prev_is_noise = tf.concat([[False], noise_mask[:-1]], axis=0)
    span_first = tf.logical_and(noise_mask, tf.logical_not(prev_is_noise))
    span_rest = tf.logical_and(noise_mask, prev_is_noise)
    sentinels = vocab_size - tf.cumsum(tf.cast(span_first, tokens.dtype))
    tokens = tf.where(span_first, sentinels, tokens)
    return tf.boolean_mask(tokens, tf.logical_not(span_rest))


@seqio.map_over_dataset(num_seeds=2)
def _corrupt_example(features, *, seeds, noise_density, mean_noise_span_length, vocab_size):
    tokens = features["targets"]
    mask = random_spans_noise_mask(
        length=tf.size(tokens),
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
        seeds=seeds,
    )
    targets = _replace_spans_with_sentinels(tokens, tf.logical_not(mask), vocab_size)
    # A 0/1-token chunk has no noise; its lone kept span must not leave a stray sentinel.
    targets = targets[: tf.where(tf.reduce_any(mask), tf.size(targets), 0)]
    return {"inputs": _replace_spans_with_sentinels(tokens, mask, vocab_size), "targets": targets}


def span_corruption(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
) -> tf.data.Dataset:
    """T5 span corruption of `targets` tokens into (`inputs`, `targets`), without EOS.

    `inputs` keeps the non-noise tokens with each noise span replaced by a unique
    sentinel (<extra_id_i> = vocab_size-1-i); `targets` lists each sentinel followed
    by its span. Seeds come from seqio (Task seed or `seqio.map_seed_manager`).
    Follow with seqio.preprocessors.append_eos_after_trim.
    """
    _check_knobs(noise_density, mean_noise_span_length)
    inputs_length = _required_inputs_length(sequence_length, "span_corruption")
    vocabulary = output_features["targets"].vocabulary
    tokens_length, targets_needed = random_spans_lengths(
        inputs_length=inputs_length,
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
    )
    _, num_spans = _span_counts(tokens_length, noise_density, mean_noise_span_length)
    targets_length = int(sequence_length.get("targets") or targets_needed)
    if targets_length < targets_needed:
        raise UserError(
            f"targets length {targets_length} is too short: span corruption of inputs "
            f"{inputs_length} (noise_density {noise_density}, mean span "
            f"{mean_noise_span_length}) makes {targets_needed} target tokens; set "
            f"TASK_FEATURE_LENGTHS['targets'] >= {targets_needed}"
        )
    extra_ids = getattr(vocabulary, "extra_ids", None)
    if extra_ids is not None and num_spans > extra_ids:
        raise UserError(
            f"span corruption needs {num_spans} sentinels per example but the vocabulary "
            f"has extra_ids={extra_ids}; lower sequence_length['inputs'] or noise_density, "
            "raise mean_noise_span_length, or use a vocabulary with more extra_ids"
        )
    return _corrupt_example(
        dataset,
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
        vocab_size=vocabulary.vocab_size,
    )
