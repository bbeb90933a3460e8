"""The bundled downstream data files (t5lab/assets/downstream, see the README there)."""

import functools
from pathlib import Path

from t5lab.assets import read_jsonl_gz
from t5lab.errors import UserError

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "downstream"


@functools.cache
def read_records(name: str) -> tuple[dict, ...]:
    """All JSON records of the bundled `name` (e.g. "vader.jsonl.gz"), read once per process."""
    path = ASSETS_DIR / name
    if not path.is_file():
        raise UserError(
            f"bundled data file missing: {path}; rebuild it with scripts/prepare_downstream.py"
        )
    return read_jsonl_gz(path)
