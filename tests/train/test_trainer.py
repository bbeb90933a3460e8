"""The train() loop: learning, exact resume after SIGKILL, SIGTERM checkpoints, NaN stops."""

import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks  # noqa: F401  (registers sotu_span_corruption)
from t5lab.train import optimizers
from t5lab.train.checkpoints import Checkpointer
from t5lab.train.trainer import TrainingDiverged, train
from tests.conftest import FIXTURES, MICRO_CONFIG, REPO

MICRO = MICRO_CONFIG
LENGTHS = {"inputs": 32, "targets": 12}


def _train(model_dir, **overrides):
    kwargs = dict(
        model_dir=str(model_dir),
        mixture_or_task_name="sotu_span_corruption",
        task_feature_lengths=LENGTHS,
        model_config=MICRO,
        optimizer=optimizers.adafactor(
            learning_rate=optimizers.rsqrt_schedule(warmup_steps=10, linear_warmup=True)
        ),
        train_steps=12,
        batch_size=8,
        eval_every_steps=4,
        eval_batches=2,
        checkpoint_every_steps=4,
        log_every_steps=4,
        show_progress=False,
    )
    kwargs.update(overrides)
    return train(**kwargs)


def _params(model_dir, step):
    checkpointer = Checkpointer(model_dir=str(model_dir))
    try:
        return jax.tree.map(np.asarray, checkpointer.restore_params(step=step))
    finally:
        checkpointer.close()


def test_validation_loss_falls_and_outputs_are_written(tmp_path):
    summary = _train(tmp_path, train_steps=40, eval_every_steps=40, checkpoint_every_steps=20)
    assert summary.final_step == 40 and summary.stopped_by is None
    assert summary.last_validation["loss"] < summary.first_validation["loss"] - 1.0
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["20", "40"]
    assert (tmp_path / "metrics.jsonl").read_text().count('"split": "validation"') == 2
    assert any(name.startswith("events") for name in os.listdir(tmp_path / "train"))


def test_resume_continues_from_latest_checkpoint(tmp_path):
    first = _train(tmp_path, train_steps=8)
    second = _train(tmp_path, train_steps=12)
    assert (first.final_step, second.start_step, second.final_step) == (8, 8, 12)


def test_nan_loss_stops_with_last_good_checkpoint_intact(tmp_path):
    exploding = optimizers.adamw(
        learning_rate=lambda step: jnp.where(step < 3, 1e-3, 1e30), grad_clip_norm=None
    )
    with pytest.raises(
        TrainingDiverged, match=r"diverged at step 4 .*(nan|inf).*Last good checkpoint: step 3"
    ):
        _train(tmp_path, optimizer=exploding, checkpoint_every_steps=1, log_every_steps=1)
    steps = sorted(int(s) for s in os.listdir(tmp_path / "checkpoints"))
    assert steps == [1, 2, 3], "good steps are checkpointed, the diverged one is not"
    for leaf in jax.tree.leaves(_params(tmp_path, steps[-1])):
        assert np.all(np.isfinite(leaf))


def _cli(model_dir, *extra):
    return [
        sys.executable,
        "-m",
        "t5lab.cli",
        "train",
        f"--gin_file={FIXTURES / 'micro.gin'}",
        f"--gin.MODEL_DIR={model_dir}",
        "--quiet",
        *extra,
    ]


def _wait_for_checkpoint(model_dir, step, process, timeout=240):
    deadline = time.time() + timeout
    path = os.path.join(model_dir, "checkpoints", str(step))
    while not os.path.isdir(path):
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.2)


def test_sigkill_then_resume_is_bit_identical_to_uninterrupted(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    steps = ["--gin.TRAIN_STEPS=16", "--gin.train.checkpoint_every_steps=4"]
    reference = subprocess.Popen(_cli(whole, *steps), env=env, cwd=REPO)
    victim = subprocess.Popen(
        _cli(broken, *steps, "--gin.train.log_every_steps=1"),
        env=env,
        cwd=REPO,
    )
    _wait_for_checkpoint(broken, 4, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert reference.wait() == 0
    resumed = subprocess.run(
        _cli(broken, *steps), env=env, cwd=REPO, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "steps 4 -> 16" in resumed.stdout or "steps 8 -> 16" in resumed.stdout
    expected, actual = _params(whole, 16), _params(broken, 16)
    for (path, want), got in zip(
        jax.tree_util.tree_leaves_with_path(expected), jax.tree.leaves(actual), strict=True
    ):
        np.testing.assert_array_equal(got, want, err_msg=jax.tree_util.keystr(path))


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        _cli(tmp_path, "--gin.TRAIN_STEPS=100000", "--gin.train.checkpoint_every_steps=5"),
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_checkpoint(tmp_path, 5, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "SIGTERM: checkpoint saved at step" in stdout
    saved = int(stdout.split("checkpoint saved at step ")[1].split(";")[0])
    assert saved >= 5
    assert str(saved) in os.listdir(tmp_path / "checkpoints")
    assert os.path.isdir(tmp_path / "data_position" / f"step_{saved}")
