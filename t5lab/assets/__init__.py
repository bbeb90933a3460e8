"""Bundled data: the SOTU corpus, the default vocabulary and the downstream sets (README.md
here and in downstream/). All of it is JSON lines, gzip'd deterministically."""

import gzip
import io
import json
from collections.abc import Iterable
from pathlib import Path


def read_jsonl_gz(path: Path) -> tuple[dict, ...]:
    """Every record of a bundled `.jsonl.gz` file."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def write_jsonl_gz(records: Iterable[dict], out: Path) -> None:
    """Deterministic gzip (no timestamp, sorted keys): the same records give the same bytes on
    every machine, so rebuilt assets can be compared byte for byte."""
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(body.encode("utf-8"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
