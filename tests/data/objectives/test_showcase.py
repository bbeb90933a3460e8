"""`list_objectives` / `show_objective`: every objective listed, renderings match the pipeline."""

import re
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf

from t5lab.data.objectives import detection, registry, showcase
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError

VOCAB = get_vocabulary()
TEXT = (
    "The President shall from time to time give to the Congress information of the State of "
    "the Union, and recommend to their consideration such measures as he shall judge necessary."
)


def _pipeline(name, *, knobs=None, inputs_length=64, targets_length=256, seed=0, text=TEXT):
    """The objective's examples computed here, independently of showcase.run_objective."""
    objective = registry.get(name)
    task_name = f"test_show_{uuid.uuid4().hex}"
    seqio.TaskRegistry.add(
        task_name,
        source=seqio.FunctionDataSource(
            lambda split, shuffle_files, seed=None: tf.data.Dataset.from_tensors({"text": text}),
            splits=["train"],
        ),
        preprocessors=objective.build(**(knobs or {})),
        output_features={
            "inputs": seqio.Feature(VOCAB, add_eos=True),
            "targets": seqio.Feature(VOCAB, add_eos=True),
        },
    )
    try:
        ds = seqio.TaskRegistry.get(task_name).get_dataset(
            {"inputs": inputs_length, "targets": targets_length},
            split="train",
            shuffle=False,
            seed=seed,
            use_cached=False,
        )
        return list(ds.as_numpy_iterator())
    finally:
        seqio.TaskRegistry.remove(task_name)


def test_list_mentions_every_objective_with_its_paper_and_knobs():
    table = showcase.list_objectives()
    lines = table.splitlines()
    assert len(lines) == 2 + len(registry.names())  # header, rule, one row each
    assert len({len(line) for line in lines}) == 1  # aligned columns
    for name in registry.names():
        objective = registry.get(name)
        row = next(line for line in lines if line.startswith(f"| {name} "))
        assert objective.paper in row and objective.summary in row
        for knob, default in objective.knobs.items():
            assert f"{knob}={default!r}" in row


@pytest.mark.parametrize(
    "name", ["span_corruption", "replaced_token_detection", "inserted_token_detection"]
)
def test_show_renders_what_the_pipeline_makes(name):
    rendered = showcase.show_objective(name=name, text=TEXT, seed=3)
    expected = _pipeline(name, seed=3)
    assert expected and f"examples: {len(expected)}" in rendered
    for ex in expected:
        for key in ("inputs", "targets"):
            ids = ex[key]
            text = showcase.decode_visible(VOCAB, ids)
            assert f"{key} ({len(ids)} tokens): {text}\n" in rendered + "\n"
            assert "  pieces: " + " ".join(showcase.piece(VOCAB, t) for t in ids) in rendered
            assert ids[-1] == 1 and text.endswith("</s>")
    assert registry.get(name).paper in rendered
    tokens = VOCAB.encode(TEXT)
    assert f"text tokens ({len(tokens)}):" in rendered
    has_mask = registry.get(name).noise_mask is not None
    assert ("noise mask" in rendered) == has_mask


def test_show_detection_marks_are_the_changed_tokens():
    rendered = showcase.show_objective(
        name="replaced_token_detection", text=TEXT, knobs={"replace_rate": 0.5}, seed=1
    )
    (ex,) = showcase.run_objective(
        name="replaced_token_detection", text=TEXT, knobs={"replace_rate": 0.5}, seed=1
    )
    original = np.asarray(VOCAB.encode(TEXT))
    positions = detection.decode_replaced_positions(
        inputs=ex["inputs"], targets=ex["targets"], marker_id=detection.marker_id(VOCAB)
    )
    assert len(positions) == round(len(original) * 0.5)  # the knob reached the pipeline
    assert np.flatnonzero(original != ex["inputs"][:-1]).tolist() == positions
    targets_line = next(line for line in rendered.splitlines() if line.startswith("targets ("))
    assert targets_line.count("<extra_id_0>") == len(positions)
    assert "knobs: replace_rate=0.5, sampler='uniform'" in rendered


def test_show_noise_mask_brackets_count():
    rendered = showcase.show_objective(name="span_corruption", text=TEXT)
    lines = rendered.splitlines()
    line = lines[next(i for i, x in enumerate(lines) if x.startswith("noise mask")) + 1]
    count = int(re.search(r"\[corrupted\], (\d+) of", rendered).group(1))
    assert line.count("[") == count == round(len(VOCAB.encode(TEXT)) * 0.15)


def test_show_with_byte_vocabulary_keeps_sentinels_visible():
    vocab = seqio.ByteVocabulary(extra_ids=100)
    rendered = showcase.show_objective(
        name="span_corruption", text="Hello world, a small test.", vocabulary=vocab
    )
    assert "<extra_id_0>" in rendered and "</s>" in rendered
    assert "▁ w o r l d" in rendered  # spaces shown as ▁ in the pieces


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="span_corruptoin"), "did you mean 'span_corruption'"),
        (dict(name="span_corruption", knobs={"noise_densty": 0.2}), "did you mean 'noise_density'"),
        (dict(name="replaced_token_detection", knobs={"replace_rate": 2.0}), "replace_rate"),
        (dict(name="span_corruption", text="   "), "empty"),
        (dict(name="span_corruption", inputs_length=1), "inputs_length"),
    ],
)
def test_bad_names_and_knobs_raise_user_error(kwargs, match):
    kwargs = {"text": TEXT, **kwargs}
    with pytest.raises(UserError, match=match):
        showcase.show_objective(**kwargs)
    assert not [n for n in seqio.TaskRegistry.names() if n.startswith("_t5lab_show_")]
