"""This host's rows of every global batch: which rows, read from which seqio shards, resumable.

The data is split into `num_shards` seqio shards (by default one per host slice of the
batch); the global batch is one equal piece of every shard, in shard order, and each host
reads only the shards of its rows. Because the batch depends on `num_shards` alone, fixing
it gives the same batches on any number of hosts, and a run can resume on another topology.
Positions are saved under MODEL_DIR, local or a URL (`gs://...`).
"""

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping

import jax
import numpy as np
import tensorflow as tf
from jax.sharding import NamedSharding

from t5lab.data.pipeline import CheckpointableIterator, take_batches
from t5lab.errors import UserError
from t5lab.train import fs

# (shard_index, num_shards, batch_size) -> batched tf.data pipeline of that shard
ShardDataset = Callable[[int, int, int], tf.data.Dataset]


@dataclasses.dataclass(frozen=True)
class HostSlice:
    """The contiguous part of every global batch this process feeds (and reads from disk)."""

    index: int  # which slice: hosts with the same index read the same data
    count: int  # distinct slices over all processes
    size: int  # examples per slice
    writes_position: bool  # the lowest process of its slice saves the data position


def host_slice(*, sharding: NamedSharding, global_batch: int) -> HostSlice:
    """Which rows of the global batch this process's devices hold, from the batch sharding."""
    rows: dict[int, set[tuple[int, int]]] = {}
    for device, index in sharding.devices_indices_map((global_batch,)).items():
        start, stop, _ = index[0].indices(global_batch)
        rows.setdefault(device.process_index, set()).add((start, stop))
    spans = {p: (min(s for s, _ in r), max(e for _, e in r)) for p, r in rows.items()}
    sizes = {hi - lo for lo, hi in spans.values()}
    size = sizes.pop()
    if sizes or global_batch % size or any(lo % size for lo, _ in spans.values()):
        raise UserError(
            "the mesh gives processes unequal or scattered parts of the batch: put `data` "
            "(and `fsdp`) across hosts and `model` within a host"
        )
    mine = spans[jax.process_index()]
    sharing = [p for p, span in spans.items() if span == mine]
    return HostSlice(
        index=mine[0] // size,
        count=global_batch // size,
        size=size,
        writes_position=jax.process_index() == min(sharing),
    )


def global_arrays(local: Mapping[str, np.ndarray], *, sharding: NamedSharding, rows: int) -> dict:
    """This host's rows of a batch -> global jax.Arrays of `rows` examples (every host calls)."""
    return {
        key: jax.make_array_from_process_local_data(sharding, value, (rows,) + value.shape[1:])
        for key, value in local.items()
    }


@dataclasses.dataclass(frozen=True)
class InputLayout:
    num_shards: int
    shards: tuple[int, ...]  # read by this host, in batch order
    shard_batch: int  # examples each shard adds to a global batch
    writes_position: bool


def input_layout(*, global_batch: int, data_shards: int, host: HostSlice) -> InputLayout:
    """Which shards this host reads; `data_shards` 0 = one per host slice of the batch."""
    num_shards = data_shards or host.count
    if num_shards < 1 or num_shards % host.count:
        raise UserError(
            f"train.data_shards = {data_shards} must be a multiple of the {host.count} hosts "
            "that feed different rows of the batch (or 0)"
        )
    if global_batch % num_shards:
        raise UserError(
            f"batch_size {global_batch} is not divisible by the {num_shards} data shards "
            "(train.data_shards, default one per host)"
        )
    per_host = num_shards // host.count
    first = host.index * per_host
    return InputLayout(
        num_shards=num_shards,
        shards=tuple(range(first, first + per_host)),
        shard_batch=global_batch // num_shards,
        writes_position=host.writes_position,
    )


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


class HostInput(Iterator[dict[str, np.ndarray]]):
    """Host-local batches (numpy) with a position saved and restored shard by shard."""

    def __init__(self, *, layout: InputLayout, dataset: ShardDataset):
        self._layout = layout
        self._iterators = {
            shard: CheckpointableIterator(dataset(shard, layout.num_shards, layout.shard_batch))
            for shard in layout.shards
        }

    def __next__(self) -> dict[str, np.ndarray]:
        return _concat([next(iterator) for iterator in self._iterators.values()])

    def _path(self, directory: str, shard: int) -> str:
        return os.path.join(directory, f"shard_{shard}_of_{self._layout.num_shards}")

    def save(self, directory: str) -> None:
        if self._layout.writes_position:
            for shard, iterator in self._iterators.items():
                iterator.save(self._path(directory, shard))

    def restore(self, directory: str) -> None:
        for shard, iterator in self._iterators.items():
            path = self._path(directory, shard)
            if not tf.io.gfile.isdir(path):
                found = fs.glob(os.path.join(directory, "shard_*_of_*"))
                saved = found[0].rsplit("_of_", 1)[1] if found else None
                raise UserError(
                    f"the data position in {directory} was saved with {saved} data shards, "
                    f"this run reads {self._layout.num_shards}: set train.data_shards = {saved}"
                    if saved
                    else f"no data position for shard {shard} in {directory}"
                )
            iterator.restore(path)


def host_eval_batches(*, layout: InputLayout, dataset: ShardDataset, count: int) -> list[dict]:
    """This host's rows of the first `count` evaluation batches (fewer if a shard runs out)."""
    if count < 1:
        return []
    per_shard = [
        take_batches(dataset(shard, layout.num_shards, layout.shard_batch), count)
        for shard in layout.shards
    ]
    return [_concat(list(parts)) for parts in zip(*per_shard, strict=False)]
