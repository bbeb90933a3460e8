"""One process of a two-process CPU training run, started by test_multihost.py.

Usage: python tests/train/multihost_worker.py MODEL_DIR PORT PROCESS_ID
Each process has 2 CPU devices; they join through jax.distributed on 127.0.0.1:PORT and
train the sharded_settings run data-parallel over the 4 devices.
"""

import json
import sys
from pathlib import Path

import jax

jax.config.update("jax_num_cpu_devices", 2)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tasks  # noqa: E402, F401  (registers sotu_span_corruption)
from t5lab.train.trainer import train  # noqa: E402
from tests.train.sharded_settings import train_kwargs  # noqa: E402


def main(model_dir: str, port: int, process_id: int) -> dict:
    summary = train(
        **train_kwargs(model_dir, mesh_shape={"data": -1}, rules="data_parallel"),
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=process_id,
    )
    return {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "local_devices": jax.local_device_count(),
        "devices": jax.device_count(),
        "final_step": summary.final_step,
    }


if __name__ == "__main__":
    model_dir, port, process_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print("RESULT " + json.dumps(main(model_dir, port, process_id)), flush=True)
