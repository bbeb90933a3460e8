"""The offline downstream suite through seqio, and registering your own task from a file."""

import json

import gin
import numpy as np
import pytest
import seqio

from t5lab import gin_setup
from t5lab.data.vocab import get_vocabulary
from tasks.downstream import OFFLINE_SUITE, register_text_task

LENGTHS = {"inputs": 256, "targets": 128}
PREFIXES = {
    "vader_sentiment": "sentiment sentence: ",
    "vader_regression": "sentiment score: ",
    "vader_source": "source: ",
    "bible_en_es": "translate English to Spanish: ",
    "bible_modernize": "modernize: ",
    "bible_paraphrase": "paraphrase sentence1: ",
}
CLASS_TASKS = ("vader_sentiment", "vader_source", "bible_paraphrase")


def test_every_task_is_registered_with_counts_for_proportional_mixing():
    for name in OFFLINE_SUITE:
        task = seqio.get_mixture_or_task(name)
        counts = [task.num_input_examples(split) for split in ("train", "validation", "test")]
        assert counts[0] > 5 * counts[1] > 0 and counts[0] > 5 * counts[2] > 0, name
        assert seqio.mixing_rate_num_examples(task) == counts[0]


@pytest.mark.parametrize("name", OFFLINE_SUITE)
def test_examples_come_out_of_seqio_tokenized_with_eos(name):
    task = seqio.get_mixture_or_task(name)
    vocabulary = task.output_features["targets"].vocabulary
    for split in ("validation", "test"):
        dataset = task.get_dataset(sequence_length=LENGTHS, split=split, shuffle=False)
        for example in dataset.take(3).as_numpy_iterator():
            assert example["inputs_pretokenized"].decode().startswith(PREFIXES[name])
            for key in ("inputs", "targets"):
                ids = example[key]
                assert ids.dtype == np.int32 and 1 < len(ids) <= LENGTHS[key]
                assert ids[-1] == 1 and 1 not in ids[:-1]  # one EOS, at the end
            target = example["targets_pretokenized"].decode()
            decoded = vocabulary.decode(example["targets"][:-1].tolist())
            if name != "bible_en_es":  # the English vocabulary lacks Spanish accents
                assert decoded == target


def test_one_split_streams_exactly_its_counted_examples():
    task = seqio.get_mixture_or_task("vader_sentiment")
    dataset = task.get_dataset(sequence_length=LENGTHS, split="validation", shuffle=False)
    ids = [example["id"] for example in dataset.as_numpy_iterator()]
    assert len(ids) == len(set(ids)) == task.num_input_examples("validation")


@pytest.mark.parametrize("name", CLASS_TASKS)
def test_every_label_can_be_spelled_by_the_default_vocabulary(name):
    # A label with a piece the vocabulary lacks ("not_equivalent": no "_") decodes differently
    # and would score as invalid even when the model is right.
    task = seqio.get_mixture_or_task(name)
    vocabulary = get_vocabulary()
    labels = {e["targets"] for e in task.source.examples("validation")}
    for label in labels:
        assert vocabulary.decode(vocabulary.encode(label)) == label
        assert task.postprocess_fn(label, example=None, is_target=True) >= 0


@pytest.mark.parametrize("name", OFFLINE_SUITE)
def test_answering_every_target_scores_perfectly(name):
    task = seqio.get_mixture_or_task(name)
    targets = [e["targets"] for e in task.source.examples("validation")[::50]]  # all classes
    postprocess = task.postprocess_fn or (lambda text, example=None, is_target=False: text)
    processed = [postprocess(t, example=None, is_target=True) for t in targets]
    scores = {}
    for metric_fn in task.metric_fns:
        scores.update(metric_fn(targets=processed, predictions=list(processed)))
    assert scores and all(value == pytest.approx(100.0) for value in scores.values()), scores


def test_unreadable_answers_score_as_wrong():
    task = seqio.get_mixture_or_task("vader_regression")
    targets = [
        task.postprocess_fn(e["targets"], is_target=True) for e in task.source.examples("test")[:20]
    ]
    predictions = [task.postprocess_fn("no idea") for _ in targets]
    assert min(predictions) < -4.0
    assert task.metric_fns[0](targets=targets, predictions=predictions) == {"pearson_corrcoef": 0.0}


def test_register_text_task_from_a_file(tmp_path):
    train = tmp_path / "pairs.jsonl"
    rows = [{"inputs": f"what is {i} plus {i}", "targets": str(2 * i)} for i in range(60)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    name = register_text_task(name="my_sums", train_path=str(train), input_prefix="add:")
    task = seqio.get_mixture_or_task(name)
    counts = {s: task.num_input_examples(s) for s in ("train", "validation", "test")}
    assert sum(counts.values()) == 60 and min(counts.values()) > 0
    example = next(
        task.get_dataset(sequence_length=LENGTHS, split="test", shuffle=False).as_numpy_iterator()
    )
    assert example["inputs_pretokenized"].decode().startswith("add: what is ")
    assert example["inputs"][-1] == 1
    # Registering again under the same name replaces the task.
    validation = tmp_path / "validation.tsv"
    validation.write_text("what is 100 plus 100\t200\n")
    register_text_task(name="my_sums", train_path=str(train), validation_path=str(validation))
    assert seqio.get_mixture_or_task("my_sums").num_input_examples("validation") == 1


def test_gin_registers_a_text_task_by_binding(tmp_path):
    train = tmp_path / "pairs.tsv"
    train.write_text("".join(f"say {i}\t{i}\n" for i in range(40)))
    gin_setup.parse_flags(
        gin_files=[],
        bindings=["text_task.name=gin_pairs", f"text_task.train_path='{train}'"],
    )
    try:
        name = gin_setup.call("text_task")
    finally:
        gin.clear_config()
    assert name == "gin_pairs"
    assert (
        sum(
            seqio.get_mixture_or_task(name).num_input_examples(s)
            for s in ("train", "validation", "test")
        )
        == 40
    )
