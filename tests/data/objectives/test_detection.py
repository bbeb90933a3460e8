"""Replaced / inserted token detection: rates, random tokens, invertibility, lengths, errors."""

import functools
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf
from scipy import stats

from t5lab.data.corpus import sotu_documents
from t5lab.data.objectives import detection as det
from t5lab.data.objectives.registry import Objective
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError

VOCAB = get_vocabulary()  # 8000 SentencePiece ids + 100 sentinels
LOW, HIGH = det.real_id_range(VOCAB)
MARKER = det.marker_id(VOCAB)
CHUNK = 63  # raw tokens per synthetic chunk
N_CHUNKS = 10_000


def _features(vocab=VOCAB):
    return {
        "inputs": seqio.Feature(vocab, add_eos=True),
        "targets": seqio.Feature(vocab, add_eos=True),
    }


def _originals(seed=0, n_chunks=N_CHUNKS, chunk=CHUNK):
    """Uniform real ids with some unk (2) mixed in: unk must be replaceable too."""
    rng = np.random.RandomState(seed)
    tokens = rng.randint(LOW, HIGH, (n_chunks, chunk)).astype(np.int32)
    tokens[rng.rand(n_chunks, chunk) < 0.01] = 2
    return tokens


def _run(preprocessor, originals, *, seed, sequence_length, vocab=VOCAB, **knobs):
    """Apply one corruption preprocessor to each row; returns (inputs, targets) lists."""
    ds = tf.data.Dataset.from_tensor_slices({"targets": originals})
    with seqio.map_seed_manager(seed):
        ds = preprocessor(ds, sequence_length, _features(vocab), **knobs)
    ds = ds.ragged_batch(1000)
    inputs, targets = [], []
    for batch in ds.as_numpy_iterator():
        inputs += [np.asarray(r) for r in batch["inputs"]]
        targets += [np.asarray(r) for r in batch["targets"]]
    return inputs, targets


@functools.cache
def _replaced(rate=0.15, seed=1, sampler="uniform"):
    originals = _originals()
    length = {"inputs": CHUNK + 1, "targets": 2 * CHUNK}
    inputs, targets = _run(
        det.replace_tokens,
        originals,
        seed=seed,
        sequence_length=length,
        replace_rate=rate,
        sampler=sampler,
    )
    positions = [
        det.decode_replaced_positions(inputs=i, targets=t, marker_id=MARKER)
        for i, t in zip(inputs, targets, strict=True)
    ]
    return originals, inputs, targets, positions


@functools.cache
def _inserted(rate=0.15, seed=1):
    originals = _originals()
    length = {"inputs": 2 * CHUNK, "targets": 4 * CHUNK}
    inputs, targets = _run(
        det.insert_tokens, originals, seed=seed, sequence_length=length, insert_rate=rate
    )
    positions = [
        det.decode_inserted_positions(inputs=i, targets=t, marker_id=MARKER)
        for i, t in zip(inputs, targets, strict=True)
    ]
    return originals, inputs, targets, positions


# --- replaced token detection -------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_replace_rate_matches_knob(rate):
    originals, inputs, _, positions = _replaced(rate=rate)
    counts = np.array([len(p) for p in positions])
    assert (counts == round(CHUNK * rate)).all()  # exact count per chunk
    measured = counts.sum() / originals.size
    assert abs(measured - rate) < 0.01, measured  # ±1 pp (rounding of 63 * rate)
    # The marked positions are exactly where the inputs changed: no silent no-op swaps.
    for orig, inp, pos in zip(originals[:2000], inputs, positions, strict=False):
        assert sorted(np.flatnonzero(orig != inp).tolist()) == pos


def test_replaced_positions_uniform_over_the_chunk():
    _, _, _, positions = _replaced()
    hist = np.bincount(np.concatenate(positions), minlength=CHUNK)
    p = stats.chisquare(hist).pvalue  # ~90k positions over 63 cells
    assert p > 1e-3, p


def test_replacements_are_real_tokens_spread_uniformly():
    originals, inputs, _, positions = _replaced()
    drawn = np.concatenate([inp[pos] for inp, pos in zip(inputs, positions, strict=True)])
    assert drawn.min() >= LOW and drawn.max() < HIGH  # never pad/eos/unk/sentinel
    assert len(drawn) == N_CHUNKS * round(CHUNK * 0.15)
    edges = np.linspace(LOW, HIGH, 21).round().astype(int)
    observed, _ = np.histogram(drawn, bins=edges)
    expected = np.diff(edges) / (HIGH - LOW) * len(drawn)
    p = stats.chisquare(observed, expected).pvalue
    assert p > 1e-3, p  # 20 equal buckets over the real ids


def test_unigram_sampler_follows_piece_probabilities():
    _, inputs, _, positions = _replaced(sampler="unigram")
    drawn = np.concatenate([inp[pos] for inp, pos in zip(inputs, positions, strict=True)])
    assert drawn.min() >= LOW and drawn.max() < HIGH
    probs = det.sampling_probs(vocabulary=VOCAB, sampler="unigram")
    top = np.argsort(-probs)[:30]  # the 30 most likely pieces, and the rest in one cell
    counts = np.bincount(drawn - LOW, minlength=len(probs))
    observed = np.append(counts[top], len(drawn) - counts[top].sum())
    expected = np.append(probs[top], 1 - probs[top].sum()) * len(drawn)
    expected *= observed.sum() / expected.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    the = VOCAB.tokenizer.piece_to_id("▁the") - LOW
    assert counts[the] > 20 * np.median(counts[counts > 0])  # "▁the" is far likelier
    # Byte-fallback pieces (score 0, a placeholder) are never drawn.
    is_byte = np.array([VOCAB.tokenizer.is_byte(i) for i in range(LOW, HIGH)])
    assert is_byte.sum() == 256
    assert (probs[is_byte] == 0).all() and counts[is_byte].sum() == 0


def test_replacement_never_equals_the_original():
    originals, inputs, _, positions = _replaced(rate=0.3)
    for orig, inp, pos in zip(originals, inputs, positions, strict=True):
        assert (orig[pos] != inp[pos]).all()
    # Also with a tiny vocabulary, where equal draws would be frequent.
    tiny = np.random.RandomState(0).randint(3, 5, (500, CHUNK)).astype(np.int32)
    two_tokens = _TwoTokenVocab()
    inputs, targets = _run(
        det.replace_tokens,
        tiny,
        seed=3,
        sequence_length={"inputs": CHUNK + 1, "targets": 2 * CHUNK},
        vocab=two_tokens,
    )
    for orig, inp, tgt in zip(tiny, inputs, targets, strict=True):
        pos = det.decode_replaced_positions(inputs=inp, targets=tgt, marker_id=6)
        assert len(pos) == round(CHUNK * 0.15) and (orig[pos] != inp[pos]).all()


class _TwoTokenVocab(seqio.PassThroughVocabulary):
    """Ids 3 and 4 are the only real tokens; 5 and 6 are sentinels."""

    def __init__(self):
        super().__init__(size=5, eos_id=1)  # vocab_size = 5 + 2 extra ids
        self._extra_ids = 2


def test_replaced_noise_mask_matches_pipeline_count():
    tokens = tf.constant(_originals()[0])
    seeds = [(4, 5), (6, 7)]
    mask = det._replaced_mask(tokens, seeds, replace_rate=0.3)
    assert int(tf.reduce_sum(tf.cast(mask, tf.int32))) == round(CHUNK * 0.3)
    again = det._replaced_mask(tokens, seeds, replace_rate=0.3)
    assert (mask.numpy() == again.numpy()).all()


# --- inserted token detection -------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_insert_rate_and_deleting_marked_tokens_recovers_original(rate):
    originals, inputs, _, positions = _inserted(rate=rate)
    counts = np.array([len(p) for p in positions])
    assert (counts == round(CHUNK * rate)).all()
    assert abs(counts.sum() / originals.size - rate) < 0.01
    for orig, inp, pos in zip(originals, inputs, positions, strict=True):
        assert len(inp) == CHUNK + len(pos)
        assert (np.delete(inp, pos) == orig).all()
        assert inp[pos].min() >= LOW and inp[pos].max() < HIGH


def test_insertions_uniform_over_slots_and_vocabulary():
    _, inputs, _, positions = _inserted()
    slots = np.bincount(np.concatenate(positions), minlength=CHUNK + 9)
    assert stats.chisquare(slots).pvalue > 1e-3  # any gap, start and end included
    drawn = np.concatenate([inp[pos] for inp, pos in zip(inputs, positions, strict=True)])
    edges = np.linspace(LOW, HIGH, 21).round().astype(int)
    observed, _ = np.histogram(drawn, bins=edges)
    expected = np.diff(edges) / (HIGH - LOW) * len(drawn)
    assert stats.chisquare(observed, expected).pvalue > 1e-3


# --- the real pipelines -------------------------------------------------------------------


def _task_outputs(name, builder, *, length, seed, docs=2, **knobs):
    texts = [d["text"] for d in sotu_documents(split="validation")[:docs]]

    def dataset_fn(split, shuffle_files, seed=None):
        return tf.data.Dataset.from_tensor_slices({"text": texts})

    task_name = f"test_{name}_{uuid.uuid4().hex}"
    seqio.TaskRegistry.add(
        task_name,
        source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
        preprocessors=builder(**knobs),
        output_features=_features(),
    )
    try:
        ds = seqio.get_mixture_or_task(task_name).get_dataset(
            length, split="train", shuffle=False, seed=seed, use_cached=False
        )
        examples = list(ds.as_numpy_iterator())
    finally:
        seqio.TaskRegistry.remove(task_name)
    raw = np.concatenate([VOCAB.encode(t) for t in texts]).astype(np.int32)
    return examples, raw


@pytest.mark.parametrize(
    "name,builder,lengths",
    [
        ("rtd", det.replaced_token_detection, det.replaced_lengths),
        ("itd", det.inserted_token_detection, det.inserted_lengths),
    ],
)
def test_pipeline_lengths_eos_no_pad_and_invertible(name, builder, lengths):
    inputs_length = 128
    knob = "replace_rate" if name == "rtd" else "insert_rate"
    chunk, targets_needed = lengths(inputs_length=inputs_length, **{knob: 0.15})
    examples, raw = _task_outputs(
        name, builder, length={"inputs": inputs_length, "targets": targets_needed}, seed=5
    )
    assert len(examples) == -(-len(raw) // chunk)
    recovered = []
    for i, ex in enumerate(examples):
        inp, tgt = ex["inputs"], ex["targets"]
        if i < len(examples) - 1:  # full chunks: chunk + round(rate * chunk) + EOS
            full = chunk + round(chunk * 0.15) + 1 if name == "itd" else inputs_length
            assert (len(inp), len(tgt)) == (full, targets_needed)
            # Insertions come in whole tokens, so the inputs may stop one short (127 here).
            assert inputs_length - 1 <= full <= inputs_length
        assert len(inp) <= inputs_length and len(tgt) <= targets_needed
        assert inp[-1] == 1 and tgt[-1] == 1
        assert (inp[:-1] > 1).all() and (tgt[:-1] > 1).all()  # no pad, no inner EOS
        pos = det.decode_marked_positions(inputs=inp, targets=tgt, marker_id=MARKER)
        body = inp[:-1]
        recovered.append(np.delete(body, pos) if name == "itd" else body)
        if name == "rtd":
            original = raw[i * chunk : (i + 1) * chunk]
            assert sorted(np.flatnonzero(original != body).tolist()) == pos
    if name == "itd":
        assert (np.concatenate(recovered) == raw).all()


def test_pipeline_deterministic_per_seed():
    length = {"inputs": 64, "targets": 80}
    a, _ = _task_outputs("det", det.replaced_token_detection, length=length, seed=7, docs=1)
    b, _ = _task_outputs("det", det.replaced_token_detection, length=length, seed=7, docs=1)
    c, _ = _task_outputs("det", det.replaced_token_detection, length=length, seed=8, docs=1)
    same = lambda x, y: all((p["inputs"] == q["inputs"]).all() for p, q in zip(x, y, strict=True))
    assert same(a, b) and not same(a, c)
    a, _ = _task_outputs("det", det.inserted_token_detection, length=length, seed=7, docs=1)
    b, _ = _task_outputs("det", det.inserted_token_detection, length=length, seed=7, docs=1)
    c, _ = _task_outputs("det", det.inserted_token_detection, length=length, seed=8, docs=1)
    assert same(a, b) and not same(a, c)


def test_byte_vocabulary_pipeline():
    vocab = seqio.ByteVocabulary(extra_ids=100)
    low, high = det.real_id_range(vocab)
    assert (low, high) == (3, 259)
    originals = np.random.RandomState(0).randint(low, high, (200, 40)).astype(np.int32)
    inputs, targets = _run(
        det.replace_tokens,
        originals,
        seed=2,
        sequence_length={"inputs": 41, "targets": 50},
        vocab=vocab,
    )
    for inp, tgt in zip(inputs, targets, strict=True):
        pos = det.decode_marked_positions(inputs=inp, targets=tgt, marker_id=det.marker_id(vocab))
        assert len(pos) == 6 and inp.min() >= low and inp.max() < high


# --- decoding and errors ------------------------------------------------------------------


def test_decode_marked_positions():
    assert det.decode_marked_positions(
        inputs=[5, 6, 5, 1], targets=[5, 9, 6, 9, 5, 1], marker_id=9
    ) == [1, 2]
    with pytest.raises(ValueError):  # targets do not copy inputs
        det.decode_marked_positions(inputs=[5, 6], targets=[9, 7, 6], marker_id=9)
    with pytest.raises(ValueError):  # dangling marker
        det.decode_marked_positions(inputs=[5, 6], targets=[5, 6, 9], marker_id=9)


def test_registered_objectives():
    from t5lab.data.objectives import registry

    pairs = [
        ("replaced_token_detection", "replace_rate"),
        ("inserted_token_detection", "insert_rate"),
    ]
    for name, knob in pairs:
        objective = registry._OBJECTIVES[name]
        assert isinstance(objective, Objective)
        assert objective.knobs == {knob: 0.15, "sampler": "uniform"}
    assert registry._OBJECTIVES["replaced_token_detection"].noise_mask is not None


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: det.replaced_token_detection(replace_rate=0.0), "replace_rate"),
        (lambda: det.inserted_token_detection(insert_rate=1.5), "insert_rate"),
        (lambda: det.replaced_token_detection(sampler="unigam"), "did you mean 'unigram'"),
        (lambda: det.inserted_lengths(inputs_length=1, insert_rate=0.15), "inputs length"),
        (
            lambda: det.sampling_probs(vocabulary=seqio.ByteVocabulary(), sampler="unigram"),
            "extra_ids",
        ),
        (
            lambda: det.sampling_probs(
                vocabulary=seqio.ByteVocabulary(extra_ids=10), sampler="unigram"
            ),
            "SentencePiece",
        ),
    ],
)
def test_bad_knobs_raise_user_error(call, match):
    with pytest.raises(UserError, match=match):
        call()


@pytest.mark.parametrize(
    "preprocessor,length,match",
    [
        (det.replace_tokens, {"inputs": 64, "targets": 70}, r"\['targets'\] >= 73"),
        (det.insert_tokens, {"inputs": 64, "targets": 70}, r"\['targets'\] >= 72"),
        (det.replace_tokens, {"inputs": 1, "targets": 70}, "inputs length 1"),
        (det.insert_tokens, {"targets": 70}, r"sequence_length\['inputs'\]"),
    ],
)  # fmt: skip
def test_too_short_lengths_raise_user_error(preprocessor, length, match):
    ds = tf.data.Dataset.from_tensor_slices({"targets": _originals(n_chunks=2)})
    with pytest.raises(UserError, match=match):
        preprocessor(ds, length, _features())
