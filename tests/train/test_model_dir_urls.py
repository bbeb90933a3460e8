"""A MODEL_DIR on an object store (gs://...): every piece of model-dir I/O outside orbax.

TensorFlow's in-memory filesystem (`ram://`) stands in for GCS: like `gs://` it is reached
only through tf.io.gfile, so a piece that used `open`/`os`/`shutil` would write a local
`ram:` directory instead (each test runs in an empty working directory and checks it stays
empty). Orbax and tensorstore do not know `ram://`, so the checkpoints themselves, and a
whole `train()`, are not run here; `test_trainer.py` runs those on a local disk.
"""

import json
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from t5lab.convert.native import load_params
from t5lab.errors import UserError
from t5lab.train import fs
from t5lab.train.checkpoints import DataPositions
from t5lab.train.host_input import HostInput, HostSlice, input_layout
from t5lab.train.reporting import MetricsWriter
from t5lab.train.trainer import prepare_model_dir, write_config


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory: local litter from a URL path would land here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def url():
    return f"ram://{uuid.uuid4().hex}/run"


def test_ram_urls_reach_tensorflows_memory_filesystem_not_the_disk(workdir, url):
    tf.io.gfile.makedirs(url)
    fs.write_text(f"{url}/a.txt", "hello")
    assert fs.read_text(f"{url}/a.txt") == "hello"
    assert fs.list_dir(url) == ["a.txt"]
    assert os.listdir(workdir) == []


def test_absolute_keeps_urls_and_anchors_local_paths(workdir):
    assert fs.absolute("gs://bucket/runs/xxl") == "gs://bucket/runs/xxl"
    assert fs.absolute("runs/a") == os.path.join(str(workdir), "runs", "a")


def test_model_dir_preparation_and_config_on_a_url(workdir, url):
    assert prepare_model_dir(url) == url
    write_config(model_dir=url, config_text="TRAIN_STEPS = 4\n")
    assert fs.list_dir(url) == ["config.gin"]  # the write probe is gone
    assert fs.read_text(f"{url}/config.gin") == "TRAIN_STEPS = 4\n"
    assert os.listdir(workdir) == []


def test_unusable_model_dirs_are_one_line_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"is not writable: .*not a directory"):
        prepare_model_dir(str(blocker / "run"))
    with pytest.raises(UserError, match=r"'nosuch://b/run' is not writable: .*'nosuch'"):
        prepare_model_dir("nosuch://b/run")


def _records(text: str) -> list[tuple[str, int, float]]:
    return [(r["split"], r["step"], r["loss"]) for r in map(json.loads, text.splitlines())]


def _run_segment(model_dir: str, steps: range) -> None:
    writer = MetricsWriter(model_dir=model_dir)
    try:
        for step in steps:
            writer.write(split="train", step=step, metrics={"loss": 1.0 / step})
            # the stored file is complete after every write, not only at close
            assert _records(fs.read_text(f"{model_dir}/metrics.jsonl"))[-1][1] == step
        writer.write(split="validation", step=steps[-1], metrics={"loss": 0.5})
    finally:
        writer.close()


def _scalars(events_dir: str) -> list[tuple[int, float]]:
    found = []
    for name in fs.list_dir(events_dir):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(events_dir, name)):
            found += [(event.step, value.simple_value) for value in event.summary.value]
    return sorted(found)


@pytest.mark.parametrize("where", ["url", "local"])
def test_metrics_survive_a_resume_on_url_and_local_dirs(workdir, url, where):
    model_dir = url if where == "url" else str(workdir / "run")
    tf.io.gfile.makedirs(model_dir)
    _run_segment(model_dir, range(1, 4))
    steps, losses = zip(*_scalars(f"{model_dir}/train"), strict=True)  # TensorBoard events
    assert steps == (1, 2, 3)
    np.testing.assert_allclose(losses, [1.0, 0.5, 1 / 3], rtol=1e-6)
    _run_segment(model_dir, range(4, 6))  # a resumed run: a new writer, same directory
    expected = [("train", s, 1.0 / s) for s in (1, 2, 3)] + [("validation", 3, 0.5)]
    expected += [("train", s, 1.0 / s) for s in (4, 5)] + [("validation", 5, 0.5)]
    assert _records(fs.read_text(f"{model_dir}/metrics.jsonl")) == expected
    if where == "url":
        assert os.listdir(workdir) == []


def test_a_torn_last_line_on_a_url_stays_on_its_own_line(url):
    tf.io.gfile.makedirs(url)
    fs.write_text(f"{url}/metrics.jsonl", '{"split": "train", "step": 1, "loss": 2.0}\n{"spl')
    writer = MetricsWriter(model_dir=url)
    writer.write(split="train", step=2, metrics={"loss": 0.5})
    writer.write(split="validation", step=2, metrics={"loss": 0.5})
    writer.close()
    lines = fs.read_text(f"{url}/metrics.jsonl").splitlines()
    assert lines[1] == '{"spl'
    assert _records("\n".join(lines[2:])) == [("train", 2, 0.5), ("validation", 2, 0.5)]


def _host_input(num_shards: int) -> HostInput:
    host = HostSlice(index=0, count=1, size=4, writes_position=True)

    def dataset(index: int, count: int, rows: int) -> tf.data.Dataset:
        return tf.data.Dataset.range(1000).shard(count, index).batch(rows).map(lambda x: {"x": x})

    layout = input_layout(global_batch=4, data_shards=num_shards, host=host)
    return HostInput(layout=layout, dataset=dataset)


def test_data_positions_save_restore_and_clean_up_on_a_url(workdir, url):
    positions = DataPositions(model_dir=url)
    reader = _host_input(2)
    for step in (1, 2, 3):
        next(reader)
        positions.save(step=step, iterator=reader)
    expected = next(reader)["x"]
    assert fs.list_dir(positions.directory) == ["step_1", "step_2", "step_3"]
    assert fs.list_dir(positions.path(3)) == ["shard_0_of_2", "shard_1_of_2"]

    resumed = _host_input(2)
    positions.restore(step=3, iterator=resumed)
    np.testing.assert_array_equal(next(resumed)["x"], expected)

    with pytest.raises(UserError, match="saved with 2 data shards, this run reads 4"):
        positions.restore(step=3, iterator=_host_input(4))

    positions.keep_only([2, 3])
    assert fs.list_dir(positions.directory) == ["step_2", "step_3"]
    positions.keep_only([])
    assert fs.list_dir(positions.directory) == []
    DataPositions(model_dir=f"{url}/never_saved").keep_only([1])  # nothing there: no error


def test_saving_a_data_position_on_a_url_leaves_the_local_disk_alone(workdir, url):
    DataPositions(model_dir=url).save(step=1, iterator=_host_input(1))
    assert os.listdir(workdir) == []


def test_an_initial_checkpoint_url_is_not_made_a_local_path(url):
    with pytest.raises(UserError, match=f"no converted parameters at '{url}' \\(expected {url}/"):
        load_params(path=url)
