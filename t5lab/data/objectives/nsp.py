"""Next-sentence prediction (Devlin et al. 2019, BERT) as a text-to-text task.

inputs  = tokens of "sentence1: A sentence2: B", targets = tokens of "next" or "random" + EOS.
A is a run of 1..max_sentences consecutive sentences of a document and B the run right
after it; with probability `negative_rate` B is replaced by a run from a *different*
document (the NSP ablated by RoBERTa and ALBERT). Sentences are cut on text, before
tokenizing: a sentence ends at `.`, `!` or `?` followed by whitespace and a capital
letter; deliberately simple ("Mr. Smith" splits), which NSP tolerates.
"""

from collections.abc import Mapping

import seqio
import tensorflow as tf

from t5lab.data.objectives.registry import Objective, register
from t5lab.errors import UserError

LABELS = ("next", "random")  # target text for a true continuation / a random one
_SEP = "\x1e"  # ASCII record separator marks the cuts
_BOUNDARY = r"([.!?])\s+([A-Z])"
# Negatives: each pair looks at this many candidates from a shuffled copy of the stream
# and takes the first from another document; the shuffle buffer mixes ~this many pairs.
_CANDIDATES = 4
_SHUFFLE_BUFFER = 4096


def _check_knobs(negative_rate: float, max_sentences: int) -> None:
    if not 0.0 <= negative_rate <= 1.0:
        raise UserError(f"negative_rate must be in [0, 1], got {negative_rate}")
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, int) or max_sentences < 1:
        raise UserError(f"max_sentences must be an integer >= 1, got {max_sentences!r}")


def split_sentences_tf(text: tf.Tensor) -> tf.Tensor:
    """Scalar string -> string[num_sentences] by the module's rule (empty pieces dropped)."""
    text = tf.strings.regex_replace(text, _SEP, " ")
    marked = tf.strings.regex_replace(text, _BOUNDARY, "\\1" + _SEP + "\\2")
    pieces = tf.strings.strip(tf.strings.split(marked, _SEP))
    return tf.boolean_mask(pieces, tf.strings.length(pieces) > 0)


@seqio.map_over_dataset(num_seeds=1)
def _document_pairs(features, *, seed, max_sentences):
    """One document -> its (A, B) pairs: random-length runs, paired 0-1, 2-3, ...

    An odd last run has no partner and only serves as other pairs' B via the copy.
    The document id is a hash of its text, so duplicates count as one document.
    """
    sentences = split_sentences_tf(features["text"])
    n = tf.size(sentences)
    run_lengths = tf.random.stateless_uniform(
        [n], seed=seed, minval=1, maxval=max_sentences + 1, dtype=tf.int32
    )
    run_of = tf.searchsorted(tf.cumsum(run_lengths), tf.range(n), side="right")
    num_runs = tf.reduce_max(tf.concat([run_of + 1, [0]], axis=0))
    runs = tf.RaggedTensor.from_value_rowids(sentences, run_of, nrows=num_runs)
    runs = tf.strings.reduce_join(runs, axis=1, separator=" ")
    num_pairs = num_runs // 2
    doc = tf.strings.to_hash_bucket_fast(features["text"], 2**62)
    return {
        "sentence1": runs[0 : 2 * num_pairs : 2],
        "sentence2": runs[1 : 2 * num_pairs : 2],
        "doc1": tf.fill([num_pairs], doc),
        "doc2": tf.fill([num_pairs], doc),
    }


@seqio.map_over_dataset(num_seeds=1)
def _draw_seed(features, *, seed):
    del features
    return seed[0]


@seqio.map_over_dataset(num_seeds=1)
def _maybe_negative(features, *, seed, negative_rate):
    pair, others = features
    want = tf.random.stateless_uniform([], seed=seed) < negative_rate
    other_doc = tf.not_equal(others["doc2"], pair["doc1"])
    found = tf.reduce_any(other_doc)
    pick = tf.argmax(tf.cast(other_doc, tf.int32), output_type=tf.int32)
    negative = tf.logical_and(want, found)
    return {
        "sentence1": pair["sentence1"],
        "sentence2": tf.where(negative, others["sentence2"][pick], pair["sentence2"]),
        "doc1": pair["doc1"],
        "doc2": tf.where(negative, others["doc2"][pick], pair["doc2"]),
        "is_next": tf.logical_not(negative),
        "skip": tf.logical_and(want, tf.logical_not(found)),
    }


def nsp_pairs(
    dataset: tf.data.Dataset, *, negative_rate: float = 0.5, max_sentences: int = 3
) -> tf.data.Dataset:
    """Documents {"text"} -> {"sentence1", "sentence2", "is_next", "doc1", "doc2"} pairs.

    Negatives come from zipping the pair stream with a shuffled, repeated copy of itself:
    of `_CANDIDATES` copy pairs, the first whose document differs gives B. If none does (a
    corpus of one document, or the rare draw that fails), the example is skipped rather
    than mislabelled, which lowers the negative share by that (normally negligible) rate.
    Seeds come from seqio, so a Task seed fixes the segmentation, labels and shuffle.
    """
    _check_knobs(negative_rate, max_sentences)
    pairs = _document_pairs(dataset, max_sentences=max_sentences).unbatch()
    shuffle_seed = _draw_seed(tf.data.Dataset.from_tensors(0)).get_single_element()
    others = pairs.repeat().shuffle(_SHUFFLE_BUFFER, seed=shuffle_seed).batch(_CANDIDATES)
    mixed = _maybe_negative(tf.data.Dataset.zip((pairs, others)), negative_rate=negative_rate)
    return mixed.filter(lambda ex: tf.logical_not(ex["skip"]))


def _encode(vocabulary: seqio.Vocabulary, text: str) -> list[int]:
    return [int(i) for i in vocabulary.encode(text)]


def nsp_to_text_to_text(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
) -> tf.data.Dataset:
    """Pairs -> token `inputs`/`targets` (no EOS yet), fitting sequence_length.

    When A and B do not fit, the longer is cut first (as BERT does), down to half the room
    each; A loses its start and B its end, so the A|B boundary the task is about stays.
    """
    vocabulary = output_features["targets"].vocabulary
    head1, head2 = _encode(vocabulary, "sentence1:"), _encode(vocabulary, "sentence2:")
    labels = [_encode(vocabulary, label) for label in LABELS]
    if not sequence_length or "inputs" not in sequence_length:
        raise UserError("nsp needs sequence_length['inputs']; pass it to get_dataset")
    inputs_length = int(sequence_length["inputs"])
    room = inputs_length - 1 - len(head1) - len(head2)
    if room < 2:
        raise UserError(
            f"inputs length {inputs_length} is too small for nsp: 'sentence1: ... sentence2:"
            f" ...' and EOS need at least {inputs_length - room + 2}; raise "
            "TASK_FEATURE_LENGTHS['inputs']"
        )
    needed = 1 + max(len(label) for label in labels)
    targets_length = sequence_length.get("targets")
    if targets_length is not None and int(targets_length) < needed:
        raise UserError(
            f"targets length {targets_length} is too short for nsp: the label needs {needed}"
            f" tokens with EOS; set TASK_FEATURE_LENGTHS['targets'] >= {needed}"
        )
    next_ids, random_ids = (tf.constant(ids, tf.int32) for ids in labels)

    def convert(ex):
        a = tf.cast(vocabulary.encode_tf(ex["sentence1"]), tf.int32)
        b = tf.cast(vocabulary.encode_tf(ex["sentence2"]), tf.int32)
        keep_a = tf.minimum(tf.size(a), tf.maximum(room - tf.size(b), room // 2))
        keep_b = tf.minimum(tf.size(b), room - keep_a)
        inputs = tf.concat([head1, a[tf.size(a) - keep_a :], head2, b[:keep_b]], axis=0)
        targets = tf.cond(ex["is_next"], lambda: next_ids, lambda: random_ids)
        return {"inputs": inputs, "targets": targets}

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def nsp_objective(*, negative_rate: float = 0.5, max_sentences: int = 3) -> list:
    """text -> sentence-run pairs (half with a B from another document) -> tokens -> EOS."""
    _check_knobs(negative_rate, max_sentences)

    def pairs(dataset: tf.data.Dataset) -> tf.data.Dataset:
        return nsp_pairs(dataset, negative_rate=negative_rate, max_sentences=max_sentences)

    return [
        seqio.CacheDatasetPlaceholder(),
        pairs,
        nsp_to_text_to_text,
        seqio.preprocessors.append_eos_after_trim,
    ]


register(
    Objective(
        name="nsp",
        paper="Devlin et al. 2019, BERT (next-sentence prediction)",
        summary="'sentence1: A sentence2: B' -> 'next' if B follows A, 'random' if B is from "
        "another document",
        build=nsp_objective,
    )
)
