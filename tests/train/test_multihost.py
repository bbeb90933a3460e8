"""Two processes joined by jax.distributed (gloo on loopback) train like one device.

Each process has 2 CPU devices and reads one of the run's 2 data shards; the one-device
reference (from sharded_scenarios.py) reads both, so both see the same global batches.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.train.sharded_results import sharded_results
from tests.train.sharded_settings import STEPS

# Four devices on two hosts sum the gradient in another order than one device.
RTOL = 1e-4


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    return sharded_results(tmp_path_factory)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_two_processes(model_dir) -> list[dict]:
    port = _free_port()
    worker = REPO / "tests" / "train" / "multihost_worker.py"
    # Both processes compile (the persistent cache serves process 0 only): neither waits on
    # the other's compilation long enough to hit gloo's 30 s connection deadline.
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_ENABLE_COMPILATION_CACHE": "false"}
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker), str(model_dir), str(port), str(rank)],
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
    return results


def test_two_processes_reach_the_one_device_losses(tmp_path, scenarios):
    results = _run_two_processes(tmp_path)
    assert [r["process_index"] for r in results] == [0, 1]
    for result in results:
        assert (result["process_count"], result["local_devices"], result["devices"]) == (2, 2, 4)
        assert result["final_step"] == STEPS
    # Each process saved the position of the data shard it reads.
    positions = sorted(os.listdir(tmp_path / "data_position" / f"step_{STEPS}"))
    assert positions == ["shard_0_of_2", "shard_1_of_2"]
    # Process 0 writes the metrics.
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    two_hosts = [m["loss"] for m in lines if m["split"] == "train"]
    one_device = [m["loss"] for m in scenarios["losses"]["one_device"]]
    assert len(two_hosts) == len(one_device) == STEPS and one_device[-1] < one_device[0]
    np.testing.assert_allclose(two_hosts, one_device, rtol=RTOL)
