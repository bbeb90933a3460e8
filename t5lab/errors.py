"""The one exception type the CLI turns into a single clear line and a non-zero exit."""

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """Bad input from the user (config, data, paths): reported without a traceback."""


def closest(name: str, candidates: Iterable[str], *, n: int = 2) -> list[str]:
    """Names from `candidates` that look like `name`, best first (for 'did you mean')."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix, or '' when nothing is close."""
    matches = closest(name, candidates)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
