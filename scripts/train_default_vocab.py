"""Regenerate t5lab/assets/sotu_unigram_8k.model from the SOTU train split.

Usage (from the repo root): PYTHONPATH=. .venv/bin/python scripts/train_default_vocab.py

Only the train split is used, so validation perplexity is not flattered by the vocabulary. Run from
the repo root: SentencePiece stores the model prefix inside the model, and the relative prefix keeps
the bytes identical across checkouts.
"""

import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from t5lab.data.corpus import sotu_documents
from t5lab.data.vocab import train_sentencepiece

PREFIX = "t5lab/assets/sotu_unigram_8k"


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    os.chdir(root)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "sotu_train.jsonl.gz"
        with gzip.open(corpus, "wt", encoding="utf-8") as f:
            for doc in sotu_documents(split="train"):
                f.write(json.dumps({"text": doc["text"]}) + "\n")
        path = train_sentencepiece(input_patterns=[str(corpus)], model_prefix=PREFIX)
    Path(f"{PREFIX}.vocab").unlink(missing_ok=True)
    size = Path(path).stat().st_size
    print(f"wrote {path} ({size} bytes) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
