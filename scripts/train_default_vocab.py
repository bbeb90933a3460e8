"""Regenerate t5lab/assets/default_unigram_8k.model, the default SentencePiece vocabulary.

Usage (from the repo root): PYTHONPATH=. .venv/bin/python scripts/train_default_vocab.py

Trained, like T5's vocabulary (C4 plus the WMT languages it translates into), on the pretraining
corpus and the text of the downstream tasks: the SOTU train split, then the train split of the
offline suite's texts (Reina-Valera 1909, King James and World English Bible verses, VADER
snippets). Only train splits are used, so validation and test scores are not flattered by the
vocabulary. Byte fallback is on: a character with no piece is spelled in bytes, never <unk>.

Run from the repo root: SentencePiece stores the model prefix inside the model, and the relative
prefix keeps the bytes identical across checkouts.
"""

import gzip
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from t5lab.data.corpus import sotu_documents
from t5lab.data.downstream import bible, vader
from t5lab.data.downstream.splits import split_of
from t5lab.data.vocab import train_sentencepiece

PREFIX = "t5lab/assets/default_unigram_8k"
BIBLE_SIDES = ("rv1909", "kjv", "web")


def training_texts() -> Iterator[str]:
    """SOTU train speeches, then the train-split Bible verses per side, then VADER snippets."""
    for doc in sotu_documents(split="train"):
        yield doc["text"]
    train_verses = [r for r in bible.bible_records() if split_of(r["ref"]) == "train"]
    for side in BIBLE_SIDES:
        yield from (r[side] for r in train_verses if r[side])
    yield from (r["text"] for r in vader.vader_records() if vader.vader_split(r) == "train")


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    os.chdir(root)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "vocab_train.jsonl.gz"
        with gzip.open(corpus, "wt", encoding="utf-8") as f:
            for text in training_texts():
                f.write(json.dumps({"text": text}) + "\n")
        path = train_sentencepiece(
            input_patterns=[str(corpus)], model_prefix=PREFIX, byte_fallback=True
        )
    Path(f"{PREFIX}.vocab").unlink(missing_ok=True)
    size = Path(path).stat().st_size
    print(f"wrote {path} ({size} bytes) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
