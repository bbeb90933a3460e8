"""Postprocessors map both model answers and targets; unreadable answers get a sentinel."""

import functools

from t5lab.eval.postprocessors import lower_text, string_label_to_class_id, string_to_float


def test_string_to_float_reads_numbers_and_defaults_otherwise():
    assert string_to_float("3.2") == 3.2
    assert string_to_float("three", is_target=False) == -1.0
    assert string_to_float("", default=0.0) == 0.0


def test_string_label_to_class_id_as_a_seqio_postprocess_fn():
    postprocess = functools.partial(string_label_to_class_id, label_classes=("no", "yes"))
    assert postprocess("yes", example={}, is_target=True) == 1
    assert postprocess("no") == 0
    assert postprocess("maybe") == -1
    assert string_label_to_class_id("maybe", label_classes=("no",), default=7) == 7


def test_lower_text():
    assert lower_text("The Cat", example=None, is_target=True) == "the cat"
