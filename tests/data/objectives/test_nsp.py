"""Next-sentence prediction: label balance, where B comes from, lengths, EOS, seeds, errors."""

import re
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf
from scipy import stats

from t5lab.data.corpus import sotu_documents
from t5lab.data.objectives import nsp
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError

SPM = get_vocabulary()
_SENTENCE = re.compile(r"Doc (\d+) line (\d+) says (\w+)[.!?]")


def _synthetic_docs(num_docs=3000, num_sentences=12):
    """Sentences that name their document and position ("Doc 7 line 3 says ...")."""
    rng = np.random.default_rng(0)
    words = rng.choice(["yes", "no", "maybe", "often"], size=(num_docs, num_sentences))
    ends = rng.choice([".", "!", "?"], size=(num_docs, num_sentences))
    return [
        " ".join(f"Doc {d} line {j} says {words[d, j]}{ends[d, j]}" for j in range(num_sentences))
        for d in range(num_docs)
    ]


def _pairs(docs, seed=0, **knobs):
    ds = tf.data.Dataset.from_tensor_slices({"text": docs})
    with seqio.map_seed_manager(seed):
        out = nsp.nsp_pairs(ds, **knobs)
    return [
        {k: v.decode() if isinstance(v, bytes) else v for k, v in ex.items()}
        for ex in out.as_numpy_iterator()
    ]


def _parse(text):
    found = [(int(d), int(j)) for d, j, _ in _SENTENCE.findall(text)]
    assert " ".join(m.group(0) for m in _SENTENCE.finditer(text)) == text  # nothing lost
    return found


def test_sentence_splitter_rule():
    text = "Mr. Smith went home. he stayed! Did he? Yes.\nNo 3.5 apples.  Done"
    got = [s.decode() for s in nsp.split_sentences_tf(tf.constant(text)).numpy()]
    assert got == [
        "Mr.",
        "Smith went home. he stayed!",
        "Did he?",
        "Yes.",
        "No 3.5 apples.",
        "Done",
    ]


def test_label_balance_and_where_b_comes_from():
    docs = _synthetic_docs()
    pairs = _pairs(docs, seed=1)
    assert len(pairs) >= 5000
    negatives = 0
    a_lengths = []
    for ex in pairs:
        a, b = _parse(ex["sentence1"]), _parse(ex["sentence2"])
        assert 1 <= len(a) <= 3 and 1 <= len(b) <= 3
        a_lengths.append(len(a))
        # Each side is a run of consecutive sentences of one document.
        for side in (a, b):
            assert len({d for d, _ in side}) == 1
            assert [j for _, j in side] == list(range(side[0][1], side[0][1] + len(side)))
        if ex["is_next"]:
            assert b[0] == (a[0][0], a[-1][1] + 1)  # B starts right after A ends
            assert ex["doc1"] == ex["doc2"]
        else:
            negatives += 1
            assert b[0][0] != a[0][0] and ex["doc1"] != ex["doc2"]
    share = negatives / len(pairs)
    print(f"nsp: {len(pairs)} pairs, negatives {share:.4f}")
    assert abs(share - 0.5) <= 0.02
    # A document's first run has a uniform length on 1..max_sentences (a B always follows).
    first = np.bincount(
        [n for n, ex in zip(a_lengths, pairs, strict=True) if _parse(ex["sentence1"])[0][1] == 0]
    )
    assert first[0] == 0 and stats.chisquare(first[1:]).pvalue > 0.001


@pytest.mark.parametrize("rate", [0.0, 0.2, 1.0])
def test_negative_rate_knob(rate):
    pairs = _pairs(_synthetic_docs(1500), seed=2, negative_rate=rate, max_sentences=2)
    share = np.mean([not ex["is_next"] for ex in pairs])
    assert abs(share - rate) <= 0.02
    assert all(len(_parse(ex["sentence1"])) <= 2 for ex in pairs)


def test_a_single_document_gives_only_positives():
    pairs = _pairs(_synthetic_docs(1, 40), seed=3)
    assert pairs and all(ex["is_next"] for ex in pairs)


def test_pairs_depend_on_the_seed_only():
    docs = _synthetic_docs(300)
    a, b, c = _pairs(docs, seed=4), _pairs(docs, seed=4), _pairs(docs, seed=5)
    assert a == b and a != c


@pytest.fixture(scope="module")
def task_name():
    texts = [d["text"] for d in sotu_documents(split="validation")]

    def dataset_fn(split, shuffle_files, seed=None):
        del split, shuffle_files, seed
        return tf.data.Dataset.from_tensor_slices({"text": texts})

    name = f"test_nsp_{uuid.uuid4().hex}"
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
        preprocessors=nsp.nsp_objective(),
        output_features={"inputs": seqio.Feature(SPM), "targets": seqio.Feature(SPM)},
    )
    yield name
    seqio.TaskRegistry.remove(name)


def _examples(name, seed, inputs_length=96):
    ds = seqio.get_mixture_or_task(name).get_dataset(
        sequence_length={"inputs": inputs_length, "targets": 4},
        split="train",
        shuffle=False,
        seed=seed,
        use_cached=False,
    )
    return [(ex["inputs"].tolist(), ex["targets"].tolist()) for ex in ds.as_numpy_iterator()]


def test_task_on_real_text(task_name):
    examples = _examples(task_name, seed=0)
    head1 = [int(t) for t in SPM.encode("sentence1:")]
    head2 = [int(t) for t in SPM.encode("sentence2:")]
    labels = {tuple(int(t) for t in SPM.encode(word)) + (1,): word for word in nsp.LABELS}
    words = []
    for inputs, targets in examples:
        assert len(inputs) <= 96 and inputs[-1] == 1 and 1 not in inputs[:-1] and 0 not in inputs
        assert inputs[: len(head1)] == head1
        at = next(i for i in range(len(inputs)) if inputs[i : i + len(head2)] == head2)
        assert len(head1) < at < len(inputs) - len(head2) - 1  # A and B both non-empty
        words.append(labels[tuple(targets)])
    assert len(examples) >= 500
    assert abs(words.count("random") / len(words) - 0.5) <= 0.05  # ~1000 pairs: 3 sigma
    # Long pairs are cut to fit exactly; short ones are left whole.
    assert sum(len(inputs) == 96 for inputs, _ in examples) >= len(examples) // 2
    assert examples == _examples(task_name, seed=0)
    other = _examples(task_name, seed=1)
    assert sum(a != b for a, b in zip(examples, other, strict=False)) >= 0.5 * len(examples)


def test_truncation_keeps_the_boundary():
    ds = tf.data.Dataset.from_tensors(
        {
            "sentence1": "one two three four five six seven eight nine ten.",
            "sentence2": "Alpha beta gamma delta epsilon zeta eta theta.",
            "is_next": True,
        }
    )
    vocab = seqio.ByteVocabulary()
    features = {"inputs": seqio.Feature(vocab), "targets": seqio.Feature(vocab)}
    out = nsp.nsp_to_text_to_text(ds, {"inputs": 41, "targets": 8}, features)
    ex = out.get_single_element()
    text = vocab.decode(ex["inputs"].numpy().tolist())
    # room = 41 - EOS - 2 * len("sentence1:") = 20 bytes: A keeps its last 10, B its first 10.
    assert text == "sentence1: nine ten.sentence2:Alpha beta"
    assert vocab.decode(ex["targets"].numpy().tolist()) == "next"


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: nsp.nsp_objective(negative_rate=1.5), "negative_rate"),
        (lambda: nsp.nsp_objective(max_sentences=0), "max_sentences"),
        (lambda: nsp.nsp_objective(max_sentences=2.5), "max_sentences"),
        (lambda: _convert({"inputs": 8, "targets": 8}), "TASK_FEATURE_LENGTHS\\['inputs'\\]"),
        (lambda: _convert({"inputs": 64, "targets": 1}), "TASK_FEATURE_LENGTHS\\['targets'\\]"),
        (lambda: _convert(None), "sequence_length"),
    ],
)
def test_bad_settings_raise_one_line_user_errors(call, match):
    with pytest.raises(UserError, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def _convert(sequence_length):
    ds = tf.data.Dataset.from_tensors({"sentence1": "a", "sentence2": "b", "is_next": True})
    features = {"inputs": seqio.Feature(SPM), "targets": seqio.Feature(SPM)}
    return nsp.nsp_to_text_to_text(ds, sequence_length, features)
