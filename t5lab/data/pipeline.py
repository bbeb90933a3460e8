"""From a registered seqio task or mixture to batches of numpy arrays, with a resumable position.

TensorFlow stays on the host: it only builds tf.data pipelines, and this module hides any
accelerator from it before it touches one. The iterator's position (including shuffle
buffers) is saved with `tf.train.Checkpoint`, so a resumed run reads exactly the batches an
uninterrupted run would have read.
"""

import os
from collections.abc import Iterator, Mapping

import numpy as np
import seqio
import tensorflow as tf

from t5lab.errors import UserError, did_you_mean

tf.config.set_visible_devices([], "GPU")
tf.config.set_visible_devices([], "TPU") if tf.config.list_physical_devices("TPU") else None


def registered_names() -> list[str]:
    """All task and mixture names seqio knows (after `import tasks`)."""
    return sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()))


def get_task_or_mixture(name: str) -> seqio.Task | seqio.Mixture:
    """The registered task or mixture, or a UserError that lists the closest names."""
    if name in seqio.MixtureRegistry.names():
        return seqio.MixtureRegistry.get(name)
    if name in seqio.TaskRegistry.names():
        return seqio.TaskRegistry.get(name)
    names = registered_names()
    hint = did_you_mean(name, names) or f" (known: {', '.join(names[:12])})"
    raise UserError(f"unknown task or mixture {name!r}{hint}")


def output_vocabulary(name: str) -> seqio.Vocabulary:
    """The targets vocabulary of a task or mixture: it fixes the model's vocabulary size."""
    return get_task_or_mixture(name).output_features["targets"].vocabulary


def batched_dataset(
    *,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    split: str,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
    pack: bool = True,
    num_epochs: int | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
) -> tf.data.Dataset:
    """Model-ready batches (EncDecFeatureConverter features) from one host's shard."""
    get_task_or_mixture(mixture_or_task_name)
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    dataset = seqio.get_dataset(
        mixture_or_task_name=mixture_or_task_name,
        task_feature_lengths=dict(task_feature_lengths),
        dataset_split=split,
        shuffle=shuffle,
        num_epochs=num_epochs,
        feature_converter=seqio.EncDecFeatureConverter(pack=pack),
        shard_info=seqio.ShardInfo(index=shard_index, num_shards=num_shards),
        use_cached=False,
        seed=seed,
    )
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.inject_prefetch = False
    return dataset.batch(batch_size, drop_remainder=True).with_options(options).prefetch(2)


def _to_numpy(batch: Mapping[str, tf.Tensor]) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in batch.items()}


class CheckpointableIterator(Iterator[dict[str, np.ndarray]]):
    """A tf.data iterator yielding numpy batches whose position can be saved and restored."""

    def __init__(self, dataset: tf.data.Dataset):
        self._iterator = iter(dataset)
        self._checkpoint = tf.train.Checkpoint(iterator=self._iterator)

    def __next__(self) -> dict[str, np.ndarray]:
        return _to_numpy(next(self._iterator))

    def save(self, directory: str) -> None:
        """Write the position under `directory` (one per host: the caller names it)."""
        tf.io.gfile.makedirs(directory)  # also on gs:// MODEL_DIRs
        self._checkpoint.write(os.path.join(directory, "iterator"))

    def restore(self, directory: str) -> None:
        self._checkpoint.read(os.path.join(directory, "iterator")).assert_consumed()


def take_batches(dataset: tf.data.Dataset, count: int) -> list[dict[str, np.ndarray]]:
    """The first `count` batches (fewer if the split is smaller), e.g. a fixed eval set."""
    return [_to_numpy(batch) for batch in dataset.take(count)]


def first_batches(
    *,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    split: str,
    batch_size: int,
    count: int,
    pack: bool = True,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """A fixed evaluation set: the first `count` unshuffled batches of a split."""
    dataset = batched_dataset(
        mixture_or_task_name=mixture_or_task_name,
        task_feature_lengths=task_feature_lengths,
        split=split,
        batch_size=batch_size,
        shuffle=False,
        seed=seed,
        pack=pack,
    )
    return take_batches(dataset, count)
