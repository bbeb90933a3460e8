"""Every objective gin file is a working recipe: it trains the micro model for two steps."""

import json
from pathlib import Path

import pytest

from t5lab.cli import main
from tests.conftest import FIXTURES, REPO

GIN_FILES = sorted((REPO / "gin" / "objectives").glob("*.gin"))


def test_every_registered_objective_has_a_gin_file():
    from t5lab.data import objectives

    names = {path.stem for path in GIN_FILES}
    assert set(objectives.names()) <= names


@pytest.mark.parametrize("gin_file", GIN_FILES, ids=lambda path: path.stem)
def test_objective_gin_file_trains(gin_file: Path, tmp_path, capsys):
    electra = gin_file.stem == "electra"
    args = [
        "train",
        f"--gin_file={FIXTURES / 'micro.gin'}",
        f"--gin_file={gin_file}",
        f"--gin.MODEL_DIR={tmp_path}",
        "--gin.TRAIN_STEPS=2",
        # ELECTRA aligns targets with inputs token for token: equal lengths.
        f"--gin.TASK_FEATURE_LENGTHS={{'inputs': 64, 'targets': {64 if electra else 96}}}",
        "--gin.train.eval_batches=0",
        "--quiet",
    ]
    assert main(args) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert losses and all(0 < loss < 100 for loss in losses)  # ELECTRA adds 50 x BCE
