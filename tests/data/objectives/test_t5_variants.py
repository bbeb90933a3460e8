"""T5's objective variants and MASS: rates, run lengths, reconstruction, lengths, seeds, errors."""

import functools
import itertools
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf
from scipy import stats

from t5lab.data.corpus import sotu_documents
from t5lab.data.objectives import t5_variants as tv
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError


class _T5LikeVocab(seqio.PassThroughVocabulary):
    """32000 ordinary ids + 100 sentinels on top (ids 32000..32099), like T5's vocabulary."""

    def __init__(self, extra_ids=100):
        super().__init__(size=32000 + extra_ids, eos_id=1)
        self._extra_ids = extra_ids

    @property
    def extra_ids(self):
        return self._extra_ids


VOCAB = _T5LikeVocab()
FIRST_SENTINEL = 32000
MASK_ID = VOCAB.vocab_size - 1  # <extra_id_0>


def _features(vocab=VOCAB):
    return {"inputs": seqio.Feature(vocab), "targets": seqio.Feature(vocab)}


def _unique_docs(num_docs, length):
    """Docs whose tokens are distinct inside each doc (so a chunk's mask can be read back)."""
    positions = np.arange(length)
    return np.stack([3 + (positions * 7919 + i) % 31000 for i in range(num_docs)]).astype(np.int32)


def _run(fn, docs, sequence_length, seed=0, vocab=VOCAB, **knobs):
    """Applies one variant (no EOS) to `docs`; returns (chunks, examples) as numpy lists."""
    ds = tf.data.Dataset.from_tensor_slices({"targets": tf.ragged.constant(docs)})
    with seqio.map_seed_manager(seed):
        out = fn(ds, sequence_length, _features(vocab), **knobs)
    examples = []
    for batch in out.ragged_batch(4096).as_numpy_iterator():
        for inp, tgt in zip(batch["inputs"], batch["targets"], strict=True):
            examples.append((np.asarray(inp), np.asarray(tgt)))
    return examples


def _fill_sentinels(inputs, targets, first_sentinel=FIRST_SENTINEL):
    """Replace-spans reconstruction: (original tokens, mask of corrupted positions)."""
    runs, current = {}, None
    for t in targets:
        if t >= first_sentinel:
            current = int(t)
            runs[current] = []
        else:
            runs[current].append(int(t))
    tokens, mask = [], []
    for t in inputs:
        run = runs.pop(int(t)) if t >= first_sentinel else [int(t)]
        tokens += run
        mask += [t >= first_sentinel] * len(run)
    assert not runs, "every target run is used exactly once"
    return tokens, np.array(mask, bool)


def _run_lengths(mask, max_start):
    """Lengths of corrupted runs starting at or before `max_start` (uncensored by the end)."""
    padded = np.r_[False, mask, False].astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)
    keep = starts <= max_start
    return ends[keep] - starts[keep]


def _check_geometric(lengths, rate):
    """Runs of i.i.d. Bernoulli(rate) are Geometric(1-rate): mean and chi-square on 1..5, 6+."""
    expected_mean = 1 / (1 - rate)
    assert abs(lengths.mean() / expected_mean - 1) <= 0.01, lengths.mean()
    pmf = [(1 - rate) * rate ** (k - 1) for k in range(1, 6)]
    probs = np.array([*pmf, 1 - sum(pmf)])
    counts = np.array([*(np.sum(lengths == k) for k in range(1, 6)), np.sum(lengths >= 6)])
    assert stats.chisquare(counts, probs * counts.sum()).pvalue > 0.001


def test_cost_quantile_matches_enumeration():
    length, rate = 10, 0.3
    costs = {}
    for bits in itertools.product([0, 1], repeat=length):
        mask = np.array(bits, bool)
        prob = rate ** mask.sum() * (1 - rate) ** (length - mask.sum())
        starts = int(np.sum(np.diff(np.r_[0, bits]) == 1))
        costs.setdefault(mask.sum() + starts, 0.0)
        costs[mask.sum() + starts] += prob
    values = np.array(sorted(costs))
    survival = 1 - np.cumsum([costs[v] for v in values])
    for tail in (0.5, 0.1, 1e-2, 1e-4):
        expected = values[np.argmax(survival <= tail)]
        got = tv.run_cost_quantile(
            rate=rate, length=length, start_cost=2, continue_cost=1, tail=tail
        )
        assert got == expected


def test_cap_leaves_overflowing_runs_uncorrupted():
    mask = tf.constant([1, 1, 0, 1, 0, 1, 1, 1]) > 0
    capped = tv._cap_runs(mask, start_cost=2, continue_cost=1, budget=6, max_runs=100)
    assert capped.numpy().astype(int).tolist() == [1, 1, 0, 1, 0, 0, 0, 0]
    capped = tv._cap_runs(mask, start_cost=2, continue_cost=1, budget=100, max_runs=1)
    assert capped.numpy().astype(int).tolist() == [1, 1, 0, 0, 0, 0, 0, 0]


def test_iid_replace_spans_statistics_and_reconstruction():
    # 1400 docs of 1000 tokens -> 7 full 127-token chunks + one 111-token tail each.
    docs = _unique_docs(1400, 1000)
    needed = 1 + tv.run_cost_quantile(rate=0.15, length=127, start_cost=2, continue_cost=1)
    examples = _run(tv.iid_replace_spans, docs, {"inputs": 128, "targets": needed}, seed=1)
    assert len(examples) == 1400 * 8
    corrupted = total = 0
    lengths = []
    for i, (inp, tgt) in enumerate(examples):
        tokens, mask = _fill_sentinels(inp, tgt)
        chunk = docs[i // 8][(i % 8) * 127 : (i % 8 + 1) * 127]
        assert tokens == chunk.tolist()
        assert len(inp) <= 127 and len(tgt) <= needed - 1 and 0 not in inp and 0 not in tgt
        sentinels = inp[inp >= FIRST_SENTINEL]
        assert sentinels.tolist() == list(range(VOCAB.vocab_size - 1, MASK_ID - len(sentinels), -1))
        assert np.array_equal(sentinels, tgt[tgt >= FIRST_SENTINEL])
        corrupted, total = corrupted + mask.sum(), total + len(mask)
        if len(mask) == 127:
            lengths.append(_run_lengths(mask, max_start=127 - 7))
    rate = corrupted / total
    print(f"iid_replace_spans: rate={rate:.4f}")
    assert abs(rate - 0.15) <= 0.01
    _check_geometric(np.concatenate(lengths), 0.15)


@pytest.mark.parametrize("rate", [0.15, 0.5])
def test_iid_drop_tokens_statistics_and_reconstruction(rate):
    docs = _unique_docs(1400, 1000)
    needed = 1 + tv.run_cost_quantile(rate=rate, length=127, start_cost=1, continue_cost=1)
    examples = _run(
        tv.iid_drop_tokens, docs, {"inputs": 128, "targets": needed}, seed=2, corrupt_rate=rate
    )
    assert len(examples) == 1400 * 8
    corrupted = total = 0
    lengths = []
    for i, (inp, tgt) in enumerate(examples):
        chunk = docs[i // 8][(i % 8) * 127 : (i % 8 + 1) * 127]
        mask = np.isin(chunk, tgt)
        # Kept and dropped tokens, each in order, interleave back into the chunk.
        assert np.array_equal(chunk[~mask], inp) and np.array_equal(chunk[mask], tgt)
        assert len(tgt) <= needed - 1
        corrupted, total = corrupted + mask.sum(), total + len(mask)
        if len(mask) == 127:
            lengths.append(_run_lengths(mask, max_start=127 - 7))
    measured = corrupted / total
    print(f"iid_drop_tokens({rate}): rate={measured:.4f}")
    assert abs(measured - rate) <= 0.01
    _check_geometric(np.concatenate(lengths), rate)


def test_prefix_lm_split_point_is_uniform():
    docs = _unique_docs(2000, 640)  # 5 full 128-token chunks each
    examples = _run(tv.prefix_lm, docs, {"inputs": 128, "targets": 128}, seed=3)
    assert len(examples) == 10_000
    splits = []
    for i, (inp, tgt) in enumerate(examples):
        chunk = docs[i // 5][(i % 5) * 128 : (i % 5 + 1) * 128]
        assert np.array_equal(np.concatenate([inp, tgt]), chunk)
        splits.append(len(inp))
    counts = np.bincount(splits, minlength=128)
    assert counts[0] == 0 and len(counts) == 128  # both sides non-empty, prefix <= 127
    assert stats.chisquare(counts[1:]).pvalue > 0.001


def test_deshuffling_is_a_uniform_permutation():
    docs = _unique_docs(2000, 635)  # 5 full 127-token chunks each
    examples = _run(tv.deshuffling, docs, {"inputs": 128, "targets": 128}, seed=4)
    assert len(examples) == 10_000
    first_token_positions, fixed_points = [], 0
    for i, (inp, tgt) in enumerate(examples):
        chunk = docs[i // 5][(i % 5) * 127 : (i % 5 + 1) * 127]
        assert np.array_equal(tgt, chunk) and np.array_equal(np.sort(inp), np.sort(tgt))
        first_token_positions.append(int(np.flatnonzero(inp == tgt[0])[0]))
        fixed_points += int(np.sum(inp == tgt))
    assert stats.chisquare(np.bincount(first_token_positions, minlength=127)).pvalue > 0.001
    assert abs(fixed_points / len(examples) - 1.0) <= 0.05  # a uniform permutation: 1 on average


@pytest.mark.parametrize("fraction", [0.5, 0.15])
def test_mass_masks_one_span_of_the_fraction(fraction):
    docs = _unique_docs(2000, 635)
    m = int(np.floor(127 * fraction + 0.5))
    examples = _run(
        tv.mass, docs, {"inputs": 128, "targets": m + 1}, seed=5, span_fraction=fraction
    )
    assert len(examples) == 10_000
    starts, masked = [], 0
    for i, (inp, tgt) in enumerate(examples):
        chunk = docs[i // 5][(i % 5) * 127 : (i % 5 + 1) * 127]
        where = np.flatnonzero(inp == MASK_ID)
        assert len(inp) == 127 and len(where) == len(tgt) == m
        assert np.array_equal(where, np.arange(where[0], where[0] + m))  # one contiguous span
        filled = inp.copy()
        filled[where] = tgt
        assert np.array_equal(filled, chunk)
        starts.append(where[0])
        masked += m
    assert abs(masked / (127 * len(examples)) - fraction) <= 0.01
    assert stats.chisquare(np.bincount(starts, minlength=127 - m + 1)).pvalue > 0.001


def test_short_tails_do_not_crash():
    docs = [[5], [5, 6], [7, 8, 9]]
    seq = {"inputs": 16, "targets": 16}
    prefix = [(a.tolist(), b.tolist()) for a, b in _run(tv.prefix_lm, docs, seq)]
    assert prefix[:2] == [([], [5]), ([5], [6])] and len(prefix) == 3
    for fn in (tv.iid_replace_spans, tv.iid_drop_tokens, tv.deshuffling, tv.mass):
        assert len(_run(fn, docs, seq)) == 3
    assert [b.tolist() for _, b in _run(tv.mass, docs, seq)][0] == [5]


OBJECTIVES = ["iid_replace_spans", "iid_drop_tokens", "prefix_lm", "deshuffling", "mass"]
TARGETS_128 = {
    "iid_replace_spans": 71,
    "iid_drop_tokens": 41,
    "prefix_lm": 128,
    "deshuffling": 128,
    "mass": 65,
}
SPM = get_vocabulary()


@functools.cache
def _sotu_texts():
    return tuple(d["text"] for d in sotu_documents(split="validation"))


@pytest.fixture(scope="module")
def tasks():
    names = {}
    for objective in OBJECTIVES:

        def dataset_fn(split, shuffle_files, seed=None):
            del split, shuffle_files, seed
            return tf.data.Dataset.from_tensor_slices({"text": list(_sotu_texts())})

        name = f"test_{objective}_{uuid.uuid4().hex}"
        seqio.TaskRegistry.add(
            name,
            source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
            preprocessors=tv.__dict__[f"{objective}_objective"](),
            output_features=_features(SPM),
        )
        names[objective] = name
    yield names
    for name in names.values():
        seqio.TaskRegistry.remove(name)


def _task_examples(name, seed, targets):
    ds = seqio.get_mixture_or_task(name).get_dataset(
        sequence_length={"inputs": 128, "targets": targets},
        split="train",
        shuffle=False,
        seed=seed,
        use_cached=False,
    )
    return [(ex["inputs"], ex["targets"]) for ex in ds.as_numpy_iterator()]


def _rebuild(objective, inp, tgt):
    if objective == "iid_replace_spans":
        return _fill_sentinels(inp, tgt, SPM.vocab_size - SPM.extra_ids)[0]
    if objective == "prefix_lm":
        return [*inp, *tgt]
    if objective == "deshuffling":
        return list(tgt)
    if objective == "mass":
        filled = inp.copy()
        filled[inp == SPM.vocab_size - 1] = tgt
        return list(filled)
    return None  # drop: positions are not recoverable from repeated real tokens


def test_objectives_are_registered_with_knobs():
    from t5lab.data.objectives import registry

    knobs = {name: registry._OBJECTIVES[name].knobs for name in OBJECTIVES}
    assert knobs == {
        "iid_replace_spans": {"corrupt_rate": 0.15},
        "iid_drop_tokens": {"corrupt_rate": 0.15},
        "prefix_lm": {},
        "deshuffling": {},
        "mass": {"span_fraction": 0.5},
    }
    tokens = tf.range(3, 2003)
    mask = registry._OBJECTIVES["iid_replace_spans"].noise_mask(tokens, [(1, 2)])
    assert abs(float(tf.reduce_mean(tf.cast(mask, tf.float32))) - 0.15) <= 0.02
    mask = registry._OBJECTIVES["mass"].noise_mask(tokens, [(1, 2)])
    assert int(tf.reduce_sum(tf.cast(mask, tf.int32))) == 1000


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_task_on_real_text(objective, tasks):
    targets = TARGETS_128[objective]
    examples = _task_examples(tasks[objective], 0, targets)
    # encode_tf, as the pipeline does (Python's encode breaks rare ties differently).
    corpus = [int(t) for text in _sotu_texts() for t in SPM.encode_tf(text).numpy()]
    rebuilt = []
    for inp, tgt in examples:
        assert len(inp) <= 128 and len(tgt) <= targets
        for seq in (inp, tgt):
            assert seq[-1] == 1 and 1 not in seq[:-1] and 0 not in seq
        tokens = _rebuild(objective, inp[:-1], tgt[:-1])
        rebuilt += tokens if tokens is not None else [*inp[:-1], *tgt[:-1]]
    if objective == "iid_drop_tokens":
        assert sorted(rebuilt) == sorted(corpus)
    else:  # no shuffle: the examples, filled back in, spell out the corpus in order
        assert rebuilt == corpus
    if objective in ("deshuffling", "mass"):
        assert sum(len(inp) == 128 for inp, _ in examples) >= len(examples) - 1
    # Same seed, same examples; another seed, different ones.
    again = _task_examples(tasks[objective], 0, targets)
    other = _task_examples(tasks[objective], 1, targets)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(examples, again, strict=True))
    differ = sum(not np.array_equal(a[0], b[0]) for a, b in zip(examples, other, strict=True))
    assert differ >= 0.9 * len(examples)


def test_targets_at_the_t5_default_length_hold_every_run():
    """inputs 512: full chunks need 211 targets; every chunk rebuilds (nothing truncated)."""
    needed = 1 + tv.run_cost_quantile(rate=0.15, length=511, start_cost=2, continue_cost=1)
    assert needed == 211
    docs = _unique_docs(600, 511 * 4)
    examples = _run(tv.iid_replace_spans, docs, {"inputs": 512, "targets": needed}, seed=6)
    longest = 0
    for i, (inp, tgt) in enumerate(examples):
        chunk = docs[i // 4][(i % 4) * 511 : (i % 4 + 1) * 511]
        assert _fill_sentinels(inp, tgt)[0] == chunk.tolist()
        longest = max(longest, len(tgt) + 1)
    assert len(examples) == 2400 and longest <= needed


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: tv.iid_replace_spans_objective(corrupt_rate=0.0), "corrupt_rate"),
        (lambda: tv.iid_drop_tokens_objective(corrupt_rate=1.0), "corrupt_rate"),
        (lambda: tv.mass_objective(span_fraction=1.5), "span_fraction"),
        (lambda: _run(tv.iid_replace_spans, [[5]], {"inputs": 128, "targets": 70}), ">= 71"),
        (lambda: _run(tv.iid_drop_tokens, [[5]], {"inputs": 128, "targets": 20}), ">= 41"),
        (lambda: _run(tv.prefix_lm, [[5]], {"inputs": 128, "targets": 127}), ">= 128"),
        (lambda: _run(tv.deshuffling, [[5]], {"inputs": 64, "targets": 8}), ">= 64"),
        (lambda: _run(tv.mass, [[5]], {"inputs": 128, "targets": 64}), ">= 65"),
        (lambda: _run(tv.mass, [[5]], {"inputs": 1, "targets": 64}), "TASK_FEATURE_LENGTHS"),
        (lambda: _run(tv.prefix_lm, [[5]], None), "sequence_length"),
        (
            lambda: _run(
                tv.iid_replace_spans, [[5]], {"inputs": 512}, vocab=_T5LikeVocab(extra_ids=50)
            ),
            "extra_ids=50",
        ),
    ],
)
def test_bad_settings_raise_one_line_user_errors(call, match):
    with pytest.raises(UserError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
