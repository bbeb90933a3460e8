"""Hash splits: stable, roughly 80/10/10, nested as the percentages grow."""

import pytest

from t5lab.data.downstream.splits import check_split, hash_fraction, split_of
from t5lab.errors import UserError

KEYS = [f"example-{i}" for i in range(10_000)]


def test_split_sizes_match_the_percentages():
    splits = [split_of(k) for k in KEYS]
    # Binomial(10000, 0.1) has sd 30: 4 sd of slack.
    assert abs(splits.count("validation") - 1000) < 120
    assert abs(splits.count("test") - 1000) < 120


def test_a_key_keeps_its_split_when_only_the_other_share_changes():
    for key in KEYS[:2000]:
        if split_of(key) == "validation":
            assert split_of(key, test_percent=30.0) == "validation"
        if split_of(key) == "train":
            assert split_of(key, validation_percent=5.0, test_percent=5.0) == "train"


def test_no_validation_or_test_when_percentages_are_zero():
    assert {split_of(k, validation_percent=0, test_percent=0) for k in KEYS[:500]} == {"train"}


def test_bad_percentages_and_splits_are_user_errors():
    with pytest.raises(UserError, match="leave some training data"):
        split_of("x", validation_percent=60, test_percent=40)
    with pytest.raises(UserError, match="did you mean 'validation'"):
        check_split("valdation")


def test_hash_fraction_is_uniform_enough():
    values = [hash_fraction(k) for k in KEYS]
    assert all(0.0 <= v < 1.0 for v in values)
    assert abs(sum(v < 0.5 for v in values) - 5000) < 200  # sd 50
