"""Sentences for sentence-level objectives (BART sentence permutation; reusable for NSP).

The rule, identical in Python and TF: a sentence ends after `.`, `!` or `?` followed by
ASCII whitespace (the whitespace is dropped); pieces are stripped and empty ones dropped.
It is deliberately simple (no abbreviation handling: "Mr. Smith" splits), which is what
BART's permutation needs: any consistent cut into sentence-like pieces. Splitting happens
on text, before tokenization, so every sentence starts on a token boundary.
"""

import re
from collections.abc import Mapping

import seqio
import tensorflow as tf

from t5lab.errors import UserError

_WS = " \t\n\r\f\v"  # ASCII whitespace: the same set for RE2 (TF) and Python
_BOUNDARY = r"([.!?])[ \t\n\r\f\v]+"
_SEP = "\x1e"  # ASCII record separator: marks the cuts, then splits on them


def _max_or_minus_one(values: tf.Tensor) -> tf.Tensor:
    """Largest value of a 1-D int tensor, or -1 when it is empty."""
    return tf.reduce_max(tf.concat([tf.constant([-1], values.dtype), values], 0))


def split_sentences(*, text: str) -> list[str]:
    """Python twin of `split_sentences_tf` (same rule, same pieces), for tests and tools."""
    marked = re.sub(_BOUNDARY, "\\1" + _SEP, text.replace(_SEP, " "))
    pieces = (piece.strip(_WS) for piece in marked.split(_SEP))
    return [piece for piece in pieces if piece]


def split_sentences_tf(*, text: tf.Tensor) -> tf.Tensor:
    """Scalar string -> string[num_sentences], by the module's rule."""
    text = tf.strings.regex_replace(text, _SEP, " ")
    marked = tf.strings.regex_replace(text, _BOUNDARY, "\\1" + _SEP)
    pieces = tf.strings.strip(tf.strings.split(marked, _SEP))
    return tf.boolean_mask(pieces, tf.strings.length(pieces) > 0)


def tokenize_sentences(
    dataset: tf.data.Dataset,
    output_features: Mapping[str, seqio.Feature],
    *,
    text_key: str = "text",
    feature_key: str = "targets",
) -> tf.data.Dataset:
    """`{text_key: str}` -> `{feature_key: ragged int32[num_sentences, None]}` (no EOS).

    Each sentence is encoded on its own, so sentence boundaries survive tokenization;
    SentencePiece encodes them as a batch, other vocabularies (bytes: scalars only) one by
    one with `tf.map_fn`.
    """
    vocabulary = output_features[feature_key].vocabulary
    spec = tf.RaggedTensorSpec(shape=[None], dtype=tf.int32)

    def _encode(sentence):
        return tf.cast(vocabulary.encode_tf(sentence), tf.int32)

    def _tokenize(ex):
        sentences = split_sentences_tf(text=ex[text_key])
        if isinstance(vocabulary, seqio.SentencePieceVocabulary):  # encodes a batch at once
            return {feature_key: tf.cast(vocabulary.encode_tf(sentences), tf.int32)}
        return {feature_key: tf.map_fn(_encode, sentences, fn_output_signature=spec)}

    return dataset.map(_tokenize, num_parallel_calls=tf.data.AUTOTUNE)


def _greedy_chunk_ids(lengths: tf.Tensor, max_tokens: int) -> tf.Tensor:
    """Chunk index of each piece when pieces fill chunks greedily, in order, up to max_tokens."""

    def _step(state, length):
        chunk, used = state
        new_chunk = tf.logical_and(used > 0, used + length > max_tokens)
        chunk = tf.where(new_chunk, chunk + 1, chunk)
        used = tf.where(new_chunk, length, used + length)
        return chunk, used

    chunks, _ = tf.scan(_step, lengths, initializer=(tf.constant(0), tf.constant(0)))
    return chunks


def pack_sentences(
    dataset: tf.data.Dataset, *, max_tokens_per_chunk: int, feature_key: str = "targets"
) -> tf.data.Dataset:
    """Per document: consecutive whole sentences -> chunks of at most `max_tokens_per_chunk`.

    Input: `{feature_key: ragged [num_sentences, None]}`. Output, one element per chunk:
    `{feature_key: int32[n], "sentence_ids": int32[n]}`, sentence ids counting from 0 in
    each chunk. Chunks never cross documents (fairseq's "complete_doc"). A sentence longer
    than a chunk is cut into chunk-sized pieces, each then treated as a sentence.
    """
    if max_tokens_per_chunk < 1:
        raise UserError(
            f"pack_sentences: max_tokens_per_chunk must be >= 1, got {max_tokens_per_chunk}"
        )
    size = max_tokens_per_chunk

    def _chunks(ex):
        sentences = ex[feature_key]
        tokens = sentences.flat_values
        sentence_of_token = sentences.value_rowids()
        position = tf.range(tf.size(tokens), dtype=tf.int64) - tf.gather(
            sentences.row_starts(), sentence_of_token
        )
        # A piece starts at every sentence start and every `size` tokens inside a sentence.
        piece_of_token = tf.cumsum(tf.cast(position % size == 0, tf.int32)) - 1
        num_pieces = _max_or_minus_one(piece_of_token) + 1  # tokens may be empty
        piece_lengths = tf.math.unsorted_segment_sum(
            tf.ones_like(piece_of_token), piece_of_token, num_pieces
        )
        chunk_of_piece = _greedy_chunk_ids(piece_lengths, size)
        num_chunks = _max_or_minus_one(chunk_of_piece) + 1
        first_piece = tf.math.unsorted_segment_min(tf.range(num_pieces), chunk_of_piece, num_chunks)
        chunk_of_token = tf.gather(chunk_of_piece, piece_of_token)
        local_ids = piece_of_token - tf.gather(first_piece, chunk_of_token)
        return tf.data.Dataset.from_tensor_slices(
            {
                feature_key: tf.RaggedTensor.from_value_rowids(
                    tokens, chunk_of_token, nrows=num_chunks
                ),
                "sentence_ids": tf.RaggedTensor.from_value_rowids(
                    local_ids, chunk_of_token, nrows=num_chunks
                ),
            }
        )

    return dataset.flat_map(_chunks)
