"""Pretraining corpora as seqio sources: the bundled State of the Union speeches, or your own files.

Each example is one whole document (`{"text": tf.string, "id": tf.string}`); the pretraining
pipeline tokenizes and chunks it. Train/validation splits come from a stable hash, so they are the
same on every machine and every run without storing a split file.
"""

import functools
import gzip
import hashlib
import io
import json
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import seqio
import tensorflow as tf

from t5lab.assets import read_jsonl_gz
from t5lab.errors import UserError, did_you_mean

SOTU_PATH = Path(__file__).resolve().parents[1] / "assets" / "sotu.jsonl.gz"
SPLITS = ("train", "validation")
# Namespace mixed into every split hash; with it the 5% SOTU validation split has 12 speeches
# spread over 1810-2006 (plain ids gave only 8).
_HASH_NAMESPACE = "t5lab:"
_JSON_SUFFIXES = (".jsonl", ".json")


def hash_split(key: str, *, validation_percent: float) -> str:
    """'train' or 'validation' for `key`, from sha256 so it never changes between runs."""
    if not 0.0 <= validation_percent < 100.0:
        raise UserError(f"validation_percent must be in [0, 100), got {validation_percent}")
    digest = hashlib.sha256((_HASH_NAMESPACE + key).encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2.0**64
    return "validation" if fraction * 100.0 < validation_percent else "train"


@functools.lru_cache(maxsize=1)
def _sotu_records() -> tuple[dict, ...]:
    return read_jsonl_gz(SOTU_PATH)


def sotu_documents(*, split: str, validation_percent: float = 5.0) -> list[dict]:
    """The speeches (id, year, name, party, text) of one split, oldest first."""
    _check_split(split)
    return [
        dict(r)
        for r in _sotu_records()
        if hash_split(r["id"], validation_percent=validation_percent) == split
    ]


def sotu_source(*, validation_percent: float = 5.0) -> seqio.DataSource:
    """The bundled State of the Union corpus: one example per speech."""
    docs = {
        split: [
            (d["id"], d["text"])
            for d in sotu_documents(split=split, validation_percent=validation_percent)
        ]
        for split in SPLITS
    }
    return _in_memory_source(docs)


def iter_documents(*, patterns: Sequence[str], text_key: str = "text") -> Iterator[tuple[str, str]]:
    """Yield (location, text) for every document in the files matched by `patterns`.

    `.txt` files hold one document per non-empty line (surrounding whitespace stripped); `.jsonl`
    and `.json` files hold one JSON object per line with the text under `text_key`. Any of them may
    be gzip'd (`.gz`). `location` is "file:line". Globs are expanded with tf.io.gfile, so cloud
    paths work too.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise UserError("no input files given (empty list of patterns)")
    for path in _expand(patterns):
        found = False
        for location, text in _read_file(path, text_key=text_key):
            found = True
            yield location, text
        if not found:
            raise UserError(f"{path} contains no text")


def text_files_source(
    *,
    train_patterns: Sequence[str],
    validation_patterns: Sequence[str] = (),
    text_key: str = "text",
    validation_percent: float = 5.0,
) -> seqio.DataSource:
    """Bring-your-own corpus: text/JSONL files (see `iter_documents` for the formats).

    Without `validation_patterns` the train files are split by a hash of each document's text, so
    duplicated documents never straddle train and validation. Everything is read once, here, so
    errors surface at construction; meant for corpora that fit in memory.
    """
    train = list(iter_documents(patterns=train_patterns, text_key=text_key))
    total = len(train)
    if validation_patterns:
        validation = list(iter_documents(patterns=validation_patterns, text_key=text_key))
    else:
        everything, train, validation = train, [], []
        for location, text in everything:
            split = hash_split(text, validation_percent=validation_percent)
            (validation if split == "validation" else train).append((location, text))
    docs = {"train": train, "validation": validation}
    for split, items in docs.items():
        if not items:
            hint = (
                "raise validation_percent or pass validation_patterns"
                if split == "validation"
                else "lower validation_percent or add files"
            )
            raise UserError(f"the {split} split is empty ({total} training documents); {hint}")
    return _in_memory_source(docs)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        hint = did_you_mean(split, SPLITS)
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}{hint}")


def _in_memory_source(docs: dict[str, list[tuple[str, str]]]) -> seqio.DataSource:
    """A seqio source over (id, text) lists; shuffling is a seeded permutation, so deterministic.

    Without a seed the order is shuffled with seed 0, so that shards (which seqio cuts from the
    example stream of this one-shard source) stay disjoint across hosts.
    """

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        _check_split(split)
        items = docs[split]
        order = list(range(len(items)))
        if shuffle_files:
            random.Random(0 if seed is None else int(seed)).shuffle(order)

        # from_tensor_slices, not from_generator: a live Python generator makes the tf.data
        # iterator impossible to checkpoint ("PyFunc is stateful"), and resume needs that.
        ids = tf.constant([items[i][0] for i in order], tf.string, shape=[len(order)])
        texts = tf.constant([items[i][1] for i in order], tf.string, shape=[len(order)])
        return tf.data.Dataset.from_tensor_slices({"id": ids, "text": texts})

    return seqio.FunctionDataSource(
        dataset_fn=dataset_fn,
        splits=SPLITS,
        num_input_examples={split: len(items) for split, items in docs.items()},
    )


def _expand(patterns: Sequence[str]) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(os.path.expanduser(pattern)))
        matched = [p for p in matched if not tf.io.gfile.isdir(p)]
        if not matched:
            raise UserError(f"no file matches {pattern!r}")
        paths.extend(p for p in matched if p not in paths)
    return paths


def numbered_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) of each non-blank line of a UTF-8 text file,
    gzip'd if it ends in `.gz`, local or on any filesystem tf.io.gfile reads."""
    with tf.io.gfile.GFile(path, "rb") as raw:
        data = raw.read()
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise UserError(f"{path} is not a valid gzip file ({e})") from None
    try:
        lines = io.StringIO(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line.rstrip("\r\n")


def _read_file(path: str, *, text_key: str) -> Iterator[tuple[str, str]]:
    base = path[:-3] if path.endswith(".gz") else path
    is_json = base.endswith(_JSON_SUFFIXES)
    for number, line in numbered_lines(path):
        line = line.strip()
        if not is_json:
            yield f"{path}:{number}", line
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{number} is not valid JSON ({e.msg})") from None
        if not isinstance(record, dict) or text_key not in record:
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise UserError(f"{path}:{number} has no {text_key!r} field (found {keys})")
        text = record[text_key]
        if not isinstance(text, str):
            raise UserError(f"{path}:{number} field {text_key!r} is not a string")
        if text.strip():
            yield f"{path}:{number}", text.strip()
