"""Copies of registered tasks with another vocabulary, from Python and from gin."""

import gin
import pytest
import seqio
import tensorflow_datasets as tfds

import tasks.glue  # noqa: F401  (registers glue_cola_v002)
from t5lab import gin_setup
from t5lab.errors import UserError
from tasks.text_to_text import task_with_vocabulary


def test_copy_tokenizes_with_the_new_vocabulary_and_keeps_metrics():
    bytes_vocabulary = seqio.ByteVocabulary()
    name = task_with_vocabulary(task_name="glue_cola_v002", vocabulary=bytes_vocabulary)
    original = seqio.get_mixture_or_task("glue_cola_v002")
    copy = seqio.get_mixture_or_task(name)
    assert name == "glue_cola_v002_custom_vocab"
    assert copy.metric_fns == original.metric_fns
    assert copy.postprocess_fn("acceptable") == original.postprocess_fn("acceptable") == 1
    with tfds.testing.mock_data(num_examples=2):
        dataset = copy.get_dataset(
            sequence_length={"inputs": 512, "targets": 32},
            split="validation",
            shuffle=False,
            try_in_mem_cache=False,
        )
        examples = list(dataset.as_numpy_iterator())
    for example in examples:
        text = example["inputs_pretokenized"]
        assert list(example["inputs"]) == list(bytes_vocabulary.encode(text.decode())) + [1]


def test_unknown_or_mixture_names_are_user_errors():
    with pytest.raises(UserError, match="did you mean 'glue_cola_v002'"):
        task_with_vocabulary(task_name="glue_cola_v02", vocabulary=seqio.ByteVocabulary())


def test_gin_selects_a_copy_by_binding():
    gin_setup.parse_flags(
        gin_files=[],
        bindings=[
            "task_with_vocabulary.task_name=glue_sst2_v002",
            "task_with_vocabulary.vocabulary=@get_vocabulary()",
            "get_vocabulary.kind=byte",
        ],
    )
    try:
        name = gin_setup.call("task_with_vocabulary")
    finally:
        gin.clear_config()
    vocabulary = seqio.get_mixture_or_task(name).output_features["targets"].vocabulary
    assert isinstance(vocabulary, seqio.ByteVocabulary)
