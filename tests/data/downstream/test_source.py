"""Unshuffled reads (evaluation) are a fair sample from their first example on."""

import collections

import seqio

import tasks.downstream  # noqa: F401  (registers)


def test_first_examples_of_an_unshuffled_split_mix_every_source():
    task = seqio.get_mixture_or_task("vader_source")
    dataset = task.source.get_dataset(split="test", shuffle=False)
    first = [ex["targets"].decode() for ex in dataset.take(200).as_numpy_iterator()]
    counts = collections.Counter(first)
    everything = collections.Counter(ex["targets"] for ex in task.source.examples("test"))
    # file order is grouped by source (all movie reviews first); the fixed hash order is not:
    # each source's share of the first 200 is within 10 points of its share of the split.
    total = sum(everything.values())
    for label, count in everything.items():
        assert abs(counts[label] / 200 - count / total) < 0.10, (label, counts)
