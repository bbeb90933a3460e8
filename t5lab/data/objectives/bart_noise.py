"""BART's per-example noises (Lewis et al. 2020, section 2.2) on 1-D token tensors.

Each takes keyword arguments and a stateless seed, so `bart.py` can chain them into
objectives; see its docstring for where they differ from fairseq on purpose.
"""

import tensorflow as tf

from t5lab.errors import UserError

_fold = tf.random.experimental.stateless_fold_in


def check_rate(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise UserError(f"{name} must be in [0, 1), got {value}")


def check_lambda(poisson_lambda: float) -> None:
    if not poisson_lambda > 0.0:
        raise UserError(
            f"poisson_lambda must be > 0 (mean span length), got {poisson_lambda}; "
            "with 0 every span is empty and none ever covers mask_rate of the tokens"
        )


def check_ratio(permute_ratio: float) -> None:
    if not 0.0 <= permute_ratio <= 1.0:
        raise UserError(f"permute_ratio must be in [0, 1], got {permute_ratio}")


def _max_or_minus_one(values: tf.Tensor) -> tf.Tensor:
    return tf.reduce_max(tf.concat([tf.constant([-1], values.dtype), values], 0))


def _uniform(n, seed) -> tf.Tensor:
    return tf.random.stateless_uniform(tf.reshape(n, [1]), seed=seed)


# --- per-example noises ------------------------------------------------------------------


def mask_tokens(
    *, tokens: tf.Tensor, seed: tf.Tensor, mask_rate: float, mask_id: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Token masking: each token becomes the mask with probability mask_rate.

    Returns (noised tokens, bool mask of the masked positions); the length is unchanged.
    """
    masked = _uniform(tf.size(tokens), seed) < mask_rate
    return tf.where(masked, tf.constant(mask_id, tokens.dtype), tokens), masked


def delete_tokens(
    *, tokens: tf.Tensor, seed: tf.Tensor, delete_rate: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Token deletion: each token is dropped with probability delete_rate (no trace left).

    Returns (kept tokens, bool mask of the deleted positions).
    """
    deleted = _uniform(tf.size(tokens), seed) < delete_rate
    return tf.boolean_mask(tokens, tf.logical_not(deleted)), deleted


def rotate_tokens(*, tokens: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Document rotation: start at a uniformly random token other than the first.

    Like fairseq, the identity rotation is excluded (it would be no noise). Returns
    (rotated tokens, offset): inputs == targets[offset:] + targets[:offset].
    """
    n = tf.size(tokens)
    u = tf.random.stateless_uniform([], seed=seed)
    offset = tf.where(n > 1, 1 + tf.cast(u * tf.cast(n - 1, tf.float32), tf.int32), 0)
    offset = tf.minimum(offset, tf.maximum(n - 1, 0))  # float rounding guard
    return tf.roll(tokens, shift=-offset, axis=0), offset


def permute_sentences(
    *, tokens: tf.Tensor, sentence_ids: tf.Tensor, seed: tf.Tensor, permute_ratio: float
) -> tf.Tensor:
    """Sentence permutation: ceil(permute_ratio * m) random sentences swap places randomly.

    `sentence_ids` numbers the chunk's m sentences 0..m-1 in order (from
    `pack_sentences`); with permute_ratio 1 (BART) the whole order is shuffled.
    """
    m = _max_or_minus_one(sentence_ids) + 1
    k = tf.cast(tf.math.ceil(tf.cast(m, tf.float64) * permute_ratio), tf.int32)
    chosen = tf.argsort(_uniform(m, _fold(seed, 0)))[:k]
    shuffled = tf.gather(chosen, tf.argsort(_uniform(k, _fold(seed, 1))))
    order = tf.tensor_scatter_nd_update(tf.range(m), chosen[:, None], shuffled)
    sentences = tf.RaggedTensor.from_value_rowids(tokens, sentence_ids, nrows=m)
    return tf.gather(sentences, order).flat_values


def _poisson_spans(target, limit, poisson_lambda: float, seed) -> tf.Tensor:
    """Poisson(λ) lengths drawn until they sum to >= target (or `limit` draws), in order."""
    block = tf.cast(tf.math.ceil(tf.cast(target, tf.float32) * 1.25 / poisson_lambda), tf.int32)
    block = tf.minimum(block + 8, limit)

    def _more(lengths, total, i):
        return tf.logical_and(total < target, tf.size(lengths) < limit)

    def _draw(lengths, total, i):
        new = tf.random.stateless_poisson(
            tf.reshape(block, [1]), seed=_fold(seed, i), lam=poisson_lambda, dtype=tf.int32
        )
        return tf.concat([lengths, new], 0), total + tf.reduce_sum(new), i + 1

    lengths, _, _ = tf.while_loop(
        _more,
        _draw,
        (tf.zeros([0], tf.int32), tf.constant(0), tf.constant(0)),
        shape_invariants=(tf.TensorShape([None]), tf.TensorShape([]), tf.TensorShape([])),
    )
    # Keep the draws before the crossing one, and the crossing one itself (whole).
    below = tf.reduce_sum(tf.cast(tf.cumsum(lengths) < target, tf.int32))
    count = tf.minimum(below + 1, tf.size(lengths))
    return lengths[: tf.where(target > 0, count, 0)]


def infill_spans(
    *,
    tokens: tf.Tensor,
    seed: tf.Tensor,
    mask_rate: float,
    poisson_lambda: float,
    mask_id: int,
    max_length: int | tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Text infilling: Poisson(λ)-long spans, each (even an empty one) -> one mask token.

    Span lengths are drawn until they cover round(mask_rate * n) tokens. fairseq cuts the
    last span to hit the count exactly; we keep it whole, so (by Wald's identity) the
    pooled span lengths are exactly Poisson, at the cost of covering about λ/2 tokens
    more than the count. Spans are placed uniformly at random with at least one kept
    token between two spans, so every mask stands for exactly one span and the original
    is recoverable by alignment. Trailing draws are dropped only if the spans cannot fit
    that way in n tokens, or the inputs would exceed `max_length` (empty spans add a
    token each). Returns (noised tokens, bool mask of the covered positions).
    """
    n = tf.size(tokens)
    target = tf.cast(tf.floor(tf.cast(n, tf.float64) * mask_rate + 0.5), tf.int32)
    lengths = _poisson_spans(target, n + 2, poisson_lambda, _fold(seed, 0))
    covered = tf.cumsum(lengths)
    count = tf.range(1, tf.size(lengths) + 1)
    fits = tf.logical_and(covered + count - 1 <= n, n - covered + count <= max_length)
    # The longest prefix of the draws that fits (all of them, unless lengths are tight).
    num_spans = _max_or_minus_one(tf.boolean_mask(count, fits))
    num_spans = tf.maximum(num_spans, 0)
    lengths = lengths[:num_spans]
    lengths = tf.gather(lengths, tf.argsort(_uniform(num_spans, _fold(seed, 1))))
    kept = n - tf.reduce_sum(lengths)
    # Uniform placement with gaps: shuffle `kept - (spans-1)` kept slots and the span slots,
    # then put one forced kept token after every span but the last.
    slots = kept - tf.maximum(num_spans - 1, 0) + num_spans
    slot_rank = tf.argsort(tf.argsort(_uniform(slots, _fold(seed, 2))))
    slot_is_span = slot_rank < num_spans
    last_span_slot = _max_or_minus_one(tf.boolean_mask(tf.range(slots), slot_is_span))
    # Each slot emits [its event, forced kept?]; 1 = span, 0 = kept, -1 = nothing.
    forced = tf.logical_and(slot_is_span, tf.range(slots) != last_span_slot)
    pairs = tf.stack([tf.cast(slot_is_span, tf.int32), tf.where(forced, 0, -1)], axis=1)
    events = tf.reshape(pairs, [-1])
    is_span = tf.equal(tf.boolean_mask(events, events >= 0), 1)
    span_index = tf.cumsum(tf.cast(is_span, tf.int32)) - 1
    padded_lengths = tf.concat([lengths, [0]], 0)  # gather must stay in range if no spans
    consumed = tf.where(is_span, tf.gather(padded_lengths, tf.maximum(span_index, 0)), 1)
    offsets = tf.cumsum(consumed, exclusive=True)
    padded = tf.concat([tokens, tf.zeros([1], tokens.dtype)], 0)
    kept_tokens = tf.gather(padded, tf.minimum(offsets, n))
    noised = tf.where(is_span, tf.constant(mask_id, tokens.dtype), kept_tokens)
    return noised, tf.repeat(is_span, consumed)
