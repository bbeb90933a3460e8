"""SQuAD, CNN/DailyMail, WMT and C4 tasks over tfds mock data (random text: plumbing only)."""

import pytest
import seqio
import tensorflow_datasets as tfds

import tasks.paper as paper
from t5lab.data.vocab import get_vocabulary
from tests.tasks.task_scoring import score, text

LENGTHS = {"inputs": 64, "targets": 32}


def _task_and_raw_examples(name: str, tfds_name: str, split: str = "validation"):
    """The task's examples and the raw tfds examples they came from, in the same order."""
    task = seqio.get_mixture_or_task(name)
    with tfds.testing.mock_data(num_examples=3):
        dataset = task.get_dataset(
            sequence_length=LENGTHS, split=split, shuffle=False, try_in_mem_cache=False
        )
        examples = list(dataset.as_numpy_iterator())
        raw = list(tfds.load(tfds_name, split=split, shuffle_files=False).as_numpy_iterator())
    assert len(examples) == len(raw) > 0
    return task, examples, raw


def test_squad_asks_question_with_context_and_scores_against_all_answers():
    task, examples, raw = _task_and_raw_examples(paper.SQUAD_TASK, "squad/v1.1:3.0.0")
    for example, source in zip(examples, raw, strict=True):
        question = " ".join(text(source["question"]).split())
        inputs = text(example["inputs_pretokenized"])
        assert inputs.startswith(f"question: {question} context: ")
        answers = [text(a) for a in example["answers"]]
        assert answers == [" ".join(text(a).split()) for a in source["answers"]["text"]]
        assert text(example["targets_pretokenized"]) == (answers[0] if answers else "")
    answered = [ex for ex in examples if len(ex["answers"])]
    assert answered
    # predicting the *last* reference answer still counts: targets are every answer
    last_answers = [text(ex["answers"][-1]) for ex in answered]
    assert score(task, answered, last_answers) == {
        "em": pytest.approx(100.0),
        "f1": pytest.approx(100.0),
    }


def test_cnn_dailymail_summarizes_articles_into_highlights_scored_by_rouge():
    task, examples, raw = _task_and_raw_examples(paper.CNN_DAILYMAIL_TASK, "cnn_dailymail:3.4.0")
    for example, source in zip(examples, raw, strict=True):
        assert text(example["inputs_pretokenized"]) == "summarize: " + text(source["article"])
        assert text(example["targets_pretokenized"]) == text(source["highlights"])
    hand_made = [{"targets_pretokenized": b"the cat sat on the mat ."}]
    perfect = score(task, hand_made, ["the cat sat on the mat ."])
    assert perfect == {key: pytest.approx(100.0) for key in ("rouge1", "rouge2", "rougeLsum")}
    assert score(task, hand_made, ["a dog barked"])["rouge1"] < 100.0


@pytest.mark.parametrize("name", sorted(paper.WMT_TASKS))
def test_wmt_translates_from_english_and_scores_bleu(name):
    tfds_name, source_language, target_language = paper.WMT_TASKS[name]
    language = {"de": "German", "fr": "French", "ro": "Romanian"}[target_language]
    task, examples, raw = _task_and_raw_examples(name, tfds_name)
    for example, source in zip(examples, raw, strict=True):
        expected = f"translate English to {language}: " + text(source[source_language])
        assert text(example["inputs_pretokenized"]) == expected
        assert text(example["targets_pretokenized"]) == text(source[target_language])
    hand_made = [{"targets_pretokenized": b"Das ist ein gutes Haus, sagte er gestern."}]
    assert score(task, hand_made, ["Das ist ein gutes Haus, sagte er gestern."]) == {
        "bleu": pytest.approx(100.0)
    }


def test_c4_span_corruption_replaces_spans_with_sentinels():
    vocabulary = get_vocabulary()
    task = seqio.get_mixture_or_task(paper.C4_SPAN_CORRUPTION_TASK)
    assert task.output_features["targets"].vocabulary.vocab_size == vocabulary.vocab_size
    first_sentinel = vocabulary.vocab_size - vocabulary.extra_ids
    with tfds.testing.mock_data(num_examples=4):
        dataset = task.get_dataset(
            sequence_length={"inputs": 32, "targets": 16},
            split="train",
            shuffle=False,
            try_in_mem_cache=False,
        )
        examples = list(dataset.as_numpy_iterator())
    assert examples
    for example in examples:
        assert (example["inputs"] >= first_sentinel).any()
        assert (example["targets"] >= first_sentinel).any()
        assert example["inputs"][-1] == example["targets"][-1] == 1  # EOS
