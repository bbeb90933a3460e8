"""Silence the C++ start-up chatter of TensorFlow's native libraries.

TensorFlow 2.21 logs "oneDNN custom operations are on" and "Could not find cuda drivers"
through absl before `TF_CPP_MIN_LOG_LEVEL` is read, straight to file descriptor 2. The CLI
imports the TensorFlow stack once with that descriptor pointed at /dev/null; Python errors
raised during the import still reach the user, because the descriptor is restored first.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Load TensorFlow and the TF-based libraries t5lab uses, without their banners."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        import seqio  # noqa: F401
        import tensorflow  # noqa: F401
        import tensorflow_text  # noqa: F401
