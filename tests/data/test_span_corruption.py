"""Span corruption: exact lengths, lossless reconstruction, statistics, determinism, errors."""

import functools
import math
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf

from t5lab.data import span_corruption as sc
from t5lab.errors import UserError


class _T5LikeVocab(seqio.PassThroughVocabulary):
    """32000 ordinary ids + 100 sentinels on top, like the T5 SentencePiece vocab."""

    def __init__(self):
        super().__init__(size=32000, eos_id=1)
        self._extra_ids = 100


BYTES = seqio.ByteVocabulary(extra_ids=100)


def _features(vocab):
    return {
        "inputs": seqio.Feature(vocab, add_eos=True),
        "targets": seqio.Feature(vocab, add_eos=True),
    }


def _mask_counts(length, density, mean_span, seed):
    """(kept, noise, spans) counted from an actual mask, independently of the formulas."""
    mask = sc.random_spans_noise_mask(
        length=length,
        noise_density=density,
        mean_noise_span_length=mean_span,
        seeds=[(seed, 1), (seed, 2)],
    )
    m = tf.cast(mask, tf.int32)
    starts = tf.reduce_sum(tf.cast(m[1:] > m[:-1], tf.int32))
    return tf.size(m) - tf.reduce_sum(m), tf.reduce_sum(m), starts


def test_t5_reference_numbers():
    assert sc.random_spans_lengths(
        inputs_length=512, noise_density=0.15, mean_noise_span_length=3.0
    ) == (568, 114)


@pytest.mark.parametrize(
    "inputs_length,density,mean_span",
    [(64, 0.15, 3.0), (128, 0.15, 3.0), (100, 0.5, 10.0), (37, 0.3, 2.0), (256, 0.25, 1.0)],
)
def test_lengths_match_brute_force_scan(inputs_length, density, mean_span):
    # Corrupt every raw length with a real mask; keep the largest whose inputs+EOS fit.
    lengths = tf.data.Dataset.range(2, 4 * inputs_length).map(
        lambda n: (n, *_mask_counts(tf.cast(n, tf.int32), density, mean_span, 7))
    )
    best = None
    for n, kept, noise, spans in lengths.as_numpy_iterator():
        if kept + spans + 1 <= inputs_length:
            best = (int(n), int(noise + spans + 1), int(kept + spans + 1))
    assert best is not None and best[2] == inputs_length
    assert (
        sc.random_spans_lengths(
            inputs_length=inputs_length, noise_density=density, mean_noise_span_length=mean_span
        )
        == best[:2]
    )


def _reconstruct(inputs, targets, vocab_size, extra_ids):
    """Fill each sentinel in `inputs` with the tokens that follow it in `targets`."""
    first_sentinel = vocab_size - extra_ids
    spans, current = {}, None
    for t in targets:
        if t >= first_sentinel:
            current = int(t)
            spans[current] = []
        else:
            spans[current].append(int(t))
    out = []
    for t in inputs:
        out.extend(spans.pop(int(t)) if t >= first_sentinel else [int(t)])
    assert not spans, "every target span must be used exactly once"
    return out


@pytest.mark.parametrize("vocab", [BYTES, _T5LikeVocab()], ids=["bytes", "t5like"])
def test_reconstruction_is_lossless(vocab):
    rng = np.random.default_rng(0)
    hi = vocab.vocab_size - vocab.extra_ids  # ordinary ids stay below the sentinels
    docs = [rng.integers(3, hi, size=n).astype(np.int32) for n in rng.integers(0, 300, 400)]
    ds = tf.data.Dataset.from_generator(
        lambda: ({"targets": d} for d in docs),
        output_signature={"targets": tf.TensorSpec([None], tf.int32)},
    )
    with seqio.map_seed_manager(3):
        out = sc.span_corruption(ds, {"inputs": 64, "targets": 16}, _features(vocab))
        got = list(out.as_numpy_iterator())
    assert len(got) == len(docs)
    for doc, ex in zip(docs, got, strict=True):
        rebuilt = _reconstruct(ex["inputs"], ex["targets"], vocab.vocab_size, vocab.extra_ids)
        assert rebuilt == doc.tolist()
        sentinels = ex["inputs"][ex["inputs"] >= hi]
        assert sentinels.tolist() == list(range(vocab.vocab_size - 1, hi - 1, -1))[: len(sentinels)]


def _composition_pmf(n, k):
    """P(a given part = j) for a uniformly random composition of n into k positive parts."""
    total = math.comb(n - 1, k - 1)
    return np.array([math.comb(n - j - 1, k - 2) / total for j in range(1, n - k + 2)])


@pytest.mark.parametrize("density,mean_span", [(0.15, 3.0), (0.5, 10.0)])
def test_noise_statistics_over_10k_examples(density, mean_span):
    inputs_length, num_examples, seed = 128, 10_000, 11
    tokens_length, targets_length = sc.random_spans_lengths(
        inputs_length=inputs_length, noise_density=density, mean_noise_span_length=mean_span
    )
    # Ragged-length docs through the splitter, so tails take part in the pooled numbers.
    rng = np.random.default_rng(seed)
    doc_lengths = rng.integers(1, 6 * tokens_length, size=num_examples // 2)
    docs = tf.RaggedTensor.from_row_lengths(
        tf.random.stateless_uniform([int(doc_lengths.sum())], (seed, 0), 3, 250, tf.int32),
        doc_lengths,
    )
    ds = tf.data.Dataset.from_tensor_slices({"targets": docs})
    seq_len = {"inputs": inputs_length, "targets": targets_length}
    with seqio.map_seed_manager(seed):
        ds = sc.split_tokens_to_inputs_length(
            ds, seq_len, noise_density=density, mean_noise_span_length=mean_span
        )
        ds = sc.span_corruption(
            ds.take(num_examples),
            seq_len,
            _features(BYTES),
            noise_density=density,
            mean_noise_span_length=mean_span,
        )
    first_sentinel = BYTES.vocab_size - BYTES.extra_ids
    noise = tokens = spans = full = 0
    noise_span_lengths = []
    for batch in ds.ragged_batch(2000).as_numpy_iterator():
        for tgt, inp in zip(batch["targets"], batch["inputs"], strict=True):
            tgt, inp = np.asarray(tgt), np.asarray(inp)
            is_sentinel = tgt >= first_sentinel
            n_spans, n_noise = int(is_sentinel.sum()), int((~is_sentinel).sum())
            noise, spans = noise + n_noise, spans + n_spans
            tokens += (len(inp) - n_spans) + n_noise  # kept + noise
            if len(inp) - n_spans + n_noise == tokens_length:  # full chunk (not a tail)
                full += 1
                assert (len(inp) + 1, len(tgt) + 1) == (inputs_length, targets_length)
                noise_span_lengths.extend(np.diff(np.flatnonzero(np.r_[is_sentinel, True])) - 1)
    measured_density, measured_span = noise / tokens, noise / spans
    print(f"density={measured_density:.4f} mean_span={measured_span:.3f} full={full}")
    assert full >= 0.6 * num_examples
    assert abs(measured_density - density) <= 0.01
    assert abs(measured_span / mean_span - 1) <= 0.05
    # Span lengths of full chunks follow the uniform-composition law (total variation <= 0.01).
    num_noise, num_spans = sc._span_counts(tokens_length, density, mean_span)
    pmf = _composition_pmf(num_noise, num_spans)
    counts = np.bincount(noise_span_lengths, minlength=len(pmf) + 1)[1:]
    assert len(counts) == len(pmf)
    assert 0.5 * np.abs(counts / counts.sum() - pmf).sum() <= 0.01


def _docs():
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    rng = np.random.default_rng(5)
    return [" ".join(rng.choice(words, size=rng.integers(5, 400))) for _ in range(60)]


def _make_task(vocab=BYTES, batch_size=8):
    def dataset_fn(split, shuffle_files, seed=None):
        del split, shuffle_files, seed
        return tf.data.Dataset.from_tensor_slices({"text": _docs()})

    name = f"test_span_corruption_{uuid.uuid4().hex}"
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
        preprocessors=[
            functools.partial(seqio.preprocessors.rekey, key_map={"targets": "text"}),
            seqio.preprocessors.tokenize,
            functools.partial(sc.concatenate_documents, batch_size=batch_size),
            sc.split_tokens_to_inputs_length,
            sc.span_corruption,
            seqio.preprocessors.append_eos_after_trim,
        ],
        output_features=_features(vocab),
    )
    return name


@pytest.fixture
def task_name():
    name = _make_task()
    yield name
    seqio.TaskRegistry.remove(name)


def _examples(name, seed, inputs_length=128):
    _, targets_length = sc.random_spans_lengths(
        inputs_length=inputs_length, noise_density=0.15, mean_noise_span_length=3.0
    )
    ds = seqio.get_mixture_or_task(name).get_dataset(
        sequence_length={"inputs": inputs_length, "targets": targets_length},
        split="train",
        shuffle=False,
        seed=seed,
        use_cached=False,
    )
    return list(ds.as_numpy_iterator()), targets_length


def test_task_pipeline_exact_lengths_and_sentinels(task_name):
    examples, targets_length = _examples(task_name, seed=0)
    first_sentinel = BYTES.vocab_size - BYTES.extra_ids
    tokens_length, _ = sc.random_spans_lengths(
        inputs_length=128, noise_density=0.15, mean_noise_span_length=3.0
    )
    full, rebuilt = 0, []
    for ex in examples:
        inp, tgt = ex["inputs"], ex["targets"]
        assert len(inp) <= 128 and len(tgt) <= targets_length
        raw = _reconstruct(inp[:-1], tgt[:-1], BYTES.vocab_size, BYTES.extra_ids)
        rebuilt.extend(raw)
        if len(raw) == tokens_length:  # a full chunk, not a document group's tail
            full += 1
            assert (len(inp), len(tgt)) == (128, targets_length)
        for seq in (inp, tgt):
            assert seq[-1] == 1 and 1 not in seq[:-1] and 0 not in seq
            sent = seq[seq >= first_sentinel]
            assert np.all(np.diff(sent) == -1) and (len(sent) == 0 or sent[0] == 358)
        assert np.array_equal(inp[inp >= first_sentinel], tgt[tgt >= first_sentinel])
    # No shuffle: the chunks, filled back in, spell out all documents in order.
    assert rebuilt == [b + 3 for b in "".join(_docs()).encode()]
    tails = len(examples) - full
    assert full >= 20 and tails <= math.ceil(60 / 8)  # <= one short tail per joined group


def test_task_pipeline_is_deterministic_per_seed(task_name):
    a, _ = _examples(task_name, seed=0)
    b, _ = _examples(task_name, seed=0)
    c, _ = _examples(task_name, seed=1)
    assert all(np.array_equal(x["inputs"], y["inputs"]) for x, y in zip(a, b, strict=True))
    assert sum(not np.array_equal(x["inputs"], y["inputs"]) for x, y in zip(a, c, strict=True)) >= (
        0.9 * len(a)
    )


def test_short_tails_do_not_crash():
    ds = tf.data.Dataset.from_tensor_slices({"targets": tf.ragged.constant([[5], [5, 6], [], [7]])})
    with seqio.map_seed_manager(0):
        out = list(sc.span_corruption(ds, {"inputs": 16}, _features(BYTES)).as_numpy_iterator())
    assert [e["inputs"].tolist() for e in out] == [[5], [5, 358], [], [7]]
    assert [e["targets"].tolist() for e in out] == [[], [358, 6], [], []]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"noise_density": 0.0}, "noise_density"),
        ({"noise_density": 1.0}, "noise_density"),
        ({"mean_noise_span_length": 0.5}, "mean_noise_span_length"),
        ({"inputs_length": 2}, "at least 3"),
    ],
)
def test_bad_knobs_raise_user_error(kwargs, match):
    args = {"inputs_length": 512, "noise_density": 0.15, "mean_noise_span_length": 3.0}
    with pytest.raises(UserError, match=match) as err:
        sc.random_spans_lengths(**{**args, **kwargs})
    assert "\n" not in str(err.value)


def test_too_many_spans_for_sentinels_raises_user_error():
    ds = tf.data.Dataset.from_tensor_slices({"targets": tf.ragged.constant([[5, 6]])})
    few = seqio.ByteVocabulary(extra_ids=5)
    with pytest.raises(UserError, match="extra_ids=5"):
        sc.span_corruption(ds, {"inputs": 128}, _features(few))
    with pytest.raises(UserError, match="extra_ids=0"):
        sc.span_corruption(ds, {"inputs": 128}, _features(seqio.PassThroughVocabulary(100)))
    with pytest.raises(UserError, match="sequence_length"):
        sc.split_tokens_to_inputs_length(ds, None)


@pytest.mark.parametrize(
    "keep_tail,expected",
    [(True, [[1, 2, 3], [4, 5, 6], [7], [8, 9]]), (False, [[1, 2, 3], [4, 5, 6]])],
)
def test_split_tokens_chunks_and_tails(keep_tail, expected):
    ds = tf.data.Dataset.from_tensor_slices(
        {"targets": tf.ragged.constant([[1, 2, 3, 4, 5, 6, 7], [], [8, 9]]), "id": [0, 1, 2]}
    )
    out = sc.split_tokens(ds, max_tokens_per_chunk=3, keep_tail=keep_tail)
    assert [e["targets"].tolist() for e in out.as_numpy_iterator()] == expected


def test_concatenate_documents_joins_in_order():
    ds = tf.data.Dataset.from_tensor_slices({"targets": tf.ragged.constant([[1, 2], [], [3], [4]])})
    out = sc.concatenate_documents(ds, batch_size=3)
    assert [e["targets"].tolist() for e in out.as_numpy_iterator()] == [[1, 2, 3], [4]]
