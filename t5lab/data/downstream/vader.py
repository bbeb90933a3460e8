"""VADER's human-rated snippets as three text-to-text tasks (SST-2, STS-B and topic analogues).

23,703 movie-review snippets, tweets, Amazon review snippets and New York Times editorial
snippets, each with the mean of 20 human sentiment ratings on -4..+4 (Hutto & Gilbert 2014).
Splits hash the lower-cased text, so the few snippets that occur twice stay in one split.
"""

import math

from t5lab.data.downstream.assets import read_records
from t5lab.data.downstream.source import Example
from t5lab.data.downstream.splits import SPLITS, split_of

VADER_FILE = "vader.jsonl.gz"
SOURCES = ("movie", "tweet", "amazon", "editorial")
SENTIMENT_LABELS = ("negative", "positive")
# Snippets rated within this distance of neutral (0) have no clear polarity: the human raters
# themselves disagree on their sign, so the binary task leaves them out.
NEUTRAL_MARGIN = 0.5
SCORE_RANGE = (-4.0, 4.0)
# What an answer that is not a number counts as: one below the scale, as T5's -1 for STS-B.
INVALID_SCORE = -5.0


def vader_records() -> tuple[dict, ...]:
    """All snippets: {"id": "tweet:12", "source", "score" (-4..+4), "text"}."""
    return read_records(VADER_FILE)


def vader_split(record: dict) -> str:
    return split_of(" ".join(record["text"].lower().split()))


def _by_split(examples: list[tuple[dict, Example]]) -> dict[str, list[Example]]:
    splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for record, example in examples:
        splits[vader_split(record)].append(example)
    return splits


def sentiment_examples() -> dict[str, list[Example]]:
    """'sentiment sentence: <text>' -> 'positive' | 'negative' (|score| >= NEUTRAL_MARGIN)."""
    return _by_split(
        [
            (
                r,
                {
                    "id": r["id"],
                    "inputs": f"sentiment sentence: {r['text']}",
                    "targets": SENTIMENT_LABELS[r["score"] > 0],
                },
            )
            for r in vader_records()
            if abs(r["score"]) >= NEUTRAL_MARGIN
        ]
    )


def score_to_target(score: float) -> str:
    """The rating rounded to 0.2 like T5's STS-B targets, on VADER's own -4..+4 scale ("-1.6").

    Kept on -4..+4 because a 0..5 grid of 0.2 has no neutral point; halves round away from 0,
    so the scale stays symmetric.
    """
    low, high = SCORE_RANGE
    clipped = min(max(score, low), high)
    steps = math.floor(abs(clipped) * 5 + 0.5)
    return f"{math.copysign(steps / 5, clipped) if steps else 0.0:.1f}"


def regression_examples() -> dict[str, list[Example]]:
    """'sentiment score: <text>' -> '-4.0' .. '4.0' in steps of 0.2 (0.0 = neutral)."""
    return _by_split(
        [
            (
                r,
                {
                    "id": r["id"],
                    "inputs": f"sentiment score: {r['text']}",
                    "targets": score_to_target(r["score"]),
                },
            )
            for r in vader_records()
        ]
    )


def source_examples() -> dict[str, list[Example]]:
    """'source: <text>' -> 'movie' | 'tweet' | 'amazon' | 'editorial'."""
    return _by_split(
        [
            (r, {"id": r["id"], "inputs": f"source: {r['text']}", "targets": r["source"]})
            for r in vader_records()
        ]
    )
