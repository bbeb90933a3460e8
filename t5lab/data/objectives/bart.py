"""BART's noising functions (Lewis et al. 2020, section 2.2) as objectives.

Each noise is a per-example function on a 1-D int32 token tensor and a stateless seed,
so combinations are just sequences of noises (`denoise` applies them in order). Inputs
are the noised chunk; targets are always the original chunk. The single mask token is
`<extra_id_0>` (vocab_size - 1). Differences from fairseq's `DenoisingDataset`, on
purpose: noise is per subword token (fairseq's span-poisson masks whole words);
token masking/deletion are i.i.d. per token; text infilling keeps the last sampled span
whole, so span lengths stay exactly Poisson (see `infill_spans`); sentences come from a
plain text rule (`sentences.py`); and there is no random-token replacement (mask_random).

Chunks hold n = min(inputs, targets) - 1 raw tokens (EOS takes the last slot): targets are
the chunk itself, and every noise here keeps inputs within n tokens, except text
infilling, whose zero-length spans add tokens; it caps its spans to what fits.
"""

import functools
from collections.abc import Callable, Mapping, Sequence

import seqio
import tensorflow as tf

from t5lab.data.objectives.registry import Objective, register, tokenize_text
from t5lab.data.objectives.sentences import pack_sentences, tokenize_sentences
from t5lab.data.token_preprocessors import concatenate_documents, split_tokens
from t5lab.errors import UserError

# A noise: (*, tokens, sentence_ids, seed, mask_id, max_length) -> noised tokens.
Noise = Callable[..., tf.Tensor]
_fold = tf.random.experimental.stateless_fold_in


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise UserError(f"{name} must be in [0, 1), got {value}")


def _check_lambda(poisson_lambda: float) -> None:
    if not poisson_lambda > 0.0:
        raise UserError(
            f"poisson_lambda must be > 0 (mean span length), got {poisson_lambda}; "
            "with 0 every span is empty and none ever covers mask_rate of the tokens"
        )


def _check_ratio(permute_ratio: float) -> None:
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


# --- steps: the noises with their knobs bound, in `denoise`'s calling convention -------------


def _token_masking(mask_rate: float) -> Noise:
    def step(*, tokens, seed, mask_id, **_):
        return mask_tokens(tokens=tokens, seed=seed, mask_rate=mask_rate, mask_id=mask_id)[0]

    return step


def _token_deletion(delete_rate: float) -> Noise:
    def step(*, tokens, seed, **_):
        return delete_tokens(tokens=tokens, seed=seed, delete_rate=delete_rate)[0]

    return step


def _text_infilling(mask_rate: float, poisson_lambda: float) -> Noise:
    def step(*, tokens, seed, mask_id, max_length, **_):
        return infill_spans(
            tokens=tokens,
            seed=seed,
            mask_rate=mask_rate,
            poisson_lambda=poisson_lambda,
            mask_id=mask_id,
            max_length=max_length,
        )[0]

    return step


def _sentence_permutation(permute_ratio: float) -> Noise:
    def step(*, tokens, sentence_ids, seed, **_):
        return permute_sentences(
            tokens=tokens, sentence_ids=sentence_ids, seed=seed, permute_ratio=permute_ratio
        )

    return step


def _document_rotation() -> Noise:
    def step(*, tokens, seed, **_):
        return rotate_tokens(tokens=tokens, seed=seed)[0]

    return step


# --- seqio preprocessors -------------------------------------------------------------------


def _chunk_length(sequence_length: Mapping[str, int] | None) -> int:
    """Raw tokens per chunk: the original (+EOS) must fit both inputs and targets."""
    lengths = dict(sequence_length or {})
    if "inputs" not in lengths or "targets" not in lengths:
        raise UserError(
            f"BART noising needs sequence_length['inputs'] and ['targets'] (got {lengths!r}); "
            "pass sequence_length={'inputs': ..., 'targets': ...}"
        )
    n = min(int(lengths["inputs"]), int(lengths["targets"])) - 1
    if n < 2:
        raise UserError(
            f"sequence_length {lengths} is too small for BART noising: inputs and targets "
            "must both be >= 3 (two tokens and EOS); raise TASK_FEATURE_LENGTHS"
        )
    return n


def split_token_chunks(
    dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None
) -> tf.data.Dataset:
    """Token stream -> chunks of min(inputs, targets) - 1 tokens (tail kept)."""
    return split_tokens(dataset, max_tokens_per_chunk=_chunk_length(sequence_length))


def split_sentence_chunks(
    dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None
) -> tf.data.Dataset:
    """Per-document sentences -> chunks of whole sentences, min(inputs, targets) - 1 at most."""
    return pack_sentences(dataset, max_tokens_per_chunk=_chunk_length(sequence_length))


def denoise(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    noises: Sequence[Noise],
) -> tf.data.Dataset:
    """`targets` chunk -> {"inputs": noises applied in order, "targets": the chunk}, no EOS.

    A noise needing `sentence_ids` (permutation) must come first: later noises change
    lengths. Each noise gets its own seed, folded from the one seqio injects.
    """
    _chunk_length(sequence_length)  # validates the lengths (the splitter uses the same n)
    vocabulary = output_features["targets"].vocabulary
    if not getattr(vocabulary, "extra_ids", 0):
        raise UserError(
            "BART noising uses <extra_id_0> as its mask token, but the vocabulary has "
            "extra_ids=0; use a vocabulary with extra_ids >= 1"
        )
    mask_id = vocabulary.vocab_size - 1
    max_length = int(sequence_length["inputs"]) - 1

    @seqio.map_over_dataset(num_seeds=1)
    def _noise(features, seed):
        targets = features["targets"]
        tokens = targets
        for i, noise in enumerate(noises):
            tokens = noise(
                tokens=tokens,
                sentence_ids=features.get("sentence_ids"),
                seed=_fold(seed, i),
                mask_id=mask_id,
                max_length=max_length,
            )
        return {"inputs": tokens, "targets": targets}

    return _noise(dataset)


def _token_pipeline(*noises: Noise) -> list:
    return [
        *tokenize_text(),
        concatenate_documents,
        split_token_chunks,
        functools.partial(denoise, noises=noises),
        seqio.preprocessors.append_eos_after_trim,
    ]


def _sentence_pipeline(*noises: Noise) -> list:
    return [
        tokenize_sentences,
        seqio.CacheDatasetPlaceholder(),
        split_sentence_chunks,
        functools.partial(denoise, noises=noises),
        seqio.preprocessors.append_eos_after_trim,
    ]


# --- builders (knobs = keyword-only parameters with the literature defaults) ---------------


def bart_token_masking(*, mask_rate: float = 0.15) -> list:
    """BERT-style masking with one mask token; 0.15 is BERT's rate (BART states none)."""
    _check_rate("mask_rate", mask_rate)
    return _token_pipeline(_token_masking(mask_rate))


def bart_token_deletion(*, delete_rate: float = 0.15) -> list:
    """Random tokens deleted; the model must also find where (0.15 as for masking)."""
    _check_rate("delete_rate", delete_rate)
    return _token_pipeline(_token_deletion(delete_rate))


def bart_text_infilling(*, mask_rate: float = 0.3, poisson_lambda: float = 3.0) -> list:
    """Poisson(3) spans covering 30% of tokens, each -> one mask (BART's best single noise)."""
    _check_rate("mask_rate", mask_rate)
    _check_lambda(poisson_lambda)
    return _token_pipeline(_text_infilling(mask_rate, poisson_lambda))


def bart_sentence_permutation(*, permute_ratio: float = 1.0) -> list:
    """Chunks of whole sentences, shuffled (fairseq's --permute-sentences, 1.0 in BART)."""
    _check_ratio(permute_ratio)
    return _sentence_pipeline(_sentence_permutation(permute_ratio))


def bart_document_rotation() -> list:
    """The chunk rotated to start at a random token; the model must find the real start."""
    return _token_pipeline(_document_rotation())


def bart_infilling_permutation(
    *, mask_rate: float = 0.3, poisson_lambda: float = 3.0, permute_ratio: float = 1.0
) -> list:
    """BART-large's pretraining noise: sentence permutation, then text infilling."""
    _check_rate("mask_rate", mask_rate)
    _check_lambda(poisson_lambda)
    _check_ratio(permute_ratio)
    return _sentence_pipeline(
        _sentence_permutation(permute_ratio), _text_infilling(mask_rate, poisson_lambda)
    )


# --- `t5lab objectives show` masks ---------------------------------------------------------


def _masking_mask(tokens, seeds, *, mask_rate=0.15):
    return mask_tokens(tokens=tokens, seed=seeds[0], mask_rate=mask_rate, mask_id=0)[1]


def _deletion_mask(tokens, seeds, *, delete_rate=0.15):
    return delete_tokens(tokens=tokens, seed=seeds[0], delete_rate=delete_rate)[1]


def _infilling_mask(tokens, seeds, *, mask_rate=0.3, poisson_lambda=3.0):
    n = tf.size(tokens)
    return infill_spans(
        tokens=tokens,
        seed=seeds[0],
        mask_rate=mask_rate,
        poisson_lambda=poisson_lambda,
        mask_id=0,
        max_length=2 * n + 1,
    )[1]


_PAPER = "Lewis et al. 2020, BART (section 2.2)"
for _name, _build, _mask, _summary in (
    (
        "bart_token_masking",
        bart_token_masking,
        _masking_mask,
        "replace random tokens (i.i.d.) with one mask token; targets are the original",
    ),
    (
        "bart_token_deletion",
        bart_token_deletion,
        _deletion_mask,
        "delete random tokens (i.i.d.); targets are the original",
    ),
    (
        "bart_text_infilling",
        bart_text_infilling,
        _infilling_mask,
        "replace Poisson-length spans (even empty ones) with one mask each",
    ),
    (
        "bart_sentence_permutation",
        bart_sentence_permutation,
        None,
        "shuffle the sentences of a chunk; targets are the original order",
    ),
    (
        "bart_document_rotation",
        bart_document_rotation,
        None,
        "rotate the chunk to start at a random token; targets are the original",
    ),
    (
        "bart_infilling_permutation",
        bart_infilling_permutation,
        None,
        "shuffle sentences, then text infilling (BART-large's pretraining noise)",
    ),
):
    register(Objective(name=_name, paper=_PAPER, summary=_summary, build=_build, noise_mask=_mask))
