"""Your own supervised task from files of (inputs, targets) pairs.

Formats, either optionally gzip'd: `.jsonl` with one `{"inputs": ..., "targets": ...}` object
per line, or `.tsv` with `inputs<TAB>targets` per line (an `inputs<TAB>targets` header line is
skipped). Splits without their own file are carved from the training file by a hash of the
inputs (80/10/10), so they are stable and duplicates never straddle two splits.
"""

import json
from collections.abc import Iterator

import tensorflow as tf

from t5lab.data.corpus import numbered_lines
from t5lab.data.downstream.source import Example
from t5lab.data.downstream.splits import SPLITS, split_of
from t5lab.errors import UserError

_JSONL_SUFFIXES = (".jsonl", ".json")


def read_text_pairs(path: str) -> list[Example]:
    """Every (inputs, targets) pair in `path`, with "file:line" as the example id."""
    if not tf.io.gfile.exists(path):
        raise UserError(f"no such file: {path}")
    base = path[:-3] if path.endswith(".gz") else path
    if base.endswith(_JSONL_SUFFIXES):
        pairs = _jsonl_pairs(path)
    elif base.endswith(".tsv"):
        pairs = _tsv_pairs(path)
    else:
        raise UserError(f"{path}: expected a .jsonl or .tsv file (optionally .gz)")
    examples = [
        {"id": f"{path}:{number}", "inputs": inputs, "targets": targets}
        for number, inputs, targets in pairs
    ]
    if not examples:
        raise UserError(f"{path} contains no examples")
    return examples


def text_pairs_by_split(
    *, train_path: str, validation_path: str | None = None, test_path: str | None = None
) -> dict[str, list[Example]]:
    """Examples per split: given files as they are, the other splits hashed out of train."""
    given = {"validation": validation_path, "test": test_path}
    splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for example in read_text_pairs(train_path):
        split = split_of(example["inputs"])
        splits["train" if given.get(split) else split].append(example)
    for split, path in given.items():
        if path:
            splits[split] = read_text_pairs(path)
    for split, examples in splits.items():
        if not examples:
            raise UserError(
                f"the {split} split of {train_path} is empty: add examples or pass {split}_path"
            )
    return splits


def _jsonl_pairs(path: str) -> Iterator[tuple[int, str, str]]:
    for number, line in numbered_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{number} is not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{number} is not a JSON object")
        for key in ("inputs", "targets"):
            if not isinstance(record.get(key), str):
                found = sorted(record)
                raise UserError(f"{path}:{number} needs a string {key!r} field (found {found})")
        yield number, record["inputs"], record["targets"]


def _tsv_pairs(path: str) -> Iterator[tuple[int, str, str]]:
    for number, line in numbered_lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 2:
            raise UserError(
                f"{path}:{number} has {len(fields)} tab-separated fields; "
                "expected inputs<TAB>targets"
            )
        if number == 1 and [f.strip().lower() for f in fields] == ["inputs", "targets"]:
            continue
        yield number, fields[0], fields[1]
