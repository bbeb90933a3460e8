"""Train / validation / test by a stable hash of each example's key: no split files to ship.

The same key lands in the same split on every machine, run and Python version, and examples
that share a key (a duplicated text, one Bible verse used by three tasks) never straddle splits.
"""

import hashlib

from t5lab.errors import UserError, did_you_mean

SPLITS = ("train", "validation", "test")
# Mixed into every hash so these splits are independent of the pretraining corpus's.
_NAMESPACE = "t5lab-downstream:"


def split_of(key: str, *, validation_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """'train', 'validation' or 'test' for `key` (default 80/10/10)."""
    if validation_percent < 0 or test_percent < 0 or validation_percent + test_percent >= 100:
        raise UserError(
            "validation_percent and test_percent must be >= 0 and leave some training data, "
            f"got {validation_percent} and {test_percent}"
        )
    digest = hashlib.sha256((_NAMESPACE + key).encode("utf-8")).digest()
    percent = int.from_bytes(digest[:8], "big") / 2.0**64 * 100.0
    if percent < validation_percent:
        return "validation"
    if percent < validation_percent + test_percent:
        return "test"
    return "train"


def hash_fraction(key: str) -> float:
    """A stable pseudo-random number in [0, 1) for `key` (deterministic choices per example)."""
    digest = hashlib.sha256(("t5lab-choice:" + key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def check_split(split: str) -> None:
    if split not in SPLITS:
        hint = did_you_mean(split, SPLITS)
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}{hint}")
