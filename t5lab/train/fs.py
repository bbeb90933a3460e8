"""What `tf.io.gfile` lacks for model directories on a local disk or an object store (`gs://`).

Model-directory I/O goes through `tf.io.gfile` (TensorFlow is a host dependency already; orbax
reaches `gs://` on its own); call it directly for plain operations (`makedirs`, `isdir`,
`remove`). Two differences between the two kinds of storage are handled here:
object stores list sub-directories with a trailing `/` (`list_dir` strips it), and they
cannot append to an object (`LineLog` appends on a local disk and rewrites the whole file
on an object store). Local paths are made absolute; URLs are left as they are.
"""

from __future__ import annotations

import os

import tensorflow as tf

# What a failed file operation raises: gfile's OpError, or OSError from the local disk.
FILE_ERRORS = (OSError, tf.errors.OpError)


def is_url(path: str) -> bool:
    """`gs://bucket/run` and the like (any `scheme://`), as opposed to a local path."""
    return "://" in path


def absolute(path: str) -> str:
    """A local path made absolute; a URL unchanged (`os.path.abspath` would mangle it)."""
    return path if is_url(path) else os.path.abspath(path)


def error_text(error: Exception) -> str:
    """The reason a file operation failed, in one line."""
    if isinstance(error, tf.errors.OpError):
        return error.message.splitlines()[0]
    return getattr(error, "strerror", None) or str(error)


def list_dir(path: str) -> list[str]:
    """Entry names of a directory, sorted, without the `/` object stores add to directories."""
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))


def glob(pattern: str) -> list[str]:
    """Paths matching a pattern, sorted (directories without a trailing `/`)."""
    return sorted(path.rstrip("/") for path in tf.io.gfile.glob(pattern))


def remove_tree(path: str) -> None:
    """Delete a directory and everything under it; a missing one is not an error."""
    try:
        tf.io.gfile.rmtree(path)
    except tf.errors.NotFoundError:
        pass


def read_text(path: str) -> str:
    with tf.io.gfile.GFile(path, "r") as handle:
        return handle.read()


def write_text(path: str, text: str) -> None:
    """Replace a whole file: written beside it, then renamed over it, so a reader (or a
    crash) never finds it half written."""
    partial = f"{path}.partial"
    with tf.io.gfile.GFile(partial, "w") as handle:
        handle.write(text)
    tf.io.gfile.rename(partial, path, overwrite=True)


class LineLog:
    """A text file that grows by whole lines and keeps what earlier runs wrote.

    Local disk: opened in append mode, each `append` flushed. Object store (no appends): the
    content is kept in memory, seeded from the existing object, and the whole file is
    rewritten on each `append`, so the stored object is always complete.
    """

    def __init__(self, path: str):
        self._path = path
        self._text = ""
        self._handle = None
        if is_url(path):
            self._text = read_text(path) if tf.io.gfile.exists(path) else ""
            if self._text and not self._text.endswith("\n"):
                self._text += "\n"  # a torn last line stays on its own line
        else:
            self._handle = tf.io.gfile.GFile(path, "a")

    def append(self, lines: list[str]) -> None:
        text = "".join(line + "\n" for line in lines)
        if self._handle is not None:
            self._handle.write(text)
            self._handle.flush()
            return
        self._text += text
        write_text(self._path, self._text)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
