"""The bundled VADER snippets and the three tasks built from them."""

import pytest

from t5lab.data.downstream import vader
from t5lab.data.downstream.splits import SPLITS


def test_all_four_collections_are_bundled_with_the_published_sizes():
    records = vader.vader_records()
    counts = {s: sum(r["source"] == s for r in records) for s in vader.SOURCES}
    # Hutto & Gilbert (2014): 10,605 movie, 4,200 tweet, 3,708 Amazon, 5,190 NYT snippets.
    assert counts == {"movie": 10605, "tweet": 4200, "amazon": 3708, "editorial": 5190}
    assert all(-4.0 <= r["score"] <= 4.0 and r["text"] for r in records)
    assert not any("&amp;" in r["text"] or "\r" in r["text"] for r in records)


def test_splits_are_disjoint_and_keep_duplicate_texts_together():
    examples = vader.source_examples()
    ids = {split: {e["id"] for e in examples[split]} for split in SPLITS}
    texts = {split: {e["inputs"].lower() for e in examples[split]} for split in SPLITS}
    assert sum(len(v) for v in ids.values()) == len(vader.vader_records())
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not ids[a] & ids[b]
                assert not texts[a] & texts[b]


def test_sentiment_leaves_out_near_neutral_snippets_and_labels_by_sign():
    score = {r["id"]: r["score"] for r in vader.vader_records()}
    for examples in vader.sentiment_examples().values():
        for e in examples:
            assert abs(score[e["id"]]) >= vader.NEUTRAL_MARGIN
            assert e["targets"] == ("positive" if score[e["id"]] > 0 else "negative")
            assert e["inputs"].startswith("sentiment sentence: ")


@pytest.mark.parametrize(
    ("score", "target"),
    [
        (-4.0, "-4.0"),
        (4.0, "4.0"),
        (0.0, "0.0"),
        (-0.05, "0.0"),
        (2.2666, "2.2"),
        (0.1, "0.2"),
        (-0.1, "-0.2"),
        (9.0, "4.0"),
    ],
)
def test_score_to_target_rounds_to_point_two_symmetrically(score, target):
    # 0.1 is half way between 0.0 and 0.2: away from zero on both sides.
    assert vader.score_to_target(score) == target


def test_regression_targets_are_stsb_style_numbers():
    for e in vader.regression_examples()["validation"]:
        value = float(e["targets"])
        assert -4.0 <= value <= 4.0
        assert abs(value * 5 - round(value * 5)) < 1e-9
