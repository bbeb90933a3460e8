"""Mixing rates against their formulas and seqio's own rate; mixture definition and shares."""

from pathlib import Path

import gin
import pytest
import seqio
import tensorflow as tf

from t5lab import gin_setup
from t5lab.data import mixing
from t5lab.data.corpus import sotu_documents
from t5lab.errors import UserError

GIN_MIXTURES = Path(__file__).resolve().parents[2] / "gin" / "mixtures"
COUNTS = {"mixtest_tiny": 7, "mixtest_mid": 3000, "mixtest_huge": 5_000_000}


def _register_task(name: str, train_examples: int | None) -> seqio.Task:
    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices({"inputs": ["a"], "targets": ["b"]})

    counts = None if train_examples is None else {"train": train_examples, "validation": 1}
    vocabulary = seqio.PassThroughVocabulary(size=8)
    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(
            dataset_fn=dataset_fn, splits=("train", "validation"), num_input_examples=counts
        ),
        preprocessors=[],
        output_features={
            "inputs": seqio.Feature(vocabulary),
            "targets": seqio.Feature(vocabulary),
        },
    )


@pytest.fixture(scope="module")
def fake_tasks() -> dict[str, seqio.Task]:
    tasks = {name: _register_task(name, count) for name, count in COUNTS.items()}
    tasks["mixtest_uncounted"] = _register_task("mixtest_uncounted", None)
    return tasks


@pytest.mark.parametrize("cap", [2**16, 2**21])
def test_examples_proportional_is_capped_count_and_seqios_rate(fake_tasks, cap):
    rate = mixing.ExamplesProportional(cap=cap)
    for name, count in COUNTS.items():
        task = fake_tasks[name]
        assert rate(task) == min(count, cap)
        assert rate(task) == seqio.mixing_rate_num_examples(task, maximum=cap)


@pytest.mark.parametrize("temperature", [2.0, 4.0, 8.0])
def test_temperature_scaled_is_capped_count_to_one_over_t(fake_tasks, temperature):
    rate = mixing.TemperatureScaled(temperature=temperature, cap=2**21)
    for name, count in COUNTS.items():
        task = fake_tasks[name]
        assert rate(task) == pytest.approx(min(count, 2**21) ** (1 / temperature), rel=1e-12)
        assert rate(task) == seqio.mixing_rate_num_examples(
            task, maximum=2**21, temperature=temperature
        )
    # The cap bites before the temperature: the huge task is worth exactly K^(1/T).
    assert rate(fake_tasks["mixtest_huge"]) == pytest.approx(2 ** (21 / temperature))


def test_exponent_smoothed_is_count_to_the_s_and_equal_is_one(fake_tasks):
    smoothed, equal = mixing.ExponentSmoothed(exponent=0.7), mixing.Equal()
    for name, count in COUNTS.items():
        task = fake_tasks[name]
        assert smoothed(task) == pytest.approx(count**0.7, rel=1e-12)
        assert smoothed(task) == seqio.mixing_rate_num_examples(task, temperature=1 / 0.7)
        assert equal(task) == 1.0


def test_a_task_without_counts_is_a_clear_error_naming_it(fake_tasks):
    with pytest.raises(UserError, match="'mixtest_uncounted' declares no number of train"):
        mixing.ExamplesProportional(cap=10)(fake_tasks["mixtest_uncounted"])
    assert mixing.Equal()(fake_tasks["mixtest_uncounted"]) == 1.0  # needs no count


@pytest.mark.parametrize(
    "make",
    [
        lambda: mixing.ExamplesProportional(cap=0),
        lambda: mixing.TemperatureScaled(temperature=0.0),
        lambda: mixing.ExponentSmoothed(exponent=1.5),
    ],
)
def test_nonsense_knobs_are_user_errors(make):
    with pytest.raises(UserError):
        make()


def test_define_mixture_replaces_and_shares_sum_to_one(fake_tasks):
    names = list(COUNTS)
    rate = mixing.ExamplesProportional(cap=2**16)
    assert mixing.define_mixture(name="mixtest_mix", tasks=names[:1], rate=rate) == "mixtest_mix"
    mixing.define_mixture(name="mixtest_mix", tasks=names, rate=rate)  # replaces, no error
    shares = mixing.task_shares(mixture_name="mixtest_mix", train_steps=100, batch_size=8)
    assert [s.task for s in shares] == sorted(names)
    assert sum(s.share for s in shares) == pytest.approx(1.0, abs=1e-12)
    capped = {name: min(count, 2**16) for name, count in COUNTS.items()}
    for share in shares:
        expected = capped[share.task] / sum(capped.values())
        assert share.share == pytest.approx(expected, rel=1e-12)
        assert share.examples_seen == pytest.approx(expected * 100 * 8, rel=1e-12)
        assert share.epochs == pytest.approx(share.examples_seen / COUNTS[share.task], rel=1e-12)


def test_define_mixture_errors_are_one_clear_line(fake_tasks):
    with pytest.raises(UserError, match="did you mean 'mixtest_tiny'"):
        mixing.define_mixture(name="mixtest_bad", tasks=["mixtest_tiyn"], rate=mixing.Equal())
    with pytest.raises(UserError, match="declares no number"):
        mixing.define_mixture(
            name="mixtest_bad", tasks=["mixtest_uncounted"], rate=mixing.ExamplesProportional(cap=9)
        )
    with pytest.raises(UserError, match=r"@equal\(\)"):  # the class itself, not an instance
        mixing.define_mixture(name="mixtest_bad", tasks=["mixtest_tiny"], rate=mixing.Equal)
    with pytest.raises(UserError, match="listed twice"):
        mixing.define_mixture(name="mixtest_bad", tasks=["mixtest_tiny"] * 2, rate=mixing.Equal())
    assert "mixtest_bad" not in seqio.MixtureRegistry.names()  # nothing half-registered


def test_leave_one_out_drops_only_the_target():
    tasks = ["a", "b", "c", "d"]
    assert mixing.leave_one_out(tasks=tasks, target="c") == ["a", "b", "d"]
    for target in tasks:
        rest = mixing.leave_one_out(tasks=tasks, target=target)
        assert target not in rest and len(rest) == len(tasks) - 1
    with pytest.raises(UserError, match="did you mean 'b'"):
        mixing.leave_one_out(tasks=tasks, target="bb")


def test_each_gin_mixture_file_binds_its_named_strategy(fake_tasks):
    """gin/mixtures/<name>.gin defines exactly STRATEGIES[<name>], through the real gin path."""
    files = sorted(GIN_MIXTURES.glob("*.gin"))
    assert sorted(f.stem for f in files) == sorted(mixing.STRATEGIES)
    for path in files:
        gin_setup.parse_flags(
            gin_files=[str(path)],
            bindings=[
                "define_mixture.name = 'mixtest_gin'",
                "define_mixture.tasks = ['mixtest_mid']",
            ],
        )
        assert gin_setup.call("define_mixture") == "mixtest_gin"
        rate = seqio.MixtureRegistry.get("mixtest_gin").rate_per_task_name["mixtest_mid"]
        assert rate == mixing.STRATEGIES[path.stem], path.name
    gin.clear_config()


def test_sotu_span_corruption_declares_its_real_example_counts():
    """The counts mixing reads are the pipeline's examples at inputs 512, not the speeches.

    Both splits are recounted with the default vocabulary (about 4 s), so a new vocabulary or
    chunking that changes them fails here.
    """
    import tasks  # noqa: F401
    from tasks.pretraining import SOTU_SPAN_CORRUPTION_EXAMPLES

    task = seqio.TaskRegistry.get("sotu_span_corruption")
    assert mixing.train_examples(task) == SOTU_SPAN_CORRUPTION_EXAMPLES["train"]
    assert task.num_input_examples("train") > 10 * len(sotu_documents(split="train"))
    for split in ("train", "validation"):
        dataset = task.get_dataset(
            {"inputs": 512, "targets": 114}, split=split, shuffle=False, use_cached=False
        )
        counted = int(dataset.reduce(0, lambda count, _: count + 1))
        assert counted == SOTU_SPAN_CORRUPTION_EXAMPLES[split], split
