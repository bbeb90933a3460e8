"""Masked-LM objectives (BERT, whole-word, n-gram, SpanBERT): rates, units, splits, pipeline.

Statistics run the selection/replacement ops over 10,480 chunks of 127 real SentencePiece
tokens (the SOTU validation speeches, ten seeds each), so every check sees >= 10k examples
and >= 150k corrupted tokens. Seeds are fixed; tolerances are stated at each assert.
"""

import functools
import importlib.util
import re
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf
from scipy import stats

from t5lab.data.corpus import sotu_documents
from t5lab.data.objectives import masking
from t5lab.data.objectives import word_units as wu
from t5lab.data.objectives.registry import _OBJECTIVES
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError
from tests.conftest import REPO

VOCAB = get_vocabulary()
MASK_ID = VOCAB.vocab_size - 1
REAL_END = VOCAB.vocab_size - VOCAB.extra_ids
CHUNK = 127
PASSES = 10
NAMES = ("bert_mlm", "whole_word_masking", "ngram_masking", "spanbert")
TABLE = wu.word_start_table(vocabulary=VOCAB)


@functools.cache
def _sotu_chunks() -> np.ndarray:
    tokens = np.concatenate(
        [VOCAB.encode(d["text"]) for d in sotu_documents(split="validation")]
    ).astype(np.int32)
    rows = len(tokens) // CHUNK
    return tokens[: rows * CHUNK].reshape(rows, CHUNK)


def _select_fn(name: str, **knobs):
    """The objective's selection op, as its pipeline builds it, for the SentencePiece vocab."""
    rate = knobs.get("corrupt_rate", 0.15)
    table = tf.constant(TABLE)
    if name == "bert_mlm":
        return functools.partial(masking.select_tokens, corrupt_rate=rate)
    if name == "whole_word_masking":
        return functools.partial(wu.select_whole_words, corrupt_rate=rate, starts_word=table)
    if name == "ngram_masking":
        probs = wu.ngram_length_probs(max_ngram=knobs.get("max_ngram", 3))
    else:
        probs = wu.geometric_length_probs(geometric_p=0.2, max_span_words=10)
    return functools.partial(
        wu.select_word_spans, corrupt_rate=rate, starts_word=table, length_probs=probs
    )


@functools.cache
def _run(name: str, corrupt_rate: float = 0.15, max_ngram: int = 3, passes: int = PASSES):
    """(tokens, selected, inputs) for every chunk x seed, as numpy [rows, CHUNK]."""
    select = _select_fn(name, corrupt_rate=corrupt_rate, max_ngram=max_ngram)
    replace = functools.partial(
        masking.replace_selected,
        mask_rate=0.8,
        random_rate=0.1,
        mask_id=MASK_ID,
        real_ids_end=REAL_END,
        per_span=name == "spanbert",
    )

    def _one(i, tokens):
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(i, tf.int32), 7]), 3)
        selected = select(tokens=tokens, seed=seeds[0])
        return tokens, selected, replace(tokens=tokens, selected=selected, seeds=seeds[1:])

    chunks = np.tile(_sotu_chunks(), (passes, 1))
    ds = tf.data.Dataset.from_tensor_slices(chunks).enumerate().map(_one, num_parallel_calls=2)
    parts = list(ds.batch(4096).as_numpy_iterator())
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def _word_starts(tokens: np.ndarray) -> np.ndarray:
    starts = TABLE[tokens]
    starts[:, 0] = True  # a chunk always starts a word
    return starts


def _span_lengths_in_words(tokens: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Lengths (in words) of maximal runs of selected words."""
    lengths = []
    for row_tokens, row_sel in zip(tokens, selected, strict=True):
        words = row_sel[_word_starts(row_tokens[None])[0]].astype(np.int8)
        edges = np.diff(np.concatenate([[0], words, [0]]))
        lengths.append(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    return np.concatenate(lengths)


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize("name", NAMES)
def test_corruption_rate_matches_knob(name):
    tokens, selected, _ = _run(name)
    assert tokens.shape[0] >= 10_000
    # Tolerance: 1 percentage point of the 0.15 knob.
    assert abs(selected.mean() - 0.15) < 0.01, selected.mean()


@pytest.mark.parametrize("name", NAMES)
def test_corruption_rate_follows_a_higher_knob(name):
    _, selected, _ = _run(name, corrupt_rate=0.4, passes=2)
    assert abs(selected.mean() - 0.4) < 0.01, selected.mean()


def test_bert_selects_an_exact_count_per_chunk():
    _, selected, _ = _run("bert_mlm")
    assert (selected.sum(axis=1) == round(CHUNK * 0.15)).all()


@pytest.mark.parametrize("name", NAMES)
def test_replacement_split_80_10_10(name):
    tokens, selected, inputs = _run(name)
    # Only selected tokens change, and never to pad/EOS/UNK or a sentinel other than [MASK].
    assert (inputs[~selected] == tokens[~selected]).all()
    changed = inputs[selected]
    new = changed[changed != tokens[selected]]
    assert ((new >= 3) & ((new < REAL_END) | (new == MASK_ID))).all()
    is_mask = changed == MASK_ID
    is_random = ~is_mask & (changed != tokens[selected])  # a random draw may equal the
    # original (1 in 8000): it then counts as kept, a 0.01 pp shift.
    assert selected.sum() >= 10_000
    # Tolerance: 1.5 percentage points of each share.
    assert abs(is_mask.mean() - 0.8) < 0.015, is_mask.mean()
    assert abs(is_random.mean() - 0.1) < 0.015, is_random.mean()
    assert abs(1 - is_mask.mean() - is_random.mean() - 0.1) < 0.015


def test_spanbert_replaces_per_span():
    _, selected, inputs = _run("spanbert")
    masked_spans = kinds = 0
    for row_sel, row_in in zip(selected[:2000], inputs[:2000], strict=True):
        edges = np.diff(np.concatenate([[0], row_sel.astype(np.int8), [0]]))
        for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            span_in = row_in[start:end]
            is_mask = span_in == MASK_ID
            # One decision per span: all [MASK], or none of it.
            assert is_mask.all() or not is_mask.any()
            masked_spans += is_mask.all()
            kinds += 1
    assert kinds > 5000
    assert abs(masked_spans / kinds - 0.8) < 0.015


@pytest.mark.parametrize("name", NAMES[1:])
def test_words_are_selected_whole(name):
    tokens, selected, _ = _run(name)
    starts = _word_starts(tokens)
    word_ids = np.cumsum(starts, axis=1) - 1
    for row_ids, row_sel in zip(word_ids, selected, strict=True):
        per_word = np.bincount(row_ids, weights=row_sel)
        sizes = np.bincount(row_ids)
        assert ((per_word == 0) | (per_word == sizes)).all()


def test_bert_mlm_does_split_words():
    # The contrast that makes the test above meaningful: token-level BERT cuts words.
    tokens, selected, _ = _run("bert_mlm")
    starts = _word_starts(tokens[:500])
    continuation_selected = selected[:500] & ~starts
    previous_kept = ~np.roll(selected[:500], 1, axis=1)
    assert (continuation_selected & previous_kept).any()


def test_ngram_lengths_follow_one_over_n():
    tokens, selected, _ = _run("ngram_masking")
    lengths = _span_lengths_in_words(tokens, selected)
    probs = wu.ngram_length_probs(max_ngram=3)
    counts = np.bincount(lengths, minlength=4)[1:]
    assert lengths.max() == 3 and len(lengths) > 20_000
    chi2 = stats.chisquare(counts, probs * counts.sum())
    assert chi2.pvalue > 0.001, (counts / counts.sum(), probs)
    # 1/n with n <= 3: p = (6/11, 3/11, 2/11), mean 18/11 words.
    assert abs(lengths.mean() - 18 / 11) < 0.02


def test_spanbert_lengths_follow_truncated_geometric():
    tokens, selected, _ = _run("spanbert")
    lengths = _span_lengths_in_words(tokens, selected)
    probs = wu.geometric_length_probs(geometric_p=0.2, max_span_words=10)
    counts = np.bincount(lengths, minlength=11)[1:]
    assert lengths.max() <= 10 and len(lengths) > 10_000
    chi2 = stats.chisquare(counts, probs * counts.sum())
    assert chi2.pvalue > 0.001, (counts / counts.sum(), probs)
    # SpanBERT reports a mean of 3.8 words; tolerance 0.05 (std error ~0.02).
    assert abs(lengths.mean() - 3.8) < 0.05


def test_noise_masks_match_the_pipeline_selection():
    tokens = tf.constant(_sotu_chunks()[0])
    seeds = tf.constant([[3, 4], [5, 6]])
    for name in NAMES:
        mask = _OBJECTIVES[name].noise_mask(tokens, seeds)
        expected = _select_fn(name)(tokens=tokens, seed=seeds[0])
        assert mask.dtype == tf.bool and mask.shape == (CHUNK,)
        np.testing.assert_array_equal(mask.numpy(), expected.numpy())


# ---------------------------------------------------------------- pipeline


def _dataset(name, *, lengths=(128, 128), seed=1, vocab=VOCAB, texts=None, **knobs):
    texts = texts or [d["text"] for d in sotu_documents(split="validation")]
    source = seqio.FunctionDataSource(
        lambda split, shuffle_files, seed=None: tf.data.Dataset.from_tensor_slices({"text": texts}),
        splits=["train"],
    )
    features = {k: seqio.Feature(vocab, add_eos=True) for k in ("inputs", "targets")}
    task_name = f"test_masking_{uuid.uuid4().hex}"
    task = seqio.Task(
        task_name,
        source=source,
        preprocessors=_OBJECTIVES[name].build(**knobs),
        output_features=features,
    )
    try:
        ds = task.get_dataset(
            sequence_length={"inputs": lengths[0], "targets": lengths[1]},
            split="train",
            shuffle=False,
            seed=seed,
            use_cached=False,
        )
        return list(ds.as_numpy_iterator())
    finally:
        seqio.TaskRegistry.remove(task_name)


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_targets_are_the_original_text(name):
    examples = _dataset(name, lengths=(100, 64))
    # The reference uses the pipeline's TF tokenizer (Python's differs on 2 tokens in 133k).
    texts = [d["text"] for d in sotu_documents(split="validation")]
    original = np.concatenate([VOCAB.encode_tf(tf.constant(t)).numpy() for t in texts])
    for ex in examples:
        inputs, targets = ex["inputs"], ex["targets"]
        assert len(inputs) == len(targets) <= 64  # chunk of min(100, 64) - 1 plus EOS
        assert inputs[-1] == targets[-1] == 1
        assert (inputs[:-1] > 1).all() and (targets[:-1] > 1).all()  # no pad or EOS inside
    assert all(len(ex["targets"]) == 64 for ex in examples[:-1])  # only the tail is short
    np.testing.assert_array_equal(np.concatenate([ex["targets"][:-1] for ex in examples]), original)
    inputs = np.concatenate([ex["inputs"][:-1] for ex in examples])
    masked = (inputs == MASK_ID).mean()
    assert 0.8 * 0.15 - 0.01 < masked < 0.8 * 0.15 + 0.01


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_is_deterministic_per_seed(name):
    texts = [d["text"][:3000] for d in sotu_documents(split="validation")]
    first = _dataset(name, texts=texts, seed=3)
    again = _dataset(name, texts=texts, seed=3)
    other = _dataset(name, texts=texts, seed=4)
    stack = lambda exs: np.concatenate([ex["inputs"] for ex in exs])
    np.testing.assert_array_equal(stack(first), stack(again))
    assert not np.array_equal(stack(first), stack(other))


def test_whole_words_on_chinese_bytes():
    # Char fallback: every Han character becomes a word (a space byte and its 3 UTF-8 bytes).
    text = "我们爱北京天安门，天安门上太阳升。" * 200
    byte_vocab = seqio.ByteVocabulary(extra_ids=100)
    examples = _dataset(
        "whole_word_masking", texts=[text], vocab=byte_vocab, lengths=(128, 128), seed=5
    )
    table = wu.word_start_table(vocabulary=byte_vocab)
    space_id = ord(" ") + 3
    assert table[space_id] and not table[ord("a") + 3] and table[byte_vocab.vocab_size - 1]
    decoded = byte_vocab.decode(np.concatenate([ex["targets"][:-1] for ex in examples]).tolist())
    assert decoded == " ".join(wu.char_words(text))
    tokens = np.concatenate([ex["targets"][:-1] for ex in examples])
    inputs = np.concatenate([ex["inputs"][:-1] for ex in examples])
    assert 0.8 * 0.15 - 0.02 < (inputs == byte_vocab.vocab_size - 1).mean() < 0.8 * 0.15 + 0.02
    starts = table[tokens]
    starts[0] = True
    word_ids = np.cumsum(starts) - 1
    sizes = np.bincount(word_ids)
    assert (sizes[1:] == 4).all()  # " " + 3 UTF-8 bytes for every character and "，"/"。"
    select = functools.partial(
        wu.select_whole_words, corrupt_rate=0.15, starts_word=tf.constant(table)
    )
    for seed in range(20):
        chunk = tokens[seed * 127 : (seed + 1) * 127]
        selected = select(tokens=tf.constant(chunk), seed=tf.constant([seed, 0])).numpy()
        chunk_starts = table[chunk]
        chunk_starts[0] = True
        ids = np.cumsum(chunk_starts) - 1
        per_word = np.bincount(ids, weights=selected)
        assert ((per_word == 0) | (per_word == np.bincount(ids))).all()
        assert abs(selected.mean() - 0.15) < 0.04  # whole 4-byte words: budget +- 2 bytes


def test_char_segmenter():
    text = "我爱北京天安门, hello 世界!\n好"
    assert wu.char_words(text) == [
        "我", "爱", "北", "京", "天", "安", "门", ",", "hello", "世", "界", "!", "好"
    ]  # fmt: skip
    graph = wu._char_segment_graph(tf.constant(text)).numpy().decode()
    assert graph.split() == wu.char_words(text)
    assert "hello" in graph and "\n" in graph  # non-CJK text and whitespace untouched
    english = "The Congress shall\nmeet."
    assert wu._char_segment_graph(tf.constant(english)).numpy().decode() == english


def test_custom_segmenter_is_used():
    def halves(text):
        return [text[: len(text) // 2], text[len(text) // 2 :]]

    examples = _dataset(
        "whole_word_masking",
        texts=["abcdefgh" * 10],
        vocab=seqio.ByteVocabulary(extra_ids=100),
        lengths=(200, 200),
        cjk_segmenter=halves,
    )
    assert bytes(np.array(examples[0]["targets"][:-1]) - 3).decode().count(" ") == 1


def test_word_start_table_for_sentencepiece():
    sp = VOCAB.tokenizer
    assert TABLE[sp.piece_to_id("▁the")] and not TABLE[sp.piece_to_id("ll")]
    assert TABLE[:3].all() and TABLE[REAL_END:].all()  # specials and sentinels stand alone
    assert len(TABLE) == VOCAB.vocab_size


def test_registry_knobs_and_gin_files_agree():
    expected = {
        "bert_mlm": {"corrupt_rate": 0.15, "mask_rate": 0.8, "random_rate": 0.1},
        "whole_word_masking": {
            "corrupt_rate": 0.15,
            "mask_rate": 0.8,
            "random_rate": 0.1,
            "cjk_segmenter": "char",
        },
        "ngram_masking": {
            "corrupt_rate": 0.15,
            "max_ngram": 3,
            "mask_rate": 0.8,
            "random_rate": 0.1,
            "cjk_segmenter": "char",
        },
        "spanbert": {
            "corrupt_rate": 0.15,
            "geometric_p": 0.2,
            "max_span_words": 10,
            "mask_rate": 0.8,
            "random_rate": 0.1,
            "cjk_segmenter": "char",
        },
    }
    for name, knobs in expected.items():
        assert _OBJECTIVES[name].knobs == knobs
        text = (REPO / "gin" / "objectives" / f"{name}.gin").read_text()
        assert f"pretraining_task.objective = @{name}\n" in text
        lines = dict(re.findall(rf"^{name}\.(\w+) = (.+)$", text, flags=re.M))
        assert {k: eval(v) for k, v in lines.items()} == knobs


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name,knobs,knob",
    [
        ("bert_mlm", {"corrupt_rate": 1.2}, "corrupt_rate"),
        ("bert_mlm", {"corrupt_rate": -0.1}, "corrupt_rate"),
        ("bert_mlm", {"mask_rate": 1.5}, "mask_rate"),
        ("whole_word_masking", {"random_rate": -0.5}, "random_rate"),
        ("whole_word_masking", {"mask_rate": 0.8, "random_rate": 0.3}, "mask_rate + random_rate"),
        ("ngram_masking", {"max_ngram": 0}, "max_ngram"),
        ("ngram_masking", {"max_ngram": 2.5}, "max_ngram"),
        ("spanbert", {"geometric_p": 0.0}, "geometric_p"),
        ("spanbert", {"geometric_p": 1.5}, "geometric_p"),
        ("spanbert", {"max_span_words": 0}, "max_span_words"),
        ("spanbert", {"cjk_segmenter": "chars"}, "cjk_segmenter"),
    ],
)
def test_bad_knobs(name, knobs, knob):
    with pytest.raises(UserError, match=re.escape(knob)):
        _OBJECTIVES[name].build(**knobs)


def test_extreme_rates_are_allowed():
    # Edges of the valid ranges build, and geometric_p=1 means one-word spans.
    _OBJECTIVES["bert_mlm"].build(corrupt_rate=0.0, mask_rate=1.0, random_rate=0.0)
    _OBJECTIVES["spanbert"].build(geometric_p=1.0)
    assert wu.geometric_length_probs(geometric_p=1.0, max_span_words=10)[0] == 1.0


@pytest.mark.skipif(importlib.util.find_spec("jieba") is not None, reason="jieba installed")
def test_jieba_missing_is_a_user_error():
    with pytest.raises(UserError, match="cjk_segmenter='jieba'"):
        _OBJECTIVES["whole_word_masking"].build(cjk_segmenter="jieba")


@pytest.mark.parametrize("lengths", [(4, 128), (128, 3)])
def test_lengths_too_small(lengths):
    with pytest.raises(UserError, match="TASK_FEATURE_LENGTHS"):
        _dataset("bert_mlm", lengths=lengths, texts=["short text"])


def test_word_masking_needs_a_tokenizer_vocabulary():
    with pytest.raises(UserError, match="vocabulary"):
        wu.word_start_table(vocabulary=seqio.PassThroughVocabulary(size=100))
