"""Generic token-stream preprocessors: join documents, cut long sequences into chunks."""

import tensorflow as tf

from t5lab.errors import UserError


def concatenate_documents(
    dataset: tf.data.Dataset, *, feature_key: str = "targets", batch_size: int = 128
) -> tf.data.Dataset:
    """Joins the tokens of every `batch_size` consecutive documents into one sequence.

    Short documents would otherwise waste most of a span-corruption chunk (T5's
    "reduce_concat_tokens"). Order is kept, so the result is deterministic; only
    `feature_key` survives, since other features no longer line up with the tokens.
    """
    if batch_size < 1:
        raise UserError(f"concatenate_documents: batch_size must be >= 1, got {batch_size}")
    tokens = dataset.map(lambda ex: ex[feature_key], num_parallel_calls=tf.data.AUTOTUNE)
    joined = tokens.ragged_batch(batch_size)
    return joined.map(lambda rt: {feature_key: rt.flat_values}, num_parallel_calls=tf.data.AUTOTUNE)


def split_tokens(
    dataset: tf.data.Dataset,
    *,
    max_tokens_per_chunk: int,
    feature_key: str = "targets",
    keep_tail: bool = True,
) -> tf.data.Dataset:
    """Cuts each `feature_key` sequence into consecutive chunks of `max_tokens_per_chunk`.

    The last, shorter chunk is kept unless `keep_tail=False`; empty sequences yield
    nothing. Only `feature_key` survives (other features would not match the chunk).
    """
    if max_tokens_per_chunk < 1:
        raise UserError(
            f"split_tokens: max_tokens_per_chunk must be >= 1, got {max_tokens_per_chunk}"
        )
    size = max_tokens_per_chunk

    def _chunks(ex):
        tokens = ex[feature_key]
        n = tf.size(tokens)
        num = n // size if not keep_tail else (n + size - 1) // size
        padded = tf.pad(tokens, [[0, tf.maximum(num * size - n, 0)]])[: num * size]
        rows = tf.reshape(padded, [num, size])
        lengths = tf.minimum(size, n - tf.range(num) * size)
        ragged = tf.RaggedTensor.from_tensor(rows, lengths=lengths)
        return tf.data.Dataset.from_tensor_slices({feature_key: ragged})

    return dataset.flat_map(_chunks)
