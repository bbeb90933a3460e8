"""Runs sharded_scenarios.py once per test session, even with pytest-xdist workers.

Several test modules assert on the same expensive 8-device run; the first worker to ask
runs it under a file lock and leaves the JSON result for the others.
"""

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def sharded_results(tmp_path_factory) -> dict:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by this session's workers
    result_file = root / "sharded_scenarios.json"
    with open(root / "sharded_scenarios.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result_file.exists():
            result_file.write_text(json.dumps(_run(root / "sharded_scenarios")))
    result = json.loads(result_file.read_text())
    assert "failure" not in result, result.get("failure")
    return result


def _run(work: Path) -> dict:
    work.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "train" / "sharded_scenarios.py"), str(work)],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        return {"failure": done.stderr[-4000:]}
    return json.loads(lines[-1][len("RESULT ") :])
