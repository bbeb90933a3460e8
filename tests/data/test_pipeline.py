"""Batches from a registered task, and an iterator position that survives a restart."""

import numpy as np
import pytest

import tasks  # noqa: F401
from t5lab.data.pipeline import CheckpointableIterator, batched_dataset, get_task_or_mixture
from t5lab.errors import UserError

LENGTHS = {"inputs": 32, "targets": 8}


def _dataset(seed=3, **kwargs):
    return batched_dataset(
        mixture_or_task_name="sotu_span_corruption",
        task_feature_lengths=LENGTHS,
        split="train",
        batch_size=4,
        shuffle=True,
        seed=seed,
        **kwargs,
    )


def test_batches_have_the_encoder_decoder_features_and_lengths():
    batch = next(CheckpointableIterator(_dataset()))
    assert batch["encoder_input_tokens"].shape == (4, 32)
    assert batch["decoder_target_tokens"].shape == (4, 8)
    assert {"encoder_segment_ids", "decoder_positions", "decoder_loss_weights"} <= set(batch)
    # span corruption fills the encoder exactly: no padding in full chunks
    assert (batch["encoder_input_tokens"] != 0).mean() > 0.9


@pytest.mark.parametrize(
    "task", ["sotu_span_corruption", "sotu_nsp", "sotu_bart_infilling_permutation"]
)
def test_restored_iterator_continues_exactly_where_it_was_saved(tmp_path, task):
    def dataset():
        return batched_dataset(
            mixture_or_task_name=task,
            task_feature_lengths={"inputs": 32, "targets": 32},
            split="train",
            batch_size=4,
            shuffle=True,
            seed=3,
        )

    first = CheckpointableIterator(dataset())
    for _ in range(3):
        next(first)
    first.save(str(tmp_path))
    expected = [next(first) for _ in range(3)]

    second = CheckpointableIterator(dataset())
    second.restore(str(tmp_path))
    for want in expected:
        got = next(second)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_seed_changes_the_order_and_is_reproducible():
    a, b, c = (next(CheckpointableIterator(_dataset(seed=s))) for s in (1, 1, 2))
    np.testing.assert_array_equal(a["encoder_input_tokens"], b["encoder_input_tokens"])
    assert not np.array_equal(a["encoder_input_tokens"], c["encoder_input_tokens"])


def test_hosts_read_disjoint_shards():
    shards = [
        next(CheckpointableIterator(_dataset(shard_index=i, num_shards=2)))["encoder_input_tokens"]
        for i in range(2)
    ]
    rows = [{tuple(row) for row in shard} for shard in shards]
    assert not rows[0] & rows[1]


def test_unknown_task_names_the_closest():
    with pytest.raises(UserError, match="did you mean 'sotu_span_corruption'"):
        get_task_or_mixture("sotu_span_corruptio")
