"""A seqio source over ready-made text-to-text examples held in memory.

Examples are `{"id", "inputs", "targets"}` strings. They are built on first use, not when the
task is registered, so `import tasks` stays fast; the example counts seqio needs for
examples-proportional mixing come from the same lazily built lists.
"""

import functools
import random
from collections.abc import Callable, Mapping, Sequence

import seqio
import tensorflow as tf

from t5lab.data.downstream.splits import SPLITS, check_split, hash_fraction

Example = dict[str, str]
ExamplesBySplit = Mapping[str, Sequence[Example]]


class InMemoryExamplesSource(seqio.FunctionDataSource):
    """Examples from `build()`, called once; shuffling is a seeded permutation (deterministic).
    Unshuffled reads come in a fixed hash order, not file order (which is grouped by source).

    `from_tensor_slices` rather than a Python generator keeps the tf.data iterator
    checkpointable, which exact resume needs.
    """

    def __init__(self, build: Callable[[], ExamplesBySplit], splits: Sequence[str] = SPLITS):
        self._build = functools.cache(build)
        super().__init__(dataset_fn=self._dataset_fn, splits=splits, num_input_examples=None)

    def examples(self, split: str) -> Sequence[Example]:
        check_split(split)
        return self._build()[split]

    def num_input_examples(self, split: str) -> int:
        return len(self.examples(split))

    def _dataset_fn(
        self, split: str, shuffle_files: bool, seed: int | None = None
    ) -> tf.data.Dataset:
        items = self.examples(split)
        order = list(range(len(items)))
        if shuffle_files:
            random.Random(0 if seed is None else int(seed)).shuffle(order)
        else:  # a fixed mixed order: the first N examples (quick evaluations) are a fair sample
            order.sort(key=lambda i: hash_fraction(items[i]["id"]))
        columns = {
            key: tf.constant([items[i][key] for i in order], tf.string, shape=[len(order)])
            for key in ("id", "inputs", "targets")
        }
        return tf.data.Dataset.from_tensor_slices(columns)
