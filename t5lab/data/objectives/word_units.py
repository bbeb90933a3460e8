"""Word units for the whole-word masked-LM objectives, and how they are selected.

A word is a maximal run of tokens that starts with a word-start token. Whether a token
starts a word is a property of its id alone, so it is computed once per vocabulary as a
bool table and looked up inside the TF graph. CJK text has no spaces between words, so
a segmenter first puts spaces at word boundaries; SentencePiece then starts each word
with a "▁" piece, and the byte vocabulary with a space byte.
"""

import functools
import importlib.util
import re
from collections.abc import Callable, Mapping

import numpy as np
import seqio
import tensorflow as tf

from t5lab.errors import UserError, did_you_mean

Segmenter = Callable[[str], list[str]]
SEGMENTERS = ("char", "jieba", "none")

# Han ideographs, as BERT's tokenizer counts them (CJK unified + extensions + compatibility).
_HAN_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2F800, 0x2FA1F),
)
_PY_HAN = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _HAN_RANGES)
_PY_WORD = re.compile(f"[{_PY_HAN}]|[^{_PY_HAN}]+")
_RE2_HAN = "[" + "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in _HAN_RANGES) + "]"
_WHITESPACE_BYTES = b" \t\n\r\x0b\x0c"


def char_words(text: str) -> list[str]:
    """Whitespace-separated words, with every Han character a word of its own.

    The default CJK segmenter: Chinese-BERT-wwm needs a real word segmenter, but
    character level is the dependency-free fallback (and what plain BERT does).
    Positional `text`: segmenters share the protocol `(text) -> list[str]`.
    """
    return [w for chunk in text.split() for w in _PY_WORD.findall(chunk)]


def jieba_words(text: str) -> list[str]:
    """Words from the jieba segmenter (Cui et al. 2019 used LTP; jieba is the common stand-in)."""
    import jieba  # optional: not a t5lab dependency

    return [w for w in jieba.cut(text) if w.strip()]


def get_segmenter(cjk_segmenter: str | Segmenter) -> Segmenter | None:
    """The segmenter for the `cjk_segmenter` knob: a name from SEGMENTERS or a callable."""
    if callable(cjk_segmenter):
        return cjk_segmenter
    if cjk_segmenter == "none":
        return None
    if cjk_segmenter == "char":
        return char_words
    if cjk_segmenter == "jieba":
        if importlib.util.find_spec("jieba") is None:
            raise UserError(
                "cjk_segmenter='jieba' needs the jieba package (pip install jieba); "
                "or set cjk_segmenter='char'"
            )
        return jieba_words
    raise UserError(
        f"unknown cjk_segmenter {cjk_segmenter!r}; expected one of {', '.join(SEGMENTERS)} "
        f"or a function text -> list of words{did_you_mean(str(cjk_segmenter), SEGMENTERS)}"
    )


def _char_segment_graph(text: tf.Tensor) -> tf.Tensor:
    """`char_words` as graph ops: a space between each Han character and any neighbour.

    Each pass splits every other adjacent pair (matches cannot overlap), so two
    passes per side separate all pairs. Other whitespace is kept as it was.
    """
    for _ in range(2):
        text = tf.strings.regex_replace(text, f"({_RE2_HAN})(\\S)", r"\1 \2")
    for _ in range(2):
        text = tf.strings.regex_replace(text, f"(\\S)({_RE2_HAN})", r"\1 \2")
    return text


def _python_segment(segmenter: Segmenter, text: tf.Tensor) -> tf.Tensor:
    def _join(t):
        return " ".join(segmenter(t.numpy().decode("utf-8")))

    out = tf.py_function(_join, [text], tf.string)
    out.set_shape([])
    return out


def segment_text(
    dataset: tf.data.Dataset,
    *,
    cjk_segmenter: str | Segmenter = "char",
    feature_key: str = "text",
) -> tf.data.Dataset:
    """Puts spaces between words of `feature_key` so tokenization marks every word start.

    A no-op on text without Han characters for "char" (done with graph regexes);
    "jieba" and custom segmenters run in Python and rejoin the words with single spaces.
    """
    segmenter = get_segmenter(cjk_segmenter)
    if segmenter is None:
        return dataset
    if segmenter is char_words:
        segment = _char_segment_graph
    else:
        segment = functools.partial(_python_segment, segmenter)

    def _map(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {**ex, feature_key: segment(ex[feature_key])}

    return dataset.map(_map, num_parallel_calls=tf.data.AUTOTUNE)


def word_start_table(*, vocabulary: seqio.Vocabulary) -> np.ndarray:
    """bool[vocab_size]: does token id i begin a new word?

    SentencePiece: pieces starting with "▁" (the space before a word). Bytes: the
    whitespace bytes, so a space and the word after it form one unit, as "▁" does in
    SentencePiece. Pad/EOS/UNK, control pieces and sentinels stand alone as words.
    """
    table = np.ones(vocabulary.vocab_size, dtype=bool)
    if isinstance(vocabulary, seqio.ByteVocabulary):
        first = vocabulary.vocab_size - vocabulary.extra_ids - 256
        table[first : first + 256] = False
        for byte in _WHITESPACE_BYTES:
            table[first + byte] = True
        return table
    tokenizer = getattr(vocabulary, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "id_to_piece"):
        raise UserError(
            f"word-level masking needs a SentencePiece or byte vocabulary to find word "
            f"starts, got {type(vocabulary).__name__}; use bert_mlm or change the vocabulary"
        )
    for i in range(tokenizer.get_piece_size()):
        if tokenizer.is_control(i) or tokenizer.is_unknown(i):
            continue
        piece = tokenizer.id_to_piece(i)
        if tokenizer.is_byte(i):  # "<0x20>"-style byte-fallback pieces
            table[i] = int(piece[3:-1], 16) in _WHITESPACE_BYTES
        else:
            table[i] = piece.startswith("▁")
    return table


# ---------------------------------------------------------------- selection


def token_budget(*, n: tf.Tensor, corrupt_rate: float) -> tf.Tensor:
    """round(n * rate) tokens, at least one when the rate is positive (like BERT)."""
    budget = tf.round(tf.cast(n, tf.float64) * corrupt_rate)
    if corrupt_rate > 0:
        budget = tf.minimum(tf.maximum(budget, 1.0), tf.cast(n, tf.float64))
    return budget


def select_units(*, unit_lengths: tf.Tensor, budget: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """bool[k]: units in random order until `budget` tokens; the crossing unit by chance."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    k = tf.size(unit_lengths)
    order = tf.argsort(tf.random.stateless_uniform([k], seed=seeds[0]))
    lengths = tf.cast(tf.gather(unit_lengths, order), tf.float64)
    after = tf.cumsum(lengths)
    before = after - lengths
    coin = tf.random.stateless_uniform([], seed=seeds[1], dtype=tf.float64)
    crossing = (before < budget) & (after > budget) & (coin * lengths < budget - before)
    chosen = (after <= budget) | crossing
    return tf.scatter_nd(order[:, None], chosen, [k])


def _word_ids(tokens: tf.Tensor, starts_word: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(word index of each token, number of words); a chunk always starts a word."""
    starts = tf.gather(starts_word, tokens) | tf.equal(tf.range(tf.size(tokens)), 0)
    word_ids = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    return word_ids, tf.reduce_sum(tf.cast(starts, tf.int32))


def select_whole_words(
    *, tokens: tf.Tensor, seed: tf.Tensor, corrupt_rate: float, starts_word: tf.Tensor
) -> tf.Tensor:
    """Whole-word masking: every piece of a selected word, ~round(n * corrupt_rate) tokens."""
    word_ids, num_words = _word_ids(tokens, starts_word)
    lengths = tf.math.unsorted_segment_sum(tf.ones_like(word_ids), word_ids, num_words)
    budget = token_budget(n=tf.size(tokens), corrupt_rate=corrupt_rate)
    chosen = select_units(unit_lengths=lengths, budget=budget, seed=seed)
    return tf.gather(chosen, word_ids)


def ngram_length_probs(*, max_ngram: int) -> np.ndarray:
    """ALBERT's n-gram lengths: p(n) proportional to 1/n for n = 1..max_ngram."""
    weights = 1.0 / np.arange(1, max_ngram + 1)
    return weights / weights.sum()


def geometric_length_probs(*, geometric_p: float, max_span_words: int) -> np.ndarray:
    """SpanBERT's span lengths: Geometric(p) truncated at max_span_words and renormalised."""
    lengths = np.arange(1, max_span_words + 1)
    weights = geometric_p * (1.0 - geometric_p) ** (lengths - 1)
    return weights / weights.sum()


def _place_spans(
    num_words: tf.Tensor, probs: np.ndarray, corrupt_rate: float, seed: tf.Tensor
) -> tf.Tensor:
    """bool[num_words]: i.i.d.-length spans, uniformly placed, separated by >= 1 word."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    mean_length = float(np.dot(np.arange(1, len(probs) + 1), probs))
    expected = tf.cast(num_words, tf.float64) * corrupt_rate / mean_length
    coin = tf.random.stateless_uniform([], seed=seeds[0], dtype=tf.float64)
    num_spans = tf.cast(tf.floor(expected) + tf.cast(coin < expected % 1.0, tf.float64), tf.int32)
    logits = tf.math.log(tf.constant(probs[None, :], tf.float32))
    lengths = tf.random.stateless_categorical(logits, num_words, seed=seeds[1], dtype=tf.int32)
    lengths = lengths[0] + 1
    # k spans need sum(lengths[:k]) + (k - 1) words; drop spans that do not fit (rare).
    needed = tf.cumsum(lengths) + tf.range(num_words)
    num_spans = tf.minimum(num_spans, tf.reduce_sum(tf.cast(needed <= num_words, tf.int32)))
    lengths = lengths[:num_spans]
    free = num_words - tf.reduce_sum(lengths) - tf.maximum(num_spans - 1, 0)
    # Uniform placement: choose which of free + num_spans slots hold the spans.
    slots = free + num_spans
    order = tf.argsort(tf.random.stateless_uniform([slots], seed=seeds[2]))
    is_span = tf.scatter_nd(order[:num_spans, None], tf.ones([num_spans], tf.bool), [slots])
    span_index = tf.maximum(tf.cumsum(tf.cast(is_span, tf.int32)) - 1, 0)
    masked_run = tf.where(is_span, tf.gather(tf.concat([lengths, [0]], 0), span_index), 0)
    gap_after = tf.where(is_span, tf.cast(span_index < num_spans - 1, tf.int32), 1)
    runs = tf.reshape(tf.stack([masked_run, gap_after], axis=1), [-1])
    values = tf.tile([True, False], [slots])
    return tf.repeat(values, runs)


def select_word_spans(
    *,
    tokens: tf.Tensor,
    seed: tf.Tensor,
    corrupt_rate: float,
    starts_word: tf.Tensor,
    length_probs: np.ndarray,
) -> tf.Tensor:
    """Spans of whole words with lengths from `length_probs` (index i = i + 1 words)."""
    word_ids, num_words = _word_ids(tokens, starts_word)
    return tf.gather(_place_spans(num_words, length_probs, corrupt_rate, seed), word_ids)
