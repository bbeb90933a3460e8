"""SuperGLUE's grouped scores and T5's answer matching, on hand-made examples."""

import numpy as np
import pytest

from t5lab.eval import superglue_metrics as sm


def _multirc(labels_by_question, predictions):
    targets, outputs = [], []
    for (paragraph, question), labels in labels_by_question.items():
        for label in labels:
            example = {"idx/paragraph": np.int32(paragraph), "idx/question": np.int32(question)}
            targets.append(sm.multirc(label, example=example, is_target=True))
    outputs = [sm.multirc(p) for p in predictions]
    return targets, outputs


def test_multirc_exact_match_needs_every_answer_of_a_question_right():
    questions = {(0, 0): ["True", "False"], (0, 1): ["False", "False"], (1, 0): ["True"]}
    targets, outputs = _multirc(questions, ["True", "False", "False", "True", "maybe"])
    # question (0, 0) all right; (0, 1) one wrong; (1, 0) unreadable answer -> wrong
    assert sm.multirc_exact_match(targets, outputs) == {"exact_match": pytest.approx(100 / 3)}


def test_multirc_f1a_is_binary_f1_over_all_answers():
    questions = {(0, 0): ["True", "False"], (0, 1): ["True", "True"]}
    targets, outputs = _multirc(questions, ["True", "True", "True", "False"])
    # TP 2, FP 1, FN 1 -> precision = recall = 2/3
    assert sm.multirc_f1_over_all_answers(targets, outputs) == {"f1a": pytest.approx(200 / 3)}


def test_record_scores_each_query_once_against_all_answers():
    def target(query, answers):
        example = {"idx/passage": 0, "idx/query": query, "answers": [a.encode() for a in answers]}
        return sm.record(answers[0], example=example, is_target=True)

    targets = [target(0, ["Paris", "the Paris"]), target(0, ["Paris", "the Paris"])]
    targets.append(target(1, ["Rome"]))
    predictions = [sm.record(p) for p in ("Paris", "Berlin", "Milan")]
    # query 0 counted once (its first copy is right), query 1 wrong
    assert sm.record_squad(targets, predictions) == {
        "em": pytest.approx(50.0),
        "f1": pytest.approx(50.0),
    }


def test_qa_targets_are_every_answer():
    example = {"answers": np.array([b"J . Smith", b"Smith"], dtype=object)}
    assert sm.qa("J . Smith", example=example, is_target=True) == ["J . Smith", "Smith"]
    assert sm.qa("Smith") == "Smith"


@pytest.mark.parametrize(
    "prediction, matches",
    [
        ("The city councilmen", 1),
        ("councilmen", 1),  # determiners and subsets match
        ("the city councilmen's", 0),  # possessive only on one side
        ("demonstrators", 0),
        ("", 0),
    ],
)
def test_wsc_simple_says_whether_the_answer_names_the_candidate(prediction, matches):
    example = {"targets_pretokenized": b"The city councilmen", "label": np.int32(1)}
    assert sm.wsc_simple(prediction, example=example) == matches
    assert sm.wsc_simple("ignored", example=example, is_target=True) == 1


def test_record_query_without_answers_is_scored_against_its_unk_target():
    example = {"idx/passage": 0, "idx/query": 0, "answers": np.array([], dtype=object)}
    target = sm.record("<unk>", example=example, is_target=True)
    assert target["value"] == ["<unk>"]
    assert sm.record_squad([target], [sm.record("Paris")])["em"] == 0.0
