"""`t5lab mixture`: the per-task table for a registered mixture and for one defined by gin."""

import re

import pytest
import seqio
import tensorflow as tf

from t5lab import cli
from t5lab.data import mixing

COUNTS = {"mixcmd_small": 50, "mixcmd_large": 20_000}


def _register_task(name: str, train_examples: int) -> None:
    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices({"inputs": ["a"], "targets": ["b"]})

    vocabulary = seqio.PassThroughVocabulary(size=8)
    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(
            dataset_fn=dataset_fn,
            splits=("train", "validation"),
            num_input_examples={"train": train_examples, "validation": 1},
        ),
        preprocessors=[],
        output_features={"inputs": seqio.Feature(vocabulary), "targets": seqio.Feature(vocabulary)},
    )


@pytest.fixture(scope="module", autouse=True)
def fake_tasks() -> None:
    for name, count in COUNTS.items():
        _register_task(name, count)


def _rows(output: str) -> dict[str, list[str]]:
    """Table rows by task name: the cells split on runs of 2+ spaces."""
    rows = {}
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] in COUNTS:
            rows[cells[0]] = cells[1:]
    return rows


def test_registered_mixture_table_has_rates_shares_and_flags_repeats(capsys):
    mixing.define_mixture(
        name="mixcmd_mix", tasks=list(COUNTS), rate=mixing.ExamplesProportional(cap=1000)
    )
    status = cli.main(["mixture", "mixcmd_mix", "--train_steps", "100", "--batch_size", "11"])
    out = capsys.readouterr().out
    assert status == 0, out
    rows = _rows(out)
    # rates min(50, 1000) = 50 and min(20000, 1000) = 1000: shares 50/1050 and 1000/1050.
    # Seen in 100 x 11 = 1100 examples: 52.4 and 1047.6, i.e. 1.05 and 0.05 epochs.
    assert rows["mixcmd_small"] == ["50", "50", "4.76%", "52", "1.05 !"]
    assert rows["mixcmd_large"] == ["20,000", "1,000", "95.24%", "1,048", "0.05"]
    assert re.search(r"total\s+100\.00%\s+1,100", out)
    assert "unpacked" in out and "over-fitting" in out


def test_a_lone_task_is_every_batch(capsys):
    assert cli.main(["mixture", "mixcmd_small", "--train_steps", "10", "--batch_size", "10"]) == 0
    assert _rows(capsys.readouterr().out)["mixcmd_small"] == ["50", "1", "100.00%", "100", "2.00 !"]


def test_mixture_defined_by_gin_flags(capsys):
    status = cli.main(
        [
            "mixture",
            "--gin_file=mixtures/equal.gin",
            "--gin.define_mixture.name=mixcmd_gin",
            "--gin.define_mixture.tasks=['mixcmd_small', 'mixcmd_large']",
            "--train_steps=10",
            "--batch_size=4",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    rows = _rows(out)
    assert rows["mixcmd_small"] == ["50", "1", "50.00%", "20", "0.40"]
    assert rows["mixcmd_large"] == ["20,000", "1", "50.00%", "20", "0.00"]
    assert "!" not in out  # nothing repeats


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["mixture", "mixcmd_mx", "--train_steps", "1", "--batch_size", "1"],
            "unknown mixture 'mixcmd_mx' (did you mean 'mixcmd_mix'",
        ),
        (["mixture", "mixcmd_mix", "--batch_size", "1"], "give --train_steps"),
        (
            ["mixture", "--gin_file=mixtures/equal.gin", "--train_steps=1", "--batch_size=1"],
            "not define_mixture.tasks",
        ),
    ],
)
def test_mistakes_are_one_line_errors(capsys, argv, message):
    mixing.define_mixture(name="mixcmd_mix", tasks=list(COUNTS), rate=mixing.Equal())
    assert cli.main(argv) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("t5lab: error: ") and message in err and "\n" not in err
