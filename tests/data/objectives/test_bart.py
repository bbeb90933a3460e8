"""BART noising: rates, Poisson spans, structural invariants, lengths, determinism, errors.

Statistics run the real seqio pipelines over synthetic token streams whose ids are all
distinct within a chunk, so each noised input aligns to its original in exactly one way.
"""

import collections
import functools
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf
from scipy import stats

from t5lab.data import corpus, vocab
from t5lab.data.objectives import bart, registry
from t5lab.data.objectives.sentences import (
    pack_sentences,
    split_sentences,
    split_sentences_tf,
    tokenize_sentences,
)
from t5lab.errors import UserError


class _BigVocab(seqio.PassThroughVocabulary):
    """40000 ordinary ids (the "text" is already ids) + 100 sentinels on top."""

    def __init__(self):
        super().__init__(size=40000, eos_id=1)
        self._extra_ids = 100


BIG = _BigVocab()
MASK = BIG.vocab_size - 1  # <extra_id_0>
SPM = vocab.get_vocabulary()
SPM_MASK = SPM.vocab_size - 1
NAMES = [
    "bart_token_masking",
    "bart_token_deletion",
    "bart_text_infilling",
    "bart_sentence_permutation",
    "bart_document_rotation",
    "bart_infilling_permutation",
]
SENTENCE_LEVEL = {"bart_sentence_permutation", "bart_infilling_permutation"}


def _features(v):
    return {"inputs": seqio.Feature(v, add_eos=True), "targets": seqio.Feature(v, add_eos=True)}


def _id_docs(num_chunks: int, chunk: int) -> list[np.ndarray]:
    """Documents of 40 chunks of token ids; ids cycle through 3..38999, so any chunk
    holds distinct ids, and the stream splits into exactly `num_chunks` full chunks."""
    num_tokens, doc_length = num_chunks * chunk, 40 * chunk
    ids = (3 + np.arange(num_tokens) % 38997).astype(np.int32)
    return [ids[i : i + doc_length] for i in range(0, num_tokens, doc_length)]


@functools.cache
def _sotu_texts() -> tuple[str, ...]:
    return tuple(d["text"] for d in corpus.sotu_documents(split="validation"))


def _source(docs) -> seqio.FunctionDataSource:
    docs = list(docs)
    if isinstance(docs[0], str):
        make = lambda: tf.data.Dataset.from_tensor_slices({"text": docs})  # noqa: E731
    else:
        make = lambda: tf.data.Dataset.from_generator(  # noqa: E731
            lambda: ({"text": d} for d in docs),
            output_signature={"text": tf.TensorSpec([None], tf.int32)},
        )
    return seqio.FunctionDataSource(lambda split, shuffle_files, seed=None: make(), ["train"])


def _run(name, docs, lengths, *, knobs=None, seed=0, v=BIG):
    """(inputs, targets) of every example objective `name` makes of `docs`."""
    task_name = f"test_bart_{uuid.uuid4().hex}"
    seqio.TaskRegistry.add(
        task_name,
        source=_source(docs),
        preprocessors=registry._OBJECTIVES[name].build(**(knobs or {})),
        output_features=_features(v),
    )
    try:
        ds = seqio.get_mixture_or_task(task_name).get_dataset(
            sequence_length=lengths, split="train", shuffle=False, seed=seed, use_cached=False
        )
        out = []
        for batch in ds.ragged_batch(1000).as_numpy_iterator():
            out += list(zip(batch["inputs"], batch["targets"], strict=True))
        return [(np.asarray(i), np.asarray(t)) for i, t in out]
    finally:
        seqio.TaskRegistry.remove(task_name)


def _strip_eos(examples):
    for inp, tgt in examples:
        assert inp[-1] == 1 and tgt[-1] == 1
    return [(inp[:-1], tgt[:-1]) for inp, tgt in examples]


# --- token masking / deletion ------------------------------------------------------------


def test_token_masking_rate_and_positions():
    # 10k chunks of 127 tokens.
    examples = _strip_eos(
        _run("bart_token_masking", _id_docs(10_000, 127), {"inputs": 128, "targets": 128})
    )
    assert len(examples) == 10_000
    masked = total = 0
    for inp, tgt in examples:
        assert len(inp) == len(tgt) == 127
        is_mask = inp == MASK
        assert np.array_equal(inp[~is_mask], tgt[~is_mask])  # everything else is copied
        masked, total = masked + is_mask.sum(), total + len(tgt)
    print(f"masking rate {masked / total:.4f}")
    assert abs(masked / total - 0.15) <= 0.01


def test_token_deletion_rate_and_reconstruction():
    knobs = {"delete_rate": 0.3}
    examples = _strip_eos(
        _run(
            "bart_token_deletion",
            _id_docs(10_000, 127),
            {"inputs": 128, "targets": 128},
            knobs=knobs,
        )
    )
    assert len(examples) == 10_000
    deleted = total = 0
    for inp, tgt in examples:
        position = {t: i for i, t in enumerate(tgt.tolist())}
        kept = np.array([position[t] for t in inp.tolist()], dtype=int)
        assert np.all(np.diff(kept) > 0)  # order kept
        gone = np.ones(len(tgt), bool)
        gone[kept] = False
        assert np.array_equal(tgt[~gone], inp)  # targets minus the deleted positions
        deleted, total = deleted + gone.sum(), total + len(tgt)
    print(f"deletion rate {deleted / total:.4f}")
    assert abs(deleted / total - 0.3) <= 0.01


# --- text infilling --------------------------------------------------------------------------


def _align_spans(inp, tgt) -> list[int]:
    """Length of the span behind each mask, by aligning inputs to targets (distinct ids).

    Kept tokens are copied in order, so the token after a mask says where its span ends.
    """
    position = {t: i for i, t in enumerate(tgt.tolist())}
    lengths, j = [], 0
    for k, t in enumerate(inp.tolist()):
        if t == MASK:
            after = inp[k + 1] if k + 1 < len(inp) else None
            assert after != MASK, "two masks in a row: a span was not replaced by one mask"
            end = len(tgt) if after is None else position[int(after)]
            assert end >= j
            lengths.append(end - j)
            j = end
        else:
            assert tgt[j] == t, "kept tokens must be copied in order"
            j += 1
    assert j == len(tgt)
    return lengths


def test_text_infilling_coverage_and_poisson_span_lengths():
    examples = _strip_eos(
        _run("bart_text_infilling", _id_docs(10_000, 127), {"inputs": 128, "targets": 128})
    )
    assert len(examples) == 10_000
    spans, covered, total = [], 0, 0
    for inp, tgt in examples:
        lengths = _align_spans(inp, tgt)
        assert len(lengths) == int((inp == MASK).sum())  # exactly one mask per span
        spans += lengths
        covered, total = covered + sum(lengths), total + len(tgt)
    spans = np.array(spans)
    counts = np.bincount(np.minimum(spans, 10), minlength=11)
    pmf = stats.poisson.pmf(np.arange(10), 3.0)
    expected = len(spans) * np.append(pmf, 1.0 - pmf.sum())
    chi2 = stats.chisquare(counts, expected)
    print(
        f"covered {covered / total:.4f} spans {len(spans)} mean {spans.mean():.3f} "
        f"zero-length {counts[0]} chi2 p={chi2.pvalue:.3f}"
    )
    # Spans are drawn until round(0.3 * 127) = 38 tokens are covered; the last one is kept
    # whole (about +λ/2 tokens), so coverage sits ~1 pp above the knob: tolerance 2 pp.
    assert abs(covered / total - 0.3) <= 0.02
    assert counts[0] >= 0.04 * len(spans)  # empty spans happen (Poisson(3) gives 5%)
    assert abs(spans.mean() - 3.0) <= 0.05
    assert chi2.pvalue > 0.001


def test_text_infilling_caps_empty_spans_to_fit_inputs():
    # Mostly-empty spans (λ=0.5) add a mask each: inputs must still fit, with EOS.
    knobs = {"mask_rate": 0.05, "poisson_lambda": 0.5}
    lengths = {"inputs": 32, "targets": 32}
    examples = _run("bart_text_infilling", _id_docs(2000, 31), lengths, knobs=knobs)
    longest = 0
    for inp, tgt in _strip_eos(examples):
        _align_spans(inp, tgt)
        longest = max(longest, len(inp))
    assert longest == 31  # the cap was reached, never passed


# --- rotation -------------------------------------------------------------------------------


def test_document_rotation_is_a_uniform_rotation():
    examples = _strip_eos(
        _run("bart_document_rotation", _id_docs(10_000, 127), {"inputs": 128, "targets": 128})
    )
    offsets = []
    for inp, tgt in examples:
        offset = int(np.flatnonzero(tgt == inp[0])[0])
        assert np.array_equal(np.roll(tgt, -offset), inp)
        offsets.append(offset)
    counts = np.bincount(offsets, minlength=127)
    assert counts[0] == 0  # never the identity (fairseq)
    p = stats.chisquare(counts[1:]).pvalue  # uniform over the other 126 starts
    print(f"rotation offsets chi2 p={p:.3f}")
    assert p > 0.001


# --- sentence permutation -------------------------------------------------------------------


def _sentence_chunks(texts, n: int):
    """Expected chunks: lists of sentence token tuples (cut to n), packed greedily.

    Encoded with TF like the pipeline: where two segmentations score exactly the same
    ("." + "...." or "...." + "."), tf_text's SentencePiece may break the tie unlike the
    Python package's.
    """
    for text in texts:
        pieces = []
        for ids in SPM.encode_tf(tf.constant(split_sentences(text=text))).to_list():
            ids = tuple(int(i) for i in ids)
            pieces += [ids[i : i + n] for i in range(0, len(ids), n)]
        chunk, used = [], 0
        for piece in pieces:
            if used and used + len(piece) > n:
                yield chunk
                chunk, used = [], 0
            chunk.append(piece)
            used += len(piece)
        if chunk:
            yield chunk


def _is_concatenation_of(seq: tuple, pieces: list[tuple]) -> bool:
    """Whether `seq` is the pieces (as a multiset) joined in some order."""
    remaining = collections.Counter(pieces)

    def fill(pos: int) -> bool:
        if pos == len(seq):
            return not +remaining
        for piece in list(remaining):
            if remaining[piece] and seq[pos : pos + len(piece)] == piece:
                remaining[piece] -= 1
                if fill(pos + len(piece)):
                    return True
                remaining[piece] += 1
        return False

    return fill(0)


def test_sentence_permutation_preserves_the_sentences():
    texts = _sotu_texts()
    examples = _strip_eos(
        _run("bart_sentence_permutation", texts, {"inputs": 128, "targets": 128}, v=SPM)
    )
    expected = list(_sentence_chunks(texts, 127))
    assert len(examples) == len(expected) >= 500
    shuffled = many = 0
    for (inp, tgt), chunk in zip(examples, expected, strict=True):
        assert tuple(tgt.tolist()) == sum(chunk, ())  # targets: whole sentences, in order
        assert _is_concatenation_of(tuple(inp.tolist()), chunk)
        if len(chunk) >= 3:
            many += 1
            shuffled += not np.array_equal(inp, tgt)
    print(f"{shuffled}/{many} chunks of >= 3 sentences reordered")
    assert shuffled >= 0.8 * many  # a uniform shuffle of >= 3 keeps the order <= 1/6


def test_permute_ratio_moves_only_that_share():
    tokens = tf.range(10, 30)
    ids = tf.repeat(tf.range(10), 2)  # 10 sentences of 2 tokens
    same = bart.permute_sentences(tokens=tokens, sentence_ids=ids, seed=[1, 2], permute_ratio=0.0)
    assert np.array_equal(same, tokens)
    for s in range(20):
        out = bart.permute_sentences(
            tokens=tokens, sentence_ids=ids, seed=[s, 0], permute_ratio=0.3
        )
        moved = np.sum(out.numpy().reshape(10, 2)[:, 0] != np.arange(10, 30, 2))
        assert moved <= 3  # ceil(0.3 * 10) sentences take part


def test_infilling_permutation_combines_both():
    texts = _sotu_texts()[:4]
    examples = _strip_eos(
        _run("bart_infilling_permutation", texts, {"inputs": 128, "targets": 128}, v=SPM)
    )
    expected = list(_sentence_chunks(texts, 127))
    assert len(examples) == len(expected)
    kept = total = 0
    for (inp, tgt), chunk in zip(examples, expected, strict=True):
        assert tuple(tgt.tolist()) == sum(chunk, ())
        is_mask = inp == SPM_MASK
        assert not np.any(is_mask[1:] & is_mask[:-1])  # one mask per span
        assert not collections.Counter(inp[~is_mask].tolist()) - collections.Counter(tgt.tolist())
        kept, total = kept + (~is_mask).sum(), total + len(tgt)
    print(f"infilling+permutation kept {kept / total:.4f}")
    assert abs(kept / total - 0.7) <= 0.03  # ~1 pp overshoot, see the infilling test


# --- all objectives: lengths, EOS, pad, lossless chunking, determinism ----------------------


def _short_texts() -> tuple[str]:
    return (_sotu_texts()[0][:20_000],)


def _small_run(name, lengths, seed=0):
    if name in SENTENCE_LEVEL:
        return _run(name, _short_texts(), lengths, seed=seed, v=SPM)
    return _run(name, _id_docs(300, 50), lengths, seed=seed)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "lengths",
    [{"inputs": 64, "targets": 64}, {"inputs": 40, "targets": 96}, {"inputs": 96, "targets": 40}],
)
def test_lengths_eos_no_pad_and_nothing_lost(name, lengths):
    examples = _small_run(name, lengths)
    chunk = min(lengths.values()) - 1
    for inp, tgt in examples:
        assert len(inp) <= lengths["inputs"] and len(tgt) <= chunk + 1
        for seq in (inp, tgt):
            assert seq[-1] == 1 and 1 not in seq[:-1] and 0 not in seq
    targets = np.concatenate([tgt[:-1] for _, tgt in examples])
    if name in SENTENCE_LEVEL:
        source = [t for c in _sentence_chunks(_short_texts(), chunk) for s in c for t in s]
    else:
        source = np.concatenate(_id_docs(300, 50))
    assert np.array_equal(targets, source)  # targets spell out the whole source, in order


@pytest.mark.parametrize("name", ["bart_text_infilling", "bart_infilling_permutation"])
def test_same_seed_same_output_other_seed_differs(name):
    lengths = {"inputs": 64, "targets": 64}
    a, b, c = (_small_run(name, lengths, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
    differ = sum(not np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
    assert differ >= 0.9 * len(a)


def test_noise_masks_for_show():
    tokens = tf.range(3, 10_003)
    for name, rate in [("bart_token_masking", 0.15), ("bart_text_infilling", 0.3)]:
        mask = registry._OBJECTIVES[name].noise_mask(tokens, [[1, 2], [3, 4]])
        assert (
            mask.shape == [10_000]
            and abs(float(tf.reduce_mean(tf.cast(mask, tf.float32))) - rate) < 0.02
        )


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,knobs,match",
    [
        ("bart_token_masking", {"mask_rate": 1.0}, "mask_rate"),
        ("bart_token_masking", {"mask_rate": -0.1}, "mask_rate"),
        ("bart_token_deletion", {"delete_rate": 1.0}, "delete_rate"),
        ("bart_text_infilling", {"mask_rate": 1.5}, "mask_rate"),
        ("bart_text_infilling", {"poisson_lambda": -1.0}, "poisson_lambda"),
        ("bart_text_infilling", {"poisson_lambda": 0.0}, "poisson_lambda"),
        ("bart_sentence_permutation", {"permute_ratio": 1.5}, "permute_ratio"),
        ("bart_infilling_permutation", {"poisson_lambda": -2.0}, "poisson_lambda"),
    ],
)
def test_bad_knobs_raise_user_error(name, knobs, match):
    with pytest.raises(UserError, match=match) as err:
        registry._OBJECTIVES[name].build(**knobs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["bart_token_masking", "bart_sentence_permutation"])
def test_too_short_sequence_length_raises_user_error(name):
    with pytest.raises(UserError, match="TASK_FEATURE_LENGTHS"):
        _small_run(name, {"inputs": 2, "targets": 64})


def test_missing_lengths_or_mask_token_raise_user_error():
    ds = tf.data.Dataset.from_tensor_slices({"targets": tf.ragged.constant([[5, 6, 7]])})
    with pytest.raises(UserError, match="sequence_length"):
        bart.split_token_chunks(ds, {"inputs": 64})
    no_extra = _features(seqio.PassThroughVocabulary(100))
    with pytest.raises(UserError, match="extra_ids"):
        bart.denoise(ds, {"inputs": 64, "targets": 64}, no_extra, noises=[])


# --- sentences ------------------------------------------------------------------------------


def test_python_and_tf_sentence_splitters_agree():
    tricky = "Yes.  No!\n\nWhy?Because. \t Mr. Smith...went  home.\x1e End"
    assert split_sentences(text=tricky) == [
        "Yes.",
        "No!",
        "Why?Because.",
        "Mr.",
        "Smith...went  home.",
        "End",
    ]
    for text in (tricky, "", "   ", *_sotu_texts()[:3]):
        tf_pieces = [s.decode() for s in split_sentences_tf(text=text).numpy()]
        assert tf_pieces == split_sentences(text=text)


def test_pack_sentences_cuts_long_sentences_and_packs_greedily():
    docs = tf.ragged.constant([[[1, 2, 3, 4, 5], [6], [7, 8]], [], [[9]]], ragged_rank=2)
    out = pack_sentences(
        tf.data.Dataset.from_tensor_slices({"targets": docs}), max_tokens_per_chunk=3
    )
    got = [(e["targets"].tolist(), e["sentence_ids"].tolist()) for e in out.as_numpy_iterator()]
    assert got == [([1, 2, 3], [0, 0, 0]), ([4, 5, 6], [0, 0, 1]), ([7, 8], [0, 0]), ([9], [0])]


def test_tokenize_sentences_with_a_scalar_only_vocabulary():
    ds = tf.data.Dataset.from_tensor_slices({"text": ["Ab. C!", ""]})
    out = tokenize_sentences(ds, _features(seqio.ByteVocabulary()))
    got = [e["targets"].to_list() for e in out]
    assert got == [[[ord(c) + 3 for c in "Ab."], [ord(c) + 3 for c in "C!"]], []]
