"""Two processes joined by jax.distributed (gloo on loopback) train like one process.

Each process has 2 CPU devices and reads one of 2 data shards; the reference run reads
both shards in this process on one device, so both see the same global batches.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

import tasks  # noqa: F401  (registers sotu_span_corruption)
from t5lab.train.trainer import train
from tests.conftest import REPO
from tests.train.multihost_settings import STEPS, train_kwargs

# Two hosts reduce the gradient in a different order than one device: float32 round-off.
RTOL = 1e-4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _train_losses(model_dir) -> list[float]:
    lines = [json.loads(line) for line in open(os.path.join(model_dir, "metrics.jsonl"))]
    return [m["loss"] for m in lines if m["split"] == "train"]


def test_two_processes_reach_the_single_process_losses(tmp_path):
    port = _free_port()
    worker = REPO / "tests" / "train" / "multihost_worker.py"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker), str(tmp_path / "two"), str(port), str(rank)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [process.communicate(timeout=900) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    results = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert process.returncode == 0 and lines, err[-3000:]
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    assert [r["process_index"] for r in results] == [0, 1]
    assert all((r["process_count"], r["local_devices"], r["devices"]) == (2, 2, 4) for r in results)
    assert all(r["final_step"] == STEPS for r in results)
    # Process 0 writes the metrics; both processes wrote their data shard's position.
    positions = sorted(os.listdir(tmp_path / "two" / "data_position" / f"step_{STEPS}"))
    assert positions == ["shard_0_of_2", "shard_1_of_2"]

    reference = train(**train_kwargs(str(tmp_path / "one")))
    two, one = _train_losses(tmp_path / "two"), _train_losses(tmp_path / "one")
    assert len(two) == len(one) == STEPS and one[-1] < one[0]
    np.testing.assert_allclose(two, one, rtol=RTOL)
    for result in results:
        np.testing.assert_allclose(
            result["last_validation"]["loss"], reference.last_validation["loss"], rtol=RTOL
        )
