"""T5's text-to-text formats on hand-made examples: prefixes, label names, rounding, copies."""

import functools

import tensorflow as tf

from t5lab.data import text_preprocessors as tp


def _run(preprocessor, *examples: dict) -> list[dict]:
    """Apply a dataset preprocessor to examples given one by one; decode strings."""
    dataset = None
    for example in examples:
        one = tf.data.Dataset.from_tensors(example)
        dataset = one if dataset is None else dataset.concatenate(one)
    out = []
    for example in preprocessor(dataset).as_numpy_iterator():
        out.append(
            {
                key: value.decode() if isinstance(value, bytes) else value
                for key, value in example.items()
            }
        )
    return out


def test_pad_punctuation_spaces_marks_and_collapses_whitespace():
    padded = tp.pad_punctuation(tf.constant("Hello,  world! (It's 3.5)")).numpy().decode()
    assert padded == "Hello , world ! ( It ' s 3 . 5 )"


def test_glue_sorts_features_names_the_label_and_keeps_idx():
    labels = ["not_entailment", "entailment"]
    glue = functools.partial(tp.glue, benchmark_name="rte", label_names=labels)
    (out,) = _run(glue, {"sentence2": "B", "sentence1": "A", "label": 1, "idx": 7})
    assert out["inputs"] == "rte sentence1: A sentence2: B"
    assert out["targets"] == "entailment"
    assert out["idx"] == 7


def test_glue_unlabelled_examples_get_unk_and_explicit_feature_order_wins():
    glue = functools.partial(
        tp.glue,
        benchmark_name="wic",
        label_names=["False", "True"],
        feature_names=("sentence1", "sentence2", "word"),
    )
    example = {"word": "bank", "sentence1": "x", "sentence2": "y", "label": -1, "idx": 0}
    (out,) = _run(glue, example)
    assert out["inputs"] == "wic sentence1: x sentence2: y word: bank"
    assert out["targets"] == tp.UNKNOWN_LABEL


def test_glue_multirc_strips_html_and_flattens_ids():
    glue = functools.partial(
        tp.glue,
        benchmark_name="multirc",
        label_names=["False", "True"],
        feature_names=("question", "answer", "paragraph"),
    )
    example = {
        "paragraph": "<b>Sent 1: </b>Cats nap.<br><b>Sent 2: </b>Dogs bark.",
        "question": "Who naps?",
        "answer": "Cats",
        "idx": {"paragraph": 3, "question": 4, "answer": 5},
        "label": 0,
    }
    (out,) = _run(glue, example)
    assert out["inputs"] == (
        "multirc question: Who naps? answer: Cats paragraph: Sent 1: Cats nap. Sent 2: Dogs bark."
    )
    assert out["targets"] == "False"
    assert (out["idx/paragraph"], out["idx/question"], out["idx/answer"]) == (3, 4, 5)


def test_stsb_rounds_scores_to_the_nearest_fifth():
    scores = {3.78: "3.8", 0.09: "0.0", 4.91: "5.0", 1.13: "1.2", 2.0: "2.0"}
    examples = [
        {"sentence1": "a", "sentence2": "b", "label": score, "idx": i}
        for i, score in enumerate(scores)
    ]
    outs = _run(tp.stsb, *examples)
    assert [o["targets"] for o in outs] == list(scores.values())
    assert outs[0]["inputs"] == "stsb sentence1: a sentence2: b"


def _wsc(text, span2_text, span2_index, label):
    return {
        "text": text,
        "span1_text": "The city councilmen",
        "span1_index": 0,
        "span2_text": span2_text,
        "span2_index": span2_index,
        "label": label,
        "idx": 0,
    }


def test_wsc_simple_marks_the_pronoun_and_targets_the_candidate():
    text = "The city councilmen refused the demonstrators a permit because they feared violence."
    outs = _run(
        functools.partial(tp.wsc_simple, correct_referent_only=False),
        _wsc(text, "they", 9, 1),
        _wsc("I saw (it) there", "(it)", 2, 0),
        _wsc("they said they", "they", 5, 0),  # index past the end: text unchanged
    )
    assert outs[0]["inputs"] == (
        "wsc: The city councilmen refused the demonstrators a permit because * they * feared "
        "violence."
    )
    assert outs[0]["targets"] == "The city councilmen"
    assert outs[1]["inputs"] == "wsc: I saw * (it) * there"
    assert outs[2]["inputs"] == "wsc: they said they"
    assert [o["label"] for o in outs] == [1, 0, 0]


def test_wsc_simple_training_keeps_only_correct_referents():
    outs = _run(
        functools.partial(tp.wsc_simple, correct_referent_only=True),
        _wsc("a b c", "b", 1, 0),
        _wsc("a b c", "c", 2, 1),
    )
    assert [o["inputs"] for o in outs] == ["wsc: a b * c *"]


def _record(answers, query_id):
    return {
        "passage": "Storm hits.\n@highlight\nPeople flee\n@highlight\nRoads shut",
        "query": "@placeholder fled",
        "entities": tf.constant(["People", "Roads", "People"]),
        "answers": tf.constant(answers, dtype=tf.string),
        "idx": {"passage": 1, "query": query_id},
    }


def test_record_makes_one_example_per_answer_each_with_all_answers():
    outs = _run(tp.record, _record(["People", "people"], 0), _record([], 1))
    assert [o["targets"] for o in outs] == ["People", "people", tp.UNKNOWN_LABEL]
    assert outs[0]["inputs"] == (
        "record query: @placeholder fled entities: People, Roads "
        "passage: Storm hits. People flee. Roads shut"
    )
    assert [list(o["answers"]) for o in outs[:2]] == [[b"People", b"people"]] * 2
    assert [o["idx/query"] for o in outs] == [0, 0, 1]


def test_squad_pads_punctuation_and_targets_the_first_answer():
    example = {
        "id": "q1",
        "question": "Who wrote it?",
        "context": "It was written by J. Smith.",
        "answers": {"text": ["J. Smith", "Smith"], "answer_start": [18, 21]},
    }
    (out,) = _run(tp.squad, example)
    assert out["inputs"] == "question: Who wrote it ? context: It was written by J . Smith ."
    assert out["targets"] == "J . Smith"
    assert list(out["answers"]) == [b"J . Smith", b"Smith"]


def test_summarize_and_translate_prefixes():
    (summary,) = _run(
        functools.partial(tp.summarize, article_key="article", summary_key="highlights"),
        {"article": "Long text.", "highlights": "Short."},
    )
    assert (summary["inputs"], summary["targets"]) == ("summarize: Long text.", "Short.")
    (translation,) = _run(
        functools.partial(tp.translate, source_language="en", target_language="de"),
        {"en": "That is good.", "de": "Das ist gut."},
    )
    assert translation["inputs"] == "translate English to German: That is good."
    assert translation["targets"] == "Das ist gut."
